"""The Zarr writer: create the split arrays, write one clip (all variables) and its done flag.

Each clip is one chunk of every split variable, so clip writes from different workers never touch
the same object and need no locks; ``done[i]`` (also one chunk per clip) is written last, after
every variable of clip ``i``, so a reader that sees ``done[i] == 1`` sees the whole clip. The root
attribute ``complete`` is set only by :func:`finish`.

Crash consistency: the root group is created with its attrs in one write (``created: false``),
then the arrays, then ``created: true`` — a store killed in between is *half-created*
(:func:`store_state`) and is simply created again, by a plain build or ``--resume``. One build
at a time writes a store: :func:`build_lock` holds ``<out>.lock`` (local stores).

Integrity: every chunk of every array (split variables, clip metadata, region mosaics) ends with
the CRC32C of its compressed bytes (the Zarr v3 ``crc32c`` codec after ``zstd``), computed at
write time. Every reader verifies it when decoding, and ``deeplightmd validate`` checks it on the
raw objects without decompressing (:func:`deeplightmd.builder.inspect.check_chunk_checksums`).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import fsspec
import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from deeplightmd.atomic import ensure_folder
from deeplightmd.builder.grid import TargetGrid
from deeplightmd.errors import StoreError
from deeplightmd.integrity import MANIFEST_ATTR, write_manifest
from deeplightmd.store_format import (
    CLIP_METADATA,
    ROOT_ATTR,
    SPLITS,
    read_store_attrs,
    store_modalities,
)

#: zstd level used for every array (also by the speed benchmark's floor)
ZSTD_LEVEL = 3
#: rows per chunk of the per-clip metadata arrays written once by the driver
META_CHUNK = 65536
#: most HR pixels on a side of an inner chunk: clips larger than this are stored as one shard
#: of several inner chunks, so a training crop decodes only the inner chunks it touches
INNER_CHUNK = 256


def compressors() -> list[ZstdCodec | Crc32cCodec]:
    """The bytes-to-bytes codec chain of every array in the store: zstd, then a CRC32C trailer."""
    return [ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()]


def store_exists(url: str) -> bool:
    """True when ``url`` (path or fsspec URL) already holds something."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path) and (not fs.isdir(path) or bool(fs.ls(path)))


#: suffix of the temporary file zarr's ``LocalStore`` writes before renaming it into place
ZARR_PARTIAL_SUFFIX = ".partial"


def _only_unfinished_root_metadata(url: str) -> bool:
    """True when ``url`` is a folder without root ``zarr.json`` that holds nothing but zarr's
    own unfinished temporary files (``zarr.<hex>.partial``): a build killed while it wrote the
    store's very first object."""
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.isdir(path) or fs.exists(f"{path.rstrip('/')}/zarr.json"):
        return False
    entries = fs.ls(path, detail=True)
    return bool(entries) and all(
        e["type"] == "file" and Path(e["name"]).name.startswith("zarr.")
        and e["name"].endswith(ZARR_PARTIAL_SUFFIX) for e in entries)


def _local_path(url: str) -> Path | None:
    """The folder of a local store (a path or ``file://`` URL), else None."""
    if "://" not in url:
        return Path(url)
    return Path(url[len("file://"):]) if url.startswith("file://") else None


@contextlib.contextmanager
def build_lock(url: str) -> Iterator[None]:
    """Hold ``<out>.lock`` (beside a local store) for the whole build; another build of the
    same store refuses at once. Remote stores (``s3://``, ``memory://``) are not locked."""
    path = _local_path(url)
    if path is None:
        yield
        return
    path = path.absolute()
    lock_path = path.with_name(path.name + ".lock")
    lock = filelock.FileLock(str(lock_path), timeout=0)
    ensure_folder(path.parent, f"store {url!r}")
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise StoreError(f"another build is writing {url!r} (it holds {str(lock_path)!r}); "
                         "wait for it to finish or choose another --out") from exc
    except OSError as exc:
        raise StoreError(f"cannot create the build lock {str(lock_path)!r}: "
                         f"{exc.strerror or exc}") from exc
    try:
        yield
    finally:
        lock.release()


def store_state(url: str) -> str:
    """``absent`` (nothing there), ``half-created`` (a build was killed while it created the
    store: it holds no clip yet), ``incomplete`` (clips being written), ``complete``, or
    ``other`` (something that is not a readable DeepLightMD store of this format version)."""
    if not store_exists(url):
        return "absent"
    if _only_unfinished_root_metadata(url):
        return "half-created"
    try:
        attrs = read_store_attrs(url)
    except StoreError:
        return "other"
    if attrs.get("created") is False:
        return "half-created"
    return "complete" if attrs.get("complete") else "incomplete"


def remove_store(url: str) -> None:
    """Delete ``url`` recursively (``--overwrite``)."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def inner_lr_side(lr_clip: int, inner_chunk: int, ratio: int) -> int:
    """LR side of a clip's inner chunks: the largest divisor of ``lr_clip`` whose HR side
    (``× ratio``) is at most ``inner_chunk``; ``lr_clip`` itself (no sharding) when
    ``inner_chunk`` is 0 or the clip already fits."""
    if inner_chunk <= 0 or lr_clip * ratio <= inner_chunk:
        return lr_clip
    return max(d for d in range(1, lr_clip + 1) if lr_clip % d == 0 and d * ratio <= inner_chunk)


def clip_layout(spec_bands: int, side: int, inner: int) -> dict[str, tuple[int, ...]]:
    """``create_array`` keywords of a split variable: one chunk per clip, or — when ``inner``
    is smaller than the clip ``side`` — one shard per clip of ``inner × inner`` chunks."""
    bands = (spec_bands,) if spec_bands > 1 else ()
    whole = (1, *bands, side, side)
    if inner >= side:
        return {"chunks": whole}
    return {"shards": whole, "chunks": (1, *bands, inner, inner)}


def create_store(url: str, grid: TargetGrid, clips: dict[str, list[tuple[int, int]]],
                 attrs: dict[str, Any], inner_chunk: int = INNER_CHUNK) -> zarr.Group:
    """Create the root group, split arrays and per-clip metadata; ``complete`` is False.

    Clips whose HR side exceeds ``inner_chunk`` are sharded (Zarr v3 sharding codec): still one
    object per clip and variable, written whole, but made of inner chunks of at most
    ``inner_chunk`` HR pixels (``inner_chunk / ratio`` LR), each compressed and checksummed on
    its own, so reading a crop decodes only the inner chunks it overlaps.
    """
    lr_inner = inner_lr_side(grid.lr_clip, inner_chunk, grid.ratio)
    root = zarr.create_group(url, overwrite=True, zarr_format=3,
                             attributes={ROOT_ATTR: {**attrs, "complete": False,
                                                     "created": False}})
    for split in SPLITS:
        group = root.create_group(split)
        n = len(clips[split])
        for name, spec in store_modalities(attrs).items():
            lr = spec.grid == "lr"
            side = grid.lr_clip if lr else grid.hr_clip
            shape = (n, spec.bands, side, side) if spec.bands > 1 else (n, side, side)
            layout = clip_layout(spec.bands, side, lr_inner if lr else lr_inner * grid.ratio)
            arr = group.create_array(name, shape=shape, dtype=spec.dtype,
                                     compressors=compressors(), fill_value=0,
                                     dimension_names=spec.clip_dims(), **layout)
            arr.attrs.update(spec.array_attrs())
        rows = np.array([r for r, _ in clips[split]], dtype="int32")
        cols = np.array([c for _, c in clips[split]], dtype="int32")
        meta = {
            "clip_id": (rows.astype("int64") * grid.n_cols + cols, ("clip",), "1",
                        "clip id: row * n_cols + col on the clip grid"),
            "row": (rows, ("clip",), "1", "clip-grid row (0 at the top)"),
            "col": (cols, ("clip",), "1", "clip-grid column (0 at the left)"),
            "bounds": (np.array([grid.clip_bounds(r, c) for r, c in clips[split]],
                                dtype="float64").reshape(n, 4), ("clip", "bound"), "m",
                       "clip bounds (left, bottom, right, top) in the target CRS"),
        }
        for name, (values, dims, units, long_name) in meta.items():
            chunks = (min(max(n, 1), META_CHUNK), *values.shape[1:])
            arr = group.create_array(name, shape=values.shape, chunks=chunks,
                                     dtype=CLIP_METADATA[name], compressors=compressors(),
                                     fill_value=0, dimension_names=dims)
            arr.attrs.update({"units": units, "long_name": long_name})
            if n:
                arr[...] = values
        done = group.create_array("done", shape=(n,), chunks=(1,), dtype=CLIP_METADATA["done"],
                                  compressors=compressors(), fill_value=0,
                                  dimension_names=("clip",))
        done.attrs.update({"units": "1",
                           "long_name": "1 once every variable of the clip is written"})
    root.attrs[ROOT_ATTR] = {**attrs, "complete": False, "created": True}
    return root


def open_for_resume(url: str) -> zarr.Group:
    """The existing, incomplete store at ``url`` opened for writing."""
    try:
        root = zarr.open_group(url, mode="r+", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreError(f"--resume: no store at {url!r} to resume") from exc
    return root


def done_flags(url: str, split: str) -> np.ndarray:
    """The ``done`` array of a split as booleans."""
    return zarr.open_array(url, path=f"{split}/done", mode="r")[...].astype(bool)


#: split arrays opened by :func:`write_clips` for a build token, per process: ``(url, split,
#: token) → name → zarr.Array`` (the most recent :data:`OPEN_SPLITS_KEPT` splits)
_OPEN_SPLITS: OrderedDict[tuple[str, str, str], dict[str, zarr.Array]] = OrderedDict()
_OPEN_SPLITS_LOCK = threading.Lock()
OPEN_SPLITS_KEPT = 8


def _split_arrays(url: str, split: str, names: list[str], token: str | None
                  ) -> dict[str, zarr.Array]:
    """The arrays ``names`` and ``done`` of a split, opened once per ``token`` in this process.

    Opening the group and each array reads and parses its metadata; a build writes one run at a
    time, so without the cache every run would re-read nine metadata documents. ``token`` is
    unique to one build of the store (the arrays of a store created anew are opened anew);
    ``None`` opens them every time.
    """
    key = (url, split, token) if token is not None else None
    if key is not None:
        with _OPEN_SPLITS_LOCK:
            cached = _OPEN_SPLITS.get(key)
            if cached is not None and all(n in cached for n in names):
                _OPEN_SPLITS.move_to_end(key)
                return cached
    group = zarr.open_group(url, mode="r+", use_consolidated=False, path=split)
    arrays = {name: group[name] for name in [*names, "done"]}
    if key is not None:
        with _OPEN_SPLITS_LOCK:
            _OPEN_SPLITS[key] = arrays
            while len(_OPEN_SPLITS) > OPEN_SPLITS_KEPT:
                _OPEN_SPLITS.popitem(last=False)
    return arrays


def forget_open_arrays(url: str) -> None:
    """Drop the cached arrays of ``url`` (the build that opened them is over)."""
    with _OPEN_SPLITS_LOCK:
        for key in [k for k in _OPEN_SPLITS if k[0] == url]:
            del _OPEN_SPLITS[key]


def write_clips(url: str, split: str, first: int, clips: list[dict[str, np.ndarray]],
                token: str | None = None) -> None:
    """Write every variable of the clips ``first … first + len(clips) - 1`` of ``split``, then
    their done flags.

    Each variable is written with one assignment over the whole run, so zarr encodes the run's
    chunks concurrently (one clip is still one chunk). With a build ``token`` the split's
    arrays are opened once per process and build (:func:`_split_arrays`), not once per run.
    """
    if not clips:
        return
    arrays = _split_arrays(url, split, list(clips[0]), token)
    stop = first + len(clips)
    for name in clips[0]:
        values = np.stack([c[name] for c in clips])
        arr = arrays[name]
        arr[first:stop] = values if arr.ndim == values.ndim else values[:, 0]
    arrays["done"][first:stop] = 1


def finish(url: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Write the chunk manifest (:mod:`deeplightmd.integrity`), then the final root attrs with
    ``complete: True``, then consolidate metadata; return the final attrs."""
    manifest = write_manifest(url)
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    final = {**attrs, MANIFEST_ATTR: manifest, "created": True, "complete": True}
    root.attrs[ROOT_ATTR] = final
    with warnings.catch_warnings():  # "consolidated metadata is not in the v3 spec (yet)"
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(url)
    return final
