"""The target grid and its clip windows on a hand-made lattice: clip geometry, transforms, snapping,
footprints, coverage, domain and which clips fit."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import Point, box

from deeplightmd.builder.grid import TargetGrid, make_grid
from deeplightmd.builder.manifest import ALBERS_CHINA
from deeplightmd.builder.windows import (
    DENSIFY,
    clip_boxes,
    clip_mask,
    clips_touching,
    clips_within,
    coverage,
    domain_bounds,
    footprint,
    transform_geometry,
)
from deeplightmd.errors import ConfigError

ALBERS = CRS.from_user_input(ALBERS_CHINA)
#: 3 rows x 4 columns of 10 x 10 clips, top-left corner (0, 30)
GRID = TargetGrid(ALBERS.to_wkt(), hr_pixel_size=1.0, ratio=2, lr_clip=5, origin_x=0.0,
                  origin_y=30.0, n_rows=3, n_cols=4)


def test_clip_boxes_are_row_major_and_tile_the_lattice():
    boxes = clip_boxes(GRID)
    assert [(r, c) for r, c, _ in boxes] == [(r, c) for r in range(3) for c in range(4)]
    assert boxes[0][2].bounds == (0.0, 20.0, 10.0, 30.0)
    assert boxes[6][2].bounds == (20.0, 10.0, 30.0, 20.0)  # row 1, column 2
    assert sum(b.area for _, _, b in boxes) == 12 * 100.0


def test_clips_within_keeps_clips_entirely_inside_the_area_and_domain():
    area = box(0, 0, 25, 30)  # columns 0-1 fully, column 2 half
    assert clips_within(GRID, area) == [(r, c) for r in range(3) for c in range(2)]
    # a domain that ends exactly on a clip edge keeps that clip (1e-6 slack); one short does not
    assert clips_within(GRID, area, domain=(0, 10, 20, 30)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert clips_within(GRID, area, domain=(0, 10.001, 20, 30)) == [(0, 0), (0, 1)]
    assert clips_within(GRID, box(100, 100, 200, 200)) == []


def test_clips_touching_counts_shared_edges():
    clips = [(r, c) for r in range(3) for c in range(4)]
    touching = clips_touching(GRID, clips, [box(30, 25, 35, 26)])  # on column 3's left edge
    assert touching == {(0, 2), (0, 3)}
    assert clips_touching(GRID, clips, [Point(10, 20)]) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert clips_touching(GRID, [(2, 0)], [box(30, 25, 35, 26), Point(5, 5)]) == {(2, 0)}
    assert clips_touching(GRID, clips, [box(100, 100, 101, 101)]) == set()


def test_clip_mask():
    mask = clip_mask(GRID, [(0, 1), (2, 3)])
    assert mask.shape == (3, 4) and mask.dtype == bool
    assert np.argwhere(mask).tolist() == [[0, 1], [2, 3]]


def test_coverage_is_the_intersection_of_each_modalitys_union():
    cover = coverage({"a": [box(0, 0, 2, 2), box(2, 0, 4, 2)], "b": [box(1, 0, 3, 3)],
                      "c": [box(-5, -5, 10, 1.5)]})
    assert cover.equals(box(1, 0, 3, 1.5))
    assert coverage({}) is None


def test_footprints_are_reprojected_with_densified_edges():
    lonlat = (110.0, 30.0, 111.0, 31.0)
    fp = footprint(lonlat, "EPSG:4326", ALBERS)
    # every edge of a 1 x 1 box cut into 64 pieces (DENSIFY), closed ring
    assert len(fp.exterior.coords) == 4 * DENSIFY + 1
    t = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True)
    for lon, lat in [(110.0, 30.0), (111.0, 31.0), (110.5, 30.0)]:
        x, y = t.transform(lon, lat)
        assert min(Point(x, y).distance(Point(p)) for p in fp.exterior.coords) < 1e-6
    back = transform_geometry(fp, ALBERS, "EPSG:4326")
    assert back.symmetric_difference(box(*lonlat)).area < 1e-12
    point = transform_geometry(Point(110.0, 30.0), "EPSG:4326", ALBERS)  # length 0: no segments
    assert point.coords[0] == pytest.approx(t.transform(110.0, 30.0))


def test_domain_bounds_from_lonlat_or_the_coverage():
    cover = box(1, 2, 3, 4)
    assert domain_bounds(cover, None, ALBERS) == (1.0, 2.0, 3.0, 4.0)
    lonlat = (110.0, 30.0, 111.0, 31.0)
    assert domain_bounds(cover, lonlat, ALBERS) == footprint(lonlat, "EPSG:4326", ALBERS).bounds


def test_clip_geometry_and_transforms_by_hand():
    assert (GRID.hr_clip, GRID.lr_pixel_size, GRID.clip_size) == (10, 2.0, 10.0)
    assert GRID.clip_id(1, 2) == 6 and GRID.clip_id(2, 3) == 11
    assert GRID.clip_bounds(1, 2) == (20.0, 10.0, 30.0, 20.0)
    assert GRID.hr_transform(1, 2) == Affine(1.0, 0.0, 20.0, 0.0, -1.0, 20.0)
    assert GRID.lr_transform(1, 2) == Affine(2.0, 0.0, 20.0, 0.0, -2.0, 20.0)
    assert GRID.crs == ALBERS


def test_snap_to_lr_grows_outwards_by_hand():
    assert GRID.snap_to_lr((3.5, 11.2, 7.1, 26.9)) == (2.0, 10.0, 8.0, 28.0)
    assert GRID.snap_to_lr((4.0, 12.0, 8.0, 28.0)) == (4.0, 12.0, 8.0, 28.0)  # on the lattice


def test_grid_dict_round_trip():
    d = GRID.to_dict()
    assert d == {"crs_wkt": ALBERS.to_wkt(), "hr_pixel_size": 1.0, "ratio": 2, "lr_clip": 5,
                 "origin_x": 0.0, "origin_y": 30.0, "n_rows": 3, "n_cols": 4, "hr_clip": 10}
    assert TargetGrid.from_dict(d) == GRID


@pytest.mark.parametrize(("domain", "origin", "shape"), [
    ((5.0, 3.0, 37.0, 28.0), (0.0, 30.0), (3, 4)),
    ((-15.0, -25.0, -5.0, -2.0), (-20.0, 0.0), (3, 2)),
    ((10.0, 10.0, 20.0, 20.0), (10.0, 20.0), (1, 1)),  # exactly one clip on the lattice
])
def test_make_grid_snaps_the_origin_and_counts_clips(domain, origin, shape):
    grid = make_grid(ALBERS, 1.0, 2, 5, domain)
    assert (grid.origin_x, grid.origin_y) == origin and (grid.n_rows, grid.n_cols) == shape
    assert (grid.hr_pixel_size, grid.ratio, grid.lr_clip) == (1.0, 2, 5)
    assert isinstance(grid.n_rows, int) and isinstance(grid.hr_pixel_size, float)


@pytest.mark.parametrize("domain", [(0.0, 0.0, 9.0, 30.0), (0.0, 0.0, 30.0, 9.99),
                                    (100.0, 200.0, 109.0, 230.0), (100.0, 200.0, 130.0, 209.0)])
def test_make_grid_refuses_a_domain_smaller_than_one_clip(domain):
    w, h = domain[2] - domain[0], domain[3] - domain[1]
    with pytest.raises(ConfigError, match=rf"the domain \({w:.0f} x {h:.0f} m\) is smaller than "
                                          r"one clip \(10 m\)"):
        make_grid(ALBERS, 1.0, 2, 5, domain)


def test_make_grid_keeps_the_crs_and_accepts_a_domain_within_its_tolerance_of_one_clip():
    """A domain a relative 1e-9 short of one clip (``left + size`` rounded down in floating
    point) is one clip, on either axis; the grid carries the CRS it was made for."""
    short = 10.0 * (1 - 1e-9)
    for domain in [(0.0, 0.0, short, 10.0), (0.0, 0.0, 10.0, short)]:
        grid = make_grid(ALBERS, 1.0, 2, 5, domain)
        assert (grid.n_rows, grid.n_cols) == (1, 1)
        assert grid.crs == ALBERS.to_wkt()
