"""Tiled inference over a held-out region mosaic: :class:`RegionDataset` and :class:`Stitcher`.

``RegionDataset`` cuts the LR mosaic (and the HR-grid auxiliary layers on the same footprint) into
overlapping tiles, like TorchGeo's ``GridGeoSampler``; ``Stitcher`` blends the HR predictions of
the tiles back into one mosaic with a smooth weight that falls off over the overlap. Weights are
normalised per pixel, so any prediction that agrees on overlaps (a constant, or the HR truth cut
into tiles) is reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import torch
from affine import Affine
from torch.utils.data import Dataset

from deeplightmd.access._store import (
    LazyGroup,
    StoreLike,
    band_request,
    check_modalities,
    check_region,
    conform,
    load_attrs,
    normalizer_of,
    store_url,
)
from deeplightmd.access.dataset import to_tensor
from deeplightmd.errors import ConfigError
from deeplightmd.modalities import BUILTIN
from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import REGIONS_GROUP, store_modalities

#: (row, col, height, width) in LR pixels
Window = tuple[int, int, int, int]
#: the default modalities of a tile: every built-in input (the main input and the auxiliaries)
REGION_MODALITIES = tuple(n for n, m in BUILTIN.items() if m.role != "target")


def _starts(size: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)   # last tile shifted inside the mosaic
    return starts


def tile_windows(shape: tuple[int, int], tile: int, overlap: int) -> list[Window]:
    """Tiles of ``tile x tile`` pixels overlapping by at least ``overlap`` that cover ``shape``.

    Tiles keep one size (the last row/column is shifted inside the mosaic); a mosaic smaller than
    ``tile`` along an axis gets tiles of the mosaic's size along that axis.

    Raises:
        ConfigError: ``tile`` not positive, ``overlap`` negative or ``tile <= overlap``.
    """
    if tile <= 0 or overlap < 0:
        raise ConfigError(f"tile must be > 0 and overlap >= 0, got tile={tile}, overlap={overlap}")
    if tile <= overlap:
        raise ConfigError(f"tile ({tile}) must be larger than overlap ({overlap})")
    th, tw = min(tile, shape[0]), min(tile, shape[1])
    stride = tile - overlap
    return [(r, c, th, tw) for r in _starts(shape[0], th, stride)
            for c in _starts(shape[1], tw, stride)]


def ramp(n: int, width: int) -> np.ndarray:
    """Blending weight along one axis: a raised-cosine rise over ``width`` pixels at each end.

    Strictly positive, 1 in the interior, symmetric.
    """
    if width <= 0:
        return np.ones(n)
    d = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5)
    return np.where(d < width, 0.5 - 0.5 * np.cos(np.pi * d / width), 1.0)


class Stitcher:
    """Weighted blend of overlapping HR tile predictions into one mosaic.

    Args:
        hr_shape: (rows, cols) of the HR mosaic.
        ratio: HR pixels per LR pixel (windows are given in LR pixels).
        overlap: LR pixels over which a tile's weight rises from ~0 to 1 (0: plain average).
    """

    def __init__(self, hr_shape: tuple[int, int], ratio: int, overlap: int = 0) -> None:
        self.hr_shape = (int(hr_shape[0]), int(hr_shape[1]))
        self.ratio = int(ratio)
        self.ramp_width = int(overlap) * self.ratio
        self._sum: np.ndarray | None = None
        self._weight = np.zeros(self.hr_shape, dtype=np.float64)
        self._channel_axis = False

    def add(self, pred_hr: np.ndarray | torch.Tensor, window: Window | Iterable[int]) -> None:
        """Add one tile's HR prediction ``(H, W)`` or ``(C, H, W)`` for LR ``window``."""
        r, c, h, w = (int(v) for v in window)
        x = pred_hr.detach().cpu().numpy() if isinstance(pred_hr, torch.Tensor) else pred_hr
        x = np.asarray(x, dtype=np.float64)
        hh, ww = h * self.ratio, w * self.ratio
        if x.shape[-2:] != (hh, ww) or x.ndim not in (2, 3):
            raise ConfigError(f"prediction for LR window {(r, c, h, w)} must be (C?, {hh}, {ww}) "
                              f"HR pixels, got shape {x.shape}")
        if self._sum is None:
            self._channel_axis = x.ndim == 3
            channels = x.shape[0] if x.ndim == 3 else 1
            self._sum = np.zeros((channels, *self.hr_shape), dtype=np.float64)
        x = x if x.ndim == 3 else x[None]
        y0, x0 = r * self.ratio, c * self.ratio
        if y0 < 0 or x0 < 0 or y0 + hh > self.hr_shape[0] or x0 + ww > self.hr_shape[1]:
            raise ConfigError(f"LR window {(r, c, h, w)} lies outside the mosaic of "
                              f"{self.hr_shape} HR pixels")
        weight = np.outer(ramp(hh, self.ramp_width), ramp(ww, self.ramp_width))
        self._sum[:, y0:y0 + hh, x0:x0 + ww] += x * weight
        self._weight[y0:y0 + hh, x0:x0 + ww] += weight

    def add_batch(self, preds: torch.Tensor | np.ndarray, windows: Any) -> None:
        """Add a batch ``(B, C, H, W)`` with its windows ``(B, 4)`` as collated by a DataLoader."""
        for pred, window in zip(preds, np.asarray(windows), strict=True):
            self.add(pred, tuple(window))

    @property
    def coverage(self) -> np.ndarray:
        """Boolean HR mask of the pixels some tile covered."""
        return self._weight > 0

    def result(self) -> np.ndarray:
        """The blended HR mosaic, float32 ``(H, W)`` (or ``(C, H, W)``); NaN where not covered."""
        if self._sum is None:
            raise ConfigError("no tile was added to the stitcher")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(self._weight > 0, self._sum / self._weight, np.nan).astype(np.float32)
        return out if self._channel_axis else out[0]


class RegionDataset(Dataset):
    """Overlapping tiles of a held-out region mosaic, for tiled inference.

    Each item holds the requested modalities of one tile (``lr_ntl (1, t, t)``, HR-grid layers
    ``(C, ratio·t, ratio·t)``), ``window`` (int64 ``(4,)``: LR row, col, height, width) and
    ``index``. Feed the predictions to :meth:`stitcher` to get the HR mosaic back.

    Args:
        store: path or fsspec URL of the store.
        region: name of a region in the store.
        tile: tile side in LR pixels (clipped to the mosaic when it is smaller).
        overlap: minimum overlap of neighbouring tiles in LR pixels.
        modalities: modalities per tile (default :data:`REGION_MODALITIES`; ``hr_ntl`` too,
            for evaluation; any declared layer of the store).
        normalize: normalise with the store's train statistics (:attr:`normalizer`).
        bands: bands wanted per multi-band modality, by name (as for
            :class:`~deeplightmd.access.DeepLightDataset`).
        normalizer: normalise with these statistics instead of the store's — those a model
            was trained with, when it is evaluated on another store (``bench --checkpoint``).

    Raises:
        ConfigError: unknown region or modality, ``tile <= overlap``.
        StoreError: missing store or another format version.
    """

    def __init__(self, store: StoreLike, region: str, tile: int = 32, overlap: int = 4,
                 modalities: Iterable[str] = REGION_MODALITIES, normalize: bool = True,
                 bands: Mapping[str, tuple[str, ...]] | None = None,
                 normalizer: Normalizer | None = None) -> None:
        self.url = store_url(store)
        self.attrs = load_attrs(self.url)
        self.region = check_region(region, self.attrs)
        self.specs = store_modalities(self.attrs)
        self.modalities = check_modalities(modalities, tuple(self.specs))
        self.ratio = int(self.attrs["grid"]["ratio"])
        self.tile, self.overlap = int(tile), int(overlap)
        self.normalize = normalize
        self.bands = band_request(self.specs, bands)
        self.normalizer = normalizer or normalizer_of(self.attrs, self.specs, self.bands)
        self._lr = LazyGroup(self.url, f"{REGIONS_GROUP}/{region}/lr")
        self._hr = LazyGroup(self.url, f"{REGIONS_GROUP}/{region}/hr")
        self.lr_shape: tuple[int, int] = tuple(self._lr["lr_ntl"].shape[-2:])
        self.hr_shape: tuple[int, int] = tuple(self._hr["mask"].shape[-2:])
        if self.hr_shape != (self.lr_shape[0] * self.ratio, self.lr_shape[1] * self.ratio):
            raise ConfigError(f"region {region!r}: HR mosaic {self.hr_shape} is not ratio "
                              f"{self.ratio} times the LR mosaic {self.lr_shape}")
        self.windows = tile_windows(self.lr_shape, self.tile, self.overlap)
        ref = self._hr["spatial_ref"].attrs
        self.crs: str = ref["crs_wkt"]
        #: affine transform of the HR mosaic (top-left corner, GDAL GeoTransform decoded)
        self.transform = Affine.from_gdal(*(float(v) for v in str(ref["GeoTransform"]).split()))
        self.admin_names: dict[str, str] = dict(self._hr.group.attrs.get("admin_names", {}))

    def __len__(self) -> int:
        return len(self.windows)

    @cached_property
    def mask(self) -> np.ndarray:
        """HR uint8 mask, 1 inside the region polygon."""
        return np.asarray(self._hr["mask"][...])

    @cached_property
    def admin(self) -> np.ndarray:
        """HR int32 admin-unit ids (0 = none); names in :attr:`admin_names`."""
        return np.asarray(self._hr["admin"][...])

    def __getitem__(self, index: int) -> dict[str, Any]:
        r, c, h, w = self.windows[index]
        normalizer = self.normalizer if self.normalize else None
        item: dict[str, Any] = {}
        for grid, group in (("lr", self._lr), ("hr", self._hr)):
            names = [n for n in self.modalities if self.specs[n].grid == grid]
            s = 1 if grid == "lr" else self.ratio
            window = (Ellipsis, slice(r * s, (r + h) * s), slice(c * s, (c + w) * s))
            if names:
                arrays = group.read_many([(name, window) for name in names])
                item.update({n: to_tensor(n, conform(self.specs, self.bands, n, x), normalizer)
                             for n, x in zip(names, arrays, strict=True)})
        item["window"] = torch.tensor([r, c, h, w], dtype=torch.int64)
        item["index"] = int(index)
        return item

    def stitcher(self) -> Stitcher:
        """A :class:`Stitcher` for this mosaic, ramping weights over the tile overlap."""
        return Stitcher(self.hr_shape, self.ratio, overlap=self.overlap)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.url!r}, region={self.region!r}, tiles={len(self)}, "
                f"tile={self.tile}, overlap={self.overlap}, lr_shape={self.lr_shape})")


__all__ = ["REGION_MODALITIES", "RegionDataset", "Stitcher", "Window", "ramp", "tile_windows"]
