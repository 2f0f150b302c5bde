"""LR-consistency: degrade(SR) against the LR input."""

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.metrics import MetricInputError, lr_consistency
from deeplightmd.sensor import SensorModel, degrade


def hr_field(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(30.0 * ndimage.gaussian_filter(rng.lognormal(0, 1, (n, n)), 2), 0, None)


def test_sr_equal_to_the_hr_that_made_lr_is_perfectly_consistent():
    model = SensorModel()
    hr = hr_field()
    out = lr_consistency(hr, degrade(hr, model), model)
    assert out["lrc_rmse"] < 1e-5 and out["lrc_mae"] < 1e-5
    assert abs(out["lrc_total_rel_bias"]) < 1e-6
    assert out["lrc_psnr"] >= 90.0


def test_wrong_sr_is_inconsistent():
    model = SensorModel()
    hr = hr_field()
    lr = degrade(hr, model)
    brighter = lr_consistency(1.5 * hr, lr, model)
    assert brighter["lrc_total_rel_bias"] > 0.3
    assert brighter["lrc_rmse"] > 1.0
    shifted = lr_consistency(np.roll(hr, 16, axis=1), lr, model)  # two LR pixels off
    assert shifted["lrc_rmse"] > 1.0 and shifted["lrc_psnr"] < 60.0


def test_noisy_lr_gives_an_error_of_the_noise_size():
    model = SensorModel(noise_abs=0.5, noise_rel=0.0)
    hr = hr_field(128, seed=3)
    noisy = degrade(hr, model, rng=np.random.default_rng(0))
    out = lr_consistency(hr, noisy, model)
    assert out["lrc_rmse"] == pytest.approx(0.5, rel=0.15)


def test_shape_mismatch_is_reported():
    model = SensorModel()
    match = r"8x the lr shape \(4, 4\), i.e. \(32, 32\), got \(64, 64\)"
    with pytest.raises(MetricInputError, match=match):
        lr_consistency(np.zeros((64, 64)), np.zeros((4, 4)), model)
