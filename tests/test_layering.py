"""The toolkit (deeplightmd) never imports the harness (benchmarks); the CLI still lists the
harness's sub-commands (entry points, else the module-name fallback)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
HARNESS = re.compile(r"^\s*(import|from)\s+(benchmarks|baselines|deeplightsr)\b", re.MULTILINE)


def test_no_toolkit_module_names_the_harness_in_an_import():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "deeplightmd").rglob("*.py")
                 if HARNESS.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_importing_the_toolkit_loads_no_harness_module():
    code = ("import sys, deeplightmd.cli, deeplightmd.predict, deeplightmd.access, "
            "deeplightmd.builder.pipeline, deeplightmd.synth.world\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('benchmarks', 'baselines', 'deeplightsr')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_cli_lists_toolkit_and_harness_commands(monkeypatch):
    from deeplightmd import cli as cli_mod

    commands = cli_mod.all_commands()
    assert {"synth", "build", "info", "validate", "preview"} <= set(commands)
    assert {"bench", "methods", "leaderboard", "predict"} <= set(commands)
    result = CliRunner().invoke(cli_mod.cli, ["--help"])
    assert result.exit_code == 0
    for name in ("bench", "build", "leaderboard", "methods", "predict", "synth"):
        assert f"  {name} " in result.output


def test_entry_points_add_commands_but_cannot_replace_the_toolkits(monkeypatch):
    import importlib.metadata as md

    from deeplightmd import cli as cli_mod

    points = [md.EntryPoint("extra", "json:dumps", cli_mod.ENTRY_POINT_GROUP),
              md.EntryPoint("build", "json:dumps", cli_mod.ENTRY_POINT_GROUP),
              md.EntryPoint("predict", "benchmarks.predict.cli:predict",
                            cli_mod.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(md, "entry_points", lambda group=None: points)
    commands = cli_mod.all_commands()
    assert commands["extra"] == "json:dumps"
    assert commands["build"] == cli_mod.COMMANDS["build"]
    assert commands["predict"] == "benchmarks.predict.cli:predict"
    assert commands["bench"] == cli_mod.FALLBACK_COMMANDS["bench"]


def test_the_harness_reads_stores_only_through_access():
    raw = re.compile(r"^\s*(import zarr|from zarr\b)", re.MULTILINE)
    core = list((ROOT / "benchmarks").glob("*.py"))  # speed/ measures raw zarr on purpose
    assert [p.name for p in core if raw.search(p.read_text(encoding="utf-8"))] == []

