"""The training/evaluation protocol every method runs under (see docs/protocol.md).

Two budgets: ``small`` fits a 2-core CPU demo; ``paper`` is GPU-scale. A method may override
fields of the protocol for its budget through :meth:`Method.protocol_overrides`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from deeplightmd.errors import ConfigError, reject_unknown

BUDGETS = ("small", "paper")


@dataclass(frozen=True)
class TrainProtocol:
    """Training budget and evaluation settings shared by all methods."""

    budget: str = "small"
    steps: int = 300
    batch_size: int = 8
    lr_crop: int = 16          # LR pixels per side of a training crop (HR crop = ratio × this)
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    val_every: int = 100       # steps between validations (checkpoint selection on val only)
    val_clips: int | None = 16  # val clips used for checkpoint selection (None: all)
    grad_clip: float | None = 1.0
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ConfigError(f"unknown budget {self.budget!r}; expected one of {list(BUDGETS)}")
        for name in ("steps", "batch_size", "lr_crop", "val_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"protocol {name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"protocol num_workers must be >= 0, got {self.num_workers}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready protocol."""
        return asdict(self)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainProtocol:
        """A copy with some fields replaced (unknown field names are an error)."""
        reject_unknown(overrides, (f.name for f in fields(self)), "protocol field(s)")
        return replace(self, **overrides)


def protocol_for_budget(budget: str, **overrides: Any) -> TrainProtocol:
    """The default protocol of a budget, with optional field overrides."""
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; expected one of {list(BUDGETS)}")
    base = {
        "small": TrainProtocol(budget="small", steps=300, batch_size=8, lr_crop=16,
                               learning_rate=1e-3, val_every=100, val_clips=16),
        "paper": TrainProtocol(budget="paper", steps=200_000, batch_size=16, lr_crop=32,
                               learning_rate=2e-4, val_every=5_000, val_clips=None, num_workers=4),
    }[budget]
    return base.with_overrides(overrides) if overrides else base


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from exc


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded alike (for DataLoaders)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
