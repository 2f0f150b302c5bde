"""Paired geometric augmentations that act on a whole sample dict.

Every image entry of the sample (the store modalities and ``prediction``/``mask`` when present)
gets the *same* flip/rotation, so LR and HR-grid layers stay aligned. ``bounds`` keeps the
footprint of the (unrotated) crop. Randomness comes from torch's global generator, which
:class:`~deeplightmd.access.DeepLightDataset` seeds per sample from ``(seed, epoch, index)``, so
augmentations do not depend on the number of DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deeplightmd.store_format import MODALITY_NAMES

#: sample keys that hold images ``(C, H, W)`` on the LR or HR grid
IMAGE_KEYS = (*MODALITY_NAMES, "prediction", "mask")

Sample = dict[str, Any]


def dihedral(x: torch.Tensor, hflip: bool = False, vflip: bool = False, k: int = 0
             ) -> torch.Tensor:
    """One tensor flipped left-right, then up-down, then rotated ``k`` quarter turns (CCW).

    CPU tensors go through numpy views and a single copy (torch's flip/rot90 copy at every step
    and are slow with several intra-op threads); others use torch ops.
    """
    k %= 4
    if not (hflip or vflip or k):
        return x
    if x.device.type == "cpu" and not x.requires_grad:
        a = x.numpy()
        a = a[..., ::-1] if hflip else a
        a = a[..., ::-1, :] if vflip else a
        return torch.from_numpy(np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1))))
    x = torch.flip(x, dims=(-1,)) if hflip else x
    x = torch.flip(x, dims=(-2,)) if vflip else x
    return torch.rot90(x, k, dims=(-2, -1)).contiguous()


def flip_rotate(sample: Sample, hflip: bool = False, vflip: bool = False, k: int = 0) -> Sample:
    """Flip left-right, then up-down, then rotate by ``k`` quarter turns counter-clockwise.

    Applied to every image entry (last two axes): the keys of :data:`IMAGE_KEYS` and any other
    tensor of 3 or more dimensions (a declared layer, ``(C, H, W)``); other entries are copied
    unchanged.
    """
    out = dict(sample)
    for key, value in sample.items():
        if isinstance(value, torch.Tensor) and (key in IMAGE_KEYS or value.ndim >= 3):
            out[key] = dihedral(value, hflip, vflip, k)
    return out


@dataclass(frozen=True)
class RandomFlipRotate:
    """The 8 dihedral transforms (flips and 90° rotations), drawn with torch's generator.

    Args:
        p_hflip: probability of a left-right flip.
        p_vflip: probability of an up-down flip.
        rotate: draw a rotation by 0, 90, 180 or 270 degrees uniformly.
    """

    p_hflip: float = 0.5
    p_vflip: float = 0.5
    rotate: bool = True

    def __call__(self, sample: Sample) -> Sample:
        draws = torch.rand(2)
        k = int(torch.randint(0, 4, (1,))) if self.rotate else 0
        return flip_rotate(sample, hflip=bool(draws[0] < self.p_hflip),
                           vflip=bool(draws[1] < self.p_vflip), k=k)


__all__ = ["IMAGE_KEYS", "RandomFlipRotate", "dihedral", "flip_rotate"]
