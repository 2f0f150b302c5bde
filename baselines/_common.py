"""Building blocks shared by the baselines (private: the registry does not import it as a method).

- Separable resampling with documented kernels (nearest, bilinear/triangle, Keys cubic, Lanczos),
  written as two dense weight matrices so the result is exact and differentiable.
- Radiance-space interpolation of normalised LR NTL (denormalise → interpolate → clamp ≥ 0 →
  renormalise).
- Block mean / space-to-depth helpers for a ratio-``r`` grid pair.
- Auxiliary features from DMO (Landsat-8 OLI bands 1–7 assumed: coastal, blue, green, red, NIR,
  SWIR1, SWIR2) and DEM.
- The pixel-shuffle upsampler used by EDSR/RCAN (×2 stages, or one ×3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.protocol import BUDGETS
from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer

Kernel = Callable[[np.ndarray], np.ndarray]

# ------------------------------------------------------------------------------------------------
# kernels (argument: distance in source pixels)


def nearest_kernel(x: np.ndarray) -> np.ndarray:
    """Box kernel of width 1: ``1`` on ``[-0.5, 0.5)``."""
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def triangle_kernel(x: np.ndarray) -> np.ndarray:
    """Linear (tent) kernel ``max(0, 1 - |x|)``."""
    return np.clip(1.0 - np.abs(x), 0.0, None)


def keys_cubic_kernel(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys (1981) cubic convolution kernel; ``a = -0.5`` (as PIL, Matlab ``imresize``)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def lanczos_kernel(x: np.ndarray, a: int = 3) -> np.ndarray:
    """Lanczos kernel ``sinc(x)·sinc(x/a)`` on ``|x| < a`` (``a = 3``, as PIL ``LANCZOS``)."""
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


KERNELS: dict[str, tuple[Kernel, float]] = {
    "nearest": (nearest_kernel, 0.5),
    "bilinear": (triangle_kernel, 1.0),
    "bicubic": (keys_cubic_kernel, 2.0),
    "lanczos": (lanczos_kernel, 3.0),
}


def resize_taps(n_in: int, ratio: int, kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights ``(ratio·n_in, K)`` of a 1-D upsampling by ``ratio``.

    Pixel-centre alignment: output pixel ``i`` samples source coordinate ``(i + 0.5)/ratio - 0.5``;
    its ``K = 2·ceil(support)`` taps are the source pixels around it. At the borders, taps outside
    the source are dropped and the remaining weights renormalised to sum to 1 (PIL's
    convention), so a constant image stays constant. Dropped taps get index 0 and weight 0.
    """
    if kernel not in KERNELS:
        raise ConfigError(
            f"unknown interpolation kernel {kernel!r}; expected one of {list(KERNELS)}"
        )
    fn, support = KERNELS[kernel]
    half = math.ceil(support)
    centre = (np.arange(n_in * ratio) + 0.5) / ratio - 0.5
    index = np.floor(centre)[:, None].astype(np.int64) - half + 1 + np.arange(2 * half)[None, :]
    inside = (index >= 0) & (index < n_in)
    weights = np.where(inside, fn(centre[:, None] - index), 0.0)
    return np.where(inside, index, 0), weights / weights.sum(axis=1, keepdims=True)


def resize_matrix(n_in: int, ratio: int, kernel: str) -> np.ndarray:
    """The dense ``(ratio·n_in, n_in)`` matrix of :func:`resize_taps` (for tests and docs)."""
    index, weights = resize_taps(n_in, ratio, kernel)
    matrix = np.zeros((n_in * ratio, n_in))
    np.add.at(matrix, (np.arange(n_in * ratio)[:, None], index), weights)
    return matrix


def _upsample_axis(x: torch.Tensor, ratio: int, kernel: str, dim: int) -> torch.Tensor:
    index, weights = resize_taps(x.shape[dim], ratio, kernel)
    shape = [1] * x.dim()
    shape[dim] = len(index)
    out = None
    for k in range(index.shape[1]):
        w = torch.as_tensor(weights[:, k], dtype=x.dtype, device=x.device).reshape(shape)
        term = x.index_select(dim, torch.as_tensor(index[:, k], device=x.device)) * w
        out = term if out is None else out + term
    return out


def upsample(x: torch.Tensor, ratio: int, kernel: str = "bicubic") -> torch.Tensor:
    """Separable upsampling of ``(..., h, w)`` by ``ratio`` with :func:`resize_taps` weights.

    Memory and time are linear in the output size (at most 6 taps per axis), so whole mosaics
    can be upsampled as well as clips; differentiable.
    """
    return _upsample_axis(_upsample_axis(x, ratio, kernel, x.dim() - 2), ratio, kernel, x.dim() - 1)


def upsample_radiance(
    lr: torch.Tensor, ratio: int, kernel: str, normalizer: Normalizer
) -> torch.Tensor:
    """Interpolate normalised LR NTL in radiance space; return normalised HR NTL.

    Denormalise to radiance, upsample (float64), clamp at 0 (ringing kernels undershoot),
    renormalise.
    """
    radiance = normalizer.denormalize("lr_ntl", lr.double())
    hr = torch.clamp(upsample(radiance, ratio, kernel), min=0.0)
    return normalizer.normalize("hr_ntl", hr).to(lr.dtype)


# ------------------------------------------------------------------------------------------------
# grids


def block_mean(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Mean over ``ratio × ratio`` blocks of ``(B, C, H, W)``."""
    return nn.functional.avg_pool2d(x, ratio)


def block_expand(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Repeat each pixel of ``(..., h, w)`` into a ``ratio × ratio`` block."""
    return x.repeat_interleave(ratio, dim=-2).repeat_interleave(ratio, dim=-1)


def check_grids(lr: torch.Tensor, hr: torch.Tensor, ratio: int, name: str) -> None:
    """Raise :class:`ConfigError` unless ``hr`` is ``ratio`` × the spatial size of ``lr``."""
    want = (lr.shape[-2] * ratio, lr.shape[-1] * ratio)
    if tuple(hr.shape[-2:]) != want:
        raise ConfigError(
            f"{name} must be {want[0]}x{want[1]} (ratio {ratio} x LR "
            f"{lr.shape[-2]}x{lr.shape[-1]}), got {hr.shape[-2]}x{hr.shape[-1]}"
        )


# ------------------------------------------------------------------------------------------------
# auxiliary features (Landsat-8 OLI band order assumed: B1..B7 at indices 0..6)

GREEN, RED, NIR, SWIR1 = 2, 3, 4, 5


def normalized_difference(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``(a - b) / (a + b)``, safe where ``a + b`` is ~0, clipped to ``[-1, 1]``."""
    denom = a + b
    denom = torch.where(denom.abs() < eps, torch.full_like(denom, eps), denom)
    return torch.clamp((a - b) / denom, -1.0, 1.0)


def spectral_indices(dmo_reflectance: torch.Tensor) -> torch.Tensor:
    """NDVI, NDBI and MNDWI ``(B, 3, H, W)`` from reflectance ``(B, 7, H, W)``."""
    b = dmo_reflectance
    ndvi = normalized_difference(b[:, NIR], b[:, RED])
    ndbi = normalized_difference(b[:, SWIR1], b[:, NIR])
    mndwi = normalized_difference(b[:, GREEN], b[:, SWIR1])
    return torch.stack([ndvi, ndbi, mndwi], dim=1)


def slope(dem: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude ``(B, 1, H, W)`` of a DEM per HR pixel (central differences)."""
    padded = nn.functional.pad(dem, (1, 1, 1, 1), mode="replicate")
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    return torch.sqrt(gx * gx + gy * gy)


# ------------------------------------------------------------------------------------------------
# network blocks


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """3×3 convolution with 'same' padding."""
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class ResBlock(nn.Module):
    """EDSR residual block: conv-ReLU-conv, scaled by ``res_scale``, no batch norm."""

    def __init__(self, n_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """EDSR sub-pixel upsampler: ``log2(ratio)`` × (conv → PixelShuffle(2)), or one ×3."""

    def __init__(self, ratio: int, n_feats: int) -> None:
        layers: list[nn.Module] = []
        if ratio >= 1 and ratio & (ratio - 1) == 0:
            for _ in range(int(math.log2(ratio))):
                layers += [conv3x3(n_feats, 4 * n_feats), nn.PixelShuffle(2)]
        elif ratio == 3:
            layers += [conv3x3(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
        else:
            raise ConfigError(f"sub-pixel upsampler supports ratios 2^n and 3, got {ratio}")
        super().__init__(*layers)


class BicubicResidual(nn.Module):
    """Wrap a network ``f`` so that it predicts a residual: ``f(x) + bicubic(x[:, :1])``.

    The bicubic skip is in normalised (log1p) space with the Keys ``a = -0.5`` kernel; a network
    with ``residual=False`` is used as is.
    """

    def __init__(self, net: nn.Module, ratio: int, residual: bool = True) -> None:
        super().__init__()
        self.net = net
        self.ratio = ratio
        self.residual = residual

    def forward(self, lr: torch.Tensor, *aux: torch.Tensor) -> torch.Tensor:
        out = self.net(lr, *aux)
        if self.residual:
            out = out + upsample(lr, self.ratio, "bicubic")
        return out


def space_to_depth(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``(B, C, r·h, r·w) → (B, C·r², h, w)`` (``pixel_unshuffle``)."""
    return nn.functional.pixel_unshuffle(x, ratio)


def require(batch: dict[str, torch.Tensor], names: tuple[str, ...], method: str) -> None:
    """Raise :class:`ConfigError` when the batch lacks a modality the method reads."""
    missing = [n for n in names if n not in batch]
    if missing:
        raise ConfigError(
            f"method {method!r} needs modalities {list(names)}; the batch lacks "
            f"{missing} (has {sorted(batch)})"
        )


def hparams_for_budget(
    method: str, table: dict[str, dict[str, Any]], budget: str
) -> dict[str, Any]:
    """A copy of ``table[budget]``; unknown budgets raise :class:`ConfigError`."""
    if budget not in table:
        raise ConfigError(
            f"unknown budget {budget!r} for method {method!r}; expected one of {list(BUDGETS)}"
        )
    return dict(table[budget])
