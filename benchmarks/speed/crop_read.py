"""Reading a training crop from a paper-size clip: one chunk per clip vs a sharded clip.

A training step of the ``paper`` budget reads 32² LR / 256² HR crops from 256² / 2048² clips.
With one chunk per clip, every crop decodes the whole 2048² chunk of each HR variable; with the
store's sharded layout (:func:`deeplightmd.builder.store.clip_layout`, inner chunks of
``INNER_CHUNK`` HR pixels) it decodes only the inner chunks it overlaps. Both layouts are written
with the store's codec chain (zstd + CRC32C) from the same synthetic clips (lognormal radiance-like
values, half of them rounded so they compress like real data), then ``--crops`` random crops are
read from each; the ratio of mean read times is measured in the same run.

With ``--dataset-from STORE`` it also measures whole training samples: a paper-layout store
(256² LR / 2048² HR clips of synthetic values, the grid, statistics and attrs of ``STORE``) is
written once per layout and ``DeepLightDataset(crop=32)`` samples (all five modalities,
normalised tensors) are read from it in this process: samples/s per loader core.

Usage::

    python -m benchmarks.speed.crop_read --bands 7 --clips 2 --crops 20 --out-json crop.json
    python -m benchmarks.speed.crop_read --dataset-from demo/demo.zarr --out-json crop.json
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks.speed import emit_report
from deeplightmd.builder.grid import TargetGrid
from deeplightmd.builder.store import (
    INNER_CHUNK,
    clip_layout,
    compressors,
    create_store,
    finish,
    write_clips,
)
from deeplightmd.store_format import MODALITIES, read_store_attrs


def _radiance_like(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Lognormal float32 values, the first half of the last axis rounded to 0.01 so that, like
    real rasters, part of the data compresses."""
    values = rng.lognormal(0.0, 1.0, shape).astype("float32")
    values[..., : shape[-1] // 2] = np.round(values[..., : shape[-1] // 2], 2)
    return values


def crop_read_times(bands: int = 7, clips: int = 2, side: int = 2048, crop: int = 256,
                    crops: int = 20, inner: int = INNER_CHUNK, seed: int = 0) -> dict[str, Any]:
    """Write time and mean crop-read time of each layout, and their ratios."""
    rng = np.random.default_rng(seed)
    data = _radiance_like(rng, (clips, bands, side, side))
    corners = rng.integers(0, side - crop + 1, (crops, 3))
    out: dict[str, Any] = {"bands": bands, "clip_side": side, "crop_side": crop, "crops": crops,
                           "inner_chunk": inner}
    with tempfile.TemporaryDirectory(prefix="deeplight-crop-") as tmp:
        for name, inner_side in (("chunk_per_clip", side), ("sharded", inner)):
            arr = zarr.create_array(str(Path(tmp) / f"{name}.zarr"), shape=data.shape,
                                    dtype="float32", compressors=compressors(), fill_value=0,
                                    **clip_layout(bands, side, inner_side))
            start = time.perf_counter()
            for i in range(clips):
                arr[i] = data[i]
            write_s = time.perf_counter() - start
            start = time.perf_counter()
            for k, r, c in corners:
                window = arr[int(k) % clips, :, r:r + crop, c:c + crop]
                assert np.array_equal(window, data[int(k) % clips, :, r:r + crop, c:c + crop])
            out[name] = {"write_s_per_clip": write_s / clips,
                         "crop_read_ms": (time.perf_counter() - start) / crops * 1e3}
    out["crop_read_speedup"] = (out["chunk_per_clip"]["crop_read_ms"]
                                / out["sharded"]["crop_read_ms"])
    out["write_time_ratio"] = (out["sharded"]["write_s_per_clip"]
                               / out["chunk_per_clip"]["write_s_per_clip"])
    return out


def _synthetic_clip(grid: TargetGrid, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, spec in MODALITIES.items():
        side = grid.lr_clip if spec.grid == "lr" else grid.hr_clip
        values = _radiance_like(rng, (spec.bands, side, side))
        out[name] = (values > 1).astype("uint8") if spec.dtype == "uint8" else values
    return out


def dataset_sample_times(template: str, lr_clip: int = 256, clips: int = 3, crop: int = 32,
                         passes: int = 4, inners: tuple[int, ...] = (0, INNER_CHUNK),
                         seed: int = 0) -> dict[str, Any]:
    """Seconds per ``DeepLightDataset`` sample (``crop``² LR, all modalities) from a store of
    ``lr_clip``² LR clips in each layout (``inner`` 0: one chunk per clip)."""
    import torch

    from deeplightmd.access import DeepLightDataset

    attrs = read_store_attrs(template)
    grid = dataclasses.replace(TargetGrid.from_dict(attrs["grid"]), lr_clip=lr_clip)
    rng = np.random.default_rng(seed)
    data = [_synthetic_clip(grid, rng) for _ in range(clips)]
    layout = {"train": [(0, c) for c in range(clips)], "val": [], "test": []}
    meta = {**attrs, "grid": grid.to_dict(), "splits": {"train": clips, "val": 0, "test": 0}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, Any] = {"lr_clip": lr_clip, "hr_clip": grid.hr_clip, "crop_lr": crop,
                           "samples": clips * passes, "layouts": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="deeplight-loader-") as tmp:
            for inner in inners:
                url = str(Path(tmp) / f"inner{inner}.zarr")
                create_store(url, grid, layout, meta, inner_chunk=inner)
                write_clips(url, "train", 0, data)
                finish(url, meta)   # complete, with its own chunk manifest
                dataset = DeepLightDataset(url, "train", crop=crop, seed=seed)
                dataset[0]  # opens the store
                start = time.perf_counter()
                for epoch in range(passes):
                    for i in range(clips):
                        dataset[(i, epoch)]
                per = (time.perf_counter() - start) / (clips * passes)
                name = "chunk_per_clip" if inner == 0 else f"inner_{inner}"
                out["layouts"][name] = {"ms_per_sample": per * 1e3,
                                        "samples_per_s_per_core": 1 / per}
    finally:
        torch.set_num_threads(threads)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run and print/write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=7, help="bands of the variable (DMO: 7)")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--side", type=int, default=2048, help="HR clip side")
    parser.add_argument("--crop", type=int, default=256, help="HR crop side")
    parser.add_argument("--crops", type=int, default=20)
    parser.add_argument("--dataset-from", metavar="STORE",
                        help="also time DeepLightDataset samples of a paper-layout store made "
                             "with this store's grid and attrs")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    report = crop_read_times(args.bands, args.clips, args.side, args.crop, args.crops)
    if args.dataset_from:
        report["dataset"] = dataset_sample_times(args.dataset_from)
    return emit_report(report, args.out_json)


if __name__ == "__main__":
    main()
