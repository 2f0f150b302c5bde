"""The chunk manifest of a store and the checks that use it.

When a build finishes it lists every chunk object of the store (split variables, clip metadata,
region mosaics) with its size and stores that list as JSON in the uint8 array
:data:`MANIFEST_ARRAY` at the store's root (itself zstd-compressed and CRC32C-checksummed; its
sha256 and object count are in the root attrs under ``chunk_manifest``). A missing chunk would
otherwise read back as zeros — wrong metrics, silently.

:func:`verify_store` is what ``bench``, ``predict --store`` and :class:`DeepLightDataset` run
before using a store: ``fast`` compares the listing of the store's objects with the manifest
(names and sizes; no data read), ``full`` also checks the CRC32C of every chunk
(:func:`deeplightmd.builder.inspect.check_chunk_checksums`). Each problem names the split,
variable and clip (``val/hr_ntl clip 3``); the first one is raised as a :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np
import zarr

from deeplightmd.errors import StoreError
from deeplightmd.store_format import MODALITIES, SPLITS

#: root array holding the chunk manifest (JSON, UTF-8)
MANIFEST_ARRAY = "chunk_manifest"
#: root-attr key with the manifest's sha256 and object count
MANIFEST_ATTR = "chunk_manifest"
VERIFY_LEVELS = ("none", "fast", "full")


def chunk_label(array_path: str, key: str) -> str:
    """``val/hr_ntl clip 3`` for a split variable's chunk, else ``<array> chunk <key>``."""
    parts = array_path.split("/")
    index = key.split("/")[1:]
    if len(parts) == 2 and parts[0] in SPLITS and parts[1] in MODALITIES and index:
        return f"{array_path} clip {int(index[0])}"
    return f"{array_path} chunk {key}"


def _split_key(rel: str) -> tuple[str, str] | None:
    """``(array path, chunk key)`` of a store object that is a chunk, else None."""
    parts = rel.split("/")
    if "c" not in parts[:-1] and parts[-1] != "c":
        return None
    i = len(parts) - 1 - parts[::-1].index("c")
    return "/".join(parts[:i]), "/".join(parts[i:])


def list_chunks(url: str) -> dict[str, int]:
    """``{relative key: size}`` of every chunk object under the store (the manifest's own and
    zarr's ``*.partial`` temporary files left out)."""
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    out = {}
    for path, info in fs.find(root, detail=True).items():
        rel = path[len(root) + 1:]
        if rel.endswith(".partial") or rel.startswith(f"{MANIFEST_ARRAY}/"):
            continue
        if _split_key(rel) is not None:
            out[rel] = int(info["size"])
    return out


def write_manifest(url: str) -> dict[str, Any]:
    """Store the manifest of the store's current chunks; return its root-attrs record."""
    objects = list_chunks(url)
    blob = json.dumps({"objects": objects}, sort_keys=True, separators=(",", ":")).encode()
    from deeplightmd.builder.store import compressors

    arr = zarr.create_array(url, name=MANIFEST_ARRAY, shape=(len(blob),), dtype="uint8",
                            chunks=(max(len(blob), 1),), compressors=compressors(),
                            fill_value=0, overwrite=True)
    arr[...] = np.frombuffer(blob, dtype="uint8")
    return {"array": MANIFEST_ARRAY, "objects": len(objects),
            "sha256": hashlib.sha256(blob).hexdigest()}


def read_manifest(url: str, record: dict[str, Any]) -> dict[str, int]:
    """The manifest's ``{key: size}``, checked against its sha256 in the root attrs."""
    try:
        blob = zarr.open_array(url, path=MANIFEST_ARRAY, mode="r")[...].tobytes()
    except Exception as exc:  # missing array or undecodable chunk
        raise StoreError(f"store {url!r}: the chunk manifest cannot be read "
                         f"({type(exc).__name__}); rebuild the store") from exc
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise StoreError(f"store {url!r}: the chunk manifest does not match the sha256 in the "
                         "root attrs; rebuild the store")
    return json.loads(blob)["objects"]


def manifest_problems(url: str, attrs: dict[str, Any]) -> list[str]:
    """Chunk objects missing, resized or unexpected compared with the manifest (empty for a
    store without a manifest: built by an older toolkit, or not finished)."""
    record = attrs.get(MANIFEST_ATTR)
    if not record:
        return []
    expected = read_manifest(url, record)
    found = list_chunks(url)
    problems = []
    for rel, size in sorted(expected.items()):
        split = _split_key(rel)
        assert split is not None
        label = chunk_label(*split)
        if rel not in found:
            problems.append(f"{label}: chunk object {rel} is missing")
        elif found[rel] != size:
            problems.append(f"{label}: chunk object {rel} has {found[rel]} bytes, the manifest "
                            f"{size} (modified or truncated)")
    for rel in sorted(set(found) - set(expected)):
        split = _split_key(rel)
        assert split is not None
        problems.append(f"{chunk_label(*split)}: chunk object {rel} is not in the manifest "
                        "(written after the build)")
    return problems


def verify_store(url: str, attrs: dict[str, Any], level: str = "fast") -> None:
    """Raise :class:`StoreError` when the store does not verify at ``level`` (``none``,
    ``fast``: manifest of chunk objects; ``full``: also every chunk's CRC32C)."""
    if level not in VERIFY_LEVELS:
        raise StoreError(f"verify level must be one of {VERIFY_LEVELS}, got {level!r}")
    if level == "none":
        return
    problems = manifest_problems(url, attrs)
    if level == "full" and not problems:
        from deeplightmd.builder.inspect import check_chunk_checksums

        problems = check_chunk_checksums(url)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"store {url!r} fails its integrity check: {problems[0]}{more}; run "
                         "`deeplightmd validate` for the full list, then rebuild the store")


def _raised_by_codec(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside zarr or numcodecs (decoding a chunk)."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("zarr.", "numcodecs")):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def decode_errors(url: str, what: str) -> Iterator[None]:
    """Turn a chunk that fails to decode in zarr (CRC32C mismatch, truncated object) while
    reading ``what`` into a one-line :class:`StoreError`; other errors pass unchanged."""
    try:
        yield
    except (ValueError, RuntimeError, OSError) as exc:
        if isinstance(exc, StoreError) or not _raised_by_codec(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"store {url!r}: {what} cannot be read ({type(exc).__name__}: "
                         f"{first}); run `deeplightmd validate {url}`") from exc


__all__ = ["MANIFEST_ARRAY", "MANIFEST_ATTR", "VERIFY_LEVELS", "chunk_label", "decode_errors",
           "list_chunks", "manifest_problems", "read_manifest", "verify_store",
           "write_manifest"]
