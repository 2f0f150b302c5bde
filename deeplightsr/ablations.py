"""Ablations of DeepLightSR, each registered as its own method (one leaderboard row each).

Every variant is the full :class:`~deeplightsr.method.DeepLightSR` with one part removed:

=========================  ==================================================================
``deeplightsr-noalign``    no calibration-aware alignment (no warp, no radiometric calibration)
``deeplightsr-noisp``      no ISP term in the loss (``α = 1``); ISP is not read at all
``deeplightsr-single``     one output head and one L1 term at ×8 (no multiscale supervision)
``deeplightsr-nodmo``      auxiliaries = DEM only (DMO is never read)
``deeplightsr-nodem``      auxiliaries = DMO only (DEM is never read)
``deeplightsr-conserve``   mass-conserving output heads instead of free residual ones
``deeplightsr-nokeep``     no light keeping: the outputs are the free heads' (the paper's literal
                           formulation; the default keeps the intercalibrated LR light)
=========================  ==================================================================
"""

from __future__ import annotations

from typing import Any, ClassVar

from benchmarks.registry import register_method
from deeplightsr.method import DeepLightSR


@register_method("deeplightsr-noalign")
class DeepLightSRNoAlign(DeepLightSR):
    """DeepLightSR without the calibration-aware alignment module."""

    description = "DeepLightSR ablation: no calibration-aware alignment (no warp, no calibration)"
    ablation: ClassVar[dict[str, Any]] = {"align": False, "calibrate": False}


@register_method("deeplightsr-noisp")
class DeepLightSRNoISP(DeepLightSR):
    """DeepLightSR trained without the ISP (impervious surface) BCE term."""

    description = "DeepLightSR ablation: no ISP loss term (alpha = 1)"
    targets: ClassVar[tuple[str, ...]] = ("hr_ntl",)
    ablation: ClassVar[dict[str, Any]] = {"alpha": 1.0}


@register_method("deeplightsr-single")
class DeepLightSRSingleScale(DeepLightSR):
    """DeepLightSR with a single ×8 output and loss term."""

    description = "DeepLightSR ablation: single-scale x8 output and loss"
    ablation: ClassVar[dict[str, Any]] = {"multiscale": False, "betas": [1.0]}


@register_method("deeplightsr-nodmo")
class DeepLightSRNoDMO(DeepLightSR):
    """DeepLightSR with the DEM as the only auxiliary input."""

    description = "DeepLightSR ablation: no DMO input (DEM only)"
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dem")
    aux_modalities: ClassVar[tuple[str, ...]] = ("dem",)


@register_method("deeplightsr-nodem")
class DeepLightSRNoDEM(DeepLightSR):
    """DeepLightSR with the DMO as the only auxiliary input."""

    description = "DeepLightSR ablation: no DEM input (DMO only)"
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo")
    aux_modalities: ClassVar[tuple[str, ...]] = ("dmo",)


@register_method("deeplightsr-conserve")
class DeepLightSRConserve(DeepLightSR):
    """DeepLightSR whose output heads conserve the calibrated LR radiance of every LR pixel."""

    description = ("DeepLightSR variant: mass-conserving heads (each output averages, per LR "
                   "pixel, to the calibrated LR radiance)")
    ablation: ClassVar[dict[str, Any]] = {"conserve": True}


@register_method("deeplightsr-nokeep")
class DeepLightSRNoKeep(DeepLightSR):
    """DeepLightSR whose outputs are the free residual heads' (no LR→HR intercalibration)."""

    description = ("DeepLightSR ablation: no light keeping (outputs of the free residual heads, "
                   "no LR-to-HR intercalibration)")
    ablation: ClassVar[dict[str, Any]] = {"keep_light": False}


ABLATIONS = (DeepLightSRNoAlign, DeepLightSRNoISP, DeepLightSRSingleScale, DeepLightSRNoDMO,
             DeepLightSRNoDEM, DeepLightSRConserve, DeepLightSRNoKeep)

__all__ = [
    "ABLATIONS",
    "DeepLightSRConserve",
    "DeepLightSRNoAlign",
    "DeepLightSRNoDEM",
    "DeepLightSRNoDMO",
    "DeepLightSRNoISP",
    "DeepLightSRNoKeep",
    "DeepLightSRSingleScale",
]
