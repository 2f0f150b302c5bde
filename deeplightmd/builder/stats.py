"""Normalisation statistics from the train split only (keys of ``Normalizer.from_dict``).

Statistics are accumulated as float64 sums per batch of clips and combined in batch order, so the
result does not depend on the number of workers. ``ntl_*`` are moments of ``log1p(max(HR, 0))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deeplightmd.modalities import BUILTIN, Modality


@dataclass
class Moments:
    """Running count, sum and sum of squares (per band when ``bands > 1``)."""

    n: np.ndarray
    s: np.ndarray
    ss: np.ndarray

    @classmethod
    def zeros(cls, bands: int = 1) -> Moments:
        """Empty moments."""
        return cls(np.zeros(bands), np.zeros(bands), np.zeros(bands))

    def add(self, x: np.ndarray) -> None:
        """Accumulate ``x`` of shape ``(bands, ...)``."""
        x = x.reshape(len(self.n), -1).astype(np.float64)
        self.n += x.shape[1]
        self.s += x.sum(axis=1)
        self.ss += np.square(x).sum(axis=1)

    def merge(self, other: Moments) -> None:
        """Add another accumulator."""
        self.n += other.n
        self.s += other.s
        self.ss += other.ss

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Mean and population standard deviation per band (std floored at 1e-6)."""
        n = np.maximum(self.n, 1)
        mean = self.s / n
        std = np.sqrt(np.maximum(self.ss / n - mean**2, 0.0))
        return mean.tolist(), np.maximum(std, 1e-6).tolist()


@dataclass
class TrainStats:
    """Accumulator of the store's ``stats`` attribute, over the modalities that collect stats.

    Moments are kept per ``stats_key`` (``ntl`` from ``hr_ntl``, ``dmo``, ``dem``, declared
    layers by name), of ``log1p(max(x, 0))`` for ``log1p`` modalities and of ``x`` otherwise.
    """

    lit_threshold: float = 0.5
    modalities: dict[str, Modality] = field(default_factory=lambda: dict(BUILTIN))
    moments: dict[str, Moments] = field(default_factory=dict)
    hr_max: float = 0.0
    lit: float = 0.0

    def __post_init__(self) -> None:
        for m in self._collecting():
            self.moments.setdefault(m.stats_key, Moments.zeros(m.bands))

    def _collecting(self) -> list[Modality]:
        return [m for m in self.modalities.values()
                if m.collects_stats and m.normalization != "none"]

    def add_clip(self, values: dict[str, np.ndarray]) -> None:
        """Accumulate one clip: every modality's ``(bands, H, W)`` or ``(H, W)`` array."""
        for m in self._collecting():
            x = values[m.name]
            x = x.reshape(m.bands, *x.shape[-2:]) if m.bands > 1 else x.reshape(x.shape[-2:])
            if m.normalization == "log1p":
                x = np.log1p(np.clip(x, 0, None))
            self.moments[m.stats_key].add(x if m.bands > 1 else x[None])
        hr_ntl = values["hr_ntl"]
        self.hr_max = max(self.hr_max, float(np.max(hr_ntl)))
        self.lit += float(np.count_nonzero(hr_ntl > self.lit_threshold))

    def merge(self, other: TrainStats) -> None:
        """Add another accumulator (call in a fixed order for reproducible floats)."""
        for key, mom in other.moments.items():
            self.moments[key].merge(mom)
        self.hr_max = max(self.hr_max, other.hr_max)
        self.lit += other.lit

    def to_dict(self) -> dict[str, Any]:
        """The ``stats`` root attribute: ``<key>_mean``/``<key>_std`` of the built-in
        modalities (a number for one band, a list per band), ``extra`` for declared layers."""
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for m in self._collecting():
            mean, std = self.moments[m.stats_key].mean_std()
            if m.name in BUILTIN:
                out[f"{m.stats_key}_mean"] = mean if m.bands > 1 else mean[0]
                out[f"{m.stats_key}_std"] = std if m.bands > 1 else std[0]
            else:
                extra[m.name] = {"normalization": m.normalization, "mean": mean, "std": std}
        if extra:
            out["extra"] = extra
        out.update({"hr_ntl_max": self.hr_max,
                    "lit_fraction": self.lit / max(float(self.moments["ntl"].n[0]), 1.0),
                    "lit_threshold": self.lit_threshold})
        return out
