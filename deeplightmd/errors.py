"""Errors the toolkit raises for bad input.

Every user-facing failure is a :class:`DeepLightError` whose message is one line saying what was
expected and what was found. The CLI turns it into ``Error: <message>`` and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class DeepLightError(Exception):
    """Base class for errors caused by the user's input (files, options, stores, JSON)."""


class InputFileError(DeepLightError):
    """A source file is missing, unreadable or not what the manifest says."""


class ConfigError(DeepLightError):
    """A preset, manifest, config file or option value is invalid."""


class StoreError(DeepLightError):
    """A store is missing, incomplete, corrupted or of another format version."""


class SchemaError(DeepLightError):
    """A JSON document (results, leaderboard row) fails its schema."""


class DataWarning(UserWarning):
    """Input that works but looks wrong (DN stored as reflectance, radiance outside the training
    range); the CLI prints it as one ``Warning: <message>`` line."""


def reject_unknown(keys: Iterable[str], known: Iterable[str], what: str, where: str = "") -> None:
    """Raise ``ConfigError("unknown <what> [...]<where>; expected some of [...]")`` when ``keys``
    has names outside ``known`` (config dataclasses read from YAML, JSON or the command line)."""
    known = set(known)
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}{where}; expected some of {sorted(known)}")


class OutputError(DeepLightError, OSError):
    """An output file or lock cannot be written (read-only folder, disk full, file size limit,
    lock held by another process); the previous file is left as it was."""
