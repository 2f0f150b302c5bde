"""The benchmark runner: tiled regional inference, checkpoints, modality checks, end-to-end runs.

Most tests use a small store written here directly in the store format (docs/store-format.md),
so they do not depend on ``deeplightmd build``; the end-to-end ``bench --method bicubic`` test uses
the shared ``tiny_store`` fixture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner
from torch import nn

from benchmarks.method import Method, MethodContext, TorchMethod
from benchmarks.results import read_results, validate_results
from benchmarks.runner import (
    RegionalSettings,
    evaluate_regions,
    load_checkpoint,
    make_context,
    predict_region,
    run_benchmark,
    save_checkpoint,
    sidecar_path,
)
from deeplightmd.access import RegionDataset
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.normalize import Normalizer
from deeplightmd.sensor import SensorModel, degrade
from deeplightmd.store_format import DMO_BANDS, MODALITY_NAMES

RATIO, LR_CLIP = 4, 8

GT = "100000.0 40.0 0.0 200000.0 0.0 -40.0"   # GDAL order: c a b f d e (HR pixel 40 m)
CRS_WKT = ('PROJCS["WGS 84 / UTM zone 50N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",'
           '6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
           'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
           'PARAMETER["central_meridian",117],PARAMETER["scale_factor",0.9996],'
           'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],'
           'AUTHORITY["EPSG","32650"]]')


def _hr_scene(rng: np.random.Generator, h: int, w: int) -> dict[str, np.ndarray]:
    """HR-grid layers of a small random scene: lit blobs over a dark background."""
    y, x = np.mgrid[0:h, 0:w]
    ntl = np.zeros((h, w))
    for _ in range(max(2, h * w // 300)):
        cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.5, 5)
        ntl += rng.uniform(5, 60) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s**2))
    isp = (ntl > 3).astype(np.uint8)
    dmo = np.stack([0.05 + 0.02 * b + 0.1 * isp + rng.normal(0, 0.01, (h, w))
                    for b in range(len(DMO_BANDS))])
    dem = 50 + 0.5 * y + rng.normal(0, 1, (h, w))
    return {"hr_ntl": ntl.astype(np.float32), "dmo": dmo.astype(np.float32),
            "dem": dem.astype(np.float32), "isp": isp}


def write_fake_store(path: Path, n_clips: tuple[int, int, int] = (6, 3, 5),
                     region_lr: tuple[int, int] = (14, 18),
                     modalities: tuple[str, ...] = MODALITY_NAMES, seed: int = 0) -> str:
    """A small store in the DeepLightMD format (ratio 4, LR clips 8², one region ``r1``)."""
    rng = np.random.default_rng(seed)
    sensor = SensorModel(ratio=RATIO)
    root = zarr.open_group(str(path), mode="w")
    hr_clip = RATIO * LR_CLIP
    train_ntl = []
    digest = hashlib.sha256()
    for split, n in zip(("train", "val", "test"), n_clips, strict=True):
        g = root.create_group(split)
        scenes = [_hr_scene(rng, hr_clip, hr_clip) for _ in range(n)]
        for s in scenes:
            s["lr_ntl"] = degrade(s["hr_ntl"], sensor)
        if split == "train":
            train_ntl = [s["hr_ntl"] for s in scenes]
        for name in modalities:
            data = np.stack([s[name] for s in scenes])
            g.create_array(name, data=data, chunks=(1, *data.shape[1:]))
            digest.update(data.tobytes())
        g.create_array("clip_id", data=np.arange(n, dtype=np.int64) + 100 * len(split))
        g.create_array("row", data=np.zeros(n, dtype=np.int32))
        g.create_array("col", data=np.arange(n, dtype=np.int32))
        bounds = np.array([[i * 1e3, 0.0, i * 1e3 + 1e3, 1e3] for i in range(n)])
        g.create_array("bounds", data=bounds)
        g.create_array("done", data=np.ones(n, dtype=np.uint8))
    h, w = region_lr
    scene = _hr_scene(rng, h * RATIO, w * RATIO)
    hr = root.create_group("regions/r1/hr")
    for name in ("hr_ntl", "dmo", "dem", "isp"):
        hr.create_array(name, data=scene[name])
    yy, xx = np.mgrid[0:h * RATIO, 0:w * RATIO]
    hr.create_array("mask", data=((yy - h * 2) ** 2 + (xx - w * 2) ** 2 < (h * 1.9) ** 2)
                    .astype(np.uint8))
    hr.create_array("admin", data=(1 + (xx // (w)) + 4 * (yy // h)).astype(np.int32))
    ref = hr.create_array("spatial_ref", shape=(), dtype="int64")
    ref.attrs.update({"crs_wkt": CRS_WKT, "spatial_ref": CRS_WKT, "GeoTransform": GT})
    lr = root.create_group("regions/r1/lr")
    lr.create_array("lr_ntl", data=degrade(scene["hr_ntl"], sensor))
    log = np.log1p(np.stack(train_ntl))
    root.attrs["deeplight"] = {
        "format_version": 1, "toolkit_version": "test", "dataset": "fake-test-store",
        "grid": {"crs_wkt": CRS_WKT, "hr_pixel_size": 40.0, "ratio": RATIO, "lr_clip": LR_CLIP,
                 "hr_clip": hr_clip, "origin_x": 1e5, "origin_y": 2e5, "n_rows": 1, "n_cols": 9},
        "splits": dict(zip(("train", "val", "test"), n_clips, strict=True)),
        "regions": ["r1"],
        "stats": {"ntl_mean": float(log.mean()), "ntl_std": float(log.std()),
                  "dmo_mean": [0.1] * 7, "dmo_std": [0.05] * 7, "dem_mean": 60.0,
                  "dem_std": 10.0},
        "sensor_model": sensor.to_dict(),
        "fingerprint": digest.hexdigest(),
        "complete": True,
    }
    return str(path)


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_fake_store(tmp_path_factory.mktemp("fake") / "fake.zarr")


class PixelMethod(Method):
    """A per-pixel model on the HR grid: each output pixel depends only on inputs at that pixel
    (nearest-upsampled LR and the HR-grid DMO/DEM), so tiling cannot change its output."""

    name = "test-pixel"
    family = "interpolation"
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo", "dem")

    def predict(self, batch):
        up = torch.repeat_interleave(torch.repeat_interleave(batch["lr_ntl"], self.context.ratio,
                                                             -2), self.context.ratio, -1)
        return 0.9 * up + 0.3 * batch["dmo"][:, 3:4] - 0.05 * batch["dem"] ** 2


class TinyNet(nn.Module):
    def __init__(self, ratio: int, width: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(lr, scale_factor=self.ratio, mode="nearest")
        return up + self.body(up)


class TinyTrainable(TorchMethod):
    """A 2-layer CNN trained with the shared loop for a few steps."""

    name = "test-tiny"
    family = "single-modality"
    description = "tiny CNN (tests)"

    @classmethod
    def default_hparams(cls, budget):
        return {"width": 4}

    @classmethod
    def protocol_overrides(cls, budget):
        return {"steps": 6, "val_every": 3, "batch_size": 2, "learning_rate": 1e-2}

    def build_network(self):
        return TinyNet(self.context.ratio, self.hparams["width"])


class OtherTrainable(TinyTrainable):
    name = "test-other"


def _context(store: str) -> MethodContext:
    attrs = zarr.open_group(store, mode="r").attrs["deeplight"]
    return make_context(attrs, torch.device("cpu"), 0)


def test_tiled_region_inference_equals_untiled(fake_store):
    """Overlapping tiles + stitcher reproduce one untiled prediction of a per-pixel model."""
    method = PixelMethod(_context(fake_store))
    region = RegionDataset(fake_store, "r1", tile=6, overlap=2, modalities=method.inputs)
    assert len(region) > 4  # really tiled, with overlaps and a shifted last row/column
    tiled = predict_region(method, region, region.stitcher(), progress=False)

    whole = RegionDataset(fake_store, "r1", tile=1000, overlap=0, modalities=method.inputs)
    assert len(whole) == 1
    item = whole[0]
    pred = method.predict({n: item[n][None] for n in method.inputs})
    untiled = method.context.normalizer.denormalize("hr_ntl", pred)[0, 0].numpy()

    assert tiled.sr.shape == untiled.shape == region.hr_shape
    np.testing.assert_array_equal(tiled.sr, untiled)


def test_regional_metrics_and_geotiff(fake_store, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    method = PixelMethod(_context(fake_store))
    settings = RegionalSettings(tile=6, overlap=2, geotiff_dir=tmp_path)
    metrics, seconds = evaluate_regions(method, fake_store, settings, None, progress=False)
    r1 = metrics["r1"]
    assert seconds > 0 and r1["tiles"] > 4
    assert {"psnr", "total_light_rel_error", "lit_iou", "admin_r2", "seam_ratio"} <= set(r1)
    # a per-pixel model has no tile artefacts: SR seam ratio equals what HR gives at those edges
    # up to the model's own structure (both computed at the same edges), and is finite
    assert np.isfinite(r1["seam_ratio"])
    with rasterio.open(tmp_path / "test-pixel_r1.tif") as src:
        assert src.shape == (14 * RATIO, 18 * RATIO)
        assert src.transform.a == 40.0 and src.crs.to_epsg() == 32650
        region = RegionDataset(fake_store, "r1", tile=6, overlap=2, modalities=method.inputs)
        tiled = predict_region(method, region, region.stitcher(), progress=False)
        np.testing.assert_array_equal(src.read(1), tiled.sr)


def test_store_missing_modality_is_named(tmp_path):
    store = write_fake_store(tmp_path / "nodem.zarr", n_clips=(2, 1, 1),
                             modalities=("lr_ntl", "hr_ntl", "isp"))
    with pytest.raises(StoreError, match=r"lacks modality\(ies\) dmo, dem .* method 'test-pixel'"):
        run_benchmark(PixelMethod, store, progress=False)


def test_unknown_method_lists_known(fake_store):
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; known: .*bicubic"):
        run_benchmark("nope", fake_store, progress=False)


def test_checkpoint_round_trip_reproduces_metrics(fake_store, tmp_path):
    out = tmp_path / "tiny.json"
    first = run_benchmark(TinyTrainable, fake_store, out=out, progress=False,
                          regional=RegionalSettings(tile=8, overlap=2))
    ckpt = Path(first["checkpoint"]["path"])
    assert ckpt == tmp_path / "tiny.safetensors" and sidecar_path(ckpt).is_file()
    assert sidecar_path(ckpt).name == "tiny.safetensors.json"
    sidecar = json.loads(sidecar_path(ckpt).read_text())
    assert sidecar["method"] == "test-tiny" and sidecar["hparams"] == {"width": 4}
    assert sidecar["store_fingerprint"] == first["dataset"]["fingerprint"]
    assert first["training"]["steps"] == 6
    validate_results(read_results(out))

    again = run_benchmark(TinyTrainable, fake_store, checkpoint=ckpt, progress=False,
                          regional=RegionalSettings(tile=8, overlap=2))
    assert again["checkpoint"]["trained_in_this_run"] is False
    for name in ("psnr", "ssim", "rmse", "piqe", "lrc_rmse"):
        assert again["per_clip"][name] == first["per_clip"][name]
    assert again["metrics"]["regional"]["r1"]["psnr"] == first["metrics"]["regional"]["r1"]["psnr"]

    # a checkpoint of another method is refused, and so is a tampered file
    with pytest.raises(ConfigError, match="saved by method 'test-tiny', not 'test-other'"):
        run_benchmark(OtherTrainable, fake_store, checkpoint=ckpt, progress=False)
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match the sha256"):
        load_checkpoint(ckpt, TinyTrainable)


def test_checkpoint_other_modalities_refused(fake_store, tmp_path):
    class LrDmo(TinyTrainable):
        name = "test-tiny"
        inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo")

    method = TinyTrainable(_context(fake_store))
    path = save_checkpoint(method, tmp_path / "w.safetensors", store_fingerprint=None)
    with pytest.raises(ConfigError, match=r"trained on modalities \['lr_ntl', 'hr_ntl'\]"):
        load_checkpoint(path, LrDmo)
    sidecar_path(path).unlink()   # the header metadata alone is enough
    state, meta = load_checkpoint(path, TinyTrainable)
    assert meta["method"] == "test-tiny" and set(state) == set(method.state_dict())
    with pytest.raises(ConfigError, match=r"must end in \.safetensors"):
        save_checkpoint(method, tmp_path / "w.pt", store_fingerprint=None)


def test_normalizer_comes_from_store(fake_store):
    ctx = _context(fake_store)
    attrs = zarr.open_group(fake_store, mode="r").attrs["deeplight"]
    assert ctx.normalizer == Normalizer.from_dict(attrs["stats"]) and ctx.ratio == RATIO


def test_bench_cli_on_fake_store(fake_store, tmp_path):
    """`bench` writes schema-valid results, prints a table, adds a leaderboard row per run."""
    out, board = tmp_path / "r.json", tmp_path / "lb.json"
    args = ["bench", "--method", "bicubic", "--store", fake_store, "--out", str(out),
            "--leaderboard", str(board), "--quiet", "--tile", "8", "--overlap", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "psnr" in result.output and "region r1" in result.output
    doc = read_results(out)
    assert doc["method"]["name"] == "bicubic" and doc["dataset"]["n_clips"] == 5
    assert len(doc["per_clip"]["psnr"]) == 5 and doc["runtime"]["megapixels_per_second"] > 0
    est = doc["metrics"]["local"]["psnr"]
    assert est["ci_low"] <= est["mean"] <= est["ci_high"]
    assert np.isclose(est["mean"], np.mean(doc["per_clip"]["psnr"]))
    assert len(json.loads(board.read_text())["rows"]) == 1
    # a repeated run is another run (its own run id): a second row, none replaced
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "1 row(s) added, 0 replaced" in result.output
    rows = json.loads(board.read_text())["rows"]
    assert len(rows) == 2 and rows[0]["run_id"] != rows[1]["run_id"]

    bad = CliRunner().invoke(cli, ["bench", "--method", "nope", "--store", fake_store])
    assert bad.exit_code == 2 and "unknown method 'nope'; known:" in bad.output


def test_methods_lists_registered(fake_store):
    result = CliRunner().invoke(cli, ["methods"])
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("bicubic "))
    assert "interpolation" in line and "lr_ntl" in line and "Keys" in line


def test_bench_bicubic_on_tiny_store(tiny_store, tmp_path):
    out = tmp_path / "bicubic.json"
    result = CliRunner().invoke(cli, ["bench", "--method", "bicubic", "--store", tiny_store,
                                      "--out", str(out), "--leaderboard",
                                      str(tmp_path / "lb.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    doc = read_results(out)
    assert doc["metrics"]["local"]["psnr"]["n"] == doc["dataset"]["n_clips"] > 0
    assert set(doc["metrics"]["regional"]) == set(doc["dataset"]["regions"])
    show = CliRunner().invoke(cli, ["leaderboard", "--file", str(tmp_path / "lb.json"), "show"])
    assert show.exit_code == 0 and "bicubic" in show.output


def test_loader_workers_change_the_speed_not_the_result(fake_store):
    regional = RegionalSettings(tile=8, overlap=2)
    plain = run_benchmark(TinyTrainable, fake_store, progress=False, regional=regional)
    workers = run_benchmark(TinyTrainable, fake_store, progress=False, regional=regional,
                            loader_workers=2)
    assert plain["protocol"]["num_workers"] == 0 and workers["protocol"]["num_workers"] == 2
    assert workers["training"]["final_loss"] == plain["training"]["final_loss"]
    assert workers["per_clip"]["psnr"] == plain["per_clip"]["psnr"]
    with pytest.raises(ConfigError, match="num_workers must be >= 0"):
        run_benchmark(TinyTrainable, fake_store, progress=False, loader_workers=-1)


def test_access_lists_split_modalities_and_reads_region_mosaics(fake_store):
    from deeplightmd.access import read_region_mosaic, split_modalities

    present = split_modalities(fake_store)
    assert set(present) == {"train", "val", "test"}
    assert "lr_ntl" in present["train"] and "hr_ntl" in present["test"]
    region = RegionDataset(fake_store, "r1", modalities=("lr_ntl",))
    hr = read_region_mosaic(fake_store, "r1")
    assert hr.dtype == "float32" and hr.shape == tuple(region.hr_shape)
    assert read_region_mosaic(fake_store, "r1", "lr_ntl", "lr").shape == tuple(region.lr_shape)
