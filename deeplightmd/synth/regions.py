"""Province and admin-unit polygons: three held-out test regions and the provinces around them.

* Test regions ``Anhui``, ``Beijing``, ``Taiwan`` (synthetic stand-ins): irregular discs of about
  ``test_region_km`` across, centred on the largest settlements that lie at least one clip plus
  the region's radius inside the world, and two clips apart from each other.
* The rest of the world box is split by a wiggly east-west line into two non-test provinces,
  ``Henan`` (north) and ``Hubei`` (south).
* Admin units (counties): Voronoi cells of random seeds (about one per 150 km², at least two per
  province), clipped to each province, so they tile every province exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box, mapping
from shapely.ops import unary_union
from shapely.prepared import prep

from deeplightmd.errors import ConfigError
from deeplightmd.synth.config import ExtentConfig
from deeplightmd.synth.grids import LONLAT

TEST_REGIONS = ("Anhui", "Beijing", "Taiwan")
OTHER_PROVINCES = ("Henan", "Hubei")  # north, south
ADMIN_AREA_KM2 = 150.0
#: held-out regions are cut into at least this many units (townships), so that the correlation of
#: per-unit light sums — the aggregate SDG studies compute — rests on more than a couple of points
MIN_TEST_UNITS = 8


def _irregular_disc(x: float, y: float, radius: float, rng: np.random.Generator) -> Polygon:
    """A star-shaped polygon whose radius wobbles within ±25 % of ``radius``."""
    theta = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)
    r = np.ones_like(theta)
    for order in (2, 3, 4):
        r += rng.uniform(0.02, 0.08) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    return Polygon(np.column_stack([x + radius * r * np.cos(theta),
                                    y + radius * r * np.sin(theta)]))


def place_test_regions(extent: ExtentConfig, work_crs: str, candidates_m: np.ndarray,
                       rng: np.random.Generator) -> dict[str, Polygon]:
    """Test-region polygons (lon/lat) centred on candidate points (metres, best first)."""
    to_m = Transformer.from_crs(LONLAT, work_crs, always_xy=True)
    to_ll = Transformer.from_crs(work_crs, LONLAT, always_xy=True)
    world_m = shapely.transform(box(*extent.bounds_lonlat).segmentize(0.01),
                                lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))
    radius = extent.test_region_km * 500.0
    clip = extent.clip_km * 1000.0
    inner = world_m.buffer(-(clip + 1.1 * radius))
    if inner.is_empty:
        raise ConfigError(f"the world ({extent.width_lr}x{extent.height_lr} LR pixels) is too "
                          f"small for test regions of {extent.test_region_km} km one clip from "
                          f"its edge")
    lo_x, lo_y, hi_x, hi_y = inner.bounds
    extra = np.column_stack([rng.uniform(lo_x, hi_x, 400), rng.uniform(lo_y, hi_y, 400)])
    chosen: list[np.ndarray] = []
    for pt in np.vstack([candidates_m, extra]):
        if not inner.contains(Point(pt)):
            continue
        if all(np.hypot(*(pt - c)) >= 2.2 * radius + 2 * clip for c in chosen):
            chosen.append(pt)
        if len(chosen) == len(TEST_REGIONS):
            break
    if len(chosen) < len(TEST_REGIONS):
        raise ConfigError("no room for three separated test regions; enlarge extent.width_lr/"
                          "height_lr or reduce extent.test_region_km")
    polys = {}
    for name, (x, y) in zip(TEST_REGIONS, chosen, strict=True):
        poly_m = _irregular_disc(x, y, radius, rng)
        polys[name] = shapely.transform(
            poly_m, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    return polys


def split_provinces(bounds: tuple[float, float, float, float], tests: dict[str, Polygon],
                    rng: np.random.Generator) -> dict[str, Any]:
    """The non-test provinces: the world box minus test regions, split by a wiggly line."""
    west, south, east, north = bounds
    rest = box(west, south, east, north).difference(unary_union(list(tests.values())))
    x = np.linspace(west, east, 33)
    y = 0.5 * (south + north) + 0.12 * (north - south) * np.cumsum(rng.normal(0, 0.25, x.size))
    y = np.clip(y, south + 0.2 * (north - south), north - 0.2 * (north - south))
    cutter = Polygon([*LineString(np.column_stack([x, y])).coords,
                      (east + 1, y[-1]), (east + 1, north + 1), (west - 1, north + 1),
                      (west - 1, y[0])])
    north_part = rest.intersection(cutter)
    south_part = rest.difference(cutter)
    return {OTHER_PROVINCES[0]: north_part, OTHER_PROVINCES[1]: south_part}


def admin_units(province: Any, lat: float, rng: np.random.Generator,
                min_units: int = 2) -> list[Any]:
    """Voronoi cells of random seeds inside ``province`` (lon/lat), clipped to it.

    One cell per ``ADMIN_AREA_KM2`` of area, and at least ``min_units`` cells.
    """
    km_per_deg_x = 111.32 * np.cos(np.radians(lat))
    area_km2 = float(province.area * km_per_deg_x * 111.32)
    n = max(round(area_km2 / ADMIN_AREA_KM2), min_units)
    minx, miny, maxx, maxy = province.bounds
    seeds: list[tuple[float, float]] = []
    prepared = prep(province)
    while len(seeds) < n:
        pts = np.column_stack([rng.uniform(minx, maxx, 4 * n), rng.uniform(miny, maxy, 4 * n)])
        seeds += [tuple(p) for p in pts if prepared.contains(Point(p))][:n - len(seeds)]
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=province.envelope.buffer(1.0))
    parts = [province.intersection(cell) for cell in cells.geoms]
    return [p for p in parts if not p.is_empty and p.area > 0]


def _feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def write_regions(out_dir: Path, bounds: tuple[float, float, float, float],
                  tests: dict[str, Polygon], rng: np.random.Generator,
                  regions_file: str = "regions.geojson",
                  admin_file: str = "admin.geojson") -> dict[str, Any]:
    """Write provinces and admin units as GeoJSON (EPSG:4326); return all province geometries."""
    provinces: dict[str, Any] = dict(tests)
    provinces.update(split_provinces(bounds, tests, rng))
    lat = 0.5 * (bounds[1] + bounds[3])
    region_features, admin_features = [], []
    admin_id = 1
    for name, geom in provinces.items():
        is_test = name in TEST_REGIONS
        region_features.append({"type": "Feature",
                                "properties": {"name": name, "test": is_test},
                                "geometry": mapping(geom)})
        units = admin_units(geom, lat, rng, MIN_TEST_UNITS if is_test else 2)
        kind = "township" if is_test else "county"
        for k, unit in enumerate(units):
            admin_features.append({"type": "Feature",
                                   "properties": {"admin_id": admin_id,
                                                  "name": f"{name} {kind} {k + 1}",
                                                  "province": name},
                                   "geometry": mapping(unit)})
            admin_id += 1
    (out_dir / regions_file).write_text(json.dumps(_feature_collection(region_features)))
    (out_dir / admin_file).write_text(json.dumps(_feature_collection(admin_features)))
    return provinces
