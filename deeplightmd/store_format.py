"""The DeepLightMD Zarr store format: names, shapes, dtypes and the version check.

The full description, with a worked example, is docs/store-format.md. Writers (``build``) and
readers (``open_store``, ``DeepLightDataset``, ``validate``) import these constants, never
re-spell them; what each modality is lives in :mod:`deeplightmd.modalities`.
"""

from __future__ import annotations

from typing import Any

import zarr

from deeplightmd.errors import StoreError
from deeplightmd.modalities import BUILTIN, BUILTIN_NAMES, DMO_BANDS, Modality, store_modalities

#: bump when a reader of the previous version could misread a new store
FORMAT_VERSION = 1
#: key of the root-group attribute that holds all dataset metadata
ROOT_ATTR = "deeplight"
SPLITS = ("train", "val", "test")
REGIONS_GROUP = "regions"
#: the built-in modalities (a store may add declared layers: ``store_modalities(attrs)``)
MODALITIES = BUILTIN
MODALITY_NAMES = BUILTIN_NAMES
#: one stored layer (kept as a name for older imports)
VariableSpec = Modality

#: per-clip 1-D/2-D metadata arrays in every split group
CLIP_METADATA = {
    "clip_id": "int64",      # row * n_cols + col on the clip grid
    "row": "int32",          # clip-grid row (0 at the grid's top)
    "col": "int32",          # clip-grid column
    "bounds": "float64",     # (clip, 4): left, bottom, right, top in the target CRS
    "done": "uint8",         # 1 once every variable of the clip is written
}


def read_store_attrs(store: Any) -> dict[str, Any]:
    """The ``deeplight`` root attrs of a store (path, URL or zarr store), version-checked.

    Raises :class:`StoreError` when the store is missing, is not a DeepLightMD store, or was
    written by another format version.
    """
    try:
        root = zarr.open_group(store, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreError(f"no DeepLightMD store at {store!r}") from exc
    attrs = root.attrs.get(ROOT_ATTR)
    if not isinstance(attrs, dict):
        raise StoreError(f"{store!r} is a Zarr group but not a DeepLightMD store "
                         f"(no {ROOT_ATTR!r} root attribute)")
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(f"store {store!r} has format version {version}, this toolkit reads "
                         f"version {FORMAT_VERSION}; rebuild it with `deeplightmd build`")
    return attrs


__all__ = ["CLIP_METADATA", "DMO_BANDS", "FORMAT_VERSION", "MODALITIES", "MODALITY_NAMES",
           "REGIONS_GROUP", "ROOT_ATTR", "SPLITS", "Modality", "VariableSpec",
           "read_store_attrs", "store_modalities"]
