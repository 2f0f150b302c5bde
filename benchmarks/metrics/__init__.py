"""Benchmark metrics: local (per clip) and regional (per province mosaic), PIQE, GMSD
and statistics.

Entry points: :func:`compute_local_metrics` and :func:`compute_regional_metrics`; settings in
:class:`MetricConfig`; the meaning, unit and direction of every reported name in :data:`METRICS`.
Definitions, formulas and data ranges: docs/metrics.md.
"""

from benchmarks.metrics._arrays import MetricInputError
from benchmarks.metrics.config import METRICS, MetricConfig, MetricInfo
from benchmarks.metrics.consistency import lr_consistency
from benchmarks.metrics.gmsd import gmsd, gmsd_log
from benchmarks.metrics.local import compute_local_metrics
from benchmarks.metrics.piqe import PiqeResult, piqe, piqe_details
from benchmarks.metrics.pixel import mae, pixel_metrics, psnr, rmse, ssim
from benchmarks.metrics.regional import TileGrid, compute_regional_metrics
from benchmarks.metrics.stats import (
    MeanCI,
    WilcoxonResult,
    aggregate,
    bootstrap_ci,
    paired_wilcoxon,
)

__all__ = [
    "METRICS",
    "MeanCI",
    "MetricConfig",
    "MetricInfo",
    "MetricInputError",
    "PiqeResult",
    "TileGrid",
    "WilcoxonResult",
    "aggregate",
    "bootstrap_ci",
    "compute_local_metrics",
    "compute_regional_metrics",
    "gmsd",
    "gmsd_log",
    "lr_consistency",
    "mae",
    "paired_wilcoxon",
    "piqe",
    "piqe_details",
    "pixel_metrics",
    "psnr",
    "rmse",
    "ssim",
]
