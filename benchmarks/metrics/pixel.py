"""Full-reference pixel metrics: PSNR, SSIM, RMSE and MAE, on radiance and on log1p radiance.

Inputs are radiance in nW·cm⁻²·sr⁻¹, ``(H, W)`` or ``(1, H, W)``. Conventions (docs/metrics.md):

* RMSE and MAE use the raw values (no clipping): they are physical errors without a data range.
* PSNR and SSIM are defined relative to a data range, so both images are first clipped to
  ``[0, R]`` and ``data_range = R`` (``R = MetricConfig.radiance_range``).
* Log space is ``log1p(clip(x, 0, R))`` for PSNR/SSIM (range ``log1p(R)``) and
  ``log1p(max(x, 0))`` for RMSE/MAE.
* An optional boolean ``mask`` restricts every metric to the selected pixels (regional metrics).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from benchmarks.metrics._arrays import MetricInputError, as_mask, as_pair
from benchmarks.metrics.config import MetricConfig

#: SSIM settings of Wang et al. (2004): 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_WIN = 11


def check_data_range(data_range: float) -> None:
    """Raise :class:`MetricInputError` unless ``data_range`` is a finite number > 0."""
    if not (np.isfinite(data_range) and data_range > 0):
        raise MetricInputError(f"data_range must be a finite number > 0, got {data_range}")


def mse(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the (masked) pixels."""
    a, b = as_pair(sr, hr)
    m = as_mask(mask, a.shape)
    return float(np.mean((a[m] - b[m]) ** 2))


def rmse(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root-mean-square error ``sqrt(mean((sr - hr)²))``, in the units of the inputs."""
    return float(np.sqrt(mse(sr, hr, mask)))


def mae(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error ``mean(|sr - hr|)``, in the units of the inputs."""
    a, b = as_pair(sr, hr)
    m = as_mask(mask, a.shape)
    return float(np.mean(np.abs(a[m] - b[m])))


def psnr(sr: np.ndarray, hr: np.ndarray, data_range: float, mask: np.ndarray | None = None,
         max_db: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10·log10(data_range² / MSE)`` in dB.

    The images are used as given (clip them to ``[0, data_range]`` first, as
    :func:`pixel_metrics` does). ``MSE = 0`` gives ``inf``, or ``max_db`` when set; any value is
    capped at ``max_db`` when set. A ``data_range`` that is not finite and > 0 is an error.
    """
    check_data_range(data_range)
    err = mse(sr, hr, mask)
    value = float("inf") if err == 0 else 10.0 * np.log10(data_range**2 / err)
    return float(min(value, max_db)) if max_db is not None else float(value)


def ssim(sr: np.ndarray, hr: np.ndarray, data_range: float,
         mask: np.ndarray | None = None) -> float:
    """Mean structural similarity (Wang et al. 2004) with an explicit ``data_range``.

    Uses :func:`skimage.metrics.structural_similarity` with Gaussian weights (σ = 1.5, 11×11),
    population covariances and K1 = 0.01, K2 = 0.03. The SSIM map is averaged over the pixels at
    least 5 px from the image border (as skimage does) and, with ``mask``, inside the mask.
    A ``data_range`` that is not finite and > 0, or a mask with no pixel 5 px inside the border,
    is an error.
    """
    a, b = as_pair(sr, hr)
    if min(a.shape) < SSIM_WIN:
        raise MetricInputError(f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} pixels, "
                               f"got {a.shape[0]}x{a.shape[1]}")
    check_data_range(data_range)
    m = as_mask(mask, a.shape)
    _, smap = structural_similarity(b, a, data_range=data_range, gaussian_weights=True,
                                    sigma=SSIM_SIGMA, use_sample_covariance=False, full=True)
    pad = (SSIM_WIN - 1) // 2
    interior = np.zeros_like(m)
    interior[pad:-pad, pad:-pad] = True
    sel = m & interior
    if not sel.any():
        raise MetricInputError(f"mask selects no pixel at least {pad} px inside the image border")
    return float(smap[sel].mean())


def log_radiance(x: np.ndarray, upper: float | None = None) -> np.ndarray:
    """``log1p(clip(x, 0, upper))``: the log space of the log metrics (``upper=None``: no cap)."""
    return np.log1p(np.clip(np.asarray(x, dtype=np.float64), 0.0, upper))


def pixel_metrics(sr: np.ndarray, hr: np.ndarray, config: MetricConfig | None = None,
                  mask: np.ndarray | None = None) -> dict[str, float]:
    """PSNR, SSIM, RMSE, MAE on radiance and (``config.log_metrics``) on log1p radiance.

    Returns:
        ``psnr, ssim, rmse, mae`` and, in log space, ``psnr_log, ssim_log, rmse_log, mae_log``.
    """
    cfg = config or MetricConfig()
    a, b = as_pair(sr, hr)
    r = cfg.radiance_range
    ac, bc = np.clip(a, 0.0, r), np.clip(b, 0.0, r)
    out = {
        "psnr": psnr(ac, bc, r, mask, cfg.psnr_cap_db),
        "ssim": ssim(ac, bc, r, mask),
        "rmse": rmse(a, b, mask),
        "mae": mae(a, b, mask),
    }
    if cfg.log_metrics:
        lr_range = float(np.log1p(r))
        al, bl = np.log1p(ac), np.log1p(bc)
        au, bu = log_radiance(a), log_radiance(b)
        out.update({
            "psnr_log": psnr(al, bl, lr_range, mask, cfg.psnr_cap_db),
            "ssim_log": ssim(al, bl, lr_range, mask),
            "rmse_log": rmse(au, bu, mask),
            "mae_log": mae(au, bu, mask),
        })
    return out
