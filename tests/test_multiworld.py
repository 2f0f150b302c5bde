"""Multi-world presets: train/val from some family worlds, test clips and regions from others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from deeplightmd.builder import multiworld as mw
from deeplightmd.builder.inspect import validate_store
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError
from deeplightmd.store_format import REGIONS_GROUP, read_store_attrs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def standard_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``build --preset standard-tiny`` once: (store, worlds folder, CLI output)."""
    root = tmp_path_factory.mktemp("multiworld")
    out, worlds = root / "st.zarr", root / "worlds"
    result = CliRunner().invoke(cli, ["build", "--preset", "standard-tiny", "--out", str(out),
                                      "--worlds-dir", str(worlds), "--quiet"])
    assert result.exit_code == 0, result.output
    return out, worlds, result.output


def test_packaged_presets_meet_the_issue_sizes():
    assert {"standard", "generalization", "standard-tiny"} <= set(mw.multiworld_presets())
    std, gen = mw.load_multiworld_preset("standard"), mw.load_multiworld_preset("generalization")
    assert std.train_worlds == gen.train_worlds  # same training worlds and clips
    assert (std.train_per_world, std.val_per_world) == (gen.train_per_world, gen.val_per_world)
    for preset in (std, gen):
        assert not {w.label for w in preset.train_worlds} & {w.label for w in preset.test_worlds}
        assert len(preset.train_worlds) * preset.train_per_world >= 1000
        assert len(preset.train_worlds) * preset.val_per_world >= 150
        assert len(preset.test_worlds) * preset.test_per_world >= 200
        assert len(preset.test_worlds) >= 2  # 3 held-out regions per synthetic world
    assert {w.family for w in std.test_worlds} == {"standard"}
    assert {w.family for w in gen.test_worlds} == {"shifted"}


def test_build_help_names_every_multiworld_preset():
    result = CliRunner().invoke(cli, ["build", "--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "--worlds-dir" in text
    for name in mw.multiworld_presets():
        assert name in text


GOOD = {"manifest": "tiny",
        "train": {"family": "tiny", "indices": [0, 1], "clips_per_world": {"train": 4, "val": 1}},
        "test": {"family": "tiny", "indices": [2], "clips_per_world": {"test": 3}}}


@pytest.mark.parametrize("change, match", [
    ({"test": {**GOOD["test"], "indices": [1]}}, r"worlds \['tiny1'\] are both train and test"),
    ({"manifest": "nope"}, "manifest must be one of"),
    ({"train": {**GOOD["train"], "family": "nope"}}, "family must be one of"),
    ({"train": {**GOOD["train"], "indices": [0, 0]}}, "indices must be distinct"),
    ({"train": {**GOOD["train"], "clips_per_world": {"train": 4}}}, "val must be an integer"),
    ({"test": {**GOOD["test"], "clips_per_world": {"test": 0}}}, "test must be an integer >= 1"),
    ({"block": "x"}, "block must be an integer >= 0"),
    ({"worlds": 3}, r"unknown key\(s\)"),
])
def test_bad_presets_are_config_errors(change, match):
    assert mw.parse_multiworld_preset("ok", GOOD).test_per_world == 3
    with pytest.raises(ConfigError, match=match):
        mw.parse_multiworld_preset("bad", {**GOOD, **change})


def test_standard_tiny_store(standard_tiny):
    out, _, output = standard_tiny
    assert "[3/3] tiny2 (test world): test 30" in output
    attrs = read_store_attrs(str(out))
    assert attrs["splits"] == {"train": 80, "val": 12, "test": 30}
    split_worlds = {s: {w["world"] for w in attrs["worlds"][s]} for s in ("train", "val", "test")}
    assert split_worlds == {"train": {"tiny0", "tiny1"}, "val": {"tiny0", "tiny1"},
                            "test": {"tiny2"}}
    assert [w["clips"] for w in attrs["worlds"]["train"]] == [40, 40]
    assert attrs["worlds"]["test"][0]["drawn"]["sensor.gain"] > 0
    assert attrs["regions"] == ["tiny2-Anhui", "tiny2-Beijing", "tiny2-Taiwan"]
    root = zarr.open_group(str(out), mode="r")
    for name in attrs["regions"]:
        hr = root[f"{REGIONS_GROUP}/{name}/hr"]
        assert hr.attrs["name"] == name and hr.attrs["admin_names"]
        assert int(hr["admin"][...].max()) >= 1  # admin units rasterised
    # every split's clips come from its worlds' rows of the stacked lattice
    lattice = {row["world"]: row for row in attrs["multiworld"]["lattice"]}
    for split, names in split_worlds.items():
        rows = root[f"{split}/row"][...]
        inside = np.zeros(len(rows), bool)
        for name in names:
            lo = lattice[name]["row_offset"]
            inside |= (rows >= lo) & (rows < lo + lattice[name]["n_rows"])
        assert inside.all()
    ids = np.concatenate([root[f"{s}/clip_id"][...] for s in ("train", "val", "test")])
    assert len(np.unique(ids)) == len(ids)
    # train statistics recomputed on the merged train split (not copied from a part)
    hr_ntl = root["train/hr_ntl"][...].astype(np.float64)
    assert attrs["stats"]["ntl_mean"] == pytest.approx(np.log1p(np.clip(hr_ntl, 0, None)).mean())
    assert attrs["sensor_model"] is None
    assert validate_store(str(out)) == []
    assert not list(out.parent.glob(".st.zarr.*"))  # no temporary store or part stores left
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0
    assert "  train  tiny0 (40), tiny1 (40)" in info.output
    assert "  test   tiny2 (30)" in info.output
    assert "sensor.gain" in info.output and "settlements.n_settlements" in info.output


def test_rebuild_reuses_worlds_and_is_deterministic(standard_tiny):
    out, worlds, _ = standard_tiny
    before = read_store_attrs(str(out))["fingerprint"]
    again = out.parent / "again.zarr"
    result = CliRunner().invoke(cli, ["build", "--preset", "standard-tiny", "--out", str(again),
                                      "--worlds-dir", str(worlds), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "worlds ready (3 cached)" in result.output
    assert read_store_attrs(str(again))["fingerprint"] == before


def test_bad_multiworld_input_writes_nothing(standard_tiny, tmp_path, monkeypatch):
    out, worlds, _ = standard_tiny
    runner = CliRunner()
    for args, match in [
        (["--out", str(out)], "already exists; pass --overwrite"),
        (["--out", str(tmp_path / "x.zarr"), "--world", str(worlds)], "--world and --resume"),
        (["--out", "memory://x.zarr"], "multi-world presets write a local store"),
    ]:
        result = runner.invoke(cli, ["build", "--preset", "standard-tiny", "--worlds-dir",
                                     str(worlds), *args, "--quiet"])
        assert result.exit_code == 2 and match in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(cli, ["build", "--preset", "standrad", "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "multi-world preset ['generalization'" in result.output
    result = runner.invoke(cli, ["build", "--preset", "tiny", "--worlds-dir", str(worlds),
                                 "--out", str(tmp_path / "y.zarr")])
    assert result.exit_code == 2 and "--worlds-dir applies only" in result.output
    # a world with too few clips fails the whole build: no store, no temporary folders
    greedy = mw.parse_multiworld_preset("greedy", {
        **GOOD, "train": {**GOOD["train"], "clips_per_world": {"train": 5000, "val": 1}}})
    monkeypatch.setattr(mw, "load_multiworld_preset", lambda name: greedy)
    target = tmp_path / "greedy.zarr"
    with pytest.raises(ConfigError, match="too few clips"):
        mw.build_multiworld("greedy", str(target), worlds_dir=worlds, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_each_clip_gets_its_own_worlds_sensor_model_and_lrc_metrics(standard_tiny):
    """A multi-world store has no single LR sensor: the harness maps every clip to its world's
    model (through the stacked lattice), so the ``lrc_*`` metrics are defined on it."""
    import json

    from benchmarks.runner import run_benchmark
    from deeplightmd.sensor import SensorModel, clip_sensor_models

    out, worlds, _ = standard_tiny
    attrs = read_store_attrs(str(out))
    lookup = clip_sensor_models(attrs)
    root = zarr.open_group(str(out), mode="r")
    seen = {}
    for split in ("train", "val", "test"):
        lattice = attrs["multiworld"]["lattice"]
        for clip_id, row in zip(root[f"{split}/clip_id"][...], root[f"{split}/row"][...],
                                strict=True):
            world = next(p["world"] for p in lattice
                         if p["row_offset"] <= row < p["row_offset"] + p["n_rows"])
            drawn = json.loads((worlds / world / "world.json").read_text())["sensor_model"]
            assert lookup(int(clip_id)) == SensorModel.from_dict(drawn), (split, clip_id, world)
            seen[world] = lookup(int(clip_id))
    assert len({m.gain for m in seen.values()}) == 3  # three worlds, three sensors
    results = run_benchmark("bicubic", str(out), progress=False, max_test_clips=6)
    lrc = [k for k in results["per_clip"] if k.startswith("lrc_")]
    assert lrc and all(v is not None for k in lrc for v in results["per_clip"][k])
