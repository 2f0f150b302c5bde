"""Raster grids of the synthetic world: the metric working grid and each product's grid.

The truth is simulated on one *working grid* (a local transverse Mercator centred on the world,
``work_pixel`` metres); every product is rendered onto its own grid in its own CRS, the
rectangle of that CRS that bounds the world's lon/lat box (snapped outward to the pixel size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from deeplightmd.synth.config import ExtentConfig

LONLAT = "EPSG:4326"
UTM49 = "EPSG:32649"
UTM50 = "EPSG:32650"
ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +datum=WGS84 +units=m +no_defs"


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS string, affine transform and size in pixels."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units."""
        return (self.transform.a, -self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        left, top = self.transform.c, self.transform.f
        return (left, top + self.transform.e * self.height, left + self.transform.a * self.width,
                top)

    @property
    def rasterio_crs(self) -> CRS:
        """The CRS as a rasterio object."""
        return CRS.from_user_input(self.crs)

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x[w], y[h])`` in CRS units."""
        x = self.transform.c + self.transform.a * (np.arange(self.width) + 0.5)
        y = self.transform.f + self.transform.e * (np.arange(self.height) + 0.5)
        return x, y


def working_crs(extent: ExtentConfig) -> str:
    """The local transverse Mercator CRS of the working grid (metres, centred on the world)."""
    return (f"+proj=tmerc +lat_0={extent.center_lat} +lon_0={extent.center_lon} +k=1 +x_0=0 "
            f"+y_0=0 +datum=WGS84 +units=m +no_defs")


def snapped_grid(crs: str, bounds: tuple[float, float, float, float], pixel: float,
                 multiple: int = 1) -> Grid:
    """The grid of pixel ``pixel`` covering ``bounds``, snapped outward.

    Its sizes are a multiple of ``multiple``.
    """
    left, bottom, right, top = bounds
    step = pixel * multiple
    left = math.floor(left / step) * step
    top = math.ceil(top / step) * step
    width = math.ceil((right - left) / step) * multiple
    height = math.ceil((top - bottom) / step) * multiple
    return Grid(crs, Affine(pixel, 0.0, left, 0.0, -pixel, top), width, height)


def product_grid(crs: str, lonlat_bounds: tuple[float, float, float, float],
                 pixel: float) -> Grid:
    """The grid in projected ``crs`` bounding the lon/lat box ``lonlat_bounds``."""
    return snapped_grid(crs, transform_bounds(LONLAT, crs, *lonlat_bounds, densify_pts=101),
                        pixel)


def lonlat_grid(lonlat_bounds: tuple[float, float, float, float], arcsec: float) -> Grid:
    """The EPSG:4326 grid of ``arcsec`` pixels exactly covering ``lonlat_bounds``."""
    west, south, east, north = lonlat_bounds
    pixel = arcsec / 3600.0
    width = round((east - west) / pixel)
    height = round((north - south) / pixel)
    return Grid(LONLAT, Affine(pixel, 0.0, west, 0.0, -pixel, north), width, height)


def working_grid(extent: ExtentConfig, coarse_factor: int, products: list[Grid]) -> Grid:
    """The working grid: the union of all product grids in the working CRS plus 1 km.

    Product rectangles are rotated relative to the working CRS (UTM and Albers grid
    convergence), so the union of their footprints, not the world box, sets the size. Sizes are
    multiples of the HR/working pixel ratio and of ``coarse_factor``, so block aggregation onto
    the HR and coarse grids is exact.
    """
    crs = working_crs(extent)
    boxes = np.array([transform_bounds(g.rasterio_crs, crs, *g.bounds, densify_pts=101)
                      for g in products])
    margin = 1000.0
    left, bottom = boxes[:, 0].min() - margin, boxes[:, 1].min() - margin
    right, top = boxes[:, 2].max() + margin, boxes[:, 3].max() + margin
    ratio = round(extent.hr_pixel / extent.work_pixel)
    multiple = ratio * coarse_factor // math.gcd(ratio, coarse_factor)
    return snapped_grid(crs, (left, bottom, right, top), extent.work_pixel, multiple)
