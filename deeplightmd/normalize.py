"""Normalisation of store variables for learning, with an exact inverse.

Statistics come from the **train split only** (written by ``build`` into the store's root attrs,
``deeplight.stats``). Conventions:

- ``lr_ntl`` and ``hr_ntl``: ``(log1p(max(x, 0)) - ntl_mean) / ntl_std`` with the *HR* NTL train
  statistics for both, so an interpolated LR lives in the same space as the HR target.
- ``dmo``: per-band z-score of surface reflectance.
- ``dem``: z-score of metres.
- ``isp``: unchanged ({0, 1}).

Works on numpy arrays and torch tensors (channel axis first: ``(C, H, W)`` or ``(B, C, H, W)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from deeplightmd.errors import ConfigError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

NTL_NAMES = ("lr_ntl", "hr_ntl")


@dataclass(frozen=True)
class Normalizer:
    """Per-modality normalisation with train-split statistics."""

    ntl_mean: float = 0.0
    ntl_std: float = 1.0
    dmo_mean: tuple[float, ...] = (0.0,) * 7
    dmo_std: tuple[float, ...] = (1.0,) * 7
    dem_mean: float = 0.0
    dem_std: float = 1.0

    def __post_init__(self) -> None:
        stds = (self.ntl_std, self.dem_std, *self.dmo_std)
        if not all(np.isfinite(s) and s > 0 for s in stds):
            raise ConfigError(f"normalisation std values must be finite and > 0, got {stds}")

    @classmethod
    def from_dict(cls, stats: dict[str, Any]) -> Normalizer:
        """Build from the store's ``deeplight.stats`` attrs."""
        return cls(
            ntl_mean=float(stats["ntl_mean"]), ntl_std=float(stats["ntl_std"]),
            dmo_mean=tuple(float(v) for v in stats["dmo_mean"]),
            dmo_std=tuple(float(v) for v in stats["dmo_std"]),
            dem_mean=float(stats["dem_mean"]), dem_std=float(stats["dem_std"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (the inverse of :meth:`from_dict`)."""
        return {"ntl_mean": self.ntl_mean, "ntl_std": self.ntl_std,
                "dmo_mean": list(self.dmo_mean), "dmo_std": list(self.dmo_std),
                "dem_mean": self.dem_mean, "dem_std": self.dem_std}

    def _affine(self, name: str, like: ArrayT) -> tuple[Any, Any]:
        if name in NTL_NAMES:
            return self.ntl_mean, self.ntl_std
        if name == "dem":
            return self.dem_mean, self.dem_std
        if name == "dmo":
            shape = (-1, 1, 1)
            if isinstance(like, torch.Tensor):
                mean = torch.tensor(self.dmo_mean, dtype=like.dtype, device=like.device)
                std = torch.tensor(self.dmo_std, dtype=like.dtype, device=like.device)
                return mean.reshape(shape), std.reshape(shape)
            return (np.asarray(self.dmo_mean, dtype=like.dtype).reshape(shape),
                    np.asarray(self.dmo_std, dtype=like.dtype).reshape(shape))
        raise ConfigError(f"no normalisation for modality {name!r}; expected one of "
                          "lr_ntl, hr_ntl, dmo, dem, isp")

    def normalize(self, name: str, x: ArrayT) -> ArrayT:
        """Physical units → network space."""
        if name == "isp":
            return x
        mean, std = self._affine(name, x)
        if name in NTL_NAMES:
            x = torch.log1p(torch.clamp(x, min=0)) if isinstance(x, torch.Tensor) \
                else np.log1p(np.clip(x, 0, None))
        return (x - mean) / std

    def denormalize(self, name: str, y: ArrayT) -> ArrayT:
        """Network space → physical units (exact inverse of :meth:`normalize` for valid input)."""
        if name == "isp":
            return y
        mean, std = self._affine(name, y)
        x = y * std + mean
        if name in NTL_NAMES:
            x = torch.clamp(torch.expm1(x), min=0) if isinstance(x, torch.Tensor) \
                else np.clip(np.expm1(x), 0, None)
        return x
