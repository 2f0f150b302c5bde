"""Significance tiers: rows of one store fingerprint that the per-clip data cannot tell apart.

For a ranking metric, every pair of a group's rows that carry per-clip values (``row["clips"]``,
kept from the results by :func:`~benchmarks.leaderboard.board.row_from_results`) is compared by a
two-sided paired Wilcoxon signed-rank test on the clips both have a finite value for; the values
are first mapped by :func:`~benchmarks.leaderboard.render.badness`, so a bias metric is compared
by its distance from 0. The p-values of all k(k−1)/2 pairs are Holm-corrected together
(:func:`~benchmarks.metrics.stats.holm_adjust`). Walking the ranking best first, a row joins the
current tier when its adjusted p against the tier's first row is ≥ alpha, and otherwise opens the
next tier. Rows in one tier are shown as tied. Rows without per-clip values of the metric (older
boards, reported rows) and rankings by a regional metric (``region_<metric>``: no per-clip values)
get no tier.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks.leaderboard.render import Group, badness, is_regional, rank_rows
from benchmarks.metrics.stats import holm_adjust, paired_wilcoxon

#: family-wise error rate of the tier tests
TIER_ALPHA = 0.05


def clip_values(row: Mapping[str, Any], metric: str) -> dict[int, float] | None:
    """``{clip_id: badness}`` of the row's finite per-clip values of ``metric``, or None."""
    per_clip = row.get("clips") or {}
    if metric not in per_clip:
        return None
    return {int(c): badness(metric, float(v))
            for c, v in zip(per_clip["clip_id"], per_clip[metric], strict=True)
            if v is not None and np.isfinite(v)}


def pair_p_value(a: Mapping[int, float], b: Mapping[int, float]) -> float:
    """Two-sided paired Wilcoxon p of two ``{clip_id: value}`` maps on their shared clips
    (1.0 when they share none: not separable)."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return 1.0
    return paired_wilcoxon([a[c] for c in shared], [b[c] for c in shared]).p_value


def holm_pair_p_values(values: Sequence[Mapping[int, float] | None]
                      ) -> dict[tuple[int, int], float]:
    """Holm-adjusted paired Wilcoxon p of every pair ``(i, j)``, ``i < j``, of the entries
    that carry ``{clip_id: value}`` maps (None or empty entries are left out)."""
    tested = [i for i, v in enumerate(values) if v]
    pairs = list(itertools.combinations(tested, 2))
    return dict(zip(pairs, holm_adjust([pair_p_value(values[i], values[j]) for i, j in pairs]),
                    strict=True))


def tiers_from_pairs(n: int, adjusted: Mapping[tuple[int, int], float],
                     tested: Sequence[int], alpha: float = TIER_ALPHA) -> list[int | None]:
    """Walk ``tested`` (indices ranked best first): an entry joins the current tier when its
    adjusted p against the tier's first entry is ≥ alpha, else opens the next; None elsewhere."""
    tiers: list[int | None] = [None] * n
    tier, leader = 0, None
    for i in tested:
        if leader is None or adjusted[(leader, i)] < alpha:
            tier, leader = tier + 1, i
        tiers[i] = tier
    return tiers


def assign_tiers(rows: Sequence[Mapping[str, Any]], metric: str, alpha: float = TIER_ALPHA
                 ) -> list[int | None]:
    """Tiers (1 = best) of ``rows`` ranked best first on ``metric``, aligned with ``rows``;
    None for rows without per-clip values of the metric (see the module docstring)."""
    values = [None if is_regional(metric) else clip_values(r, metric) for r in rows]
    tested = [i for i, v in enumerate(values) if v]
    return tiers_from_pairs(len(rows), holm_pair_p_values(values), tested, alpha)


def with_tiers(group: Group, metric: str, alpha: float = TIER_ALPHA) -> Group:
    """The group with its rows ranked on ``metric`` and carrying ``tier`` (reproduced groups;
    a reported group is returned unchanged)."""
    if group.reported:
        return group
    ranked = rank_rows(group.rows, metric)
    rows = [{**r, "tier": t} for r, t in zip(ranked, assign_tiers(ranked, metric, alpha),
                                               strict=True)]
    return Group(group.title, group.reported, group.fingerprint, rows)


__all__ = ["TIER_ALPHA", "assign_tiers", "clip_values", "holm_pair_p_values", "pair_p_value",
           "tiers_from_pairs", "with_tiers"]
