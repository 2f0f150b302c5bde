"""Build throughput next to two references, measured in the same run.

* **build** — ``build_store`` with 1 and 2 workers (each in a fresh subprocess, so its peak RSS
  is its own): HR megapixels of clip pairs per second and MB/s of store written.
* **floor** — the same split arrays, already in memory, written into Zarr with the same chunks and
  codec (zstd): the speed limit of the write path.
* **naive** — per clip, ``rasterio.warp.reproject`` of every modality from sources read fully into
  memory first (the obvious script); timed on a sample of clips and reported per megapixel.

Usage::

    python -m benchmarks.speed.build_speed --preset demo --out-json speed.json [--world DIR]
"""

from __future__ import annotations

import argparse
import json
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

from deeplightmd.build import load_manifest
from deeplightmd.build.grid import TargetGrid
from deeplightmd.build.inspect import store_size
from deeplightmd.build.manifest import ensure_world
from deeplightmd.build.sources import make_readers
from deeplightmd.build.store import compressors
from deeplightmd.store_format import MODALITIES, SPLITS, read_store_attrs

CHILD = """
import json, resource, sys, time
from deeplightmd.build import build_store, load_manifest
m = load_manifest(sys.argv[1], world_dir=sys.argv[2])
t = time.perf_counter()
build_store(m, sys.argv[3], workers=int(sys.argv[4]), overwrite=True, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def timed_build(preset: str, world: Path, out: str, workers: int) -> dict[str, Any]:
    """Build in a subprocess; wall time, peak RSS, HR Mpx/s and MB/s written."""
    proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(world), out, str(workers)],
                          capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    attrs = read_store_attrs(out)
    n = sum(attrs["splits"].values())
    hr_mpx = n * attrs["grid"]["hr_clip"] ** 2 / 1e6
    size_mb = store_size(out) / 1e6
    stages = attrs["build"]["timings_s"]
    return {"workers": workers, "seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"],
            "clips": n, "hr_mpx": hr_mpx, "store_mb": size_mb, "stages_s": stages,
            "hr_mpx_per_s": hr_mpx / res["seconds"], "mb_per_s": size_mb / res["seconds"],
            "clip_stage_hr_mpx_per_s": hr_mpx / stages["clips"]}


def floor_write(store: str, tmp: Path) -> dict[str, Any]:
    """Write the store's split arrays from memory into a new Zarr store (same chunks, codec)."""
    arrays = {(s, name): zarr.open_array(store, path=f"{s}/{name}", mode="r")[...]
              for s in SPLITS for name in MODALITIES}
    out = str(tmp / "floor.zarr")
    root = zarr.open_group(out, mode="w")
    t = time.perf_counter()
    for (split, name), values in arrays.items():
        arr = root.create_array(f"{split}/{name}", shape=values.shape,
                                chunks=(1, *values.shape[1:]), dtype=values.dtype,
                                compressors=compressors(), fill_value=0)
        arr[...] = values
    seconds = time.perf_counter() - t
    size_mb = store_size(out) / 1e6
    return {"seconds": seconds, "store_mb": size_mb, "mb_per_s": size_mb / seconds}


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
    t = time.perf_counter()
    for r, c in zip(rows, cols):
        for name, rd in readers.items():
            hr = MODALITIES[name].grid == "hr"
            side = grid.hr_clip if hr else grid.lr_clip
            dst_t = grid.hr_transform(int(r), int(c)) if hr else grid.lr_transform(int(r), int(c))
            dst = np.full((len(rd.read.bands), side, side), np.nan, dtype="float32")
            for data, src_t, crs, nodata in full[name]:
                reproject(data, dst, src_transform=src_t, src_crs=crs, src_nodata=nodata,
                          dst_transform=dst_t, dst_crs=grid.crs_wkt, dst_nodata=np.nan,
                          resampling=Resampling[rd.resampling])
    seconds = time.perf_counter() - t
    hr_mpx = len(rows) * grid.hr_clip ** 2 / 1e6
    return {"clips": int(len(rows)), "seconds": seconds, "full_read_seconds": read_seconds,
            "hr_mpx_per_s": hr_mpx / seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write/print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--world", type=Path, help="synthetic world dir (default: cache)")
    parser.add_argument("--out-json", type=Path)
    parser.add_argument("--naive-sample", type=int, default=24)
    args = parser.parse_args(argv)
    manifest = load_manifest(args.preset, world_dir=args.world)
    ensure_world(manifest)
    world = manifest.base_dir
    with tempfile.TemporaryDirectory(prefix="deeplight-speed-") as tmp_dir:
        tmp = Path(tmp_dir)
        builds = [timed_build(args.preset, world, str(tmp / f"w{w}.zarr"), w) for w in (1, 2)]
        floor = floor_write(str(tmp / "w1.zarr"), tmp)
        naive = naive_reproject(args.preset, world, str(tmp / "w1.zarr"), args.naive_sample)
    report = {
        "preset": args.preset, "machine": platform.platform(), "python": sys.version.split()[0],
        "builds": builds, "floor": floor, "naive": naive,
        "ratios": {
            "build_w1_over_floor_mb_s": builds[0]["mb_per_s"] / floor["mb_per_s"],
            "build_w2_over_floor_mb_s": builds[1]["mb_per_s"] / floor["mb_per_s"],
            "build_w1_over_naive_mpx_s": builds[0]["hr_mpx_per_s"] / naive["hr_mpx_per_s"],
            "build_w2_over_naive_mpx_s": builds[1]["hr_mpx_per_s"] / naive["hr_mpx_per_s"],
            "clip_stage_w1_over_naive_mpx_s": builds[0]["clip_stage_hr_mpx_per_s"]
            / naive["hr_mpx_per_s"],
            "clip_stage_w2_over_naive_mpx_s": builds[1]["clip_stage_hr_mpx_per_s"]
            / naive["hr_mpx_per_s"],
            "w2_speedup": builds[0]["seconds"] / builds[1]["seconds"],
        },
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    text = json.dumps(report, indent=2)
    if args.out_json:
        args.out_json.write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
