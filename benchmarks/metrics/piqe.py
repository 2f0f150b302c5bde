"""PIQE, the Perception-based Image Quality Evaluator (no reference; 0–100, lower is better).

Venkatanath N, Praneeth D, Maruthi Chandrasekhar Bh, S. S. Channappayya, S. S. Medasani,
"Blind image quality evaluation using perception based features", NCC 2015,
doi:10.1109/NCC.2015.7084843. This is our own vectorised implementation of the algorithm as
MATLAB's ``piqe`` defines it (the reference that pypiqe and pyiqa also follow):

1. Negative values are set to 0 (radiance); the image is padded symmetrically to a multiple of 16
   and scaled by **its own maximum** to integer grey levels ``round(255·x / max x)``.
2. MSCN coefficients ``(x − μ) / (σ + 1)`` with a 7×7 Gaussian window (σ = 7/6, replicate edges).
3. Non-overlapping 16×16 blocks; a block is *active* when its MSCN variance (n − 1) is > 0.1.
4. An active block has a *noticeable artifact* when any 6-pixel segment of any of its four edges
   has a standard deviation < 0.1, and is *noisy* when ``σ_block > 2·β`` with
   ``β = |σ_block − r| / max(σ_block, r)``, ``r`` = std of the two centre columns / std of the
   surround. (As in the reference, the surround drops columns 8 and 10 (1-based), not 8 and 9.)
5. ``score = 100 · (1 + Σ_active [artifact·(1 − v) + noisy·v]) / (1 + N_active)``, ``v`` the
   block variance.

Flat or dark images have no active block, so their score is 100 (the worst): an all-zero image,
a constant image, or a tile with a few isolated lights on black. Because each image is scaled by
its own maximum, PIQE ignores absolute radiance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from benchmarks.metrics._arrays import as_image

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6
MSCN_SIGMA = 7.0 / 6.0
MSCN_RADIUS = 3  # 7×7 window, as MATLAB's imgaussfilt(., 7/6)


@dataclass(frozen=True)
class PiqeResult:
    """PIQE score and its block masks (``(H, W)`` booleans, as in MATLAB's ``piqe``)."""

    score: float
    activity: np.ndarray
    artifacts: np.ndarray
    noise: np.ndarray


def mscn(gray: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients ``(x − μ) / (σ + 1)``."""
    mu = ndimage.gaussian_filter(gray, MSCN_SIGMA, mode="nearest", radius=MSCN_RADIUS)
    mu2 = ndimage.gaussian_filter(gray * gray, MSCN_SIGMA, mode="nearest", radius=MSCN_RADIUS)
    sigma = np.sqrt(np.abs(mu2 - mu * mu))
    return (gray - mu) / (sigma + 1.0)


def _blocks(x: np.ndarray) -> np.ndarray:
    """``(H, W)`` → ``(H/16, W/16, 16, 16)`` non-overlapping blocks."""
    h, w = x.shape
    return x.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3)


def _artifact_blocks(blocks: np.ndarray) -> np.ndarray:
    """Blocks with a low-variance 6-pixel segment on any edge (blockiness, sudden artifacts)."""
    edges = np.stack([blocks[..., 0, :], blocks[..., :, BLOCK - 1],
                      blocks[..., BLOCK - 1, :], blocks[..., :, 0]], axis=-2)
    segments = sliding_window_view(edges, SEGMENT, axis=-1)  # (..., 4, 11, 6)
    return (segments.std(axis=-1, ddof=1) < IMPAIRED_THRESHOLD).any(axis=(-2, -1))


def _noise_blocks(blocks: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Blocks whose centre/surround deviation ratio reveals Gaussian-like noise."""
    c1 = BLOCK // 2 - 1  # 0-based centre columns 7 and 8
    n = blocks.shape[:2]
    center = blocks[..., :, [c1, c1 + 1]].reshape(*n, -1)
    keep = np.ones(BLOCK, dtype=bool)
    keep[[c1, c1 + 2]] = False  # the reference deletes column 8, then column 9 of the rest
    surround = blocks[..., :, keep].reshape(*n, -1)
    sigma = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = center.std(axis=-1, ddof=1) / surround.std(axis=-1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
        return sigma > 2.0 * beta


def piqe_details(image: np.ndarray) -> PiqeResult:
    """PIQE score with activity, artifact and noise masks of a one-band image.

    Args:
        image: ``(H, W)`` or ``(1, H, W)`` finite values (radiance); negatives count as 0.
    """
    x = np.clip(as_image(image, "image"), 0.0, None)
    h, w = x.shape
    x = np.pad(x, ((0, -h % BLOCK), (0, -w % BLOCK)), mode="symmetric")
    peak = x.max()
    if peak <= 0:
        empty = np.zeros((h, w), dtype=bool)
        return PiqeResult(100.0, empty, empty.copy(), empty.copy())
    blocks = _blocks(mscn(np.round(255.0 * (x / peak))))
    var = blocks.reshape(*blocks.shape[:2], -1).var(axis=-1, ddof=1)
    active = var > ACTIVITY_THRESHOLD
    artifacts = active & _artifact_blocks(blocks)
    noise = active & _noise_blocks(blocks, var)
    distortion = (artifacts * (1.0 - var) + noise * var).sum()
    score = 100.0 * (distortion + 1.0) / (active.sum() + 1.0)

    def to_pixels(flags: np.ndarray) -> np.ndarray:
        return np.kron(flags, np.ones((BLOCK, BLOCK), dtype=bool))[:h, :w]

    return PiqeResult(float(score), to_pixels(active), to_pixels(artifacts), to_pixels(noise))


def piqe(image: np.ndarray) -> float:
    """PIQE score of a one-band image in [0, 100] (lower is better); see :func:`piqe_details`."""
    return piqe_details(image).score
