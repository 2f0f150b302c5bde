"""Auxiliary-to-main multi-modality fusion: the second module of DeepLightSR.

The paper fuses the (aligned) auxiliary features *into* the main NTL stream — the NTL stays the
main modality and the daytime data only add to it. The layers are not published; this
implementation (assumed) is a stack of :class:`AuxToMainFusionBlock`: a residual block on the
main features, then a gated injection ``main + g ⊙ W_a(aux)`` where the gate
``g = σ(W_g[main, aux])`` is conditioned on both streams, followed by a per-pixel channel
attention whose weights come from the auxiliary features at that pixel (1×1 convolutions; no
global pooling, so the block is translation-equivariant and a tile is fused exactly as the same
pixels of a whole mosaic). The auxiliary stream is never updated from the main one (one-way,
auxiliary-to-main).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """``x + conv(lrelu(conv(x)))`` (EDSR-style, no batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.body(x)


class AuxToMainFusionBlock(nn.Module):
    """One fusion step: refine the main stream, then inject gated auxiliary features into it."""

    def __init__(self, main_channels: int, aux_channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.main_body = ResidualBlock(main_channels)
        self.inject = nn.Conv2d(aux_channels, main_channels, 3, padding=1)
        self.gate = nn.Conv2d(main_channels + aux_channels, main_channels, 1)
        squeezed = max(main_channels // reduction, 4)
        self.channel_attention = nn.Sequential(
            nn.Conv2d(aux_channels, squeezed, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(squeezed, main_channels, 1), nn.Sigmoid())

    def forward(self, main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Fused main features (same shape as ``main``)."""
        main = self.main_body(main)
        gate = torch.sigmoid(self.gate(torch.cat((main, aux), dim=1)))
        fused = main + gate * self.inject(aux)
        return fused * (2 * self.channel_attention(aux))  # 2·σ: identity-centred scaling


class AuxToMainFusion(nn.Module):
    """``blocks`` fusion steps with a long skip over the main stream."""

    def __init__(self, main_channels: int, aux_channels: int, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(AuxToMainFusionBlock(main_channels, aux_channels)
                                    for _ in range(blocks))
        self.tail = nn.Conv2d(main_channels, main_channels, 3, padding=1)

    def forward(self, main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Fused main features (same shape as ``main``)."""
        x = main
        for block in self.blocks:
            x = block(x, aux)
        return main + self.tail(x)


__all__ = ["AuxToMainFusion", "AuxToMainFusionBlock", "ResidualBlock"]
