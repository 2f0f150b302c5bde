"""Print the baseline table of docs/baselines.md: parameters per budget and CPU training-step time.

Run ``python -m baselines._table [--threads N] [--repeats R]``. Paper-size networks are built on
the ``meta`` device (no memory, no time); the step time is one Adam step of the shared loop's
objective on 8 random crops of 16² LR (128² HR), the ``small`` protocol's batch, best of R.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.method import Method, MethodContext, TorchMethod
from benchmarks.registry import METHODS


def count_parameters(cls: type[Method], budget: str) -> int | None:
    """Learned scalars of a network at a budget (``None`` for methods without a network)."""
    if not issubclass(cls, TorchMethod):
        return None
    context = MethodContext(device=torch.device("meta"))
    return cls(context, **cls.default_hparams(budget)).num_parameters()


def step_seconds(cls: type[Method], repeats: int) -> float | None:
    """Best-of-``repeats`` seconds of one training step (small budget) on 8 crops of 16² LR."""
    if not issubclass(cls, TorchMethod):
        return None
    method = cls(MethodContext())
    gen = torch.Generator().manual_seed(0)
    batch = {
        "lr_ntl": torch.randn(8, 1, 16, 16, generator=gen),
        "hr_ntl": torch.randn(8, 1, 128, 128, generator=gen),
        "dmo": torch.randn(8, 7, 128, 128, generator=gen),
        "dem": torch.randn(8, 1, 128, 128, generator=gen),
    }
    optimizer = torch.optim.Adam(method.network.parameters(), lr=1e-4)
    best = float("inf")
    for _ in range(repeats + 1):  # the first step warms up
        start = time.perf_counter()
        loss = method.loss(method.forward(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        best = min(best, time.perf_counter() - start)
    return best


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| name | family | inputs | params small | params paper | CPU step (s) |")
    print("|---|---|---|---:|---:|---:|")
    for name, cls in METHODS.items():
        if not cls.__module__.startswith("baselines."):
            continue
        small, paper = count_parameters(cls, "small"), count_parameters(cls, "paper")
        step = step_seconds(cls, args.repeats)
        step_text = "-" if step is None else f"{step:.2f}"
        print(
            f"| `{name}` | {cls.family} | {', '.join(cls.inputs)} | {_fmt(small)} | "
            f"{_fmt(paper)} | {step_text} |"
        )


if __name__ == "__main__":
    main()
