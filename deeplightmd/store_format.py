"""The DeepLightMD Zarr store format: names, shapes, dtypes and the version check.

The full description, with a worked example, is docs/store-format.md. Writers (``build``) and
readers (``open_store``, ``DeepLightDataset``, ``validate``) import these constants, never
re-spell them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zarr

from deeplightmd.errors import StoreError

#: bump when a reader of the previous version could misread a new store
FORMAT_VERSION = 1
#: key of the root-group attribute that holds all dataset metadata
ROOT_ATTR = "deeplight"
SPLITS = ("train", "val", "test")
REGIONS_GROUP = "regions"
#: Landsat-8 OLI bands 1-7 (surface reflectance)
DMO_BANDS = ("coastal", "blue", "green", "red", "nir", "swir1", "swir2")


@dataclass(frozen=True)
class VariableSpec:
    """One modality as stored in a split group (leading ``clip`` axis) and a region mosaic."""

    name: str
    grid: str                 # "lr" or "hr"
    bands: int
    dtype: str
    units: str
    long_name: str

    def clip_dims(self) -> tuple[str, ...]:
        """Zarr ``dimension_names`` in a split group."""
        y, x = ("lr_y", "lr_x") if self.grid == "lr" else ("y", "x")
        return ("clip", "band", y, x) if self.bands > 1 else ("clip", y, x)

    def region_dims(self) -> tuple[str, ...]:
        """Dimension names in a region mosaic (``regions/<name>/lr`` or ``/hr``)."""
        return ("band", "y", "x") if self.bands > 1 else ("y", "x")


MODALITIES: dict[str, VariableSpec] = {
    "lr_ntl": VariableSpec("lr_ntl", "lr", 1, "float32", "nW cm-2 sr-1",
                           "low-resolution nighttime light radiance"),
    "hr_ntl": VariableSpec("hr_ntl", "hr", 1, "float32", "nW cm-2 sr-1",
                           "high-resolution nighttime light radiance"),
    "dmo": VariableSpec("dmo", "hr", len(DMO_BANDS), "float32", "1",
                        "daytime multispectral surface reflectance"),
    "dem": VariableSpec("dem", "hr", 1, "float32", "m", "elevation above sea level"),
    "isp": VariableSpec("isp", "hr", 1, "uint8", "1", "impervious surface mask (0/1)"),
}
MODALITY_NAMES = tuple(MODALITIES)

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
