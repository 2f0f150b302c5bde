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


def _two_level_by_hand(arrays, n_resamples, seed, confidence):
    """The documented resampling: draw the groups with replacement, then each drawn group's
    values with replacement; the statistic is the mean of the drawn groups' means."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(arrays), len(arrays))
        stats.append(np.mean([arrays[g][rng.integers(0, arrays[g].size, arrays[g].size)].mean()
                              for g in drawn]))
    tail = (1 - confidence) / 2
    return tuple(np.quantile(stats, [tail, 1 - tail]))


@pytest.mark.parametrize("confidence, golden", [(0.95, (2.222222222222222, 5.910069444444445)),
                                                (0.8, (2.6069444444444443, 4.987500000000001))])
def test_hierarchical_bootstrap_by_hand_and_golden(confidence, golden):
    """Mean of the group (seed) means — not of the pooled values — with the two-level
    percentile interval; non-finite values left out and not counted. Golden values pin the
    RNG use (update them only with a deliberate change, reason in the commit)."""
    from benchmarks.metrics.stats import MeanCI, hierarchical_bootstrap_ci

    groups = [[1.0, 2.0, 4.0], [3.0, 5.0, float("nan")], [10.0, 0.5, 2.5, 7.0]]
    arrays = [np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0]), np.array([10.0, 0.5, 2.5, 7.0])]
    ci = hierarchical_bootstrap_ci(groups, confidence=confidence, n_resamples=500, seed=11)
    assert ci.mean == pytest.approx((7 / 3 + 4.0 + 5.0) / 3)   # pooled would be 35/9 = 3.89
    assert (ci.n, ci.confidence) == (9, confidence)
    assert (ci.ci_low, ci.ci_high) == pytest.approx(
        _two_level_by_hand(arrays, 500, 11, confidence), abs=1e-12)
    assert ci == MeanCI(3.777777777777778, *golden, 9, confidence)
    one = hierarchical_bootstrap_ci([[2.0, 4.0, 9.0]], n_resamples=300, seed=5)
    assert one.mean == pytest.approx(5.0)
    assert (one.ci_low, one.ci_high) == pytest.approx(
        _two_level_by_hand([np.array([2.0, 4.0, 9.0])], 300, 5, 0.95), abs=1e-12)
    with pytest.raises(MetricInputError,
                       match=r"^hierarchical bootstrap needs at least one group$"):
        hierarchical_bootstrap_ci([])
    with pytest.raises(MetricInputError, match=r"^group values has no finite value to aggregate$"):
        hierarchical_bootstrap_ci([[1.0], [float("nan")]])


def test_holm_adjust_by_hand():
    """The i-th smallest of m p-values times m − i, made non-decreasing, capped at 1, returned
    in the given order; tied p-values get the same adjusted value."""
    from benchmarks.metrics.stats import holm_adjust

    assert holm_adjust([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0]          # 1.2 and 0.7 -> 1.2, capped
    assert holm_adjust([0.02, 0.001, 0.02]) == pytest.approx([0.04, 0.003, 0.04])
    assert holm_adjust([0.3]) == [0.3]
    assert holm_adjust([]) == []
    low = np.array([0.1, 0.2, 0.7], np.float32)       # adjusted in float64, not float32
    assert holm_adjust(low) == holm_adjust([float(v) for v in low])
    assert holm_adjust(low)[0] == float(np.float64(np.float32(0.1)) * 3)


def test_default_resample_counts_are_golden():
    """``bootstrap_ci`` and ``aggregate`` default to 2000 resamples, seed 0 (golden values)."""
    from benchmarks.metrics.stats import MeanCI, hierarchical_bootstrap_ci

    values = [1.0, 2.5, 3.25, 7.0, 4.5]
    assert bootstrap_ci(values) == MeanCI(3.65, 2.05, 5.5, 5, 0.95)
    assert aggregate([{"psnr": v, "ssim": v / 10} for v in values]) == {
        "psnr": MeanCI(3.65, 2.05, 5.5, 5, 0.95), "ssim": MeanCI(0.365, 0.205, 0.55, 5, 0.95)}
    # 40 continuous values: interval ends that move with the resample count and the seed
    many = [28.696, 29.651, 33.327, 31.318, 26.717, 29.99, 28.753, 30.297, 26.784, 30.484,
            30.471, 33.151, 30.633, 31.021, 27.014, 34.505, 26.169, 32.204, 29.34, 28.239,
            28.687, 28.656, 30.76, 29.78, 32.965, 26.341, 29.994, 28.216, 31.552, 25.764,
            29.313, 30.42, 27.031, 31.97, 30.357, 32.014, 31.918, 28.04, 28.404, 29.593]
    mean = 29.763475
    ci = bootstrap_ci(many)
    assert (ci.mean, ci.ci_low, ci.ci_high, ci.n) == pytest.approx(
        (mean, 29.1409475, 30.41675125, 40), abs=1e-9)
    assert aggregate([{"psnr": v} for v in many])["psnr"] == bootstrap_ci(many)
    ci = hierarchical_bootstrap_ci([many[:20], many[20:]])
    assert (ci.mean, ci.ci_low, ci.ci_high, ci.n) == pytest.approx(
        (mean, 29.058619375, 30.4582, 40), abs=1e-9)
    assert bootstrap_ci([2.0], confidence=0.9) == MeanCI(2.0, 2.0, 2.0, 1, 0.9)


def test_statistics_are_computed_in_float64_whatever_the_input_dtype():
    x = np.array([1.1, 2.3, 3.7, 4.9, 5.3, 6.1, 0.1], np.float32)
    y = np.array([0.7, 2.0, 3.1, 4.2, 5.0, 5.3, 0.4], np.float32)
    assert bootstrap_ci(x).mean == float(x.astype(np.float64).mean())
    assert paired_wilcoxon(x, y) == paired_wilcoxon(x.astype(np.float64), y.astype(np.float64))
    assert paired_wilcoxon(x, y).median_difference == float(
        np.median(x.astype(np.float64) - y.astype(np.float64)))


def test_identical_paired_values_are_indistinguishable_exactly():
    from benchmarks.metrics.stats import WilcoxonResult

    assert paired_wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], alpha=0.01) == \
        WilcoxonResult(0.0, 1.0, 3, 0.0, "none", 0.01)


def _crossed_by_hand(table, n_resamples, seed, confidence):
    """The documented resampling: draw the seeds, then ONE set of clips for all drawn seeds."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        rows = rng.integers(0, table.shape[0], table.shape[0])
        cols = rng.integers(0, table.shape[1], table.shape[1])
        means = []
        for r in rows:
            drawn = table[r, cols]
            drawn = drawn[np.isfinite(drawn)]
            if drawn.size:
                means.append(drawn.mean())
        stats.append(np.mean(means))
    tail = (1 - confidence) / 2
    return tuple(np.quantile(stats, [tail, 1 - tail]))


def test_crossed_bootstrap_by_hand_and_golden():
    """Seeds × the same clips: one shared draw of clips per resample; mean of the seed means;
    non-finite values left out (golden values pin the RNG use)."""
    from benchmarks.metrics.stats import MeanCI, crossed_bootstrap_ci

    table = np.array([[1.0, 2.0, 4.0, 8.0], [3.0, 5.0, np.nan, 6.0], [2.0, 0.5, 2.5, 7.0]])
    ci = crossed_bootstrap_ci(table, n_resamples=400, seed=7)
    assert ci.mean == pytest.approx((15 / 4 + 14 / 3 + 12 / 4) / 3)
    assert (ci.n, ci.confidence) == (11, 0.95)
    assert (ci.ci_low, ci.ci_high) == pytest.approx(_crossed_by_hand(table, 400, 7, 0.95),
                                                    abs=1e-12)
    assert ci == MeanCI(3.805555555555556, 1.4572916666666669, 6.25, 11, 0.95)
    with pytest.raises(MetricInputError, match=r"^crossed bootstrap needs a non-empty seeds"):
        crossed_bootstrap_ci([1.0, 2.0])
    with pytest.raises(MetricInputError, match=r"^a seed has no finite value to aggregate$"):
        crossed_bootstrap_ci([[1.0, 2.0], [np.nan, np.inf]])


def test_identical_seeds_are_not_more_clips():
    """Three identical seeds carry the information of one: the crossed interval is the clip
    bootstrap's, while drawing each seed's clips on its own narrows it by about √3."""
    from benchmarks.metrics.stats import crossed_bootstrap_ci, hierarchical_bootstrap_ci

    clips = np.random.default_rng(1).normal(44.0, 7.0, 15)
    one = bootstrap_ci(clips)
    crossed = crossed_bootstrap_ci(np.stack([clips] * 3))
    nested = hierarchical_bootstrap_ci([clips] * 3)
    width = one.ci_high - one.ci_low
    assert crossed.mean == pytest.approx(one.mean)
    assert (crossed.ci_high - crossed.ci_low) == pytest.approx(width, rel=0.1)
    assert (nested.ci_high - nested.ci_low) == pytest.approx(width / np.sqrt(3), rel=0.15)
