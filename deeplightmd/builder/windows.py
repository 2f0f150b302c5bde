"""Clip windows: source footprints in the target CRS, the domain, and the clips that fit in it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from shapely import prepared
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from deeplightmd.builder.grid import Bounds, TargetGrid

#: points per edge when a rectangle is reprojected (curved edges stay accurate)
DENSIFY = 64


def transform_geometry(geom: BaseGeometry, src_crs: CRS | str, dst_crs: CRS | str) -> BaseGeometry:
    """``geom`` reprojected (edges densified so curved images of straight lines stay exact)."""
    geom = geom.segmentize(max(geom.length / (4 * DENSIFY), 1e-9)) if geom.length else geom
    t = Transformer.from_crs(CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs),
                             always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def footprint(bounds: Sequence[float], src_crs: CRS | str, dst_crs: CRS | str) -> Polygon:
    """The footprint of a raster with ``bounds`` (its CRS) as a polygon in ``dst_crs``."""
    return transform_geometry(box(*bounds), src_crs, dst_crs)


def coverage(footprints: dict[str, list[BaseGeometry]]) -> BaseGeometry:
    """Where every modality has data: the intersection over modalities of each one's union."""
    common = None
    for parts in footprints.values():
        union = unary_union(parts)
        common = union if common is None else common.intersection(union)
    return common


def domain_bounds(cover: BaseGeometry, bounds_lonlat: Sequence[float] | None,
                  dst_crs: CRS | str) -> Bounds:
    """Target-CRS bounds of the build domain: ``bounds_lonlat`` if given, else the coverage."""
    if bounds_lonlat is not None:
        return footprint(bounds_lonlat, "EPSG:4326", dst_crs).bounds
    return cover.bounds


def clip_boxes(grid: TargetGrid) -> list[tuple[int, int, Polygon]]:
    """Every clip of the lattice as ``(row, col, box)``."""
    return [(r, c, box(*grid.clip_bounds(r, c)))
            for r in range(grid.n_rows) for c in range(grid.n_cols)]


def clips_within(grid: TargetGrid, area: BaseGeometry,
                 domain: Bounds | None = None) -> list[tuple[int, int]]:
    """Clips lying entirely inside ``area`` (and inside ``domain`` when given)."""
    inside = prepared.prep(area)
    dom = box(*domain) if domain is not None else None
    return [(r, c) for r, c, b in clip_boxes(grid)
            if inside.contains(b) and (dom is None or dom.buffer(1e-6).contains(b))]


def clips_touching(grid: TargetGrid, clips: Iterable[tuple[int, int]],
                   geoms: Sequence[BaseGeometry]) -> set[tuple[int, int]]:
    """Those ``clips`` whose box intersects (touches included) any of ``geoms``."""
    preps = [prepared.prep(g) for g in geoms]
    return {(r, c) for r, c in clips
            if any(p.intersects(box(*grid.clip_bounds(r, c))) for p in preps)}


def clip_mask(grid: TargetGrid, clips: Iterable[tuple[int, int]]) -> np.ndarray:
    """Boolean ``(n_rows, n_cols)`` array, True at ``clips``."""
    mask = np.zeros((grid.n_rows, grid.n_cols), dtype=bool)
    for r, c in clips:
        mask[r, c] = True
    return mask
