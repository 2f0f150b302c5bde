"""Aggregation of per-clip metrics: mean with a seeded bootstrap CI, and a paired Wilcoxon test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from benchmarks.metrics._arrays import MetricInputError


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` finite values with a percentile-bootstrap confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _finite_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise MetricInputError(f"{name} has no finite value to aggregate")
    return v


def _check_resampling(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise MetricInputError(f"n_resamples must be >= 1, got {n_resamples}")


def bootstrap_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                 n_resamples: int = 2000, seed: int = 0) -> MeanCI:
    """Mean ± percentile-bootstrap CI over the finite values (NaN/inf are left out).

    Resamples the values with replacement ``n_resamples`` times with
    ``numpy.random.default_rng(seed)`` and takes the ``(1 ± confidence)/2`` quantiles of the
    resampled means, so the same values and seed always give the same interval. One value gives a
    zero-width interval.
    """
    _check_resampling(confidence, n_resamples)
    v = _finite_1d(values, "values")
    mean = float(v.mean())
    if v.size == 1:
        return MeanCI(mean, mean, mean, 1, confidence)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_resamples, v.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return MeanCI(mean, float(low), float(high), int(v.size), confidence)


def aggregate(per_clip: Sequence[Mapping[str, float]], confidence: float = 0.95,
              n_resamples: int = 2000, seed: int = 0) -> dict[str, MeanCI]:
    """:func:`bootstrap_ci` of every metric name found in a list of per-clip metric dicts."""
    names = sorted({k for row in per_clip for k in row})
    return {k: bootstrap_ci([row[k] for row in per_clip if k in row], confidence,
                            n_resamples, seed) for k in names}


@dataclass(frozen=True)
class WilcoxonResult:
    """Paired Wilcoxon signed-rank test of method ``a`` against ``b`` on the same clips.

    ``median_difference`` is the median of ``a − b``; ``better`` is ``"a"`` or ``"b"`` when
    ``p_value < alpha`` (the side the median difference favours given the metric's direction),
    else ``"none"``.
    """

    statistic: float
    p_value: float
    n: int
    median_difference: float
    better: str
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def hierarchical_bootstrap_ci(groups: Sequence[Sequence[float] | np.ndarray],
                              confidence: float = 0.95, n_resamples: int = 2000,
                              seed: int = 0) -> MeanCI:
    """Mean over groups (seeds) of the group means, with a two-level percentile bootstrap CI:
    each resample draws the groups with replacement, then each drawn group's values (clips)
    with replacement. Non-finite values are left out; ``n`` counts the values kept.

    Raises:
        MetricInputError: no group, or a group without a finite value.
    """
    arrays = [_finite_1d(g, "group values") for g in groups]
    if not arrays:
        raise MetricInputError("hierarchical bootstrap needs at least one group")
    rng = np.random.default_rng(seed)
    stats_ = np.empty(n_resamples)
    for b in range(n_resamples):
        drawn = rng.integers(0, len(arrays), len(arrays))
        stats_[b] = np.mean([arrays[g][rng.integers(0, arrays[g].size, arrays[g].size)].mean()
                             for g in drawn])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats_, [tail, 1.0 - tail])
    return MeanCI(float(np.mean([a.mean() for a in arrays])), float(low), float(high),
                  int(sum(a.size for a in arrays)), confidence)


def crossed_bootstrap_ci(values: Sequence[Sequence[float]] | np.ndarray,
                         confidence: float = 0.95, n_resamples: int = 2000,
                         seed: int = 0) -> MeanCI:
    """Mean over seeds of the seed means of a seeds × clips table, with a two-way bootstrap CI.

    Every row holds one seed's per-clip values **on the same clips** (a crossed design: each
    column is one test clip). Each resample draws the seeds with replacement and *one* set of
    clips with replacement, shared by the drawn seeds, and averages the drawn seeds' means over
    the drawn clips. Sharing the clips is what makes it right for a crossed design: drawing each
    seed's clips independently (:func:`hierarchical_bootstrap_ci`, for groups of different
    values) would treat the same clips as new samples for every seed and shrink the clip part of
    the interval by up to √(seeds) — three identical seeds would look like three times the clips.
    Non-finite values are left out (of the means and of ``n``); a drawn seed with no finite value
    among the drawn clips does not count in that resample.

    Raises:
        MetricInputError: not a 2-D table, no seed, or a seed without a finite value.
    """
    _check_resampling(confidence, n_resamples)
    table = np.asarray(values, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise MetricInputError(f"crossed bootstrap needs a non-empty seeds × clips table, got "
                               f"shape {table.shape}")
    finite = np.isfinite(table)
    if not finite.any(axis=1).all():
        raise MetricInputError("a seed has no finite value to aggregate")
    zeroed = np.where(finite, table, 0.0)
    mean = float(np.mean(zeroed.sum(axis=1) / finite.sum(axis=1)))
    n_seeds, n_clips = table.shape
    rng = np.random.default_rng(seed)
    stats_ = np.empty(n_resamples)
    for b in range(n_resamples):
        rows = rng.integers(0, n_seeds, n_seeds)
        cols = rng.integers(0, n_clips, n_clips)
        counts = finite[np.ix_(rows, cols)].sum(axis=1)
        sums = zeroed[np.ix_(rows, cols)].sum(axis=1)
        kept = counts > 0
        stats_[b] = np.mean(sums[kept] / counts[kept]) if kept.any() else np.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(stats_, [tail, 1.0 - tail])
    return MeanCI(mean, float(low), float(high), int(finite.sum()), confidence)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given): the i-th smallest of m p-values
    is multiplied by ``m − i`` (i from 0), made non-decreasing in that order and capped at 1.
    Rejecting where the adjusted p < alpha controls the family-wise error rate at alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    out = np.empty_like(p)
    out[order] = scaled
    return [float(v) for v in out]


def paired_wilcoxon(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                    higher_is_better: bool = True, alpha: float = 0.05) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) on paired per-clip values.

    Zero differences are dropped (Wilcoxon's convention); when every difference is zero the
    methods are indistinguishable: ``statistic = 0``, ``p_value = 1``, ``better = "none"``.

    Raises:
        MetricInputError: when the arrays differ in length, are empty or hold NaN/inf.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise MetricInputError(f"paired values must have the same length, "
                               f"got {x.size} and {y.size}")
    if x.size == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MetricInputError("paired values must be non-empty and finite")
    d = x - y
    med = float(np.median(d))
    if not np.any(d):
        return WilcoxonResult(0.0, 1.0, int(d.size), 0.0, "none", alpha)
    res = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    p = float(res.pvalue)
    direction = med if med != 0 else float(d.mean())
    a_ahead = direction > 0 if higher_is_better else direction < 0
    better = ("a" if a_ahead else "b") if p < alpha else "none"
    return WilcoxonResult(float(res.statistic), p, int(d.size), med, better, alpha)
