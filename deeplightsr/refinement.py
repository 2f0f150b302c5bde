"""Auxiliary-embedded refinement: the third module of DeepLightSR.

The paper upsamples the fused features progressively, embeds the auxiliary information again
while refining, and supervises *multiscale outputs*. The scales are not published; ×2, ×4 and ×8
are assumed (one ×2 step per stage, the usual progressive design for ×8). Each
:class:`RefinementStage` is: sub-pixel ×2 upsampling (conv + ``pixel_shuffle``), an
:class:`AuxiliaryModulation` that embeds the aligned auxiliary features of that scale as a spatial
feature transform ``x·(1 + γ(aux)) + β(aux)`` (assumed; SFT, Wang et al. 2018), and a residual
block. A stage with an output head predicts a residual added to the calibrated LR NTL upsampled
bilinearly to that scale, so every output is an NTL image in normalised space.

**Mass-conserving heads** (``conserve=True``; the ``deeplightsr-conserve`` variant): the head
no longer adds a free residual; it predicts how the calibrated LR radiance of each LR pixel is
*distributed* over the ``s × s`` output pixels under it (a softmax over the block, initialised to
the bilinear shape). Every output then averages, block by block, to the calibrated LR radiance:
the network decides *where* the light of an LR pixel goes, the calibration decides *how much*
there is. A free residual trained with L1 losses estimates a (conditional) median, which sits
below the mean for heavy-tailed radiance whose position inside an LR pixel is uncertain, so
totals come out low; the block constraint removes that bias (docs/deeplightsr.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeplightmd.normalize import Normalizer
from deeplightsr.fusion import ResidualBlock


def conserve_block_mass(block_mean: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Radiance at the logits' scale whose ``s × s`` blocks average exactly to ``block_mean``.

    Args:
        block_mean: ``(B, 1, h, w)`` non-negative radiance, one value per block.
        logits: ``(B, 1, s·h, s·w)`` unnormalised log-weights; a softmax over each block.

    Returns:
        ``(B, 1, s·h, s·w)`` radiance ``block_mean · s² · softmax_block(logits)``.
    """
    scale = logits.shape[-1] // block_mean.shape[-1]
    if scale * block_mean.shape[-1] != logits.shape[-1] or \
            scale * block_mean.shape[-2] != logits.shape[-2] or logits.shape[1] != 1:
        raise ValueError(f"logits {tuple(logits.shape)} are not an integer multiple of the "
                         f"blocks {tuple(block_mean.shape)}")
    if scale == 1:
        return block_mean
    weights = F.pixel_unshuffle(logits, scale).softmax(dim=1)
    return F.pixel_shuffle(weights * (block_mean * scale * scale), scale)


#: radiance (nW·cm⁻²·sr⁻¹) added before the log of the bilinear prior of the block weights
PRIOR_FLOOR = 1e-2


class AuxiliaryModulation(nn.Module):
    """Spatial feature transform of the main features conditioned on auxiliary features."""

    def __init__(self, main_channels: int, aux_channels: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Conv2d(aux_channels, main_channels, 3, padding=1),
                                    nn.LeakyReLU(0.1))
        self.scale = nn.Conv2d(main_channels, main_channels, 1)
        self.shift = nn.Conv2d(main_channels, main_channels, 1)

    def forward(self, main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """``main·(1 + γ) + β`` with ``γ, β`` computed from ``aux`` (same spatial size)."""
        cond = self.shared(aux)
        return main * (1 + self.scale(cond)) + self.shift(cond)


class RefinementStage(nn.Module):
    """×2 upsampling, auxiliary embedding, residual refinement and an optional output head."""

    def __init__(self, in_channels: int, out_channels: int, aux_channels: int,
                 with_head: bool) -> None:
        super().__init__()
        self.upsample = nn.Sequential(nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1),
                                      nn.PixelShuffle(2), nn.LeakyReLU(0.1))
        self.embed = AuxiliaryModulation(out_channels, aux_channels)
        self.body = ResidualBlock(out_channels)
        self.head = nn.Conv2d(out_channels, 1, 3, padding=1) if with_head else None

    def forward(self, x: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Refined features at twice the resolution of ``x``."""
        return self.body(self.embed(self.upsample(x), aux))


class AuxiliaryEmbeddedRefinement(nn.Module):
    """Progressive ×2 stages from the LR features to ×``2**len(channels)``; multiscale outputs.

    Args:
        in_channels: channels of the fused LR features.
        channels: main channels of each stage (×2, ×4, ×8 for three stages).
        aux_channels: auxiliary feature channels at each stage's scale.
        multiscale: output heads at every stage (True) or only at the last one (False).
        conserve: mass-conserving heads (see the module docstring); ``ntl`` converts between the
            normalised space and radiance for them.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], aux_channels: tuple[int, ...],
                 multiscale: bool = True, conserve: bool = False,
                 ntl: Normalizer | None = None) -> None:
        super().__init__()
        self.conserve = conserve
        self.ntl = ntl or Normalizer()
        ins = (in_channels, *channels[:-1])
        last = len(channels) - 1
        self.stages = nn.ModuleList(
            RefinementStage(c_in, c_out, c_aux, with_head=multiscale or i == last)
            for i, (c_in, c_out, c_aux) in enumerate(zip(ins, channels, aux_channels, strict=True)))

    def forward(self, feat: torch.Tensor, aux: list[torch.Tensor], lr: torch.Tensor
                ) -> list[torch.Tensor]:
        """Outputs (coarse to fine) from LR features, per-stage aux features and the LR NTL."""
        outputs = []
        block_mean = self.ntl.denormalize("hr_ntl", lr) if self.conserve else None
        for stage, aux_s in zip(self.stages, aux, strict=True):
            feat = stage(feat, aux_s)
            if stage.head is None:
                continue
            if block_mean is None:
                base = F.interpolate(lr, size=feat.shape[-2:], mode="bilinear",
                                     align_corners=False)
                outputs.append(base + stage.head(feat))
                continue
            prior = F.interpolate(block_mean, size=feat.shape[-2:], mode="bilinear",
                                  align_corners=False)
            logits = torch.log(prior + PRIOR_FLOOR) + stage.head(feat)
            outputs.append(self.ntl.normalize("hr_ntl", conserve_block_mass(block_mean, logits)))
        return outputs


__all__ = ["PRIOR_FLOOR", "AuxiliaryEmbeddedRefinement", "AuxiliaryModulation",
           "RefinementStage", "conserve_block_mass"]
