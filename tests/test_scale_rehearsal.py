"""The paper-scale rehearsal (``benchmarks.scale.rehearsal``, ``make bench-scale``): its presets,
its option parsing, and the whole path — a ``LocalCluster`` of two worker processes, ``build
--scheduler tcp://``, ``validate``, the measurements and the report — at a few clips."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from benchmarks.scale.rehearsal import PAPER_CLIPS, parse_settings, split_counts
from deeplightmd.builder import load_manifest
from deeplightmd.builder.inspect import validate_store
from deeplightmd.builder.store import INNER_CHUNK, inner_lr_side
from deeplightmd.errors import ConfigError
from deeplightmd.store_format import read_store_attrs
from deeplightmd.synth.config import resolve_config

pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parents[1]


def test_the_rehearsal_preset_has_the_papers_sharded_layout_and_64_clips(tiny_world):
    m = load_manifest("paper-rehearsal", world_dir=tiny_world)
    assert (m.grid.lr_clip, m.hr_clip, m.grid.ratio, m.grid.hr_pixel_size) == (256, 2048, 8, 60)
    assert (m.splits.train, m.splits.val, m.splits.test) == (52, 6, 6)
    assert m.splits.on_shortfall == "error" and len(m.regions.test_regions) == 3
    # 2048² HR clips are stored as one shard of 256² HR (32² LR) inner chunks
    assert inner_lr_side(m.grid.lr_clip, INNER_CHUNK, m.grid.ratio) * m.grid.ratio == 256
    assert m.world is not None and m.world.preset == "rehearsal"


def test_the_paper_counts_preset_asks_for_exactly_the_papers_clips(tiny_world):
    m = load_manifest("paper-counts", world_dir=tiny_world)
    assert (m.splits.train, m.splits.val, m.splits.test) == (18032, 2254, 2254)
    assert m.splits.train + m.splits.val + m.splits.test == PAPER_CLIPS
    assert (m.splits.on_shortfall, m.splits.block, m.splits.buffer) == ("error", 8, 1)
    assert (m.grid.lr_clip, m.hr_clip) == (2, 16) and len(m.regions.test_regions) == 3
    assert m.world is not None and m.world.preset == "paper-counts"


def test_the_scale_worlds_are_coarser_than_the_target_grid():
    for name, pixel in (("rehearsal", 480.0), ("paper-counts", 120.0)):
        ext = resolve_config(name).extent
        assert ext.work_pixel == ext.hr_pixel == ext.product_pixel == pixel
    with pytest.raises(ConfigError, match="product_pixel"):
        resolve_config("tiny", {"extent": {"product_pixel": 2.0}})
    with pytest.raises(ConfigError, match="dem_arcsec must be 1, 3, 5 or 15"):
        resolve_config("tiny", {"extent": {"dem_arcsec": 2}})


def test_product_pixel_sets_the_dmo_and_isp_grids_and_is_recorded_only_when_set(tmp_path,
                                                                                  tiny_world):
    from deeplightmd.synth import generate_world

    meta = generate_world(tmp_path / "w", preset="tiny", config={"extent": {"product_pixel": 60.0}})
    assert meta["params"]["extent"]["product_pixel"] == 60.0
    for rel in ("dmo/dmo_utm49.tif", "isp.tif"):
        with rasterio.open(tmp_path / "w" / rel) as src:
            assert src.res == (60.0, 60.0)
    with rasterio.open(tiny_world / "isp.tif") as src:
        assert src.res == (30.0, 30.0)
    default = json.loads((tiny_world / "world.json").read_text())
    assert "product_pixel" not in default["params"]["extent"]   # old worlds' metadata unchanged


def test_split_counts_are_8_1_1_with_one_clip_per_split_at_least():
    assert split_counts(64) == {"train": 52, "val": 6, "test": 6}
    assert split_counts(4) == {"train": 2, "val": 1, "test": 1}
    assert split_counts(22540) == {"train": 18032, "val": 2254, "test": 2254}
    for bad in (2, 0, -5):
        with pytest.raises(ConfigError, match="--clips must be an integer >= 3"):
            split_counts(bad)


def test_settings_are_manifest_overrides_with_yaml_values():
    assert parse_settings(["grid.lr_clip=40", "splits.block=1", "qa.min_valid_fraction=0.9"]) \
        == {"grid__lr_clip": 40, "splits__block": 1, "qa__min_valid_fraction": 0.9}
    assert parse_settings(["sources.dmo.files=[a.tif, b.tif]"]) == \
        {"sources__dmo__files": ["a.tif", "b.tif"]}
    for bad in ("grid.lr_clip", "=3", "grid..lr_clip=3"):
        with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE"):
            parse_settings([bad])


def _rehearse(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "benchmarks.scale.rehearsal", "--out", str(out),
                           *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


@pytest.mark.parametrize(("args", "message"), [
    (["--clips", "2"], "--clips must be an integer >= 3"),
    (["--memory-limit", "lots"], "--memory-limit must be a size"),
    (["--set", "grid.lr_clip"], "SECTION.KEY=VALUE"),
    (["--preset", "no-such-preset"], "unknown preset"),
    (["--set", "splits.on_shortfall=maybe"], "on_shortfall"),
])
def test_bad_input_is_one_error_line_and_exit_2_before_any_cluster(tmp_path, tiny_world, args,
                                                                   message):
    proc = _rehearse(tmp_path / "r", "--world", str(tiny_world), *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert not (tmp_path / "r" / "store.zarr").exists()


@pytest.mark.slow
def test_a_few_sharded_clips_through_a_two_process_cluster_validate_and_are_measured(
        tmp_path, tiny_world):
    """4 clips of 40² LR / 320² HR (20 m pixels on the tiny world, so clips are sharded into
    160² HR inner chunks like the paper's 2048² ones) through a real LocalCluster of 2 worker
    processes: the store validates, the counts are exact and every measurement is finite."""
    out = tmp_path / "rehearsal"
    proc = _rehearse(out, "--world", str(tiny_world), "--set", "grid.hr_pixel_size=20",
                     "--set", "grid.lr_clip=40", "--clips", "4", "--workers", "2",
                     "--memory-limit", "2GiB")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "per clip" in proc.stdout and "projection: 22,540 clips" in proc.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["counts"] == {"train": 2, "val": 1, "test": 1} and rep["clips"] == 4
    assert rep["regions"] == ["Anhui", "Beijing", "Taiwan"]
    assert rep["validate"]["valid"] is True
    assert rep["layout"]["arrays"]["hr_ntl"] == {"shard": [1, 320, 320], "chunk": [1, 160, 160]}
    assert rep["layout"]["arrays"]["dmo"] == {"shard": [1, 7, 320, 320],
                                              "chunk": [1, 7, 160, 160]}
    assert rep["layout"]["paper_layout"] is False
    # the store really was built through the cluster's scheduler, and is valid when re-checked
    attrs = read_store_attrs(str(out / "store.zarr"))
    assert attrs["build"]["scheduler"].startswith("tcp://127.0.0.1:") and attrs["complete"]
    assert validate_store(str(out / "store.zarr")) == []
    # two separate worker processes, neither restarted, each measured
    workers = rep["workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert os.getpid() not in {w["pid"] for w in workers}
    assert rep["worker_restarts"] == 0 and rep["rss_samples"] >= 1
    limit_mb = rep["cluster"]["memory_limit_bytes"] / 2 ** 20
    for w in workers:
        assert 50 < w["peak_rss_mb"] < limit_mb and 0 < w["max_sampled_rss_mb"] <= w["peak_rss_mb"]
        assert math.isfinite(w["cpu_s"]) and w["cpu_s"] > 0
    cpu = rep["build"]["cpu_s"]
    assert all(math.isfinite(v) and v > 0 for v in cpu.values())
    assert cpu["total"] == pytest.approx(cpu["workers"] + cpu["driver"] + cpu["scheduler_host"])
    assert rep["per_clip"]["cpu_s"] == pytest.approx(cpu["total"] / 4)
    assert rep["build"]["wall_s"] > 0 and set(rep["build"]["timings_s"]) >= {"plan", "clips"}
    # the store's size is what is on disk, and the projection follows from the per-clip numbers
    on_disk = sum(p.stat().st_size for p in (out / "store.zarr").rglob("*") if p.is_file())
    assert rep["store_size"]["bytes"] == on_disk > 0
    proj = rep["projection"]
    assert proj["clips"] == 22540
    assert proj["core_hours"] == pytest.approx(rep["per_clip"]["cpu_s"] * 22540 / 3600)
    assert proj["wall_hours_64_workers"] == pytest.approx(proj["core_hours"] / 64)
    size = rep["store_size"]
    assert 0 < size["clip_bytes"] < size["bytes"] and 0 < size["clip_objects"] < size["files"]
    # one object per clip and per-clip array (5 variables + done) at most: all-zero ones are
    # not written (the tiny world's ISP may be empty in a clip)
    assert 4 * 4 <= size["clip_objects"] <= 6 * 4
    assert rep["per_clip"]["objects"] == size["clip_objects"] / 4
    assert proj["stored_tb"] == pytest.approx(
        (rep["per_clip"]["stored_bytes"] * 22540 + size["bytes"] - size["clip_bytes"]) / 1e12)
    assert proj["objects"] == round(size["clip_objects"] / 4 * 22540 + size["files"]
                                    - size["clip_objects"])
    assert (out / "report.md").read_text().startswith("| measurement | value |")
    assert (out / "manifest.yaml").is_file()
