"""Multi-modality SR baselines: guided filter upsampling, DJF and an early-fusion EDSR.

All read the daytime modalities at HR resolution from the batch (``dmo (B,7,H,W)``, ``dem
(B,1,H,W)``, normalised) next to the LR NTL. DMO band order is assumed to be Landsat-8 OLI bands
1–7 (coastal, blue, green, red, NIR, SWIR1, SWIR2), as documented in the store format.

- ``guided-filter``: He et al. (2013) guided filter, not trainable: the radiance-space bicubic
  upsampling of the LR NTL (in normalised log space) is filtered with a DMO-derived guide.
- ``djf``: Deep Joint Image Filtering (Li et al. 2016): a target CNN on the bicubic-upsampled NTL
  and a guidance CNN on DMO + DEM, fused by a third CNN; predicts a residual over bicubic.
- ``fusion-edsr``: early fusion: DMO and DEM are brought to the LR grid by space-to-depth
  (``8 × 64`` channels), embedded by a 1×1 conv, concatenated with the LR NTL and fed to EDSR.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from baselines._common import (
    hparams_for_budget,
    require,
    space_to_depth,
    spectral_indices,
    upsample,
    upsample_radiance,
)
from baselines.single_modality import EDSRNet, SRNetworkMethod
from benchmarks.method import Batch, Method, MethodContext
from benchmarks.registry import register_method
from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer

GUIDES = ("ndbi", "urban", "brightness")


# ------------------------------------------------------------------------------------------------
# guided filter


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2r+1)²`` window around each pixel (windows truncated at the borders)."""
    return nn.functional.avg_pool2d(
        x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False
    )


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """He et al. guided filter: ``q = mean(a)·I + mean(b)`` with local linear coefficients.

    ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) - a·mean(I)`` over ``(2r+1)²`` windows.
    ``guide`` and ``src`` are ``(B, 1, H, W)``.
    """
    mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


def dmo_guide(dmo: torch.Tensor, kind: str, normalizer: Normalizer) -> torch.Tensor:
    """A one-band guide ``(B, 1, H, W)`` in ``[0, 1]`` (per-sample min-max) from normalised DMO.

    ``ndbi``: normalised difference built-up index (SWIR1, NIR); ``urban``: ``(NDBI - NDVI)/2``;
    ``brightness``: mean visible reflectance (blue, green, red).
    """
    reflectance = normalizer.denormalize("dmo", dmo)
    if kind == "brightness":
        g = reflectance[:, 1:4].mean(dim=1, keepdim=True)
    else:
        idx = spectral_indices(reflectance)
        g = idx[:, 1:2] if kind == "ndbi" else (idx[:, 1:2] - idx[:, 0:1]) / 2
    lo = g.amin(dim=(-2, -1), keepdim=True)
    hi = g.amax(dim=(-2, -1), keepdim=True)
    return (g - lo) / torch.clamp(hi - lo, min=1e-6)


@register_method("guided-filter")
class GuidedFilterUpsampling(Method):
    """Guided filter upsampling (He et al. 2013) of the bicubic NTL with a DMO built-up guide.

    Filtering happens in normalised (log1p) space, where lit areas span a moderate range; the
    result is clamped to radiance ≥ 0. Radius is in HR pixels.
    """

    family = "multi-modality"
    description = "guided filter (He et al.) of bicubic NTL, guide = DMO built-up index"
    citation = "He, K., Sun, J., Tang, X. (2013). Guided image filtering. IEEE TPAMI 35(6)."
    inputs = ("lr_ntl", "dmo")

    @classmethod
    def default_hparams(cls, budget: str) -> dict[str, Any]:
        params = {"radius": 8, "eps": 1e-2, "guide": "ndbi"}
        return hparams_for_budget("guided-filter", {"small": params, "paper": params}, budget)

    def __init__(self, context: MethodContext | None = None, **hparams: Any) -> None:
        super().__init__(context, **hparams)
        if self.hparams["guide"] not in GUIDES:
            raise ConfigError(
                f"guided-filter guide must be one of {list(GUIDES)}, got {self.hparams['guide']!r}"
            )
        if int(self.hparams["radius"]) < 1 or float(self.hparams["eps"]) <= 0:
            raise ConfigError(
                f"guided-filter needs radius >= 1 and eps > 0, got radius "
                f"{self.hparams['radius']} and eps {self.hparams['eps']}"
            )

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        require(batch, self.inputs, self.name)
        norm = self.context.normalizer
        src = upsample_radiance(batch["lr_ntl"], self.context.ratio, "bicubic", norm)
        guide = dmo_guide(batch["dmo"].to(src.dtype), self.hparams["guide"], norm)
        out = guided_filter(guide, src, int(self.hparams["radius"]), float(self.hparams["eps"]))
        zero = norm.normalize("hr_ntl", torch.zeros((), dtype=out.dtype))
        return torch.clamp(out, min=float(zero))


# ------------------------------------------------------------------------------------------------
# DJF


def _cnn3(
    c_in: int, feats: tuple[int, int], kernels: tuple[int, int, int], c_out: int
) -> nn.Sequential:
    k1, k2, k3 = kernels
    return nn.Sequential(
        nn.Conv2d(c_in, feats[0], k1, padding=k1 // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(feats[0], feats[1], k2, padding=k2 // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(feats[1], c_out, k3, padding=k3 // 2),
    )


class DJFNet(nn.Module):
    """DJF: CNN_T(target) ‖ CNN_G(guidance) → CNN_F → HR output (each CNN: 3 conv layers)."""

    def __init__(
        self,
        ratio: int,
        guide_channels: int = 8,
        branch_feats: tuple[int, int] = (96, 48),
        fusion_feats: tuple[int, int] = (64, 32),
        kernels: tuple[int, int, int] = (9, 1, 5),
    ) -> None:
        super().__init__()
        self.ratio = ratio
        self.cnn_t = _cnn3(1, branch_feats, kernels, 1)
        self.cnn_g = _cnn3(guide_channels, branch_feats, kernels, 1)
        self.cnn_f = _cnn3(2, fusion_feats, kernels, 1)

    def forward(self, lr: torch.Tensor, dmo: torch.Tensor, dem: torch.Tensor) -> torch.Tensor:
        target = upsample(lr, self.ratio, "bicubic")
        guide = torch.cat([dmo, dem], dim=1)
        return self.cnn_f(torch.cat([self.cnn_t(target), self.cnn_g(guide)], dim=1))


class GuidedNetworkMethod(SRNetworkMethod):
    """A learned method reading ``lr_ntl``, ``dmo`` and ``dem``."""

    family: ClassVar[str] = "multi-modality"
    inputs: ClassVar[tuple[str, ...]] = ("lr_ntl", "dmo", "dem")

    def forward(self, batch: Batch) -> torch.Tensor:
        require(batch, self.inputs, self.name)
        return self.network(batch["lr_ntl"], batch["dmo"], batch["dem"])


@register_method("djf")
class DJF(GuidedNetworkMethod):
    """Deep Joint Image Filtering (Li et al. 2016), guidance = DMO (7 bands) + DEM.

    The paper's CNN_T/CNN_G (96-48-1 filters, 9-1-5 kernels) and CNN_F (64-32-1); the target branch
    sees the bicubic-upsampled NTL and the output is a residual over it (as in DJF's
    journal version, Li et al. 2019, TPAMI).
    """

    description = "Deep Joint Filtering: NTL and DMO+DEM CNN branches fused by a CNN"
    citation = (
        "Li, Y., Huang, J.-B., Ahuja, N., Yang, M.-H. (2016). Deep joint image filtering. ECCV."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "branch_feats": (16, 8),
            "fusion_feats": (16, 8),
            "kernels": (9, 1, 5),
            "residual": True,
        },
        "paper": {
            "branch_feats": (96, 48),
            "fusion_feats": (64, 32),
            "kernels": (9, 1, 5),
            "residual": True,
        },
    }

    def build_body(self) -> nn.Module:
        p = self.body_hparams()
        return DJFNet(
            self.context.ratio,
            8,
            tuple(p["branch_feats"]),
            tuple(p["fusion_feats"]),
            tuple(p["kernels"]),
        )


# ------------------------------------------------------------------------------------------------
# early-fusion EDSR


class FusionEDSRNet(nn.Module):
    """EDSR on ``[LR NTL, embed(space_to_depth([DMO, DEM]))]`` at the LR grid."""

    def __init__(
        self,
        ratio: int,
        aux_feats: int = 32,
        n_feats: int = 64,
        n_resblocks: int = 16,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.ratio = ratio
        self.aux_embed = nn.Sequential(
            nn.Conv2d(8 * ratio * ratio, aux_feats, 1), nn.ReLU(inplace=True)
        )
        self.edsr = EDSRNet(ratio, 1 + aux_feats, n_feats, n_resblocks, res_scale)

    def forward(self, lr: torch.Tensor, dmo: torch.Tensor, dem: torch.Tensor) -> torch.Tensor:
        aux = space_to_depth(torch.cat([dmo, dem], dim=1), self.ratio)
        return self.edsr(torch.cat([lr, self.aux_embed(aux)], dim=1))


@register_method("fusion-edsr")
class FusionEDSR(GuidedNetworkMethod):
    """Early-fusion EDSR: DMO + DEM space-to-depth to the LR grid, concatenated with LR NTL."""

    description = "early-fusion EDSR: LR NTL + space-to-depth DMO/DEM"
    citation = (
        "Lim, B., Son, S., Kim, H., Nah, S., Lee, K. M. (2017). Enhanced deep residual "
        "networks for single image super-resolution. CVPRW."
    )
    HPARAMS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "aux_feats": 16,
            "n_feats": 32,
            "n_resblocks": 4,
            "res_scale": 1.0,
            "residual": True,
        },
        "paper": {
            "aux_feats": 64,
            "n_feats": 256,
            "n_resblocks": 32,
            "res_scale": 0.1,
            "residual": True,
        },
    }

    def build_body(self) -> nn.Module:
        return FusionEDSRNet(self.context.ratio, **self.body_hparams())


__all__ = ["DJF", "FusionEDSR", "GuidedFilterUpsampling", "box_mean", "dmo_guide", "guided_filter"]
