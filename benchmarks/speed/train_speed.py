"""Training-step throughput per method at a budget's batch and crop, on CPU or a GPU.

Each method is built with its default hyper-parameters for the budget (``small`` or ``paper``)
and trained on one fixed synthetic batch of the budget's shape (LR crop ``c``, HR crop ``8c``,
every modality the method reads, values from a standard normal: step time does not depend on
them). After ``warmup`` steps, ``steps`` timed steps (forward, the method's loss, backward, Adam)
give steps/s, HR megapixels/s and the hours that the budget's step count would take; the ratio
to EDSR measured in the same run makes numbers from different machines comparable. Data loading
is not included (``loader_speed.py`` measures it).

Usage::

    python -m benchmarks.speed.train_speed --budget paper --device cuda --out-json train.json
    python -m benchmarks.speed.train_speed --budget small --methods edsr,deeplightsr --steps 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.method import MethodContext, TorchMethod
from benchmarks.protocol import protocol_for_budget, resolve_device
from benchmarks.registry import METHODS, get_method
from benchmarks.results import cpu_model
from benchmarks.runner import make_method
from benchmarks.speed import emit_report
from deeplightmd.store_format import MODALITIES

#: single-image CNNs, a transformer, a fusion CNN and the paper's method
DEFAULT_METHODS = ("srcnn", "edsr", "rcan", "swinir", "fusion-edsr", "deeplightsr")


def synthetic_batch(batch_size: int, lr_crop: int, ratio: int, device: torch.device,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """One batch of every modality at the protocol's crop (standard-normal values)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, spec in MODALITIES.items():
        side = lr_crop if spec.grid == "lr" else lr_crop * ratio
        out[name] = torch.randn(batch_size, spec.bands, side, side, generator=g).to(device)
    out["isp"] = (out["isp"] > 0).float()
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(method: TorchMethod, batch: dict[str, torch.Tensor], steps: int,
              warmup: int) -> dict[str, Any]:
    """Timed training steps of ``method`` on ``batch`` (after ``warmup`` untimed ones)."""
    device = method.context.device
    optimizer = torch.optim.Adam(method.network.parameters(), lr=1e-4)
    method.network.train()

    def one_step() -> float:
        loss = method.loss(method.forward(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    _sync(device)
    seconds = time.perf_counter() - start
    hr_side = batch["hr_ntl"].shape[-1]
    hr_mpx = steps * batch["hr_ntl"].shape[0] * hr_side ** 2 / 1e6
    return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "hr_mpx_per_s": hr_mpx / seconds,
            "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20
            if device.type == "cuda" else None}


def method_train_rates(methods: list[str], budget: str, device: torch.device, steps: int,
                       warmup: int, ratio: int = 8) -> list[dict[str, Any]]:
    """:func:`step_rate` of each method at the budget's batch size and crop."""
    protocol = protocol_for_budget(budget)
    rows = []
    for name in methods:
        cls = get_method(name)
        if not issubclass(cls, TorchMethod):
            continue
        crop = cls.protocol_overrides(budget).get("lr_crop", protocol.lr_crop)
        size = cls.protocol_overrides(budget).get("batch_size", protocol.batch_size)
        total = cls.protocol_overrides(budget).get("steps", protocol.steps)
        method = make_method(cls, MethodContext(ratio=ratio, device=device), budget)
        assert isinstance(method, TorchMethod)
        rate = step_rate(method, synthetic_batch(size, crop, ratio, device), steps, warmup)
        rows.append({"method": name, "params": method.num_parameters(), "batch": size,
                     "lr_crop": crop, "budget_steps": total,
                     "budget_hours": total / rate["steps_per_s"] / 3600, **rate})
        del method
        if device.type == "cuda":
            torch.cuda.empty_cache()
    edsr = next((r for r in rows if r["method"] == "edsr"), None)
    for r in rows:
        r["time_per_step_over_edsr"] = (edsr["steps_per_s"] / r["steps_per_s"]) if edsr else None
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run and print/write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="small", choices=("small", "paper"))
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="comma-separated registered methods (non-trainable ones skipped)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    methods = [m for m in args.methods.split(",") if m in METHODS]
    rows = method_train_rates(methods, args.budget, device, args.steps, args.warmup)
    report = {"budget": args.budget, "device": str(device),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "cpu": cpu_model(), "methods": rows}
    return emit_report(report, args.out_json)


if __name__ == "__main__":
    main()
