"""Significance tiers: Holm-corrected paired Wilcoxon tests on the per-clip values rows keep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_results import make_results

from benchmarks.leaderboard import add_rows, row_from_results
from benchmarks.leaderboard.board import empty_board, validate_row
from benchmarks.leaderboard.tiers import assign_tiers, clip_values, pair_p_value
from benchmarks.metrics.stats import holm_adjust
from deeplightmd.cli import cli
from deeplightmd.errors import SchemaError


def test_holm_adjust():
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.6, 0.5]) == [1.0, 1.0]
    assert holm_adjust([0.2]) == [0.2] and holm_adjust([]) == []


def test_rows_keep_their_per_clip_values_and_they_are_validated():
    doc = make_results("a", [30.0, 31.0, 29.5])
    row = row_from_results(doc)
    assert row["clips"] == doc["per_clip"]
    assert clip_values(row, "psnr") == {0: -30.0, 1: -31.0, 2: -29.5}   # badness: lower = better
    assert clip_values(row, "piqe") == {} and clip_values(row, "nope") is None
    bad = {**row, "clips": {**row["clips"], "psnr": [30.0, 130.0, 29.5]}}
    with pytest.raises(SchemaError, match=r"clips\.psnr\.1"):
        validate_row(bad)


def _rows(psnrs: dict[str, np.ndarray]) -> list[dict]:
    return [row_from_results(make_results(m, list(map(float, v)))) for m, v in psnrs.items()]


def _data(seed: int = 0, n: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = 35.0 + rng.normal(0.0, 2.0, n)
    b = a - 0.25 + rng.normal(0.0, 0.3, n)          # slightly worse than a
    c = a - 5.0 + rng.normal(0.0, 0.1, n)           # clearly worse
    d = c + rng.normal(0.0, 0.3, n)                 # indistinguishable from c
    return {"a": a, "b": b, "c": c, "d": d}


def test_tiers_group_rows_the_tests_cannot_separate_and_holm_matters():
    rows = _rows(_data())
    va, vb = clip_values(rows[0], "psnr"), clip_values(rows[1], "psnr")
    p_ab = pair_p_value(va, vb)
    assert 1e-3 < p_ab < 0.2                         # a and b: separable without correction
    ordered = sorted(rows, key=lambda r: -r["metrics"]["psnr"]["mean"])
    assert [r["method"] for r in ordered[:2]] == ["a", "b"]
    # two rows, one test: alpha above p separates them, below p ties them
    assert assign_tiers(ordered[:2], "psnr", alpha=1.5 * p_ab) == [1, 2]
    assert assign_tiers(ordered[:2], "psnr", alpha=0.5 * p_ab) == [1, 1]
    # four rows, six tests: Holm doubles a–b's p (5th smallest of 6), so they are tied at the
    # same alpha, while c and d (5 dB below) form the second tier
    assert assign_tiers(ordered, "psnr", alpha=1.5 * p_ab) == [1, 1, 2, 2]
    assert assign_tiers(ordered, "psnr") == [1, 2, 3, 3]      # alpha 0.05 separates a and b
    # rows without per-clip values of the metric, and regional rankings, get no tier
    no_clips = {k: v for k, v in ordered[0].items() if k != "clips"}
    assert assign_tiers([no_clips, *ordered[1:]], "psnr") == [None, 1, 2, 2]
    assert assign_tiers(ordered, "region_psnr") == [None] * 4


def test_show_and_render_show_tiers(tmp_path: Path):
    board, _ = add_rows(empty_board(), _rows(_data()))
    (tmp_path / "lb.json").write_text(json.dumps(board))
    run = CliRunner()
    out = run.invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"), "show"]).output
    assert out.splitlines()[1].split()[:3] == ["#", "tier", "method"]
    ranked = [ln.split()[:3] for ln in out.splitlines() if ln[:1].isdigit()]
    assert ranked[:2] == [["1", "1", "a"], ["2", "2", "b"]]
    assert sorted(r[1:] for r in ranked[2:]) == [["3", "c"], ["3", "d"]]   # tied
    result = run.invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"), "render",
                              "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<th>tier</th>" in page and "Holm" in page
    assert "| # | tier | method |" in (tmp_path / "site" / "leaderboard.md").read_text()
