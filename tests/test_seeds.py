"""Several seeds as one leaderboard row: mean ± sd over seeds, hierarchical-bootstrap CI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_results import make_results

from benchmarks.leaderboard.seeds import merge_seed_results
from benchmarks.metrics._arrays import MetricInputError
from benchmarks.metrics.stats import bootstrap_ci, hierarchical_bootstrap_ci
from benchmarks.results import write_json
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError

PSNR = {0: [30.0, 31.0, 29.0, 30.5], 1: [32.0, 33.0, 31.0, 32.5], 2: [28.0, 29.5, 27.0, 28.5]}


def test_hierarchical_bootstrap_resamples_seeds_then_clips():
    rng = np.random.default_rng(0)
    base = rng.normal(30.0, 1.0, 20)
    groups = [base, base + 2.0, base + 4.0]
    ci = hierarchical_bootstrap_ci(groups, seed=3)
    assert ci.mean == pytest.approx(float(np.mean(base)) + 2.0) and ci.n == 60
    assert ci.ci_low < ci.mean < ci.ci_high
    assert ci == hierarchical_bootstrap_ci(groups, seed=3)              # reproducible
    pooled = bootstrap_ci(np.concatenate(groups), seed=3)
    # seed-to-seed spread widens the interval beyond the clip-only bootstrap
    assert ci.ci_high - ci.ci_low > 2.0 * (pooled.ci_high - pooled.ci_low)
    same = hierarchical_bootstrap_ci([[1.0, 1.0], [1.0, 1.0]])
    assert (same.ci_low, same.mean, same.ci_high) == (1.0, 1.0, 1.0)
    with pytest.raises(MetricInputError):
        hierarchical_bootstrap_ci([])
    with pytest.raises(MetricInputError):
        hierarchical_bootstrap_ci([[1.0], [float("nan")]])


def _docs() -> list[dict]:
    return [make_results("edsr", v, seed=s) for s, v in PSNR.items()]


def test_merged_row_keeps_each_seed_and_summarises_over_seeds():
    docs = _docs()
    row = merge_seed_results(docs)
    means = [float(np.mean(v)) for v in PSNR.values()]
    est = row["metrics"]["psnr"]
    assert est["mean"] == pytest.approx(np.mean(means)) and est["n"] == 12
    assert est["sd"] == pytest.approx(np.std(means, ddof=1))
    assert est["ci_low"] < est["mean"] < est["ci_high"]
    assert row["protocol"]["seeds"] == [0, 1, 2] and row["protocol"]["seed"] is None
    assert [r["seed"] for r in row["seed_runs"]] == [0, 1, 2]
    assert [r["run_id"] for r in row["seed_runs"]] == [d["run_id"] for d in docs]
    assert [r["metrics"]["psnr"] for r in row["seed_runs"]] == pytest.approx(means)
    assert row["clips"]["psnr"] == pytest.approx(np.mean(list(PSNR.values()), axis=0))
    assert row["regional"]["r1"]["psnr"] == 18.0 and row["regional"]["r1"]["lit_iou"] is None
    assert merge_seed_results(docs[::-1])["run_id"] == row["run_id"]  # order does not matter
    assert merge_seed_results(docs[:2])["run_id"] != row["run_id"]


def test_merged_ci_draws_the_shared_clips_once_for_all_seeds():
    """Seeds scored on the same clips: the interval is the crossed bootstrap's (seeds and one
    shared draw of clips), so three identical seeds are as uncertain as one."""
    from benchmarks.metrics.stats import crossed_bootstrap_ci

    docs = _docs()
    est = merge_seed_results(docs)["metrics"]["psnr"]
    ci = crossed_bootstrap_ci(np.array(list(PSNR.values())), seed=0)
    assert (est["mean"], est["ci_low"], est["ci_high"]) == pytest.approx(
        (ci.mean, ci.ci_low, ci.ci_high))
    clips = [30.0, 41.0, 25.0, 36.5, 44.0, 28.0]
    same = [make_results("edsr", clips, seed=s) for s in range(3)]
    merged = merge_seed_results(same)["metrics"]["psnr"]
    single = same[0]["metrics"]["local"]["psnr"]
    width = single["ci_high"] - single["ci_low"]
    assert merged["ci_high"] - merged["ci_low"] == pytest.approx(width, rel=0.15)
    # other clips per seed (not one store): each seed's clips are drawn on their own
    shifted = [make_results("edsr", clips, seed=0), make_results("edsr", clips, seed=1)]
    shifted[1]["per_clip"]["clip_id"] = [c + 100 for c in shifted[1]["per_clip"]["clip_id"]]
    nested = merge_seed_results(shifted)["metrics"]["psnr"]
    assert nested["ci_high"] - nested["ci_low"] < 0.9 * width


@pytest.mark.parametrize(("docs", "message"), [
    (lambda d: d[:1], "at least 2 seeds"),
    (lambda d: [d[0], make_results("edsr", [1.0, 2.0], seed=0)], "distinct seeds"),
    (lambda d: [d[0], make_results("srcnn", [1.0, 2.0], seed=1)], "method differ"),
    (lambda d: [d[0], make_results("edsr", [1.0, 2.0], fingerprint="cd" * 32, seed=1)],
     "store fingerprint, training store differ"),
])
def test_unmergeable_results_are_refused(docs, message):
    with pytest.raises(ConfigError, match=message):
        merge_seed_results(docs(_docs()))


def test_merge_seeds_command_makes_one_row(tmp_path: Path):
    files = []
    for k, doc in enumerate(_docs()):
        files.append(str(write_json(doc, tmp_path / f"s{k}.json")))
    board = str(tmp_path / "lb.json")
    run = CliRunner()
    assert run.invoke(cli, ["leaderboard", "--file", board, "add", *files]).exit_code == 0
    result = run.invoke(cli, ["leaderboard", "--file", board, "merge-seeds", *files,
                              "--out", str(tmp_path / "row.json")])
    assert result.exit_code == 0, result.output
    assert "1 row(s) added" in result.output and "3 per-seed row(s) merged away" in result.output
    (row,) = json.loads(Path(board).read_text())["rows"]
    assert row == json.loads((tmp_path / "row.json").read_text())
    assert row["protocol"]["seeds"] == [0, 1, 2]
    again = run.invoke(cli, ["leaderboard", "--file", board, "merge-seeds", *files])
    assert "0 row(s) added, 0 replaced, 1 unchanged" in again.output
    show = run.invoke(cli, ["leaderboard", "--file", board, "show"]).output
    line = next(ln for ln in show.splitlines() if " edsr " in ln)
    assert " 0,1,2 " in line and f"(sd {row['metrics']['psnr']['sd']:.3f})" in line
    before = Path(board).read_bytes()
    bad = run.invoke(cli, ["leaderboard", "--file", board, "merge-seeds", files[0], files[0]])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert bad.output.startswith("Error: merge-seeds needs distinct seeds")
    assert Path(board).read_bytes() == before


def test_bench_seeds_adds_one_row(tiny_store, tmp_path: Path):
    board = str(tmp_path / "lb.json")
    out = str(tmp_path / "bicubic_s{seed}.json")
    result = CliRunner().invoke(cli, ["bench", "--method", "bicubic", "--store", tiny_store,
                                      "--seeds", "0,1", "--out", out, "--leaderboard", board,
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(one row for seeds 0,1)" in result.output
    (row,) = json.loads(Path(board).read_text())["rows"]
    assert row["protocol"]["seeds"] == [0, 1]
    assert [r["run_id"] for r in row["seed_runs"]] == [
        json.loads(Path(out.format(seed=k)).read_text())["run_id"] for k in (0, 1)]
    for args, message in ((["--seeds", "0"], "at least 2 distinct"),
                          (["--seeds", "0,x"], "comma-separated integers"),
                          (["--seeds", "0,1", "--seed", "2"], "either --seed or --seeds"),
                          (["--seeds", "0,1", "--out", str(tmp_path / "one.json")], "{seed}")):
        bad = CliRunner().invoke(cli, ["bench", "--method", "bicubic", "--store", tiny_store,
                                       "--leaderboard", board, "--quiet", *args])
        assert bad.exit_code == 2 and message in bad.output, bad.output
        assert bad.output.count("\n") == 1 and bad.output.startswith("Error:")


def test_site_shows_a_merged_row_with_its_seeds_and_sd(tmp_path: Path):
    from benchmarks.leaderboard.site import render_site
    row = merge_seed_results(_docs())
    render_site([row], tmp_path / "site")
    page = (tmp_path / "site" / "index.html").read_text()
    ranking = page[page.index("<table class=\"ranking\""):]
    assert "<td>0,1,2</td>" in ranking
    assert f" sd {row['metrics']['psnr']['sd']:.3f}</td>" in ranking
