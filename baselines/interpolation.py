"""Interpolation baselines: nearest, bilinear, bicubic (Keys, a = -0.5) and Lanczos (a = 3).

All four interpolate **in radiance space**: the normalised LR NTL is denormalised with
``self.context.normalizer`` (``expm1`` of the log1p z-score), upsampled by ``context.ratio`` with a
separable kernel, clamped at 0 (bicubic and Lanczos ring below zero next to bright pixels) and
renormalised. Interpolating the log values instead would bias the block means of lit pixels.

Kernels (distance ``x`` in LR pixels, pixel-centre alignment, output pixel ``i`` sampling source
coordinate ``(i + 0.5)/ratio - 0.5``):

- ``nearest``: box, ``1`` on ``[-0.5, 0.5)`` (each LR pixel becomes a constant ``ratio²`` block);
- ``bilinear``: tent ``max(0, 1 - |x|)``;
- ``bicubic``: Keys cubic convolution with ``a = -0.5`` (Keys 1981, IEEE TASSP 29(6));
- ``lanczos``: ``sinc(x)·sinc(x/3)`` on ``|x| < 3`` (Duchon 1979).

Borders follow PIL: taps outside the image are dropped and the remaining weights renormalised,
so the output equals PIL ``Image.resize(..., BICUBIC / LANCZOS / BILINEAR / NEAREST)`` on a
float ("F") image to float32 precision everywhere, edges included. scikit-image
``rescale(order=3)`` is *not* a Keys reference: it is cubic B-spline interpolation (prefiltered),
a different kernel, so it differs everywhere, not only at the edges.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from baselines._common import upsample_radiance
from benchmarks.method import Batch, Method
from benchmarks.registry import register_method

KEYS_1981 = (
    "Keys, R. (1981). Cubic convolution interpolation for digital image processing. "
    "IEEE TASSP 29(6)."
)


class InterpolationMethod(Method):
    """Upsample the LR NTL in radiance space with the kernel named by :attr:`kernel`."""

    family: ClassVar[str] = "interpolation"
    kernel: ClassVar[str] = ""

    def predict(self, batch: Batch) -> torch.Tensor:
        return upsample_radiance(
            batch["lr_ntl"], self.context.ratio, self.kernel, self.context.normalizer
        )


@register_method("nearest")
class Nearest(InterpolationMethod):
    """Nearest-neighbour (pixel replication)."""

    description = "nearest-neighbour replication of the LR radiance"
    citation = KEYS_1981
    kernel = "nearest"


@register_method("bilinear")
class Bilinear(InterpolationMethod):
    """Bilinear interpolation (tent kernel)."""

    description = "bilinear interpolation of the LR radiance"
    citation = KEYS_1981
    kernel = "bilinear"


@register_method("bicubic")
class Bicubic(InterpolationMethod):
    """Bicubic interpolation, Keys cubic convolution kernel with ``a = -0.5``."""

    description = "bicubic (Keys a=-0.5) interpolation of the LR radiance"
    citation = KEYS_1981
    kernel = "bicubic"


@register_method("lanczos")
class Lanczos(InterpolationMethod):
    """Lanczos-3 interpolation."""

    description = "Lanczos-3 interpolation of the LR radiance"
    citation = (
        "Duchon, C. E. (1979). Lanczos filtering in one and two dimensions. "
        "J. Appl. Meteorol. 18(8)."
    )
    kernel = "lanczos"
