"""Leaderboard file: idempotent add, validation, grouping by fingerprint, rendering, comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_results import make_results

from benchmarks.leaderboard import (
    add_rows,
    compare_results,
    format_text,
    group_rows,
    load_board,
    read_rows,
    row_from_results,
)
from benchmarks.leaderboard.board import empty_board
from benchmarks.results import write_json
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError, SchemaError

REPORTED = Path(__file__).resolve().parents[1] / "benchmarks" / "reported" / "deeplight_paper.yaml"
FP_A, FP_B = "aa" * 32, "bb" * 32


def _lb(tmp_path: Path, *args: str):
    return CliRunner().invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"), *args])


def test_add_is_idempotent_and_replaces_same_key(tmp_path):
    write_json(make_results("m1", [20.0, 21.0]), tmp_path / "a.json")
    for _ in range(2):
        assert _lb(tmp_path, "add", str(tmp_path / "a.json")).exit_code == 0
    board = load_board(tmp_path / "lb.json")
    assert len(board["rows"]) == 1
    # same method + fingerprint + budget + seed, new numbers: replaced, not duplicated
    write_json(make_results("m1", [30.0, 31.0]), tmp_path / "a.json")
    result = _lb(tmp_path, "add", str(tmp_path / "a.json"))
    assert "0 row(s) added, 1 replaced" in result.output
    rows = load_board(tmp_path / "lb.json")["rows"]
    assert len(rows) == 1 and rows[0]["metrics"]["psnr"]["mean"] == 30.5
    # another seed is another row
    write_json(make_results("m1", [30.0, 31.0], seed=1), tmp_path / "b.json")
    _lb(tmp_path, "add", str(tmp_path / "b.json"))
    assert len(load_board(tmp_path / "lb.json")["rows"]) == 2


def test_invalid_rows_are_rejected(tmp_path):
    row = row_from_results(make_results())
    bad = {**row, "source": "guessed"}
    with pytest.raises(SchemaError, match="at field 'source'"):
        add_rows(empty_board(), [bad])
    missing = {k: v for k, v in row.items() if k != "hardware"}   # reproduced rows need it
    (tmp_path / "row.json").write_text(json.dumps(missing))
    result = _lb(tmp_path, "add", str(tmp_path / "row.json"))
    assert result.exit_code == 2 and "field 'hardware'" in result.output
    assert not (tmp_path / "lb.json").exists()
    nofp = {**row, "dataset": {"name": "x", "fingerprint": None}}
    with pytest.raises(SchemaError, match=r"at field 'dataset.fingerprint'"):
        add_rows(empty_board(), [nofp])


def test_show_groups_by_fingerprint(tmp_path):
    docs = [make_results("m1", [30, 31], FP_A), make_results("m2", [20, 21], FP_A),
            make_results("m3", [25, 26], FP_B)]
    board, _ = add_rows(empty_board(), [row_from_results(d) for d in docs])
    board, _ = add_rows(board, read_rows(REPORTED))
    groups = group_rows(board["rows"])
    assert [sorted(r["method"] for r in g.rows) for g in groups] == \
        [["m1", "m2"], ["m3"], ["deeplightsr"]]
    assert groups[-1].reported and groups[0].fingerprint == FP_A
    text = format_text(groups).splitlines()
    ranked = [ln.split()[:2] for ln in text if ln[:1].isdigit()]
    # m3 is first in its own group although m1 (other fingerprint) has a higher PSNR
    assert ranked == [["1", "m1"], ["2", "m2"], ["1", "m3"], ["1", "deeplightsr"]]
    (tmp_path / "lb.json").write_text(json.dumps(board))
    out = _lb(tmp_path, "show").output
    assert out.count("== ") == 3 and "paper-reported" in out and "+2.01…13.25 dB" in out


def test_reported_rows_have_no_invented_numbers():
    (row,) = read_rows(REPORTED)
    assert row["source"] == "reported" and row["metrics"] == {}
    assert row["dataset"]["fingerprint"] is None and "2402.15659" in row["citation"]
    claims = {c["metric"]: (c["min"], c["max"]) for c in row["claims"]}
    assert claims == {"psnr": (2.01, 13.25), "piqe": (0.49, 9.32)}


def test_render_writes_markdown_and_self_contained_html(tmp_path):
    docs = [make_results("m1", [30, 31], FP_A, params=1000, mpx=2.0),
            make_results("m2", [20, 21], FP_A, params=10, mpx=50.0)]
    board, _ = add_rows(empty_board(), [row_from_results(d) for d in docs] + read_rows(REPORTED))
    (tmp_path / "lb.json").write_text(json.dumps(board))
    result = _lb(tmp_path, "render", "--out", str(tmp_path / "site"), "--x", "params")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "| # | method |" in md and "| 1 | m1 |" in md and "2402.15659" in md
    html = (tmp_path / "site" / "leaderboard.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    assert "src=\"http" not in html and "<link" not in html and "<script" not in html


def test_compare_detects_clear_difference(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(25, 2, 30)
    a = make_results("good", (base + 1.0 + rng.normal(0, 0.2, 30)).tolist())
    b = make_results("bad", base.tolist())
    result = compare_results(a, b)
    assert result.significant and result.winner == "good" and result.p_value < 1e-4
    same = compare_results(b, make_results("bad2", base.tolist()))
    assert not same.significant and same.winner is None
    write_json(a, tmp_path / "a.json")
    write_json(b, tmp_path / "b.json")
    cli_out = _lb(tmp_path, "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert cli_out.exit_code == 0 and "good is better" in cli_out.output


def test_compare_refuses_other_fingerprint(tmp_path):
    a, b = make_results("a", fingerprint=FP_A), make_results("b", fingerprint=FP_B)
    with pytest.raises(ConfigError, match="different datasets"):
        compare_results(a, b)
    write_json(a, tmp_path / "a.json")
    write_json(b, tmp_path / "b.json")
    result = _lb(tmp_path, "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.exit_code == 2 and "different datasets" in result.output
    with pytest.raises(ConfigError, match="no per-clip 'nope'"):
        compare_results(a, make_results("c", fingerprint=FP_A), metric="nope")
