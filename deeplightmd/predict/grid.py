"""The SR grid of a prediction and the per-window readers of its inputs.

The SR grid is the LR raster's own grid refined ``ratio`` times: same CRS, the LR transform with
the pixel size divided by ``ratio`` (same top-left corner), ``ratio`` times the rows and columns.
With a region polygon the grid is cropped to the region's bounding box snapped outwards to the
LR pixel lattice, so every SR pixel still lies inside exactly one LR pixel.

The auxiliary layers (DMO, DEM, ISP) are warped onto SR windows with the build pipeline's
reader (:class:`deeplightmd.builder.sources.ModalityReader` → :func:`read_to_grid`), one window at
a time, with the same per-modality resampling as the packaged presets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from deeplightmd.builder.read import RasterRead, open_rasters
from deeplightmd.builder.sources import ModalityReader
from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.modalities import BUILTIN

#: the auxiliary layers ``predict`` reads from files (every built-in but the NTL pair); how each
#: is resampled, thresholded and filled comes from :data:`deeplightmd.modalities.BUILTIN`
AUX_NAMES = tuple(n for n, m in BUILTIN.items() if m.role in ("auxiliary", "supervision"))


@dataclass(frozen=True)
class SRGrid:
    """The LR window being super-resolved and its refined SR grid.

    Attributes:
        crs: CRS of the LR raster (and of the output).
        lr_transform: affine transform of the LR window (its top-left corner).
        lr_shape: ``(rows, cols)`` of the LR window.
        lr_offset: ``(row, col)`` of the window's top-left pixel in the LR file.
        ratio: SR pixels per LR pixel along each axis.
    """

    crs: CRS
    lr_transform: Affine
    lr_shape: tuple[int, int]
    lr_offset: tuple[int, int]
    ratio: int

    @property
    def transform(self) -> Affine:
        """SR transform: the LR transform with the pixel size divided by ``ratio``."""
        return self.lr_transform @ Affine.scale(1.0 / self.ratio)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the SR grid."""
        return self.lr_shape[0] * self.ratio, self.lr_shape[1] * self.ratio

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in :attr:`crs` (for north-up rasters)."""
        t, (h, w) = self.lr_transform, self.lr_shape
        xs = (t.c, t.c + w * t.a)
        ys = (t.f, t.f + h * t.e)
        return min(xs), min(ys), max(xs), max(ys)

    def sr_transform(self, row: int, col: int) -> Affine:
        """SR transform of the window whose top-left LR pixel is ``(row, col)`` of the grid."""
        return self.transform @ Affine.translation(col * self.ratio, row * self.ratio)

    def lr_window(self, row: int, col: int, height: int, width: int) -> Window:
        """The LR file window of grid window ``(row, col, height, width)`` (LR pixels)."""
        return Window(self.lr_offset[1] + col, self.lr_offset[0] + row, width, height)


def check_file(path: str | Path, what: str) -> str:
    """``path`` as a string; :class:`InputFileError` when it does not exist."""
    if "://" not in str(path) and not str(path).startswith("/vsi") and not Path(path).is_file():
        raise InputFileError(f"{what} file {str(path)!r} does not exist")
    return str(path)


def make_sr_grid(lr_path: str | Path, ratio: int, region: BaseGeometry | None = None) -> SRGrid:
    """The SR grid of an LR raster, cropped to ``region`` (in the raster's CRS) when given.

    Raises:
        InputFileError: missing file, no CRS, rotated/sheared transform.
        ConfigError: ``region`` does not overlap the raster.
    """
    lr_path = check_file(lr_path, "LR")
    with open_rasters([lr_path]) as (src,):
        if src.crs is None:
            raise InputFileError(f"LR raster {lr_path!r} has no CRS; georeference it first "
                                 "(e.g. gdal_edit.py -a_srs EPSG:4326)")
        t = src.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise InputFileError(f"LR raster {lr_path!r} must be north-up without rotation, got "
                                 f"transform {tuple(t)[:6]}")
        crs, height, width = src.crs, src.height, src.width
    row0, col0, rows, cols = 0, 0, height, width
    if region is not None:
        left, bottom, right, top = region.bounds
        full = box(t.c, t.f + height * t.e, t.c + width * t.a, t.f)
        if region.is_empty or not full.intersects(region):
            raise ConfigError(f"the region (bounds {tuple(round(v, 6) for v in region.bounds)}) "
                              f"lies outside the LR raster (bounds "
                              f"{tuple(round(v, 6) for v in full.bounds)})")
        col0 = max(0, math.floor((left - t.c) / t.a))
        col1 = min(width, math.ceil((right - t.c) / t.a))
        row0 = max(0, math.floor((top - t.f) / t.e))
        row1 = min(height, math.ceil((bottom - t.f) / t.e))
        rows, cols = row1 - row0, col1 - col0
    transform = t @ Affine.translation(col0, row0)
    return SRGrid(crs, transform, (rows, cols), (row0, col0), int(ratio))


def parse_constant(value: str | Path) -> float | None:
    """The number of a manifest-style ``constant:VALUE`` input, else ``None`` (a file)."""
    text = str(value)
    if not text.startswith("constant:"):
        return None
    try:
        return float(text.split(":", 1)[1])
    except ValueError as exc:
        raise ConfigError(f"{text!r}: expected constant:NUMBER (e.g. constant:0)") from exc


def aux_reader(name: str, path: str | Path) -> ModalityReader:
    """A build-pipeline reader for auxiliary modality ``name`` from one file, or a constant
    layer for ``constant:VALUE`` (the manifest's stand-in for a modality one does not have).

    Resampling onto the SR grid, threshold and fill follow the modality's declaration
    (:data:`deeplightmd.modalities.BUILTIN`): DMO bands 1–7 bilinear with the file's own
    scale/offset tags (surface reflectance when the file carries them); DEM in metres; ISP as a
    0/1 mask, the area fraction thresholded at 0.5.
    """
    if name not in AUX_NAMES:
        raise ConfigError(f"unknown auxiliary modality {name!r}; expected one of {AUX_NAMES}")
    spec = BUILTIN[name]
    common = {"resampling": spec.resampling_up, "threshold": spec.threshold, "fill": spec.fill,
              "bands": spec.bands, "dtype": spec.dtype}
    constant = parse_constant(path)
    if constant is not None:
        return ModalityReader(name=name, constant=constant, **common)
    bands = tuple(range(1, spec.bands + 1))
    scaling = {"scale": "file", "offset": "file"} if name == "dmo" else {}
    with open_rasters([path]) as (src,):
        if src.count < len(bands):
            raise InputFileError(f"{name.upper()} raster {str(path)!r} has {src.count} band(s), "
                                 f"{len(bands)} expected")
    return ModalityReader(name=name, paths=(str(path),), read=RasterRead(bands=bands, **scaling),
                          **common)


#: most pixels of an auxiliary raster read at full resolution by the all-nodata check (larger
#: extents are read decimated)
NODATA_CHECK_PIXELS = 1 << 24


def check_aux_coverage(name: str, path: str | Path, grid: SRGrid) -> None:
    """Raise :class:`InputFileError` unless ``path`` covers the SR grid's footprint with data.

    The raster's bounds are transformed into the LR CRS (densified edges) and must contain the
    grid bounds up to half an LR pixel; over that extent at least one pixel must be valid (not
    nodata, not NaN) — an all-nodata auxiliary would be read as zeros.
    """
    with open_rasters([path]) as (src,):
        if src.crs is None:
            raise InputFileError(f"{name.upper()} raster {str(path)!r} has no CRS")
        bounds = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
        _check_bounds(name, path, bounds, grid)
        if not _has_valid_pixel(src, transform_bounds(grid.crs, src.crs, *grid.bounds,
                                                      densify_pts=21)):
            raise InputFileError(f"{name.upper()} raster {str(path)!r} holds only nodata over "
                                 f"the LR extent {tuple(round(v, 6) for v in grid.bounds)}; "
                                 "expected valid values there")


def _has_valid_pixel(src: DatasetReader, bounds: tuple[float, float, float, float]) -> bool:
    """True when band 1 of ``src`` has a valid (unmasked, finite) pixel inside ``bounds``."""
    window = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
    window = window.intersection(Window(0, 0, src.width, src.height))
    h, w = max(int(window.height), 1), max(int(window.width), 1)
    scale = max(1.0, math.sqrt(h * w / NODATA_CHECK_PIXELS))
    data = src.read(1, window=window, masked=True,
                    out_shape=(max(1, int(h / scale)), max(1, int(w / scale))))
    values = np.ma.masked_invalid(data.astype(np.float64))
    return bool(values.count())


def _check_bounds(name: str, path: str | Path, bounds: tuple[float, ...], grid: SRGrid) -> None:
    tol = 0.5 * abs(grid.lr_transform.a)
    left, bottom, right, top = grid.bounds
    if (bounds[0] > left + tol or bounds[1] > bottom + tol or bounds[2] < right - tol
            or bounds[3] < top - tol):
        raise InputFileError(f"{name.upper()} raster {str(path)!r} does not cover the LR extent: "
                             f"it spans {tuple(round(v, 6) for v in bounds)}, the LR extent is "
                             f"{tuple(round(v, 6) for v in grid.bounds)} (in the LR CRS)")


def read_lr(src: DatasetReader, grid: SRGrid, row: int, col: int, height: int,
            width: int) -> tuple[np.ndarray, np.ndarray]:
    """LR radiance ``(h, w)`` float32 of a grid window (invalid → 0) and its validity mask."""
    x = src.read(1, window=grid.lr_window(row, col, height, width), masked=True)
    data = np.asarray(x.filled(np.nan), dtype=np.float32)
    valid = np.isfinite(data)
    return np.where(valid, data, 0.0).astype(np.float32), valid
