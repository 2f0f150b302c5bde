"""Peak memory (RSS) of regional inference for two region sizes, each in its own process.

``deeplightmd predict`` (tiled, row-band blending, COG written band by band) runs on two LR
rasters whose sides differ by ``scale`` (so the SR output differs by ``scale²`` in pixels); the
peak RSS of each child is its own ``VmHWM``, read by :mod:`benchmarks.speed.peak` when it ends
(not ``wait4``'s ``ru_maxrss``, which Linux carries over from the parent), so nothing is sampled
and no third-party package is needed. Bounded-memory inference means the ratio of
peak RSS stays near 1 while the ratio of pixels is ``scale²``.

Usage::

    python -m benchmarks.speed.memory --store demo/store.zarr --sides 128,512 --out-json mem.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from benchmarks.speed import emit_report

#: LR pixel (m) of the synthetic test rasters (VIIRS-like ~ 480 m, EPSG:3857 near 30° N)
LR_PIXEL = 480.0


def write_lr_raster(path: Path, side: int, seed: int = 0) -> Path:
    """A ``side × side`` LR radiance GeoTIFF (lognormal lights on a dark background)."""
    rng = np.random.default_rng(seed)
    data = np.where(rng.random((side, side)) < 0.2, rng.lognormal(2.0, 1.0, (side, side)), 0.0)
    transform = Affine(LR_PIXEL, 0.0, 12.9e6, 0.0, -LR_PIXEL, 3.5e6)
    with rasterio.open(path, "w", driver="GTiff", height=side, width=side, count=1,
                       dtype="float32", crs="EPSG:3857", transform=transform, tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(data.astype("float32")[None])
    return path


def child_peak_rss(module: str, args: list[str]) -> dict[str, Any]:
    """Run ``python -m module args`` under :mod:`benchmarks.speed.peak`; wall time and the
    child's own peak RSS in MB."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deeplight-peak-") as tmp:
        report = Path(tmp) / "peak.json"
        proc = subprocess.run([sys.executable, "-m", "benchmarks.speed.peak", str(report), module,
                               *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr[-500:]}")
        peak = json.loads(report.read_text())["peak_rss_mb"]
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak}


def predict_memory(store: str, sides: tuple[int, int], method: str = "bicubic", tile: int = 64,
                   overlap: int = 8) -> dict[str, Any]:
    """Peak RSS of ``deeplightmd predict`` on LR rasters of the two ``sides``."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="deeplight-mem-") as tmp_dir:
        tmp = Path(tmp_dir)
        for side in sides:
            lr = write_lr_raster(tmp / f"lr{side}.tif", side)
            args = ["predict", "--method", method, "--store", store, "--lr", str(lr), "--out",
                    str(tmp / f"sr{side}.tif"), "--tile", str(tile), "--overlap", str(overlap),
                    "--device", "cpu", "--quiet"]
            res = child_peak_rss("deeplightmd.cli", args)
            with rasterio.open(tmp / f"sr{side}.tif") as src:
                sr_shape = (src.height, src.width)
            sr_mpx = sr_shape[0] * sr_shape[1] / 1e6
            runs.append({"lr_side": side, "sr_shape": list(sr_shape), "sr_mpx": sr_mpx,
                         "sr_float32_mb": sr_mpx * 4, **res,
                         "sr_mpx_per_s": sr_mpx / res["seconds"]})
    small, large = runs
    return {"method": method, "tile": tile, "overlap": overlap, "runs": runs,
            "pixel_ratio": large["sr_mpx"] / small["sr_mpx"],
            "rss_ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
            "rss_growth_mb": large["peak_rss_mb"] - small["peak_rss_mb"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="store giving ratio and statistics")
    parser.add_argument("--sides", default="128,512", help="two LR raster sides")
    parser.add_argument("--method", default="bicubic")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    a, b = (int(v) for v in args.sides.split(","))
    result = predict_memory(args.store, (a, b), args.method)
    return emit_report(result, args.out_json)


if __name__ == "__main__":
    main()
