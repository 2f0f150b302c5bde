"""Pixel metrics (PSNR, SSIM, RMSE, MAE), MetricConfig and compute_local_metrics."""

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity

from benchmarks.metrics import (
    METRICS,
    MetricConfig,
    MetricInputError,
    compute_local_metrics,
    mae,
    pixel_metrics,
    psnr,
    rmse,
    ssim,
)
from deeplightmd.errors import ConfigError, DeepLightError
from deeplightmd.sensor import SensorModel, degrade


def smooth_field(n: int = 64, seed: int = 0) -> np.ndarray:
    """A positive, spatially correlated radiance field (nW·cm⁻²·sr⁻¹)."""
    rng = np.random.default_rng(seed)
    return 20.0 + 15.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 3) / 0.1


def checkerboard(n: int) -> np.ndarray:
    return np.where(np.add.outer(np.arange(n), np.arange(n)) % 2 == 0, 1.0, -1.0)


def test_psnr_of_a_known_mse_matches_the_formula():
    hr = np.full((32, 32), 50.0)
    for d in (0.5, 3.0, 20.0):
        sr = hr + d * checkerboard(32)  # every pixel off by ±d: MSE = d²
        expected = 10 * math.log10(255.0**2 / d**2)
        assert psnr(sr, hr, 255.0) == pytest.approx(expected, abs=1e-9)
        assert pixel_metrics(sr, hr)["psnr"] == pytest.approx(expected, abs=1e-9)


def test_log_psnr_uses_log1p_range():
    hr, sr = np.full((16, 16), 9.0), np.full((16, 16), 99.0)
    expected = 20 * math.log10(math.log1p(255.0) / (math.log(100.0) - math.log(10.0)))
    out = pixel_metrics(sr, hr, MetricConfig(piqe=False))
    assert out["psnr_log"] == pytest.approx(expected, abs=1e-9)
    assert out["rmse_log"] == pytest.approx(math.log(10.0), abs=1e-12)


def test_identical_images_give_inf_or_the_documented_cap():
    x = smooth_field()
    assert psnr(x, x, 255.0) == math.inf
    assert pixel_metrics(x, x)["psnr"] == 100.0
    assert pixel_metrics(x, x, MetricConfig(psnr_cap_db=None))["psnr"] == math.inf
    assert pixel_metrics(x, x, MetricConfig(psnr_cap_db=60.0))["psnr_log"] == 60.0


def test_psnr_and_ssim_clip_to_the_data_range_but_rmse_does_not():
    hr = np.full((16, 16), 255.0)
    sr = hr + 50.0  # above R: identical after clipping to [0, R]
    out = pixel_metrics(sr, hr)
    assert out["psnr"] == 100.0
    assert out["ssim"] == pytest.approx(1.0)
    assert out["rmse"] == pytest.approx(50.0)


def test_ssim_of_identical_images_is_one_and_falls_with_noise():
    x = smooth_field()
    rng = np.random.default_rng(1)
    assert ssim(x, x, 255.0) == pytest.approx(1.0, abs=1e-12)
    noise = rng.normal(size=x.shape)
    values = [pixel_metrics(x + s * noise, x)["ssim"] for s in (0.5, 2.0, 8.0)]
    assert values[0] < 1.0 and values[0] > values[1] > values[2]
    logs = [pixel_metrics(np.clip(x + s * noise, 0, None), x)["ssim_log"] for s in (0.5, 2.0, 8.0)]
    assert 1.0 > logs[0] > logs[1] > logs[2]


def test_ssim_without_mask_equals_skimage_gaussian_ssim():
    x = smooth_field()
    y = x + np.random.default_rng(2).normal(0, 2, x.shape)
    ref = structural_similarity(x, y, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ssim(y, x, 255.0) == pytest.approx(ref, abs=1e-12)


def test_rmse_and_mae_oracles():
    hr = np.zeros((4, 4))
    sr = np.tile([3.0, -4.0], (4, 2))  # |errors| 3 and 4, half each
    assert rmse(sr, hr) == pytest.approx(math.sqrt(12.5))
    assert mae(sr, hr) == pytest.approx(3.5)
    mask = np.zeros((4, 4), bool)
    mask[:, 0] = True
    assert rmse(sr, hr, mask) == pytest.approx(3.0)


def test_channel_first_input_is_accepted():
    x = smooth_field()
    y = x + 1.0
    assert pixel_metrics(y[None], x[None]) == pixel_metrics(y, x)


@pytest.mark.parametrize(("sr", "hr", "match"), [
    (np.zeros((16, 16)), np.zeros((16, 8)), r"same shape, got \(16, 16\) and \(16, 8\)"),
    (np.full((16, 16), np.nan), np.zeros((16, 16)), "sr must be finite, found 256 NaN/inf"),
    (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), r"shape \(H, W\) or \(1, H, W\)"),
    (np.zeros((8, 8)), np.zeros((8, 8)), "at least 11x11 pixels, got 8x8"),
])
def test_bad_inputs_raise_metric_input_error(sr, hr, match):
    with pytest.raises(MetricInputError, match=match):
        pixel_metrics(sr, hr)
    assert issubclass(MetricInputError, DeepLightError)


def test_metric_config_validates_and_round_trips():
    cfg = MetricConfig(radiance_range=100.0, lit_threshold=0.5)
    assert MetricConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="radiance_range must be > 0, got 0"):
        MetricConfig(radiance_range=0)
    with pytest.raises(ConfigError, match=r"unknown metric setting\(s\) \['range'\]"):
        MetricConfig.from_dict({"range": 1})


def test_local_metrics_report_documented_names_and_skip_what_is_missing():
    hr = smooth_field()
    model = SensorModel()
    out = compute_local_metrics(hr + 1.0, hr, degrade(hr, model), model)
    assert set(out) <= set(METRICS)
    assert {"psnr", "ssim_log", "piqe", "gmsd_log", "lrc_rmse", "lrc_total_rel_bias"} <= set(out)
    assert out["rmse"] == pytest.approx(1.0)
    bare = compute_local_metrics(hr, hr, None, None,
                                 MetricConfig(piqe=False, log_metrics=False, gmsd=False))
    assert set(bare) == {"psnr", "ssim", "rmse", "mae"}


def test_log_radiance_clips_at_zero_and_the_cap_in_float64():
    """``log1p(clip(x, 0, upper))`` computed in float64, also for float32 inputs."""
    from benchmarks.metrics.pixel import log_radiance

    x = np.array([-3.0, 0.0, 5.0, 100.0])
    assert np.array_equal(log_radiance(x, upper=10.0), np.log1p([0.0, 0.0, 5.0, 10.0]))
    assert np.array_equal(log_radiance(x), np.log1p([0.0, 0.0, 5.0, 100.0]))
    x32 = np.array([0.1, 3.3, 77.7], dtype=np.float32)
    out = log_radiance(x32)
    assert out.dtype == np.float64
    assert np.array_equal(out, np.log1p(x32.astype(np.float64)))


def test_every_log_metric_is_restricted_to_the_mask():
    """With a mask, the log-space RMSE/MAE (like the radiance ones) use the masked pixels only:
    inside the mask SR = HR, outside they differ, so every error is 0 and PSNR is the cap."""
    hr = smooth_field(32)
    sr = hr.copy()
    mask = np.zeros_like(hr, dtype=bool)
    mask[:, :16] = True
    sr[~mask] += 50.0
    out = pixel_metrics(sr, hr, MetricConfig(psnr_cap_db=80.0), mask=mask)
    assert out["rmse"] == out["mae"] == out["rmse_log"] == out["mae_log"] == 0.0
    assert out["psnr"] == out["psnr_log"] == 80.0
