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
- **Space of the L1 terms** (assumed; the paper does not say): a mix of the L1 in normalised space
  (z-scored ``log1p``, where dim suburbs weigh as much as city cores) and the L1 on radiance divided
  by a fixed scale ``radiance_scale`` (nW·cm⁻²·sr⁻¹; where bright pixels — and total light —
  dominate): ``L1_j = (1 − w)·|SR_j − HR_j| + w·|r(SR_j) − r(HR_j)| / radiance_scale`` with
  ``r`` = :meth:`Normalizer.denormalize` and ``w = radiance_weight``. ``w = 0`` is the pure
  log-space L1, ``w = 1`` the pure radiance L1. The default is chosen on the demo store's val
  split (docs/deeplightsr.md).
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
        normalizer: converts normalised NTL to radiance for the area averaging and the radiance L1.
        isp_threshold: ``τ`` in normalised space.
        isp_temperature: ``s`` (> 0).
        pool_space: ``"radiance"`` or ``"normalized"``: where ``HR_j`` is averaged.
        radiance_weight: ``w`` in ``[0, 1]``, the share of the radiance L1 in each L1 term.
        radiance_scale: radiance (nW·cm⁻²·sr⁻¹, > 0) the radiance L1 is divided by.
    """

    def __init__(self, alpha: float, betas: Sequence[float], normalizer: Normalizer | None = None,
                 isp_threshold: float = 0.0, isp_temperature: float = 1.0,
                 pool_space: str = "radiance", radiance_weight: float = 0.0,
                 radiance_scale: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"loss alpha must be in [0, 1], got {alpha}")
        if not betas or any(b < 0 for b in betas):
            raise ConfigError(f"loss betas must be a non-empty list of weights >= 0, got {betas}")
        if isp_temperature <= 0:
            raise ConfigError(f"isp_temperature must be > 0, got {isp_temperature}")
        if pool_space not in POOL_SPACES:
            raise ConfigError(f"pool_space must be one of {list(POOL_SPACES)}, got {pool_space!r}")
        if not 0.0 <= radiance_weight <= 1.0:
            raise ConfigError(f"radiance_weight must be in [0, 1], got {radiance_weight}")
        if not radiance_scale > 0:
            raise ConfigError(f"radiance_scale must be > 0, got {radiance_scale}")
        if radiance_weight > 0 and normalizer is None:
            raise ConfigError("a radiance L1 (radiance_weight > 0) needs the normalizer")
        self.alpha = float(alpha)
        self.betas = tuple(float(b) for b in betas)
        self.normalizer = normalizer
        self.isp_threshold = float(isp_threshold)
        self.isp_temperature = float(isp_temperature)
        self.pool_space = pool_space
        self.radiance_weight = float(radiance_weight)
        self.radiance_scale = float(radiance_scale)

    def l1(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(1 − w)·mean|SR − HR| + w·mean|r(SR) − r(HR)| / radiance_scale`` (z inputs)."""
        loss = output.new_zeros(())
        if self.radiance_weight < 1.0:
            loss = loss + (1.0 - self.radiance_weight) * F.l1_loss(output, target)
        if self.radiance_weight > 0.0:
            to_radiance = self.normalizer.denormalize  # type: ignore[union-attr]
            loss = loss + self.radiance_weight / self.radiance_scale * F.l1_loss(
                to_radiance("hr_ntl", output), to_radiance("hr_ntl", target))
        return loss

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
            total = total + beta * self.l1(output, target)
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
