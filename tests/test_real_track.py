"""The real-radiance track: the ``shanghai-viirs`` preset builds, benchmarks and predicts.

Skipped when ``../shared/data/real`` (or ``$DEEPLIGHT_REAL_DATA``) is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from benchmarks.predict import PredictRequest, TileSettings, predict_geotiff
from benchmarks.runner import RegionalSettings, run_benchmark
from deeplightmd.sensor import block_mean

VIIRS_2020 = "shanghai_ntl_500m/viirs_vnl_v2_annual/NTL_Shanghai_NPP-VIIRS_2013_2022_2020.tif"
DISTRICTS = "china_admin_echarts4/shanghai.geojson"


@pytest.fixture(scope="module")
def real_store(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from deeplightmd.builder import build_store, load_manifest

    manifest = load_manifest("shanghai-viirs", world_dir=real_data)
    out = str(tmp_path_factory.mktemp("real") / "shanghai.zarr")
    build_store(manifest, out, workers=1, progress=False)
    return out


def test_shanghai_viirs_store_builds_with_derived_lr_and_documented_stand_ins(real_store):
    from deeplightmd.store_format import read_store_attrs

    attrs = read_store_attrs(real_store)
    assert attrs["grid"]["ratio"] == 8 and attrs["grid"]["hr_pixel_size"] == 500
    assert attrs["sensor_model"]["ratio"] == 8            # LR derived with the sensor model
    assert attrs["sources"]["lr_ntl"]["derived_from"] == "hr_ntl"
    assert attrs["sources"]["dmo"] == {"constant": 0.0}   # no real DMO: a constant stand-in
    assert attrs["regions"] == ["嘉定区", "金山区"]
    assert sum(attrs["splits"].values()) >= 40
    # the real HR radiance reaches the bright centre (VNL 2020 max ~416 at 500 m)
    assert attrs["stats"]["hr_ntl_max"] > 100


def test_shanghai_viirs_track_evaluates_bicubic(real_store):
    results = run_benchmark("bicubic", real_store, device="cpu", progress=False,
                            regional=RegionalSettings(tile=16, overlap=4))
    assert results["dataset"]["n_clips"] >= 4
    assert 20 < results["metrics"]["local"]["psnr"]["mean"] < 60
    regional = results["metrics"]["regional"]
    assert set(regional) == {"嘉定区", "金山区"}
    for metrics in regional.values():
        assert abs(metrics["total_light_rel_error"]) < 0.6


def test_predict_real_viirs_2020_district(real_data, real_store, tmp_path):
    out = tmp_path / "jiading_sr.tif"
    res = predict_geotiff(PredictRequest(
        method="bicubic", lr=real_data / VIIRS_2020, out=out, store=real_store,
        region=real_data / DISTRICTS, region_name="嘉定区", preserve_lr_sum=True,
        tiles=TileSettings(16, 4), device="cpu", progress=False))
    with rasterio.open(real_data / VIIRS_2020) as lr_src, rasterio.open(out) as src:
        assert src.crs == lr_src.crs
        assert src.res[0] == pytest.approx(lr_src.res[0] / 8, rel=1e-9)
        sr, mask = src.read(1), src.dataset_mask() > 0
        r0, c0 = res.grid.lr_offset
        h, w = res.grid.lr_shape
        lr = lr_src.read(1)[r0:r0 + h, c0:c0 + w]
    full = block_mean(mask.astype(float), 8) == 1.0            # footprints fully inside
    agg = block_mean(np.where(mask, sr, 0.0).astype(np.float64), 8)
    np.testing.assert_allclose(agg[full], np.clip(lr[full], 0, None), rtol=1e-4)
    (row,) = res.sums.rows()
    assert row["unit"] == "嘉定区" and row["sr_sum"] == pytest.approx(row["lr_sum"], rel=0.02)
