"""Polygon layers (region, admin units) and light sums per admin unit.

A light sum is the sum of radiance over the pixels of a unit, expressed in **LR-pixel units**
(nW·cm⁻²·sr⁻¹ × LR pixels): the SR sum is divided by ``ratio²``, so it is directly comparable to
summing the LR raster over the same footprint (and equal to it with ``--preserve-lr-sum``).
Pixels are assigned to the unit containing their centre; nodata pixels are skipped. Sums are
accumulated band by band while the raster is written, so they never need the whole raster.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.predict.grid import check_file

#: fields tried, in order, for unit names when none is given
NAME_FIELDS = ("name", "NAME", "Name", "name_en", "NAME_1", "NAME_2", "shapeName")


def read_polygons(path: str | Path, crs: CRS | str, what: str) -> gpd.GeoDataFrame:
    """A polygon layer reprojected to ``crs`` (a layer without CRS is taken as EPSG:4326)."""
    path = check_file(path, what)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio/fiona raise many types
        raise InputFileError(f"cannot read {what} file {path!r}: "
                             f"{str(exc).splitlines()[0]}") from exc
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        raise InputFileError(f"{what} file {path!r} has no polygon")
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return gdf.to_crs(crs)


def name_field_of(gdf: gpd.GeoDataFrame, name_field: str | None, what: str) -> str | None:
    """The field holding unit names.

    ``name_field`` (checked) or the first of :data:`NAME_FIELDS`.
    """
    if name_field is not None:
        if name_field not in gdf.columns:
            raise ConfigError(f"{what} layer has no field {name_field!r}; fields are "
                              f"{sorted(c for c in gdf.columns if c != 'geometry')}")
        return name_field
    return next((f for f in NAME_FIELDS if f in gdf.columns), None)


def unit_names(gdf: gpd.GeoDataFrame, name_field: str | None) -> list[str]:
    """Names of the features (their field value, or ``unit <i>`` without a name field)."""
    if name_field is None:
        return [f"unit {i + 1}" for i in range(len(gdf))]
    return [str(v) for v in gdf[name_field]]


def select_region(gdf: gpd.GeoDataFrame, name: str | None, name_field: str | None
                  ) -> tuple[BaseGeometry, gpd.GeoDataFrame]:
    """The union of the features named ``name`` (all features when ``name`` is None)."""
    if name is not None:
        field_ = name_field_of(gdf, name_field, "region")
        if field_ is None:
            raise ConfigError("the region layer has no name field; pass --name-field")
        names = gdf[field_].astype(str)
        gdf = gdf[names == name]
        if gdf.empty:
            raise ConfigError(f"no region named {name!r} in field {field_!r}; names are "
                              f"{sorted(set(names))[:20]}")
    geom = gdf.geometry.union_all() if hasattr(gdf.geometry, "union_all") \
        else gdf.geometry.unary_union
    return geom, gdf


@dataclass
class LightSums:
    """Per-unit sums of SR and LR radiance, accumulated band by band.

    Args:
        names: one name per unit (unit ids are ``1 … len(names)``).
        geometries: unit polygons in the raster CRS.
        ratio: SR pixels per LR pixel (sums are reported in LR-pixel units).
    """

    names: list[str]
    geometries: list[BaseGeometry]
    ratio: int
    sr: np.ndarray = field(init=False)
    lr: np.ndarray = field(init=False)
    pixels: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.names) + 1
        self.sr, self.lr, self.pixels = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)

    def add(self, sr: np.ndarray, lr_up: np.ndarray, valid: np.ndarray,
            transform: Affine) -> None:
        """Add a band of SR radiance, the LR radiance repeated onto it, and its valid mask."""
        ids = features.rasterize(((g, i + 1) for i, g in enumerate(self.geometries)),
                                 out_shape=sr.shape, transform=transform, fill=0, dtype="int32")
        ids = np.where(valid, ids, 0).ravel()
        n = len(self.sr)
        self.sr += np.bincount(ids, np.where(valid, sr, 0).ravel().astype(np.float64), n)
        self.lr += np.bincount(ids, np.where(valid, lr_up, 0).ravel().astype(np.float64), n)
        self.pixels += np.bincount(ids, minlength=n)

    def rows(self) -> list[dict[str, float | int | str]]:
        """One record per unit: name, SR pixels, SR sum and LR sum (LR-pixel units)."""
        scale = float(self.ratio) ** 2
        return [{"unit": name, "pixels": int(self.pixels[i + 1]),
                 "sr_sum": float(self.sr[i + 1] / scale), "lr_sum": float(self.lr[i + 1] / scale)}
                for i, name in enumerate(self.names)]

    def to_csv(self) -> str:
        """The table as CSV text (header ``unit,pixels,sr_sum,lr_sum``)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["unit", "pixels", "sr_sum", "lr_sum"],
                                lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({**row, "sr_sum": f"{row['sr_sum']:.6g}",
                             "lr_sum": f"{row['lr_sum']:.6g}"})
        return buf.getvalue()

    def to_text(self) -> str:
        """An aligned plain-text table for the terminal."""
        rows = self.rows()
        width = max([len("unit"), *(len(r["unit"]) for r in rows)])
        lines = [f"{'unit':<{width}}  {'SR pixels':>10}  {'SR sum':>12}  {'LR sum':>12}"]
        lines += [f"{r['unit']:<{width}}  {r['pixels']:>10d}  {r['sr_sum']:>12.6g}  "
                  f"{r['lr_sum']:>12.6g}" for r in rows]
        return "\n".join(lines)


def light_sums_from_layer(gdf: gpd.GeoDataFrame, name_field: str | None, ratio: int,
                          what: str) -> LightSums:
    """A :class:`LightSums` over every feature of a (reprojected) polygon layer."""
    field_ = name_field_of(gdf, name_field, what)
    return LightSums(unit_names(gdf, field_), list(gdf.geometry), ratio)
