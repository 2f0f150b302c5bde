"""Loader throughput: ``DeepLightDataset`` through a DataLoader vs raw zarr reads, and vs training.

Measured in one run on one store:

* **raw**: every modality of every clip read with zarr in one loop (the same chunks the dataset
  reads, converted to float32) — the ceiling of a single process;
* **dataset**: ``DeepLightDataset`` (whole clips, normalised, paired flips/rotations) through a
  ``DataLoader`` with 0, 1, 2 … (persistent) workers over ``--epochs`` passes: samples/s after the
  first batch (steady) and overall (worker start-up included); the steady ratio to raw has a
  target of ≥ 0.7;
* **train step**: one Adam step of a small 3-layer conv net on the same batch (LR upsampled
  x ratio + DMO + DEM + ISP → HR NTL); training is *loader-bound* when the loader delivers fewer
  samples/s than the step consumes.

Usage::

    python -m benchmarks.speed.loader_speed --store demo/store.zarr --out-json loader.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch import nn
from torch.utils.data import DataLoader

from deeplightmd.access import DeepLightDataset, RandomFlipRotate
from deeplightmd.atomic import write_text
from deeplightmd.store_format import MODALITY_NAMES


def raw_rate(url: str, split: str, epochs: int) -> dict[str, float]:
    """Samples/s of reading every modality of every clip with zarr in one loop."""
    group = zarr.open_group(url, mode="r")[split]
    arrays = [group[name] for name in MODALITY_NAMES]
    n = arrays[0].shape[0]
    nbytes = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(n):
            for arr in arrays:
                nbytes += np.asarray(arr[i], dtype=np.float32).nbytes
    seconds = time.perf_counter() - start
    return {"samples": n * epochs, "seconds": seconds, "samples_per_s": n * epochs / seconds,
            "mb_per_s": nbytes / seconds / 1e6}


def loader_rate(dataset: DeepLightDataset, workers: int, batch_size: int,
                epochs: int) -> dict[str, float]:
    """Samples/s of a DataLoader over ``dataset``: overall, and steady (after the first batch).

    Workers are persistent, so their start-up is paid once and shows in ``first_batch_s``.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    count, first_count, first = 0, 0, 0.0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += batch["hr_ntl"].shape[0]
            if not first_count:
                first, first_count = time.perf_counter() - start, count
    seconds = time.perf_counter() - start
    steady = (count - first_count) / max(seconds - first, 1e-9)
    return {"workers": workers, "samples": count, "seconds": seconds,
            "samples_per_s": count / seconds, "first_batch_s": first,
            "steady_samples_per_s": steady}


class SmallNet(nn.Module):
    """Three 3x3 convolutions on (upsampled LR, DMO, DEM, ISP) at HR resolution."""

    def __init__(self, ratio: int, width: int = 32) -> None:
        super().__init__()
        self.ratio = ratio
        self.body = nn.Sequential(nn.Conv2d(10, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, lr: torch.Tensor, dmo: torch.Tensor, dem: torch.Tensor,
                isp: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(lr, scale_factor=self.ratio, mode="nearest")
        return up + self.body(torch.cat([up, dmo, dem, isp], dim=1))


def train_step_time(batch: dict[str, Any], ratio: int, repeats: int,
                    device: torch.device) -> dict[str, float]:
    """Median seconds of one forward/backward/Adam step of :class:`SmallNet` on ``batch``."""
    torch.manual_seed(0)
    net = SmallNet(ratio).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    inputs = [batch[k].to(device) for k in ("lr_ntl", "dmo", "dem", "isp")]
    target = batch["hr_ntl"].to(device)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss = nn.functional.l1_loss(net(*inputs), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step = statistics.median(times[1:])  # the first step includes allocation/warm-up
    n = target.shape[0]
    return {"batch_size": n, "step_s": step, "samples_per_s": n / step,
            "parameters": sum(p.numel() for p in net.parameters())}


def _best(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    best = dict(max(runs, key=lambda r: r[key]))
    best["rounds"] = [r[key] for r in runs]
    return best


def run(store: str, split: str, workers: list[int], batch_size: int, epochs: int,
        repeats: int, device: str, rounds: int = 3) -> dict[str, Any]:
    """All measurements of one run, as a JSON-ready dict.

    Raw and DataLoader readers are measured in ``rounds`` interleaved rounds and the best round
    of each is kept (as ``timeit`` does), which damps the noise of a shared machine.
    """
    dataset = DeepLightDataset(store, split, transforms=RandomFlipRotate())
    raw_runs: list[dict[str, Any]] = []
    loader_runs: dict[int, list[dict[str, Any]]] = {w: [] for w in workers}
    for _ in range(rounds):
        raw_runs.append(raw_rate(dataset.url, split, epochs))
        for w in workers:
            loader_runs[w].append(loader_rate(dataset, w, batch_size, epochs))
    raw = _best(raw_runs, "samples_per_s")
    loaders = []
    for w in workers:
        res = _best(loader_runs[w], "steady_samples_per_s")
        res["ratio_to_raw"] = res["steady_samples_per_s"] / raw["samples_per_s"]
        loaders.append(res)
    batch = next(iter(DataLoader(dataset, batch_size=batch_size)))
    train = train_step_time(batch, dataset.ratio, repeats, torch.device(device))
    best = max(loaders, key=lambda r: r["steady_samples_per_s"])
    return {
        "store": store, "split": split, "clips": len(dataset),
        "hr_clip": int(batch["hr_ntl"].shape[-1]), "lr_clip": int(batch["lr_ntl"].shape[-1]),
        "batch_size": batch_size, "epochs": epochs, "rounds": rounds,
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                    "python": platform.python_version(), "torch": torch.__version__,
                    "device": device, "torch_threads": torch.get_num_threads()},
        "raw_zarr": raw, "dataloader": loaders, "train_step": train,
        "loader_bound": best["steady_samples_per_s"] < train["samples_per_s"],
        "target_ratio_to_raw": 0.7,
        "meets_target": loaders[0]["ratio_to_raw"] >= 0.7 if loaders else None,
    }


def format_table(result: dict[str, Any]) -> str:
    """A markdown table of the run."""
    raw = result["raw_zarr"]["samples_per_s"]
    lines = ["| reader | samples/s (steady) | x raw | samples/s (incl. start-up) |",
             "|---|---:|---:|---:|", f"| raw zarr loop | {raw:.1f} | 1.00 | {raw:.1f} |"]
    lines += [f"| DataLoader, {r['workers']} workers | {r['steady_samples_per_s']:.1f} | "
              f"{r['ratio_to_raw']:.2f} | {r['samples_per_s']:.1f} |" for r in result["dataloader"]]
    t = result["train_step"]
    lines.append(f"| train step (3-layer CNN, batch {t['batch_size']}) | {t['samples_per_s']:.1f} "
                 f"| {t['samples_per_s'] / raw:.2f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="path or URL of a DeepLightMD store")
    parser.add_argument("--split", default="train")
    parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="passes over the split per reader")
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out-json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.store, args.split, [int(w) for w in args.workers.split(",")],
                 args.batch_size, args.epochs, args.repeats, args.device, args.rounds)
    print(format_table(result))
    print(f"loader-bound: {result['loader_bound']} (1-min load average "
          f"{result['machine']['load_avg_1min']:.1f} on {result['machine']['cpus']} CPUs)")
    if args.out_json:
        write_text(args.out_json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
