"""Inference throughput per method, and the cost of tiled regional inference vs one pass.

* **methods** — each method (bicubic, srcnn, edsr, fusion-edsr, deeplightsr when registered) built
  with the store's context and its ``small`` default hyper-parameters (untrained weights: speed
  does not depend on their values) predicts a batch of whole test clips; HR megapixels/s over
  ``repeats`` timed calls after one warm-up call, and the ratio to bicubic measured in the same run.
* **regional** — a held-out region mosaic predicted by the harness's
  :func:`~benchmarks.runner.predict_region` once as a single tile covering the mosaic (untiled)
  and once with overlapping tiles blended by the :class:`~deeplightmd.access.Stitcher` (tiled);
  the overhead is the ratio of wall times (reading, prediction and blending included).

Usage::

    python -m benchmarks.speed.inference_speed --store demo/store.zarr --out-json infer.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks.registry import METHODS, get_method
from benchmarks.runner import make_context, make_method, predict_region, timed_predict
from benchmarks.speed import emit_report
from deeplightmd.access import DeepLightDataset, RegionDataset
from deeplightmd.store_format import read_store_attrs

#: the representative set: interpolation, single-image CNNs, a fusion CNN and the paper's method
DEFAULT_METHODS = ("bicubic", "srcnn", "edsr", "fusion-edsr", "deeplightsr")


def available_methods(wanted: tuple[str, ...] = DEFAULT_METHODS) -> list[str]:
    """Those of ``wanted`` that are registered in this installation."""
    return [m for m in wanted if m in METHODS]


def method_rates(store: str, methods: list[str], device: torch.device, batch_size: int = 4,
                 repeats: int = 3) -> list[dict[str, Any]]:
    """HR megapixels/s of ``predict`` for each method on a batch of whole test clips."""
    attrs = read_store_attrs(store)
    context = make_context(attrs, device, seed=0)
    batch = next(iter(DataLoader(DeepLightDataset(store, "test"), batch_size=batch_size)))
    out = []
    for name in methods:
        cls = get_method(name)
        method = make_method(cls, context, "small")
        inputs = {k: batch[k].to(device) for k in cls.inputs}
        timed_predict(method, inputs)  # warm-up: allocation, lazy init, cudnn autotune
        seconds = [timed_predict(method, inputs)[1] for _ in range(repeats)]
        best = min(seconds)
        pixels = batch["hr_ntl"].shape[0] * batch["hr_ntl"].shape[-1] * batch["hr_ntl"].shape[-2]
        out.append({"method": name, "family": cls.family, "inputs": list(cls.inputs),
                    "batch": int(batch["hr_ntl"].shape[0]),
                    "hr_side": int(batch["hr_ntl"].shape[-1]), "seconds_per_batch": best,
                    "hr_mpx_per_s": pixels / best / 1e6, "params": method.num_parameters()})
    base = next((r["hr_mpx_per_s"] for r in out if r["method"] == "bicubic"), None)
    for r in out:
        r["ratio_to_bicubic"] = r["hr_mpx_per_s"] / base if base else None
    return out


def largest_region(store: str) -> str:
    """The held-out region with the largest LR mosaic."""
    import zarr

    attrs = read_store_attrs(store)
    sizes = {name: zarr.open_array(store, path=f"regions/{name}/lr/lr_ntl", mode="r").size
             for name in attrs["regions"]}
    return max(sizes, key=sizes.get)


def regional_overhead(store: str, method_name: str, device: torch.device,
                      tile: int | None = None, overlap: int | None = None,
                      region: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Best-of-``repeats`` wall time of tiled vs untiled (one tile) regional inference.

    ``tile`` defaults to half the mosaic's shorter LR side (at least 8, at most 64) so the
    mosaic is cut into several tiles, ``overlap`` to a quarter of the tile.
    """
    attrs = read_store_attrs(store)
    region = region or largest_region(store)
    lr_shape = RegionDataset(store, region, tile=8, overlap=0, modalities=("lr_ntl",)).lr_shape
    tile = tile or max(8, min(64, min(lr_shape) // 2))
    overlap = tile // 4 if overlap is None else overlap
    cls = get_method(method_name)
    method = make_method(cls, make_context(attrs, device, seed=0), "small")
    modalities = tuple(dict.fromkeys(("lr_ntl", *cls.inputs)))
    runs = {}
    for label, t, o in (("untiled", None, 0), ("tiled", tile, overlap)):
        side = t or max(lr_shape)
        ds = RegionDataset(store, region, tile=side, overlap=o, modalities=modalities)
        predict_region(method, ds, ds.stitcher(), progress=False)  # warm-up
        best = None
        for _ in range(repeats):
            start = time.perf_counter()
            pred = predict_region(method, ds, ds.stitcher(), progress=False)
            seconds = time.perf_counter() - start
            if best is None or seconds < best[0]:
                best = (seconds, pred.seconds)
        runs[label] = {"tiles": len(pred.windows), "tile": side, "overlap": o,
                       "seconds": best[0], "predict_seconds": best[1]}
    hr_mpx = ds.hr_shape[0] * ds.hr_shape[1] / 1e6
    for r in runs.values():
        r["hr_mpx_per_s"] = hr_mpx / r["seconds"]
    return {"method": method_name, "region": region, "lr_shape": list(ds.lr_shape),
            "hr_mpx": hr_mpx, **runs,
            "tiled_over_untiled_time": runs["tiled"]["seconds"] / runs["untiled"]["seconds"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    methods = available_methods(tuple(args.methods.split(",")))
    result = {"methods": method_rates(args.store, methods, device, args.batch_size, args.repeats),
              "regional": [regional_overhead(args.store, m, device)
                           for m in ("bicubic", "edsr") if m in methods]}
    return emit_report(result, args.out_json)


if __name__ == "__main__":
    main()
