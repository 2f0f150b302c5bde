"""Calibration-aware alignment (CAA): the first module of DeepLightSR.

The paper names the module and its purpose — bridge the *spatial heterogeneity* between the LR NTL
and the daytime auxiliaries (DMO, DEM) and the radiometric inconsistency of the LR sensor — but not
its layers. This implementation (assumed) has two learned parts:

- :class:`RadiometricCalibration`: a local affine correction of the LR NTL in normalised
  (log-radiance) space, ``lr'(p) = (1 + g(p))·lr(p) + b(p)``, with gain and bias maps predicted by
  a small CNN from the LR NTL and the auxiliary features around ``p``. An affine map in log space is
  a power law plus gain in radiance, the usual form of cross-sensor NTL calibration; making it
  local (no image-wide statistics) keeps the model translation-equivariant, so tiled inference
  equals whole-image inference away from tile borders.
- :class:`SpatialAlignment`: a dense flow field (``groups`` flows, deformable-style offset groups)
  predicted from the concatenated NTL and auxiliary features, which warps the auxiliary features
  onto the NTL grid with ``grid_sample``. The flow is predicted once at the LR scale and rescaled to
  warp the auxiliary features at every working scale, so all scales use one consistent warp.

Both predictors end in zero-initialised layers, so the module starts as the identity (no warp,
no calibration) and learns a correction only where it lowers the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeplightmd.errors import ConfigError


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at ``p + flow(p)`` for every pixel ``p`` (bilinear, border padding).

    Args:
        x: ``(B, C, H, W)`` features.
        flow: ``(B, 2, H, W)`` displacement in pixels of ``x``; channel 0 is along the width (x),
            channel 1 along the height (y). If ``x`` is an image ``f`` moved by ``s`` pixels
            (``x(p) = f(p - s)``), then ``flow = s`` gives back ``f``.

    Returns:
        ``(B, C, H, W)`` warped features.
    """
    if flow.shape[0] != x.shape[0] or flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:]:
        raise ConfigError(f"flow must be (B, 2, H, W) matching x {tuple(x.shape)}; "
                          f"got {tuple(flow.shape)}")
    _, _, height, width = x.shape
    ys = torch.arange(height, dtype=x.dtype, device=x.device)
    xs = torch.arange(width, dtype=x.dtype, device=x.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # pixel centres -> [-1, 1] with align_corners=False: u = (2·x + 1) / W - 1
    u = (2 * (grid_x + flow[:, 0]) + 1) / width - 1
    v = (2 * (grid_y + flow[:, 1]) + 1) / height - 1
    grid = torch.stack((u, v), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def resize_flow(flow: torch.Tensor, scale: int) -> torch.Tensor:
    """A flow in LR pixels brought to a grid ``scale`` times finer (values times ``scale``)."""
    if scale == 1:
        return flow
    return scale * F.interpolate(flow, scale_factor=scale, mode="bilinear", align_corners=False)


class RadiometricCalibration(nn.Module):
    """Local affine calibration of the LR NTL: gain and bias *maps* predicted by a small CNN.

    ``lr'(p) = (1 + g(p))·lr(p) + b(p)`` with ``(g, b) = CNN([lr, aux_feat])`` (two 3×3 convs and a
    zero-initialised 3×3 output conv, all at the LR scale). The predictor is a convolution, so the
    calibration is translation-equivariant and depends only on a 3-pixel neighbourhood: a pixel
    is calibrated identically whether it lies in a 16² training crop, a 32² inference tile or a
    whole mosaic (away from the borders of each), which global image statistics could not give.

    Args:
        aux_channels: channels of the auxiliary features at the LR scale (0: NTL-only calibration).
        hidden: hidden channels of the predictor.
    """

    def __init__(self, aux_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.predictor = nn.Sequential(
            nn.Conv2d(1 + aux_channels, hidden, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )
        nn.init.zeros_(self.predictor[-1].weight)
        nn.init.zeros_(self.predictor[-1].bias)

    def forward(self, lr: torch.Tensor, aux_feat: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Calibrate ``lr (B, 1, h, w)``; return ``(calibrated, gain, bias)`` maps, same shape."""
        features = lr if aux_feat is None else torch.cat((lr, aux_feat), dim=1)
        gain, bias = self.predictor(features).split(1, dim=1)
        return lr * (1 + gain) + bias, gain, bias


class SpatialAlignment(nn.Module):
    """Warp auxiliary features onto the NTL features with a predicted flow field.

    The auxiliary channels are split into ``groups`` offset groups, each warped by its own flow
    (``groups=1`` is flow-based alignment; more groups add the offset diversity of deformable
    alignment, Chan et al. 2021).
    """

    def __init__(self, main_channels: int, aux_channels: int, hidden: int = 16,
                 groups: int = 1) -> None:
        super().__init__()
        if groups < 1:
            raise ConfigError(f"alignment groups must be >= 1, got {groups}")
        self.groups = groups
        self.estimator = nn.Sequential(
            nn.Conv2d(main_channels + aux_channels, hidden, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 2 * groups, 3, padding=1),
        )
        nn.init.zeros_(self.estimator[-1].weight)
        nn.init.zeros_(self.estimator[-1].bias)

    def estimate_flow(self, main_feat: torch.Tensor, aux_feat: torch.Tensor) -> torch.Tensor:
        """Flow ``(B, 2·groups, h, w)`` in pixels of the main (LR) grid."""
        return self.estimator(torch.cat((main_feat, aux_feat), dim=1))

    def warp(self, aux_feat: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Warp ``aux_feat`` (at any scale ``s`` times the flow's grid) group by group."""
        scale = aux_feat.shape[-1] // flow.shape[-1]
        flow = resize_flow(flow, scale)
        batch, channels, height, width = aux_feat.shape
        if channels % self.groups:
            raise ConfigError(f"{channels} auxiliary channels do not split into "
                              f"{self.groups} alignment groups")
        grouped = aux_feat.reshape(batch * self.groups, channels // self.groups, height, width)
        grouped_flow = flow.reshape(batch * self.groups, 2, height, width)
        return flow_warp(grouped, grouped_flow).reshape(batch, channels, height, width)

    def forward(self, main_feat: torch.Tensor, aux_feat: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(aligned aux_feat, flow)`` at the main features' scale."""
        flow = self.estimate_flow(main_feat, aux_feat)
        return self.warp(aux_feat, flow), flow


__all__ = ["RadiometricCalibration", "SpatialAlignment", "flow_warp", "resize_flow"]
