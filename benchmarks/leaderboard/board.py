"""The leaderboard file: rows of reproduced results and paper-reported claims.

A leaderboard is one JSON document ``{"schema_version": 2, "rows": [...]}`` validated by
``benchmarks/schemas/leaderboard.schema.json`` when it is read and before it is written. A row is
identified by :func:`row_key`: method, source, dataset fingerprint, training-store fingerprint,
budget, seed and run id. Every ``bench`` run has its own run id, so a repeated run adds a row.
Adding a row whose key is already on the board leaves the board unchanged when the row is
identical and is refused otherwise, unless ``replace`` (``add --replace``) says to replace it.
Two rows of one ``add`` with the same key are refused unless identical (then added once).

The file is read, changed and written under an exclusive lock (``<file>.lock``, the
``filelock`` library) and written atomically (:mod:`deeplightmd.atomic`), so concurrent ``add``
and ``bench`` runs all keep their rows and a failed write leaves the previous file intact.
Version-1 boards (no run ids) are read and upgraded; they are written back as version 2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import yaml

from benchmarks.results import (
    read_json,
    schema_version,
    validate_document,
    validate_results,
    write_json,
)
from deeplightmd.atomic import ensure_folder
from deeplightmd.errors import OutputError, SchemaError
from deeplightmd.yamlio import safe_load

DEFAULT_FILE = "leaderboard.json"
#: seconds an ``add`` waits for another process holding the leaderboard's lock
LOCK_TIMEOUT = 120.0
#: numerics fields of a results' ``hardware`` that its row keeps (when the results have them)
NUMERICS_FIELDS = ("threads", "interop_threads", "cpu_capability", "cpu_flags", "onednn")
RowKey = tuple[str, str, str, str | None, str | None, int | None, str | None]


def empty_board() -> dict[str, Any]:
    """A leaderboard without rows."""
    return {"schema_version": schema_version("leaderboard"), "rows": []}


def validate_row(row: Any, what: str = "leaderboard row") -> None:
    """Raise :class:`SchemaError` naming the failing field when ``row`` is not a valid row."""
    validate_document(row, "leaderboard", what, subschema="row")


def validate_board(board: Any, what: str = "leaderboard") -> None:
    """Raise :class:`SchemaError` naming the failing row and field when ``board`` is not a
    leaderboard of the current version (including non-finite and out-of-range metrics)."""
    validate_document(board, "leaderboard", what)


def upgrade_board(board: Any) -> Any:
    """A version-1 board as version 2 (rows get ``run_id``, ``training_fingerprint`` and, when
    absent, ``protocol.steps`` null); anything else unchanged."""
    if isinstance(board, Mapping) and board.get("schema_version") == 1 and \
            isinstance(board.get("rows"), list):
        rows = [{"run_id": None, "training_fingerprint": None, **r,
                 "protocol": {"steps": None, **(r.get("protocol") or {})}}
                if isinstance(r, Mapping) else r for r in board["rows"]]
        return {**board, "schema_version": schema_version("leaderboard"), "rows": rows}
    return board


def load_board(path: str | Path, missing_ok: bool = True) -> dict[str, Any]:
    """The leaderboard at ``path``, upgraded and validated.

    A missing file gives an empty leaderboard when ``missing_ok`` (``add``), else
    :class:`SchemaError` (``show``, ``render``: a misspelt name is not an empty board).
    """
    if not Path(path).exists():
        if missing_ok:
            return empty_board()
        raise SchemaError(f"leaderboard file {str(path)!r} not found (expected a JSON file "
                          "written by `deeplightmd leaderboard add` or `bench`)")
    board = upgrade_board(read_json(path))
    validate_board(board, what=str(path))
    return board


def save_board(board: Mapping[str, Any], path: str | Path) -> Path:
    """Validate and write a leaderboard atomically (the previous file stays on failure)."""
    validate_board(board, what=str(path))
    return write_json(board, path)


@contextlib.contextmanager
def board_lock(path: str | Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock ``<path>.lock`` of a leaderboard file (waits ``timeout`` s)."""
    lock_path = f"{path}.lock"
    lock = filelock.FileLock(lock_path, timeout=timeout)
    ensure_folder(Path(lock_path).parent, f"leaderboard {str(path)!r}")
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise OutputError(f"leaderboard {str(path)!r} is locked by another process "
                          f"({lock_path} held for more than {timeout:g} s)") from exc
    except OSError as exc:
        raise OutputError(f"cannot lock leaderboard {str(path)!r}: cannot create {lock_path} "
                          f"({exc.strerror or exc})") from exc
    try:
        yield
    finally:
        lock.release()


def row_key(row: Mapping[str, Any]) -> RowKey:
    """Identity of a row: method, source, dataset (fingerprint, else name), training-store
    fingerprint, budget, seed, run id."""
    dataset = row["dataset"]
    protocol = row.get("protocol") or {}
    return (row["method"], row["source"], dataset.get("fingerprint") or dataset["name"],
            row.get("training_fingerprint"), protocol.get("budget"), protocol.get("seed"),
            row.get("run_id"))


def training_fingerprint(results: Mapping[str, Any]) -> str | None:
    """Fingerprint of the store the evaluated weights were trained on: the checkpoint's when
    weights were loaded, else the evaluated store's (trained in this run, or nothing to train)."""
    checkpoint = results.get("checkpoint")
    if checkpoint and not checkpoint.get("trained_in_this_run"):
        return checkpoint.get("store_fingerprint")
    return results["dataset"]["fingerprint"]


def row_from_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """The leaderboard row of a (valid) results document."""
    method, dataset, protocol = results["method"], results["dataset"], results["protocol"]
    runtime = results["runtime"]
    hardware = results["hardware"]
    row = {
        "method": method["name"],
        "version": method["version"],
        "family": method.get("family", ""),
        "params": method["params"],
        "source": "reproduced",
        "citation": method.get("citation", ""),
        "dataset": {"name": dataset["name"], "fingerprint": dataset["fingerprint"]},
        "training_fingerprint": training_fingerprint(results),
        "run_id": results.get("run_id"),
        "split": dataset["split"],
        "protocol": {"budget": protocol["budget"], "seed": protocol["seed"],
                     "steps": protocol.get("steps")},
        "metrics": {k: dict(v) for k, v in results["metrics"]["local"].items()},
        "regional": {r: dict(m) for r, m in results["metrics"].get("regional", {}).items()},
        "clips": {k: list(v) for k, v in results["per_clip"].items()},
        "hardware": {**{k: hardware.get(k) for k in ("device", "cpu", "gpu", "torch")},
                     **{k: hardware[k] for k in NUMERICS_FIELDS if k in hardware}},
        "runtime": {k: runtime.get(k) for k in ("train_seconds", "inference_seconds",
                                                 "megapixels_per_second", "total_seconds")},
        "git_commit": results["git_commit"],
        "date": results["date"],
        **({"thumbnails": results["thumbnails"]} if results.get("thumbnails") else {}),
    }
    validate_row(row)
    return row


def rows_from_document(doc: Any, what: str) -> list[dict[str, Any]]:
    """Rows in a parsed document: a results JSON, a leaderboard, ``{"rows": [...]}``, a list of
    rows, or one row. Every row is validated (the message names the file and field)."""
    if isinstance(doc, Mapping) and "per_clip" in doc:
        validate_results(doc, what=what)
        return [row_from_results(doc)]
    if isinstance(doc, Mapping) and "rows" in doc:
        rows = doc["rows"]
    elif isinstance(doc, list):
        rows = doc
    else:
        rows = [doc]
    if not isinstance(rows, list):
        raise SchemaError(f"{what}: expected 'rows' to be a list, found {type(rows).__name__}")
    for i, row in enumerate(rows):
        validate_row(row, what=f"{what} row {i}" if len(rows) > 1 else what)
    return [dict(r) for r in rows]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows from a results JSON or a reported-row JSON/YAML file (:func:`rows_from_document`)."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            doc = safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SchemaError(f"{path}: file not found") from exc
        except yaml.YAMLError as exc:
            raise SchemaError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    else:
        doc = read_json(path)
    return rows_from_document(doc, what=str(path))


@dataclass(frozen=True)
class AddReport:
    """What :func:`add_rows` did: rows appended, rows replaced (``replace``), and rows already
    on the board (identical, so nothing changed)."""

    added: int
    replaced: int
    unchanged: int = 0

    def summary(self) -> str:
        """``2 row(s) added, 0 replaced, 1 unchanged``."""
        return f"{self.added} row(s) added, {self.replaced} replaced, {self.unchanged} unchanged"


def _describe(row: Mapping[str, Any]) -> str:
    protocol = row.get("protocol") or {}
    return (f"{row['method']} ({row['source']}, budget {protocol.get('budget')}, seed "
            f"{protocol.get('seed')}, run {row.get('run_id')})")


def add_rows(board: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], replace: bool = False
             ) -> tuple[dict[str, Any], AddReport]:
    """A new leaderboard with ``rows`` added (see the module docstring for keys).

    Raises:
        SchemaError: a row is invalid; two given rows share a key but differ; a row has the key
            of a board row but other values and ``replace`` is False.
    """
    out = [dict(r) for r in board["rows"]]
    index = {row_key(r): i for i, r in enumerate(out)}
    given: dict[RowKey, tuple[int, dict[str, Any]]] = {}
    for n, row in enumerate(rows):
        validate_row(row, what=f"new row {n}")
        key = row_key(row)
        if key in given:
            first, other = given[key]
            if other != dict(row):
                raise SchemaError(f"new rows {first} and {n} have the same key {_describe(row)} "
                                  "but different values; add them one at a time with --replace "
                                  "or give them different run ids")
            continue
        given[key] = (n, dict(row))
    added = replaced = unchanged = 0
    for n, row in given.values():
        key = row_key(row)
        if key not in index:
            index[key] = len(out)
            out.append(row)
            added += 1
        elif out[index[key]] == row:
            unchanged += 1
        elif replace:
            out[index[key]] = row
            replaced += 1
        else:
            raise SchemaError(f"new row {n} {_describe(row)} has the key of leaderboard row "
                              f"{index[key]} but other values; pass --replace to replace it")
    return ({"schema_version": schema_version("leaderboard"), "rows": out},
            AddReport(added, replaced, unchanged))


def add_to_file(path: str | Path, rows: Iterable[Mapping[str, Any]], replace: bool = False
                ) -> AddReport:
    """Add rows to the leaderboard file at ``path`` (created when missing), holding its lock
    from the read to the atomic write."""
    rows = list(rows)
    with board_lock(path):
        board, report = add_rows(load_board(path), rows, replace)
        if report.added or report.replaced or not Path(path).exists():
            save_board(board, path)
    return report


__all__ = ["DEFAULT_FILE", "AddReport", "add_rows", "add_to_file", "board_lock", "empty_board",
           "load_board", "read_rows", "row_from_results", "row_key", "rows_from_document",
           "save_board", "training_fingerprint", "upgrade_board", "validate_board",
           "validate_row"]
