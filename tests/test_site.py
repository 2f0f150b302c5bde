"""Leaderboard site: bench thumbnails, render --out site/, and the page in a real headless Chromium.

The board is built from real `bench` runs of two fast methods (bicubic, nearest) on the tiny
store with ``--thumbnails``, plus the paper-reported row. The Chromium test skips (one line) when
no chromium binary is installed; nothing is installed by the tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_results import make_results

from benchmarks.leaderboard import add_rows, read_rows, row_from_results
from benchmarks.leaderboard.board import empty_board
from benchmarks.leaderboard.render import group_rows
from benchmarks.leaderboard.site import ranking_table, render_site
from benchmarks.results import read_results
from deeplightmd.cli import cli

REPORTED = Path(__file__).resolve().parents[1] / "benchmarks" / "reported" / "deeplight_paper.yaml"
METHODS = ("bicubic", "nearest")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def site(tiny_store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered site of bicubic + nearest (with thumbnails) and the paper-reported row."""
    root = tmp_path_factory.mktemp("site")
    board = root / "lb.json"
    for method in METHODS:
        result = CliRunner().invoke(cli, [
            "bench", "--method", method, "--store", tiny_store, "--out",
            str(root / f"{method}.json"), "--leaderboard", str(board), "--quiet",
            "--max-test-clips", "4", "--thumbnails", str(root / "thumbs")])
        assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli, ["leaderboard", "--file", str(board), "add",
                                    str(REPORTED)]).exit_code == 0
    result = CliRunner().invoke(cli, ["leaderboard", "--file", str(board), "render", "--out",
                                      str(root / "site")])
    assert result.exit_code == 0, result.output
    return root


def test_bench_records_thumbnails(site: Path):
    doc = read_results(site / "bicubic.json")
    thumbs = doc["thumbnails"]
    assert len(thumbs["clips"]) == 3 and set(thumbs["regions"]) == set(doc["dataset"]["regions"])
    from PIL import Image

    clip = thumbs["clips"][0]
    assert clip["clip_id"] == doc["per_clip"]["clip_id"][0]
    with Image.open(clip["sr"]) as img:
        assert img.mode == "RGB" and max(img.size) >= 96
        assert np.asarray(img).std() > 1.0       # not a flat image
    row = json.loads((site / "lb.json").read_text())["rows"][0]
    assert row["thumbnails"] == thumbs
    assert not list((site / "thumbs").glob("*.tmp"))


def test_site_files(site: Path):
    out = site / "site"
    page = (out / "index.html").read_text()
    assert page.count("<table class=\"ranking\"") == 1 and "gmsd_log" in page
    for method in METHODS:
        assert re.search(rf"<td>{method}</td>", page)
        assert re.search(rf"src=\"img/g0_{method}_s0_clip\d+_sr.png\"", page)
        assert re.search(rf"src=\"img/g0_{method}_s0_region_\w+_sr.png\"", page)
    svgs = re.findall(r"src=\"(g0_\w+\.svg)\"", page)
    assert svgs == ["g0_psnr.svg", "g0_total_light.svg"]
    for name in svgs:
        svg = (out / name).read_text()
        assert re.search(r'<g id="errorbar-[^"]+">\s*<path', svg), name   # drawn error bars
    assert "Reported vs reproduced" in page and "+2.01…13.25 dB" in page
    assert "fingerprint <code>" in page and "Provenance" in page
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert (out / "leaderboard.md").is_file() and (out / "leaderboard.html").is_file()


def test_tier_column_shown_when_rows_have_tiers():
    rows = [row_from_results(make_results("a", [30.0, 31.0])),
            row_from_results(make_results("b", [29.0, 31.5]))]
    assert "<th>tier</th>" not in ranking_table(group_rows(rows)[0], "psnr")
    tiered = [{**rows[0], "tier": 1}, {**rows[1], "tier": 1}]
    table = ranking_table(group_rows(tiered)[0], "psnr")
    assert "<th>tier</th>" in table and table.count("<td>1</td>") == 3   # rank 1 + two tiers
    assert "30.500 [" in table


def test_provenance_shows_the_numerics_when_rows_have_them():
    from benchmarks.leaderboard.site import provenance_table
    row = row_from_results(make_results("a", [30.0, 31.0]))
    row["hardware"].update(threads=2, interop_threads=4, cpu_capability="AVX2",
                           cpu_flags=["avx2", "fma"], onednn="3.12.0")
    old = {**row, "method": "old", "hardware": {k: row["hardware"][k]
                                                for k in ("device", "cpu", "gpu", "torch")}}
    table = provenance_table(group_rows([row, old])[0])
    assert "<th>ISA</th>" in table and "<th>oneDNN</th>" in table
    cells = re.findall(r"<tr>(.*?)</tr>", table)   # header, a, old
    assert "<td>2 (+4 interop)</td><td>AVX2 (avx2, fma)</td><td>3.12.0</td>" in cells[1]
    assert "<td>–</td><td>–</td><td>–</td>" in cells[2]   # recorded before: shown as unknown


def test_reported_claim_against_reproduced_gain(tmp_path: Path):
    rows = [row_from_results(make_results("deeplightsr", [30.0, 32.0])),
            row_from_results(make_results("bicubic", [27.0, 27.0])),
            row_from_results(make_results("edsr", [30.0, 30.0]))]
    board, _ = add_rows(empty_board(), rows + read_rows(REPORTED))
    render_site(board["rows"], tmp_path / "s")
    page = (tmp_path / "s" / "index.html").read_text()
    # DeepLightSR 31.0 dB vs 27.0 and 30.0: reproduced gain +1.00…+4.00 dB against +2.01…13.25
    assert "PSNR gain over 2 method(s) +1.00…+4.00 dB" in page
    assert "no thumbnails recorded" in page


def test_render_into_a_file_is_one_error_line(tmp_path: Path):
    (tmp_path / "lb.json").write_text(json.dumps(
        add_rows(empty_board(), [row_from_results(make_results())])[0]))
    (tmp_path / "taken").write_text("a file")
    result = CliRunner().invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"),
                                      "render", "--out", str(tmp_path / "taken" / "site")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: cannot write") and result.output.count("\n") == 1
    assert (tmp_path / "taken").read_text() == "a file"


def _browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip("no chromium binary found (Debian: apt-get install chromium); "
                    "the site was not checked in a browser")
    return found


def _chromium(browser: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox",
                           "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
                           *args, url], capture_output=True, text=True, timeout=120, check=True)


def test_site_in_headless_chromium(site: Path, tmp_path: Path):
    """The page loads without console or JavaScript errors, every image (plots, SR crops and
    mosaics of both methods) decodes, and the screenshot is not blank."""
    browser = _browser()
    url = (site / "site" / "index.html").as_uri()
    dom = _chromium(browser, url, "--dump-dom")
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    assert "data-js-errors" not in body, body
    assert 'data-images-broken="0"' in body, body
    loaded = re.findall(r"<img class=\"([^\"]+)\" src=\"([^\"]+)\"[^>]*data-loaded=\"1\"",
                        dom.stdout)
    plots = [src for cls, src in loaded if cls == "plot"]
    assert len(plots) >= 2
    for method in METHODS:
        assert any(f"_{method}_" in src and src.endswith("_sr.png") for cls, src in loaded
                   if "sr" in cls.split()), method
    assert dom.stdout.count("<tr>") >= 1 + len(METHODS)

    shot = tmp_path / "page.png"
    _chromium(browser, url, f"--screenshot={shot}", "--window-size=1200,2400")
    from PIL import Image

    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20.0
    # the figures and thumbnails bring colour: many distinct colours, not just text on white
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500


def test_region_error_bars_when_rows_carry_region_cis():
    from benchmarks.leaderboard.site import psnr_figure, total_light_figure

    row = row_from_results(make_results("a", [30.0, 31.0]))
    assert "errorbar-psnr-r1" not in psnr_figure([row]).decode()
    row["regional"]["r1"].update(psnr_ci_low=17.0, psnr_ci_high=18.5,
                                 total_light_rel_error=-0.1)
    svg = psnr_figure([row]).decode()
    assert 'id="errorbar-psnr-local-0"' in svg and 'id="errorbar-psnr-r1-0"' in svg
    assert 'id="errorbar-total_light_rel_error-regions-0"' in total_light_figure([row]).decode()
    assert total_light_figure([row_from_results(make_results("b"))]) is None  # no such metric


def test_ranking_table_shows_regional_means_and_flags_rows_off_in_total_light():
    rows = [row_from_results(make_results("a", [30.0, 31.0])),
            row_from_results(make_results("b", [29.0, 31.5]))]
    rows[0]["regional"] = {"r1": {"psnr": 20.0, "total_light_rel_error": 0.3},
                           "r2": {"psnr": 22.0, "total_light_rel_error": 0.1}}
    rows[1]["regional"] = {"r1": {"psnr": 25.0, "total_light_rel_error": -0.1}}
    table = ranking_table(group_rows(rows)[0], "psnr")
    assert "<th>region_psnr (mean over regions)</th>" in table and "<th>flags</th>" in table
    body = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert "<td>a</td>" in body[0] and "<td>21.000</td>" in body[0]
    assert body[0].endswith("<td class=\"flag\">total light r1 +30 %</td>")
    assert body[1].endswith("<td>–</td>") and "class=\"flag\"" not in body[1]
    by_region = ranking_table(group_rows(rows)[0], "region_psnr")
    assert re.findall(r"<td>(a|b)</td>", by_region) == ["b", "a"]
