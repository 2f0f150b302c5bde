"""Reading DeepLightMD stores: xarray (:func:`open_store`) and PyTorch datasets.

- :func:`open_store` — a split (or the whole store) as lazy xarray objects with CRS (each clip
  with its own x/y, so ``ds.isel(clip=k)`` is georeferenced).
- :func:`clip_dataarray` — one clip's variable with its own x/y, CRS and transform (rioxarray).
- :class:`DeepLightDataset` — aligned, normalised, optionally cropped/augmented training samples.
- :class:`RegionDataset` + :class:`Stitcher` — tiled inference over a held-out region mosaic.
- :func:`split_modalities`, :func:`read_region_mosaic` — which arrays each split holds; a
  region's whole mosaic (what the benchmark harness reads besides the datasets).
- :class:`RandomFlipRotate`, :func:`flip_rotate` — paired augmentations of a whole sample dict.
"""

from deeplightmd.access.contents import read_region_mosaic, split_modalities
from deeplightmd.access.dataset import DeepLightDataset
from deeplightmd.access.open import clip_dataarray, open_store
from deeplightmd.access.region import RegionDataset, Stitcher, tile_windows
from deeplightmd.access.transforms import RandomFlipRotate, flip_rotate

__all__ = [
           "DeepLightDataset",
           "RandomFlipRotate",
           "RegionDataset",
           "Stitcher",
           "clip_dataarray",
           "flip_rotate",
           "open_store",
           "read_region_mosaic",
           "split_modalities",
           "tile_windows",
]
