"""Reading a training crop from a paper-size clip: one chunk per clip vs a sharded clip.

A training step of the ``paper`` budget reads 32² LR / 256² HR crops from 256² / 2048² clips.
With one chunk per clip, every crop decodes the whole 2048² chunk of each HR variable; with the
store's sharded layout (:func:`deeplightmd.build.store.clip_layout`, inner chunks of
``INNER_CHUNK`` HR pixels) it decodes only the inner chunks it overlaps. Both layouts are written
with the store's codec chain (zstd + CRC32C) from the same synthetic clips (lognormal radiance-like
values, half of them rounded so they compress like real data), then ``--crops`` random crops are
read from each; the ratio of mean read times is measured in the same run.

Usage::

    python -m benchmarks.speed.crop_read --bands 7 --clips 2 --crops 20 --out-json crop.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks.speed import emit_report
from deeplightmd.build.store import INNER_CHUNK, clip_layout, compressors


def crop_read_times(bands: int = 7, clips: int = 2, side: int = 2048, crop: int = 256,
                    crops: int = 20, inner: int = INNER_CHUNK, seed: int = 0) -> dict[str, Any]:
    """Write time and mean crop-read time of each layout, and their ratios."""
    rng = np.random.default_rng(seed)
    data = rng.lognormal(0.0, 1.0, (clips, bands, side, side)).astype("float32")
    data[..., : side // 2] = np.round(data[..., : side // 2], 2)
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run and print/write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=7, help="bands of the variable (DMO: 7)")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--side", type=int, default=2048, help="HR clip side")
    parser.add_argument("--crop", type=int, default=256, help="HR crop side")
    parser.add_argument("--crops", type=int, default=20)
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    return emit_report(crop_read_times(args.bands, args.clips, args.side, args.crop, args.crops),
                       args.out_json)


if __name__ == "__main__":
    main()
