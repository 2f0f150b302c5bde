"""Auxiliary-embedded refinement: the third module of DeepLightSR.

The paper upsamples the fused features progressively, embeds the auxiliary information again
while refining, and supervises *multiscale outputs*. The scales are not published; ×2, ×4 and ×8
are assumed (one ×2 step per stage, the usual progressive design for ×8). Each
:class:`RefinementStage` is: sub-pixel ×2 upsampling (conv + ``pixel_shuffle``), an
:class:`AuxiliaryModulation` that embeds the aligned auxiliary features of that scale as a spatial
feature transform ``x·(1 + γ(aux)) + β(aux)`` (assumed; SFT, Wang et al. 2018), and a residual
block. A stage with an output head predicts a residual added to the calibrated LR NTL upsampled
bilinearly to that scale, so every output is an NTL image in normalised space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeplightsr.fusion import ResidualBlock


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
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], aux_channels: tuple[int, ...],
                 multiscale: bool = True) -> None:
        super().__init__()
        ins = (in_channels, *channels[:-1])
        last = len(channels) - 1
        self.stages = nn.ModuleList(
            RefinementStage(c_in, c_out, c_aux, with_head=multiscale or i == last)
            for i, (c_in, c_out, c_aux) in enumerate(zip(ins, channels, aux_channels, strict=True)))

    def forward(self, feat: torch.Tensor, aux: list[torch.Tensor], lr: torch.Tensor
                ) -> list[torch.Tensor]:
        """Outputs (coarse to fine) from LR features, per-stage aux features and the LR NTL."""
        outputs = []
        for stage, aux_s in zip(self.stages, aux, strict=True):
            feat = stage(feat, aux_s)
            if stage.head is not None:
                base = F.interpolate(lr, size=feat.shape[-2:], mode="bilinear",
                                     align_corners=False)
                outputs.append(base + stage.head(feat))
        return outputs


__all__ = ["AuxiliaryEmbeddedRefinement", "AuxiliaryModulation", "RefinementStage"]
