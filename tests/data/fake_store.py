"""A small, seeded, spec-compliant DeepLightMD store for the data-access tests (TorchGeo-style).

Every clip holds one bright ``ratio x ratio`` HR block (one LR pixel) at a known, random position,
in every modality: HR NTL, all DMO bands, DEM and ISP are high there and low elsewhere, and the LR
NTL is the block mean of the HR NTL, so the planted feature is the arg-max of every modality. The
positions are stored in the split group's ``feature_lr`` array ``(clip, 2)`` (LR row, col), an extra
array readers ignore. One region ``fakeland`` holds an HR/LR mosaic with CF georeferencing.

Run ``python tests/data/fake_store.py OUT.zarr`` to write one by hand.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from affine import Affine

from deeplightmd.sensor import SensorModel, block_mean
from deeplightmd.store_format import (
    CLIP_METADATA,
    DMO_BANDS,
    FORMAT_VERSION,
    MODALITIES,
    REGIONS_GROUP,
    ROOT_ATTR,
)

#: China Albers equal-area, as a real build would use
CRS_WKT = pyproj.CRS.from_proj4("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84 "
                                "+units=m +no_defs").to_wkt()
HR_PIXEL = 100.0
ORIGIN = (-500_000.0, 4_000_000.0)
REGION = "fakeland"
FEATURE = {"hr_ntl": 900.0, "dmo": 0.9, "dem": 3000.0, "isp": 1}
ZSTD = zarr.codecs.ZstdCodec(level=3)


def _clip_fields(rng: np.random.Generator, n: int, ratio: int, lr_shape: tuple[int, int],
                 features: np.ndarray) -> dict[str, np.ndarray]:
    """Background noise plus bright HR blocks at ``features`` ``(n, k, 2)`` (LR row, col)."""
    hr = (lr_shape[0] * ratio, lr_shape[1] * ratio)
    out = {
        "hr_ntl": rng.uniform(0.0, 5.0, (n, *hr)).astype(np.float32),
        "dmo": rng.uniform(0.02, 0.3, (n, len(DMO_BANDS), *hr)).astype(np.float32),
        "dem": rng.uniform(0.0, 500.0, (n, *hr)).astype(np.float32),
        "isp": np.zeros((n, *hr), dtype=np.uint8),
    }
    for i, clip_features in enumerate(features):
        for r, c in clip_features:
            ys, xs = slice(r * ratio, (r + 1) * ratio), slice(c * ratio, (c + 1) * ratio)
            for name, value in FEATURE.items():
                out[name][i, ..., ys, xs] = value
    out["lr_ntl"] = block_mean(out["hr_ntl"], ratio).astype(np.float32)
    return out


def _write_array(group: zarr.Group, name: str, data: np.ndarray, dims: tuple[str, ...],
                 chunks: tuple[int, ...], attrs: dict[str, Any]) -> None:
    arr = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks,
                             dimension_names=dims, compressors=ZSTD, fill_value=0)
    arr[...] = data
    arr.attrs.update(attrs)


def _write_split(root: zarr.Group, split: str, n: int, start: int, grid: dict[str, Any],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    ratio, lr = grid["ratio"], grid["lr_clip"]
    features = rng.integers(0, lr, size=(n, 2))
    fields = _clip_fields(rng, n, ratio, (lr, lr), features[:, None])
    group = root.create_group(split)
    for name, spec in MODALITIES.items():
        data = fields[name]
        chunks = (1, *data.shape[1:])
        attrs = {"units": spec.units, "long_name": spec.long_name}
        if name == "dmo":
            attrs["band_names"] = list(DMO_BANDS)
        _write_array(group, name, data, spec.clip_dims(), chunks, attrs)
    ids = np.arange(start, start + n)
    rows, cols = ids // grid["n_cols"], ids % grid["n_cols"]
    size = grid["hr_clip"] * grid["hr_pixel_size"]
    left = grid["origin_x"] + cols * size
    top = grid["origin_y"] - rows * size
    meta = {
        "clip_id": (ids.astype(np.int64), ("clip",)),
        "row": (rows.astype(np.int32), ("clip",)),
        "col": (cols.astype(np.int32), ("clip",)),
        "bounds": (np.stack([left, top - size, left + size, top], axis=1), ("clip", "bound")),
        "done": (np.ones(n, dtype=np.uint8), ("clip",)),
        "feature_lr": (features.astype(np.int32), ("clip", "yx")),
    }
    for name, (data, dims) in meta.items():
        dtype = CLIP_METADATA.get(name, "int32")
        _write_array(group, name, data.astype(dtype), dims, data.shape,
                     {"units": "1", "long_name": name.replace("_", " ")})
    return fields


def _write_region(path: str, ratio: int, lr_shape: tuple[int, int],
                  rng: np.random.Generator) -> None:
    """Region mosaic: LR block means of an HR field with a few bright blocks, CF georeferenced."""
    h, w = lr_shape
    features = rng.integers(0, (h, w), size=(1, 4, 2))
    hr = {k: v[0] for k, v in _clip_fields(rng, 1, ratio, (h, w), features).items()}
    lr_ntl = hr["lr_ntl"]
    yy, xx = np.mgrid[0:h * ratio, 0:w * ratio]
    mask = ((yy - h * ratio / 2) ** 2 / (h * ratio / 2) ** 2
            + (xx - w * ratio / 2) ** 2 / (w * ratio / 2) ** 2 <= 1).astype(np.uint8)
    admin = np.where(mask == 1, 1 + (xx >= w * ratio // 2), 0).astype(np.int32)
    origin = (ORIGIN[0] + 3 * ratio * HR_PIXEL, ORIGIN[1] - 5 * ratio * HR_PIXEL)
    attrs = {"name": REGION, "admin_names": {"1": "West", "2": "East"}}

    def grid_ds(variables: dict[str, tuple[tuple[str, ...], np.ndarray]], px: float) -> xr.Dataset:
        ny, nx = variables[next(iter(variables))][1].shape[-2:]
        transform = Affine(px, 0.0, origin[0], 0.0, -px, origin[1])
        ds = xr.Dataset({k: (dims, v) for k, (dims, v) in variables.items()},
                        coords={"x": origin[0] + (np.arange(nx) + 0.5) * px,
                                "y": origin[1] - (np.arange(ny) + 0.5) * px})
        for name in ds.data_vars:
            spec = MODALITIES.get(name)
            ds[name].attrs = ({"units": spec.units, "long_name": spec.long_name} if spec else
                              {"units": "1", "long_name": name})
        ds = ds.rio.write_crs(CRS_WKT).rio.write_transform(transform)
        ds.attrs = {**attrs, "bounds": [origin[0], origin[1] - ny * px, origin[0] + nx * px,
                                        origin[1]]}
        return ds

    hr_ds = grid_ds({"hr_ntl": (("y", "x"), hr["hr_ntl"]), "dmo": (("band", "y", "x"), hr["dmo"]),
                     "dem": (("y", "x"), hr["dem"]), "isp": (("y", "x"), hr["isp"]),
                     "mask": (("y", "x"), mask), "admin": (("y", "x"), admin)}, HR_PIXEL)
    lr_ds = grid_ds({"lr_ntl": (("y", "x"), lr_ntl)}, HR_PIXEL * ratio)
    hr_chunks = {"y": 4 * ratio, "x": 4 * ratio, "band": -1}
    hr_ds.chunk(hr_chunks).to_zarr(path, group=f"{REGIONS_GROUP}/{REGION}/hr", mode="w",
                                   zarr_format=3, consolidated=False)
    lr_ds.chunk({"y": 4, "x": 4}).to_zarr(path, group=f"{REGIONS_GROUP}/{REGION}/lr", mode="w",
                                          zarr_format=3, consolidated=False)


def _stats(fields: dict[str, np.ndarray]) -> dict[str, Any]:
    log_hr = np.log1p(fields["hr_ntl"].astype(np.float64))
    dmo = fields["dmo"].astype(np.float64)
    return {
        "ntl_mean": float(log_hr.mean()), "ntl_std": float(log_hr.std()),
        "dmo_mean": dmo.mean(axis=(0, 2, 3)).tolist(), "dmo_std": dmo.std(axis=(0, 2, 3)).tolist(),
        "dem_mean": float(fields["dem"].mean()), "dem_std": float(fields["dem"].std()),
        "hr_ntl_max": float(fields["hr_ntl"].max()),
        "lit_fraction": float((fields["hr_ntl"] > 1.0).mean()),
    }


def make_fake_store(path: str | Path, *, splits: dict[str, int] | None = None, lr_clip: int = 8,
                    ratio: int = 8, region_lr_shape: tuple[int, int] = (20, 28),
                    format_version: int = FORMAT_VERSION, seed: int = 0) -> str:
    """Write a fake store at ``path`` and return the path as a string.

    Args:
        path: output folder (``*.zarr``); overwritten.
        splits: clips per split (default 6 train, 3 val, 3 test).
        lr_clip: LR clip side ``l``; HR clips are ``ratio · l``.
        ratio: HR pixels per LR pixel.
        region_lr_shape: (rows, cols) of the region's LR mosaic.
        format_version: written into the root attrs (to test the version check).
        seed: seed of every random draw.
    """
    path = str(path)
    splits = splits or {"train": 6, "val": 3, "test": 3}
    rng = np.random.default_rng(seed)
    n_total = sum(splits.values())
    grid = {"crs_wkt": CRS_WKT, "hr_pixel_size": HR_PIXEL, "ratio": ratio, "lr_clip": lr_clip,
            "hr_clip": lr_clip * ratio, "origin_x": ORIGIN[0], "origin_y": ORIGIN[1],
            "n_rows": int(np.ceil(n_total / 4)), "n_cols": 4}
    root = zarr.open_group(path, mode="w", zarr_format=3)
    fields_by_split, start = {}, 0
    for split, n in splits.items():
        fields_by_split[split] = _write_split(root, split, n, start, grid, rng)
        start += n
    _write_region(path, ratio, region_lr_shape, rng)
    attrs: dict[str, Any] = {
        "format_version": format_version, "toolkit_version": "test", "dataset": "fake",
        "manifest": {"name": "fake"}, "grid": grid, "splits": dict(splits), "regions": [REGION],
        "stats": _stats(fields_by_split["train"]),
        "sensor_model": SensorModel(ratio=ratio).to_dict(), "sources": {}, "complete": True,
    }
    attrs["fingerprint"] = hashlib.sha256(json.dumps(attrs, sort_keys=True).encode()).hexdigest()
    root = zarr.open_group(path, mode="r+")
    root.attrs[ROOT_ATTR] = attrs
    zarr.consolidate_metadata(path)
    return path


if __name__ == "__main__":
    print(make_fake_store(sys.argv[1]))
