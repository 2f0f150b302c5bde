"""GMSD on log radiance: a full-reference structure score that separates SR methods on NTL tiles.

Gradient Magnitude Similarity Deviation (W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient
Magnitude Similarity Deviation: A Highly Efficient Perceptual Image Quality Index", IEEE TIP
23(2), 2014, doi:10.1109/TIP.2013.2293423), computed on ``g = log1p(clip(x, 0, R)) / log1p(R)``:

1. Prewitt gradients ``h_x = [[1, 0, −1]] * 3 rows / 3``, ``h_y = h_xᵀ`` over the *valid* interior
   (no padding, so image borders add nothing): ``m = sqrt((g ⊛ h_x)² + (g ⊛ h_y)²)``;
2. gradient magnitude similarity ``GMS = (2·m_sr·m_hr + c) / (m_sr² + m_hr² + c)`` with
   ``c = 170 / 255²`` (the paper's constant for [0, 255] images, rescaled to [0, 1]);
3. ``GMSD = std(GMS)`` (population). 0 for identical images, at most 0.5; lower is better.

Unlike PIQE (every image scaled by its own maximum; dark tiles have no active 16×16 block and
score 100) it needs no minimum block activity: a 3×3 neighbourhood is enough. Blocky (nearest)
or over-smoothed output moves gradient energy away from where HR has it, which raises the spread
of GMS. The paper's 2× down-sampling (a viewing-distance model for photographs) is left out:
NTL tiles are small and every HR pixel is data. Flat, dark areas give ``GMS = 1`` in both images.
"""

from __future__ import annotations

import numpy as np

from benchmarks.metrics._arrays import MetricInputError, as_pair

#: the GMSD paper's stability constant for 8-bit images (170), for images in [0, 1]
GMSD_C = 170.0 / 255.0**2


def gradient_magnitude(g: np.ndarray) -> np.ndarray:
    """Prewitt gradient magnitude ``(H − 2, W − 2)`` of ``g`` over the valid interior."""
    rows = g[:-2] + g[1:-1] + g[2:]                      # 3-row sums, (H−2, W)
    cols = g[:, :-2] + g[:, 1:-1] + g[:, 2:]             # 3-column sums, (H, W−2)
    gx = (rows[:, :-2] - rows[:, 2:]) / 3.0
    gy = (cols[:-2] - cols[2:]) / 3.0
    return np.hypot(gx, gy)


def gmsd(sr: np.ndarray, hr: np.ndarray, c: float = GMSD_C) -> float:
    """GMSD of two same-shape images already scaled to [0, 1] (at least 3×3 pixels)."""
    a, b = as_pair(sr, hr)
    if min(a.shape) < 3:
        raise MetricInputError(f"GMSD needs images of at least 3x3 pixels, got "
                               f"{a.shape[0]}x{a.shape[1]}")
    ma, mb = gradient_magnitude(a), gradient_magnitude(b)
    gms = (2.0 * ma * mb + c) / (ma * ma + mb * mb + c)
    return float(gms.std())


def gmsd_log(sr: np.ndarray, hr: np.ndarray, radiance_range: float) -> float:
    """GMSD of ``log1p(clip(·, 0, R)) / log1p(R)`` of SR and HR radiance (lower is better)."""
    if not radiance_range > 0:
        raise MetricInputError(f"radiance_range must be > 0, got {radiance_range}")
    a, b = as_pair(sr, hr)
    scale = float(np.log1p(radiance_range))
    return gmsd(np.log1p(np.clip(a, 0.0, radiance_range)) / scale,
                np.log1p(np.clip(b, 0.0, radiance_range)) / scale)


__all__ = ["GMSD_C", "gmsd", "gmsd_log", "gradient_magnitude"]
