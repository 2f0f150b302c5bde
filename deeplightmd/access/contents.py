"""What a store holds, read for the harness: arrays per split and region mosaics.

The benchmark harness reads stores only through :mod:`deeplightmd.access`; these two helpers
cover what the datasets do not (which arrays each split has, a region's whole mosaic).
"""

from __future__ import annotations

import numpy as np
import zarr

from deeplightmd.access._store import StoreLike, store_url
from deeplightmd.store_format import CLIP_METADATA, MODALITY_NAMES, REGIONS_GROUP, SPLITS


def split_modalities(store: StoreLike) -> dict[str, tuple[str, ...]]:
    """Modalities present in each split group of the store (``{split: names}``): registry
    modalities in registry order, then declared extra layers sorted; ``()`` for a missing split."""
    root = zarr.open_group(store_url(store), mode="r")
    present = {}
    for split in SPLITS:
        try:
            group = root[split]
        except KeyError:
            present[split] = ()
            continue
        names = set(group.array_keys())
        extra = sorted(names - set(MODALITY_NAMES) - set(CLIP_METADATA))  # declared layers
        present[split] = tuple(m for m in MODALITY_NAMES if m in names) + tuple(extra)
    return present


def read_region_mosaic(store: StoreLike, region: str, name: str = "hr_ntl", level: str = "hr"
                       ) -> np.ndarray:
    """The whole ``level`` (``hr`` or ``lr``) mosaic of modality ``name`` of a region, float32."""
    root = zarr.open_group(store_url(store), mode="r")
    return np.asarray(root[f"{REGIONS_GROUP}/{region}/{level}/{name}"][...], dtype=np.float32)


__all__ = ["read_region_mosaic", "split_modalities"]
