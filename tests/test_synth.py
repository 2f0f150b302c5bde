"""The synthetic world: determinism, file contract, sensor physics, auxiliaries, regions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from scipy import ndimage

from deeplightmd.errors import ConfigError
from deeplightmd.sensor import SensorModel, blur_and_shift
from deeplightmd.synth import generate_world
from deeplightmd.synth.config import resolve_config

ALBERS_PARAMS = {"proj": "aea", "lat_0": 0, "lon_0": 105, "lat_1": 25, "lat_2": 47}
RASTERS = ["lr_ntl.tif", "hr_ntl.tif", "dmo/dmo_utm49.tif", "dmo/dmo_utm50.tif", "dem.tif",
           "isp.tif"]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_on(src_path: Path, dst: rasterio.io.DatasetReader, resampling: Resampling,
             band: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Band ``band`` of ``src_path`` reprojected onto the grid of ``dst`` (float32) and the
    share of valid (not nodata) source pixels in each destination pixel."""
    with rasterio.open(src_path) as src:
        data = src.read(band)
        out = np.zeros((2, dst.height, dst.width), dtype=np.float32)
        reproject(np.stack([data.astype(np.float32), (data != src.nodata).astype(np.float32)]),
                  out, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=dst.transform, dst_crs=dst.crs, resampling=resampling)
    return out[0], out[1]


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict:
    return json.loads((tiny_world / "world.json").read_text())


def test_same_seed_is_byte_identical_and_other_seed_differs(tiny_world: Path, tmp_path: Path):
    generate_world(tmp_path / "again", preset="tiny", seed=0)
    assert _hashes(tmp_path / "again") == _hashes(tiny_world)
    generate_world(tmp_path / "other", preset="tiny", seed=1)
    other = _hashes(tmp_path / "other")
    first = _hashes(tiny_world)
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in RASTERS)


def test_world_json_follows_the_contract(tiny_world: Path, world: dict):
    for key in ("preset", "seed", "generator_version", "bounds_lonlat", "hr_pixel",
                "sensor_model", "files", "regions_file", "admin_file", "test_regions", "params",
                "stats"):
        assert key in world, key
    assert world["preset"] == "tiny" and world["seed"] == 0 and world["hr_pixel"] == 60.0
    assert SensorModel.from_dict(world["sensor_model"]) == resolve_config("tiny").sensor
    listed = [p for paths in world["files"].values() for p in paths]
    assert sorted(listed) == sorted(RASTERS)
    assert all((tiny_world / p).is_file() for p in listed)
    w, s, e, n = world["bounds_lonlat"]
    assert w < 114.0 < e and s < 31.0 < n
    assert 0.40 <= e - w <= 0.5 and 0.32 <= n - s <= 0.4
    assert sorted(world["test_regions"]) == ["Anhui", "Beijing", "Taiwan"]


def test_rasters_have_documented_crs_grid_dtype_nodata_bands(tiny_world: Path, world: dict):
    hr_pixel = world["hr_pixel"]
    expected = {  # file: (epsg or None for Albers, pixel, dtype, nodata, bands)
        "lr_ntl.tif": (4326, 1 / 240, "float32", -9999.0, 1),
        "hr_ntl.tif": (32650, hr_pixel, "float32", -9999.0, 1),
        "dmo/dmo_utm49.tif": (32649, 30.0, "uint16", 0, 7),
        "dmo/dmo_utm50.tif": (32650, 30.0, "uint16", 0, 7),
        "dem.tif": (4326, 3 / 3600, "int16", -32768, 1),
        "isp.tif": (None, 30.0, "uint8", 255, 1),
    }
    crss = set()
    for name, (epsg, pixel, dtype, nodata, count) in expected.items():
        with rasterio.open(tiny_world / name) as ds:
            crss.add(ds.crs.to_wkt())
            if epsg is None:
                params = ds.crs.to_dict()
                assert {k: params.get(k) for k in ALBERS_PARAMS} == ALBERS_PARAMS
            else:
                assert ds.crs.to_epsg() == epsg, name
            assert ds.res == pytest.approx((pixel, pixel), rel=1e-9), name
            assert ds.dtypes == (dtype,) * count and ds.count == count, name
            assert ds.nodata == nodata, name
            assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256), name
            assert ds.compression is not None, name
            if name.startswith("dmo"):
                assert ds.descriptions == ("coastal", "blue", "green", "red", "nir", "swir1",
                                           "swir2")
                assert ds.scales == pytest.approx((2.75e-05,) * 7)
                assert ds.offsets == pytest.approx((-0.2,) * 7)
                refl = ds.read(4, masked=True) * 2.75e-05 - 0.2
                assert 0.0 <= refl.min() and refl.max() < 0.6 and 0.02 < refl.mean() < 0.25
            if name == "isp.tif":
                assert set(np.unique(ds.read(1))) <= {0, 1}
    assert len(crss) >= 4


def test_dmo_scenes_sit_in_two_utm_zones_overlapping_across_114e(tiny_world: Path):
    lons = {}
    for zone in (49, 50):
        with rasterio.open(tiny_world / f"dmo/dmo_utm{zone}.tif") as ds:
            valid = ds.read_masks(1) > 0
            assert 0.4 < valid.mean() < 1.0  # a scene footprint inside its rectangle
            rows, cols = np.nonzero(valid[:: 8, :: 8])
            xs, ys = rasterio.transform.xy(ds.transform, rows * 8, cols * 8)
            lon, _ = rasterio.warp.transform(ds.crs, "EPSG:4326", xs, ys)
            lons[zone] = (min(lon), max(lon))
    assert lons[49][1] > 114.0 > lons[50][0]  # both cross 114°E: they overlap
    assert 0.01 < lons[49][1] - lons[50][0] < 0.03  # ~2 km overlap at 31°N


def test_lr_ntl_is_the_sensor_model_of_hr_ntl(tiny_world: Path, world: dict):
    """Blur HR, average onto the LR grid, fit LR = gain·s + offset.

    Pixels whose LR footprint (+3 LR px of PSF halo) holds saturated HR pixels are left out (the
    LR was made from the unsaturated truth). A 3σ-trimmed refit drops time-mismatch pixels
    (``stats.lr_signal_changed_fraction`` ≈ 9 % of lit LR pixels). Tolerances: noise_rel = 5 %
    and the remaining mismatch pixels bias the fit by a few per cent (gain within 5 %, offset
    within 0.15 nW, i.e. one noise_abs).
    """
    model = SensorModel.from_dict(world["sensor_model"])
    saturation = world["params"]["lights"]["hr_saturation"]
    with rasterio.open(tiny_world / "hr_ntl.tif") as hr_ds, \
            rasterio.open(tiny_world / "lr_ntl.tif") as lr_ds:
        hr = hr_ds.read(1)
        lr = lr_ds.read(1)
        signal = np.zeros(lr.shape, dtype=np.float32)
        saturated = np.zeros(lr.shape, dtype=np.float32)
        for src, dst, how in ((blur_and_shift(hr, model).astype(np.float32), signal,
                               Resampling.average),
                              ((hr >= saturation).astype(np.float32), saturated,
                               Resampling.max)):
            reproject(src, dst, src_transform=hr_ds.transform, src_crs=hr_ds.crs,
                      dst_transform=lr_ds.transform, dst_crs=lr_ds.crs, resampling=how)
    assert np.corrcoef(signal.ravel(), lr.ravel())[0, 1] > 0.9
    sel = (model.gain * signal >= 2 * model.floor) & ~ndimage.binary_dilation(saturated > 0,
                                                                             iterations=3)
    x, y = signal[sel].astype(np.float64), lr[sel].astype(np.float64)
    assert x.size > 200
    gain, offset = np.polyfit(x, y, 1)
    resid = y - (gain * x + offset)
    keep = np.abs(resid) < 3 * resid.std()
    gain, offset = np.polyfit(x[keep], y[keep], 1)
    print(f"LR fit: gain {gain:.4f} (true {model.gain}), offset {offset:.3f} "
          f"(true {model.offset}), kept {keep.mean():.1%} of {x.size}")
    assert gain == pytest.approx(model.gain, rel=0.05)
    assert offset == pytest.approx(model.offset, abs=0.15)
    # below the floor the LR holds only offset + noise
    dark = model.gain * signal < 0.2 * model.floor
    assert abs(np.median(lr[dark]) - model.offset) < 0.1


def test_auxiliaries_informative_but_not_decisive(tiny_world: Path, world: dict):
    lights = world["params"]["lights"]
    with rasterio.open(tiny_world / "hr_ntl.tif") as hr_ds:
        hr = hr_all = hr_ds.read(1)
        isp, isp_valid = _read_on(tiny_world / "isp.tif", hr_ds, Resampling.average)
        nir, valid = _read_on(tiny_world / "dmo/dmo_utm50.tif", hr_ds, Resampling.average, band=5)
        swir, _ = _read_on(tiny_world / "dmo/dmo_utm50.tif", hr_ds, Resampling.average, band=6)
    inside = isp_valid > 0.999  # product rectangles differ: compare where both have data
    assert inside.mean() > 0.95
    valid = inside & (valid > 0.999)
    assert valid.mean() > 0.4
    hr, isp = hr[inside], isp[inside]
    nir, swir = nir * 2.75e-05 - 0.2, swir * 2.75e-05 - 0.2
    ndbi = (swir - nir) / np.maximum(swir + nir, 1e-6)
    log_hr = np.log1p(hr)
    r_isp = np.corrcoef(log_hr.ravel(), isp.ravel())[0, 1]
    r_ndbi = np.corrcoef(np.log1p(hr_all[valid]), ndbi[valid])[0, 1]
    isp_px, lit = isp >= 0.5, hr >= lights["lit_threshold"]
    dark_isp = (isp_px & (hr < lights["dark_threshold"])).sum() / isp_px.sum()
    lit_non_isp = (lit & ~isp_px).sum() / lit.sum()
    print(f"corr(log1p HR, ISP share) = {r_isp:.3f}; corr(log1p HR, NDBI) = {r_ndbi:.3f}; "
          f"dark ISP {dark_isp:.3f} (truth {world['stats']['dark_isp_fraction']}); "
          f"lit non-ISP {lit_non_isp:.3f} (truth {world['stats']['lit_non_isp_fraction']})")
    assert 0.5 < r_isp < 0.95
    assert 0.3 < r_ndbi < 0.95
    # documented proportions: measured on the products vs the truth on the working grid
    assert dark_isp == pytest.approx(world["stats"]["dark_isp_fraction"], abs=0.05)
    assert lit_non_isp == pytest.approx(world["stats"]["lit_non_isp_fraction"], abs=0.06)
    target = world["params"]["settlements"]["dark_isp_fraction"]
    assert target <= world["stats"]["dark_isp_fraction"] <= target + 0.1
    assert 0.05 < lit_non_isp < 0.4 and 0.05 < dark_isp < 0.3
    sources = world["stats"]["lit_non_isp_sources_px"]
    assert sources["greenhouses"] > 0 and sources["gas_flares"] > 0
    assert world["stats"]["hr_saturated_px"] > 0 and hr_all.max() == pytest.approx(
        lights["hr_saturation"])


def test_regions_inside_world_and_admin_units_tile_provinces(tiny_world: Path, world: dict):
    import geopandas as gpd
    from shapely.geometry import box

    regions = gpd.read_file(tiny_world / world["regions_file"])
    admin = gpd.read_file(tiny_world / world["admin_file"])
    assert regions.crs.to_epsg() == 4326 and admin.crs.to_epsg() == 4326
    tests = regions[regions["test"]]
    assert sorted(tests["name"]) == ["Anhui", "Beijing", "Taiwan"]
    assert (~regions["test"]).sum() >= 1
    world_box = box(*world["bounds_lonlat"])
    clip_deg = world["params"]["extent"]["clip_km"] / 111.32
    inner = box(*world["bounds_lonlat"]).buffer(-clip_deg * 0.95, join_style="mitre")
    for geom in tests.geometry:
        assert inner.contains(geom)
        assert 25.0 < geom.area * 111.32**2 * np.cos(np.radians(31)) < 60.0  # ~6-8 km across
    assert regions.union_all().symmetric_difference(world_box).area < 1e-9
    assert sum(g.area for g in regions.geometry) == pytest.approx(world_box.area, rel=1e-9)
    assert admin["admin_id"].is_unique and admin["admin_id"].min() >= 1
    for name, province, is_test in zip(regions["name"], regions.geometry, regions["test"],
                                        strict=True):
        units = admin[admin["province"] == name]
        assert len(units) >= (8 if is_test else 2), name
        assert units.union_all().symmetric_difference(province).area < 1e-9 * province.area + 1e-12
        assert sum(g.area for g in units.geometry) == pytest.approx(province.area, rel=1e-7)


def test_clip_budget_outside_test_regions(world: dict):
    assert world["stats"]["clips_outside_test_regions"] >= 60


def test_config_overrides_are_validated(tmp_path: Path):
    cfg = resolve_config("tiny", {"settlements": {"n_settlements": 12}, "sensor": {"gain": 0.9}})
    assert cfg.settlements.n_settlements == 12 and cfg.sensor.gain == 0.9
    assert resolve_config("demo").extent.width_lr > resolve_config("tiny").extent.width_lr
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_town'\]"):
        resolve_config("tiny", {"settlements": {"n_town": 3}})
    with pytest.raises(ConfigError, match=r"lights.switch_off_fraction must be in \[0, 1\]"):
        resolve_config("tiny", {"lights": {"switch_off_fraction": 1.5}})
    with pytest.raises(ConfigError, match=r"settlements.n_settlements must be an integer"):
        resolve_config("tiny", {"settlements": {"n_settlements": "many"}})
    with pytest.raises(ConfigError, match="across 114"):
        resolve_config("tiny", {"extent": {"center_lon": 120.0}})
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        generate_world(tmp_path / "w", seed=-1)
    assert not (tmp_path / "w").exists()
