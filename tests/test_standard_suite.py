"""``make bench-standard``'s driver (benchmarks.standard_suite) on copies of the tiny store: runs
every method × seed per track, evaluates the standard checkpoints on the other track, merges the
seeds into one row per track and method, summarises with paired tests, and resumes."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from benchmarks.leaderboard.board import load_board
from benchmarks.results import read_results
from benchmarks.standard_suite import main, summary_markdown, track_summary

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_the_suite_runs_two_tracks_merges_seeds_and_resumes(tiny_store, tmp_path):
    out = tmp_path / "suite"
    out.mkdir()
    for name in ("standard.zarr", "generalization.zarr"):
        shutil.copytree(tiny_store, out / name)
    argv = ["--out", str(out), "--tracks", "standard,generalization", "--methods",
            "bicubic,srcnn", "--seeds", "0,1", "--steps", "3"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "[build] standard.zarr: complete, kept" in result.output
    assert result.output.count("[standard] ") == 4 and result.output.count("[generalization] ") == 4
    crossed = read_results(out / "generalization" / "srcnn_seed1.json")
    assert crossed["checkpoint"]["trained_in_this_run"] is False
    assert crossed["checkpoint"]["path"].endswith("standard/srcnn_seed1.safetensors")
    board = load_board(out / "leaderboard.json")
    assert sorted((r["method"], tuple(r["protocol"]["seeds"])) for r in board["rows"]) == \
        [("bicubic", (0, 1))] * 2 + [("srcnn", (0, 1))] * 2
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tracks"]) == {"standard", "generalization"}
    rows = summary["tracks"]["standard"]
    assert rows[0]["tier"] == 1 and rows[0]["p_vs_best"] is None
    assert all(0 <= r["p_vs_best"] <= 1 for r in rows[1:])
    assert "| tier | method | PSNR dB |" in (out / "summary.md").read_text()
    # a second run keeps every valid result and runs nothing again
    again = CliRunner().invoke(main, argv)
    assert again.exit_code == 0, again.output
    assert "[standard] " not in again.output and "[generalization] " not in again.output
    assert len(load_board(out / "leaderboard.json")["rows"]) == 4


def _doc(method: str, seed: int, psnr: list[float], region_psnr: float) -> dict:
    return {"protocol": {"seed": seed},
            "metrics": {"local": {"psnr": {"mean": sum(psnr) / len(psnr)},
                                  "ssim": {"mean": 0.9}},
                        "regional": {"A": {"psnr": region_psnr, "total_light_rel_error": -0.1},
                                     "B": {"psnr": region_psnr + 2,
                                           "total_light_rel_error": 0.3}}},
            "runtime": {"train_seconds": 10.0 * seed if method != "c" else None},
            "per_clip": {"clip_id": list(range(len(psnr))), "psnr": psnr}}


def test_track_summary_means_sds_and_holm_tiers_by_hand():
    n = 12
    better = [40.0 + i for i in range(n)]
    docs = {"a": [_doc("a", 0, better, 30.0), _doc("a", 1, [v + 1 for v in better], 32.0)],
            "b": [_doc("b", 0, [v - 3 for v in better], 28.0),
                  _doc("b", 1, [v - 2 for v in better], 28.0)],
            "c": [_doc("c", 0, [v - 3 + 0.01 * (i % 2) for i, v in enumerate(better)], 20.0),
                  _doc("c", 1, [v - 2 - 0.01 * (i % 2) for i, v in enumerate(better)], 20.0)]}
    rows = track_summary(docs)
    assert rows[0]["method"] == "a"
    a = rows[0]
    assert a["psnr"][0] == pytest.approx(sum(better) / n + 0.5)
    assert a["psnr"][1] == pytest.approx(2 ** 0.5 / 2)       # sd of (m, m + 1)
    assert a["region_psnr"] == pytest.approx((32.0, 2 ** 0.5))  # seeds: 31 and 33
    assert a["region_total_light_rel_error"] == pytest.approx((0.1, 0.0))
    assert a["train_seconds"] == pytest.approx((5.0, 50 ** 0.5))
    # a beats b and c on every clip (12 of 12: exact Wilcoxon p = 2/4096, Holm x3 and x2)
    assert [r["tier"] for r in rows] == [1, 2, 2]
    assert rows[1]["p_vs_best"] == pytest.approx(3 * 2 / 4096)
    text = summary_markdown({"machine": "m", "seeds": [0, 1], "seconds": {"build x": 60.0},
                             "wall_minutes": 2.0, "stores": {"standard": "`s`"},
                             "tracks": {"standard": [{**r, "n_clips": n, "n_regions": 2}
                                                     for r in rows]}})
    assert "| 1 | a | 46.00 ± 0.71 | 0.900 ± 0.000 | – | 32.00 ± 1.41 | +10.0 ± 0.0 % | 5 |" \
        in text
    assert text.count("% | – |") == 1  # c records no training time
