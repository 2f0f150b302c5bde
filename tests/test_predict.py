"""``deeplightmd predict``: georeferencing, mask, LR-sum preservation, tiling, light sums,
errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio import features
from shapely.geometry import box, mapping

from benchmarks.method import MethodContext
from benchmarks.predict import PredictRequest, TileSettings, predict_geotiff, preserve_lr_sum
from benchmarks.registry import get_method
from benchmarks.runner import read_checkpoint_meta, save_checkpoint
from deeplightmd.access.region import Stitcher, tile_windows
from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.normalize import Normalizer
from deeplightmd.predict.tiled import RowBlender
from deeplightmd.sensor import block_mean

RATIO = 8
LR_CRS = "EPSG:32650"
LR_T = Affine(480.0, 0.0, 400_000.0, 0.0, -480.0, 3_500_000.0)
LR_SHAPE = (20, 24)
NODATA_PX = (3, 5)          # one LR pixel set to nodata
STATS = Normalizer(ntl_mean=1.2, ntl_std=1.4, dem_mean=50.0, dem_std=30.0)


def _write(path: Path, data: np.ndarray, crs: str | None, transform: Affine,
           nodata: float | None = None) -> Path:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
    return path


def _lr_bounds_lonlat() -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds
    h, w = LR_SHAPE
    return transform_bounds(LR_CRS, "EPSG:4326", LR_T.c, LR_T.f + h * LR_T.e, LR_T.c + w * LR_T.a,
                            LR_T.f)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small LR raster (UTM 50N, one nodata pixel), aux rasters in lon/lat and checkpoints."""
    d = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    lr = rng.lognormal(0.5, 1.2, LR_SHAPE).astype(np.float32)
    lr[0, 0] = 0.0                                   # a dark pixel (zero-prediction case)
    lr[NODATA_PX] = -9999.0
    paths = {"lr": _write(d / "lr.tif", lr, LR_CRS, LR_T, nodata=-9999.0)}
    paths["lr_nocrs"] = _write(d / "lr_nocrs.tif", lr, None, LR_T)
    west, south, east, north = _lr_bounds_lonlat()
    pad = 0.02
    t_ll = Affine(0.001, 0.0, west - pad, 0.0, -0.001, north + pad)
    h, w = int((north - south + 2 * pad) / 0.001) + 1, int((east - west + 2 * pad) / 0.001) + 1
    dmo = rng.uniform(0.05, 0.4, (7, h, w)).astype(np.float32)
    paths["dmo"] = _write(d / "dmo.tif", dmo, "EPSG:4326", t_ll)
    paths["dmo_small"] = _write(d / "dmo_small.tif", dmo[:, : h // 2, : w // 2], "EPSG:4326", t_ll)
    for name in ("nearest", "bicubic", "guided-filter"):
        method = get_method(name)(MethodContext(ratio=RATIO, normalizer=STATS))
        paths[name] = save_checkpoint(method, d / f"{name}.safetensors", store_fingerprint=None)
    paths["dir"] = d
    return paths


def _run(inputs: dict[str, Path], out: str, method: str = "bicubic", **kw) -> object:
    req = PredictRequest(method=method, lr=inputs["lr"], out=inputs["dir"] / out,
                         checkpoint=inputs[method], device="cpu", progress=False, **kw)
    return predict_geotiff(req)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), src.dataset_mask(), {
            "crs": src.crs, "transform": src.transform, "nodata": src.nodata,
            "tiled": src.profile["tiled"], "compress": src.profile.get("compress"),
            "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"), "flags": src.mask_flag_enums}


def _lr_array(inputs: dict[str, Path]) -> np.ndarray:
    with rasterio.open(inputs["lr"]) as src:
        return src.read(1)


def test_checkpoint_records_ratio_and_stats(inputs):
    meta = read_checkpoint_meta(inputs["bicubic"])
    assert meta["ratio"] == RATIO
    assert Normalizer.from_dict(meta["stats"]) == STATS


def test_geotiff_crs_transform_nodata_and_region_mask(inputs, tmp_path):
    # region polygon given in lon/lat, covering LR columns 4..15 and rows 2..13 (roughly)
    x0, x1 = LR_T.c + 4.3 * 480, LR_T.c + 15.6 * 480
    y1, y0 = LR_T.f - 2.2 * 480, LR_T.f - 13.7 * 480
    region_utm = box(x0, y0, x1, y1).buffer(-300).buffer(300)     # rounded corners
    import geopandas as gpd
    layer = gpd.GeoDataFrame({"name": ["inner"]}, geometry=[region_utm], crs=LR_CRS)
    layer.to_crs("EPSG:4326").to_file(tmp_path / "region.geojson")
    res = _run(inputs, "sr_region.tif", region=tmp_path / "region.geojson", region_name="inner")
    sr, mask, meta = _read(res.path)
    assert meta["crs"] == rasterio.crs.CRS.from_string(LR_CRS)
    # region bbox (in the LR CRS, after the lon/lat round trip) snapped outwards to LR pixels
    assert (res.grid.lr_offset, res.grid.lr_shape) == ((2, 4), (12, 12))
    expected_t = Affine(480.0 / RATIO, 0.0, LR_T.c + 4 * 480, 0.0, -480.0 / RATIO, LR_T.f - 2 * 480)
    assert meta["transform"].almost_equals(expected_t, precision=1e-6)
    assert sr.shape == (12 * RATIO, 12 * RATIO)
    assert np.isnan(meta["nodata"])
    assert meta["tiled"] and meta["compress"] == "deflate" and meta["layout"] == "COG"
    assert meta["flags"] == ([rasterio.enums.MaskFlags.per_dataset],)      # internal mask band
    # mask: pixel centre inside the region (computed independently) and LR pixel valid
    inside = features.geometry_mask([mapping(layer.to_crs("EPSG:4326").to_crs(LR_CRS).geometry[0])],
                                    out_shape=sr.shape, transform=expected_t, invert=True)
    lr_valid = np.ones((12, 12), bool)
    lr_valid[NODATA_PX[0] - 2, NODATA_PX[1] - 4] = False
    expected = inside & np.kron(lr_valid, np.ones((RATIO, RATIO), bool))
    np.testing.assert_array_equal(mask > 0, expected)
    assert np.isnan(sr[~expected]).all() and np.isfinite(sr[expected]).all()
    assert 0.3 < expected.mean() < 0.95          # the mask is neither empty nor everything


def test_preserve_lr_sum_reaggregates_to_lr(inputs):
    res = _run(inputs, "sr_preserve.tif", preserve_lr_sum=True, tiles=TileSettings(7, 3))
    sr, mask, _ = _read(res.path)
    lr = _lr_array(inputs)
    valid = lr != -9999.0
    agg = block_mean(np.where(mask > 0, sr, 0.0).astype(np.float64), RATIO)
    rel = np.abs(agg[valid] - lr[valid]) / np.maximum(np.abs(lr[valid]), 1e-6)
    assert rel.max() < 1e-4
    assert agg[0, 0] == 0.0
    # without preservation bicubic does not re-aggregate exactly (the test can fail)
    plain, _, _ = _read(_run(inputs, "sr_plain.tif").path)
    agg_plain = block_mean(np.nan_to_num(plain).astype(np.float64), RATIO)
    assert np.abs(agg_plain[valid] - lr[valid]).max() > 1e-2


def test_preserve_lr_sum_zero_prediction_spreads_uniformly():
    sr = np.zeros((16, 16), np.float32)
    sr[8:, 8:] = np.arange(64, dtype=np.float32).reshape(8, 8)
    lr = np.array([[5.0, 0.0], [-1.0, 2.0]])
    out = preserve_lr_sum(sr, lr, 8)
    np.testing.assert_allclose(out[:8, :8], 5.0)                 # zero prediction, LR > 0
    assert (out[:8, 8:] == 0).all() and (out[8:, :8] == 0).all()  # LR 0 and LR < 0 → 0
    np.testing.assert_allclose(out[8:, 8:], sr[8:, 8:] * 2.0 / sr[8:, 8:].mean(), rtol=1e-6)


def test_tiled_equals_untiled_for_a_per_pixel_method(inputs):
    tiled, _, _ = _read(_run(inputs, "t_small.tif", "nearest", tiles=TileSettings(5, 2)).path)
    whole, _, _ = _read(_run(inputs, "t_whole.tif", "nearest", tiles=TileSettings(64, 0)).path)
    np.testing.assert_allclose(tiled, whole, rtol=1e-6, equal_nan=True)
    lr = _lr_array(inputs)
    np.testing.assert_allclose(whole[::RATIO, ::RATIO][lr != -9999.0], lr[lr != -9999.0],
                               rtol=1e-5)


def test_row_blender_matches_the_stitcher():
    rng = np.random.default_rng(1)
    shape, tile, overlap = (13, 17), 6, 2
    stitcher = Stitcher((shape[0] * 2, shape[1] * 2), 2, overlap)
    blender = RowBlender(shape[1] * 2, tile * 2, 2, overlap)
    rows: list[np.ndarray] = []
    for r, c, h, w in tile_windows(shape, tile, overlap):
        if r * 2 > blender.top:
            rows.append(blender.release(r * 2)[1])
        pred = rng.normal(size=(h * 2, w * 2))
        stitcher.add(pred, (r, c, h, w))
        blender.add(pred, (r, c, h, w))
    rows.append(blender.release(shape[0] * 2)[1])
    np.testing.assert_allclose(np.concatenate(rows), stitcher.result(), rtol=1e-5, atol=1e-6)


def test_aux_reprojected_and_light_sums_per_admin_unit(inputs, tmp_path):
    import geopandas as gpd
    # two admin units aligned with the LR pixel lattice (sum oracle: the LR pixels inside)
    units = [box(LR_T.c + 0 * 480, LR_T.f - 10 * 480, LR_T.c + 12 * 480, LR_T.f),
             box(LR_T.c + 12 * 480, LR_T.f - 20 * 480, LR_T.c + 24 * 480, LR_T.f - 10 * 480)]
    gpd.GeoDataFrame({"name": ["west", "east"]}, geometry=units, crs=LR_CRS).to_file(
        tmp_path / "admin.gpkg")
    res = _run(inputs, "sr_guided.tif", "guided-filter", aux={"dmo": inputs["dmo"]},
               admin=tmp_path / "admin.gpkg", preserve_lr_sum=True, tiles=TileSettings(8, 2))
    sr, mask, _ = _read(res.path)
    assert np.isfinite(sr[mask > 0]).all() and (sr[mask > 0] >= 0).all()
    lr = np.where(_lr_array(inputs) == -9999.0, 0.0, _lr_array(inputs))
    rows = {r["unit"]: r for r in res.sums.rows()}
    assert rows["west"]["pixels"] == (10 * 12 - 1) * RATIO**2      # minus the nodata pixel
    for name, block in (("west", lr[:10, :12]), ("east", lr[10:, 12:])):
        assert rows[name]["lr_sum"] == pytest.approx(block.sum(), rel=1e-6)
        assert rows[name]["sr_sum"] == pytest.approx(block.sum(), rel=1e-4)
    assert res.sums.to_csv().splitlines()[0] == "unit,pixels,sr_sum,lr_sum"


@pytest.mark.parametrize(("case", "error", "match"), [
    ("lr_nocrs", InputFileError, "has no CRS"),
    ("aux_partial", InputFileError, "does not cover the LR extent"),
    ("region_outside", ConfigError, "lies outside the LR raster"),
    ("other_method", ConfigError, "saved by method 'nearest', not 'bicubic'"),
    ("missing_modality", ConfigError, r"lack \['dmo'\] \(pass --dmo\)"),
    ("missing_file", InputFileError, "does not exist"),
    ("learned_without_checkpoint", ConfigError, "is learned: pass --checkpoint"),
])
def test_bad_input(inputs, tmp_path, case, error, match):
    import geopandas as gpd
    kw: dict = {"method": "bicubic", "lr": inputs["lr"], "checkpoint": inputs["bicubic"]}
    if case == "lr_nocrs":
        kw["lr"] = inputs["lr_nocrs"]
    elif case == "aux_partial":
        kw.update(method="guided-filter", checkpoint=inputs["guided-filter"],
                  aux={"dmo": inputs["dmo_small"]})
    elif case == "region_outside":
        gpd.GeoDataFrame({"name": ["far"]}, geometry=[box(10, 10, 11, 11)],
                         crs="EPSG:4326").to_file(tmp_path / "far.geojson")
        kw["region"] = tmp_path / "far.geojson"
    elif case == "other_method":
        kw["checkpoint"] = inputs["nearest"]
    elif case == "missing_modality":
        kw.update(method="guided-filter", checkpoint=inputs["guided-filter"])
    elif case == "missing_file":
        kw["lr"] = tmp_path / "nope.tif"
    elif case == "learned_without_checkpoint":
        kw.update(method="srcnn", checkpoint=None)
    with pytest.raises(error, match=match):
        predict_geotiff(PredictRequest(out=tmp_path / "x.tif", progress=False, device="cpu", **kw))
    assert not (tmp_path / "x.tif").exists()


def test_cli_writes_output_and_reports_bad_input_with_exit_2(inputs, tmp_path):
    from deeplightmd.cli import cli

    runner = CliRunner()
    out = tmp_path / "cli.tif"
    ok = runner.invoke(cli, ["predict", "--method", "nearest", "--checkpoint",
                             str(inputs["nearest"]), "--lr", str(inputs["lr"]), "--out", str(out),
                             "--tile", "16", "--overlap", "2", "--quiet", "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    assert f"{LR_SHAPE[0] * RATIO}x{LR_SHAPE[1] * RATIO} px" in ok.output and out.is_file()
    bad = runner.invoke(cli, ["predict", "--method", "bicubic", "--checkpoint",
                              str(inputs["nearest"]), "--lr", str(inputs["lr"]), "--out",
                              str(tmp_path / "bad.tif"), "--quiet"])
    assert bad.exit_code == 2
    assert "Error: checkpoint" in bad.output and "Traceback" not in bad.output


def test_constant_aux_input_like_the_manifest(inputs, tmp_path):
    """``--dmo constant:VALUE`` stands in for a layer the model was trained without; a bad
    constant is one ConfigError, and nothing is written."""
    from deeplightmd.cli import cli

    res = _run(inputs, "sr_const.tif", "guided-filter", aux={"dmo": "constant:0.1"},
               tiles=TileSettings(8, 2))
    sr, mask, _ = _read(res.path)
    assert np.isfinite(sr[mask > 0]).all()
    out = tmp_path / "cli_const.tif"
    ok = CliRunner().invoke(cli, ["predict", "--method", "guided-filter", "--checkpoint",
                                  str(inputs["guided-filter"]), "--lr", str(inputs["lr"]),
                                  "--dmo", "constant:0", "--out", str(out), "--quiet",
                                  "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    with rasterio.open(out) as src:
        assert src.shape == (LR_SHAPE[0] * RATIO, LR_SHAPE[1] * RATIO)
    with pytest.raises(ConfigError, match="expected constant:NUMBER"):
        _run(inputs, "bad_const.tif", "guided-filter", aux={"dmo": "constant:zero"})
    assert not (inputs["dir"] / "bad_const.tif").exists()


def test_radiance_outside_training_statistics_warns_once(inputs, tmp_path):
    import warnings

    from benchmarks.predict.run import radiance_warning
    from deeplightmd.errors import DataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        _run(inputs, "sr_in_range.tif", "nearest")          # same distribution: silent
    lr = np.where(_lr_array(inputs) == -9999.0, -9999.0, _lr_array(inputs) * 5000.0)
    dn = _write(tmp_path / "lr_dn.tif", lr.astype(np.float32), LR_CRS, LR_T, nodata=-9999.0)
    with rasterio.open(dn) as src:
        message = radiance_warning(src, STATS)
    assert message is not None and "\n" not in message and "z = +" in message
    with pytest.warns(DataWarning, match="outside the checkpoint's training statistics"):
        predict_geotiff(PredictRequest(method="nearest", lr=dn, out=tmp_path / "sr_dn.tif",
                                       checkpoint=inputs["nearest"], device="cpu",
                                       progress=False))


PLUGIN = '''
from torch import nn
from benchmarks.method import Method
from benchmarks.registry import register_method


@register_method("test-plugin-nearest")
class PluginNearest(Method):
    family = "interpolation"
    description = "nearest upsampling from a user's own file (tests)"

    def predict(self, batch):
        return nn.functional.interpolate(batch["lr_ntl"], scale_factor=self.context.ratio,
                                         mode="nearest")
'''


def test_predict_and_methods_load_a_users_own_file(inputs, tmp_path, tiny_store):
    from deeplightmd.cli import cli

    plugin = tmp_path / "my_method.py"
    plugin.write_text(PLUGIN)
    runner = CliRunner()
    listed = runner.invoke(cli, ["methods", "--plugin", str(plugin), "--names"])
    assert listed.exit_code == 0 and "test-plugin-nearest" in listed.output.split()
    out = tmp_path / "plugin.tif"
    ok = runner.invoke(cli, ["predict", "--plugin", str(plugin), "--method",
                             "test-plugin-nearest", "--store", tiny_store, "--lr",
                             str(inputs["lr"]), "--out", str(out), "--quiet", "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    assert out.is_file()
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    bad = runner.invoke(cli, ["methods", "--plugin", str(broken)])
    assert bad.exit_code == 2 and "Error: --plugin" in bad.output and "failed to import" in \
        bad.output and "Traceback" not in bad.output
