"""``open_store``: a DeepLightMD store as lazy xarray objects."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from deeplightmd.access._store import StoreLike, check_split, load_attrs, store_url
from deeplightmd.errors import ConfigError
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


#: clips per dask chunk of the per-clip x/y coordinates
COORD_CHUNK = 1024


def clip_coords(bounds: np.ndarray, side: int, grid: str) -> dict[str, Any]:
    """Per-clip pixel-centre coordinates (lazy): ``x``/``y`` ``(clip, side)`` for the HR grid,
    ``lr_x``/``lr_y`` for the LR grid, from the clips' ``bounds`` (left, bottom, right, top)."""
    chunk = min(max(len(bounds), 1), COORD_CHUNK)
    left, top = (da.from_array(bounds[:, i], chunks=chunk)[:, None] for i in (0, 3))
    px = da.from_array((bounds[:, 2] - bounds[:, 0]) / side, chunks=chunk)[:, None]
    py = da.from_array((bounds[:, 3] - bounds[:, 1]) / side, chunks=chunk)[:, None]
    centres = (da.arange(side, chunks=side) + 0.5)[None, :]
    xn, yn = ("x", "y") if grid == "hr" else ("lr_x", "lr_y")
    attrs = {"units": "m", "long_name": f"{grid.upper()} pixel centre (per clip)"}
    return {xn: (("clip", xn), left + centres * px, {**attrs, "axis": "X"}),
            yn: (("clip", yn), top - centres * py, {**attrs, "axis": "Y"})}


def open_split(url: str, split: str, attrs: dict[str, Any], chunks: Any = None) -> xr.Dataset:
    """One split as a Dataset: modalities as data variables, clip metadata as coordinates.

    ``clip`` is indexed by ``clip_id`` (so ``ds.sel(clip=...)`` takes clip ids), ``band`` holds
    the DMO band names and a ``spatial_ref`` coordinate carries the CRS (``ds.rio.crs``). Each
    clip has its own grid: ``x``/``y`` ``(clip, x|y)`` (HR) and ``lr_x``/``lr_y`` (LR) hold
    the pixel centres of every clip (lazy, from ``bounds``), so a selected clip is georeferenced:
    ``ds.isel(clip=k).hr_ntl.rio.to_raster("c.tif")`` writes it at its place (for ``lr_ntl``
    use :func:`clip_dataarray`, or ``.rio.set_spatial_dims("lr_x", "lr_y")``).
    """
    ds = _open_group(url, split, {} if chunks is None else chunks, attrs)
    meta = [name for name in CLIP_METADATA if name in ds.variables]
    ds = ds.set_coords(meta)
    if "clip_id" in ds.coords:
        ds = ds.assign_coords(clip=("clip", np.asarray(ds["clip_id"].values)))
    if "bounds" in ds.coords:
        bounds = np.asarray(ds["bounds"].values, dtype=np.float64).reshape(-1, 4)
        grid = attrs["grid"]
        ds = ds.assign_coords({**clip_coords(bounds, int(grid["hr_clip"]), "hr"),
                               **clip_coords(bounds, int(grid["lr_clip"]), "lr")})
    ds = ds.rio.write_crs(attrs["grid"]["crs_wkt"])
    ds.attrs = {ROOT_ATTR: attrs, "split": split}
    return ds


def clip_dataarray(store: StoreLike | xr.Dataset, split: str | None = None, k: int = 0,
                   name: str = "hr_ntl") -> xr.DataArray:
    """Variable ``name`` of clip ``k`` (position in the split) georeferenced for rioxarray and
    odc-geo: dims ``(band?, y, x)``, pixel-centre ``x``/``y`` computed from the clip's recorded
    ``bounds`` (LR pixels for ``lr_ntl``), the store CRS and a GDAL-order ``GeoTransform`` in
    ``spatial_ref``. ``clip_dataarray(s, "test", 0).rio.to_raster("c.tif")`` writes the clip
    at its place (c.tif's bounds are the clip's ``bounds``).

    Args:
        store: a store path/URL, or a split Dataset from :func:`open_store` (then ``split`` is
            not needed).
        split: ``train``, ``val`` or ``test`` (with a store path).
        k: clip position along ``clip`` (``isel``, not the clip id).
        name: a modality of the store.

    Raises:
        ConfigError: unknown split or modality, ``k`` out of range.
    """
    ds = store if isinstance(store, xr.Dataset) else open_store(store, split=split)
    if name not in ds.data_vars:
        raise ConfigError(f"unknown modality {name!r}; the split has {', '.join(ds.data_vars)}")
    n = ds.sizes["clip"]
    if not -n <= k < n:
        raise ConfigError(f"clip position {k} out of range for {n} clips")
    arr = ds[name].isel(clip=k)
    if "lr_x" in arr.dims:
        arr = arr.drop_vars(["x", "y"], errors="ignore").rename(
            {"lr_x": "x", "lr_y": "y"}).rio.set_spatial_dims("x", "y")
    left, bottom, right, top = (float(v) for v in np.asarray(ds["bounds"].isel(clip=k)))
    arr = arr.drop_vars([c for c in arr.coords if c not in (*arr.dims, "spatial_ref")])
    crs = ds.attrs[ROOT_ATTR]["grid"]["crs_wkt"]
    out = arr.rio.write_crs(crs)
    out = out.rio.write_transform(out.rio.transform(recalc=True))
    out.attrs.update({"clip_id": int(ds["clip_id"].values[k]),
                      "bounds": [left, bottom, right, top]})
    return out


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


__all__ = ["clip_dataarray", "open_region", "open_split", "open_store"]
