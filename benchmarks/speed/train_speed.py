"""Training-step throughput per method at a budget's batch and crop, on CPU or a GPU.

Each method is built with its default hyper-parameters for the budget (``small`` or ``paper``)
and trained on one fixed synthetic batch of the budget's shape (LR crop ``c``, HR crop ``8c``,
every modality the method reads, values from a standard normal: step time does not depend on
them). After ``warmup`` steps, ``steps`` timed steps (forward, the method's loss, backward, Adam)
give steps/s, HR megapixels/s and the hours that the budget's step count would take; the ratio
to EDSR measured in the same run makes numbers from different machines comparable. Data loading
is not included (``loader_speed.py`` measures it).

``--modes`` times each method in several numeric modes in the same run: ``fp32`` (the
protocol's), ``bf16`` (forward and loss under ``torch.autocast`` with bfloat16; parameters,
gradients and Adam stay float32), ``cl`` (network and batch in ``torch.channels_last`` memory
format) and ``bf16-cl`` (both); each row after the first gets its speed-up over ``fp32``. On a CPU
without bfloat16 instructions bf16 is slower, not faster: the modes are meant for a GPU.

Usage::

    python -m benchmarks.speed.train_speed --budget paper --device cuda --out-json train.json
    python -m benchmarks.speed.train_speed --budget paper --device cuda --modes fp32,bf16-cl
    python -m benchmarks.speed.train_speed --budget small --methods edsr,deeplightsr --steps 5
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StepMode:
    """A numeric mode of the timed steps: autocast dtype and memory format."""

    name: str
    autocast: torch.dtype | None = None
    channels_last: bool = False

    def autocast_context(self, device: torch.device) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for this mode on ``device`` (a no-op context for fp32)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast)


#: the modes ``--modes`` accepts, by name
STEP_MODES = {m.name: m for m in (
    StepMode("fp32"),
    StepMode("bf16", autocast=torch.bfloat16),
    StepMode("cl", channels_last=True),
    StepMode("bf16-cl", autocast=torch.bfloat16, channels_last=True),
)}


def parse_modes(text: str) -> list[StepMode]:
    """``"fp32,bf16-cl"`` → the :class:`StepMode` list (unknown names are an error)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STEP_MODES]
    if unknown or not names:
        raise ValueError(f"unknown step mode(s) {unknown or text!r}; expected a comma-separated "
                         f"list of {sorted(STEP_MODES)}")
    return [STEP_MODES[n] for n in names]


def _to_memory_format(batch: dict[str, torch.Tensor], mode: StepMode) -> dict[str, torch.Tensor]:
    if not mode.channels_last:
        return batch
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in batch.items()}


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
              warmup: int, mode: StepMode = STEP_MODES["fp32"]) -> dict[str, Any]:
    """Timed training steps of ``method`` on ``batch`` (after ``warmup`` untimed ones).

    ``mode`` runs the forward pass and the loss under autocast and/or in channels-last memory
    format; the backward pass and Adam are outside autocast, as ``torch.autocast`` prescribes.
    """
    device = method.context.device
    if mode.channels_last:
        method.network.to(memory_format=torch.channels_last)
    batch = _to_memory_format(batch, mode)
    optimizer = torch.optim.Adam(method.network.parameters(), lr=1e-4)
    method.network.train()

    def one_step() -> float:
        with mode.autocast_context(device):
            loss = method.loss(method.forward(batch), batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{method.name}: non-finite loss {float(loss)} in step "
                                     f"mode {mode.name}")
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
    return {"mode": mode.name, "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "hr_mpx_per_s": hr_mpx / seconds,
            "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20
            if device.type == "cuda" else None}


def method_train_rates(methods: list[str], budget: str, device: torch.device, steps: int,
                       warmup: int, ratio: int = 8,
                       modes: list[StepMode] | None = None) -> list[dict[str, Any]]:
    """:func:`step_rate` of each method at the budget's batch size and crop, in each mode.

    Every (method, mode) pair starts from the same freshly built network (same seed) and batch.
    Rows of a mode other than the first get ``speedup_over_first_mode``; ``time_per_step_over_edsr``
    compares methods within one mode.
    """
    modes = modes or [STEP_MODES["fp32"]]
    protocol = protocol_for_budget(budget)
    rows = []
    for name in methods:
        cls = get_method(name)
        if not issubclass(cls, TorchMethod):
            continue
        crop = cls.protocol_overrides(budget).get("lr_crop", protocol.lr_crop)
        size = cls.protocol_overrides(budget).get("batch_size", protocol.batch_size)
        total = cls.protocol_overrides(budget).get("steps", protocol.steps)
        first: dict[str, Any] | None = None
        for mode in modes:
            torch.manual_seed(0)
            method = make_method(cls, MethodContext(ratio=ratio, device=device), budget)
            assert isinstance(method, TorchMethod)
            rate = step_rate(method, synthetic_batch(size, crop, ratio, device), steps, warmup,
                             mode)
            row = {"method": name, "params": method.num_parameters(), "batch": size,
                   "lr_crop": crop, "budget_steps": total,
                   "budget_hours": total / rate["steps_per_s"] / 3600, **rate}
            first = first or row
            row["speedup_over_first_mode"] = (row["steps_per_s"] / first["steps_per_s"]
                                              if row is not first else None)
            rows.append(row)
            del method
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for mode in modes:
        edsr = next((r for r in rows if r["method"] == "edsr" and r["mode"] == mode.name), None)
        for r in rows:
            if r["mode"] == mode.name:
                r["time_per_step_over_edsr"] = (edsr["steps_per_s"] / r["steps_per_s"]
                                                if edsr else None)
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
    parser.add_argument("--modes", default="fp32",
                        help=f"comma-separated step modes, first is the reference: "
                             f"{', '.join(STEP_MODES)} (bf16: autocast; cl: channels_last)")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args(argv)
    try:
        modes = parse_modes(args.modes)
    except ValueError as exc:
        parser.error(str(exc))
    device = resolve_device(args.device)
    methods = [m for m in args.methods.split(",") if m in METHODS]
    rows = method_train_rates(methods, args.budget, device, args.steps, args.warmup, modes=modes)
    report = {"budget": args.budget, "device": str(device), "modes": [m.name for m in modes],
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "cpu": cpu_model(), "methods": rows}
    return emit_report(report, args.out_json)


if __name__ == "__main__":
    main()
