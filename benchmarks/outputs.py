"""Atomic file output for the leaderboard site and the result thumbnails.

Every file is written to a temporary file in the destination folder, flushed and renamed over the
destination, so a reader sees the previous file or the complete new one, never half of it; on
failure the temporary file is removed and a :class:`~deeplightmd.errors.ConfigError` (one line,
exit 2) names the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from deeplightmd.errors import ConfigError


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror or exc}; {kept}") from exc
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


__all__ = ["write_bytes_atomic", "write_text_atomic"]
