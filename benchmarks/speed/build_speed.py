"""Build throughput next to two references, measured in the same run.

* **build** — ``build_store`` with 1 and 2 workers (each in a fresh subprocess, so its peak RSS
  is its own): HR megapixels of clip pairs per second and MB/s of store written.
* **floor** — the same split arrays, already in memory, written into Zarr with the same chunks,
  shards and codec (zstd + CRC32C): the speed limit of the write path.
* **naive** — per clip, ``rasterio.warp.reproject`` of every modality from sources read fully into
  memory first (the obvious script); timed on a sample of clips and reported per megapixel.
* **warp only** — the build's own reads of every clip (the same runs of adjacent clips, GDAL
  warps with the manifest's resampling, fill and typing) without writing anything, twice in a
  fresh process (cold, then warm block cache): the compute that any build honouring the
  manifest must do besides the write, so ``floor / (floor + warm warp)`` (CPU seconds) bounds
  what a build on one core can reach relative to the floor, and ``(floor + warm warp) / build``
  (``build_w1_over_bound_cpu`` / ``_wall``) is how close the build comes to that bound.
  ``build_w1_over_cold_bound_cpu`` uses the cold pass instead (it includes the first decode of
  every source block, which the warm pass has already paid and any build must pay once).
* **memory** — peak RSS (the child's own ``VmHWM``, see :mod:`benchmarks.speed.peak`) of a
  1-worker build of the same world and clip size with a fraction of the clips
  (``--rss-fraction``), next to the full one: it must not grow with the number of clips.
  (The RSS includes GDAL's block cache, bounded by ``GDAL_CACHEMAX``: 5 % of RAM by default.)

Every timing is wall-clock and CPU time (user + system of the process and its children): on a
machine shared with other jobs the CPU time is the steadier measure, so ratios are given for both.
The machine (CPU model, cores, load average before and after) is part of the report.

Usage::

    python -m benchmarks.speed.build_speed --presets demo,large --out-json speed.json \
        [--world DIR] [--rss-fraction 0.25] [--schedulers threads,processes]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import zarr
from rasterio.enums import Resampling
from rasterio.warp import reproject

from benchmarks.results import cpu_model
from benchmarks.speed import emit_report
from benchmarks.speed.peak import peak_rss_mb
from deeplightmd.builder import load_manifest
from deeplightmd.builder.grid import TargetGrid
from deeplightmd.builder.inspect import store_size
from deeplightmd.builder.manifest import ensure_world
from deeplightmd.builder.pipeline import ClipReader, clip_runs, run_length
from deeplightmd.builder.sources import make_derived, make_readers
from deeplightmd.builder.store import compressors
from deeplightmd.store_format import MODALITIES, SPLITS, read_store_attrs

CHILD = """
import json, resource, sys, time
from benchmarks.speed.peak import peak_rss_mb
from deeplightmd.builder import build_store, load_manifest

def cpu():
    # user + system seconds of this process and of its reaped children (worker processes)
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))

m = load_manifest(sys.argv[1], world_dir=sys.argv[2], **json.loads(sys.argv[6]))
scheduler = sys.argv[5] if sys.argv[5] != "default" else None
t, c = time.perf_counter(), cpu()
build_store(m, sys.argv[3], workers=int(sys.argv[4]), scheduler=scheduler, overwrite=True,
            progress=False)
# a forkserver's workers are its children: stop and reap it so that their CPU is counted
from multiprocessing import forkserver
if getattr(forkserver._forkserver, "_forkserver_pid", None):
    forkserver._forkserver._stop()
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": cpu() - c,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def machine() -> dict[str, Any]:
    """CPU model, logical cores (all and usable by this process), memory and load average."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "platform": platform.platform(), "python": sys.version.split()[0],
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def timed_build(preset: str, world: Path, out: str, workers: int, scheduler: str | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build in a subprocess; wall and CPU time of ``build_store`` alone, peak RSS, HR Mpx/s
    and MB/s written.

    Both times start after the child's interpreter start-up and imports, as those of the floor
    and the warp-only pass do; the CPU time includes the build's worker processes (their
    start-up too). ``child_cpu_s`` is the whole child, imports included.
    """
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(world), out, str(workers),
                           scheduler or "default", json.dumps(overrides or {})],
                          capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = res["cpu_s"]
    attrs = read_store_attrs(out)
    n = sum(attrs["splits"].values())
    hr_mpx = n * attrs["grid"]["hr_clip"] ** 2 / 1e6
    size_mb = store_size(out) / 1e6
    stages = attrs["build"]["timings_s"]
    child_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"preset": preset, "workers": workers, "scheduler": attrs["build"]["scheduler"],
            "seconds": res["seconds"], "cpu_s": cpu, "child_cpu_s": child_cpu,
            "peak_rss_mb": res["peak_rss_mb"], "cpu_s_per_clip": cpu / n,
            # CPU seconds per wall second per worker: 1.0 when every worker was busy throughout
            "cpu_efficiency": cpu / (res["seconds"] * workers),
            "load_1min": [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
            "clips": n, "hr_mpx": hr_mpx, "store_mb": size_mb, "stages_s": stages,
            "hr_mpx_per_s": hr_mpx / res["seconds"], "mb_per_s": size_mb / res["seconds"],
            "mb_per_cpu_s": size_mb / cpu,
            "clip_stage_hr_mpx_per_s": hr_mpx / stages["clips"],
            "fingerprint": attrs["fingerprint"]}


def floor_write(store: str, tmp: Path) -> dict[str, Any]:
    """Write the store's split arrays from memory into a new Zarr store (same chunks, codec)."""
    sources = {(s, name): zarr.open_array(store, path=f"{s}/{name}", mode="r")
               for s in SPLITS for name in MODALITIES}
    arrays = {key: (src[...], {"chunks": src.chunks, "shards": src.shards})
              for key, src in sources.items()}
    out = str(tmp / "floor.zarr")
    root = zarr.open_group(out, mode="w")
    t, cpu0 = time.perf_counter(), time.process_time()
    for (split, name), (values, layout) in arrays.items():
        arr = root.create_array(f"{split}/{name}", shape=values.shape, dtype=values.dtype,
                                compressors=compressors(), fill_value=0, **layout)
        arr[...] = values
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu0
    size_mb = store_size(out) / 1e6
    return {"seconds": seconds, "cpu_s": cpu, "store_mb": size_mb, "mb_per_s": size_mb / seconds,
            "mb_per_cpu_s": size_mb / cpu}


def naive_reproject(manifest_preset: str, world: Path, store: str, sample: int) -> dict[str, Any]:
    """Per-clip ``reproject`` from fully read sources, on ``sample`` clips of the store."""
    m = load_manifest(manifest_preset, world_dir=world)
    attrs = read_store_attrs(store)
    grid = TargetGrid.from_dict(attrs["grid"])
    readers = make_readers(m)
    t0 = time.perf_counter()
    full = {}
    for name, rd in readers.items():
        full[name] = []
        for path in rd.paths:
            with rasterio.open(path) as src:
                full[name].append((src.read(list(rd.read.bands)), src.transform, src.crs,
                                   src.nodata))
    read_seconds = time.perf_counter() - t0
    g = zarr.open_group(store, mode="r", path="train")
    rows, cols = g["row"][:sample], g["col"][:sample]
    t, cpu0 = time.perf_counter(), time.process_time()
    for r, c in zip(rows, cols, strict=True):
        for name, rd in readers.items():
            hr = MODALITIES[name].grid == "hr"
            side = grid.hr_clip if hr else grid.lr_clip
            dst_t = grid.hr_transform(int(r), int(c)) if hr else grid.lr_transform(int(r), int(c))
            dst = np.full((len(rd.read.bands), side, side), np.nan, dtype="float32")
            for data, src_t, crs, nodata in full[name]:
                reproject(data, dst, src_transform=src_t, src_crs=crs, src_nodata=nodata,
                          dst_transform=dst_t, dst_crs=grid.crs_wkt, dst_nodata=np.nan,
                          resampling=Resampling[rd.resampling])
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu0
    hr_mpx = len(rows) * grid.hr_clip ** 2 / 1e6
    return {"clips": len(rows), "seconds": seconds, "cpu_s": cpu,
            "full_read_seconds": read_seconds, "hr_mpx_per_s": hr_mpx / seconds,
            "hr_mpx_per_cpu_s": hr_mpx / cpu}


def warp_only(manifest_preset: str, world: Path, store: str) -> dict[str, Any]:
    """The build's reads of every clip of ``store`` (same runs, same warps), nothing written."""
    m = load_manifest(manifest_preset, world_dir=world)
    attrs = read_store_attrs(store)
    grid = TargetGrid.from_dict(attrs["grid"])
    readers = make_readers(m)
    reader = ClipReader(grid, readers, make_derived(m, readers), m.seed)
    runs = []
    for split in SPLITS:
        g = zarr.open_group(store, mode="r", path=split)
        clips = list(zip(g["row"][:].tolist(), g["col"][:].tolist(), strict=True))
        runs += clip_runs(clips, run_length(grid))
    t, cpu0 = time.perf_counter(), time.process_time()
    clips_read = sum(len(reader.read_run(row, col0, n)) for _, row, col0, n in runs)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu0
    hr_mpx = clips_read * grid.hr_clip ** 2 / 1e6
    return {"clips": clips_read, "runs": len(runs), "seconds": seconds, "cpu_s": cpu,
            "hr_mpx_per_s": hr_mpx / seconds, "hr_mpx_per_cpu_s": hr_mpx / cpu}


WARP_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.speed.build_speed import warp_only
passes = [warp_only(sys.argv[1], Path(sys.argv[2]), sys.argv[3]) for _ in range(2)]
print(json.dumps({"cold": passes[0], "warm": passes[1]}))
"""


def timed_warp_only(preset: str, world: Path, store: str) -> dict[str, Any]:
    """:func:`warp_only` twice in a fresh process: ``cold`` (GDAL's block cache empty) and
    ``warm`` (a second pass, as the build's clip stage finds the blocks QA has decoded)."""
    proc = subprocess.run([sys.executable, "-c", WARP_CHILD, preset, str(world), store],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_preset(preset: str, world: Path | None, schedulers: list[str], naive_sample: int,
                   rss_fraction: float) -> dict[str, Any]:
    """Builds (1 worker, then 2 per scheduler), floor, naive, warp-only and memory of a preset,
    with the ratios between them."""
    manifest = load_manifest(preset, world_dir=world)
    ensure_world(manifest)
    world = manifest.base_dir
    with tempfile.TemporaryDirectory(prefix="deeplight-speed-") as tmp_dir:
        tmp = Path(tmp_dir)
        builds = [timed_build(preset, world, str(tmp / "w1.zarr"), 1)]
        builds += [timed_build(preset, world, str(tmp / f"w2-{s}.zarr"), 2, s)
                   for s in schedulers]
        floor = floor_write(str(tmp / "w1.zarr"), tmp)
        warp_passes = timed_warp_only(preset, world, str(tmp / "w1.zarr"))
        warp, cold = warp_passes["warm"], warp_passes["cold"]
        naive = naive_reproject(preset, world, str(tmp / "w1.zarr"), naive_sample)
        keys = ("clips", "peak_rss_mb", "seconds")
        memory = [{k: builds[0][k] for k in keys}]
        if rss_fraction > 0:
            few = {f"splits__{s}": max(1, round(getattr(manifest.splits, s) * rss_fraction))
                   for s in SPLITS}
            rss = timed_build(preset, world, str(tmp / "rss.zarr"), 1, overrides=few)
            memory.insert(0, {k: rss[k] for k in keys})
    w1 = builds[0]
    ratios: dict[str, float] = {
        "build_w1_over_floor_mb_s": w1["mb_per_s"] / floor["mb_per_s"],
        "build_w1_over_floor_mb_per_cpu_s": w1["mb_per_cpu_s"] / floor["mb_per_cpu_s"],
        "build_w1_over_naive_mpx_s": w1["hr_mpx_per_s"] / naive["hr_mpx_per_s"],
        "clip_stage_w1_over_naive_mpx_s": w1["clip_stage_hr_mpx_per_s"] / naive["hr_mpx_per_s"],
        "warp_only_over_floor_cpu_s": warp["cpu_s"] / floor["cpu_s"],
        "one_core_bound_over_floor": floor["cpu_s"] / (floor["cpu_s"] + warp["cpu_s"]),
        "build_w1_cpu_over_warp_plus_floor_cpu": w1["cpu_s"] / (warp["cpu_s"] + floor["cpu_s"]),
        # the build against its own bound (issue 15: target >= 0.8): the floor write plus the
        # warm warp-only pass over the build's own windows, in CPU and in wall seconds
        "build_w1_over_bound_cpu": (floor["cpu_s"] + warp["cpu_s"]) / w1["cpu_s"],
        "build_w1_over_bound_wall": (floor["seconds"] + warp["seconds"]) / w1["seconds"],
        # the same with the cold warp-only pass (its first decode of every source block, which
        # a build cannot skip, included): not the bound, shown next to it
        "build_w1_over_cold_bound_cpu": (floor["cpu_s"] + cold["cpu_s"]) / w1["cpu_s"],
        "warp_cold_over_warm_cpu": cold["cpu_s"] / warp["cpu_s"],
    }
    for b in builds[1:]:
        tag = f"w2_{b['scheduler']}"
        ratios[f"build_{tag}_over_floor_mb_s"] = b["mb_per_s"] / floor["mb_per_s"]
        ratios[f"build_{tag}_over_naive_mpx_s"] = b["hr_mpx_per_s"] / naive["hr_mpx_per_s"]
        ratios[f"{tag}_speedup"] = w1["seconds"] / b["seconds"]
        ratios[f"{tag}_cpu_over_w1_cpu"] = b["cpu_s"] / w1["cpu_s"]
        ratios[f"{tag}_same_fingerprint"] = float(b["fingerprint"] == w1["fingerprint"])
    return {"preset": preset, "builds": builds, "floor": floor, "warp_only": warp_passes,
            "naive": naive, "memory": memory, "ratios": ratios}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write/print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo",
                        help="comma-separated manifest presets to measure (e.g. demo,large)")
    parser.add_argument("--world", type=Path,
                        help="synthetic world dir (one preset only; default: the cache)")
    parser.add_argument("--out-json", type=Path)
    parser.add_argument("--naive-sample", type=int, default=24)
    parser.add_argument("--schedulers", default="threads",
                        help="comma-separated schedulers of the 2-worker builds")
    parser.add_argument("--rss-fraction", type=float, default=0.25,
                        help="also build this fraction of the clips (1 worker) to compare peak "
                             "RSS; 0 to skip")
    args = parser.parse_args(argv)
    presets = args.presets.split(",")
    if args.world is not None and len(presets) > 1:
        parser.error("--world applies to one preset; leave it out to use the cache")
    host = machine()
    results = [measure_preset(p, args.world, args.schedulers.split(","), args.naive_sample,
                              args.rss_fraction) for p in presets]
    host["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report = {"machine": host, "presets": results,
              "driver_peak_rss_mb": peak_rss_mb()}
    return emit_report(report, args.out_json)


if __name__ == "__main__":
    main()
