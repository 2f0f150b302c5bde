"""Regional metrics: total light, lit-area IoU, admin sums, masked pixel metrics, seams."""

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.metrics import (
    METRICS,
    MetricConfig,
    MetricInputError,
    TileGrid,
    compute_regional_metrics,
    pixel_metrics,
)


def field(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10.0 + 5.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 4) / 0.07


def quarters(n: int = 64) -> np.ndarray:
    admin = np.zeros((n, n), dtype=np.int32)
    h = n // 2
    admin[:h, :h], admin[:h, h:], admin[h:, :h], admin[h:, h:] = 1, 2, 3, 4
    return admin


def test_total_light_error_counts_only_the_mask():
    hr = np.ones((32, 32))
    sr = 1.25 * hr
    mask = np.zeros((32, 32), bool)
    mask[4:14, 4:14] = True
    sr[~mask] = 1e6  # outside the province: ignored
    out = compute_regional_metrics(sr, hr, mask, None)
    assert out["total_light_rel_error"] == pytest.approx(0.25)


def test_nan_outside_the_mask_is_ignored_inside_it_is_an_error():
    hr = field()
    mask = np.zeros(hr.shape, bool)
    mask[10:50, 10:50] = True
    sr = np.where(mask, hr, np.nan)
    out = compute_regional_metrics(sr, np.where(mask, hr, np.nan), mask, None)
    assert out["rmse"] == 0.0
    sr[20, 20] = np.nan
    with pytest.raises(MetricInputError, match="sr must be finite inside the mask, found 1"):
        compute_regional_metrics(sr, hr, mask, None)


def test_lit_iou_on_hand_made_masks():
    t = MetricConfig().lit_threshold
    hr = np.zeros((16, 16))
    sr = np.zeros((16, 16))
    hr[0:8] = t + 1   # 128 lit pixels
    sr[4:12] = t + 1  # 128 lit, 64 shared
    sr[15] = t        # exactly at the threshold: not lit
    out = compute_regional_metrics(sr, hr, None, None)
    assert out["lit_iou"] == pytest.approx(64 / 192)
    mask = np.zeros((16, 16), bool)
    mask[:, 6:10] = True  # the same rows, a quarter of the columns
    assert compute_regional_metrics(sr, hr, mask, None)["lit_iou"] == pytest.approx(16 / 48)
    dark = compute_regional_metrics(np.zeros((16, 16)), np.zeros((16, 16)), None, None)
    assert dark["lit_iou"] == 1.0


def test_admin_sums_and_their_agreement():
    hr = field()
    admin = quarters()
    same = compute_regional_metrics(hr, hr, None, admin)
    assert same["admin_r"] == pytest.approx(1.0) and same["admin_r2"] == pytest.approx(1.0)
    assert same["admin_n"] == 4
    assert same["admin_sums"]["admin_id"] == [1, 2, 3, 4]
    np.testing.assert_allclose(same["admin_sums"]["hr"], [hr[:32, :32].sum(), hr[:32, 32:].sum(),
                                                          hr[32:, :32].sum(), hr[32:, 32:].sum()])
    double = compute_regional_metrics(2 * hr, hr, None, admin)
    assert double["admin_r"] == pytest.approx(1.0)  # r ignores scale ...
    assert double["admin_r2"] < 0.0                 # ... R² (identity line) does not
    mask = np.zeros(hr.shape, bool)
    mask[:32] = True  # units 3 and 4 fall outside the province
    assert compute_regional_metrics(hr, hr, mask, admin)["admin_n"] == 2


def test_masked_pixel_metrics_equal_those_of_the_masked_region():
    hr = field()
    sr = hr + np.random.default_rng(1).normal(0, 2, hr.shape)
    mask = np.zeros(hr.shape, bool)
    mask[16:48, 8:40] = True
    out = compute_regional_metrics(sr, hr, mask, None)
    crop = pixel_metrics(sr[16:48, 8:40], hr[16:48, 8:40])
    for k in ("psnr", "rmse", "mae", "psnr_log", "rmse_log"):
        assert out[k] == pytest.approx(crop[k], rel=1e-12), k
    assert set(out) <= set(METRICS)


def test_tile_grid_from_tiling():
    grid = TileGrid.from_tiling((64, 40), tile=24, stride=16)
    assert grid.rows == (16, 24, 32, 40, 56)  # starts 0, 16, 32, 40 (last moved back)
    assert grid.cols == (16, 24)              # starts 0, 16 (ends at 40)
    assert TileGrid.from_tiling((16, 16), 32, 32) == TileGrid((), ())
    with pytest.raises(MetricInputError, match="need 1 <= stride <= tile, got tile=8, stride=9"):
        TileGrid.from_tiling((64, 64), 8, 9)


def test_seam_ratio_is_one_when_seamless_and_large_with_a_tile_offset():
    n, tile = 128, 32
    smooth = field(n, seed=2)
    grid = TileGrid.from_tiling((n, n), tile, tile)
    seamless = compute_regional_metrics(smooth, smooth, None, None, tile_grid=grid)
    assert seamless["seam_ratio"] == pytest.approx(1.0, abs=0.15)
    ty, tx = np.indices((n, n)) // tile
    offset = smooth + 2.0 * ((ty + tx) % 2)  # every other tile 2 nW brighter
    seamy = compute_regional_metrics(offset, smooth, None, None, tile_grid=grid)
    assert seamy["seam_ratio"] > 2.0
    assert seamy["seam_ratio_hr"] == pytest.approx(seamless["seam_ratio"])


def test_regional_input_errors():
    with pytest.raises(MetricInputError, match="mask selects no pixel"):
        compute_regional_metrics(np.ones((16, 16)), np.ones((16, 16)), np.zeros((16, 16)), None)
    with pytest.raises(MetricInputError, match="integer unit ids, got dtype float64"):
        compute_regional_metrics(np.ones((16, 16)), np.ones((16, 16)), None, np.ones((16, 16)))
