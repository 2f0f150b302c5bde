"""Several seeds of one method as one leaderboard row (``leaderboard merge-seeds``).

The results of one method on one store fingerprint, trained on the same store with the same
budget and steps but different seeds, become one row: ``protocol.seeds`` lists the seeds
(``protocol.seed`` is null), ``seed_runs`` keeps each seed's run id, date, commit and metric
means, and every local metric's estimate is the mean over seeds of the per-seed means with
``sd`` (over seeds, ddof 1) and a 95 % CI from a bootstrap over seeds and clips: seeds scored on
the same clips (one store) resample the seeds and one shared set of clips
(:func:`~benchmarks.metrics.stats.crossed_bootstrap_ci`); otherwise the clips of each drawn seed
are resampled on their own (:func:`~benchmarks.metrics.stats.hierarchical_bootstrap_ci`). Regional
values are means over seeds; ``clips`` holds each clip's mean over seeds (for significance
tiers). The row's ``run_id`` is derived from the seeds' run ids, so merging the same files again
is idempotent; the per-seed rows with those run ids are removed from the board when the merged
row is added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.leaderboard.board import (
    AddReport,
    add_rows,
    board_lock,
    load_board,
    row_from_results,
    save_board,
    training_fingerprint,
    validate_row,
)
from benchmarks.metrics.stats import crossed_bootstrap_ci, hierarchical_bootstrap_ci
from benchmarks.results import finite_or_none
from deeplightmd.errors import ConfigError


def _identity(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    protocol = doc["protocol"]
    return (doc["method"]["name"], doc["dataset"]["fingerprint"], training_fingerprint(doc),
            protocol["budget"], protocol.get("steps"))


def check_mergeable(docs: Sequence[Mapping[str, Any]]) -> None:
    """Raise :class:`ConfigError` unless ``docs`` are ≥ 2 results of one method, store, training
    store, budget and steps with distinct seeds."""
    if len(docs) < 2:
        raise ConfigError(f"merge-seeds needs the results of at least 2 seeds, got {len(docs)}")
    first = _identity(docs[0])
    for doc in docs[1:]:
        if _identity(doc) != first:
            names = ("method", "store fingerprint", "training store", "budget", "steps")
            diff = [n for n, a, b in zip(names, first, _identity(doc), strict=True) if a != b]
            raise ConfigError(f"cannot merge seeds of different runs: {', '.join(diff)} differ "
                              f"({docs[0]['method']['name']} seed {docs[0]['protocol']['seed']} "
                              f"vs {doc['method']['name']} seed {doc['protocol']['seed']})")
    seeds = [d["protocol"]["seed"] for d in docs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"merge-seeds needs distinct seeds, got {seeds}")


def _clip_values(doc: Mapping[str, Any], metric: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in doc["per_clip"][metric]], dtype=float)


def _same_clips(docs: Sequence[Mapping[str, Any]]) -> bool:
    ids = [d["per_clip"].get("clip_id") for d in docs]
    return ids[0] is not None and all(i == ids[0] for i in ids)


def _estimate(docs: Sequence[Mapping[str, Any]], metric: str, seed: int) -> dict[str, Any]:
    """Mean over seeds, sd over seeds and the bootstrap CI of a local metric.

    Seeds scored on the same clips (the case of one store fingerprint) get the crossed bootstrap
    (seeds and one shared draw of clips); otherwise each seed's clips are drawn on their own.
    """
    groups = [_clip_values(d, metric) for d in docs if metric in d["per_clip"]]
    groups = [g for g in groups if np.isfinite(g).any()]
    if len(groups) < len(docs):
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "sd": None}
    if _same_clips(docs):
        ci = crossed_bootstrap_ci(np.stack(groups), seed=seed)
    else:
        ci = hierarchical_bootstrap_ci(groups, seed=seed)
    means = [float(np.nanmean(g)) for g in groups]
    return {"mean": finite_or_none(ci.mean), "ci_low": finite_or_none(ci.ci_low),
            "ci_high": finite_or_none(ci.ci_high), "n": ci.n,
            "sd": finite_or_none(float(np.std(means, ddof=1)))}


def _mean_over_seeds(values: Sequence[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if len(kept) == len(values) else None


def merged_run_id(docs: Sequence[Mapping[str, Any]]) -> str:
    """``seeds-<hash>``: the same for the same set of seed runs, in any order."""
    joined = ",".join(sorted(str(d.get("run_id")) for d in docs))
    return "seeds-" + hashlib.sha256(joined.encode()).hexdigest()[:24]


def merge_seed_results(docs: Sequence[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    """The leaderboard row of several seeds' (validated) results (see the module docstring).

    Raises:
        ConfigError: the results are not mergeable (:func:`check_mergeable`).
    """
    check_mergeable(docs)
    docs = sorted(docs, key=lambda d: d["protocol"]["seed"])
    base = row_from_results(docs[0])
    metrics = sorted({m for d in docs for m in d["per_clip"] if m != "clip_id"})
    regions = sorted({r for d in docs for r in d["metrics"].get("regional", {})})
    regional = {r: {m: _mean_over_seeds([d["metrics"]["regional"].get(r, {}).get(m)
                                         for d in docs])
                    for m in sorted({m for d in docs
                                     for m in d["metrics"]["regional"].get(r, {})})}
                for r in regions}
    clip_ids = sorted(set.intersection(*(set(d["per_clip"]["clip_id"]) for d in docs)))
    by_clip = [dict(zip(d["per_clip"]["clip_id"], range(len(d["per_clip"]["clip_id"])),
                        strict=True)) for d in docs]
    clips = {"clip_id": clip_ids, **{
        m: [_mean_over_seeds([d["per_clip"][m][ix[c]] if m in d["per_clip"] else None
                              for d, ix in zip(docs, by_clip, strict=True)]) for c in clip_ids]
        for m in metrics}}
    row = {**base,
           "run_id": merged_run_id(docs),
           "protocol": {**base["protocol"], "seed": None,
                        "seeds": [d["protocol"]["seed"] for d in docs]},
           "metrics": {m: _estimate(docs, m, seed) for m in metrics},
           "regional": regional,
           "clips": clips,
           "seed_runs": [{"seed": d["protocol"]["seed"], "run_id": d.get("run_id"),
                          "date": d["date"], "git_commit": d["git_commit"],
                          "metrics": {m: e["mean"] for m, e in d["metrics"]["local"].items()}}
                         for d in docs],
           "date": max(d["date"] for d in docs)}
    validate_row(row, what="merged row")
    return row


def add_merged_row(path: str | Path, row: Mapping[str, Any]) -> tuple[AddReport, int]:
    """Add a merged row to the leaderboard at ``path`` (under its lock) and remove the per-seed
    rows it was merged from (by run id); the report and the number of rows removed."""
    run_ids = {r["run_id"] for r in row.get("seed_runs") or [] if r.get("run_id")}
    with board_lock(path):
        board = load_board(path)
        kept = [r for r in board["rows"] if r.get("run_id") not in run_ids]
        new, report = add_rows({**board, "rows": kept}, [row])
        removed = len(board["rows"]) - len(kept)
        if report.added or report.replaced or removed or not Path(path).exists():
            save_board(new, path)
    return report, removed


__all__ = ["add_merged_row", "check_mergeable", "merge_seed_results", "merged_run_id"]
