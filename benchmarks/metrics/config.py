"""Metric settings (:class:`MetricConfig`) and the catalogue of reported metrics (:data:`METRICS`).

All numbers are documented in docs/metrics.md; the defaults are the benchmark's fixed protocol.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from deeplightmd.errors import ConfigError, reject_unknown


@dataclass(frozen=True)
class MetricConfig:
    """Fixed data ranges and thresholds of the benchmark metrics.

    Attributes:
        radiance_range: ``R`` in nW·cm⁻²·sr⁻¹. PSNR/SSIM on radiance clip both images to
            ``[0, R]`` and use ``data_range = R``; in log space the range is ``log1p(R)``.
            255 lies above the 99.99th percentile of VIIRS VNL v2 annual radiance over Shanghai
            (2022: 241) and clips only saturated cores, flares and ships.
        lit_threshold: radiance (nW·cm⁻²·sr⁻¹) above which a pixel counts as lit (lit-area IoU).
        log_metrics: also report PSNR/SSIM/RMSE/MAE on ``log1p`` radiance.
        psnr_cap_db: PSNR of (near-)identical images is capped here so that means and JSON stay
            finite; ``None`` keeps ``inf``.
        piqe: compute PIQE on the SR image (the only no-reference metric).
        gmsd: compute ``gmsd_log``, GMSD of SR vs HR on log1p radiance (the structure score to
            read next to PIQE: it separates interpolation and learned methods, PIQE often not).
    """

    radiance_range: float = 255.0
    lit_threshold: float = 1.0
    log_metrics: bool = True
    psnr_cap_db: float | None = 100.0
    piqe: bool = True
    gmsd: bool = True

    def __post_init__(self) -> None:
        if not self.radiance_range > 0:
            raise ConfigError(f"radiance_range must be > 0, got {self.radiance_range}")
        if self.lit_threshold < 0:
            raise ConfigError(f"lit_threshold must be >= 0, got {self.lit_threshold}")
        if self.psnr_cap_db is not None and not self.psnr_cap_db > 0:
            raise ConfigError(f"psnr_cap_db must be > 0 or None, got {self.psnr_cap_db}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (stored in results files next to the numbers)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> MetricConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the known ones."""
        reject_unknown(params, (f.name for f in fields(cls)), "metric setting(s)")
        return cls(**params)


Direction = Literal["higher", "lower", "zero", "one"]


@dataclass(frozen=True)
class MetricInfo:
    """What a reported number means: unit, which way is better, and a one-line definition.

    ``direction`` is ``higher`` or ``lower`` (is better), ``zero`` for signed biases whose
    absolute value should be small, or ``one`` for ratios whose ideal value is 1.
    """

    unit: str
    direction: Direction
    description: str


_RAD = "nW·cm⁻²·sr⁻¹"
_PIXEL = {
    "psnr": MetricInfo("dB", "higher", "PSNR on radiance clipped to [0, R], data range R"),
    "ssim": MetricInfo("1", "higher", "SSIM (Gaussian σ=1.5) on radiance clipped to [0, R]"),
    "rmse": MetricInfo(_RAD, "lower", "root-mean-square radiance error (no clipping)"),
    "mae": MetricInfo(_RAD, "lower", "mean absolute radiance error (no clipping)"),
    "psnr_log": MetricInfo("dB", "higher", "PSNR on log1p(clip(x, 0, R)), data range log1p(R)"),
    "ssim_log": MetricInfo("1", "higher", "SSIM on log1p(clip(x, 0, R)), data range log1p(R)"),
    "rmse_log": MetricInfo("log1p(" + _RAD + ")", "lower", "RMSE of log1p(max(x, 0))"),
    "mae_log": MetricInfo("log1p(" + _RAD + ")", "lower", "MAE of log1p(max(x, 0))"),
}

#: Every scalar that compute_local_metrics / compute_regional_metrics can report.
METRICS: dict[str, MetricInfo] = {
    **_PIXEL,
    "piqe": MetricInfo("0-100", "lower",
                       "PIQE of the SR image (no reference; 100 = no active block)"),
    "gmsd_log": MetricInfo("1", "lower", "GMSD (std of gradient-magnitude similarity) of SR vs "
                           "HR on log1p(clip(x, 0, R)) / log1p(R); 0 = same structure"),
    "lrc_rmse": MetricInfo(_RAD, "lower", "RMSE between degrade(SR) and the LR input"),
    "lrc_mae": MetricInfo(_RAD, "lower", "MAE between degrade(SR) and the LR input"),
    "lrc_psnr": MetricInfo("dB", "higher",
                           "PSNR between degrade(SR) and LR, both clipped to [0, R]"),
    "lrc_total_rel_bias": MetricInfo("1", "zero", "(Σ degrade(SR) − Σ LR) / Σ LR"),
    "total_light_rel_error": MetricInfo("1", "zero", "(Σ SR − Σ HR) / Σ HR inside the mask"),
    "lit_iou": MetricInfo("1", "higher", "IoU of SR > T and HR > T inside the mask"),
    "admin_r": MetricInfo("1", "higher", "Pearson r of per-admin-unit light sums, SR vs HR"),
    "admin_r2": MetricInfo("1", "higher", "R² = 1 − SS_res/SS_tot of admin sums (SR predicts HR)"),
    "admin_n": MetricInfo("units", "higher", "number of admin units in the correlation"),
    "seam_ratio": MetricInfo("1", "one", "mean |gradient| across tile edges / elsewhere, "
                             "on SR (1 = seamless)"),
    "seam_ratio_hr": MetricInfo("1", "one", "the same statistic on HR (what a seamless image "
                                "gives at these edges)"),
}
