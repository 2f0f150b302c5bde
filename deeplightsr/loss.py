"""The DeepLightSR objective (paper formula; the constants are assumed).

.. math::

    L = α · Σ_j β_j · L1(SR_j, HR_j) + (1 − α) · BCE(ISP, σ(SR_m))

- ``SR_j``: the network output at scale ``j`` (×2, ×4, ×8), ``SR_m`` the final (×8) one; all in the
  normalised space of :class:`~deeplightmd.normalize.Normalizer` (z-scored ``log1p`` radiance).
- ``HR_j``: the HR reference brought to scale ``j`` by **area-averaging radiance** (assumed): the
  normalised HR is converted to radiance, averaged over ``(ratio/j)²`` blocks — what a sensor with
  ``ratio/j`` times coarser pixels would integrate — and normalised again. At the final scale the HR
  target is used unchanged. ``pool_space="normalized"`` averages the normalised values instead
  (cheaper; biased low at lit edges because ``log`` is concave).
- The L1 terms are measured in normalised space, the space the harness selects checkpoints in.
- ``σ(SR_m)`` is read literally as the logistic function of the final output: with the defaults
  ``isp_threshold = 0`` and ``isp_temperature = 1`` it is ``σ(SR_m)`` in normalised space, i.e.
  a pixel brighter than the train-split mean log-radiance counts as "lit/impervious" with
  probability > 0.5. ``σ((SR_m − τ)/s)`` with other ``τ, s`` shifts/softens that threshold.
  The BCE is computed from logits (``binary_cross_entropy_with_logits``) for numerical stability.
- ``α`` and ``β_j`` are not published; defaults (assumed): ``α = 0.9`` (the ISP term is a
  regulariser, roughly a tenth of the objective), ``β = (0.2, 0.3, 0.5)`` (weights sum to 1 and grow
  with scale, the final ×8 output — the evaluated one — weighted most).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer

POOL_SPACES = ("radiance", "normalized")


def area_downsample(hr: torch.Tensor, factor: int, normalizer: Normalizer | None,
                    pool_space: str = "radiance") -> torch.Tensor:
    """Normalised HR NTL averaged over ``factor × factor`` blocks (see the module docstring)."""
    if factor == 1:
        return hr
    if pool_space == "normalized" or normalizer is None:
        return F.avg_pool2d(hr, factor)
    radiance = normalizer.denormalize("hr_ntl", hr)
    return normalizer.normalize("hr_ntl", F.avg_pool2d(radiance, factor))


class DeepLightLoss(nn.Module):
    """``α·Σ_j β_j·L1(SR_j, HR_j) + (1 − α)·BCE(ISP, σ((SR_m − τ)/s))``.

    Args:
        alpha: weight of the reconstruction term, in ``[0, 1]`` (1 disables the ISP term).
        betas: one weight per output, coarse to fine (same length as the output list).
        normalizer: converts normalised NTL to radiance for the area averaging.
        isp_threshold: ``τ`` in normalised space.
        isp_temperature: ``s`` (> 0).
        pool_space: ``"radiance"`` or ``"normalized"``: where ``HR_j`` is averaged.
    """

    def __init__(self, alpha: float, betas: Sequence[float], normalizer: Normalizer | None = None,
                 isp_threshold: float = 0.0, isp_temperature: float = 1.0,
                 pool_space: str = "radiance") -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"loss alpha must be in [0, 1], got {alpha}")
        if not betas or any(b < 0 for b in betas):
            raise ConfigError(f"loss betas must be a non-empty list of weights >= 0, got {betas}")
        if isp_temperature <= 0:
            raise ConfigError(f"isp_temperature must be > 0, got {isp_temperature}")
        if pool_space not in POOL_SPACES:
            raise ConfigError(f"pool_space must be one of {list(POOL_SPACES)}, got {pool_space!r}")
        self.alpha = float(alpha)
        self.betas = tuple(float(b) for b in betas)
        self.normalizer = normalizer
        self.isp_threshold = float(isp_threshold)
        self.isp_temperature = float(isp_temperature)
        self.pool_space = pool_space

    def reconstruction(self, outputs: Sequence[torch.Tensor], hr: torch.Tensor) -> torch.Tensor:
        """``Σ_j β_j · L1(SR_j, HR_j)``."""
        if len(outputs) != len(self.betas):
            raise ConfigError(f"{len(outputs)} outputs but {len(self.betas)} loss betas")
        total = hr.new_zeros(())
        for beta, output in zip(self.betas, outputs, strict=True):
            factor = hr.shape[-1] // output.shape[-1]
            if tuple(hr.shape[-2:]) != (factor * output.shape[-2], factor * output.shape[-1]):
                raise ConfigError(f"output {tuple(output.shape[-2:])} is not an integer fraction "
                                  f"of the HR target {tuple(hr.shape[-2:])}")
            target = area_downsample(hr, factor, self.normalizer, self.pool_space)
            total = total + beta * F.l1_loss(output, target)
        return total

    def isp_bce(self, final: torch.Tensor, isp: torch.Tensor) -> torch.Tensor:
        """``BCE(ISP, σ((SR_m − τ)/s))`` (mean over pixels)."""
        logits = (final - self.isp_threshold) / self.isp_temperature
        return F.binary_cross_entropy_with_logits(logits, isp.to(final.dtype))

    def forward(self, outputs: Sequence[torch.Tensor], hr: torch.Tensor,
                isp: torch.Tensor | None = None) -> torch.Tensor:
        """The total loss for multiscale ``outputs`` (coarse to fine) against HR NTL and ISP."""
        loss = self.alpha * self.reconstruction(outputs, hr)
        if self.alpha < 1.0:
            if isp is None:
                raise ConfigError("the DeepLightSR loss with alpha < 1 needs the 'isp' target")
            loss = loss + (1.0 - self.alpha) * self.isp_bce(outputs[-1], isp)
        return loss


__all__ = ["POOL_SPACES", "DeepLightLoss", "area_downsample"]
