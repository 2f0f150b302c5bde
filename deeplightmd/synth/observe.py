"""Sensors: render the working-grid truth into each product's CRS and grid, and write GeoTIFFs.

* HR NTL (SDGSAT-1-like): area average onto EPSG:32650 ``hr_pixel`` m, then Gaussian noise of
  std ``sqrt(hr_noise_abs² + (hr_noise_rel·L)²)``, clipped at 0 and at ``hr_saturation``.
* LR NTL (VIIRS-DNB-like): the LR-time truth averaged onto the HR-pixel working grid,
  :func:`deeplightmd.sensor.blur_and_shift`, area average (``Resampling.average``) onto the
  EPSG:4326 15″ grid, then :func:`deeplightmd.sensor.radiometric` with a seeded generator.
* DMO (Landsat-8-OLI-like): per-class reflectance spectra with texture, hillshade and noise,
  bilinear onto two UTM scenes (zones 49 and 50) that overlap across 114°E.
* DEM (SRTM-like): bilinear onto EPSG:4326, rounded to int16 metres.
* ISP (GAIA-like): nearest onto an Albers equal-area 30 m grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject, transform_geom
from shapely.geometry import box, mapping

from deeplightmd.daytime import SENSORS
from deeplightmd.sensor import SensorModel, block_mean, blur_and_shift, radiometric
from deeplightmd.synth.config import DmoConfig, LightsConfig
from deeplightmd.synth.grids import LONLAT, Grid
from deeplightmd.synth.landcover import BARE, BUILT, CROPLAND, FOREST, WATER

NTL_NODATA = -9999.0
DEM_NODATA = -32768
ISP_NODATA = 255
DMO_NODATA = 0
#: the synthetic DMO is written as Landsat-8 OLI Collection-2 L2 surface reflectance (uint16 DN)
DMO_SENSOR = SENSORS["landsat8-oli"]
DMO_SCALE = DMO_SENSOR.scale
DMO_OFFSET = DMO_SENSOR.offset
DMO_BANDS = DMO_SENSOR.bands

#: surface reflectance of each land-cover class in OLI bands 1-7 (typical library values)
SPECTRA: dict[int, tuple[float, ...]] = {
    WATER: (0.045, 0.050, 0.060, 0.040, 0.020, 0.012, 0.008),
    FOREST: (0.020, 0.028, 0.055, 0.035, 0.300, 0.150, 0.070),
    CROPLAND: (0.035, 0.045, 0.085, 0.075, 0.320, 0.220, 0.120),
    BARE: (0.090, 0.110, 0.160, 0.220, 0.280, 0.340, 0.280),
    BUILT: (0.100, 0.115, 0.135, 0.150, 0.200, 0.240, 0.210),
}

#: GeoTIFF creation options: tiled 256², ZSTD; GDAL writes no timestamp, so output is
#: byte-identical for identical data
TIFF_OPTIONS = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256,
                "compress": "zstd", "zstd_level": 3, "bigtiff": "if_safer"}


def warp(src: np.ndarray, src_grid: Grid, dst_grid: Grid, resampling: Resampling,
         dst_dtype: str = "float32", dst_nodata: float | None = None) -> np.ndarray:
    """Reproject a 2-D or 3-D array from ``src_grid`` onto ``dst_grid``."""
    shape = ((src.shape[0],) if src.ndim == 3 else ()) + dst_grid.shape
    dst = np.zeros(shape, dtype=dst_dtype)
    if dst_nodata is not None:
        dst.fill(dst_nodata)
    reproject(src, dst, src_transform=src_grid.transform, src_crs=src_grid.rasterio_crs,
              dst_transform=dst_grid.transform, dst_crs=dst_grid.rasterio_crs,
              resampling=resampling, dst_nodata=dst_nodata, num_threads=2)
    return dst


def write_geotiff(path: Path, data: np.ndarray, grid: Grid, nodata: float,
                  descriptions: tuple[str, ...] | None = None,
                  scales: tuple[float, ...] | None = None,
                  offsets: tuple[float, ...] | None = None,
                  tags: dict[str, str] | None = None) -> None:
    """Write a tiled, ZSTD-compressed GeoTIFF (2-D data is one band)."""
    bands = data[None] if data.ndim == 2 else data
    predictor = 3 if np.issubdtype(bands.dtype, np.floating) else 2
    if bands.dtype == np.uint8:
        predictor = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", width=grid.width, height=grid.height, count=bands.shape[0],
                       dtype=bands.dtype.name, crs=grid.rasterio_crs, transform=grid.transform,
                       nodata=nodata, predictor=predictor, **TIFF_OPTIONS) as dst:
        dst.write(bands)
        if descriptions:
            dst.descriptions = descriptions
        if scales:
            dst.scales = scales
        if offsets:
            dst.offsets = offsets
        if tags:
            dst.update_tags(**tags)


def render_hr_ntl(truth: np.ndarray, work: Grid, hr_grid: Grid, cfg: LightsConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """HR product: area average onto the HR grid, HR sensor noise, saturation (float32)."""
    hr = warp(truth, work, hr_grid, Resampling.average).astype(np.float64)
    std = np.sqrt(cfg.hr_noise_abs**2 + (cfg.hr_noise_rel * hr) ** 2)
    hr = hr + rng.standard_normal(hr.shape) * std
    return np.clip(hr, 0.0, cfg.hr_saturation).astype(np.float32)


def render_lr_ntl(truth_lr_time: np.ndarray, work: Grid, lr_grid: Grid, ratio_work: int,
                  model: SensorModel, rng: np.random.Generator) -> np.ndarray:
    """LR product through :mod:`deeplightmd.sensor` (PSF, shift, area aggregation, radiometry)."""
    hr_work = block_mean(truth_lr_time, ratio_work) if ratio_work > 1 else truth_lr_time
    a = work.transform
    hr_grid = Grid(work.crs, type(a)(a.a * ratio_work, 0.0, a.c, 0.0, a.e * ratio_work, a.f),
                   work.width // ratio_work, work.height // ratio_work)
    blurred = blur_and_shift(hr_work, model).astype(np.float32)
    signal = warp(blurred, hr_grid, lr_grid, Resampling.average)
    return radiometric(signal, model, rng).astype(np.float32)


def hillshade(elevation: np.ndarray, pixel: float, cfg: DmoConfig) -> np.ndarray:
    """Illumination factor: ``diffuse + (1 - diffuse) · cos(incidence) / sin(sun elevation)``."""
    gy, gx = np.gradient(elevation.astype(np.float32), pixel)
    # image rows run south: north-facing gradient is -gy
    az = np.radians(cfg.sun_azimuth_deg)
    alt = np.radians(cfg.sun_elevation_deg)
    sx, sy, sz = np.sin(az) * np.cos(alt), np.cos(az) * np.cos(alt), np.sin(alt)
    nx, ny = -gx, gy  # surface normal (-dz/dx, -dz/dy_north) with dz/dy_north = -gy
    cos_i = (nx * sx + ny * sy + sz) / np.sqrt(nx**2 + ny**2 + 1.0)
    direct = np.clip(cos_i, 0.0, None) / sz
    return (cfg.diffuse_fraction + (1.0 - cfg.diffuse_fraction) * direct).astype(np.float32)


def scene_footprint(grid: Grid, west: float, south: float, east: float, north: float) -> np.ndarray:
    """Pixels of ``grid`` inside the lon/lat box (a densified polygon rasterised)."""
    poly = box(west, south, east, north).segmentize(0.005)
    geom = transform_geom(LONLAT, grid.rasterio_crs, mapping(poly))
    return rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform,
                     fill=0, dtype="uint8").astype(bool)


def reflectance_band(band: int, cover: np.ndarray, shade: np.ndarray, texture: np.ndarray,
                     built_mix: np.ndarray, greenhouses: np.ndarray, cfg: DmoConfig,
                     rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance of one OLI band on the working grid (float32)."""
    table = np.zeros(max(SPECTRA) + 1, dtype=np.float32)
    for code, spectrum in SPECTRA.items():
        table[code] = spectrum[band]
    refl = table[cover]
    # sub-pixel built-up share mixes the urban spectrum into the natural cover
    refl = refl + built_mix * (np.float32(SPECTRA[BUILT][band]) - refl)
    refl = np.where(greenhouses, 0.5 * refl + 0.5 * np.float32(SPECTRA[BARE][band]) * 1.2, refl)
    refl = refl * (1.0 + cfg.texture * texture) * shade
    refl = refl + rng.normal(0.0, cfg.noise, cover.shape).astype(np.float32)
    return np.clip(refl, 0.0, 1.0).astype(np.float32)


def to_dn(refl: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Reflectance → uint16 DN (``DN·scale + offset``); ``0`` (nodata) outside ``valid``."""
    dn = np.clip(np.rint((refl - DMO_OFFSET) / DMO_SCALE), 1, 65535).astype(np.uint16)
    dn[~valid] = DMO_NODATA
    return dn

