"""Bounded-memory tiled inference over an LR raster, written row band by row band.

Tiles of ``tile × tile`` LR pixels overlapping by ``overlap`` (:func:`tile_windows`, the same
lattice as the benchmark's regional evaluation) are predicted in row-major order. Their HR
predictions are blended with the :class:`~deeplightmd.access.Stitcher` weights (:func:`ramp`:
a raised cosine over the overlap, normalised per pixel) in a :class:`RowBlender` that holds only
one band of ``tile · ratio`` HR rows: rows no later tile touches are finished, post-processed
(LR-sum preservation, nodata and region mask, light sums) and written at once. Memory is
``O(tile · ratio · width)``, whatever the number of rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Protocol

import numpy as np
import rasterio
import torch
from rasterio import features
from shapely.geometry.base import BaseGeometry
from tqdm.auto import tqdm

from deeplightmd.access.region import ramp, tile_windows
from deeplightmd.builder.sources import ModalityReader
from deeplightmd.errors import ConfigError
from deeplightmd.predict.grid import SRGrid, read_lr
from deeplightmd.predict.sums import LightSums
from deeplightmd.sensor import block_mean

#: ``(row, col, height, width)`` in LR pixels of the grid
Window = tuple[int, int, int, int]
#: receives finished SR rows: ``(first_row, sr, lr_repeated, valid)``
RowSink = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


class Predictor(Protocol):
    """What tiled inference needs of a method (structural: the harness's ``Method`` fits).

    ``context`` carries ``ratio``, ``normalizer`` (a :class:`~deeplightmd.normalize.Normalizer`)
    and ``device``; ``predict`` maps normalised inputs ``{name: (B, C, h, w)}`` to the normalised
    HR prediction ``(B, 1, h·ratio, w·ratio)``.
    """

    name: str
    inputs: Sequence[str]
    context: Any

    def predict(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class TileSettings:
    """Tiling of the LR raster.

    Attributes:
        tile: LR tile side fed to the method.
        overlap: LR pixels shared by neighbouring tiles (about the method's receptive field in
            LR pixels keeps seams invisible); the blend weight rises over it.
    """

    tile: int = 64
    overlap: int = 8

    def __post_init__(self) -> None:
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise ConfigError(f"need tile >= 1 and 0 <= overlap < tile, got tile={self.tile}, "
                              f"overlap={self.overlap}")


class RowBlender:
    """Weighted sums of overlapping HR tile predictions over a moving band of rows.

    Args:
        hr_width: SR columns.
        band_rows: most HR rows one tile spans (the buffer height).
        ratio: HR pixels per LR pixel.
        overlap: LR pixels over which a tile's weight rises (as in :class:`Stitcher`).
    """

    def __init__(self, hr_width: int, band_rows: int, ratio: int, overlap: int) -> None:
        self.ratio = ratio
        self.ramp_width = overlap * ratio
        self.top = 0
        self._sum = np.zeros((band_rows, hr_width))
        self._weight = np.zeros((band_rows, hr_width))

    def add(self, pred: np.ndarray, window: Window) -> None:
        """Add a tile's HR prediction ``(h·ratio, w·ratio)`` for LR ``window``."""
        r, c, h, w = window
        hh, ww = h * self.ratio, w * self.ratio
        y0 = r * self.ratio - self.top
        if y0 < 0 or y0 + hh > self._sum.shape[0]:
            raise ConfigError(f"tile {window} falls outside the current band of rows")
        weight = np.outer(ramp(hh, self.ramp_width), ramp(ww, self.ramp_width))
        x0 = c * self.ratio
        self._sum[y0:y0 + hh, x0:x0 + ww] += pred * weight
        self._weight[y0:y0 + hh, x0:x0 + ww] += weight

    def release(self, until: int) -> tuple[int, np.ndarray]:
        """Finish HR rows ``top … until`` (no later tile may touch them) and drop them.

        Returns ``(first_row, blended rows)``; rows no tile covered are NaN.
        """
        n = until - self.top
        if not 0 < n <= self._sum.shape[0]:
            raise ConfigError(f"cannot release HR rows {self.top}…{until} from a band of "
                              f"{self._sum.shape[0]} rows")
        with np.errstate(invalid="ignore", divide="ignore"):
            rows = np.where(self._weight[:n] > 0, self._sum[:n] / self._weight[:n], np.nan)
        for buf in (self._sum, self._weight):
            buf[:-n] = buf[n:].copy()
            buf[-n:] = 0.0
        first, self.top = self.top, until
        return first, rows


def preserve_lr_sum(sr: np.ndarray, lr: np.ndarray, ratio: int) -> np.ndarray:
    """Rescale each ``ratio × ratio`` block of ``sr`` so its mean equals the LR pixel.

    The target is ``max(lr, 0)`` (negative LR radiance is treated as 0, as the normaliser does).
    A block predicted all zero under a positive LR pixel gets the LR value everywhere (uniform
    spread: the only choice that keeps the sum without inventing structure); blocks whose
    LR pixel is 0 become 0.
    """
    target = np.clip(np.asarray(lr, dtype=np.float64), 0.0, None)
    sr64 = np.clip(np.asarray(sr, dtype=np.float64), 0.0, None)
    mean = block_mean(sr64, ratio)
    positive = mean > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(positive, target / mean, 0.0)
    spread = np.where(positive, 0.0, target)

    def up(x: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(x, ratio, axis=0), ratio, axis=1)

    return (sr64 * up(scale) + up(spread)).astype(np.float32)


def upsample_nearest(x: np.ndarray, ratio: int) -> np.ndarray:
    """Each LR pixel repeated onto its ``ratio × ratio`` SR block."""
    return np.repeat(np.repeat(x, ratio, axis=-2), ratio, axis=-1)


@dataclass
class TiledPrediction:
    """What a tiled prediction did."""

    tiles: int = 0
    seconds: float = 0.0
    sr_shape: tuple[int, int] = (0, 0)
    valid_pixels: int = 0
    windows: list[Window] = field(default_factory=list)


def tile_batch(method: Predictor, grid: SRGrid, lr_src: rasterio.io.DatasetReader,
               aux: Mapping[str, ModalityReader], window: Window) -> dict[str, torch.Tensor]:
    """The method's normalised inputs ``(1, C, h, w)`` for one LR window."""
    r, c, h, w = window
    normalizer, device = method.context.normalizer, method.context.device
    batch: dict[str, torch.Tensor] = {}
    for name in method.inputs:
        if name == "lr_ntl":
            x = read_lr(lr_src, grid, r, c, h, w)[0][None]
        else:
            x = aux[name].window(grid.crs, grid.sr_transform(r, c),
                                 (h * grid.ratio, w * grid.ratio)).astype(np.float32)
        x = normalizer.normalize(name, torch.from_numpy(np.ascontiguousarray(x)))
        batch[name] = x[None].to(device=device, dtype=torch.float32)
    return batch


def _rows_of(windows: list[Window]) -> Iterator[tuple[int, list[Window]]]:
    for row, group in groupby(windows, key=lambda wdw: wdw[0]):
        yield row, list(group)


def _synchronize(device: Any) -> None:
    if getattr(device, "type", None) == "cuda":
        torch.cuda.synchronize(device)


def timed_predict(method: Predictor, batch: Mapping[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, float]:
    """``method.predict(batch)`` and its wall time in seconds (CUDA synchronised)."""
    device = method.context.device
    _synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        pred = method.predict(dict(batch))
    _synchronize(device)
    return pred, time.perf_counter() - start


def predict_windows(method: Predictor, windows: Sequence[Window],
                    batch_of: Callable[[int], Mapping[str, torch.Tensor]],
                    add: Callable[[np.ndarray, Window], None], *,
                    on_row: Callable[[int], None] | None = None, progress: bool = True,
                    desc: str | None = None, leave: bool = True) -> float:
    """The tiled-inference loop (the only one: :func:`predict_tiled` over a GeoTIFF and the
    benchmark's regional evaluation over a store region both drive it).

    For each LR ``window`` (row-major), ``batch_of(index)`` gives the method's normalised inputs
    ``{name: (1, C, h, w)}`` on its device; the prediction is checked to be ``h·ratio × w·ratio``,
    denormalised to radiance (float32 ``(H, W)``) and handed to ``add(sr, window)`` (a blender).
    ``on_row(row)`` is called before the first tile of each new tile row (e.g. to release
    finished rows). Returns the inference seconds (CUDA synchronised).
    """
    normalizer, ratio = method.context.normalizer, int(method.context.ratio)
    seconds = 0.0
    bar = tqdm(total=len(windows), desc=desc or f"predict {method.name}", unit="tile",
               disable=not progress, leave=leave, dynamic_ncols=True)
    index = 0
    for row, row_windows in _rows_of(list(windows)):
        if on_row is not None:
            on_row(row)
        for window in row_windows:
            pred, dt = timed_predict(method, batch_of(index))
            seconds += dt
            _, _, h, w = window
            if tuple(pred.shape[-2:]) != (h * ratio, w * ratio):
                raise ConfigError(f"method {method.name!r} predicted {tuple(pred.shape)} for an "
                                  f"LR tile of {h}x{w}, expected (1, 1, {h * ratio}, {w * ratio})")
            sr = normalizer.denormalize("hr_ntl", pred[0, 0].float()).cpu().numpy()
            add(sr, window)
            index += 1
            bar.update(1)
    bar.close()
    return seconds


def predict_tiled(method: Predictor, grid: SRGrid, lr_src: rasterio.io.DatasetReader,
                  aux: Mapping[str, ModalityReader], settings: TileSettings, sink: RowSink,
                  *, preserve_sum: bool = False, region: BaseGeometry | None = None,
                  sums: list[LightSums] | None = None, progress: bool = True) -> TiledPrediction:
    """Predict every tile, blend, post-process and hand finished SR rows to ``sink``.

    Args:
        method: a method whose ``context`` carries the checkpoint's ratio and normaliser.
        grid: the SR grid (LR window of the input raster).
        lr_src: the open LR raster.
        aux: readers of the auxiliary modalities the method needs.
        settings: tile size and overlap.
        sink: called with ``(first_row, sr, lr_repeated, valid)`` for each finished row band
            (radiance, float32); ``valid`` is False at LR nodata and outside ``region``.
        preserve_sum: rescale each LR footprint so the block mean equals the LR input.
        region: polygon in the grid CRS; pixels whose centre lies outside are not valid.
        sums: light-sum accumulators fed with each finished band.
        progress: show a progress bar.
    """
    ratio = grid.ratio
    windows = tile_windows(grid.lr_shape, settings.tile, settings.overlap)
    band_rows = max(h for _, _, h, _ in windows) * ratio
    blender = RowBlender(grid.shape[1], band_rows, ratio, settings.overlap)
    report = TiledPrediction(sr_shape=grid.shape, windows=windows)

    def finish(until: int) -> None:
        if until <= blender.top:
            return
        first, sr = blender.release(until)
        lr, valid = read_lr(lr_src, grid, first // ratio, 0, sr.shape[0] // ratio, grid.lr_shape[1])
        if preserve_sum:
            sr = preserve_lr_sum(sr, lr, ratio)
        valid_up = upsample_nearest(valid, ratio) & np.isfinite(sr)
        if region is not None:
            valid_up &= features.geometry_mask([region], out_shape=sr.shape, invert=True,
                                               transform=grid.sr_transform(first // ratio, 0))
        lr_up = upsample_nearest(lr, ratio)
        sr = np.where(valid_up, sr, np.nan).astype(np.float32)
        for acc in sums or ():
            acc.add(sr, lr_up, valid_up, grid.sr_transform(first // ratio, 0))
        report.valid_pixels += int(valid_up.sum())
        sink(first, sr, lr_up, valid_up)

    def add(sr: np.ndarray, window: Window) -> None:
        blender.add(sr.astype(np.float64), window)
        report.tiles += 1

    report.seconds = predict_windows(
        method, windows, lambda i: tile_batch(method, grid, lr_src, aux, windows[i]), add,
        on_row=lambda row: finish(row * ratio), progress=progress)
    finish(grid.shape[0])
    return report
