"""``deeplightmd build``: turn heterogeneous rasters into an analysis-ready DeepLightMD Zarr store.

Pipeline (one module per step): :mod:`.manifest` → :mod:`.sources` (checks) → :mod:`.grid` →
:mod:`.windows` → :mod:`.qa` → :mod:`.splits` → :mod:`.read` → :mod:`.store` → :mod:`.regions` →
:mod:`.stats` → :mod:`.fingerprint`, wired by :mod:`.pipeline`.
"""

from deeplightmd.builder.manifest import Manifest, list_presets, load_manifest
from deeplightmd.builder.pipeline import build_store
from deeplightmd.builder.read import read_to_grid

__all__ = ["Manifest", "build_store", "list_presets", "load_manifest", "read_to_grid"]
