"""Evaluation of a fitted method: local metrics on the test clips and regional metrics on the
held-out region mosaics (tiled inference through :func:`deeplightmd.predict.tiled.predict_windows`,
the one tiled-inference driver, blended by the :class:`~deeplightmd.access.Stitcher`).

Stores are read only through :mod:`deeplightmd.access`. Used by
:func:`benchmarks.runner.run_benchmark`; the names are also importable from
:mod:`benchmarks.runner`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.method import Method
from deeplightmd.access import read_region_mosaic
from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.integrity import decode_errors
from deeplightmd.normalize import Normalizer
from deeplightmd.predict.tiled import predict_windows, timed_predict
from deeplightmd.store_format import read_store_attrs

LocalMetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray, Any], Mapping[str, float]]
#: called with ``(clip_id, lr, sr, hr)`` radiance arrays of each evaluated test clip
ClipHook = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]
#: called with ``(region, sr, hr)`` radiance mosaics of each evaluated region
RegionHook = Callable[[str, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class RegionalSettings:
    """Tiled inference over the region mosaics.

    Attributes:
        tile: LR tile side (pixels) fed to the method.
        overlap: LR pixels shared by neighbouring tiles (blended by the stitcher); about the
            method's receptive field in LR pixels keeps seams invisible.
        regions: the regions to evaluate (``None``: all regions of the store; ``()``: none).
        geotiff_dir: when set, the SR mosaic of each region is written there as
            ``<method>_<region>.tif`` (float32 radiance, the region's CRS and HR transform).
    """

    tile: int = 32
    overlap: int = 8
    regions: tuple[str, ...] | None = None
    geotiff_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ConfigError(f"tile must be >= 1 LR pixel, got {self.tile}")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(f"overlap must be in [0, tile={self.tile}), got {self.overlap}")


def normalized_inputs(raw: Mapping[str, Any], names: Iterable[str], normalizer: Normalizer,
                      device: torch.device) -> dict[str, torch.Tensor]:
    """The modalities ``names`` of a batch in physical units, normalised and on ``device``."""
    return {n: normalizer.normalize(n, raw[n].to(device=device, dtype=torch.float32))
            for n in names}


@dataclass
class LocalEvaluation:
    """Per-clip metrics of the test split and the inference time spent on them."""

    per_clip: dict[str, list[float | None]]
    inference_seconds: float
    hr_pixels: int

    @property
    def megapixels_per_second(self) -> float | None:
        """Output HR megapixels per second of ``predict``."""
        return self.hr_pixels / 1e6 / self.inference_seconds if self.inference_seconds > 0 \
            else None


def evaluate_local(method: Method, test: torch.utils.data.Dataset, metric_fn: LocalMetricFn,
                   sensor_model: Any = None, batch_size: int = 4, max_clips: int | None = None,
                   progress: bool = True, on_clip: ClipHook | None = None) -> LocalEvaluation:
    """Predict every test clip and compute ``metric_fn(sr, hr, lr, sensor_model)`` on radiance.

    Args:
        method: the (fitted) method.
        test: a dataset of whole test clips in **physical units** (``normalize=False``) with the
            method's inputs plus ``hr_ntl`` and ``lr_ntl``; inputs are normalised here.
        metric_fn: per-clip metrics of 2-D radiance arrays ``(sr, hr, lr, sensor_model)``.
        sensor_model: the store's sensor model, or a function ``clip_id → model`` (a
            multi-world store's, :func:`deeplightmd.sensor.clip_sensor_models`); ``None`` when
            unknown.
        batch_size: clips per ``predict`` call.
        max_clips: evaluate only the first clips (quick checks; recorded in the results).
        progress: show a progress bar.
        on_clip: called with ``(clip_id, lr, sr, hr)`` of every clip (e.g. thumbnails).
    """
    normalizer = method.context.normalizer
    device = method.context.device
    if max_clips is not None:
        test = torch.utils.data.Subset(test, range(min(max_clips, len(test))))
    loader = torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=False)
    per_clip: dict[str, list[float | None]] = {"clip_id": []}
    seconds, pixels = 0.0, 0
    bar = tqdm(total=len(test), desc=f"test {method.name}", disable=not progress, leave=False,
               dynamic_ncols=True)
    for raw in loader:
        batch = normalized_inputs(raw, method.inputs, normalizer, device)
        pred, dt = timed_predict(method, batch)
        seconds += dt
        pixels += int(pred.shape[0] * pred.shape[-2] * pred.shape[-1])
        sr = normalizer.denormalize("hr_ntl", pred.float()).cpu().numpy()
        hr = raw["hr_ntl"].numpy()
        lr = raw["lr_ntl"].numpy()
        if sr.shape != hr.shape:
            raise ConfigError(f"method {method.name!r} predicted shape {tuple(sr.shape)}, expected "
                              f"{tuple(hr.shape)}")
        for i in range(sr.shape[0]):
            clip_id = int(raw["clip_id"][i])
            model = sensor_model(clip_id) if callable(sensor_model) else sensor_model
            values = metric_fn(sr[i, 0], hr[i, 0], lr[i, 0], model)
            per_clip["clip_id"].append(clip_id)
            if on_clip is not None:
                on_clip(int(raw["clip_id"][i]), lr[i, 0], sr[i, 0], hr[i, 0])
            for name, value in values.items():
                per_clip.setdefault(name, []).append(None if value is None else float(value))
        bar.update(sr.shape[0])
    bar.close()
    n = len(per_clip["clip_id"])
    ragged = [k for k, v in per_clip.items() if len(v) != n]
    if ragged:
        raise ConfigError(f"local metrics {ragged} were not reported for every clip")
    return LocalEvaluation(per_clip, seconds, pixels)


@dataclass
class RegionPrediction:
    """The stitched SR mosaic of a region (radiance) and how it was made."""

    sr: np.ndarray
    windows: list[tuple[int, int, int, int]]
    seconds: float


def predict_region(method: Method, region: Any, stitcher: Any, progress: bool = True
                   ) -> RegionPrediction:
    """Tiled inference over a region: predict each tile, denormalise, blend into ``stitcher``
    (through :func:`deeplightmd.predict.tiled.predict_windows`, the one tiled-inference loop).

    Args:
        method: the (fitted) method.
        region: a :class:`~deeplightmd.access.RegionDataset` (normalised tiles, each with a
            ``window`` = LR ``(row, col, h, w)``) or any sequence of such tile dicts.
        stitcher: a :class:`~deeplightmd.access.Stitcher` for the region's HR shape; receives
            radiance tiles ``(H, W)``, so blending happens in physical units.
        progress: show a progress bar.
    """
    device = method.context.device
    if hasattr(region, "windows"):
        windows = [tuple(int(v) for v in w) for w in region.windows]
        tile_at = region.__getitem__
    else:
        tiles = [region[i] for i in range(len(region))]
        windows = [tuple(int(v) for v in t["window"]) for t in tiles]
        tile_at = tiles.__getitem__

    def batch_of(i: int) -> dict[str, torch.Tensor]:
        tile = tile_at(i)
        return {n: tile[n][None].to(device=device, dtype=torch.float32) for n in method.inputs}

    seconds = predict_windows(method, windows, batch_of, stitcher.add, progress=progress,
                              desc=f"tiles {method.name}", leave=False)
    result = stitcher.result()
    sr = result.cpu().numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
    return RegionPrediction(np.squeeze(sr, axis=0) if sr.ndim == 3 else sr, windows, seconds)


def tile_grid(windows: Iterable[tuple[int, int, int, int]], ratio: int,
              hr_shape: tuple[int, int]) -> Any:
    """The :class:`~benchmarks.metrics.TileGrid` (HR rows/cols where a tile starts or ends)."""
    from benchmarks.metrics import TileGrid

    windows = list(windows)
    rows = {e * ratio for r, _, h, _ in windows for e in (r, r + h)}
    cols = {e * ratio for _, c, _, w in windows for e in (c, c + w)}
    return TileGrid(tuple(b for b in rows if 0 < b < hr_shape[0]),
                    tuple(b for b in cols if 0 < b < hr_shape[1]))


def write_geotiff(path: str | Path, array: np.ndarray, crs: Any, transform: Any) -> Path:
    """Write a 2-D float32 raster (deflate, tiled) with the given CRS and affine transform."""
    import rasterio
    import rasterio._err
    import rasterio.errors

    path = Path(path)
    h, w = array.shape
    tiled = h >= 256 and w >= 256
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "float32",
               "crs": crs, "transform": transform, "compress": "deflate", "tiled": tiled,
               **({"blockxsize": 256, "blockysize": 256} if tiled else {})}
    with atomic_path(path, errors=(rasterio.errors.RasterioError,
                                   rasterio._err.CPLE_BaseError)) as tmp, \
            rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array.astype(np.float32), 1)
        dst.update_tags(1, units="nW cm-2 sr-1", long_name="super-resolved nighttime light")
    return path


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Scalar entries of a (possibly nested) metrics dict, nested keys joined by ``.``."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, np.integer, np.floating)):
            out[name] = None if value is None else float(value)
    return out


def read_region_reference(store: str, region: str) -> np.ndarray:
    """The HR NTL mosaic of a region (radiance)."""
    return read_region_mosaic(store, region, "hr_ntl", "hr")


def evaluate_regions(method: Method, store: str, settings: RegionalSettings, metric_config: Any,
                     progress: bool = True, on_region: RegionHook | None = None
                     ) -> tuple[dict[str, dict[str, float | None]], float]:
    """Regional metrics of every selected region; returns ``(per-region metrics, seconds)``.
    ``on_region(name, sr, hr)`` is called with each region's mosaics (e.g. thumbnails)."""
    from benchmarks.metrics import compute_regional_metrics
    from deeplightmd.access import RegionDataset

    attrs = read_store_attrs(store)
    names = list(attrs.get("regions", [])) if settings.regions is None else list(settings.regions)
    out: dict[str, dict[str, float | None]] = {}
    total = 0.0
    ratio = method.context.ratio
    for name in names:
        with decode_errors(store, f"region {name}"):
            region = RegionDataset(store, name, tile=settings.tile, overlap=settings.overlap,
                                   modalities=method.inputs, normalize=True,
                                   bands=method.bands, normalizer=method.context.normalizer)
            if region.ratio != ratio:
                raise StoreError(f"region {name!r} has ratio {region.ratio}, the store {ratio}")
            pred = predict_region(method, region, region.stitcher(), progress=progress)
            hr = read_region_reference(store, name)
        total += pred.seconds
        metrics = compute_regional_metrics(pred.sr, hr, np.asarray(region.mask).astype(bool),
                                           np.asarray(region.admin), metric_config,
                                           tile_grid=tile_grid(pred.windows, ratio, hr.shape))
        flat = flatten_metrics(metrics)
        hr_px = int(pred.sr.size)
        flat.update({"tiles": float(len(pred.windows)), "hr_megapixels": hr_px / 1e6,
                     "inference_seconds": pred.seconds,
                     "megapixels_per_second": hr_px / 1e6 / pred.seconds if pred.seconds else None})
        out[name] = flat
        if settings.geotiff_dir is not None:
            write_geotiff(Path(settings.geotiff_dir) / f"{method.name}_{name}.tif", pred.sr,
                          region.crs, region.transform)
        if on_region is not None:
            on_region(name, pred.sr, hr)
    return out, total


__all__ = ["ClipHook", "LocalEvaluation", "LocalMetricFn", "RegionHook", "RegionPrediction",
           "RegionalSettings", "evaluate_local", "evaluate_regions", "flatten_metrics",
           "normalized_inputs", "predict_region", "read_region_reference", "tile_grid",
           "timed_predict", "write_geotiff"]
