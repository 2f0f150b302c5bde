"""Modalities as data: a 6-band Landsat 7 DMO by band names and a declared ``population`` layer
build from a manifest alone, ``info`` lists their bands, and a method reading them trains;
sensor presets, band conformance and the DN warning."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import rasterio
import torch
import yaml
from click.testing import CliRunner
from torch import nn

from benchmarks.method import TorchMethod
from benchmarks.runner import run_benchmark
from deeplightmd.access import DeepLightDataset, open_store
from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.manifest import PRESETS_DIR
from deeplightmd.daytime import SENSORS, conform_bands, dn_warning, resolve_bands
from deeplightmd.errors import ConfigError, DataWarning
from deeplightmd.modalities import BUILTIN, Modality, store_modalities
from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import read_store_attrs

L7 = SENSORS["landsat7-etm"]
CRS_UTM50_WKT = rasterio.crs.CRS.from_epsg(32650).to_wkt()
L7_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
POPULATION = {"role": "auxiliary", "units": "people per pixel", "long_name": "population count",
              "normalization": "log1p", "value_range": [0, 1e7], "plot": "viridis"}


def _landsat7_world(world: Path, out: Path) -> Path:
    """``world`` with its 7-band DMO rewritten as 6-band Landsat 7 C2L2 DN files (no scale tags:
    the sensor preset's 2.75e-5 / -0.2 turn them back into reflectance) and a population
    raster derived from the HR radiance."""
    out.mkdir()
    for item in world.iterdir():
        if item.name != "dmo":
            os.symlink(item, out / item.name)
    (out / "l7").mkdir()
    for src_path in sorted((world / "dmo").glob("*.tif")):
        with rasterio.open(src_path) as src:
            raw = src.read(masked=True)
            refl = (raw.astype(np.float64) * np.array(src.scales)[:, None, None]
                    + np.array(src.offsets)[:, None, None])
            dn = np.round((refl[1:] - L7.offset) / L7.scale).clip(1, 65535)
            dn = dn.filled(0).astype("uint16")                 # the world's nodata stays nodata
            profile = {**src.profile, "count": 6, "dtype": "uint16", "nodata": 0}
        with rasterio.open(out / "l7" / src_path.name, "w", **profile) as dst:
            dst.write(dn)
    with rasterio.open(world / "hr_ntl.tif") as src:
        pop = (40.0 * np.clip(src.read(1), 0, None) ** 0.8).astype("float32")
        profile = {**src.profile, "dtype": "float32", "nodata": None}
    with rasterio.open(out / "population.tif", "w", **profile) as dst:
        dst.write(pop, 1)
    return out


def _manifest(world: Path, path: Path) -> Path:
    data = yaml.safe_load((PRESETS_DIR / "tiny.yaml").read_text())
    data.pop("world")
    data["name"] = "tiny-landsat7-population"
    data["sources"]["dmo"] = {"files": ["l7/dmo_utm49.tif", "l7/dmo_utm50.tif"],
                              "sensor": "landsat7-etm", "bands": list(L7_BANDS),
                              "resampling": "bilinear", "fill": "nearest"}
    data["sources"]["population"] = {"files": ["population.tif"], "resampling": "average",
                                     "modality": POPULATION}
    data["base_dir"] = str(world)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def l7_store(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path) -> str:
    d = tmp_path_factory.mktemp("l7")
    world = _landsat7_world(tiny_world, d / "world")
    manifest = load_manifest(_manifest(world, d / "manifest.yaml"))
    out = str(d / "l7.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)   # reflectance, not DN: no warning
        build_store(manifest, out, workers=1, progress=False)
    return out


class PopulationNet(nn.Module):
    """LR radiance upsampled, plus a learned mix of DMO and population (tests)."""

    def __init__(self, ratio: int, dmo_bands: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.mix = nn.Conv2d(2 + dmo_bands, 1, 3, padding=1)

    def forward(self, lr: torch.Tensor, dmo: torch.Tensor, population: torch.Tensor
                ) -> torch.Tensor:
        up = nn.functional.interpolate(lr, scale_factor=self.ratio, mode="nearest")
        return up + self.mix(torch.cat([up, dmo, population], dim=1))


class PopulationMethod(TorchMethod):
    """Reads the declared ``population`` layer and three DMO bands by name (one the Landsat 7
    store lacks: ``coastal`` arrives as zeros)."""

    name = "test-population"
    family = "multi-modality"
    description = "population-aware CNN (tests)"
    inputs = ("lr_ntl", "dmo", "population")
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"dmo": ("coastal", "red", "nir")}

    @classmethod
    def protocol_overrides(cls, budget):
        return {"steps": 4, "val_every": 2, "batch_size": 2, "learning_rate": 1e-2}

    def build_network(self) -> nn.Module:
        return PopulationNet(self.context.ratio, len(self.bands["dmo"]))


def test_landsat7_and_population_build_from_the_manifest_alone(l7_store, tiny_store):
    attrs = read_store_attrs(l7_store)
    specs = store_modalities(attrs)
    assert specs["dmo"].band_names == L7_BANDS and specs["population"].units == "people per pixel"
    ds = open_store(l7_store, split="train")
    assert ds["dmo"].shape[1] == 6 and list(ds["band"].values) == list(L7_BANDS)
    assert ds["population"].attrs["units"] == "people per pixel"
    # the sensor preset turned C2L2 DN back into the world's reflectance
    dmo = ds["dmo"].values
    assert -0.05 < float(dmo.mean()) < 0.6 and float(dmo.max()) < 1.5
    ref = open_store(tiny_store, split="train")["dmo"].sel(band=list(L7_BANDS)).values
    assert np.abs(dmo - ref).max() < 1e-3
    stats = attrs["stats"]
    assert len(stats["dmo_mean"]) == 6
    assert stats["extra"]["population"]["normalization"] == "log1p"
    pop = ds["population"].values
    assert stats["extra"]["population"]["mean"][0] == pytest.approx(
        float(np.log1p(pop).mean()), rel=1e-4)
    assert set(open_store(l7_store)["regions/Anhui/hr"].data_vars) >= {"population", "dmo"}


def test_info_lists_bands_with_names_and_units(l7_store):
    from deeplightmd.cli import cli

    res = CliRunner().invoke(cli, ["info", l7_store])
    assert res.exit_code == 0, res.output
    dmo_line = next(line for line in res.output.splitlines() if line.strip().startswith("dmo "))
    assert "blue [1], green [1], red [1], nir [1], swir1 [1], swir2 [1]" in dmo_line
    assert "coastal" not in dmo_line
    assert any("population" in line and "population [people per pixel]" in line
               for line in res.output.splitlines())
    checked = CliRunner().invoke(cli, ["validate", l7_store])
    assert checked.exit_code == 0, checked.output


def test_a_method_declaring_population_trains_on_it(l7_store, tmp_path):
    train = DeepLightDataset(l7_store, "train", modalities=PopulationMethod.inputs, crop=4,
                             bands=PopulationMethod.bands)
    sample = train[0]
    assert sample["population"].shape == (1, 32, 32) and sample["dmo"].shape == (3, 32, 32)
    assert torch.count_nonzero(sample["dmo"][0]) == 0           # coastal: absent → mean (0)
    assert torch.count_nonzero(sample["dmo"][1]) > 0
    res = run_benchmark(PopulationMethod, l7_store, out=tmp_path / "r.json", progress=False,
                        device="cpu")
    assert res["training"]["steps"] == 4
    assert res["method"]["inputs"] == ["lr_ntl", "dmo", "population"]
    assert np.isfinite(res["metrics"]["local"]["psnr"]["mean"])
    assert set(res["metrics"]["regional"]) == {"Anhui", "Beijing", "Taiwan"}


def test_sensor_presets_map_names_to_file_bands_and_reflectance():
    spec = {"sensor": "landsat8-oli", "bands": ("red", "nir")}
    assert resolve_bands(spec.get) == ((4, 5), ("red", "nir"), 2.75e-5, -0.2)
    s2 = {"sensor": "sentinel2-l2a", "bands": ("blue", "swir2")}
    bands, _, scale, offset = resolve_bands(s2.get)
    assert bands == (2, 12) and 11000 * scale + offset == pytest.approx(1.0)  # (DN-1000)/1e4
    pre = {"sensor": "sentinel2-l2a-pre04", "bands": ("blue",)}
    assert resolve_bands(pre.get)[2:] == (1e-4, 0.0)
    assert resolve_bands({"sensor": "landsat5-tm"}.get)[1] == L7_BANDS
    explicit = {"sensor": "landsat7-etm", "scale": 0.004}      # an explicit scale wins
    assert resolve_bands(explicit.get)[2:] == (0.004, 0.0)
    with pytest.raises(ConfigError, match="band_names"):
        resolve_bands({"bands": (1, 2, 3, 4, 5, 6)}.get)
    named = {"bands": (1, 2), "band_names": ("red", "nir")}
    assert resolve_bands(named.get)[:2] == ((1, 2), ("red", "nir"))


def test_band_conformance_and_dn_warning():
    x = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2)
    out = conform_bands(x, ("red", "nir"), ("coastal", "nir", "red"))
    assert np.array_equal(out[1], x[1]) and np.array_equal(out[2], x[0]) and not out[0].any()
    norm = Normalizer(dmo_mean=(0.1, 0.2), dmo_std=(0.5, 0.25))
    conformed = norm.with_bands(("red", "nir"), ("coastal", "nir"))
    assert conformed.dmo_mean == (0.0, 0.2) and conformed.dmo_std == (1.0, 0.25)
    assert dn_warning(L7_BANDS, [0.1] * 6) is None
    line = dn_warning(L7_BANDS, [0.1, 85.0, 0.1, 0.1, 0.1, 0.1])
    assert line is not None and "\n" not in line and "green mean 85" in line
    assert dn_warning(("elevation",), [120.0], "m") is None


def test_declared_modality_errors_name_the_fix():
    with pytest.raises(ConfigError, match="is a built-in modality"):
        load_manifest("tiny", sources__dem__modality={"units": "m"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['unit'\] in sources.roads"):
        load_manifest("tiny", sources__roads={"files": ["r.tif"], "modality": {"unit": "km"}})
    with pytest.raises(ConfigError, match="normalization must be one of"):
        load_manifest("tiny", sources__roads={"files": ["r.tif"],
                                              "modality": {"normalization": "log"}})
    roads = load_manifest("tiny", sources__roads={"files": ["r.tif"], "modality": {
        "units": "km per km2", "role": "supervision"}}).modalities()["roads"]
    assert isinstance(roads, Modality) and roads.role == "supervision"
    assert set(BUILTIN) < set(load_manifest("tiny", sources__roads={
        "files": ["r.tif"], "modality": {}}).modalities())


def test_real_landsat7_dn_file_warns_in_one_line(tmp_path, real_data):
    """The real 8-bit Landsat 7 ETM+ subset (tests/../shared/data/real/olinda_landsat7_dem,
    see its PROVENANCE.md) stored as "reflectance" without a scale is caught; with a scale it
    builds silently."""
    folder = real_data / "olinda_landsat7_dem"
    if not (folder / "L7_ETMs.tif").is_file():
        pytest.skip(f"Landsat 7 sample not found at {folder}")
    with rasterio.open(folder / "L7_ETMs.tif") as src:
        crs, bounds = src.crs, src.bounds
    # a synthetic NTL pair over the same footprint (no real NTL exists for Olinda)
    hr_t = rasterio.transform.from_origin(bounds.left, bounds.top, 60.0, 60.0)
    h, w = int((bounds.top - bounds.bottom) // 60), int((bounds.right - bounds.left) // 60)
    rng = np.random.default_rng(0)
    hr = rng.lognormal(0.0, 1.0, (h, w)).astype("float32")
    common = {"driver": "GTiff", "count": 1, "dtype": "float32", "crs": crs}
    with rasterio.open(tmp_path / "hr.tif", "w", height=h, width=w, transform=hr_t,
                       **common) as dst:
        dst.write(hr, 1)
    lr = hr[: h // 8 * 8, : w // 8 * 8].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    with rasterio.open(tmp_path / "lr.tif", "w", height=lr.shape[0], width=lr.shape[1],
                       transform=hr_t @ rasterio.Affine.scale(8), **common) as dst:
        dst.write(lr.astype("float32"), 1)
    data = {"name": "olinda", "grid": {"crs": "EPSG:31985", "hr_pixel_size": 60, "ratio": 8,
                                       "lr_clip": 4},
            "sources": {"lr_ntl": {"files": [str(tmp_path / "lr.tif")], "resampling": "average"},
                        "hr_ntl": {"files": [str(tmp_path / "hr.tif")], "resampling": "average"},
                        "dmo": {"files": [str(folder / "L7_ETMs.tif")], "bands": [1, 2, 3, 4, 5, 6],
                                "band_names": list(L7_BANDS), "fill": "nearest"},
                        "dem": {"files": [str(folder / "olinda_dem_utm25s.tif")],
                                "fill": "nearest"},
                        "isp": {"constant": 0}},
            "splits": {"train": 6, "val": 1, "test": 1, "block": 1, "buffer": 0,
                       "on_shortfall": "ratio"}}
    path = tmp_path / "olinda.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.warns(DataWarning, match="look like raw DN, not reflectance") as record:
        build_store(load_manifest(path), str(tmp_path / "dn.zarr"), progress=False)
    assert all("\n" not in str(w.message) for w in record)
    data["sources"]["dmo"]["scale"] = 1 / 255
    path.write_text(yaml.safe_dump(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        build_store(load_manifest(path), str(tmp_path / "scaled.zarr"), progress=False)
    assert store_modalities(read_store_attrs(str(tmp_path / "scaled.zarr")))["dmo"].band_names \
        == L7_BANDS


def test_builtin_stores_keep_their_attrs_and_fingerprint_inputs(tiny_store):
    """New manifest keys are recorded only when set and stats gain ``extra`` only for declared
    layers, so stores of the packaged presets hash exactly as before the registry."""
    attrs = read_store_attrs(tiny_store)
    assert "extra" not in attrs["stats"]
    for spec in attrs["manifest"]["sources"].values():
        assert not {"sensor", "band_names", "modality"} & set(spec)
    assert store_modalities(attrs) == BUILTIN
    assert load_manifest("tiny").to_dict()["sources"]["dmo"].keys() >= {"bands", "scale"}


def test_info_crs_is_short_and_preview_never_draws_boxes():
    from deeplightmd.builder.inspect import _short_crs
    from deeplightmd.builder.preview import _has_glyph, display_text

    assert _short_crs(CRS_UTM50_WKT) == "EPSG:32650 (WGS 84 / UTM zone 50N)"
    albers = _short_crs(load_manifest("tiny").grid.crs)
    assert albers.startswith("+proj=aea") and "..." not in albers
    shown = display_text("崇明区 Chongming")
    assert shown.endswith("Chongming")
    assert all(_has_glyph(ch) for ch in shown)       # drawable: the name, a transliteration
    assert display_text("Anhui") == "Anhui"          # or U+XXXX code points
