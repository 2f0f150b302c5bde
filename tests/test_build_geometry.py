"""Geometric and radiometric correctness of the build reader, on small rasters made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio import features
from rasterio.crs import CRS
from shapely.geometry import Polygon

from deeplightmd.builder.grid import make_grid
from deeplightmd.builder.manifest import ALBERS_CHINA
from deeplightmd.builder.read import RasterRead, fill_invalid, read_to_grid
from deeplightmd.errors import ConfigError, InputFileError

ALBERS = CRS.from_string(ALBERS_CHINA)
HR = 60.0


def _write(path: Path, data: np.ndarray, crs: str | None, transform: Affine,
           nodata: float | None = None) -> Path:
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
    return path


def _albers_window(lon: float, lat: float, size: int) -> Affine:
    """A 60 m window of ``size`` px centred near ``(lon, lat)``, on the 60 m lattice."""
    x, y = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True).transform(lon, lat)
    left = np.floor(x / HR) * HR - size // 2 * HR
    top = np.floor(y / HR) * HR + size // 2 * HR
    return Affine(HR, 0, left, 0, -HR, top)


def _centroid(img: np.ndarray, t: Affine) -> tuple[float, float, float]:
    rows, cols = np.indices(img.shape)
    xs, ys = t @ (cols + 0.5, rows + 0.5)
    w = img.sum()
    return float((xs * img).sum() / w), float((ys * img).sum() / w), float(w)


@pytest.mark.parametrize("src_crs, pixel, square", [
    ("EPSG:32650", 10.0, 300.0),     # UTM 50N, 10 m (like an HR NTL product)
    ("EPSG:32649", 30.0, 600.0),     # UTM 49N across the zone boundary (like a Landsat scene)
    ("EPSG:4326", 1 / 3600, 1 / 120),  # geographic, 1″ (like SRTM)
])
def test_bright_square_lands_within_a_tenth_of_a_pixel(tmp_path, src_crs, pixel, square):
    lon, lat = 113.93, 31.02
    to_src = Transformer.from_crs("EPSG:4326", src_crs, always_xy=True)
    cx, cy = to_src.transform(lon, lat)
    n = round(6 * square / pixel)
    left, top = cx - n / 2 * pixel, cy + n / 2 * pixel
    src_t = Affine(pixel, 0, left, 0, -pixel, top)
    data = np.zeros((n, n), dtype="float32")
    k = round(square / pixel)
    r0 = c0 = (n - k) // 2 + 3   # off-centre on purpose
    data[r0:r0 + k, c0:c0 + k] = 100.0
    path = _write(tmp_path / "src.tif", data, src_crs, src_t)
    # expected: the square's centre, transformed exactly to the target CRS
    sx, sy = src_t @ (c0 + k / 2, r0 + k / 2)
    ex, ey = Transformer.from_crs(src_crs, ALBERS, always_xy=True).transform(sx, sy)
    dst_t = _albers_window(lon, lat, 128)
    out = read_to_grid(path, ALBERS, dst_t, (128, 128), "average")[0]
    gx, gy, _ = _centroid(np.nan_to_num(out), dst_t)
    assert abs(gx - ex) < 0.1 * HR and abs(gy - ey) < 0.1 * HR, (gx - ex, gy - ey)
    # a shifted target window moves the square by exactly that many pixels
    out2 = read_to_grid(path, ALBERS, dst_t @ Affine.translation(5, -3), (128, 128), "average")[0]
    gx2, gy2, _ = _centroid(np.nan_to_num(out2), dst_t @ Affine.translation(5, -3))
    assert abs(gx2 - gx) < 0.1 * HR and abs(gy2 - gy) < 0.1 * HR


def test_area_average_conserves_total_radiance(tmp_path):
    """Σ radiance·area over a footprint agrees between a 30 m UTM source and the 60 m grid."""
    rng = np.random.default_rng(3)
    n, pixel = 600, 30.0
    yy, xx = np.mgrid[0:n, 0:n]
    data = np.zeros((n, n))
    for _ in range(25):  # Gaussian blobs of lights well inside the raster
        y0, x0 = rng.uniform(150, 450, 2)
        data += rng.uniform(5, 80) * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2)
                                            / (2 * rng.uniform(2, 15) ** 2))
    to_src = Transformer.from_crs("EPSG:4326", "EPSG:32650", always_xy=True)
    cx, cy = to_src.transform(113.95, 31.0)
    src_t = Affine(pixel, 0, cx - n / 2 * pixel, 0, -pixel, cy + n / 2 * pixel)
    path = _write(tmp_path / "ntl.tif", data.astype("float32"), "EPSG:32650", src_t)
    dst_t = _albers_window(113.95, 31.0, 400)
    out = np.nan_to_num(read_to_grid(path, ALBERS, dst_t, (400, 400), "average", oversample=4)[0])
    total_src = data.sum() * pixel**2
    total_dst = out.astype(np.float64).sum() * HR**2
    assert abs(total_dst / total_src - 1) < 0.01
    # per clip footprint (64 HR px = 8 LR px): the LR read, the HR read and the exact integral
    # of the source over the footprint polygon (fractional pixel coverage) agree within 1 %
    to_utm = Transformer.from_crs(ALBERS, "EPSG:32650", always_xy=True)
    sub = 8  # supersampling of the source grid for fractional coverage
    checked = 0
    for r0, c0 in [(100, 100), (150, 200), (200, 140), (230, 230)]:
        clip_t = dst_t @ Affine.translation(c0, r0)
        lr = read_to_grid(path, ALBERS, clip_t @ Affine.scale(8), (8, 8), "average", oversample=8)
        corners = [clip_t @ xy for xy in [(0, 0), (64, 0), (64, 64), (0, 64)]]
        poly = Polygon([to_utm.transform(x, y) for x, y in corners])
        cover = features.rasterize([(poly, 1)], out_shape=(n * sub, n * sub),
                                   transform=src_t @ Affine.scale(1 / sub), dtype="uint8")
        frac = cover.reshape(n, sub, n, sub).mean(axis=(1, 3))
        exact = float((data * frac).sum() * pixel**2)
        if exact < 1e3:
            continue
        checked += 1
        lr_total = float(lr.astype(np.float64).sum()) * (8 * HR) ** 2
        hr_total = float(out[r0:r0 + 64, c0:c0 + 64].astype(np.float64).sum()) * HR**2
        assert abs(lr_total / exact - 1) < 0.01, (lr_total, exact)
        assert abs(hr_total / exact - 1) < 0.01, (hr_total, exact)
    assert checked >= 3


def test_lr_and_hr_clips_share_the_footprint():
    grid = make_grid(ALBERS, 60, 8, 8, (800_000.0, 3_300_000.0, 840_000.0, 3_340_000.0))
    assert grid.clip_size == 3840.0 and grid.origin_x % grid.clip_size == 0
    for row, col in [(0, 0), (3, 5), (grid.n_rows - 1, grid.n_cols - 1)]:
        hr, lr = grid.hr_transform(row, col), grid.lr_transform(row, col)
        hr_corners = (hr @ (0, 0), hr @ (grid.hr_clip, grid.hr_clip))
        lr_corners = (lr @ (0, 0), lr @ (grid.lr_clip, grid.lr_clip))
        assert hr_corners == lr_corners
        left, bottom, right, top = grid.clip_bounds(row, col)
        assert hr_corners == ((left, top), (right, bottom))
    # the lattice covers the domain and its clips tile it without gaps
    assert grid.clip_bounds(0, 1)[0] == grid.clip_bounds(0, 0)[2]
    assert grid.origin_x <= 800_000 and grid.origin_y >= 3_340_000


def test_scale_offset_nodata_and_multi_file_priority(tmp_path):
    t = Affine(30, 0, 830_000, 0, -30, 3_330_000)
    a = np.full((2, 40, 40), 10_000, dtype="uint16")
    a[:, :, 20:] = 0  # nodata on the right half of scene A
    b = np.full((2, 40, 40), 20_000, dtype="uint16")
    pa = _write(tmp_path / "a.tif", a, ALBERS_CHINA, t, nodata=0)
    pb = _write(tmp_path / "b.tif", b, ALBERS_CHINA, t, nodata=0)
    spec = RasterRead(bands=(1, 2), scale=2.75e-05, offset=-0.2)
    out = read_to_grid([pa, pb], ALBERS, Affine(60, 0, 830_000, 0, -60, 3_330_000), (20, 20),
                       "bilinear", spec)
    assert out.shape == (2, 20, 20)
    assert np.allclose(out[:, :, :9], 10_000 * 2.75e-05 - 0.2, atol=1e-5)   # scene A
    assert np.allclose(out[:, :, 11:], 20_000 * 2.75e-05 - 0.2, atol=1e-5)  # gap filled by B
    only_a = read_to_grid(pa, ALBERS, Affine(60, 0, 830_000, 0, -60, 3_330_000), (20, 20),
                          "bilinear", spec)
    assert np.isnan(only_a[:, :, 11:]).all()
    filled = fill_invalid(only_a, "nearest")
    assert not np.isnan(filled).any() and np.allclose(filled[:, :, 15], filled[:, :, 8])
    assert (fill_invalid(only_a, "zero")[:, :, 15] == 0).all()


def test_reader_errors(tmp_path):
    t = Affine(30, 0, 830_000, 0, -30, 3_330_000)
    nocrs = _write(tmp_path / "nocrs.tif", np.ones((8, 8), "float32"), None, t)
    with pytest.raises(InputFileError, match="has no CRS"):
        read_to_grid(nocrs, ALBERS, t, (4, 4))
    one = _write(tmp_path / "one.tif", np.ones((8, 8), "float32"), ALBERS_CHINA, t)
    with pytest.raises(InputFileError, match=r"has 1 band\(s\)"):
        read_to_grid(one, ALBERS, t, (4, 4), spec=RasterRead(bands=(1, 2)))
    with pytest.raises(InputFileError, match="cannot open raster"):
        read_to_grid(tmp_path / "missing.tif", ALBERS, t, (4, 4))


def test_domain_of_exactly_one_clip_survives_float_rounding():
    """``top - (top - size)`` is a few ulps short of ``size`` here (found by hypothesis)."""
    size = 30.0 * 8 * 3
    top = -2096465.9878739717
    assert top - (top - size) < size
    grid = make_grid(CRS.from_user_input(ALBERS_CHINA), 30.0, 8, 3, (0.0, top - size, size, top))
    assert (grid.n_rows, grid.n_cols) == (2, 1)  # one column; the top is off the lattice: 2 rows
    assert (grid.origin_x, grid.origin_y) == (0.0, -2911 * size)
    with pytest.raises(ConfigError, match="smaller than one clip"):
        make_grid(CRS.from_user_input(ALBERS_CHINA), 30.0, 8, 3, (0.0, top - 0.9 * size, size, top))


def test_domain_of_whole_clips_a_few_ulps_long_has_no_extra_clip():
    """``0.1 · 3 · 2 = 0.6000000000000001`` is a few ulps beyond 3 clips of ``0.1 · 2 = 0.2``:
    still exactly 3 × 3 clips (the tolerance in the clip counts), not 4."""
    size, right = 0.1 * 2, 0.1 * 3 * 2
    assert right / size > 3
    grid = make_grid(CRS.from_user_input(ALBERS_CHINA), 0.1, 2, 1, (0.0, -right, right, 0.0))
    assert (grid.n_rows, grid.n_cols, grid.origin_x, grid.origin_y) == (3, 3, 0.0, 0.0)
