"""Held-out province mosaics: every modality over each test region, with CF georeferencing.

Each region gets ``regions/<name>/hr`` (HR grid: hr_ntl, dmo, dem, isp, mask, admin) and
``regions/<name>/lr`` (LR grid: lr_ntl) on the LR-snapped bounding box of its polygon, so the HR
mosaic is exactly ``ratio`` times the LR mosaic on the same footprint. Arrays are dask arrays whose
blocks are read on demand by :func:`read_to_grid`, so memory stays bounded by one chunk per worker.
Georeferencing follows rioxarray's CF convention (scalar ``spatial_ref`` with ``crs_wkt`` and a
GDAL-order ``GeoTransform``, ``grid_mapping`` in the encoding, pixel-centre ``x``/``y``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio import features
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from deeplightmd.builder.grid import Bounds, TargetGrid
from deeplightmd.builder.manifest import Manifest
from deeplightmd.builder.sources import DerivedLR, ModalityReader
from deeplightmd.builder.store import compressors
from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.modalities import BUILTIN, Modality
from deeplightmd.store_format import REGIONS_GROUP


@dataclass(frozen=True)
class Region:
    """A held-out region in the target CRS, with the admin units it contains."""

    name: str
    geometry: BaseGeometry
    admin: tuple[tuple[int, str, BaseGeometry], ...] = ()


def _read_layer(m: Manifest, rel: str, what: str) -> gpd.GeoDataFrame:
    path = Path(m.resolve(rel))
    if not path.exists():
        raise InputFileError(f"{what} file {str(path)!r} does not exist")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:
        raise InputFileError(f"cannot read {what} file {str(path)!r}: "
                             f"{str(exc).splitlines()[0]}") from exc
    polygons = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty] if len(gdf) else gdf
    if polygons.empty:
        raise InputFileError(f"{what} file {str(path)!r} has no polygon (empty layer)")
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return gdf


def load_regions(m: Manifest, crs_wkt: str) -> list[Region]:
    """The manifest's held-out regions (in ``regions.test_regions`` order) in the target CRS."""
    spec = m.regions
    if not spec.test_regions:
        return []
    gdf = _read_layer(m, spec.file, "regions").to_crs(crs_wkt)
    if spec.name_field not in gdf.columns:
        raise InputFileError(f"regions file has no field {spec.name_field!r}; fields are "
                             f"{sorted(c for c in gdf.columns if c != 'geometry')}")
    admin = None
    if spec.admin_file:
        admin = _read_layer(m, spec.admin_file, "admin").to_crs(crs_wkt)
        if spec.admin_id_field is None:  # no id field: 1..n in file order
            admin = admin.assign(_admin_id=np.arange(1, len(admin) + 1))
        id_field = spec.admin_id_field or "_admin_id"
        for f in (id_field, spec.admin_name_field):
            if f not in admin.columns:
                raise InputFileError(f"admin file has no field {f!r}; fields are "
                                     f"{sorted(c for c in admin.columns if c != 'geometry')}")
    regions = []
    for name in spec.test_regions:
        rows = gdf[gdf[spec.name_field].astype(str) == name]
        if rows.empty:
            raise ConfigError(f"test region {name!r} not found in the regions file; names are "
                              f"{sorted(gdf[spec.name_field].astype(str))[:20]}")
        geom = rows.geometry.union_all() if hasattr(rows.geometry, "union_all") \
            else rows.geometry.unary_union
        units: list[tuple[int, str, BaseGeometry]] = []
        if admin is not None:
            if spec.admin_region_field and spec.admin_region_field in admin.columns:
                sel = admin[admin[spec.admin_region_field].astype(str) == name]
            else:
                sel = admin[admin.intersects(geom)]
            units = [(int(r[id_field]), str(r[spec.admin_name_field]), r.geometry)
                     for _, r in sel.sort_values(id_field).iterrows()]
        regions.append(Region(name, geom, tuple(units)))
    return regions


def region_bounds(grid: TargetGrid, region: Region) -> Bounds:
    """The region's bounding box snapped outwards to the LR lattice."""
    return grid.snap_to_lr(region.geometry.bounds)


def _coords(left: float, top: float, pixel: float, h: int, w: int) -> dict[str, Any]:
    x = left + (np.arange(w) + 0.5) * pixel
    y = top - (np.arange(h) + 0.5) * pixel
    return {"x": ("x", x, {"units": "m", "long_name": "x coordinate of pixel centre",
                           "standard_name": "projection_x_coordinate", "axis": "X"}),
            "y": ("y", y, {"units": "m", "long_name": "y coordinate of pixel centre",
                           "standard_name": "projection_y_coordinate", "axis": "Y"})}


def _lazy(fn: Any, shape: tuple[int, int], chunk: int, bands: int, dtype: str,
          key: str) -> da.Array:
    """A dask array whose block ``(y0:y1, x0:x1)`` is ``fn(y0, x0, h, w)`` (bands, h, w)."""
    chunks = tuple(tuple(min(chunk, s - o) for o in range(0, s, chunk)) for s in shape)

    def block(block_info: dict | None = None) -> np.ndarray:
        (y0, y1), (x0, x1) = block_info[None]["array-location"][-2:]
        out = fn(y0, x0, y1 - y0, x1 - x0).astype(dtype)
        return out if bands > 1 else out[0]

    full = ((bands,), *chunks) if bands > 1 else chunks
    return da.map_blocks(block, chunks=full, dtype=dtype, meta=np.array((), dtype=dtype),
                         name=f"deeplight-{key}")


def region_datasets(grid: TargetGrid, region: Region, index: int,
                    readers: dict[str, ModalityReader], derived: DerivedLR | None,
                    chunk: int, seed: int, modalities: dict[str, Modality] | None = None
                    ) -> tuple[xr.Dataset, xr.Dataset]:
    """Lazy HR and LR datasets of one region mosaic (nothing is read until computed).

    Every HR-grid modality of ``modalities`` (default: the built-ins) is a variable of the HR
    dataset, ``lr_ntl`` of the LR one.
    """
    modalities = modalities or dict(BUILTIN)
    left, bottom, right, top = region_bounds(grid, region)
    p, r = grid.hr_pixel_size, grid.ratio
    hl, wl = round((top - bottom) / (p * r)), round((right - left) / (p * r))
    H, W = hl * r, wl * r
    crs = grid.crs_wkt

    def hr_t(y0: int, x0: int) -> Affine:
        return Affine(p, 0.0, left + x0 * p, 0.0, -p, top - y0 * p)

    def modality(name: str) -> Any:
        return lambda y0, x0, h, w: readers[name].window(crs, hr_t(y0, x0), (h, w))

    def mask(y0: int, x0: int, h: int, w: int) -> np.ndarray:
        out = features.rasterize([(region.geometry, 1)], out_shape=(h, w),
                                 transform=hr_t(y0, x0), fill=0, dtype="uint8")
        return out[None]

    def admin(y0: int, x0: int, h: int, w: int) -> np.ndarray:
        shapes = [(g, i) for i, _, g in region.admin]
        if not shapes:
            return np.zeros((1, h, w), dtype="int32")
        return features.rasterize(shapes, out_shape=(h, w), transform=hr_t(y0, x0), fill=0,
                                  dtype="int32")[None]

    def lr(y0: int, x0: int, h: int, w: int) -> np.ndarray:
        t = Affine(p * r, 0.0, left + x0 * p * r, 0.0, -p * r, top - y0 * p * r)
        if derived is not None:
            rng = np.random.default_rng([seed, 7919, index, y0, x0])
            return derived.window(crs, t, (h, w), rng)
        return readers["lr_ntl"].window(crs, t, (h, w))

    hr_vars = {}
    for name, spec in modalities.items():
        if spec.grid == "hr":
            hr_vars[name] = (spec.region_dims(), _lazy(modality(name), (H, W), chunk, spec.bands,
                                                       spec.dtype, f"{region.name}-{name}"),
                             spec.array_attrs())
    hr_vars["mask"] = (("y", "x"), _lazy(mask, (H, W), chunk, 1, "uint8", f"{region.name}-mask"),
                       {"units": "1", "long_name": f"1 inside the {region.name} polygon"})
    hr_vars["admin"] = (("y", "x"), _lazy(admin, (H, W), chunk, 1, "int32", f"{region.name}-admin"),
                        {"units": "1", "long_name": "admin-unit id (0 = none)"})
    attrs = {"name": region.name, "bounds": [left, bottom, right, top],
             "admin_names": {str(i): n for i, n, _ in region.admin}}
    hr = xr.Dataset(hr_vars, coords=_coords(left, top, p, H, W), attrs=attrs)
    lr_spec = modalities["lr_ntl"]
    lr_ds = xr.Dataset({"lr_ntl": (lr_spec.region_dims(),
                                   _lazy(lr, (hl, wl), chunk // r, 1, lr_spec.dtype,
                                         f"{region.name}-lr_ntl"),
                                   lr_spec.array_attrs())},
                       coords=_coords(left, top, p * r, hl, wl), attrs=attrs)
    hr = _georeference(hr, crs, Affine(p, 0.0, left, 0.0, -p, top))
    lr_ds = _georeference(lr_ds, crs, Affine(p * r, 0.0, left, 0.0, -p * r, top))
    return hr, lr_ds


def _georeference(ds: xr.Dataset, crs_wkt: str, transform: Affine) -> xr.Dataset:
    """Attach the CF grid mapping (``spatial_ref`` + ``GeoTransform``) the rioxarray way."""
    ds = ds.rio.write_crs(crs_wkt)
    ds = ds.rio.write_transform(transform)
    for name in ds.data_vars:
        ds[name].encoding["grid_mapping"] = "spatial_ref"
        ds[name].attrs.pop("grid_mapping", None)
    return ds


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr encoding: zstd, one dask block per chunk, and the CF ``grid_mapping`` (an explicit
    encoding replaces the variable's own, so ``grid_mapping`` must be repeated here)."""
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        enc[name] = {"compressors": compressors(), "grid_mapping": "spatial_ref",
                     "chunks": tuple(c[0] for c in var.chunks)}
    for name in ("x", "y"):
        enc[name] = {"compressors": compressors()}
    return enc


def write_region_lazy(url: str, hr: xr.Dataset, lr: xr.Dataset, name: str) -> list[Any]:
    """Create the region groups and return the dask delayed writes of their data."""
    out = []
    for level, ds in (("hr", hr), ("lr", lr)):
        out.append(ds.to_zarr(url, group=f"{REGIONS_GROUP}/{name}/{level}", mode="w",
                              zarr_format=3, consolidated=False, compute=False,
                              encoding=_encoding(ds)))
    return out


def region_box(grid: TargetGrid, region: Region) -> BaseGeometry:
    """The mosaic footprint as a polygon."""
    return box(*region_bounds(grid, region))
