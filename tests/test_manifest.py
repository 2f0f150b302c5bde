"""Manifest validation: every rule of ``validate_manifest`` refuses its bad value with a message
naming what was expected and what was found, and accepts the boundary values it allows."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deeplightmd.builder.manifest import (
    PRESETS_DIR,
    _deep_merge,
    load_manifest,
    manifest_from_dict,
)
from deeplightmd.errors import ConfigError

TINY = yaml.safe_load((PRESETS_DIR / "tiny.yaml").read_text())
BASE = Path("/nonexistent-world")


def tiny(**changes: Any) -> dict[str, Any]:
    """The tiny preset with ``section__key=value`` changes (``None`` deletes a key)."""
    doc = copy.deepcopy(TINY)
    for path, value in changes.items():
        *parents, key = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    return doc


def test_the_tiny_preset_is_valid():
    m = manifest_from_dict(tiny(), BASE)
    assert m.grid.ratio == 8 and m.regions.chunk % m.grid.ratio == 0


@pytest.mark.parametrize(("changes", "match"), [
    ({"sources__foo": {"files": ["x.tif"]}}, r"unknown modality 'foo'; expected some of \['dem'"),
    ({"sources__isp": None}, r"no source or derive rule for modality/modalities \['isp'\] "
     r"\(use `constant: VALUE` for a modality you do not have\)$"),
    ({"derive": {"foo": {}}},
     r"^unknown modality 'foo' in derive; expected some of \['dem', 'dmo', 'hr_ntl', 'isp', "
     r"'lr_ntl'\]$"),
    ({"derive": {"lr_ntl": {"from": "hr_ntl"}}},
     r"modality/modalities \['lr_ntl'\] have both a source and a derive rule"),
    ({"sources__hr_ntl": {"constant": 1.0}, "sources__lr_ntl": None,
      "derive": {"lr_ntl": {"from": "hr_ntl"}}},
     r"^derive\.lr_ntl needs a file source for hr_ntl$"),
    ({"sources__lr_ntl": None, "derive": {"lr_ntl": {"from": "dem"}}},
     "derive supports only lr_ntl from hr_ntl, got lr_ntl from dem"),
    ({"sources__lr_ntl": None, "derive": {"lr_ntl": {"sensor_model": "viirs"}}},
     r"sensor_model must be a mapping of SensorModel parameters or 'world', got 'viirs'"),
    ({"sources__lr_ntl": None, "derive": {"lr_ntl": {"sensor_model": 3}}},
     "sensor_model must be a mapping of SensorModel parameters or 'world', got 3"),
    ({"sources__dem__files": []}, r"sources.dem needs 'files' \(or 'constant'\)"),
    ({"sources__dem__constant": 5.0}, "sources.dem has both 'files' and 'constant'"),
    ({"sources__dem__bands": [1, 2]}, r"sources.dem.bands must list 1 band\(s\), got \[1, 2\]"),
    ({"sources__dem__bands": [0]}, r"sources.dem.bands must be 1-based integers, got \[0\]"),
    ({"sources__dem__bands": [1.0]}, r"must be 1-based integers, got \[1.0\]"),
    ({"sources__dem__resampling": "bicubic"}, "sources.dem.resampling must be one of"),
    ({"sources__dem__oversample": 0}, "sources.dem.oversample must be an integer >= 1, got 0"),
    ({"sources__dem__oversample": 2.0}, "oversample must be an integer >= 1, got 2.0"),
    ({"sources__dem__fill": "mean"}, r"sources.dem.fill must be one of \('zero', 'nearest'\)"),
    ({"sources__dem__scale": "auto"}, "sources.dem.scale must be a number or 'file', got 'auto'"),
    ({"sources__dem__offset": "x"}, "sources.dem.offset must be a number or 'file', got 'x'"),
    ({"sources__dem__valid_range": [1, 0]}, r"sources.dem.valid_range must be \[low, high\]"),
    ({"sources__dem__valid_range": [0]}, r"valid_range must be \[low, high\], got \(0,\)"),
    ({"sources__dem__valid_range": [0, "x"]}, r"valid_range must be \[low, high\]"),
    ({"sources__dem__valid_range": [True, 2]}, r"valid_range must be \[low, high\]"),
    ({"grid__hr_pixel_size": 0}, "grid needs hr_pixel_size > 0, ratio >= 1, lr_clip >= 1, got "
                                 "0, 8, 8"),
    ({"grid__ratio": 0}, "got 60, 0, 8"),
    ({"grid__lr_clip": 0}, "got 60, 8, 0"),
    ({"grid__bounds_lonlat": [1, 2, 3]}, r"grid.bounds_lonlat must be \[west, south, east, "
                                         r"north\], got \(1, 2, 3\)"),
    ({"splits__train": -1}, "split counts, block and buffer must be >= 0"),
    ({"splits__val": -1}, "split counts, block and buffer must be >= 0"),
    ({"splits__test": -1}, "split counts, block and buffer must be >= 0"),
    ({"splits__buffer": -1}, "split counts, block and buffer must be >= 0"),
    ({"splits__block": -1}, "split counts, block and buffer must be >= 0"),
    ({"splits__on_shortfall": "warn"}, "splits.on_shortfall must be 'error' or 'ratio', "
                                       "got 'warn'"),
    ({"regions__file": None}, r"^regions.test_regions needs regions.file \(the polygons\)$"),
    ({"sources__dem__sensor": "landsat7-etm"},
     r"^sources\.dem: sensor and band_names apply to dmo only$"),
    ({"sources__isp__band_names": ["x"]},
     r"^sources\.isp: sensor and band_names apply to dmo only$"),
    *[({"regions__test_regions": [bad]},
       rf"^regions\.test_regions: {re.escape(repr(bad))} cannot name a store group "
       r"\(regions/<name>\); expected a non-empty name without '/', '\\', surrounding "
       r"spaces, and not '\.' or '\.\.'$")
      for bad in ("a/b", "a\\b", " Anhui", "Anhui ", ".", "..", "", "  ", 3)],
    ({"regions__chunk": 12}, r"regions.chunk \(12\) must be a multiple of the ratio 8"),
    ({"qa": {"min_valid_fraction": 1.5}}, r"qa fractions must lie in \[0, 1\]"),
    ({"qa": {"min_valid_fraction": -0.1}}, r"qa fractions must lie in \[0, 1\]"),
    ({"qa": {"min_lit_fraction": 1.01}}, r"qa fractions must lie in \[0, 1\]"),
    ({"qa": {"min_lit_fraction": -0.5}}, r"qa fractions must lie in \[0, 1\]"),
])
def test_each_rule_refuses_its_bad_value(changes, match):
    with pytest.raises(ConfigError, match=match):
        manifest_from_dict(tiny(**changes), BASE)


@pytest.mark.parametrize("changes", [
    {"sources__dem__bands": [3]},
    {"grid__hr_pixel_size": 0.5},
    {"regions__test_regions": ["Xinjiang", "Inner Mongolia"]},
    {"sources__dem__oversample": 1},
    {"sources__dem__valid_range": [2, 2]},
    {"sources__dem__valid_range": [-1.5, 7]},
    {"sources__dem__scale": 2.5, "sources__dem__offset": -1},
    {"sources__dem__files": None, "sources__dem__constant": 0.0},
    {"grid__ratio": 1, "grid__lr_clip": 1},
    {"grid__bounds_lonlat": [113.7, 30.9, 114.3, 31.3]},
    {"splits": {"train": 0, "val": 0, "test": 0, "block": 0, "buffer": 0}},
    {"regions__chunk": 16},
    {"regions": {}},
    {"qa": {"min_valid_fraction": 0.0, "min_lit_fraction": 1.0}},
    {"qa": {"min_valid_fraction": 1.0, "min_lit_fraction": 0.0}},
    {"sources__lr_ntl": None, "derive": {"lr_ntl": {"sensor_model": "world"}}},
    {"sources__lr_ntl": None, "derive": {"lr_ntl": {"sensor_model": {"ratio": 8}}}},
])
def test_boundary_values_are_accepted(changes):
    manifest_from_dict(tiny(**changes), BASE)


@pytest.mark.parametrize(("doc", "match"), [
    ([1, 2], "a manifest must be a mapping, got list"),
    ({**TINY, "sorces": {}}, r"unknown manifest key\(s\) \['sorces'\]; expected some of"),
    ({k: v for k, v in TINY.items() if k != "splits"},
     "manifest is missing the required key 'splits'"),
    ({**TINY, "sources": ["dem"]}, "manifest 'sources' must map modality names"),
    ({**TINY, "grid": "albers"}, "manifest section 'grid' must be a mapping, got str"),
    ({**TINY, "qa": {"min_valid": 1}}, r"unknown key\(s\) \['min_valid'\] in manifest section "
                                       r"'qa'"),
])
def test_structure_errors(doc, match):
    with pytest.raises(ConfigError, match=match):
        manifest_from_dict(doc, BASE)


def test_parsed_values_and_base_dir():
    m = manifest_from_dict(tiny(seed="7", base_dir="world"), BASE)
    assert m.seed == 7 and m.base_dir == BASE / "world"
    assert m.sources["dem"].bands == (1,) and isinstance(m.regions.test_regions, tuple)
    assert m.world is not None and m.world.preset == "tiny"
    assert manifest_from_dict(tiny(world=None), BASE).world is None
    assert manifest_from_dict(tiny(sources__isp={"constant": 0}), BASE).sources["isp"] \
        .constant == 0
    assert m.resolve("a/b.tif") == str(BASE / "world/a/b.tif")
    for kept in ("s3://bucket/x.tif", "/vsicurl/http://x/y.tif", "/abs/x.tif"):
        assert m.resolve(kept) == kept


def test_deep_merge_nests_and_replaces():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    out = _deep_merge(base, {"a__c__d": 5, "a": {"b": 9}, "e": {"x": 1}, "f__g": 2})
    assert out == {"a": {"b": 9, "c": {"d": 5}}, "e": {"x": 1}, "f": {"g": 2}}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": 3}  # not modified


def test_load_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"manifest file '.*missing.yaml' does not exist"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"manifest file '.*missing.yml' does not exist"):
        load_manifest(tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; expected one of \["):
        load_manifest("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [1,\n")
    with pytest.raises(ConfigError, match=r"manifest '.*bad.yaml' is not valid YAML: "
                       r"while parsing a flow node$"):
        load_manifest(bad)
    good = tmp_path / "m.yaml"
    good.write_text(yaml.safe_dump(tiny(base_dir="w")))
    assert load_manifest(good).base_dir == tmp_path.resolve() / "w"
    assert load_manifest(good, world_dir=tmp_path / "x").base_dir == (tmp_path / "x").resolve()


def test_to_dict_renames_derive_from_and_leaves_out_base_dir():
    doc = tiny(sources__lr_ntl=None, derive={"lr_ntl": {"from": "hr_ntl", "noise": False}})
    m = manifest_from_dict(doc, BASE)
    out = m.to_dict()
    assert "base_dir" not in out
    assert out["derive"] == {"lr_ntl": {"from": "hr_ntl", "sensor_model": {}, "noise": False}}
    assert manifest_from_dict(out, BASE) == m


def test_modalities_and_source_scaling():
    from deeplightmd.builder.manifest import source_scaling
    from deeplightmd.daytime import get_sensor
    from deeplightmd.modalities import BUILTIN

    m = manifest_from_dict(tiny(), BASE)
    assert set(m.modalities()) == set(BUILTIN)
    assert m.modalities()["hr_ntl"].bands == 1
    m2 = manifest_from_dict(tiny(sources__dem__scale=0.5, sources__dem__offset=-2.0), BASE)
    assert source_scaling("dem", m2.sources["dem"]) == (0.5, -2.0)
    dmo = manifest_from_dict(tiny(sources__dmo={"files": ["d.tif"], "sensor": "landsat7-etm"}),
                             BASE).sources["dmo"]
    preset = get_sensor("landsat7-etm")
    assert source_scaling("dmo", dmo) == (preset.scale, preset.offset) != (1.0, 0.0)
    # the same spec under another name is not a DMO source: its own scale and offset
    assert source_scaling("dem", dmo) == (1.0, 0.0)


def test_deep_merge_returns_an_independent_copy():
    base = {"grid": {"ratio": 8}, "e": 3}
    out = _deep_merge(base, {"e": 4})
    out["grid"]["ratio"] = 4
    assert base == {"grid": {"ratio": 8}, "e": 3}


def test_world_cache_dir_default_and_override(monkeypatch, tmp_path):
    from deeplightmd.builder.manifest import WorldSpec, world_cache_dir

    monkeypatch.delenv("DEEPLIGHT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert world_cache_dir(WorldSpec("tiny", 3)) == \
        tmp_path / ".cache" / "deeplight" / "worlds" / "tiny-seed3"
    monkeypatch.setenv("DEEPLIGHT_CACHE", str(tmp_path / "c"))
    assert world_cache_dir(WorldSpec("demo", 0)) == tmp_path / "c" / "worlds" / "demo-seed0"


def test_plain_turns_paths_tuples_and_dataclasses_into_json_values():
    from deeplightmd.builder.manifest import WorldSpec, _plain

    assert _plain({"p": Path("a/b"), "t": (1, [2]), "w": WorldSpec("tiny", 1)}) == \
        {"p": "a/b", "t": [1, [2]], "w": {"preset": "tiny", "seed": 1}}


def test_source_bands_of_a_dmo_sensor_preset():
    from deeplightmd.builder.manifest import source_bands
    from deeplightmd.daytime import get_sensor

    spec = manifest_from_dict(tiny(sources__dmo={"files": ["d.tif"], "sensor": "landsat7-etm"}),
                              BASE).sources["dmo"]
    preset = get_sensor("landsat7-etm")
    assert source_bands("dmo", spec) == tuple(preset.index(n) for n in preset.bands)
    assert source_bands("dem", spec) == (1,)


def test_a_packaged_preset_with_a_world_resolves_to_the_world_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPLIGHT_CACHE", str(tmp_path))
    m = load_manifest("tiny")
    assert m.base_dir == (tmp_path / "worlds" / "tiny-seed0").resolve()
    assert load_manifest("tiny", world__seed=4).base_dir == \
        (tmp_path / "worlds" / "tiny-seed4").resolve()
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\] in manifest section "
                       r"'world'"):
        load_manifest("tiny", world__bogus=1)


def test_ensure_world_generates_only_a_missing_world(monkeypatch, tmp_path):
    """The world is generated into base_dir with the manifest's preset and seed (overwriting a
    partial folder) when world.json is absent; nothing happens without a world or with one."""
    import deeplightmd.synth
    from deeplightmd.builder.manifest import ensure_world

    calls = []
    monkeypatch.setattr(deeplightmd.synth, "generate_world",
                        lambda *a, **k: calls.append((a, k)))
    m = manifest_from_dict(tiny(world={"preset": "tiny", "seed": 5}), tmp_path)
    ensure_world(manifest_from_dict(tiny(world=None), tmp_path))
    assert calls == []
    ensure_world(m)
    assert calls == [((tmp_path,), {"preset": "tiny", "seed": 5, "overwrite": True})]
    (tmp_path / "world.json").write_text("{}")
    ensure_world(m)
    assert len(calls) == 1


@pytest.mark.parametrize(("changes", "section"), [
    ({"splits__bogus": 1}, "splits"),
    ({"regions__bogus": 1}, "regions"),
    ({"world__bogus": 1}, "world"),
    ({"sources__lr_ntl": None, "derive": {"lr_ntl": {"bogus": 1}}}, "derive.lr_ntl"),
    ({"sources__dem__bogus": 1}, "sources.dem"),
])
def test_a_typo_names_its_manifest_section(changes, section):
    with pytest.raises(ConfigError, match=rf"^unknown key\(s\) \['bogus'\] in manifest section "
                       rf"'{re.escape(section)}'; expected some of \["):
        manifest_from_dict(tiny(**changes), BASE)


def test_name_seed_and_source_keys_of_a_parsed_manifest():
    m = manifest_from_dict(tiny(name=12, seed=None), BASE)
    assert m.name == "12" and m.seed == 0
    with pytest.raises(ConfigError, match=r"^manifest 'sources' must map modality names to source "
                       r"specs$"):
        manifest_from_dict({**TINY, "sources": ["dem"]}, BASE)
    out = m.to_dict()
    assert out["name"] == "12" and out["seed"] == 0
    assert not {"sensor", "band_names", "modality"} & set(out["sources"]["dem"])
    dmo = manifest_from_dict(tiny(sources__dmo={"files": ["d.tif"], "sensor": "landsat7-etm"}),
                             BASE).to_dict()["sources"]["dmo"]
    assert dmo["sensor"] == "landsat7-etm" and "band_names" not in dmo
