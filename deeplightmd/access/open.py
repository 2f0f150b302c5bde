"""``open_store``: a DeepLightMD store as lazy xarray objects."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from deeplightmd.access._store import StoreLike, check_split, load_attrs, store_url
from deeplightmd.store_format import CLIP_METADATA, REGIONS_GROUP, ROOT_ATTR, store_modalities


def _open_group(url: str, group: str, chunks: Any, attrs: dict[str, Any],
                **kwargs: Any) -> xr.Dataset:
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not part of the v3 spec yet
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds = xr.open_zarr(url, group=group, chunks=chunks, **kwargs)
    for name, spec in store_modalities(attrs).items():
        if name in ds.data_vars and spec.bands > 1:
            ds = ds.assign_coords({spec.band_dim: (spec.band_dim, list(spec.band_names))})
    return ds


def open_split(url: str, split: str, attrs: dict[str, Any], chunks: Any = None) -> xr.Dataset:
    """One split as a Dataset: modalities as data variables, clip metadata as coordinates.

    ``clip`` is indexed by ``clip_id`` (so ``ds.sel(clip=...)`` takes clip ids), ``band`` holds
    the DMO band names and a ``spatial_ref`` coordinate carries the CRS (``ds.rio.crs``). Clips
    have no common grid; each clip's footprint is ``bounds``.
    """
    ds = _open_group(url, split, {} if chunks is None else chunks, attrs)
    meta = [name for name in CLIP_METADATA if name in ds.variables]
    ds = ds.set_coords(meta)
    if "clip_id" in ds.coords:
        ds = ds.assign_coords(clip=("clip", np.asarray(ds["clip_id"].values)))
    ds = ds.rio.write_crs(attrs["grid"]["crs_wkt"])
    ds.attrs = {ROOT_ATTR: attrs, "split": split}
    return ds


def open_region(url: str, region: str, grid: str, attrs: dict[str, Any],
                chunks: Any = None) -> xr.Dataset:
    """A region mosaic (``grid`` ``"hr"`` or ``"lr"``) with CRS and transform for rioxarray."""
    ds = _open_group(url, f"{REGIONS_GROUP}/{region}/{grid}", {} if chunks is None else chunks,
                     attrs, decode_coords="all")
    ds.attrs = {**ds.attrs, "grid": grid, "ratio": attrs["grid"]["ratio"]}
    return ds


def open_store(url: StoreLike, split: str | None = None,
               chunks: Any = None) -> xr.Dataset | xr.DataTree:
    """Open a DeepLightMD store lazily (dask arrays) with xarray.

    Args:
        url: local path or fsspec URL (``s3://…``, ``memory://…``) of the store.
        split: ``train``, ``val`` or ``test`` for that split's Dataset; ``None`` for a DataTree of
            the whole store (``/train``, ``/val``, ``/test``, ``/regions/<name>/hr|lr``; the root
            node's attrs hold the store's ``deeplight`` attrs).
        chunks: dask chunks (``None``: the on-disk chunks, one clip per chunk).

    Returns:
        A Dataset for one split, or a DataTree. Split datasets have dims ``clip``, ``band``,
        ``y``, ``x`` (HR) and ``lr_y``, ``lr_x`` (LR); DMO band names as the ``band``
        coordinate; ``units`` and ``long_name`` attrs per variable; CRS via ``.rio.crs``.
        Region datasets also give ``.rio.transform()`` (pixel-centre ``x``/``y`` coordinates).

    Raises:
        StoreError: no store at ``url``, or one of another format version.
        ConfigError: unknown split.
    """
    url = store_url(url)
    attrs = load_attrs(url)
    if split is not None:
        return open_split(url, check_split(split, attrs), attrs, chunks)
    nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs={ROOT_ATTR: attrs})}
    for name in attrs.get("splits", {}):
        nodes[f"/{name}"] = open_split(url, name, attrs, chunks)
    for region in attrs.get("regions", []):
        for grid in ("hr", "lr"):
            nodes[f"/{REGIONS_GROUP}/{region}/{grid}"] = open_region(url, region, grid, attrs,
                                                                     chunks)
    return xr.DataTree.from_dict(nodes)


__all__ = ["open_region", "open_split", "open_store"]
