"""Docs that run: every ```bash / ```python block of README.md and docs/*.md is executed.

Blocks run in one scratch folder per session that looks like a checkout after ``make demo``:
``demo/demo.zarr`` is the tiny test store, ``.venv/bin/python`` and ``.venv/bin/deeplightmd``
are this interpreter's, ``deeplightmd`` is on ``PATH``, the repository is on ``PYTHONPATH``,
``benchmarks/reported`` is the repository's. Blocks run in file order (a later block may use
what an earlier one wrote). A block that needs big data, a cluster or minutes is preceded by
``<!-- docs-test: skip REASON -->``; it is reported as skipped with its reason (``-ra``).
YAML blocks of docs/manifest.md that are marked ``<!-- docs-test: manifest -->`` are parsed
with the manifest loader instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|python|yaml)\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|manifest)\s*(.*?)\s*-->\s*$")
#: seconds one block may take
BLOCK_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code and its marker."""

    path: Path
    line: int
    lang: str
    code: str
    marker: str = ""
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_blocks(path: Path) -> list[Block]:
    """The fenced bash/python blocks (and marked YAML manifests) of one Markdown file."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").splitlines()
        marker = MARKER.search(before[-1]) if before else None
        kind, reason = (marker.group(1), marker.group(2)) if marker else ("", "")
        if m.group(1) == "yaml" and kind != "manifest":
            continue
        out.append(Block(path, text[:m.start()].count("\n") + 1, m.group(1), m.group(2), kind,
                         reason))
    return out


BLOCKS = [b for path in DOC_FILES for b in doc_blocks(path)]


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory: pytest.TempPathFactory, tiny_store: str, tiny_world: Path) -> Path:
    """The scratch folder the blocks run in (see the module docstring)."""
    d = tmp_path_factory.mktemp("docs")
    (d / "demo").mkdir()
    os.symlink(tiny_store, d / "demo" / "demo.zarr")
    (d / ".venv" / "bin").mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    python = d / ".venv" / "bin" / "python"          # a wrapper: a symlink would lose the venv
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    os.symlink(bin_dir / "deeplightmd", d / ".venv" / "bin" / "deeplightmd")
    (d / "benchmarks").mkdir()
    os.symlink(ROOT / "benchmarks" / "reported", d / "benchmarks" / "reported")
    cache = d / "cache" / "worlds"
    cache.mkdir(parents=True)
    os.symlink(tiny_world, cache / "tiny-seed0")        # `--preset tiny` needs no synthesis
    return d


def _env(d: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{d / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["DEEPLIGHT_CACHE"] = str(d / "cache")
    env["MPLBACKEND"] = "Agg"
    return env


def check_manifest_block(block: Block, base: Path) -> None:
    """A manifest in the docs parses; one named like a shipped preset is that preset."""
    import yaml

    from deeplightmd.builder.manifest import PRESETS_DIR, manifest_from_dict

    data = yaml.safe_load(block.code)
    manifest_from_dict(data, base)
    for preset in PRESETS_DIR.glob("*.yaml"):
        shipped = yaml.safe_load(preset.read_text())
        if shipped.get("name") == data.get("name"):
            assert data == shipped, f"{block.id} differs from the shipped preset {preset.name}"


def test_every_doc_block_is_collected_and_skips_give_a_reason():
    assert len(BLOCKS) >= 25
    assert all(b.reason for b in BLOCKS if b.marker == "skip")
    ran = [b for b in BLOCKS if b.marker != "skip"]
    assert len(ran) >= 0.4 * len(BLOCKS)         # skipping stays the exception


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, docs_dir: Path) -> None:
    if block.marker == "skip":
        pytest.skip(f"{block.id}: {block.reason}")
    if block.marker == "manifest":
        check_manifest_block(block, docs_dir)
        return
    cmd = ["bash", "-euo", "pipefail", "-c", block.code] if block.lang == "bash" \
        else [sys.executable, "-c", block.code]
    res = subprocess.run(cmd, cwd=docs_dir, env=_env(docs_dir), capture_output=True, text=True,
                         timeout=BLOCK_TIMEOUT, check=False)
    assert res.returncode == 0, (f"{block.id} failed (exit {res.returncode}):\n"
                                 f"{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
