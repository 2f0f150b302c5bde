"""World families: YAML ranges, deterministic draws, `shifted` outside `standard`, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError
from deeplightmd.synth.families import (
    ParamRange,
    draw_params,
    family_names,
    load_family,
    world_config,
    world_overrides,
    world_seed,
)

SPECS = Path(__file__).resolve().parents[1] / "deeplightmd" / "synth" / "family_specs"


def _yaml_ranges(name: str) -> dict[str, tuple[float, float]]:
    """``key -> (lo, hi)`` straight from the YAML file (following ``base``)."""
    data = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    out = _yaml_ranges(data["base"]) if data.get("base") else {}
    for key, spec in (data.get("ranges") or {}).items():
        lo, hi = spec["range"] if isinstance(spec, dict) else spec
        out[key] = (float(lo), float(hi))
    return out


def test_packaged_families():
    assert {"standard", "shifted", "tiny"} <= set(family_names())


def test_shifted_ranges_lie_outside_standard_in_the_yaml():
    standard, shifted = _yaml_ranges("standard"), _yaml_ranges("shifted")
    outside = yaml.safe_load((SPECS / "shifted.yaml").read_text())["outside"]
    # the list: gain, halo, misregistration and the settlement pattern at least
    for key in ("sensor.gain", "sensor.halo_fraction", "sensor.shift.0", "sensor.shift.1",
                "settlements.n_settlements", "settlements.zipf_q"):
        assert key in outside
    for key in outside:
        (lo, hi), (slo, shi) = shifted[key], standard[key]
        assert lo > shi or hi < slo, f"{key}: shifted [{lo}, {hi}] overlaps standard [{slo}, {shi}]"
    assert set(standard) == set(shifted)


def test_draws_stay_in_their_ranges_and_shifted_draws_fall_outside_standard():
    standard, shifted = load_family("standard"), load_family("shifted")
    for k in range(25):
        for fam in (standard, shifted):
            for key, value in draw_params(fam, k).items():
                r = fam.ranges[key]
                assert r.lo <= abs(value) <= r.hi
        for key in shifted.outside:
            value = abs(draw_params(shifted, k)[key])
            r = standard.ranges[key]
            assert not r.lo <= value <= r.hi, (k, key, value)


def test_world_config_applies_every_drawn_value():
    fam = load_family("standard")
    cfg = world_config(fam, 3)
    drawn = draw_params(fam, 3)
    assert cfg.sensor.gain == pytest.approx(drawn["sensor.gain"])
    assert cfg.sensor.shift == pytest.approx((drawn["sensor.shift.0"], drawn["sensor.shift.1"]))
    assert cfg.settlements.n_settlements == round(drawn["settlements.n_settlements"])
    assert cfg.extent.width_lr == 160


def test_draws_are_deterministic_in_family_and_index():
    fam = load_family("standard")
    assert world_overrides(fam, 3) == world_overrides(load_family("standard"), 3)
    assert world_overrides(fam, 3) != world_overrides(fam, 4)
    assert world_seed(fam, 3) == world_seed(fam, 3) != world_seed(fam, 4)
    assert world_seed(fam, 3) != world_seed(load_family("shifted"), 3)


def test_param_range_sign_and_log():
    import numpy as np
    rng = np.random.default_rng(0)
    signed = [ParamRange(0.4, 0.6, signed=True).draw(rng) for _ in range(200)]
    assert min(signed) < 0 < max(signed) and all(0.4 <= abs(v) <= 0.6 for v in signed)
    logs = [ParamRange(10.0, 1000.0, log=True).draw(rng) for _ in range(400)]
    assert 0.3 < np.mean(np.array(logs) < 100.0) < 0.7  # log-uniform: the median is 100


@pytest.mark.parametrize("bad, pattern", [
    ({"sensor.gain": [1.0, 0.5]}, r"lo <= hi"),
    ({"sensor.gain": {"range": [0.0, 1.0], "log": True}}, r"needs lo > 0"),
    ({"sensor.nope": [0.1, 0.2]}, r"unknown field 'nope'"),
    ({"sensor.gain": "high"}, r"must be \[lo, hi\]"),
])
def test_bad_family_yaml_is_a_config_error(monkeypatch, tmp_path, bad, pattern):
    import deeplightmd.synth.families as families
    pkg = tmp_path / "fams"
    pkg.mkdir()
    (pkg / "bad.yaml").write_text(yaml.safe_dump({"name": "bad", "ranges": bad}))
    monkeypatch.setattr(families.resources, "files", lambda _: pkg)
    with pytest.raises(ConfigError, match=pattern):
        load_family("bad")


def _one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(pattern, lines[0])


def test_cli_bad_family_arguments(tmp_path: Path):
    run = lambda *a: CliRunner().invoke(cli, ["synth", str(tmp_path / "w"), *a])  # noqa: E731
    _one_line_error(run("--family", "nope", "--index", "0"), r"unknown family 'nope'")
    _one_line_error(run("--family", "tiny"), r"--family needs --index")
    _one_line_error(run("--index", "2"), r"--index needs --family")
    _one_line_error(run("--family", "tiny", "--index", "0", "--seed", "3"), r"excludes")
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_family_world_is_byte_identical_for_the_same_index(tmp_path: Path):
    outs = []
    for name in ("a", "b"):
        result = CliRunner().invoke(cli, ["synth", str(tmp_path / name), "--family", "tiny",
                                          "--index", "1", "-q"])
        assert result.exit_code == 0, result.output
        outs.append(tmp_path / name)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files and all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)
    meta = json.loads((outs[0] / "world.json").read_text())
    fam = load_family("tiny")
    assert meta["family"]["name"] == "tiny" and meta["family"]["index"] == 1
    assert meta["seed"] == world_seed(fam, 1)
    assert meta["params"]["sensor"]["gain"] == pytest.approx(draw_params(fam, 1)["sensor.gain"])
