"""The target grid: one CRS, an HR pixel size, the LR/HR ratio and a lattice of square clips.

The clip lattice is anchored on multiples of the clip size in the target CRS, so two builds over
overlapping domains share clip boundaries. Every clip's HR grid (``ratio · lr_clip`` pixels of
``hr_pixel_size``) and LR grid (``lr_clip`` pixels of ``ratio · hr_pixel_size``) cover exactly the
same footprint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pyproj
from affine import Affine
from rasterio.crs import CRS

from deeplightmd.errors import ConfigError

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class TargetGrid:
    """A clip lattice in a projected CRS (row 0 at the top, column 0 at the left)."""

    crs_wkt: str
    hr_pixel_size: float
    ratio: int
    lr_clip: int
    origin_x: float
    origin_y: float
    n_rows: int
    n_cols: int

    @property
    def hr_clip(self) -> int:
        """HR clip side in pixels."""
        return self.ratio * self.lr_clip

    @property
    def lr_pixel_size(self) -> float:
        """LR pixel size in CRS units."""
        return self.ratio * self.hr_pixel_size

    @property
    def clip_size(self) -> float:
        """Clip side in CRS units."""
        return self.hr_clip * self.hr_pixel_size

    @property
    def crs(self) -> CRS:
        """The target CRS."""
        return CRS.from_wkt(self.crs_wkt)

    def clip_id(self, row: int, col: int) -> int:
        """``row · n_cols + col``."""
        return row * self.n_cols + col

    def clip_bounds(self, row: int, col: int) -> Bounds:
        """``(left, bottom, right, top)`` of clip ``(row, col)``."""
        left = self.origin_x + col * self.clip_size
        top = self.origin_y - row * self.clip_size
        return (left, top - self.clip_size, left + self.clip_size, top)

    def hr_transform(self, row: int, col: int) -> Affine:
        """Affine transform of the clip's HR grid."""
        left, _, _, top = self.clip_bounds(row, col)
        return Affine(self.hr_pixel_size, 0.0, left, 0.0, -self.hr_pixel_size, top)

    def lr_transform(self, row: int, col: int) -> Affine:
        """Affine transform of the clip's LR grid (same footprint as the HR grid)."""
        left, _, _, top = self.clip_bounds(row, col)
        return Affine(self.lr_pixel_size, 0.0, left, 0.0, -self.lr_pixel_size, top)

    def snap_to_lr(self, bounds: Bounds) -> Bounds:
        """``bounds`` grown outwards to the LR pixel lattice of this grid."""
        p = self.lr_pixel_size
        left = self.origin_x + math.floor((bounds[0] - self.origin_x) / p) * p
        right = self.origin_x + math.ceil((bounds[2] - self.origin_x) / p) * p
        top = self.origin_y - math.floor((self.origin_y - bounds[3]) / p) * p
        bottom = self.origin_y - math.ceil((self.origin_y - bounds[1]) / p) * p
        return (left, bottom, right, top)

    def to_dict(self) -> dict[str, Any]:
        """The ``grid`` root attribute of a store."""
        d = asdict(self)
        d["hr_clip"] = self.hr_clip
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("crs_wkt", "hr_pixel_size", "ratio", "lr_clip",
                                        "origin_x", "origin_y", "n_rows", "n_cols")})


def parse_crs(text: str) -> CRS:
    """A projected CRS in metres from a PROJ string, EPSG code or WKT (docs/manifest.md).

    Raises:
        ConfigError: one line, for text that is no CRS, a geographic CRS (degrees: clips would
            not be square on the ground, nor sums of light comparable) or other linear units.
    """
    try:  # pyproj first: GDAL would also log its own "ERROR 1: PROJ ..." line to stderr
        pyproj.CRS.from_user_input(text)
        crs = CRS.from_user_input(text)
    except Exception as exc:  # CRSError, with a multi-line message
        raise ConfigError(f"grid.crs {text!r} is not a valid CRS (expected a PROJ string, "
                          "EPSG:n or WKT of a projected CRS in metres)") from exc
    if not crs.is_projected:
        raise ConfigError(f"grid.crs must be a projected CRS in metres, got {text!r} "
                          "(geographic, in degrees)")
    units, factor = crs.linear_units_factor
    if factor != 1.0:
        raise ConfigError(f"grid.crs must be a projected CRS in metres, got {text!r} "
                          f"(in {units})")
    return crs


def make_grid(crs: CRS, hr_pixel_size: float, ratio: int, lr_clip: int,
              domain: Bounds) -> TargetGrid:
    """The clip lattice covering ``domain`` (target-CRS bounds), snapped to the clip size.

    Raises:
        ConfigError: the domain is smaller than one clip.
    """
    size = hr_pixel_size * ratio * lr_clip
    left, bottom, right, top = domain
    ox = math.floor(left / size) * size
    oy = math.ceil(top / size) * size
    n_cols = math.ceil((right - ox) / size - 1e-9)
    n_rows = math.ceil((oy - bottom) / size - 1e-9)
    # same relative tolerance as the clip counts above: a domain computed as ``left + size``
    # may come out a few ulps short of one clip in floating point
    if right - left < size * (1 - 1e-9) or top - bottom < size * (1 - 1e-9):
        raise ConfigError(f"the domain ({right - left:.0f} x {top - bottom:.0f} m) is smaller than "
                          f"one clip ({size:.0f} m)")
    return TargetGrid(crs.to_wkt(), float(hr_pixel_size), int(ratio), int(lr_clip),
                      float(ox), float(oy), int(n_rows), int(n_cols))
