"""The leaderboard file: rows of reproduced results and paper-reported claims.

A leaderboard is one JSON document ``{"schema_version": 1, "rows": [...]}`` validated by
``benchmarks/schemas/leaderboard.schema.json``. A row is identified by :func:`row_key` (method,
source, dataset fingerprint, budget, seed): adding a row with the key of an existing row replaces
it, so ``add`` is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.results import (
    SCHEMA_VERSION,
    read_json,
    validate_document,
    validate_results,
    write_json,
)
from deeplightmd.errors import SchemaError

DEFAULT_FILE = "leaderboard.json"
RowKey = tuple[str, str, str, str | None, int | None]


def empty_board() -> dict[str, Any]:
    """A leaderboard without rows."""
    return {"schema_version": SCHEMA_VERSION, "rows": []}


def validate_row(row: Any, what: str = "leaderboard row") -> None:
    """Raise :class:`SchemaError` naming the failing field when ``row`` is not a valid row."""
    validate_document(row, "leaderboard", what, subschema="row")


def validate_board(board: Any, what: str = "leaderboard") -> None:
    """Raise :class:`SchemaError` naming the failing field when ``board`` is not a leaderboard."""
    validate_document(board, "leaderboard", what)


def load_board(path: str | Path) -> dict[str, Any]:
    """The leaderboard at ``path`` (validated); a missing file gives an empty leaderboard."""
    if not Path(path).exists():
        return empty_board()
    board = read_json(path)
    validate_board(board, what=str(path))
    return board


def save_board(board: Mapping[str, Any], path: str | Path) -> Path:
    """Validate and write a leaderboard."""
    validate_board(board, what=str(path))
    return write_json(board, path)


def row_key(row: Mapping[str, Any]) -> RowKey:
    """Identity of a row: method, source, dataset (fingerprint, else name), budget, seed."""
    dataset = row["dataset"]
    protocol = row.get("protocol") or {}
    return (row["method"], row["source"], dataset.get("fingerprint") or dataset["name"],
            protocol.get("budget"), protocol.get("seed"))


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
        "split": dataset["split"],
        "protocol": {"budget": protocol["budget"], "seed": protocol["seed"],
                     **({"steps": protocol["steps"]} if "steps" in protocol else {})},
        "metrics": {k: dict(v) for k, v in results["metrics"]["local"].items()},
        "regional": {r: dict(m) for r, m in results["metrics"].get("regional", {}).items()},
        "hardware": {k: hardware.get(k) for k in ("device", "cpu", "gpu", "torch")},
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
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SchemaError(f"{path}: file not found") from exc
        except yaml.YAMLError as exc:
            raise SchemaError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    else:
        doc = read_json(path)
    return rows_from_document(doc, what=str(path))


@dataclass(frozen=True)
class AddReport:
    """What :func:`add_rows` did."""

    added: int
    replaced: int


def add_rows(board: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
             ) -> tuple[dict[str, Any], AddReport]:
    """A new leaderboard with ``rows`` added; a row with an existing :func:`row_key` replaces it."""
    out = [dict(r) for r in board["rows"]]
    index = {row_key(r): i for i, r in enumerate(out)}
    added = replaced = 0
    for row in rows:
        validate_row(row)
        key = row_key(row)
        if key in index:
            out[index[key]] = dict(row)
            replaced += 1
        else:
            index[key] = len(out)
            out.append(dict(row))
            added += 1
    return {"schema_version": SCHEMA_VERSION, "rows": out}, AddReport(added, replaced)


def add_to_file(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> AddReport:
    """Add rows to the leaderboard file at ``path`` (created when missing)."""
    board, report = add_rows(load_board(path), rows)
    save_board(board, path)
    return report


__all__ = ["DEFAULT_FILE", "AddReport", "add_rows", "add_to_file", "empty_board", "load_board",
           "read_rows", "row_from_results", "row_key", "rows_from_document", "save_board",
           "validate_board", "validate_row"]
