"""Leaderboard file: idempotent add, validation, grouping by fingerprint, rendering, comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_results import (
    FP,
    make_results,
)

from benchmarks.leaderboard import (
    add_rows,
    compare_results,
    format_text,
    group_rows,
    load_board,
    read_rows,
    row_from_results,
    row_key,
)
from benchmarks.leaderboard.board import empty_board
from benchmarks.results import write_json
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError, SchemaError

REPORTED = Path(__file__).resolve().parents[1] / "benchmarks" / "reported" / "deeplight_paper.yaml"
FP_A, FP_B = "aa" * 32, "bb" * 32


def _lb(tmp_path: Path, *args: str):
    return CliRunner().invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"), *args])


def test_add_is_idempotent_a_repeated_run_adds_a_row_and_replace_is_explicit(tmp_path):
    doc = make_results("m1", [20.0, 21.0])
    write_json(doc, tmp_path / "a.json")
    first = _lb(tmp_path, "add", str(tmp_path / "a.json"))
    assert first.exit_code == 0 and "1 row(s) added, 0 replaced, 0 unchanged" in first.output
    again = _lb(tmp_path, "add", str(tmp_path / "a.json"))   # the same file: nothing changes
    assert again.exit_code == 0 and "0 row(s) added, 0 replaced, 1 unchanged" in again.output
    assert len(load_board(tmp_path / "lb.json")["rows"]) == 1
    # a repeated run (same method, store, budget, seed; new run id) is another row
    write_json(make_results("m1", [30.0, 31.0]), tmp_path / "b.json")
    result = _lb(tmp_path, "add", str(tmp_path / "b.json"))
    assert "1 row(s) added, 0 replaced" in result.output
    assert len(load_board(tmp_path / "lb.json")["rows"]) == 2
    # same key, other numbers: refused (file unchanged) unless --replace
    write_json({**doc, "metrics": {**doc["metrics"], "local": {
        **doc["metrics"]["local"], "psnr": {"mean": 40.0, "ci_low": 39.0, "ci_high": 41.0,
                                            "n": 2}}}}, tmp_path / "a2.json")
    before = (tmp_path / "lb.json").read_bytes()
    refused = _lb(tmp_path, "add", str(tmp_path / "a2.json"))
    assert refused.exit_code == 2 and "pass --replace" in refused.output
    assert (tmp_path / "lb.json").read_bytes() == before
    replaced = _lb(tmp_path, "add", "--replace", str(tmp_path / "a2.json"))
    assert replaced.exit_code == 0 and "0 row(s) added, 1 replaced" in replaced.output
    rows = load_board(tmp_path / "lb.json")["rows"]
    assert len(rows) == 2 and sorted(r["metrics"]["psnr"]["mean"] for r in rows) == [30.5, 40.0]
    # another seed is another row
    write_json(make_results("m1", [30.0, 31.0], seed=1), tmp_path / "c.json")
    _lb(tmp_path, "add", str(tmp_path / "c.json"))
    assert len(load_board(tmp_path / "lb.json")["rows"]) == 3


def test_row_identity_includes_the_training_store_and_the_run_id():
    doc = make_results("m1")
    row = row_from_results(doc)
    assert row["run_id"] == doc["run_id"] and row["training_fingerprint"] == FP
    other_store = {**doc, "checkpoint": {"path": "w.safetensors", "sha256": "cc" * 32,
                                         "trained_in_this_run": False,
                                         "store_fingerprint": FP_B}}
    moved = row_from_results(other_store)
    assert moved["training_fingerprint"] == FP_B and row_key(moved) != row_key(row)
    board, report = add_rows(empty_board(), [row, moved])
    assert (report.added, report.replaced, len(board["rows"])) == (2, 0, 2)


def test_two_rows_with_one_key_in_one_add(tmp_path):
    """Documented: identical rows of one add are added once; differing ones are refused."""
    row = row_from_results(make_results("m1"))
    board, report = add_rows(empty_board(), [row, dict(row)])
    assert (report.added, report.unchanged, len(board["rows"])) == (1, 0, 1)
    other = {**row, "metrics": {"psnr": {"mean": 1.0}}}
    with pytest.raises(SchemaError, match="new rows 0 and 1 have the same key"):
        add_rows(empty_board(), [row, other])
    (tmp_path / "two.json").write_text(json.dumps({"rows": [row, other]}))
    result = _lb(tmp_path, "add", str(tmp_path / "two.json"))
    assert result.exit_code == 2 and not (tmp_path / "lb.json").exists()


def test_protocol_steps_is_kept_in_a_row():
    doc = make_results("m1")
    assert row_from_results(doc)["protocol"]["steps"] == doc["protocol"]["steps"] == 1
    row = row_from_results(doc)
    dropped = {**row, "protocol": {"budget": "small", "seed": 0}}
    with pytest.raises(SchemaError, match=r"protocol\.steps"):
        add_rows(empty_board(), [dropped])


def test_board_is_validated_on_load_and_on_save(tmp_path):
    from benchmarks.leaderboard import save_board

    row = row_from_results(make_results("m1"))
    bad = {"schema_version": 2, "rows": [{**row, "source": "guessed"}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SchemaError, match=r"row 0 .*field .rows\.0\.source."):
        load_board(tmp_path / "bad.json")
    with pytest.raises(SchemaError, match=r"field .rows\.0\.source."):
        save_board(bad, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_version_1_boards_are_read_and_upgraded(tmp_path):
    row = row_from_results(make_results("m1"))
    old = {k: v for k, v in row.items() if k not in ("run_id", "training_fingerprint")}
    old["protocol"] = {"budget": "small", "seed": 0}
    (tmp_path / "lb.json").write_text(json.dumps({"schema_version": 1, "rows": [old]}))
    board = load_board(tmp_path / "lb.json")
    assert board["schema_version"] == 2 and board["rows"][0]["run_id"] is None
    assert "version 1" in _lb(tmp_path, "validate").output
    write_json(make_results("m1"), tmp_path / "a.json")
    assert _lb(tmp_path, "add", str(tmp_path / "a.json")).exit_code == 0
    assert json.loads((tmp_path / "lb.json").read_text())["schema_version"] == 2
    assert len(load_board(tmp_path / "lb.json")["rows"]) == 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308])
def test_non_finite_or_out_of_range_psnr_is_refused_and_the_file_unchanged(tmp_path, value):
    row = row_from_results(make_results("m1"))
    write_json({"schema_version": 2, "rows": [row]}, tmp_path / "lb.json")
    before = (tmp_path / "lb.json").read_bytes()
    bad = {**row, "run_id": "x", "metrics": {"psnr": {"mean": value}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))          # NaN / Infinity tokens
    result = _lb(tmp_path, "add", str(tmp_path / "bad.json"))
    assert result.exit_code == 2 and "field 'metrics.psnr.mean'" in result.output
    assert (tmp_path / "lb.json").read_bytes() == before
    # the same value inside the board: validate names the row and field; add refuses
    (tmp_path / "lb.json").write_text(json.dumps({"schema_version": 2, "rows": [row, bad]}))
    before = (tmp_path / "lb.json").read_bytes()
    result = _lb(tmp_path, "validate")
    assert result.exit_code == 2
    assert "row 1 (m1), field 'rows.1.metrics.psnr.mean'" in result.output
    write_json(make_results("m2"), tmp_path / "c.json")
    assert _lb(tmp_path, "add", str(tmp_path / "c.json")).exit_code == 2
    assert (tmp_path / "lb.json").read_bytes() == before


def test_show_and_render_refuse_a_missing_file_and_an_unknown_metric(tmp_path):
    result = _lb(tmp_path, "show")
    assert result.exit_code == 2 and "not found" in result.output
    write_json(make_results("m1"), tmp_path / "a.json")
    _lb(tmp_path, "add", str(tmp_path / "a.json"))
    assert _lb(tmp_path, "show").exit_code == 0
    for cmd in (["show"], ["render", "--out", str(tmp_path / "site")]):
        result = _lb(tmp_path, *cmd, "--metric", "foo")
        assert result.exit_code == 2 and "unknown metric 'foo'" in result.output
    assert not (tmp_path / "site").exists()


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


def _regional_row(method: str, psnr: list[float], regional: dict[str, dict[str, float]]) -> dict:
    """A row with the given per-clip PSNR and regional metrics."""
    return {**row_from_results(make_results(method, psnr)), "regional": regional}


def test_show_has_regional_columns_flags_and_ranks_by_a_regional_metric(tmp_path):
    far = _regional_row("far", [30.0, 31.0], {
        "r1": {"psnr": 18.0, "total_light_rel_error": 0.10, "lit_iou": 0.5, "admin_r2": 0.9},
        "r2": {"psnr": 20.0, "total_light_rel_error": -0.40, "lit_iou": 0.7, "admin_r2": 0.7}})
    near = _regional_row("near", [25.0, 26.0], {
        "r1": {"psnr": 25.0, "total_light_rel_error": 0.02, "lit_iou": 0.8, "admin_r2": 0.95},
        "r2": {"psnr": 24.0, "total_light_rel_error": 0.05, "lit_iou": 0.6, "admin_r2": 0.85}})
    board, _ = add_rows(empty_board(), [far, near])
    (tmp_path / "lb.json").write_text(json.dumps(board))

    out = _lb(tmp_path, "show").output
    assert out.splitlines()[1].split()[5:] == [
        "psnr", "ssim", "region_psnr", "region_total_light_rel_error", "region_lit_iou",
        "region_admin_r2", "params", "Mpx/s", "date", "flags"]
    ranked = [ln.split()[:3] for ln in out.splitlines() if ln[:1].isdigit()]
    assert ranked == [["1", "1", "far"], ["2", "1", "near"]]   # local PSNR; 2 clips: tied
    far_line = next(ln for ln in out.splitlines() if " far " in ln)
    near_line = next(ln for ln in out.splitlines() if " near " in ln)
    assert "19.000" in far_line and "-0.150" in far_line and "0.600" in far_line   # region means
    assert far_line.rstrip().endswith("total light r2 -40 %")
    assert near_line.rstrip().endswith("–") and "total light" not in near_line
    assert "off by more than 25 %" in out
    for metric in ("region_psnr", "region_total_light_rel_error", "region_admin_r2"):
        out = _lb(tmp_path, "show", "--rank-by", metric).output
        assert [ln.split()[1] for ln in out.splitlines() if ln[:1].isdigit()] == ["near", "far"]
        assert f"ranked by {metric}" in out
    result = _lb(tmp_path, "show", "--rank-by", "nope")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: unknown metric 'nope'") and "region_psnr" in line \
        and "psnr, " in line


def test_total_light_flag_tolerance():
    from benchmarks.leaderboard.render import TOTAL_LIGHT_TOLERANCE, light_flags
    assert TOTAL_LIGHT_TOLERANCE == 0.25
    row = _regional_row("m", [30.0, 31.0], {
        "a": {"total_light_rel_error": 0.25}, "b": {"total_light_rel_error": -0.2501},
        "c": {"total_light_rel_error": 0.96}, "d": {"psnr": 20.0}})
    assert light_flags(row) == ["total light b -25 %", "total light c +96 %"]
    assert light_flags(row, tolerance=1.0) == []


def _paired(name_a: str = "A", name_b: str = "B"):
    """Ten clips, A = B + 0.1, 0.2, ..., 1.0: every paired difference positive and distinct."""
    b = [20.0 + i for i in range(10)]
    a = [v + 0.1 * (i + 1) for i, v in enumerate(b)]
    return make_results(name_a, a), make_results(name_b, b)


def test_compare_numbers_and_summary_by_hand():
    """W = 0 (no negative difference) and the exact two-sided p = 2 / 2**10."""
    a, b = _paired()
    c = compare_results(a, b)
    assert (c.method_a, c.method_b, c.metric, c.n, c.alpha) == ("A", "B", "psnr", 10, 0.05)
    assert c.mean_a == pytest.approx(25.05) and c.mean_b == pytest.approx(24.5)
    assert c.median_difference == pytest.approx(0.55)
    assert c.statistic == 0.0 and c.p_value == pytest.approx(2 / 1024)
    assert c.significant and c.winner == "A"
    assert c.summary() == ("psnr: A 25.0500 vs B 24.5000 (median paired difference +0.5500, "
                           "n = 10 clips); Wilcoxon signed-rank W = 0, p = 0.00195 → A is better "
                           "at alpha = 0.05")
    swapped = compare_results(b, a)
    assert swapped.winner == "A" and swapped.median_difference == pytest.approx(-0.55)
    strict = compare_results(a, b, alpha=0.001)
    assert not strict.significant and strict.winner is None
    assert strict.summary().endswith("→ no significant difference at alpha = 0.001")


def test_compare_lower_is_better_metrics_and_missing_clips():
    """For an error metric the lower run wins; clips missing from one run or null in either are
    left out of the pairing."""
    a, b = _paired()
    for doc in (a, b):
        doc["per_clip"]["rmse"] = list(doc["per_clip"]["psnr"])
    c = compare_results(a, b, metric="rmse")
    assert c.winner == "B" and c.median_difference == pytest.approx(0.55)
    a["per_clip"]["clip_id"].append(99)
    a["per_clip"]["psnr"].append(1.0)
    b["per_clip"]["psnr"][0] = None
    c = compare_results(a, b)
    assert c.n == 9 and c.mean_b == pytest.approx(sum(range(21, 30)) / 9)


def test_compare_error_messages_are_exact():
    a, b = make_results("a", fingerprint=FP_A), make_results("b", fingerprint=FP_B)
    with pytest.raises(ConfigError, match=r"^cannot compare runs on different datasets: a ran on "
                       r"fingerprint a{12}…, b on b{12}…$"):
        compare_results(a, b)
    c = make_results("c", fingerprint=FP_A)
    with pytest.raises(ConfigError, match=r"^results of a have no per-clip 'nope'; known: piqe, "
                       r"psnr, ssim$"):
        compare_results(a, c, metric="nope")
    a["per_clip"]["nope"] = [1.0] * 4
    with pytest.raises(ConfigError, match=r"^results of c have no per-clip 'nope'"):
        compare_results(a, c, metric="nope")
    with pytest.raises(ConfigError, match=r"^results of a and c share no test clip with a finite "
                       r"piqe$"):
        compare_results(a, c, metric="piqe")


def test_load_board_of_a_missing_file(tmp_path):
    assert load_board(tmp_path / "none.json") == empty_board()
    with pytest.raises(SchemaError, match=r"^leaderboard file '.*none\.json' not found \(expected "
                       r"a JSON file written by `deeplightmd leaderboard add` or `bench`\)$"):
        load_board(tmp_path / "none.json", missing_ok=False)


def test_a_held_lock_times_out_with_a_named_error(tmp_path):
    import filelock

    from benchmarks.leaderboard.board import board_lock
    from deeplightmd.errors import OutputError

    path = tmp_path / "sub" / "lb.json"
    with board_lock(path):  # creates the folder; the lock is free again afterwards
        assert (tmp_path / "sub" / "lb.json.lock").exists()
    holder = filelock.FileLock(f"{path}.lock")
    with holder, pytest.raises(OutputError, match=r"^leaderboard '.*lb\.json' is locked by another "
                                                  r"process \(.*lb\.json\.lock held for more than "
                                                  r"0\.05 s\)$"):
        with board_lock(path, timeout=0.05):
            pass


def test_training_fingerprint_follows_the_checkpoint():
    from benchmarks.leaderboard.board import training_fingerprint

    doc = {"dataset": {"fingerprint": FP_A}}
    assert training_fingerprint(doc) == FP_A
    loaded = {**doc, "checkpoint": {"trained_in_this_run": False, "store_fingerprint": FP_B}}
    assert training_fingerprint(loaded) == FP_B
    trained = {**doc, "checkpoint": {"trained_in_this_run": True, "store_fingerprint": FP_B}}
    assert training_fingerprint(trained) == FP_A


def test_rows_from_documents_of_every_shape(tmp_path):
    from benchmarks.leaderboard.board import rows_from_document

    row = row_from_results(make_results("m1"))
    other = {**row, "method": "m2"}
    assert rows_from_document(row, "x") == [row]
    assert rows_from_document([row, other], "x") == [row, other]
    assert rows_from_document({"rows": [row]}, "x") == [row]
    with pytest.raises(SchemaError, match=r"^x: expected 'rows' to be a list, found str$"):
        rows_from_document({"rows": "no"}, "x")
    with pytest.raises(SchemaError, match=r"x row 1\b.*source"):
        rows_from_document([row, {**row, "source": "guessed"}], "x")
    with pytest.raises(SchemaError, match=r"^x\b.*source") as err:
        rows_from_document({**row, "source": "guessed"}, "x")
    assert "row 0" not in str(err.value)
    with pytest.raises(SchemaError, match=r"^.*missing\.yaml: file not found$"):
        read_rows(tmp_path / "missing.yaml")
    (tmp_path / "bad.yml").write_text("a: [1,\n")
    with pytest.raises(SchemaError, match=r"bad\.yml is not valid YAML: while parsing a flow "
                                          r"node$"):
        read_rows(tmp_path / "bad.yml")


def test_add_reports_and_conflict_messages_are_exact():
    from benchmarks.leaderboard.board import AddReport

    assert AddReport(2, 0, 1).summary() == "2 row(s) added, 0 replaced, 1 unchanged"
    row = row_from_results(make_results("m1"))
    board, report = add_rows(empty_board(), [row])
    assert report == AddReport(1, 0, 0) and board["rows"] == [row]
    changed = {**row, "metrics": {"psnr": {"mean": 1.0}}}
    run = row["run_id"]
    with pytest.raises(SchemaError, match=rf"^new row 0 m1 \(reproduced, budget small, seed 0, "
                       rf"run {run}\) has the key of leaderboard row 0 but other values; pass "
                       rf"--replace to replace it$"):
        add_rows(board, [changed])
    new, report = add_rows(board, [changed], replace=True)
    assert report == AddReport(0, 1, 0) and new["rows"] == [changed]
    assert board["rows"] == [row]  # the given board is not changed


def test_row_key_and_upgrade_details():
    row = row_from_results(make_results("m1"))
    key = row_key(row)
    assert key == ("m1", "reproduced", FP, row["training_fingerprint"], "small", 0, row["run_id"])
    reported = {**row, "dataset": {"name": "paper-set"}, "protocol": None}
    assert row_key(reported)[2:] == ("paper-set", row["training_fingerprint"], None, None,
                                     row["run_id"])
    from benchmarks.leaderboard.board import upgrade_board

    v1 = {"schema_version": 1, "rows": [{"method": "x", "protocol": {"steps": 5}}]}
    up = upgrade_board(v1)
    assert up["rows"][0] == {"run_id": None, "training_fingerprint": None, "method": "x",
                             "protocol": {"steps": 5}}
    assert up["schema_version"] == 2
    v2 = {"schema_version": 2, "rows": []}
    assert upgrade_board(v2) is v2


def test_compare_refuses_a_per_clip_list_of_another_length():
    """A per-clip column shorter than clip_id is an error, never silently paired by position."""
    a, b = _paired()
    a["per_clip"]["psnr"].pop()
    with pytest.raises(ValueError, match="zip"):
        compare_results(a, b)
    a, b = _paired()
    b["per_clip"]["psnr"].pop()
    with pytest.raises(ValueError, match="zip"):
        compare_results(a, b)


def test_row_from_results_copies_every_documented_field():
    """A reproduced row is the results' identity, metrics and provenance, field by field
    (docs/leaderboard.md "Rows"); nothing is renamed, defaulted or dropped on the way."""
    doc = make_results("m", [20.0, 22.0], seed=3)
    doc["hardware"].update(device="cpu", cpu="CPU X", gpu=None, torch="9.9", threads=2,
                           onednn="v3.9")
    doc["runtime"] = {"train_seconds": 12.5, "inference_seconds": 0.5,
                      "megapixels_per_second": 2.0, "total_seconds": 14.0, "other": 1}
    doc["thumbnails"] = {"clips": [], "regions": {"r1": {"sr": "a.png", "hr": "b.png"}}}
    row = row_from_results(doc)
    assert (row["method"], row["version"], row["family"], row["params"], row["source"],
            row["citation"]) == ("m", "0.1.0", "interpolation", 10, "reproduced", "ref")
    assert row["dataset"] == {"name": "fake", "fingerprint": doc["dataset"]["fingerprint"]}
    assert row["training_fingerprint"] == doc["dataset"]["fingerprint"]
    assert row["run_id"] == doc["run_id"] and row["split"] == doc["dataset"]["split"]
    assert row["protocol"] == {"budget": "small", "seed": 3, "steps": 1}
    assert row["metrics"] == doc["metrics"]["local"] and row["metrics"] is not \
        doc["metrics"]["local"]
    assert row["regional"] == doc["metrics"]["regional"]
    assert row["clips"] == doc["per_clip"]
    assert {k: row["hardware"][k] for k in ("device", "cpu", "gpu", "torch")} == {
        "device": "cpu", "cpu": "CPU X", "gpu": None, "torch": "9.9"}
    assert row["hardware"]["threads"] == 2 and row["hardware"]["onednn"] == "v3.9"
    assert row["runtime"] == {"train_seconds": 12.5, "inference_seconds": 0.5,
                              "megapixels_per_second": 2.0, "total_seconds": 14.0}
    assert (row["git_commit"], row["date"]) == (doc["git_commit"], doc["date"])
    assert row["thumbnails"] == doc["thumbnails"]
    del doc["thumbnails"], doc["method"]["family"], doc["method"]["citation"]
    bare = row_from_results(doc)
    assert "thumbnails" not in bare and bare["family"] == "" and bare["citation"] == ""


def test_board_errors_name_their_source_and_add_counts_every_row(tmp_path):
    """Every validation error names what failed (the file, "new row N", "leaderboard row"),
    identical duplicates in one add do not stop later rows, and the report counts each row."""
    from benchmarks.leaderboard import save_board
    from benchmarks.leaderboard.board import (
        AddReport,
        add_to_file,
        upgrade_board,
        validate_board,
        validate_row,
    )

    assert empty_board() == {"schema_version": 2, "rows": []}
    row = row_from_results(make_results("m1"))
    bad = {**row, "source": "guessed"}
    with pytest.raises(SchemaError, match=r"^leaderboard row fails the leaderboard schema"):
        validate_row(bad)
    with pytest.raises(SchemaError, match=r"^leaderboard fails the leaderboard schema"):
        validate_board({"schema_version": 2, "rows": [bad]})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema_version": 2, "rows": [bad]}))
    with pytest.raises(SchemaError, match=rf"^{path} fails the leaderboard schema"):
        load_board(path)
    with pytest.raises(SchemaError, match=rf"^{tmp_path / 'out.json'} fails the leaderboard"):
        save_board({"schema_version": 2, "rows": [bad]}, tmp_path / "out.json")
    with pytest.raises(SchemaError, match=r"^new row 1 fails the leaderboard schema"):
        add_rows(empty_board(), [row, bad])
    results = make_results("m1")
    results["per_clip"]["psnr"] = "oops"
    write_json(results, tmp_path / "r.json")
    with pytest.raises(SchemaError, match=rf"^{tmp_path / 'r.json'} fails the results schema"):
        read_rows(tmp_path / "r.json")
    # a version-1 board keeps a malformed row as it is, for validation to name it
    assert upgrade_board({"schema_version": 1, "rows": [5]}) == {"schema_version": 2,
                                                                "rows": [5]}
    # duplicates in one add are skipped without dropping the rows after them
    rows = [row_from_results(make_results(m)) for m in ("m1", "m2", "m3")]
    board, report = add_rows(empty_board(), [rows[0], dict(rows[0]), rows[1], rows[2]])
    assert report == AddReport(3, 0, 0) and [r["method"] for r in board["rows"]] == \
        ["m1", "m2", "m3"]
    _, report = add_rows(board, rows[:2])
    assert report == AddReport(0, 0, 2)
    changed = [{**r, "metrics": {"psnr": {"mean": 1.0}}} for r in rows[:2]]
    _, report = add_rows(board, changed, replace=True)
    assert report == AddReport(0, 2, 0)
    other = {**rows[0], "metrics": {"psnr": {"mean": 2.0}}}
    run = rows[0]["run_id"]
    with pytest.raises(SchemaError, match=rf"^new rows 0 and 1 have the same key m1 \(reproduced, "
                                          rf"budget small, seed 0, run {run}\) but different "
                                          r"values; add them one at a time with --replace or "
                                          r"give them different run ids$"):
        add_rows(empty_board(), [rows[0], other])
    # the file: created even by an add of nothing, locked beside itself, never replaced silently
    lb = tmp_path / "sub" / "lb.json"
    lb.parent.mkdir()
    assert add_to_file(lb, []) == AddReport(0, 0, 0)
    assert json.loads(lb.read_text()) == empty_board()
    assert add_to_file(lb, [rows[0]]) == AddReport(1, 0, 0)
    assert (tmp_path / "sub" / "lb.json.lock").exists()
    with pytest.raises(SchemaError, match="pass --replace to replace it"):
        add_to_file(lb, [changed[0]])
    assert load_board(lb)["rows"] == [rows[0]]


def test_a_row_of_results_without_regional_metrics_has_none():
    doc = make_results("m1")
    doc["metrics"].pop("regional", None)
    assert row_from_results(doc)["regional"] == {}
