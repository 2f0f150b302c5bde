"""Atomic file output: every file the toolkit writes goes through :func:`atomic_path`.

The content is written to a temporary file in the destination folder, flushed to disk
(``fsync``) and renamed over the destination, so a reader (or a crash, a full disk, a file-size
limit) sees either the previous file or the complete new one, never a truncated mix. A failure
removes the temporary file and raises :class:`~deeplightmd.errors.OutputError` (one line).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deeplightmd.errors import OutputError


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's: a rename in it) data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_os_error(exc: BaseException) -> str:
    """``strerror`` of an :class:`OSError` (``File too large``), else the first message line."""
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def ensure_folder(folder: str | os.PathLike[str], what: str) -> None:
    """Create ``folder`` (and its parents); :class:`OutputError` naming ``what`` when a part of
    the path is a file or the folder cannot be created."""
    folder = Path(folder)
    for part in (*reversed(folder.parents), folder):
        if part.exists() and not part.is_dir():
            raise OutputError(f"cannot write {what}: {str(part)!r} is a file, not a folder; "
                              "nothing was written")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {what}: cannot create folder {str(folder)!r} "
                          f"({describe_os_error(exc)}); nothing was written") from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str],
                errors: tuple[type[BaseException], ...] = (OSError,)) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) for a writer to create; when the
    block ends without error it is fsynced and renamed onto ``path``.

    Args:
        path: the destination (its folder is created when missing).
        errors: exception types of the writer that mean "could not write" (besides
            :class:`OSError`: e.g. a library's own I/O error); they become :class:`OutputError`.

    Raises:
        OutputError: the folder, temporary file or rename failed; ``path`` is unchanged.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    ensure_folder(path.parent, repr(str(path)))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except (OSError, *errors) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OutputError):
            raise
        kept = "the previous file is left unchanged" if path.exists() else "nothing was written"
        raise OutputError(f"cannot write {str(path)!r}: {describe_os_error(exc)}; {kept}") \
            from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every file system can fsync a folder
        _fsync(path.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp, open(tmp, "xb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(doc: Any, path: str | os.PathLike[str], indent: int | None = 2) -> Path:
    """Write ``doc`` as JSON (NaN/inf refused, trailing newline) to ``path`` atomically."""
    try:
        text = json.dumps(doc, indent=indent, allow_nan=False)
    except ValueError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc} (JSON has no NaN/inf)") from exc
    return write_text(path, text + "\n")


__all__ = ["atomic_path", "describe_os_error", "ensure_folder", "write_bytes", "write_json",
           "write_text"]
