"""``info`` (what a store holds) and ``validate`` (is it intact and consistent)."""

from __future__ import annotations

import json
from typing import Any

import fsspec
import numpy as np
import zarr

from deeplightmd.build.parallel import Runner
from deeplightmd.build.pipeline import store_fingerprint
from deeplightmd.store_format import (CLIP_METADATA, MODALITIES, REGIONS_GROUP, SPLITS,
                                      read_store_attrs)


def store_size(url: str) -> int:
    """Total bytes of the objects under ``url``."""
    fs, path = fsspec.core.url_to_fs(url)
    return int(fs.du(path, total=True))


def _short_crs(text: str) -> str:
    """An EPSG code as is, a WKT by its projection name."""
    if len(text) < 40:
        return text
    from rasterio.crs import CRS

    crs = CRS.from_user_input(text)
    return crs.to_proj4() if crs.to_proj4() else text[:40] + "..."


def store_info(url: str) -> dict[str, Any]:
    """A summary of the store: counts, grid, sizes, sources and fingerprint."""
    attrs = read_store_attrs(url)
    grid = attrs["grid"]
    sources = {}
    for name, prov in attrs.get("sources", {}).items():
        if "files" in prov:
            sources[name] = [f"{f['path']} ({_short_crs(f['crs'])}, {f['resolution'][0]:g}, "
                             f"{f['dtype']})" for f in prov["files"]]
        else:
            sources[name] = [json.dumps(prov)]
    return {
        "url": url, "dataset": attrs["dataset"], "format_version": attrs["format_version"],
        "toolkit_version": attrs["toolkit_version"], "complete": bool(attrs.get("complete")),
        "splits": attrs["splits"], "regions": attrs["regions"],
        "grid": {k: grid[k] for k in ("hr_pixel_size", "ratio", "lr_clip", "hr_clip", "n_rows",
                                      "n_cols", "origin_x", "origin_y")},
        "crs": grid["crs_wkt"][:60] + ("..." if len(grid["crs_wkt"]) > 60 else ""),
        "size_bytes": store_size(url), "sources": sources,
        "sensor_model": attrs.get("sensor_model"), "fingerprint": attrs.get("fingerprint"),
    }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable :func:`store_info`."""
    g = info["grid"]
    lines = [
        f"store        {info['url']}",
        f"dataset      {info['dataset']} (format {info['format_version']}, toolkit "
        f"{info['toolkit_version']}, complete: {info['complete']})",
        "clips        " + ", ".join(f"{k} {v}" for k, v in info["splits"].items()),
        f"regions      {', '.join(info['regions']) or '-'}",
        f"grid         HR {g['hr_pixel_size']:g} m, ratio {g['ratio']}, clips LR {g['lr_clip']}² / "
        f"HR {g['hr_clip']}², lattice {g['n_rows']}x{g['n_cols']} at "
        f"({g['origin_x']:.0f}, {g['origin_y']:.0f})",
        f"crs          {info['crs']}",
        f"size         {info['size_bytes'] / 1e6:.1f} MB",
        "sources",
    ]
    for name, items in info["sources"].items():
        lines += [f"  {name:<7} {item}" for item in items]
    lines.append(f"fingerprint  {info['fingerprint']}")
    return "\n".join(lines)


def _check_schema(root: zarr.Group, attrs: dict[str, Any]) -> list[str]:
    problems = []
    grid = attrs["grid"]
    for split in SPLITS:
        if split not in root:
            problems.append(f"missing group {split!r}")
            continue
        group = root[split]
        n = attrs["splits"][split]
        for name, spec in MODALITIES.items():
            side = grid["lr_clip"] if spec.grid == "lr" else grid["hr_clip"]
            shape = (n, spec.bands, side, side) if spec.bands > 1 else (n, side, side)
            if name not in group:
                problems.append(f"{split}/{name} is missing")
                continue
            arr = group[name]
            if arr.shape != shape or str(arr.dtype) != spec.dtype:
                problems.append(f"{split}/{name} is {arr.shape} {arr.dtype}, expected {shape} "
                                f"{spec.dtype}")
            if tuple(arr.metadata.dimension_names or ()) != spec.clip_dims():
                problems.append(f"{split}/{name} has dimension names "
                                f"{arr.metadata.dimension_names}, expected {spec.clip_dims()}")
        for name, dtype in CLIP_METADATA.items():
            if name not in group:
                problems.append(f"{split}/{name} is missing")
            elif group[name].shape[0] != n or str(group[name].dtype) != dtype:
                problems.append(f"{split}/{name} is {group[name].shape} {group[name].dtype}, "
                                f"expected ({n}, ...) {dtype}")
    for region in attrs["regions"]:
        for level in ("hr", "lr"):
            path = f"{REGIONS_GROUP}/{region}/{level}"
            if path not in root:
                problems.append(f"missing region group {path!r}")
    return problems


def _check_splits(root: zarr.Group, attrs: dict[str, Any]) -> list[str]:
    problems = []
    positions = {}
    for split in SPLITS:
        group = root[split]
        done = group["done"][...]
        if not done.all():
            problems.append(f"{split}: {int((done == 0).sum())} clip(s) without done flag")
        positions[split] = np.stack([group["row"][...], group["col"][...]], axis=1)
        ids = group["clip_id"][...]
        expected = positions[split][:, 0].astype(np.int64) * attrs["grid"]["n_cols"] + \
            positions[split][:, 1]
        if not np.array_equal(ids, expected):
            problems.append(f"{split}: clip_id does not match row * n_cols + col")
    buffer = attrs["manifest"]["splits"]["buffer"]
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            pa, pb = positions[a], positions[b]
            if len(pa) and len(pb):
                dist = np.abs(pa[:, None, :] - pb[None, :, :]).max(axis=2).min()
                if dist <= buffer:
                    problems.append(f"splits {a} and {b} have clips {dist} clip(s) apart "
                                    f"(buffer {buffer} requires > {buffer})")
    return problems


def validate_store(url: str, workers: int = 1, progress: bool = False) -> list[str]:
    """Every problem found in the store (empty list: valid).

    Checks: format version, ``complete``, schema (names, shapes, dtypes, dimension names),
    counts, done flags, clip ids, split separation (buffer), NaN/range of every clip, region
    groups, and the fingerprint recomputed from the data (so a corrupted chunk is detected).
    """
    attrs = read_store_attrs(url)
    problems = [] if attrs.get("complete") else ["store is not marked complete"]
    root = zarr.open_group(url, mode="r", use_consolidated=False)
    schema = _check_schema(root, attrs)
    problems += schema
    if schema:
        return problems
    problems += _check_splits(root, attrs)
    runner = Runner(workers=workers, progress=progress)
    try:
        fingerprint, _, scan_problems = store_fingerprint(url, attrs, runner, check=True)
    except Exception as exc:  # undecodable region chunk, missing object
        return problems + [f"cannot read the store back: {type(exc).__name__}: {exc}"]
    problems += scan_problems
    if fingerprint != attrs.get("fingerprint"):
        problems.append(f"fingerprint mismatch: stored {attrs.get('fingerprint')}, recomputed "
                        f"{fingerprint} (data or attrs changed after the build)")
    return problems
