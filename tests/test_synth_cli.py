"""``deeplightmd synth`` on the command line: help, output table, and every bad-input path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.synth import generate_world


def _run(*args: str):
    return CliRunner().invoke(cli, ["synth", *args])


def test_help_explains_options_and_files():
    result = _run("--help")
    assert result.exit_code == 0
    for word in ("--preset", "--seed", "--config", "--overwrite", "lr_ntl.tif", "EPSG:32650",
                 "Albers"):
        assert word in result.output


def _assert_one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert re.search(pattern, lines[0]), lines[0]


def test_unknown_preset_exits_2_and_writes_nothing(tmp_path: Path):
    result = _run(str(tmp_path / "w"), "--preset", "huge")
    _assert_one_line_error(result, r"unknown preset 'huge'; expected one of")
    assert list(tmp_path.iterdir()) == []


def test_non_empty_output_without_overwrite(tmp_path: Path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _run(str(out))
    _assert_one_line_error(result, r"is not empty; pass --overwrite")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ConfigError, match="is not empty"):
        generate_world(out)


def test_unwritable_output(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if _can_write(locked):
            pytest.skip("running as a user who ignores permissions (root)")
        result = _run(str(locked / "w"))
        _assert_one_line_error(result, r"is not writable")
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def _can_write(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except PermissionError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.mark.parametrize("text, pattern", [
    ("sensor: {gain: -1}\n", r"sensor gain must be > 0, got -1"),
    ("sensr: {gain: 1}\n", r"unknown config section\(s\) \['sensr'\]"),
    ("settlements: {n_settlements: 1}\n", r"settlements.n_settlements must be in \[3, 5000\]"),
    ("extent: {width_lr: 20, height_lr: 20}\n", r"too small for test regions"),
    ("- just a list\n", r"must hold a mapping of sections"),
    ("a: [unclosed\n", r"is not valid YAML/JSON"),
])
def test_invalid_config_exits_2_and_leaves_nothing(tmp_path: Path, text: str, pattern: str):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    result = _run(str(out), "--config", str(config), "-q")
    _assert_one_line_error(result, pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no out, no temp folder


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(InputFileError, match="cannot read config file"):
        generate_world(tmp_path / "w", config=tmp_path / "nope.yaml")
    result = _run(str(tmp_path / "w"), "--config", str(tmp_path / "nope.yaml"))
    _assert_one_line_error(result, r"cannot read config file")


def test_overwrite_replaces_and_prints_table(tmp_path: Path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    config = tmp_path / "small.json"
    config.write_text('{"extent": {"width_lr": 72, "height_lr": 60, "test_region_km": 4.0, '
                      '"clip_km": 2.0}, "settlements": {"n_settlements": 12}}')
    result = _run(str(out), "--overwrite", "--seed", "3", "--config", str(config), "-q")
    assert result.exit_code == 0, result.output
    assert not (out / "stale.txt").exists() and (out / "world.json").exists()
    for row in ("lr_ntl.tif", "EPSG:4326", "hr_ntl.tif", "EPSG:32650", "dmo/dmo_utm49.tif",
                "EPSG:32649", "isp.tif", "Albers", "1x60x72"):
        assert row in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.json", "w"]
