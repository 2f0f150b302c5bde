"""``info`` (what a store holds) and ``validate`` (is it intact and consistent)."""

from __future__ import annotations

import json
from typing import Any

import fsspec
import google_crc32c
import numpy as np
import zarr
from zarr.codecs import ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation

from deeplightmd.builder.parallel import Runner
from deeplightmd.builder.pipeline import store_fingerprint
from deeplightmd.errors import StoreError
from deeplightmd.integrity import chunk_label, manifest_problems
from deeplightmd.store_format import (
    CLIP_METADATA,
    REGIONS_GROUP,
    SPLITS,
    read_store_attrs,
    store_modalities,
)


def store_size(url: str) -> int:
    """Total bytes of the objects under ``url``."""
    fs, path = fsspec.core.url_to_fs(url)
    return int(fs.du(path, total=True))


def _short_crs(text: str) -> str:
    """A CRS in a few words: ``EPSG:<code> (<name>)`` when it has one, else its name, else its
    PROJ string (never a truncated WKT)."""
    import warnings

    import pyproj

    try:
        crs = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        return text if len(text) < 60 else text[:57] + "..."
    code = crs.to_epsg(min_confidence=90)
    if code is not None:
        return f"EPSG:{code} ({crs.name})"
    if crs.name and crs.name != "unknown":
        return crs.name
    with warnings.catch_warnings():  # "you will likely lose important projection information"
        warnings.simplefilter("ignore", UserWarning)
        return crs.to_proj4().replace(" +type=crs", "")


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
    hr_ntl = next((zarr.open_array(url, path=f"{s}/hr_ntl", mode="r") for s in SPLITS
                   if attrs["splits"].get(s)), None)
    if hr_ntl is None or hr_ntl.shards is None:
        layout = "one chunk per clip"
    else:
        layout = f"one shard per clip of {hr_ntl.chunks[-1]}² HR inner chunks"
    return {
        "url": url, "dataset": attrs["dataset"], "format_version": attrs["format_version"],
        "layout": layout,
        "toolkit_version": attrs["toolkit_version"], "complete": bool(attrs.get("complete")),
        "splits": attrs["splits"], "regions": attrs["regions"],
        "grid": {k: grid[k] for k in ("hr_pixel_size", "ratio", "lr_clip", "hr_clip", "n_rows",
                                      "n_cols", "origin_x", "origin_y")},
        "crs": _short_crs(grid["crs_wkt"]),
        "modalities": {name: {"role": m.role, "grid": m.grid, "dtype": m.dtype,
                              "bands": [{"name": b, "units": u}
                                        for b, u in zip(m.band_names, m.band_units, strict=True)]}
                       for name, m in store_modalities(attrs).items()},
        "size_bytes": store_size(url), "sources": sources,
        "sensor_model": attrs.get("sensor_model"), "fingerprint": attrs.get("fingerprint"),
        "worlds": attrs.get("worlds"),
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
        f"layout       {info['layout']}",
        f"size         {info['size_bytes'] / 1e6:.1f} MB",
        "modalities",
    ]
    for name, m in info["modalities"].items():
        bands = ", ".join(f"{b['name']} [{b['units']}]" for b in m["bands"])
        lines.append(f"  {name:<7} {m['role']}, {m['grid'].upper()} grid, {m['dtype']}: {bands}")
    lines += ["sources"]
    for name, items in info["sources"].items():
        lines += [f"  {name:<7} {item}" for item in items]
    if info.get("worlds"):  # a multi-world store (deeplightmd.builder.multiworld)
        from deeplightmd.builder.multiworld import format_worlds

        lines += format_worlds(info["worlds"])
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
        for name, spec in store_modalities(attrs).items():
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


#: chunk objects whose raw bytes one checksum task reads
CHECKSUM_BATCH = 256


def _codec_name(codec: Any) -> str:
    return getattr(codec, "to_dict", lambda: {})().get("name", "")


def _checksum_layout(arr: zarr.Array) -> int | None:
    """How an array's objects carry CRC32Cs: ``0`` — one chunk per object with a CRC32C trailer;
    ``n > 0`` — a shard of ``n`` inner chunks, its index and each inner chunk ending with a
    CRC32C (index at the end); ``None`` — not checksummed (stores of older toolkits)."""
    if arr.metadata.zarr_format != 3:
        return None
    last = arr.metadata.codecs[-1]
    if _codec_name(last) == "crc32c":
        return 0
    if (isinstance(last, ShardingCodec) and _codec_name(last.codecs[-1]) == "crc32c"
            and _codec_name(last.index_codecs[-1]) == "crc32c"
            and last.index_location == ShardingCodecIndexLocation.end):
        outer = arr.metadata.chunk_grid.chunk_shape
        return int(np.prod([o // i for o, i in zip(outer, last.chunk_shape, strict=True)]))
    return None


def _checksummed_arrays(root: zarr.Group) -> list[tuple[str, int]]:
    """``(path, layout)`` of every checksummed array (see :func:`_checksum_layout`)."""
    out = []
    for path, obj in root.members(max_depth=None):
        layout = _checksum_layout(obj) if isinstance(obj, zarr.Array) else None
        if layout is not None:
            out.append((path, layout))
    return out


def _trailer_problem(label: str, blob: bytes) -> str | None:
    """The problem with a chunk's bytes ending in their CRC32C, if any."""
    if len(blob) < 4:
        return f"{label}: chunk object is truncated ({len(blob)} bytes)"
    stored = int.from_bytes(blob[-4:], "little")
    computed = google_crc32c.value(blob[:-4])
    if stored != computed:
        return (f"{label}: CRC32C checksum mismatch (stored {stored:08x}, computed "
                f"{computed:08x}): the chunk was modified after it was written")
    return None


#: offset and size of an inner chunk that was never written (sharding codec index)
_EMPTY = np.uint64(2 ** 64 - 1)


def _shard_problems(label: str, blob: bytes, n_inner: int) -> list[str]:
    """Problems of one shard: its index's CRC32C, then each inner chunk's."""
    size = 16 * n_inner + 4
    if len(blob) < size:
        return [f"{label}: shard object is truncated ({len(blob)} bytes, index alone {size})"]
    index = blob[-size:]
    problem = _trailer_problem(f"{label} (shard index)", index)
    if problem:
        return [problem]
    entries = np.frombuffer(index[:-4], dtype="<u8").reshape(n_inner, 2)
    problems = []
    for k, (offset, nbytes) in enumerate(entries):
        if offset == _EMPTY and nbytes == _EMPTY:
            continue
        if offset + nbytes > len(blob) - size:
            problems.append(f"{label} (inner chunk {k}): lies outside the shard")
            continue
        problem = _trailer_problem(f"{label} (inner chunk {k})",
                                   blob[int(offset):int(offset + nbytes)])
        if problem:
            problems.append(problem)
    return problems


def _checksum_task(job: tuple[str, int, list[str]], url: str) -> list[str]:
    array_path, layout, keys = job
    fs, root = fsspec.core.url_to_fs(url)
    base = f"{root.rstrip('/')}/{array_path}/"
    blobs = fs.cat([base + k for k in keys])
    problems = []
    for key in keys:
        label = chunk_label(array_path, key)
        if layout:
            problems += _shard_problems(label, blobs[base + key], layout)
        else:
            problem = _trailer_problem(label, blobs[base + key])
            if problem:
                problems.append(problem)
    return problems


def check_chunk_checksums(url: str, runner: Runner | None = None) -> list[str]:
    """Verify the CRC32C trailer of every chunk object of the store (raw bytes, no decoding);
    for a sharded array, the CRC32C of each shard's index and of each of its inner chunks.

    Each problem names the array and, for split variables, the clip (``val/hr_ntl clip 3``).
    Arrays written without the ``crc32c`` codec (stores of older toolkits) are skipped.
    """
    root = zarr.open_group(url, mode="r", use_consolidated=False)
    fs, base = fsspec.core.url_to_fs(url)
    jobs = []
    for array_path, layout in _checksummed_arrays(root):
        prefix = f"{base.rstrip('/')}/{array_path}/"
        # 0-d arrays have the single key "c"; "*.partial" are zarr's temporary files of a write
        # that was killed (a resumed build rewrites that chunk), not chunks of the array
        keys = sorted(p[len(prefix):] for p in fs.find(prefix + "c") if not p.endswith(".partial"))
        batch = max(1, CHECKSUM_BATCH // max(layout, 1))
        jobs += [(array_path, layout, keys[i:i + batch]) for i in range(0, len(keys), batch)]
    results = (runner or Runner(progress=False)).map(_checksum_task, jobs, "checksums", url)
    return [p for res in results for p in res]


def validate_store(url: str, workers: int = 1, progress: bool = False) -> list[str]:
    """Every problem found in the store (empty list: valid).

    Checks: format version, ``complete``, schema (names, shapes, dtypes, dimension names),
    counts, done flags, clip ids, split separation (buffer), the chunk manifest (every missing,
    resized or unexpected chunk object), the CRC32C of every chunk object (naming the split,
    variable and clip of a modified chunk), NaN/range of every clip, region groups, and the
    fingerprint recomputed from the data (so a corrupted chunk is detected).
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
        problems += manifest_problems(url, attrs)
    except StoreError as exc:
        problems.append(str(exc))
    problems += check_chunk_checksums(url, runner)
    try:
        fingerprint, _, scan_problems = store_fingerprint(url, attrs, runner, check=True)
    except Exception as exc:  # undecodable region chunk, missing object
        return [*problems, f"cannot read the store back: {type(exc).__name__}: {exc}"]
    problems += scan_problems
    if fingerprint != attrs.get("fingerprint"):
        problems.append(f"fingerprint mismatch: stored {attrs.get('fingerprint')}, recomputed "
                        f"{fingerprint} (data or attrs changed after the build)")
    return problems
