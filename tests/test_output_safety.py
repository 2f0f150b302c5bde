"""Results and leaderboards are never lost: atomic writes, the leaderboard lock, and one-line
errors (exit 2, previous file intact) when a write fails (file-size limit, read-only folder)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_results import make_results

from benchmarks.leaderboard import load_board, row_from_results
from benchmarks.results import read_results, write_json
from deeplightmd import atomic
from deeplightmd.cli import cli
from deeplightmd.errors import OutputError

#: a child that waits for ``go`` then runs ``leaderboard add`` of its own results on each board
_ADDER = textwrap.dedent("""
    import os, sys, time
    from deeplightmd.cli import cli
    folder, i, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    open(os.path.join(folder, f"ready{i}"), "w").close()
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.002)
    codes = []
    for r in range(rounds):
        try:
            cli.main(["leaderboard", "--file", os.path.join(folder, f"lb{r}.json"), "add",
                      os.path.join(folder, f"r{i}.json")], prog_name="deeplightmd",
                     standalone_mode=False)
            codes.append(0)
        except Exception as exc:
            codes.append(f"{type(exc).__name__}: {exc}")
    print(codes)
""")


def test_eight_concurrent_adds_keep_every_row_five_times_over(tmp_path):
    """8 processes add one row each to one file, at once; 5 files (rounds) in a row."""
    n, rounds = 8, 5
    for i in range(n):
        write_json(make_results(f"m{i}"), tmp_path / f"r{i}.json")
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER, str(tmp_path), str(i), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    deadline = time.time() + 300
    while sum((tmp_path / f"ready{i}").exists() for i in range(n)) < n:
        assert time.time() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for out, _ in outs:   # every process reports its own row added, every round
        assert out.strip().splitlines()[-1] == str([0] * rounds), outs
        assert out.count("1 row(s) added, 0 replaced, 0 unchanged") == rounds, outs
    for r in range(rounds):
        doc = json.loads((tmp_path / f"lb{r}.json").read_text())   # valid JSON
        assert sorted(row["method"] for row in doc["rows"]) == [f"m{i}" for i in range(n)]
        assert len(load_board(tmp_path / f"lb{r}.json")["rows"]) == n
    assert not list(tmp_path.glob(".lb*.tmp*")), "temporary files left behind"


def _limit_file_size(nbytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr[-2000:]
    return lines[0]


def test_a_size_limited_write_leaves_the_previous_leaderboard_intact(tmp_path):
    board = tmp_path / "lb.json"
    for i in range(6):
        write_json(make_results(f"m{i}"), tmp_path / f"r{i}.json")
    assert CliRunner().invoke(cli, ["leaderboard", "--file", str(board), "add",
                                    *[str(tmp_path / f"r{i}.json") for i in range(6)]]
                              ).exit_code == 0
    before = board.read_bytes()
    write_json(make_results("m6"), tmp_path / "new.json")
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "leaderboard", "--file",
                           str(board), "add", str(tmp_path / "new.json")],
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(len(before) // 2))
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_error_line(proc.stderr)
    assert "File too large" in line and "previous file is left unchanged" in line, line
    assert board.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_size_limited_bench_keeps_the_previous_results(tiny_store, tmp_path):
    out = tmp_path / "res.json"
    write_json(make_results("previous"), out)
    before = out.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "bench", "--method",
                           "bicubic", "--store", tiny_store, "--out", str(out), "--quiet",
                           "--no-leaderboard", "--max-test-clips", "2", "--tile", "16",
                           "--overlap", "4"], capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(4096))
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_error_line(proc.stderr)
    assert f"cannot write {str(out)!r}: File too large" in line, line
    assert out.read_bytes() == before and read_results(out)["method"]["name"] == "previous"


def test_writes_into_a_read_only_folder_are_one_line_errors(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="Permission denied; nothing was written"):
            atomic.write_json({"a": 1}, folder / "x.json")
        result = CliRunner().invoke(cli, ["leaderboard", "--file", str(folder / "lb.json"), "add",
                                          str(_results_file(tmp_path))])
        assert result.exit_code == 2 and "cannot lock leaderboard" in result.output
    finally:
        folder.chmod(0o755)


def _results_file(tmp_path: Path) -> Path:
    return write_json(make_results("m"), tmp_path / "r.json")


def test_atomic_write_replaces_whole_files_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "doc.json"
    atomic.write_json({"v": 1}, target)
    with pytest.raises(OutputError, match="JSON has no NaN"):
        atomic.write_json({"v": float("nan")}, target)
    with pytest.raises(ZeroDivisionError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        _ = 1 / 0
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]
    row = row_from_results(make_results("m"))
    assert atomic.write_json({"rows": [row]}, target) == target
    assert json.loads(target.read_text())["rows"][0]["method"] == "m"


def test_two_bench_runs_sharing_a_leaderboard_keep_both_rows(tiny_store, tmp_path):
    """Two ``bench`` runs of one method and seed, started together on one leaderboard, keep both
    rows: each run has its own run id, so the second adds a row instead of replacing the first
    (the lock itself is exercised by the eight-adder test above, whose adds do overlap)."""
    board = tmp_path / "lb.json"
    procs = [subprocess.Popen([sys.executable, "-m", "deeplightmd.cli", "bench", "--method",
                               method, "--store", tiny_store, "--out", str(tmp_path / f"{i}.json"),
                               "--leaderboard", str(board), "--quiet", "--max-test-clips", "2",
                               "--tile", "16", "--overlap", "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, method in enumerate(("bicubic", "bicubic"))]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outputs]
    rows = load_board(board)["rows"]
    assert len(rows) == 2 and len({r["run_id"] for r in rows}) == 2
    assert all("1 row(s) added" in out for out, _ in outputs), outputs
