"""Content fingerprint of a store, and the read-back scan that also yields stats and checks.

The fingerprint is ``sha256`` over, in this order: the canonical JSON of the root attrs without
``fingerprint``, ``complete``, ``build`` (times, paths, workers), ``created`` and
``chunk_manifest`` (written after the data); then for each split in
``train, val, test``: the per-clip metadata arrays and one digest per clip over the decoded bytes of
its variables in sorted name order; then for each region (sorted) and grid (``hr``, ``lr``) every
array in sorted name order, chunk by chunk. Decoded bytes are hashed (not compressed ones), so the
fingerprint does not depend on the codec build, and corrupted chunks either fail to decode or change
the digest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from deeplightmd.builder.stats import TrainStats
from deeplightmd.modalities import Modality
from deeplightmd.store_format import REGIONS_GROUP, SPLITS, read_store_attrs, store_modalities

#: root-attr keys left out of the fingerprint
UNHASHED_KEYS = ("fingerprint", "complete", "build", "created", "chunk_manifest")
#: clips per read-back task (stats are merged clip by clip, so this does not change them)
SCAN_BATCH = 16
META_NAMES = ("bounds", "clip_id", "col", "row")


@dataclass
class ScanResult:
    """What a read-back pass over a batch of clips found (one digest and, for train, one stats
    accumulator per clip: merged clip by clip in index order, the float sums do not depend on
    how clips were batched, on the worker count, or on whether a clip was read or just written)."""

    digests: list[bytes] = field(default_factory=list)
    clip_stats: list[TrainStats] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def canonical_attrs(attrs: dict[str, Any]) -> bytes:
    """Canonical JSON of the hashed root attrs."""
    kept = {k: v for k, v in attrs.items() if k not in UNHASHED_KEYS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()


def clip_digest(values: dict[str, np.ndarray], modalities: dict[str, Modality]) -> bytes:
    """sha256 over a clip's variables in sorted name order, as stored (store dtype, C order)."""
    h = hashlib.sha256()
    for name in sorted(modalities):
        arr = np.ascontiguousarray(values[name], dtype=modalities[name].dtype)
        h.update(memoryview(arr).cast("B"))
    return h.digest()


def clip_stats(values: dict[str, np.ndarray], lit_threshold: float,
               modalities: dict[str, Modality]) -> TrainStats:
    """The train-statistics contribution of one clip."""
    stats = TrainStats(lit_threshold=lit_threshold, modalities=modalities)
    stats.add_clip(values)
    return stats


def summarize_clip(values: dict[str, np.ndarray], with_stats: bool, lit_threshold: float,
                   modalities: dict[str, Modality]) -> tuple[bytes, TrainStats | None]:
    """Digest and (train) stats of a clip, computed from the arrays as they are written."""
    return (clip_digest(values, modalities),
            clip_stats(values, lit_threshold, modalities) if with_stats else None)


def scan_clips(url: str, split: str, start: int, stop: int, with_stats: bool = False,
               lit_threshold: float = 0.5, check: bool = False) -> ScanResult:
    """Read clips ``start:stop`` of ``split`` back: digests, optional stats and value checks."""
    modalities = store_modalities(read_store_attrs(url))
    group = zarr.open_group(url, mode="r", use_consolidated=False, path=split)
    arrays = {name: group[name] for name in sorted(modalities)}
    out = ScanResult()
    for i in range(start, stop):
        data = {}
        for name, arr in arrays.items():
            try:
                values = arr[i]
            except Exception as exc:  # a corrupted chunk fails in the codec
                out.problems.append(f"{split}/{name} clip {i}: chunk cannot be decoded "
                                    f"({type(exc).__name__})")
                values = np.zeros(arr.shape[1:], dtype=arr.dtype)
            data[name] = values
        out.digests.append(clip_digest(data, modalities))
        if check:
            out.problems.extend(_check_values(split, i, data, modalities))
        if with_stats:
            out.clip_stats.append(clip_stats(data, lit_threshold, modalities))
    return out


def _check_values(split: str, i: int, data: dict[str, np.ndarray],
                  modalities: dict[str, Modality]) -> list[str]:
    """Problems of one clip: NaN/inf, or values outside the modality's declared range."""
    problems = []
    for name, values in data.items():
        lo, hi = modalities[name].value_range
        v = values.astype(np.float64)
        if not np.isfinite(v).all():
            problems.append(f"{split}/{name} clip {i}: {int((~np.isfinite(v)).sum())} NaN/inf")
        elif v.min() < lo or v.max() > hi:
            problems.append(f"{split}/{name} clip {i}: values {v.min():.4g}..{v.max():.4g} "
                            f"outside [{lo}, {hi}]")
    return problems


def array_digest(arr: zarr.Array) -> bytes:
    """sha256 over an array's decoded values, chunk by chunk in C order (bounded memory)."""
    h = hashlib.sha256()
    h.update(f"{arr.dtype}{arr.shape}".encode())
    if arr.ndim == 0:
        h.update(np.asarray(arr[...]).tobytes())
        return h.digest()
    ranges = [range(0, s, c) for s, c in zip(arr.shape, arr.chunks, strict=True)]
    for corner in itertools.product(*ranges):
        sel = tuple(slice(o, min(o + c, s)) for o, c, s in
                    zip(corner, arr.chunks, arr.shape, strict=True))
        h.update(np.ascontiguousarray(arr[sel]).tobytes())
    return h.digest()


def metadata_digest(url: str, split: str) -> bytes:
    """Digest of a split's per-clip metadata arrays."""
    group = zarr.open_group(url, mode="r", use_consolidated=False, path=split)
    h = hashlib.sha256()
    for name in META_NAMES:
        h.update(array_digest(group[name]))
    return h.digest()


def region_digest(url: str, region: str) -> bytes:
    """Digest of every array of ``regions/<region>/hr`` and ``/lr``."""
    h = hashlib.sha256()
    for level in ("hr", "lr"):
        group = zarr.open_group(url, mode="r", use_consolidated=False,
                                path=f"{REGIONS_GROUP}/{region}/{level}")
        for name in sorted(group.array_keys()):
            h.update(name.encode())
            h.update(array_digest(group[name]))
    return h.digest()


def combine(attrs: dict[str, Any], split_parts: dict[str, tuple[bytes, list[bytes]]],
            region_parts: dict[str, bytes]) -> str:
    """The fingerprint from the attrs, per-split (metadata, clip digests) and region digests."""
    h = hashlib.sha256(canonical_attrs(attrs))
    for split in SPLITS:
        meta, clips = split_parts[split]
        h.update(split.encode())
        h.update(meta)
        for d in clips:
            h.update(d)
    for name in sorted(region_parts):
        h.update(name.encode())
        h.update(region_parts[name])
    return h.hexdigest()
