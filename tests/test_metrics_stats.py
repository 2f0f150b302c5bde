"""Bootstrap confidence intervals and the paired Wilcoxon test."""

import numpy as np
import pytest

from benchmarks.metrics import MetricInputError, aggregate, bootstrap_ci, paired_wilcoxon


def test_bootstrap_ci_contains_the_mean_and_matches_the_normal_interval():
    v = np.random.default_rng(0).normal(5.0, 2.0, 400)
    ci = bootstrap_ci(v, seed=1)
    assert ci.ci_low < ci.mean < ci.ci_high and ci.mean == pytest.approx(v.mean())
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert (ci.ci_high - ci.ci_low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(v, seed=1) == ci  # seeded: reproducible


def test_bootstrap_ci_narrows_with_n():
    rng = np.random.default_rng(3)
    small, large = bootstrap_ci(rng.normal(0, 1, 25)), bootstrap_ci(rng.normal(0, 1, 2500))
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low) / 4


def test_bootstrap_edge_cases():
    one = bootstrap_ci([3.0])
    assert (one.mean, one.ci_low, one.ci_high, one.n) == (3.0, 3.0, 3.0, 1)
    assert bootstrap_ci([1.0, np.nan, 3.0]).n == 2
    with pytest.raises(MetricInputError, match="no finite value"):
        bootstrap_ci([np.nan])
    with pytest.raises(MetricInputError, match=r"confidence must be in \(0, 1\), got 95"):
        bootstrap_ci([1.0, 2.0], confidence=95)


def test_aggregate_per_clip_dicts():
    rows = [{"psnr": 30.0, "ssim": 0.9}, {"psnr": 32.0, "ssim": 0.8}, {"psnr": 34.0}]
    agg = aggregate(rows)
    assert agg["psnr"].mean == pytest.approx(32.0) and agg["psnr"].n == 3
    assert agg["ssim"].n == 2


def test_wilcoxon_detects_a_clear_shift_in_the_right_direction():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, 40)
    better = base + 0.5 + rng.normal(0, 0.2, 40)
    res = paired_wilcoxon(better, base, higher_is_better=True)
    assert res.p_value < 0.01 and res.n == 40 and res.better == "a"
    assert res.median_difference == pytest.approx(np.median(better - base))
    assert paired_wilcoxon(better, base, higher_is_better=False).better == "b"  # e.g. RMSE


def test_wilcoxon_on_identical_values_finds_no_difference():
    x = np.random.default_rng(1).normal(size=20)
    res = paired_wilcoxon(x, x.copy())
    assert (res.p_value, res.median_difference, res.better) == (1.0, 0.0, "none")
    symmetric = paired_wilcoxon(x, x + np.tile([0.1, -0.1], 10))  # no net shift
    assert symmetric.p_value > 0.5 and symmetric.better == "none"


def test_wilcoxon_rejects_unpaired_values():
    with pytest.raises(MetricInputError, match="same length, got 3 and 2"):
        paired_wilcoxon([1, 2, 3], [1, 2])
