"""Bad input to ``deeplightmd build``: one-line errors, exit code 2, no store marked complete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import zarr
from affine import Affine
from click.testing import CliRunner

from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.manifest import SplitSpec
from deeplightmd.builder.splits import split_clips
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError, InputFileError, StoreError
from deeplightmd.store_format import ROOT_ATTR


def _raster(path: Path, data: np.ndarray, crs: str | None, nodata: float | None = None) -> str:
    t = Affine(1 / 240, 0, 113.7, 0, -1 / 240, 31.3)  # covers the tiny world
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1],
                       count=1, dtype=data.dtype, crs=crs, transform=t, nodata=nodata) as dst:
        dst.write(data[None])
    return str(path)


def _assert_nothing_complete(out: Path) -> None:
    if out.exists():
        attrs = zarr.open_group(str(out), mode="r").attrs.get(ROOT_ATTR, {})
        assert not attrs.get("complete")


@pytest.mark.parametrize("case, error, match", [
    ("missing file", InputFileError, r"source file .*nope\.tif' does not exist"),
    ("no crs", InputFileError, "has no CRS"),
    ("all nan", InputFileError, r"has no valid pixel \(all NaN or nodata\)"),
    ("wrong band count", InputFileError, r"has 1 band\(s\), the manifest asks for band\(s\) "
                                         r"\[1, 2, 3, 4, 5, 6, 7\]"),
    ("outside domain", InputFileError, "does not cover the domain"),
    ("too few clips", ConfigError, "too few clips for the requested split counts"),
])
def test_bad_sources_fail_before_anything_is_complete(tiny_world, tmp_path, case, error, match):
    overrides: dict = {}
    if case == "missing file":
        overrides = {"sources": {"dem": {"files": ["nope.tif"]}}}
    elif case == "no crs":
        overrides = {"sources": {"dem": {"files": [_raster(tmp_path / "nocrs.tif",
                                                           np.ones((96, 144), "int16"), None)]}}}
    elif case == "all nan":
        nan = np.full((96, 144), np.nan, "float32")
        overrides = {"sources": {"hr_ntl": {"files": [_raster(tmp_path / "nan.tif", nan,
                                                              "EPSG:4326")]}}}
    elif case == "wrong band count":
        overrides = {"sources": {"dmo": {"files": ["hr_ntl.tif"]}}}
    elif case == "outside domain":
        overrides = {"grid": {"bounds_lonlat": [113.0, 30.5, 114.2, 31.2]}}
    elif case == "too few clips":
        overrides = {"splits": {"train": 500, "on_shortfall": "error"}}
    manifest = load_manifest("tiny", world_dir=tiny_world, **overrides)
    out = tmp_path / "out.zarr"
    with pytest.raises(error, match=match):
        build_store(manifest, str(out), progress=False)
    _assert_nothing_complete(out)


def test_manifest_typos_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown manifest key\(s\) \['sorces'\]"):
        load_manifest("tiny", sorces={})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['resamplin'\] in manifest section "
                                          r"'sources.dem'"):
        load_manifest("tiny", sources__dem__resamplin="bilinear")
    with pytest.raises(ConfigError, match=r"sources.dem.resampling must be one of"):
        load_manifest("tiny", sources__dem__resampling="bicubicx")
    with pytest.raises(ConfigError, match=r"sources.dmo.bands lists 3 band\(s\); name them with "
                                          r"band_names: \[...\] or choose a sensor preset"):
        load_manifest("tiny", sources__dmo__bands=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"sources.dem.bands must list 1 band\(s\)"):
        load_manifest("tiny", sources__dem__bands=[1, 2])
    with pytest.raises(ConfigError, match=r"unknown sensor 'landsat-7'; expected one of"):
        load_manifest("tiny", sources__dmo__sensor="landsat-7")
    with pytest.raises(ConfigError, match=r"sensor 'landsat7-etm' has no band 'coastal'"):
        load_manifest("tiny", sources__dmo__sensor="landsat7-etm",
                      sources__dmo__bands=["coastal", "blue"])
    with pytest.raises(ConfigError, match=r"unknown modality 'population'.*'modality:' block"):
        load_manifest("tiny", sources__population={"files": ["p.tif"]})
    with pytest.raises(ConfigError, match="unknown preset 'tinyy'"):
        load_manifest("tinyy")
    with pytest.raises(ConfigError, match="no source or derive rule for modality"):
        load_manifest("tiny", sources={"isp": None})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: {crs: EPSG:4326}\nsources: {}\nsplits: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_manifest(str(bad))


@pytest.mark.parametrize("crs, match", [
    ("EPSG:4326", r"grid.crs must be a projected CRS in metres, got 'EPSG:4326' "
                  r"\(geographic, in degrees\)"),
    ("+proj=longlat +datum=WGS84", "geographic, in degrees"),
    ("EPSG:2227", r"projected CRS in metres, got 'EPSG:2227' \(in US survey foot\)"),
    ("not a crs", r"grid.crs 'not a crs' is not a valid CRS \(expected a PROJ string, EPSG:n "
                  r"or WKT of a projected CRS in metres\)$"),
    ("EPSG:99999", "grid.crs 'EPSG:99999' is not a valid CRS"),
    (4326, "grid.crs must be a string"),
])
def test_grid_crs_must_be_projected_in_metres(tmp_path, crs, match):
    """docs/manifest.md: the target CRS is projected, in metres (square clips on the ground,
    comparable sums of light); anything else is refused when the manifest is loaded."""
    with pytest.raises(ConfigError, match=match):
        load_manifest("tiny", world_dir=tmp_path, grid__crs=crs)
    assert load_manifest("tiny", world_dir=tmp_path, grid__crs="EPSG:3857").grid.crs == "EPSG:3857"


def test_invalid_grid_crs_is_one_error_line_from_the_cli(tmp_path):
    text = (Path(__file__).parents[1] / "deeplightmd/builder/presets/tiny.yaml").read_text()
    manifest = tmp_path / "m.yaml"
    crs_line = next(line for line in text.splitlines() if line.startswith("  crs: "))
    manifest.write_text(text.replace(crs_line, "  crs: EPSG:4326"))
    out = tmp_path / "out.zarr"
    result = CliRunner().invoke(cli, ["build", "--manifest", str(manifest), "--world",
                                      str(tmp_path), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "Error: grid.crs must be a projected CRS in metres, got 'EPSG:4326' (geographic, in "
        "degrees)"]
    assert not out.exists()


def test_presets_load_and_resolve_against_the_world(tmp_path):
    tiny = load_manifest("tiny", world_dir=tmp_path)
    assert tiny.hr_clip == 64 and tiny.grid.hr_pixel_size == 60 and tiny.grid.ratio == 8
    assert tiny.resolve("hr_ntl.tif") == str(tmp_path.resolve() / "hr_ntl.tif")
    assert load_manifest("demo", world_dir=tmp_path).hr_clip == 128
    large = load_manifest("large", world_dir=tmp_path)
    assert large.hr_clip == 256 and large.world.preset == "large"
    paper = load_manifest("paper", world_dir=tmp_path)
    assert (paper.splits.train, paper.splits.val, paper.splits.test) == (18032, 2254, 2254)
    assert paper.grid.lr_clip == 256 and paper.hr_clip == 2048
    assert load_manifest("tiny", seed=5, splits__train=7).splits.train == 7


def test_output_exists_and_other_format_version(tiny_world, tmp_path):
    out = tmp_path / "exists.zarr"
    out.mkdir()
    (out / "something").write_text("x")
    manifest = load_manifest("tiny", world_dir=tiny_world)
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        build_store(manifest, str(out), progress=False)
    other = tmp_path / "v9.zarr"
    zarr.open_group(str(other), mode="w").attrs[ROOT_ATTR] = {"format_version": 9}
    with pytest.raises(StoreError, match="has format version 9"):
        build_store(manifest, str(other), resume=True, progress=False)
    result = CliRunner().invoke(cli, ["info", str(other)])
    assert result.exit_code == 2 and "format version 9" in result.output
    result = CliRunner().invoke(cli, ["build", "--preset", "tiny", "--world", str(tiny_world),
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and result.output.startswith("Error: output")
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["build", "--out", str(out)])
    assert result.exit_code == 2 and "exactly one of --preset" in result.output


def test_split_rules_on_a_synthetic_lattice():
    rng = np.random.default_rng(0)
    eligible = [(r, c) for r in range(20) for c in range(20) if rng.random() > 0.15]
    spec = SplitSpec(train=150, val=20, test=20, block=3, buffer=1)
    res = split_clips(eligible, (20, 20), spec, seed=1)
    assert res.counts() == {"train": 150, "val": 20, "test": 20}
    assert set(res.train + res.val + res.test) <= set(eligible)
    pos = {k: np.array(getattr(res, k)) for k in ("train", "val", "test")}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert np.abs(pos[a][:, None] - pos[b][None]).max(axis=2).min() >= 2
    # a wider buffer keeps splits further apart
    wide = split_clips(eligible, (20, 20), SplitSpec(100, 10, 10, 3, 2), seed=1)
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        pa, pb = np.array(getattr(wide, a)), np.array(getattr(wide, b))
        assert np.abs(pa[:, None] - pb[None]).max(axis=2).min() >= 3
    # val/test blocks are compact: their clips span few rows/columns
    assert np.ptp(pos["test"][:, 0]) < 10
    assert split_clips(eligible, (20, 20), spec, seed=1) == res  # seeded
    assert split_clips(eligible, (20, 20), spec, seed=2) != res
    with pytest.raises(ConfigError, match="too few clips for the requested split counts"):
        split_clips(eligible, (20, 20), SplitSpec(400, 20, 20, 3, 1), seed=1)
    with pytest.warns(UserWarning, match="using 8:1:1 counts"):
        ratio = split_clips(eligible, (20, 20), SplitSpec(400, 20, 20, 3, 1, "ratio"), seed=1)
    # exactly 8:1:1 of the 292 clips the buffers allow: 29 = round(292 / 10), 234 = 292 - 2·29
    assert ratio.counts() == {"train": 234, "val": 29, "test": 29}
    with pytest.raises(ConfigError, match="too few clips to split"):
        split_clips(eligible[:3], (20, 20), SplitSpec(400, 20, 20, 3, 1, "ratio"), seed=1)
