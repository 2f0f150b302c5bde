"""Input checks shared by the metric modules: shapes, finiteness, masks."""

from __future__ import annotations

import numpy as np

from deeplightmd.errors import DeepLightError


class MetricInputError(DeepLightError):
    """Arrays handed to a metric have the wrong shape, dtype or values."""


def as_image(x: object, name: str) -> np.ndarray:
    """A finite float64 ``(H, W)`` array from ``(H, W)`` or ``(1, H, W)`` input.

    Raises:
        MetricInputError: when the array has another shape or holds NaN/inf.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise MetricInputError(f"{name} must have shape (H, W) or (1, H, W), got {a.shape}")
    if a.size == 0:
        raise MetricInputError(f"{name} is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise MetricInputError(f"{name} must be finite, found {int((~np.isfinite(a)).sum())} "
                               f"NaN/inf value(s)")
    return a


def as_pair(sr: object, hr: object) -> tuple[np.ndarray, np.ndarray]:
    """``sr`` and ``hr`` as float64 ``(H, W)`` images of the same shape."""
    a, b = as_image(sr, "sr"), as_image(hr, "hr")
    if a.shape != b.shape:
        raise MetricInputError(f"sr and hr must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def as_mask(mask: object | None, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """A boolean ``(H, W)`` mask (all True when ``mask`` is None) with at least one True pixel."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != shape:
        raise MetricInputError(f"{name} must have shape {shape}, got {m.shape}")
    m = m.astype(bool)
    if not m.any():
        raise MetricInputError(f"{name} selects no pixel")
    return m
