"""Spatial train/val/test split on the clip lattice.

Rules:

* Only eligible clips are used (QA passed, not touching a held-out region).
* ``test`` then ``val`` are drawn as compact square blocks of ``block × block`` clips. A block is
  chosen greedily and lexicographically: most usable clips first (at most the number still
  needed), then the fewest eligible clips lost to its buffer, then a seeded random tie-break.
* Clips of different splits are at least ``buffer + 1`` clips apart (Chebyshev distance on the
  lattice), so no clip of one split touches a clip of another split when ``buffer >= 1``.
* ``train`` takes a seeded random subset of what remains outside every buffer.
* Counts are exact when enough clips exist; otherwise ``on_shortfall: ratio`` falls back to 8:1:1
  of what exists (with a warning) and ``on_shortfall: error`` raises :class:`ConfigError`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deeplightmd.builder.manifest import SplitSpec
from deeplightmd.errors import ConfigError


@dataclass(frozen=True)
class SplitResult:
    """Clip positions ``(row, col)`` per split, each sorted by row then column."""

    train: list[tuple[int, int]]
    val: list[tuple[int, int]]
    test: list[tuple[int, int]]

    def counts(self) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}``."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` cells in Chebyshev distance."""
    if radius <= 0:
        return mask.copy()
    return ndimage.binary_dilation(mask, structure=np.ones((2 * radius + 1,) * 2, dtype=bool))


def _box_sum(a: np.ndarray, size: int) -> np.ndarray:
    """Sum over every ``size × size`` window, indexed by the window's top-left cell."""
    h, w = a.shape
    p = np.zeros((h + size, w + size), dtype=np.int64)
    p[:h, :w] = a
    c = np.pad(p.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return (c[size:size + h, size:size + w] - c[:h, size:size + w]
            - c[size:size + h, :w] + c[:h, :w])


def _draw_blocks(free: np.ndarray, eligible: np.ndarray, n: int, block: int, buffer: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Choose ``n`` clips from ``free`` in compact blocks; returns their mask."""
    chosen = np.zeros_like(free)
    free = free.copy()
    while chosen.sum() < n:
        need = n - int(chosen.sum())
        usable = _box_sum(free.astype(np.int64), block)
        if usable.max() == 0:
            break
        halo = _box_sum(np.pad(eligible & free, buffer).astype(np.int64), block + 2 * buffer)
        lost = halo[:free.shape[0], :free.shape[1]] - usable
        gain = np.where(usable > 0, np.minimum(usable, need), -1)
        # lexicographic: most usable clips, then fewest lost, then the seeded random tie-break
        order = np.lexsort((rng.random(usable.shape).ravel(), -lost.ravel(), gain.ravel()))
        r, c = np.unravel_index(int(order[-1]), usable.shape)
        cells = [(i, j) for i in range(r, min(r + block, free.shape[0]))
                 for j in range(c, min(c + block, free.shape[1])) if free[i, j]]
        for i, j in cells[:need]:
            chosen[i, j] = True
        free &= ~chosen  # clips of one split may touch; only other splits keep the buffer
    return chosen


def _assign(eligible: np.ndarray, counts: dict[str, int], spec: SplitSpec,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    block = spec.block or max(1, math.ceil(math.sqrt(max(counts["val"], counts["test"], 1) / 2)))
    taken: dict[str, np.ndarray] = {}
    blocked = np.zeros_like(eligible)
    for name in ("test", "val"):
        free = eligible & ~blocked
        taken[name] = _draw_blocks(free, eligible, counts[name], block, spec.buffer, rng)
        blocked |= dilate(taken[name], spec.buffer)
    free = np.argwhere(eligible & ~blocked)
    pick = rng.permutation(len(free))[:counts["train"]]
    train = np.zeros_like(eligible)
    train[tuple(free[pick].T)] = True
    taken["train"] = train
    return taken


def split_clips(eligible: list[tuple[int, int]], shape: tuple[int, int], spec: SplitSpec,
                seed: int) -> SplitResult:
    """Assign eligible clips to train/val/test (see the module docstring for the rules)."""
    mask = np.zeros(shape, dtype=bool)
    for r, c in eligible:
        mask[r, c] = True
    want = {"train": spec.train, "val": spec.val, "test": spec.test}
    taken = _assign(mask, want, spec, np.random.default_rng(seed))
    got = {k: int(v.sum()) for k, v in taken.items()}
    if got != want:
        if spec.on_shortfall == "error":
            raise ConfigError(f"too few clips for the requested split counts {want}: the "
                              f"{len(eligible)} eligible clips give at most {got} with a "
                              f"{spec.buffer}-clip buffer; lower splits.* or set "
                              "on_shortfall: ratio")
        total = sum(got.values())
        while total > 0:  # shrink the 8:1:1 target (5 % a step) until the buffers allow it
            n_vt = max(1, round(total / 10))
            want = {"train": max(1, total - 2 * n_vt), "val": n_vt, "test": n_vt}
            taken = _assign(mask, want, spec, np.random.default_rng(seed))
            got = {k: int(v.sum()) for k, v in taken.items()}
            if got == want:
                break
            total = int(total * 0.95)
        if got != want:  # even 1:1:1 does not fit
            raise ConfigError(f"too few clips to split: {len(eligible)} eligible clips, "
                              f"cannot place an 8:1:1 split with a {spec.buffer}-clip buffer")
        warnings.warn(f"only {len(eligible)} eligible clips: using 8:1:1 counts {got} instead "
                      f"of the requested {dict(train=spec.train, val=spec.val, test=spec.test)}",
                      stacklevel=2)
    as_list = {k: [(int(r), int(c)) for r, c in np.argwhere(v)] for k, v in taken.items()}
    return SplitResult(**as_list)
