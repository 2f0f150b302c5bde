"""Edge-case contracts of every metric (docs/metrics.md, "Edge cases"): each degenerate input
gives the documented value or raises the documented error."""

import math

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.metrics import (
    MetricConfig,
    MetricInputError,
    TileGrid,
    aggregate,
    bootstrap_ci,
    compute_local_metrics,
    compute_regional_metrics,
    lr_consistency,
    paired_wilcoxon,
    piqe,
    pixel_metrics,
    psnr,
    rmse,
    ssim,
)
from benchmarks.metrics.regional import agreement, seam_ratio
from deeplightmd.sensor import SensorModel, degrade


def smooth(n: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10.0 + 40.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 3)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_data_range_is_an_error(bad):
    x = smooth()
    for metric in (psnr, ssim):
        with pytest.raises(MetricInputError, match=f"data_range must be a finite number > 0, "
                                                   f"got {bad}"):
            metric(x, x + 1.0, bad)


def test_channel_first_and_plain_inputs_give_the_same_numbers():
    hr = smooth(48)
    sr = hr + np.random.default_rng(1).normal(0, 1, hr.shape)
    mask = np.zeros(hr.shape, bool)
    mask[4:40, 6:44] = True
    admin = np.zeros(hr.shape, np.int32)
    admin[:24], admin[24:] = 1, 2
    admin[:, 30:] += 2
    grid = TileGrid.from_tiling(hr.shape, 16, 16)
    plain = compute_regional_metrics(sr, hr, mask, admin, tile_grid=grid)
    stacked = compute_regional_metrics(sr[None], hr[None], mask[None], admin[None],
                                       tile_grid=grid)
    assert stacked == plain and plain["admin_n"] == 4
    model = SensorModel()
    lr = degrade(hr, model)
    assert lr_consistency(sr[None], lr[None], model) == lr_consistency(sr, lr, model)
    assert compute_local_metrics(sr[None], hr[None], lr, model) == \
        compute_local_metrics(sr, hr, lr, model)
    assert piqe(sr[None]) == piqe(sr)


def test_zero_totals_give_nan_and_dark_images_agree_on_lit_area():
    hr = np.zeros((16, 16))
    sr = np.full((16, 16), 3.0)
    out = compute_regional_metrics(sr, hr, None, None)
    assert math.isnan(out["total_light_rel_error"])  # relative to a zero HR total: undefined
    assert out["lit_iou"] == 0.0                       # SR lit everywhere, HR nowhere
    dark = compute_regional_metrics(hr, hr, None, None)
    assert math.isnan(dark["total_light_rel_error"]) and dark["lit_iou"] == 1.0
    assert dark["psnr"] == MetricConfig().psnr_cap_db and dark["ssim"] == 1.0
    model = SensorModel()
    lrc = lr_consistency(np.zeros((32, 32)), np.zeros((4, 4)), model)
    assert math.isnan(lrc["lrc_total_rel_bias"]) and lrc["lrc_mae"] > 0  # offset of the sensor


def two_units(values: dict[int, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """A 1-row image and its admin labels, unit ``k`` holding ``values[k]``."""
    labels = [k for k, v in values.items() for _ in v]
    image = [x for v in values.values() for x in v]
    return np.array([image], float), np.array([labels], np.int32)


def test_admin_agreement_with_two_units_is_exact():
    hr = np.array([10.0, 30.0])
    assert agreement(np.array([20.0, 40.0]), hr) == (1.0, 0.0)   # R² = 1 − 200/200
    assert agreement(np.array([40.0, 20.0]), hr) == (-1.0, -4.0)  # R² = 1 − 1000/200


def test_admin_agreement_is_nan_with_too_few_units_or_equal_sums():
    nan2 = (True, True)
    isnan = lambda rr: (math.isnan(rr[0]), math.isnan(rr[1]))  # noqa: E731
    assert isnan(agreement(np.array([]), np.array([]))) == nan2
    assert isnan(agreement(np.array([5.0]), np.array([7.0]))) == nan2
    # equal sums, also when they differ only by float rounding (0.1 + 0.2 != 0.3)
    noisy = np.array([0.1 + 0.2, 0.3, 0.3])
    assert len(set(noisy)) == 2 and isnan(agreement(noisy, noisy)) == nan2
    admin = np.zeros((16, 16), np.int32)
    admin[:8, :8], admin[:8, 8:], admin[8:, :8], admin[8:, 8:] = 1, 2, 3, 4
    out = compute_regional_metrics(np.ones((16, 16)), np.ones((16, 16)), None, admin)
    assert out["admin_n"] == 4 and out["admin_sums"]["hr"] == [64.0] * 4
    assert isnan((out["admin_r"], out["admin_r2"])) == nan2
    # constant SR sums against varying HR sums: no correlation, but R² is defined
    r, r2 = agreement(np.array([5.0, 5.0, 5.0]), np.array([1.0, 2.0, 3.0]))
    assert math.isnan(r) and r2 == pytest.approx(1.0 - (16 + 9 + 4) / 2.0)
    # no unit inside the province mask
    admin = np.zeros((16, 16), np.int32)
    admin[8:] = 7
    mask = np.zeros((16, 16), bool)
    mask[:8] = True
    out = compute_regional_metrics(np.ones((16, 16)), np.ones((16, 16)), mask, admin)
    assert out["admin_n"] == 0 and out["admin_sums"] == {"admin_id": [], "sr": [], "hr": []}
    assert isnan((out["admin_r"], out["admin_r2"])) == nan2


def test_admin_sums_count_only_pixels_inside_the_mask():
    img = np.arange(1.0, 17.0).reshape(4, 4)
    admin = np.array([[1, 1, 2, 2]] * 4, np.int32)
    mask = np.ones((4, 4), bool)
    mask[0] = False
    sums = compute_regional_metrics(np.tile(img, (4, 4)), np.tile(img, (4, 4)),
                                    np.tile(mask, (4, 4)), np.tile(admin, (4, 4)))["admin_sums"]
    # 16 tiles of 4 x 4: unit 1 = columns 0-1 of rows 1-3 of each, unit 2 = columns 2-3
    assert sums["admin_id"] == [1, 2]
    assert sums["hr"] == [16 * (5 + 6 + 9 + 10 + 13 + 14), 16 * (7 + 8 + 11 + 12 + 15 + 16)]
    with pytest.raises(MetricInputError, match=r"^admin labels must be >= 0 \(0 = no unit\)$"):
        compute_regional_metrics(np.tile(img, (4, 4)), np.tile(img, (4, 4)), None,
                                 -np.tile(admin, (4, 4)))


def step_image(n: int = 8) -> np.ndarray:
    """n × n: x[i, j] = i, plus 10 from row n/2 on (a tile edge at row n/2)."""
    i = np.indices((n, n))[0].astype(float)
    return i + 10.0 * (i >= n // 2)


def test_seam_ratio_by_hand_with_and_without_a_province_mask():
    x = step_image()
    rows = TileGrid((4,), ())
    # no mask: 8 seam pairs of 11; the rest: 48 vertical pairs of 1 and 56 horizontal of 0
    assert seam_ratio(x, rows, np.ones((8, 8), bool)) == pytest.approx(11 / (48 / 104))
    mask = np.ones((8, 8), bool)
    mask[3, :2] = False  # two pixels above the edge outside the province
    expected = 11 / (46 / 100)  # 6 seam pairs of 11; 46 vertical and 54 horizontal others
    assert seam_ratio(x, rows, mask) == pytest.approx(expected)
    # in a mosaic holding NaN outside the province (16 x 16, edge at row 8): 14 seam pairs of
    # 11; 222 vertical pairs of 1 and 238 horizontal pairs of 0 elsewhere
    big = np.ones((16, 16), bool)
    big[7, :2] = False
    hr = np.where(big, step_image(16), np.nan)
    out = compute_regional_metrics(hr, hr, big, None, tile_grid=TileGrid((8,), ()))
    assert out["seam_ratio"] == pytest.approx(11 / (222 / 460)) == out["seam_ratio_hr"]
    # the same along columns
    assert seam_ratio(x.T, TileGrid((), (4,)), mask.T) == pytest.approx(expected)
    assert seam_ratio(x.T, rows, mask.T) == 0.0  # no step across row 4: a seam-free edge


def test_seam_ratio_is_nan_when_a_set_is_empty():
    x = step_image()
    full = np.ones((8, 8), bool)
    assert math.isnan(seam_ratio(x, TileGrid((), ()), full))     # no interior edge
    assert math.isnan(seam_ratio(x, TileGrid((0, 8), ()), full))  # edges on the border only
    off = full.copy()
    off[3] = False  # the province leaves out the row above the edge: no seam pair
    assert math.isnan(seam_ratio(x, TileGrid((4,), ()), off))
    every = TileGrid(tuple(range(1, 8)), tuple(range(1, 8)))  # every pair is a seam pair
    assert math.isnan(seam_ratio(x, every, full))
    assert math.isnan(seam_ratio(np.ones((8, 8)), TileGrid((4,), ()), full))  # flat image


@pytest.mark.parametrize(("n", "tile", "stride", "edges"), [
    (64, 32, 16, (16, 32, 48)),   # exact fit: starts 0, 16, 32, no extra tile
    (70, 32, 32, (32, 38, 64)),   # starts 0, 32 and the last one moved back to 38
    (40, 24, 16, (16, 24)),       # starts 0, 16: the second tile already ends at 40
    (33, 32, 1, (1, 32)),         # starts 0, 1
    (4, 1, 1, (1, 2, 3)),         # one-pixel tiles: every row is an edge
    (32, 32, 8, ()),              # one tile covers the image: no interior edge
    (20, 32, 32, ()),             # tile larger than the image
    (10, 8, 4, (2, 8)),           # one regular start (0), the last tile moved back to 2
])
def test_from_tiling_last_tile_edge_rule(n, tile, stride, edges):
    grid = TileGrid.from_tiling((n, 5 * n), tile, stride)
    assert grid.rows == edges
    assert grid.cols == TileGrid.from_tiling((5 * n, 5 * n), tile, stride).rows


@pytest.mark.parametrize(("tile", "stride"), [(0, 0), (8, 0), (8, 9)])
def test_from_tiling_rejects_bad_strides(tile, stride):
    with pytest.raises(MetricInputError, match=f"got tile={tile}, stride={stride}"):
        TileGrid.from_tiling((64, 64), tile, stride)


def test_degenerate_masks():
    hr = smooth(24)
    sr = hr + 1.0
    one = np.zeros(hr.shape, bool)
    one[12, 12] = True
    assert rmse(sr + one * 4.0, hr, one) == 5.0  # one pixel: its own error
    with pytest.raises(MetricInputError, match="mask selects no pixel"):
        pixel_metrics(sr, hr, mask=np.zeros(hr.shape, bool))
    with pytest.raises(MetricInputError, match=r"mask must have shape \(24, 24\), got \(24, 23\)"):
        pixel_metrics(sr, hr, mask=np.ones((24, 23), bool))
    border = np.zeros(hr.shape, bool)
    border[:5] = True  # only pixels within 5 px of the border, where SSIM is not averaged
    with pytest.raises(MetricInputError, match="no pixel at least 5 px inside the image border"):
        compute_regional_metrics(sr, hr, border, None)
    inner = np.zeros(hr.shape, bool)
    inner[5:-5, 5:-5] = True
    assert ssim(sr, hr, 100.0, inner) == ssim(sr, hr, 100.0)  # the same pixels are averaged


def test_aggregation_edge_cases():
    assert aggregate([]) == {}
    with pytest.raises(MetricInputError, match="n_resamples must be >= 1, got 0"):
        bootstrap_ci([1.0, 2.0], n_resamples=0)
    for bad in (0.0, 1.0):
        with pytest.raises(MetricInputError, match="confidence must be in"):
            bootstrap_ci([1.0, 2.0], confidence=bad)
    with pytest.raises(MetricInputError, match="no finite value"):
        aggregate([{"psnr": math.nan}, {"psnr": math.inf}])
    one = paired_wilcoxon([1.0], [0.0])  # a single non-zero difference is never significant
    assert (one.p_value, one.better, one.n, one.median_difference) == (1.0, "none", 1, 1.0)
    with pytest.raises(MetricInputError, match="non-empty and finite"):
        paired_wilcoxon([], [])
    with pytest.raises(MetricInputError, match="non-empty and finite"):
        paired_wilcoxon([1.0, math.nan], [1.0, 2.0])


def test_piqe_of_images_smaller_than_a_block():
    assert piqe(np.ones((5, 5))) == 100.0      # constant: no active block
    assert piqe(np.zeros((1, 1))) == 100.0     # dark
    assert 0.0 <= piqe(np.arange(25.0).reshape(5, 5)) <= 100.0


def test_lr_consistency_by_hand():
    """``lr = D(hr) + 1``: RMSE = MAE = 1, PSNR = 10·log10(R²), bias = −N / Σ lr; dark HR
    pixels make ``D(hr)`` fall below 1, so a wrong clip range would show."""
    model = SensorModel()
    hr = smooth(32)
    hr[:16] = 0.0
    seen = degrade(hr, model).astype(np.float64)
    assert seen.min() < 1.0
    lr = seen + 1.0
    out = lr_consistency(hr, lr, model)
    assert out["lrc_rmse"] == pytest.approx(1.0) and out["lrc_mae"] == pytest.approx(1.0)
    assert out["lrc_psnr"] == pytest.approx(10 * math.log10(255.0**2))
    assert out["lrc_total_rel_bias"] == pytest.approx(-lr.size / lr.sum())
    capped = lr_consistency(hr, seen, model, MetricConfig(psnr_cap_db=60.0))
    assert capped["lrc_psnr"] == 60.0 and capped["lrc_rmse"] == 0.0
    with pytest.raises(MetricInputError, match=r"sr must be 8x the lr shape \(4, 4\), i.e. "
                                               r"\(32, 32\), got \(32, 31\)"):
        lr_consistency(hr[:, :31], lr, model)


def test_regional_ssim_sees_zeros_outside_the_mask():
    """docs: pixels outside the province are set to 0 before SSIM's windows see them."""
    hr = smooth(32)
    sr = hr + np.random.default_rng(3).normal(0, 1, hr.shape)
    mask = np.zeros(hr.shape, bool)
    mask[:, :20] = True
    out = compute_regional_metrics(np.where(mask, sr, 1e3), np.where(mask, hr, np.nan), mask,
                                   None)
    r = MetricConfig().radiance_range
    zs, zh = np.clip(np.where(mask, sr, 0.0), 0, r), np.clip(np.where(mask, hr, 0.0), 0, r)
    assert out["ssim"] == ssim(zs, zh, r, mask)
    assert out["ssim_log"] == ssim(np.log1p(zs), np.log1p(zh), math.log1p(r), mask)


def test_zero_and_dark_admin_sums():
    assert all(math.isnan(v) for v in agreement(np.zeros(3), np.zeros(3)))  # a dark province
    r, r2 = agreement(np.zeros(3), np.array([1.0, 2.0, 3.0]))  # SR dark, HR lit
    assert math.isnan(r) and r2 == pytest.approx(1.0 - 14.0 / 2.0)


def test_tile_grid_sorts_and_deduplicates_edges():
    grid = TileGrid((8, 4, 4.0), (3, 1))
    assert grid.rows == (4, 8) and grid.cols == (1, 3)


def test_smallest_ssim_image_and_log_errors_by_hand():
    x = smooth(11)
    assert ssim(x, x, 100.0) == 1.0  # 11 x 11 is the smallest image SSIM accepts
    sr = np.full((12, 12), 0.5)
    hr = np.full((12, 12), -2.0)
    sr[0, 0], hr[0, 0] = 3.0, 1.0
    out = pixel_metrics(sr, hr)
    # log space is log1p(max(x, 0)): the negative HR counts as 0, nothing is capped at R
    diff = np.full((12, 12), math.log1p(0.5))
    diff[0, 0] = math.log1p(3.0) - math.log1p(1.0)
    assert out["mae_log"] == pytest.approx(diff.mean())
    assert out["rmse_log"] == pytest.approx(math.sqrt((diff**2).mean()))
    assert out["mae"] == pytest.approx((2.0 + 143 * 2.5) / 144)  # raw values, no clipping
    big = pixel_metrics(np.full((12, 12), 1000.0), np.full((12, 12), 300.0))
    assert big["rmse_log"] == pytest.approx(math.log1p(1000.0) - math.log1p(300.0))
    assert big["psnr"] == MetricConfig().psnr_cap_db  # both clipped to R = 255: equal


def test_aggregation_passes_its_settings_and_serialises():
    rows = [{"psnr": v, "ssim": v / 100} for v in (30.0, 31.5, 29.0, 33.0, 32.0)]
    agg = aggregate(rows, confidence=0.8, n_resamples=300, seed=4)
    assert list(agg) == ["psnr", "ssim"]
    assert agg["psnr"] == bootstrap_ci([r["psnr"] for r in rows], 0.8, 300, 4)
    assert agg["psnr"].to_dict() == {"mean": agg["psnr"].mean, "ci_low": agg["psnr"].ci_low,
                                     "ci_high": agg["psnr"].ci_high, "n": 5, "confidence": 0.8}
    res = paired_wilcoxon([2.0, 3.0, 4.0], [1.0, 1.0, 1.0], alpha=0.2)
    assert set(res.to_dict()) == {"statistic", "p_value", "n", "median_difference", "better",
                                  "alpha"} and res.to_dict()["alpha"] == 0.2


def test_lr_consistency_psnr_clips_both_sides_to_the_data_range():
    """Undetected (0), in-range and saturated (> R) values on both sides, negative LR values:
    PSNR uses clip(·, 0, R) of both, RMSE/MAE the raw values; on a non-square clip."""
    model = SensorModel()
    hr = np.zeros((64, 48))
    hr[:8], hr[24:32] = 500.0, 3.0
    seen = degrade(hr, model).astype(np.float64)
    lr = seen * 0.9 + np.linspace(0.6, -0.4, seen.size).reshape(seen.shape)
    assert seen.shape == (8, 6) and (seen > 255).any() and ((seen > 0) & (seen < 1)).any()
    assert (lr < 0).any() and ((lr > 0) & (lr < 1)).any() and (lr > 255).any()
    r = 255.0
    out = lr_consistency(hr, lr, model)
    mse = np.mean((np.clip(seen, 0, r) - np.clip(lr, 0, r)) ** 2)
    assert out["lrc_psnr"] == pytest.approx(10 * math.log10(r**2 / mse))
    assert out["lrc_rmse"] == pytest.approx(math.sqrt(np.mean((seen - lr) ** 2)))
    assert out["lrc_mae"] == pytest.approx(np.mean(np.abs(seen - lr)))
    small = np.full((8, 6), 0.01)  # a total below 1 is still a total
    bias = lr_consistency(hr, small, model)["lrc_total_rel_bias"]
    assert bias == pytest.approx((seen.sum() - small.sum()) / small.sum())


def test_lr_consistency_names_the_non_finite_input():
    model = SensorModel()
    hr = smooth(32)
    lr = degrade(hr, model)
    with pytest.raises(MetricInputError, match=r"^sr must be finite, found 1 NaN/inf"):
        lr_consistency(np.where(np.arange(32 * 32).reshape(32, 32) == 3, np.nan, hr), lr, model)
    with pytest.raises(MetricInputError, match=r"^lr must be finite, found 16 NaN/inf"):
        lr_consistency(hr, np.full((4, 4), np.inf), model)


def test_bootstrap_settings_and_small_samples():
    rows = [{"psnr": v} for v in (30.0, 31.5, 29.0, 33.0, 32.0)]
    assert aggregate(rows)["psnr"] == bootstrap_ci([30.0, 31.5, 29.0, 33.0, 32.0])  # defaults
    one = bootstrap_ci([1.0, 2.0, 3.0], n_resamples=1)  # one resample: a zero-width interval
    assert one.ci_low == one.ci_high and one.n == 3
    two = bootstrap_ci([1.0, 3.0])  # two values are resampled, not a zero-width shortcut
    assert (two.mean, two.ci_low, two.ci_high, two.n) == (2.0, 1.0, 3.0, 2)
    with pytest.raises(MetricInputError, match=r"^values has no finite value to aggregate$"):
        bootstrap_ci([math.nan, math.inf])


@pytest.mark.parametrize(("a", "b", "higher", "better", "median"), [
    ([0.5] * 9, [0.0] * 9, True, "a", 0.5),         # 0 < median < 1
    ([0.5] * 9, [0.0] * 9, False, "b", 0.5),        # lower is better (RMSE): b wins
    ([0.0] * 10 + [1.0] * 9, [0.0] * 19, True, "a", 0.0),   # median 0: the mean decides
    ([1.0] * 14 + [-20.0], [0.0] * 15, True, "a", 1.0),     # the median decides, not the mean
])
def test_wilcoxon_direction_follows_the_median_then_the_mean(a, b, higher, better, median):
    res = paired_wilcoxon(a, b, higher_is_better=higher)
    assert res.p_value < 0.05 and (res.better, res.median_difference) == (better, median)


def test_wilcoxon_error_message_is_exact():
    with pytest.raises(MetricInputError, match=r"^paired values must be non-empty and finite$"):
        paired_wilcoxon([math.nan], [1.0])
    with pytest.raises(MetricInputError, match=r"^paired values must have the same length, got "
                                               r"2 and 1$"):
        paired_wilcoxon([1.0, 2.0], [1.0])


def test_a_data_range_below_one_is_valid_and_small_images_are_named():
    x = smooth(16) / 100.0
    assert psnr(x, x + 0.01, 0.5) == pytest.approx(10 * math.log10(0.25 / 1e-4))
    assert 0.0 < ssim(x, x + 0.01, 0.5) < 1.0
    with pytest.raises(MetricInputError, match=r"^SSIM needs images of at least 11x11 pixels, "
                                               r"got 8x20$"):
        ssim(np.zeros((8, 20)), np.zeros((8, 20)), 1.0)


def test_correlation_stays_within_minus_one_and_one():
    """Two units are always exactly on a line: r is ±1 even where rounding gives 1 ± 2e-16."""
    up = agreement(np.array([61.53851114812539, 38.367755426188346]),
                   np.array([99.7209935789211, 98.08353387762301]))
    down = agreement(np.array([66.78894055713512, 95.84136317779519]),
                     np.array([92.57145772144187, 74.82485033017541]))
    assert up[0] == 1.0 and down[0] == -1.0


def test_a_one_row_mosaic_is_too_small_for_ssim():
    with pytest.raises(MetricInputError, match=r"^SSIM needs images of at least 11x11 pixels, "
                                               r"got 1x20$"):
        compute_regional_metrics(np.ones((1, 20)), np.ones((1, 20)), None, None)


def test_regional_input_errors_name_the_input_exactly():
    mask = np.ones((4, 4), bool)
    with pytest.raises(MetricInputError,
                       match=r"^sr must have the mask's shape \(4, 4\), got \(3, 4\)$"):
        compute_regional_metrics(np.zeros((3, 4)), np.zeros((4, 4)), mask, None)
    hr = np.zeros((4, 4))
    hr[0, :2] = np.nan
    hr[3, 3] = np.inf
    with pytest.raises(MetricInputError,
                       match=r"^hr must be finite inside the mask, found 3 NaN/inf value\(s\)$"):
        compute_regional_metrics(np.zeros((4, 4)), hr, mask, None)


def test_regional_admin_of_another_shape_is_an_error():
    """Only a leading axis of length 1 is dropped from ``admin``; (2, H, W) is not the mask's
    shape."""
    hr = smooth(24)
    admin = np.ones((2, 24, 24), np.int64)
    with pytest.raises(MetricInputError,
                       match=r"^admin must have the mask's shape \(24, 24\), got \(2, 24, 24\)$"):
        compute_regional_metrics(hr, hr, None, admin)


def test_regional_metrics_use_the_given_config():
    hr = smooth(24)
    out = compute_regional_metrics(hr + 1.0, hr, None, None,
                                   MetricConfig(log_metrics=False, radiance_range=20.0))
    assert "psnr_log" not in out and "mae_log" not in out
    assert out["psnr"] == pixel_metrics(hr + 1.0, hr, MetricConfig(radiance_range=20.0))["psnr"]


def test_regional_metrics_are_computed_in_float64():
    """float32 mosaics give the numbers of the same values in float64 (no float32 sums)."""
    rng = np.random.default_rng(3)
    hr = rng.gamma(2.0, 30.0, size=(64, 64)).astype(np.float32)
    sr = (hr * rng.uniform(0.7, 1.3, size=hr.shape)).astype(np.float32)
    admin = np.repeat(np.arange(1, 9), 8 * 64).reshape(64, 64)
    got = compute_regional_metrics(sr, hr, None, admin)
    want = compute_regional_metrics(sr.astype(np.float64), hr.astype(np.float64), None, admin)
    for key in ("total_light_rel_error", "admin_r", "admin_r2", "rmse", "mae"):
        assert got[key] == want[key], key
    x, y = np.float32(want["admin_sums"]["sr"]), np.float32(want["admin_sums"]["hr"])
    assert agreement(x, y) == agreement(x.astype(np.float64), y.astype(np.float64))


def test_total_light_error_below_one_and_lit_threshold_is_strict():
    """The relative error is defined for any positive HR total (NaN only at 0); a pixel equal
    to the lit threshold is not lit."""
    from benchmarks.metrics.regional import lit_iou, total_light_rel_error

    mask = np.ones((1, 2), bool)
    assert total_light_rel_error(np.array([[0.5, 0.5]]), np.array([[0.25, 0.25]]), mask) == 1.0
    sr = np.array([[1.0, 0.0]])
    hr = np.array([[1.0, 0.5]])
    assert lit_iou(sr, hr, 0.5, mask) == 1.0


def test_agreement_of_three_units_by_hand():
    """r is Pearson's correlation, R² = 1 - SS_res / SS_tot of ref on the identity line."""
    pred, ref = np.array([1.0, 2.0, 6.0]), np.array([2.0, 2.0, 5.0])
    r, r2 = agreement(pred, ref)
    # deviations: pred (-2, -1, 3), ref (-1, -1, 2): r = 9 / sqrt(14 * 6); R² = 1 - 2 / 6
    assert r == pytest.approx(9.0 / math.sqrt(84.0), rel=1e-12)
    assert r2 == pytest.approx(2.0 / 3.0, rel=1e-12)


def test_seam_ratio_single_pairs_and_edges_on_the_border():
    """One seam pair and one other pair give their ratio; edges at 0 or at the image size are
    not interior and change nothing; an edge at 1 is interior."""
    img = np.array([[0.0, 2.0, 3.0]])
    mask = np.ones_like(img, dtype=bool)
    assert seam_ratio(img, TileGrid((), (1,)), mask) == 2.0
    assert seam_ratio(img, TileGrid((0, 1), (0, 1, 3)), mask) == 2.0
    assert seam_ratio(img.T, TileGrid((1,), ()), mask.T) == 2.0
    assert seam_ratio(img.T, TileGrid((0, 1, 3), (0, 1)), mask.T) == 2.0


def test_seam_ratio_is_nan_when_the_image_is_flat_off_the_edges():
    """Two constant tiles: every non-edge difference is 0, so the ratio is undefined (NaN), not
    inf."""
    img = np.zeros((6, 6))
    img[:, 3:] = 5.0
    assert math.isnan(seam_ratio(img, TileGrid((), (3,)), np.ones_like(img, dtype=bool)))


def test_seam_ratio_without_edges_is_nan_without_a_warning():
    import warnings

    img = smooth(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(seam_ratio(img, TileGrid((), ()), np.ones_like(img, dtype=bool)))
        assert math.isnan(seam_ratio(img[:2, :2], TileGrid((1,), (1,)),
                                     np.ones((2, 2), dtype=bool)))
