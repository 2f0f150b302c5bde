"""The tiny store built from the synthetic world: schema, splits, georeferencing, determinism,
resume after SIGKILL, validation and preview."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner
from shapely.geometry import box

from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.grid import TargetGrid
from deeplightmd.builder.inspect import store_info, validate_store
from deeplightmd.cli import cli
from deeplightmd.errors import StoreError
from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import MODALITIES, ROOT_ATTR, SPLITS, read_store_attrs


def _positions(store: str, split: str) -> np.ndarray:
    g = zarr.open_group(store, mode="r", path=split)
    return np.stack([g["row"][...], g["col"][...]], axis=1)


def test_counts_schema_and_attrs(tiny_store, tiny_world):
    attrs = read_store_attrs(tiny_store)
    manifest = load_manifest("tiny", world_dir=tiny_world)
    want = {"train": manifest.splits.train, "val": manifest.splits.val,
            "test": manifest.splits.test}
    assert attrs["splits"] == want
    assert attrs["complete"] is True and attrs["regions"] == ["Anhui", "Beijing", "Taiwan"]
    assert attrs["grid"]["hr_clip"] == 64 and attrs["grid"]["lr_clip"] == 8
    world = (tiny_world / "world.json").read_text()
    assert attrs["sensor_model"] is not None and '"gain"' in world
    Normalizer.from_dict(attrs["stats"])  # the stats keys the normaliser expects
    assert 0 < attrs["stats"]["lit_fraction"] < 1 and attrs["stats"]["hr_ntl_max"] > 0
    for split in SPLITS:
        ds = xr.open_zarr(tiny_store, group=split)
        n = want[split]
        assert ds["hr_ntl"].dims == ("clip", "y", "x") and ds["hr_ntl"].shape == (n, 64, 64)
        assert ds["lr_ntl"].shape == (n, 8, 8) and ds["dmo"].shape == (n, 7, 64, 64)
        assert ds["isp"].dtype == np.uint8 and set(np.unique(ds["isp"].values)) <= {0, 1}
        for name in MODALITIES:
            assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
            assert not np.isnan(ds[name].values).any()
        assert ds["done"].values.all()
        grid = TargetGrid.from_dict(attrs["grid"])
        for i, (r, c) in enumerate(_positions(tiny_store, split)):
            assert tuple(ds["bounds"].values[i]) == grid.clip_bounds(int(r), int(c))
    # DMO is reflectance (DN·scale + offset), not raw DN
    dmo = xr.open_zarr(tiny_store, group="train")["dmo"].values
    assert -0.3 < dmo.min() and dmo.max() < 1.7


def test_splits_are_separated_and_exclude_test_regions(tiny_store, tiny_world):
    attrs = read_store_attrs(tiny_store)
    pos = {s: _positions(tiny_store, s) for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            dist = np.abs(pos[a][:, None] - pos[b][None]).max(axis=2)
            assert dist.min() >= 2, f"{a} and {b} clips touch"
    regions = gpd.read_file(tiny_world / "regions.geojson").to_crs(attrs["grid"]["crs_wkt"])
    held_out = regions[regions["test"].astype(bool)].geometry
    assert len(held_out) == 3
    for split in SPLITS:
        bounds = zarr.open_group(tiny_store, mode="r", path=split)["bounds"][...]
        for b in bounds:
            assert not any(g.intersects(box(*b)) for g in held_out), split


def test_region_mosaic_georeferencing_round_trips(tiny_store):
    import rioxarray  # noqa: F401

    grid = read_store_attrs(tiny_store)["grid"]
    hr = xr.open_zarr(tiny_store, group="regions/Beijing/hr", decode_coords="all")
    lr = xr.open_zarr(tiny_store, group="regions/Beijing/lr", decode_coords="all")
    assert hr.rio.crs is not None and hr.rio.crs.to_wkt() == lr.rio.crs.to_wkt()
    t_hr, t_lr = hr.rio.transform(), lr.rio.transform()
    assert t_hr.a == 60 and t_lr.a == 480 and (t_hr.c, t_hr.f) == (t_lr.c, t_lr.f)
    assert hr.sizes["y"] == 8 * lr.sizes["y"] and hr.sizes["x"] == 8 * lr.sizes["x"]
    assert (t_hr.c - grid["origin_x"]) % 480 == 0 and (grid["origin_y"] - t_hr.f) % 480 == 0
    assert float(hr["x"][0]) == t_hr.c + 30 and float(hr["y"][0]) == t_hr.f - 30
    gt = [float(v) for v in hr["spatial_ref"].attrs["GeoTransform"].split()]
    assert gt == [t_hr.c, t_hr.a, t_hr.b, t_hr.f, t_hr.d, t_hr.e]  # GDAL order
    assert set(np.unique(hr["mask"].values)) == {0, 1}
    assert hr["admin"].values.max() >= 1 and hr.attrs["admin_names"]
    assert set(hr.data_vars) >= {"hr_ntl", "dmo", "dem", "isp", "mask", "admin"}
    from odc.geo.xr import ODCExtensionDa  # noqa: F401

    gbox = hr["hr_ntl"].odc.geobox
    assert gbox.crs is not None and tuple(gbox.affine)[:6] == tuple(t_hr)[:6]


def test_workers_and_repeat_builds_give_the_same_fingerprint(tiny_store, tiny_world, tmp_path):
    manifest = load_manifest("tiny", world_dir=tiny_world)
    attrs = build_store(manifest, str(tmp_path / "w2.zarr"), workers=2, progress=False)
    assert attrs["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
    assert attrs["build"]["workers"] == 2


def test_worker_processes_from_a_forkserver_give_the_same_fingerprint(tiny_store, tiny_world,
                                                                       tmp_path):
    """``--scheduler processes``: worker processes forked from a forkserver that imported the
    builder once (not spawned, which imported it in every worker), same store."""
    from deeplightmd.builder.parallel import Runner, _default_context

    assert _default_context() == "forkserver"      # POSIX
    manifest = load_manifest("tiny", world_dir=tiny_world)
    attrs = build_store(manifest, str(tmp_path / "p2.zarr"), workers=2, scheduler="processes",
                        progress=False)
    assert attrs["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
    assert (attrs["build"]["workers"], attrs["build"]["scheduler"]) == (2, "processes")
    runner = Runner(workers=2, scheduler="processes", progress=False)
    try:
        assert runner._process_pool()._mp_context.get_start_method() == "forkserver"
    finally:
        runner.close()


#: fingerprint of the ``tiny`` preset built from the ``tiny`` world (seed 0)
TINY_FINGERPRINT = "54e7f3a61bb1c7a00419edf152c5ac81d46fece3a8fd303e9b5acdce68ba85b4"


def test_tiny_store_fingerprint_is_golden(tiny_store):
    """The whole store — attrs (format and toolkit version, manifest, grid, split counts,
    sources), which clips are in which split, and every value — against a golden fingerprint.

    Every benchmark number depends on it. Update ``TINY_FINGERPRINT`` only deliberately, in a
    commit whose message gives the reason (a format or toolkit version change, a new synthetic
    world, a changed split or resampling rule); never to make an unexplained change pass.
    """
    assert read_store_attrs(tiny_store)["fingerprint"] == TINY_FINGERPRINT


def test_resume_after_sigkill_gives_the_same_fingerprint(tiny_store, tiny_world, tmp_path):
    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "deeplightmd.cli", "build", "--preset", "tiny", "--world",
           str(tiny_world), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done_dir = out / "train" / "done" / "c"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if done_dir.is_dir() and len(os.listdir(done_dir)) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    attrs = zarr.open_group(str(out), mode="r").attrs[ROOT_ATTR]
    assert attrs["complete"] is False
    n_done = int(zarr.open_array(str(out), path="train/done", mode="r")[...].sum())
    assert 0 < n_done < attrs["splits"]["train"]
    manifest = load_manifest("tiny", world_dir=tiny_world)
    with pytest.raises(StoreError, match="already exists"):
        build_store(manifest, str(out), progress=False)
    resumed = build_store(manifest, str(out), resume=True, progress=False)
    assert resumed["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
    assert validate_store(str(out)) == []


def test_validate_passes_then_catches_a_corrupted_chunk(tiny_store, tmp_path):
    assert validate_store(tiny_store) == []
    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny_store, copy)
    arr = zarr.open_array(str(copy), path="val/hr_ntl", mode="r+")
    values = arr[1]
    values[10, 10] += 1.0  # a plausible value, valid compression: only the fingerprint sees it
    arr[1] = values
    problems = validate_store(str(copy))
    assert any("fingerprint mismatch" in p for p in problems)
    chunk = copy / "test" / "dmo" / "c" / "2" / "0" / "0" / "0"
    chunk.write_bytes(b"garbage" * 10)  # undecodable bytes
    problems = validate_store(str(copy))
    assert any("cannot be decoded" in p for p in problems)
    result = CliRunner().invoke(cli, ["validate", str(copy)])
    assert result.exit_code == 2 and "is invalid" in result.output


def test_info_and_preview_cli(tiny_store, tmp_path):
    info = store_info(tiny_store)
    assert info["splits"] == read_store_attrs(tiny_store)["splits"] and info["size_bytes"] > 0
    result = CliRunner().invoke(cli, ["info", tiny_store])
    assert result.exit_code == 0
    assert "fingerprint" in result.output and "lr_ntl.tif" in result.output
    png = tmp_path / "clip.png"
    result = CliRunner().invoke(cli, ["preview", tiny_store, "--split", "test", "--index", "3",
                                      "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    region_png = tmp_path / "region.png"
    result = CliRunner().invoke(cli, ["preview", tiny_store, "--region", "Anhui", "-o",
                                      str(region_png)])
    assert result.exit_code == 0 and region_png.stat().st_size > png.stat().st_size / 2
    result = CliRunner().invoke(cli, ["preview", tiny_store, "--index", "999", "-o", str(png)])
    assert result.exit_code == 2 and "--index must be in" in result.output
    result = CliRunner().invoke(cli, ["preview", tiny_store, "--region", "Atlantis",
                                      "-o", str(png)])
    assert result.exit_code == 2 and "no region 'Atlantis'" in result.output


def test_derived_lr_into_a_memory_url(tiny_world):
    """LR derived from HR with the world's sensor model, written to an fsspec memory:// store."""
    url = "memory://deeplight-test/derived.zarr"
    manifest = load_manifest(
        "tiny", world_dir=tiny_world, splits__train=4, splits__val=1, splits__test=1,
        regions__test_regions=["Taiwan"],
        sources={"lr_ntl": None}, derive={"lr_ntl": {"from": "hr_ntl", "sensor_model": "world",
                                                     "noise": False}})
    attrs = build_store(manifest, url, progress=False)
    assert attrs["splits"] == {"train": 4, "val": 1, "test": 1}
    assert attrs["sources"]["lr_ntl"]["derived_from"] == "hr_ntl"
    assert read_store_attrs(url)["complete"] is True and validate_store(url) == []
    from deeplightmd.sensor import SensorModel, degrade

    model = SensorModel.from_dict(attrs["sensor_model"])
    g = zarr.open_group(url, mode="r", path="train")
    for i in range(4):
        hr, lr = g["hr_ntl"][i], g["lr_ntl"][i]
        expect = degrade(hr, model)  # edge-extended clip: differs only through the halo tail
        assert np.allclose(lr[3:5, 3:5], expect[3:5, 3:5], rtol=0.1, atol=0.1)
        assert abs(lr.mean() - expect.mean()) < 0.1 * expect.mean() + 0.1
