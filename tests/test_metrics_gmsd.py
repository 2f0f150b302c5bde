"""GMSD on log radiance: hand-computed values, registration, and that it separates interpolators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.metrics import METRICS, MetricConfig, MetricInputError, compute_local_metrics
from benchmarks.metrics.gmsd import GMSD_C, gmsd, gmsd_log, gradient_magnitude
from benchmarks.metrics.piqe import piqe

E1 = math.e - 1.0  # radiance whose log1p is 1: with R = e − 1 the scaled log image is 0/1


def test_gradient_magnitude_of_a_step_by_hand():
    g = np.array([[0, 0, 1, 1]] * 3, dtype=float)
    # both interior pixels see one column of ones on the right: |(0 − 3)/3| = 1
    assert gradient_magnitude(g).tolist() == [[1.0, 1.0]]
    assert gradient_magnitude(g.T).tolist() == [[1.0], [1.0]]


def test_gmsd_log_hand_computed():
    """HR steps at column 2, SR at column 3: GMS = c/(1+c) at one interior pixel and 1 at the
    other, so GMSD = (1 − c/(1+c)) / 2 = 1 / (2(1+c)) with c = 170/255²."""
    hr = np.array([[0, 0, E1, E1]] * 3)
    sr = np.array([[0, 0, 0, E1]] * 3)
    expected = 1.0 / (2.0 * (1.0 + 170.0 / 255.0**2))
    assert gmsd_log(sr, hr, radiance_range=E1) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.498696, abs=1e-6)
    # radiance above R is clipped before the log: the same value
    assert gmsd_log(sr * 5.0, hr * 5.0, radiance_range=E1) == pytest.approx(expected, rel=1e-12)
    assert gmsd_log(hr, hr, radiance_range=E1) == 0.0


def test_gmsd_with_own_constant_by_hand():
    """m_hr = 1 and m_sr = 1/3 at both pixels (no spread) except where SR is flat."""
    hr = np.array([[0, 0, 1, 1]] * 3, dtype=float)
    sr = np.array([[0, 0, 1 / 3, 1]] * 3, dtype=float)
    # pixel 1: sr window [0, 0, 1/3] → m = 1/3; pixel 2: [0, 1/3, 1] → m = 1
    gms1 = (2 * (1 / 3) + 0.5) / (1 / 9 + 1 + 0.5)
    gms2 = 1.0
    assert gmsd(sr, hr, c=0.5) == pytest.approx(abs(gms2 - gms1) / 2, rel=1e-12)
    assert GMSD_C == pytest.approx(0.0026143, abs=1e-7)


def test_gmsd_rejects_tiny_or_mismatched_images():
    with pytest.raises(MetricInputError, match="at least 3x3"):
        gmsd(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(MetricInputError, match="same shape"):
        gmsd_log(np.zeros((4, 4)), np.zeros((5, 5)), 255.0)
    with pytest.raises(MetricInputError, match="radiance_range"):
        gmsd_log(np.zeros((4, 4)), np.zeros((4, 4)), 0.0)


def test_registered_and_reported_by_compute_local_metrics():
    info = METRICS["gmsd_log"]
    assert info.direction == "lower" and info.unit == "1"
    hr = np.random.default_rng(0).gamma(0.5, 8.0, (32, 32))
    out = compute_local_metrics(hr * 0.9, hr, None, None)
    assert out["gmsd_log"] == pytest.approx(gmsd_log(hr * 0.9, hr, 255.0))
    assert "gmsd_log" not in compute_local_metrics(hr, hr, None, None, MetricConfig(gmsd=False))
    assert MetricConfig.from_dict(MetricConfig().to_dict()).gmsd is True


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_separates_interpolators_where_piqe_cannot(seed):
    """A dark NTL-like 16² clip (the real track's size) with two lights, its 4× block mean
    upsampled three ways: bilinear and bicubic both get PIQE = 100 and nearest a *better* PIQE;
    GMSD on log radiance ranks bicubic < bilinear < nearest (lower is better)."""
    from baselines._common import upsample

    rng = np.random.default_rng(seed)
    hr = rng.gamma(0.3, 0.5, (16, 16))
    yy, xx = np.mgrid[:16, :16]
    for cy, cx, amp in ((5, 6, 60.0), (11, 10, 25.0)):
        hr += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.5**2))
    lr = torch.from_numpy(hr.reshape(4, 4, 4, 4).mean(axis=(1, 3)))[None, None]
    sr = {k: upsample(lr, 4, k).clamp(min=0)[0, 0].numpy()
          for k in ("nearest", "bilinear", "bicubic")}
    assert piqe(sr["bilinear"]) == piqe(sr["bicubic"]) == 100.0
    assert piqe(sr["nearest"]) < 100.0
    scores = {k: gmsd_log(v, hr, 255.0) for k, v in sr.items()}
    assert scores["bicubic"] < scores["bilinear"] < scores["nearest"] - 0.1, scores
