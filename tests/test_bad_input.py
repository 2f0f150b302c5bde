"""The bad-input corpus (tests/bad_inputs/bad_input_corpus.py) through the console script's entry
point: every case prints exactly one ``Error: …`` line on stderr, exits with code 2, and leaves no
finished product behind (no store marked complete, no results/SR/world/leaderboard file).

All cases run in one subprocess (tests/bad_inputs/run_cases.py: the package is imported once,
stderr captured at the file-descriptor level); one case per command also runs through the
installed ``deeplightmd`` executable itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zarr

BAD_INPUTS = Path(__file__).parent / "bad_inputs"
sys.path.insert(0, str(BAD_INPUTS))
from bad_input_corpus import BadInput, write_corpus  # noqa: E402

from deeplightmd.store_format import ROOT_ATTR  # noqa: E402

#: the case names, fixed here so pytest can parametrize (checked against the corpus)
NAMES = [
    "synth: out dir exists", "synth: malformed config YAML", "corrupt GeoTIFF",
    "raster without CRS", "wrong footprint", "NaN-filled source", "wrong band count",
    "missing source file", "empty polygon file", "malformed manifest YAML",
    "unknown manifest key", "unknown preset", "build: out dir exists",
    "build: resume store of another version", "info: store of another version",
    "validate: not a store", "bench: unknown method", "bench: store of another version",
    "predict: corrupt LR GeoTIFF", "predict: LR without CRS",
    "predict: checkpoint of another method", "predict: unknown method",
    "predict: empty region polygon file", "leaderboard: malformed results JSON",
    "leaderboard: row failing the schema", "leaderboard: malformed leaderboard file",
    # issue 16
    "leaderboard: board holding NaN fails validate", "leaderboard: add to a board holding NaN",
    "leaderboard: row with NaN PSNR", "leaderboard: row with PSNR 1e308",
    "leaderboard: two differing rows with one key", "leaderboard: show a misspelt file",
    "leaderboard: show an unknown metric", "leaderboard: render an unknown metric",
    "leaderboard: unwritable output folder", "leaderboard: render into an unwritable folder",
    "validate: deleted chunk", "validate: half-written store", "bench: deleted chunk",
    "bench: corrupted chunk met while reading", "bench --verify: corrupted chunk",
    "bench: results into an unwritable folder", "region name with '..'",
    "duplicate manifest key", "negative radiance", "synth: duplicate config key",
    "predict: --isp for a method without ISP input", "predict: all-nodata auxiliary",
    "predict: store with a deleted chunk",
]
#: known failures in code outside this test's owner (see the reason); strict: fixing them
#: turns the xfail into an error so the marker gets removed
KNOWN_BUGS: dict[str, str] = {}
#: one case per command, run through the installed executable as well
VIA_EXECUTABLE = ["synth: out dir exists", "wrong band count",
                  "predict: LR without CRS", "leaderboard: row failing the schema"]


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "deeplightmd"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "deeplightmd.cli"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path,
           tiny_store: str) -> dict[str, BadInput]:
    root = tmp_path_factory.mktemp("bad_inputs")
    return {case.name: case for case in write_corpus(root, tiny_world, tiny_store)}


@pytest.fixture(scope="session")
def outcomes(corpus: dict[str, BadInput], tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, dict]:
    """``{"rc", "stderr"}`` of every case, all run in one subprocess."""
    result_file = tmp_path_factory.mktemp("bad_input_results") / "results.json"
    subprocess.run([sys.executable, str(BAD_INPUTS / "run_cases.py"), str(result_file)],
                   input=json.dumps([list(c.argv) for c in corpus.values()]), text=True,
                   stdout=subprocess.DEVNULL, check=True, timeout=600)
    return dict(zip(corpus, json.loads(result_file.read_text()), strict=True))


def test_the_corpus_has_at_least_35_cases_across_every_command(corpus):
    assert list(corpus) == NAMES and len(NAMES) >= 20 + 15
    commands = {case.argv[0] for case in corpus.values()}
    assert {"synth", "build", "info", "validate", "bench", "predict", "leaderboard"} <= commands


def _finished(output: str) -> bool:
    path = Path(output)
    if path.suffix == ".zarr":
        if not path.is_dir():
            return False
        try:
            attrs = zarr.open_group(str(path), mode="r").attrs.get(ROOT_ATTR, {})
        except Exception:  # not a zarr group at all: nothing claimed
            return False
        return bool(attrs.get("complete"))
    return path.exists()


def _check(case: BadInput, rc: int, stderr: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}; stderr: {stderr[-1500:]}"
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr[-1500:]
    assert re.search(case.message, lines[0]), lines[0]
    if case.output is not None:
        assert not _finished(case.output), f"{case.output} was left as a finished product"


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[n]))
    if n in KNOWN_BUGS else n for n in NAMES])
def test_bad_input_gives_one_error_line_and_exit_code_2(corpus, outcomes, name):
    _check(corpus[name], outcomes[name]["rc"], outcomes[name]["stderr"])


@pytest.mark.parametrize("name", VIA_EXECUTABLE)
def test_bad_input_through_the_installed_executable(corpus, name):
    case = corpus[name]
    proc = subprocess.run([*_console_script(), *case.argv], capture_output=True, text=True,
                          timeout=120)
    _check(case, proc.returncode, proc.stderr)
