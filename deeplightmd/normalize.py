"""Normalisation of store variables for learning, with an exact inverse.

Statistics come from the **train split only** (written by ``build`` into the store's root attrs,
``deeplight.stats``). Conventions:

- ``lr_ntl`` and ``hr_ntl``: ``(log1p(max(x, 0)) - ntl_mean) / ntl_std`` with the *HR* NTL train
  statistics for both, so an interpolated LR lives in the same space as the HR target.
- ``dmo``: per-band z-score of surface reflectance.
- ``dem``: z-score of metres.
- ``isp``: unchanged ({0, 1}).
- a declared layer: as its ``normalization`` says (``log1p``, ``zscore``, ``none``), with its
  own train statistics (``stats.extra``).

Works on numpy arrays and torch tensors (channel axis first: ``(C, H, W)`` or ``(B, C, H, W)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import torch

from deeplightmd.errors import ConfigError
from deeplightmd.modalities import BUILTIN

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

NTL_NAMES = ("lr_ntl", "hr_ntl")


@dataclass(frozen=True)
class Normalizer:
    """Per-modality normalisation with train-split statistics.

    The kind of each built-in modality (``log1p``, ``zscore``, ``none``) and the statistics it
    uses come from :data:`deeplightmd.modalities.BUILTIN`; declared layers carry theirs in
    ``extra`` (``name → (normalization, mean per band, std per band)``).
    """

    ntl_mean: float = 0.0
    ntl_std: float = 1.0
    dmo_mean: tuple[float, ...] = (0.0,) * 7
    dmo_std: tuple[float, ...] = (1.0,) * 7
    dem_mean: float = 0.0
    dem_std: float = 1.0
    extra: dict[str, tuple[str, tuple[float, ...], tuple[float, ...]]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        stds = (self.ntl_std, self.dem_std, *self.dmo_std,
                *(v for _, _, std in self.extra.values() for v in std))
        if not all(np.isfinite(s) and s > 0 for s in stds):
            raise ConfigError(f"normalisation std values must be finite and > 0, got {stds}")

    @classmethod
    def from_dict(cls, stats: dict[str, Any]) -> Normalizer:
        """Build from the store's ``deeplight.stats`` attrs."""
        extra = {name: (str(e["normalization"]), tuple(float(v) for v in e["mean"]),
                        tuple(float(v) for v in e["std"]))
                 for name, e in (stats.get("extra") or {}).items()}
        return cls(
            ntl_mean=float(stats["ntl_mean"]), ntl_std=float(stats["ntl_std"]),
            dmo_mean=tuple(float(v) for v in stats["dmo_mean"]),
            dmo_std=tuple(float(v) for v in stats["dmo_std"]),
            dem_mean=float(stats["dem_mean"]), dem_std=float(stats["dem_std"]), extra=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (the inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {"ntl_mean": self.ntl_mean, "ntl_std": self.ntl_std,
                               "dmo_mean": list(self.dmo_mean), "dmo_std": list(self.dmo_std),
                               "dem_mean": self.dem_mean, "dem_std": self.dem_std}
        if self.extra:
            out["extra"] = {name: {"normalization": kind, "mean": list(mean), "std": list(std)}
                            for name, (kind, mean, std) in self.extra.items()}
        return out

    def kind(self, name: str) -> str:
        """``log1p``, ``zscore`` or ``none`` for modality ``name``."""
        if name in BUILTIN:
            return BUILTIN[name].normalization
        if name in self.extra:
            return self.extra[name][0]
        raise ConfigError(f"no normalisation for modality {name!r}; expected one of "
                          f"{', '.join((*BUILTIN, *self.extra))}")

    def _affine(self, name: str, like: ArrayT) -> tuple[Any, Any]:
        if name in BUILTIN:
            key = BUILTIN[name].stats_key
            mean, std = getattr(self, f"{key}_mean"), getattr(self, f"{key}_std")
        else:
            _, mean, std = self.extra[name]
        if not isinstance(mean, tuple):
            return mean, std
        if len(mean) == 1:
            return mean[0], std[0]
        shape = (-1, 1, 1)
        if isinstance(like, torch.Tensor):
            return (torch.tensor(mean, dtype=like.dtype, device=like.device).reshape(shape),
                    torch.tensor(std, dtype=like.dtype, device=like.device).reshape(shape))
        return (np.asarray(mean, dtype=like.dtype).reshape(shape),
                np.asarray(std, dtype=like.dtype).reshape(shape))

    def normalize(self, name: str, x: ArrayT) -> ArrayT:
        """Physical units → network space."""
        kind = self.kind(name)
        if kind == "none":
            return x
        mean, std = self._affine(name, x)
        if kind == "log1p":
            x = torch.log1p(torch.clamp(x, min=0)) if isinstance(x, torch.Tensor) \
                else np.log1p(np.clip(x, 0, None))
        return (x - mean) / std

    def denormalize(self, name: str, y: ArrayT) -> ArrayT:
        """Network space → physical units (exact inverse of :meth:`normalize` for valid input)."""
        kind = self.kind(name)
        if kind == "none":
            return y
        mean, std = self._affine(name, y)
        x = y * std + mean
        if kind == "log1p":
            x = torch.clamp(torch.expm1(x), min=0) if isinstance(x, torch.Tensor) \
                else np.clip(np.expm1(x), 0, None)
        return x

    def with_bands(self, have: tuple[str, ...], want: tuple[str, ...]) -> Normalizer:
        """This normaliser for a DMO whose bands are ``want`` instead of ``have`` (see
        :func:`deeplightmd.daytime.conform_bands`): a missing band gets mean 0 and std 1, so
        its zero fill stays 0 in normalised space."""
        if tuple(have) == tuple(want):
            return self
        pick = [have.index(b) if b in have else None for b in want]
        return replace(self, dmo_mean=tuple(0.0 if i is None else self.dmo_mean[i] for i in pick),
                       dmo_std=tuple(1.0 if i is None else self.dmo_std[i] for i in pick))
