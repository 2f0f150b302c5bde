"""Normalisation statistics from the train split only (keys of ``Normalizer.from_dict``).

Statistics are accumulated as float64 sums per batch of clips and combined in batch order, so the
result does not depend on the number of workers. ``ntl_*`` are moments of ``log1p(max(HR, 0))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deeplightmd.store_format import DMO_BANDS


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
    """Accumulator of the store's ``stats`` attribute."""

    lit_threshold: float = 0.5
    ntl: Moments = field(default_factory=Moments.zeros)
    dmo: Moments = field(default_factory=lambda: Moments.zeros(len(DMO_BANDS)))
    dem: Moments = field(default_factory=Moments.zeros)
    hr_max: float = 0.0
    lit: float = 0.0

    def add_clip(self, hr_ntl: np.ndarray, dmo: np.ndarray, dem: np.ndarray) -> None:
        """Accumulate one clip: ``hr_ntl (H, W)``, ``dmo (7, H, W)``, ``dem (H, W)``."""
        self.ntl.add(np.log1p(np.clip(hr_ntl, 0, None))[None])
        self.dmo.add(dmo)
        self.dem.add(dem[None])
        self.hr_max = max(self.hr_max, float(np.max(hr_ntl)))
        self.lit += float(np.count_nonzero(hr_ntl > self.lit_threshold))

    def merge(self, other: TrainStats) -> None:
        """Add another accumulator (call in a fixed order for reproducible floats)."""
        self.ntl.merge(other.ntl)
        self.dmo.merge(other.dmo)
        self.dem.merge(other.dem)
        self.hr_max = max(self.hr_max, other.hr_max)
        self.lit += other.lit

    def to_dict(self) -> dict[str, float | list[float]]:
        """The ``stats`` root attribute."""
        ntl_mean, ntl_std = self.ntl.mean_std()
        dmo_mean, dmo_std = self.dmo.mean_std()
        dem_mean, dem_std = self.dem.mean_std()
        return {"ntl_mean": ntl_mean[0], "ntl_std": ntl_std[0], "dmo_mean": dmo_mean,
                "dmo_std": dmo_std, "dem_mean": dem_mean[0], "dem_std": dem_std[0],
                "hr_ntl_max": self.hr_max,
                "lit_fraction": self.lit / max(float(self.ntl.n[0]), 1.0),
                "lit_threshold": self.lit_threshold}
