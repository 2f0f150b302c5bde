"""``DeepLightSRNet``: LR NTL + HR auxiliaries (DMO, DEM) → multiscale HR NTL.

::

    aux (B, A, 8h, 8w) ──AuxiliaryEncoder──► a8 (8h) ─s2─► a4 (4h) ─s2─► a2 (2h) ─s2─► a1 (h)
                                                    │                                     │
    lr (B, 1, h, w) ──RadiometricCalibration(lr, a1)──► lr' ──conv──► f (h)               │
                                                                        │                 │
                        SpatialAlignment: flow = F([f, a1]) (LR px) ◄───┴─────────────────┘
                        warp a1, a2, a4, a8 with flow·s  ──► ã1, ã2, ã4, ã8
    f ──AuxToMainFusion(f, ã1)──► g (h)
    g ──AuxiliaryEmbeddedRefinement── stage ×2 (ã2) → SR_2
                                    ─ stage ×4 (ã4) → SR_4
                                    ─ stage ×8 (ã8) → SR_8
                                    (each SR_s = bilinear(lr', s) + head_s)

Everything runs in the normalised space of :class:`deeplightmd.normalize.Normalizer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer
from deeplightsr.alignment import RadiometricCalibration, SpatialAlignment
from deeplightsr.fusion import AuxToMainFusion
from deeplightsr.light import LightKeeper
from deeplightsr.refinement import AuxiliaryEmbeddedRefinement


@dataclass(frozen=True)
class DeepLightSRConfig:
    """Architecture of :class:`DeepLightSRNet` (all sizes assumed; the paper gives none).

    Attributes:
        ratio: HR/LR pixel ratio, a power of two (one refinement stage per ×2).
        aux_in_channels: stacked auxiliary bands (7 DMO + 1 DEM for the full model).
        main_channels: NTL feature channels at the LR scale.
        stage_channels: main channels of the refinement stages, coarse to fine (×2, ×4, ×8).
        aux_channels: auxiliary feature channels at ×1, ×2, ×4, ×8.
        fusion_blocks: auxiliary-to-main fusion blocks at the LR scale.
        align: learn the spatial warp of the auxiliary features.
        calibrate: learn the radiometric calibration of the LR NTL.
        align_groups: offset groups of the warp (1 = one flow field).
        align_hidden: hidden channels of the flow estimator and calibration CNN.
        multiscale: output heads at every scale (else only the final ×ratio output).
        conserve: mass-conserving output heads (each output averages, per LR pixel, to the
            calibrated LR radiance; :mod:`deeplightsr.refinement`).
        keep_light: intercalibrate the LR sensor onto the HR one (running least squares in
            radiance) and rescale every output to carry that light (:mod:`deeplightsr.light`).
        light_sigma: neighbourhood (LR pixels) over which outputs keep the light.
        light_radius: LR pixels around each pixel whose radiance enters its calibrated light
            (0: the pixel alone; :class:`~deeplightsr.light.LightKeeper`).
        ntl_mean, ntl_std: the normalised NTL space (train-split ``log1p`` statistics), needed
            by ``conserve`` to work in radiance.
    """

    ratio: int = 8
    aux_in_channels: int = 8
    main_channels: int = 32
    stage_channels: tuple[int, ...] = (24, 16, 8)
    aux_channels: tuple[int, ...] = (16, 16, 8, 8)
    fusion_blocks: int = 4
    align: bool = True
    calibrate: bool = True
    align_groups: int = 1
    align_hidden: int = 16
    multiscale: bool = True
    conserve: bool = False
    keep_light: bool = False
    light_sigma: float = 0.5
    light_radius: int = 2
    ntl_mean: float = 0.0
    ntl_std: float = 1.0
    stages: int = field(init=False)

    def __post_init__(self) -> None:
        stages = round(math.log2(self.ratio)) if self.ratio >= 2 else 0
        if stages < 1 or 2 ** stages != self.ratio:
            raise ConfigError(f"DeepLightSR needs a power-of-two ratio >= 2, got {self.ratio}")
        object.__setattr__(self, "stages", stages)
        if len(self.stage_channels) != stages or len(self.aux_channels) != stages + 1:
            raise ConfigError(
                f"ratio {self.ratio} needs {stages} stage_channels and {stages + 1} aux_channels; "
                f"got {len(self.stage_channels)} and {len(self.aux_channels)}")
        if self.aux_in_channels < 1:
            raise ConfigError(f"DeepLightSR needs >= 1 auxiliary band, got {self.aux_in_channels}")
        if self.light_sigma < 0:
            raise ConfigError(f"light_sigma must be >= 0 LR pixels, got {self.light_sigma}")
        if self.light_radius < 0:
            raise ConfigError(f"light_radius must be >= 0 LR pixels, got {self.light_radius}")
        if self.align and any(c % self.align_groups for c in self.aux_channels):
            raise ConfigError(f"aux_channels {self.aux_channels} must all be divisible by "
                              f"align_groups={self.align_groups}")

    @property
    def output_scales(self) -> tuple[int, ...]:
        """Upscaling factor of each output, coarse to fine."""
        if not self.multiscale:
            return (self.ratio,)
        return tuple(2 ** (i + 1) for i in range(self.stages))


class AuxiliaryEncoder(nn.Module):
    """HR auxiliaries → feature pyramid at ×1 … ×ratio (a 3×3 conv at HR, then stride-2 convs)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        finest = channels[-1]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, finest, 3, padding=1), nn.LeakyReLU(0.1))
        coarse_to_fine = list(channels)
        downs = []
        for c_in, c_out in zip(coarse_to_fine[:0:-1], coarse_to_fine[-2::-1], strict=True):
            downs.append(nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                                       nn.LeakyReLU(0.1)))
        self.downs = nn.ModuleList(downs)

    def forward(self, aux: torch.Tensor) -> list[torch.Tensor]:
        """Features coarse to fine: ``[×1, ×2, …, ×ratio]``."""
        feats = [self.stem(aux)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats[::-1]


@dataclass
class DeepLightSROutput:
    """Everything one forward pass computes (outputs plus the alignment's internals)."""

    outputs: list[torch.Tensor]
    calibrated_lr: torch.Tensor
    flow: torch.Tensor | None
    gain: torch.Tensor | None
    bias: torch.Tensor | None


class DeepLightSRNet(nn.Module):
    """Calibration-aware alignment → auxiliary-to-main fusion → auxiliary-embedded refinement."""

    def __init__(self, config: DeepLightSRConfig) -> None:
        super().__init__()
        self.config = config
        a1 = config.aux_channels[0]
        self.aux_encoder = AuxiliaryEncoder(config.aux_in_channels, config.aux_channels)
        self.calibration = (RadiometricCalibration(a1, config.align_hidden)
                            if config.calibrate else None)
        self.ntl_head = nn.Conv2d(1, config.main_channels, 3, padding=1)
        self.alignment = (SpatialAlignment(config.main_channels, a1, config.align_hidden,
                                           config.align_groups) if config.align else None)
        self.fusion = AuxToMainFusion(config.main_channels, a1, config.fusion_blocks)
        ntl = Normalizer(ntl_mean=config.ntl_mean, ntl_std=config.ntl_std)
        self.refinement = AuxiliaryEmbeddedRefinement(
            config.main_channels, config.stage_channels, config.aux_channels[1:],
            multiscale=config.multiscale, conserve=config.conserve, ntl=ntl)
        self.light = (LightKeeper(ntl, config.ratio, sigma=config.light_sigma,
                                  radius=config.light_radius)
                      if config.keep_light else None)

    def _check_shapes(self, lr: torch.Tensor, aux: torch.Tensor) -> None:
        ratio = self.config.ratio
        expected = (lr.shape[0], self.config.aux_in_channels,
                    ratio * lr.shape[-2], ratio * lr.shape[-1])
        if lr.ndim != 4 or lr.shape[1] != 1 or tuple(aux.shape) != expected:
            raise ConfigError(f"expected lr (B, 1, h, w) and aux {expected}; "
                              f"got {tuple(lr.shape)} and {tuple(aux.shape)}")

    def forward_details(self, lr: torch.Tensor, aux: torch.Tensor) -> DeepLightSROutput:
        """Full forward pass returning the outputs and the calibration/alignment internals."""
        self._check_shapes(lr, aux)
        aux_feats = self.aux_encoder(aux)
        mass = self.light.mass(lr) if self.light is not None else None
        gain = bias = flow = None
        if self.calibration is not None:
            lr, gain, bias = self.calibration(lr, aux_feats[0])
        feat = self.ntl_head(lr)
        if self.alignment is not None:
            flow = self.alignment.estimate_flow(feat, aux_feats[0])
            aux_feats = [self.alignment.warp(a, flow) for a in aux_feats]
        fused = self.fusion(feat, aux_feats[0])
        outputs = self.refinement(fused, aux_feats[1:], lr)
        if mass is not None:
            outputs = [self.light.keep(o, mass) for o in outputs]  # type: ignore[union-attr]
        return DeepLightSROutput(outputs, lr, flow, gain, bias)

    def forward(self, lr: torch.Tensor, aux: torch.Tensor) -> list[torch.Tensor]:
        """Multiscale outputs, coarse to fine (``config.output_scales``); the last is ×ratio."""
        return self.forward_details(lr, aux).outputs


__all__ = ["AuxiliaryEncoder", "DeepLightSRConfig", "DeepLightSRNet", "DeepLightSROutput"]
