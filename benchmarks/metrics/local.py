"""Local (per test clip) metrics: pixel metrics and GMSD vs HR, PIQE of SR, LR-consistency vs LR."""

from __future__ import annotations

import numpy as np

from benchmarks.metrics.config import MetricConfig
from benchmarks.metrics.consistency import lr_consistency
from benchmarks.metrics.gmsd import gmsd_log
from benchmarks.metrics.piqe import piqe
from benchmarks.metrics.pixel import pixel_metrics
from deeplightmd.sensor import SensorModel


def compute_local_metrics(sr: np.ndarray, hr: np.ndarray, lr: np.ndarray | None,
                          sensor_model: SensorModel | None,
                          config: MetricConfig | None = None) -> dict[str, float]:
    """Every local metric of one clip, as a flat ``{name: value}`` dict (see ``METRICS``).

    Args:
        sr: SR radiance ``(H, W)`` or ``(1, H, W)``, nW·cm⁻²·sr⁻¹ (de-normalised).
        hr: HR reference radiance, same shape.
        lr: the LR input ``(H/r, W/r)``; with ``sensor_model`` it enables the ``lrc_*`` metrics.
        sensor_model: the store's sensor model (``attrs["deeplight"]["sensor_model"]``).
        config: ranges and switches (default :class:`MetricConfig`).
    """
    cfg = config or MetricConfig()
    out = pixel_metrics(sr, hr, cfg)
    if cfg.piqe:
        out["piqe"] = piqe(sr)
    if cfg.gmsd:
        out["gmsd_log"] = gmsd_log(sr, hr, cfg.radiance_range)
    if lr is not None and sensor_model is not None:
        out.update(lr_consistency(sr, lr, sensor_model, cfg))
    return out
