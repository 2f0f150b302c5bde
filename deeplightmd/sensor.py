"""The LR nighttime-light sensor model: how a VIIRS-DNB-like sensor sees an HR radiance field.

One model serves the whole project: ``synth`` makes the LR NTL of the synthetic world with it,
``build`` derives LR NTL from HR NTL with it (manifest ``derive``), and the benchmark re-degrades
super-resolved output with it for the LR-consistency metric. Steps, in order:

1. **PSF with blooming halo** — a mixture of two Gaussians on the HR grid:
   ``(1 - halo_fraction) * G(psf_sigma) + halo_fraction * G(halo_sigma)`` (sigmas in LR pixels).
2. **Sub-pixel misregistration** — the LR view is shifted by ``shift = (dx, dy)`` LR pixels
   (content moves +x east / +y south on the image).
3. **Area aggregation** — the mean over each ``ratio × ratio`` block of HR pixels.
4. **Radiometry** — ``gain · s`` below the detection ``floor`` is not detected (0), then
   ``+ offset``, plus Gaussian noise of std ``sqrt(noise_abs² + (noise_rel · gain · s)²)``;
   negative results are clipped to 0.

Radiance is in nW·cm⁻²·sr⁻¹ throughout. Without a random generator no noise is added, so
:func:`degrade` is deterministic (as the LR-consistency metric needs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage

from deeplightmd.errors import ConfigError, reject_unknown


@dataclass(frozen=True)
class SensorModel:
    """Parameters of the LR sensor relative to the HR radiance field (defaults: assumed values)."""

    ratio: int = 8
    psf_sigma: float = 0.45
    halo_sigma: float = 2.0
    halo_fraction: float = 0.12
    shift: tuple[float, float] = (0.3, -0.2)
    gain: float = 0.85
    offset: float = 0.3
    floor: float = 0.5
    noise_abs: float = 0.15
    noise_rel: float = 0.05

    def __post_init__(self) -> None:
        if self.ratio < 1:
            raise ConfigError(f"sensor ratio must be >= 1, got {self.ratio}")
        if not 0.0 <= self.halo_fraction < 1.0:
            raise ConfigError(f"sensor halo_fraction must be in [0, 1), got {self.halo_fraction}")
        for name in ("psf_sigma", "halo_sigma", "floor", "noise_abs", "noise_rel"):
            if getattr(self, name) < 0:
                raise ConfigError(f"sensor {name} must be >= 0, got {getattr(self, name)}")
        if self.gain <= 0:
            raise ConfigError(f"sensor gain must be > 0, got {self.gain}")
        object.__setattr__(self, "shift", (float(self.shift[0]), float(self.shift[1])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (``shift`` as a list)."""
        d = asdict(self)
        d["shift"] = list(self.shift)
        return d

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> SensorModel:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the known ones."""
        reject_unknown(params, (f.name for f in fields(cls)), "sensor parameter(s)")
        kwargs = dict(params)
        if "shift" in kwargs:
            kwargs["shift"] = tuple(kwargs["shift"])
        return cls(**kwargs)


def blur_and_shift(hr: np.ndarray, model: SensorModel) -> np.ndarray:
    """Apply the PSF (core + halo) and the misregistration to HR radiance ``(..., H, W)``.

    Works on the HR grid; sigmas and shift are converted from LR to HR pixels with ``model.ratio``.
    Edges are extended with the nearest value.
    """
    hr = np.asarray(hr, dtype=np.float64)
    r = model.ratio
    spatial = (0,) * (hr.ndim - 2)
    core = ndimage.gaussian_filter(hr, sigma=spatial + (model.psf_sigma * r,) * 2, mode="nearest")
    if model.halo_fraction > 0:
        halo = ndimage.gaussian_filter(hr, sigma=spatial + (model.halo_sigma * r,) * 2,
                                       mode="nearest")
        core = (1.0 - model.halo_fraction) * core + model.halo_fraction * halo
    dx, dy = model.shift
    if dx or dy:
        core = ndimage.shift(core, (*spatial, dy * r, dx * r), order=1, mode="nearest")
    return core


def block_mean(x: np.ndarray, ratio: int) -> np.ndarray:
    """Mean over non-overlapping ``ratio × ratio`` blocks of the last two axes.

    Raises :class:`ConfigError` when the shape is not a multiple of ``ratio``.
    """
    x = np.asarray(x)
    h, w = x.shape[-2:]
    if h % ratio or w % ratio:
        raise ConfigError(f"array of {h}x{w} pixels is not a multiple of ratio {ratio}")
    blocks = x.reshape(*x.shape[:-2], h // ratio, ratio, w // ratio, ratio)
    return blocks.mean(axis=(-3, -1))


def radiometric(signal: np.ndarray, model: SensorModel,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Gain, detection floor, offset and (with ``rng``) noise on LR-grid radiance ``signal``."""
    s = model.gain * np.asarray(signal, dtype=np.float64)
    s = np.where(s >= model.floor, s, 0.0)
    out = s + model.offset
    if rng is not None:
        std = np.sqrt(model.noise_abs**2 + (model.noise_rel * s) ** 2)
        out = out + rng.standard_normal(out.shape) * std
    return np.clip(out, 0.0, None)


def degrade(hr: np.ndarray, model: SensorModel,
            rng: np.random.Generator | None = None) -> np.ndarray:
    """The full sensor model on an HR array aligned with the LR grid.

    Maps ``(..., H, W) → (..., H/r, W/r)``.
    """
    return radiometric(block_mean(blur_and_shift(hr, model), model.ratio), model, rng).astype(
        np.float32)


def clip_sensor_models(attrs: dict[str, Any]) -> Callable[[int], SensorModel | None]:
    """``clip_id → SensorModel`` of a store's clips (``None`` where the LR sensor is unknown).

    A single-world store has one model (``attrs["sensor_model"]``); a multi-world store
    (``attrs["multiworld"]``) has one per world, recorded under ``attrs["worlds"]``, and its clip
    ids map to worlds through the stacked lattice (``attrs["multiworld"]["lattice"]``: each
    world's first row and row count; ``clip_id = row * grid.n_cols + col``).
    """
    single = attrs.get("sensor_model")
    if not attrs.get("multiworld"):
        model = SensorModel.from_dict(single) if single else None
        return lambda clip_id: model
    by_world = {w["world"]: SensorModel.from_dict(w["sensor_model"])
                for split in (attrs.get("worlds") or {}).values() for w in split
                if w.get("sensor_model")}
    rows = [(int(p["row_offset"]), int(p["row_offset"]) + int(p["n_rows"]),
             by_world.get(p["world"])) for p in attrs["multiworld"]["lattice"]]
    n_cols = int(attrs["grid"]["n_cols"])

    def lookup(clip_id: int) -> SensorModel | None:
        row = int(clip_id) // n_cols
        return next((model for first, end, model in rows if first <= row < end), None)

    return lookup
