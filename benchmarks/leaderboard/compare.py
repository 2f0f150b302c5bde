"""Paired comparison of two runs on the same test clips (Wilcoxon signed-rank, per-clip values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.leaderboard.render import metric_direction
from benchmarks.metrics.stats import paired_wilcoxon
from deeplightmd.errors import ConfigError


@dataclass(frozen=True)
class Comparison:
    """Outcome of :func:`compare_results` (differences are A minus B on ``metric``; ``winner``
    is the better method's name when the test is significant at ``alpha``, else None)."""

    method_a: str
    method_b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    median_difference: float
    statistic: float
    p_value: float
    alpha: float
    winner: str | None

    @property
    def significant(self) -> bool:
        """True when the paired test rejects "no difference" at ``alpha``."""
        return self.p_value < self.alpha

    def summary(self) -> str:
        """One-paragraph human-readable verdict."""
        verdict = (f"{self.winner} is better" if self.winner else
                   "no significant difference")
        return (f"{self.metric}: {self.method_a} {self.mean_a:.4f} vs {self.method_b} "
                f"{self.mean_b:.4f} (median paired difference {self.median_difference:+.4f}, "
                f"n = {self.n} clips); Wilcoxon signed-rank W = {self.statistic:g}, "
                f"p = {self.p_value:.3g} → {verdict} at alpha = {self.alpha:g}")


def compare_results(a: Mapping[str, Any], b: Mapping[str, Any], metric: str = "psnr",
                    alpha: float = 0.05) -> Comparison:
    """Paired test of ``metric`` between two (validated) results documents.

    Clips are paired by ``clip_id``. Raises :class:`ConfigError` when the two runs were made on
    stores with different fingerprints, when the metric is missing, or when no clip is shared.
    """
    fa, fb = a["dataset"]["fingerprint"], b["dataset"]["fingerprint"]
    name_a, name_b = a["method"]["name"], b["method"]["name"]
    if fa != fb:
        raise ConfigError(f"cannot compare runs on different datasets: {name_a} ran on "
                          f"fingerprint {fa[:12]}…, {name_b} on {fb[:12]}…")
    for doc, name in ((a, name_a), (b, name_b)):
        if metric not in doc["per_clip"]:
            known = sorted(k for k in doc["per_clip"] if k != "clip_id")
            raise ConfigError(f"results of {name} have no per-clip {metric!r}; known: "
                              f"{', '.join(known)}")
    va = dict(zip(a["per_clip"]["clip_id"], a["per_clip"][metric], strict=True))
    vb = dict(zip(b["per_clip"]["clip_id"], b["per_clip"][metric], strict=True))
    shared = [c for c in va if c in vb and va[c] is not None and vb[c] is not None]
    if not shared:
        raise ConfigError(f"results of {name_a} and {name_b} share no test clip with a "
                          f"finite {metric}")
    xa = np.array([va[c] for c in shared], dtype=np.float64)
    xb = np.array([vb[c] for c in shared], dtype=np.float64)
    test = paired_wilcoxon(xa, xb, higher_is_better=metric_direction(metric) != "lower",
                           alpha=alpha)
    return Comparison(name_a, name_b, metric, len(shared), float(xa.mean()), float(xb.mean()),
                      float(np.median(xa - xb)), test.statistic, test.p_value, alpha,
                      {"a": name_a, "b": name_b}.get(test.better))


__all__ = ["Comparison", "compare_results"]
