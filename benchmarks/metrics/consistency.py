"""LR-consistency: does the SR image, seen by the LR sensor, reproduce the LR input?

The SR image is re-degraded with the project's sensor model,
``deeplightmd.sensor.degrade(sr, model)`` **without noise** (PSF + halo, misregistration,
×ratio area mean, gain, detection floor, offset), and compared with the LR input. The HR truth
itself is not perfectly consistent when the LR input is noisy, so these numbers measure agreement
with the observation, not accuracy; they catch hallucinated or lost light (cf. opensr-test's
consistency group).
"""

from __future__ import annotations

import numpy as np

from benchmarks.metrics._arrays import MetricInputError, as_image
from benchmarks.metrics.config import MetricConfig
from benchmarks.metrics.pixel import mae, psnr, rmse
from deeplightmd.sensor import SensorModel, degrade


def lr_consistency(sr: np.ndarray, lr: np.ndarray, model: SensorModel,
                   config: MetricConfig | None = None) -> dict[str, float]:
    """Compare ``degrade(sr, model)`` (noise-free) with the LR input.

    Args:
        sr: SR radiance ``(H, W)`` or ``(1, H, W)`` on the HR grid aligned with the LR grid.
        lr: LR radiance ``(H/r, W/r)`` or ``(1, H/r, W/r)``, ``r = model.ratio``.
        model: the sensor model that made (or describes) the LR input.
        config: data range for the PSNR (both sides clipped to ``[0, R]``) and the PSNR cap.

    Returns:
        ``lrc_rmse``, ``lrc_mae`` (nW·cm⁻²·sr⁻¹), ``lrc_psnr`` (dB) and ``lrc_total_rel_bias``
        ``= (Σ degrade(sr) − Σ lr) / Σ lr`` (NaN when Σ lr = 0).
    """
    cfg = config or MetricConfig()
    s, low = as_image(sr, "sr"), as_image(lr, "lr")
    expected = (low.shape[0] * model.ratio, low.shape[1] * model.ratio)
    if s.shape != expected:
        raise MetricInputError(f"sr must be {model.ratio}x the lr shape {low.shape}, i.e. "
                               f"{expected}, got {s.shape}")
    seen = degrade(s, model).astype(np.float64)
    r = cfg.radiance_range
    total = float(low.sum())
    return {
        "lrc_rmse": rmse(seen, low),
        "lrc_mae": mae(seen, low),
        "lrc_psnr": psnr(np.clip(seen, 0, r), np.clip(low, 0, r), r, max_db=cfg.psnr_cap_db),
        "lrc_total_rel_bias": (float(seen.sum()) - total) / total if total > 0 else float("nan"),
    }
