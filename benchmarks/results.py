"""Results JSON of one benchmark run: assembly, JSON Schema validation, reading and writing.

The document layout is defined by ``benchmarks/schemas/results.schema.json`` (``schema_version``
:data:`SCHEMA_VERSION`); docs/protocol.md explains every field. Documents from other people are
always validated before use (:func:`read_results`), and a failure names the offending field.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import platform
import re
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import torch

from benchmarks.metrics.stats import bootstrap_ci
from deeplightmd import atomic
from deeplightmd._version import __version__
from deeplightmd.errors import SchemaError

#: version of the results JSON layout (the results schema's ``schema_version`` const; the
#: leaderboard's is :func:`schema_version` ``("leaderboard")``)
SCHEMA_VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMAS = {"results": "results.schema.json", "leaderboard": "leaderboard.schema.json"}


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (``results`` or ``leaderboard``) shipped with the package."""
    with open(SCHEMA_DIR / SCHEMAS[name], encoding="utf-8") as fh:
        return json.load(fh)


def schema_version(name: str) -> int:
    """The ``schema_version`` a document of schema ``name`` must have."""
    return int(load_schema(name)["properties"]["schema_version"]["const"])


#: the documented valid range of every metric (docs/metrics.md, "Valid ranges"): ``(low, high)``
#: with None for unbounded; a value outside it (by more than :data:`RANGE_SLACK`) or any
#: non-finite number makes a results document or leaderboard row invalid
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    **dict.fromkeys(("psnr", "psnr_log", "lrc_psnr"), (None, 100.0)),
    **dict.fromkeys(("ssim", "ssim_log", "admin_r"), (-1.0, 1.0)),
    **dict.fromkeys(("rmse", "mae", "rmse_log", "mae_log", "lrc_rmse", "lrc_mae", "seam_ratio",
                     "seam_ratio_hr", "admin_n"), (0.0, None)),
    **dict.fromkeys(("lrc_total_rel_bias", "total_light_rel_error"), (-1.0, None)),
    "piqe": (0.0, 100.0),
    "lit_iou": (0.0, 1.0),
    "admin_r2": (None, 1.0),
}
RANGE_SLACK = 1e-6


def metric_range_problem(metric: str, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``metric`` (non-finite, outside its range), or None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    low, high = METRIC_RANGES.get(metric.split(".")[-1], (None, None))
    if (low is not None and value < low - RANGE_SLACK) or \
            (high is not None and value > high + RANGE_SLACK):
        bounds = f"[{-math.inf if low is None else low:g}, {math.inf if high is None else high:g}]"
        return f"{value:g} is outside the valid range {bounds} of {metric.split('.')[-1]!r}"
    return None


def _nonfinite(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of the non-finite floats (NaN, inf) anywhere in a parsed JSON document."""
    if isinstance(obj, float) and not math.isfinite(obj):
        yield path
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _nonfinite(v, (*path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nonfinite(v, (*path, str(i)))


def _metric_values(doc: Mapping[str, Any], kind: str) -> Iterator[tuple[tuple[str, ...], str,
                                                                         Any]]:
    """``(path, metric, value)`` of every metric value of a results document or a row."""
    estimates = doc["metrics"]["local"] if kind == "results" else doc["metrics"]
    prefix = ("metrics", "local") if kind == "results" else ("metrics",)
    for name, est in estimates.items():
        for field in ("mean", "ci_low", "ci_high"):
            yield (*prefix, name, field), name, est.get(field)
    regional = doc["metrics"]["regional"] if kind == "results" else doc.get("regional") or {}
    prefix = ("metrics", "regional") if kind == "results" else ("regional",)
    for region, metrics in regional.items():
        for name, value in metrics.items():
            yield (*prefix, region, name), name, value
    key = "per_clip" if kind == "results" else "clips"
    for name, values in (doc.get(key) or {}).items():
        if name != "clip_id":
            for i, value in enumerate(values):
                yield (key, name, str(i)), name, value


def _value_problem(doc: Any, schema_name: str, subschema: str | None) -> tuple[str, str] | None:
    """``(field, reason)`` of the first non-finite number or out-of-range metric value."""
    for path in _nonfinite(doc):
        return ".".join(path), "NaN/inf is not a finite number (JSON has no NaN or Infinity)"
    if schema_name == "results":
        docs = [((), doc, "results")]
    elif subschema == "row":
        docs = [((), doc, "row")]
    else:
        docs = [(("rows", str(i)), row, "row") for i, row in enumerate(doc["rows"])]
    for prefix, part, kind in docs:
        for path, metric, value in _metric_values(part, kind):
            problem = metric_range_problem(metric, value)
            if problem:
                return ".".join((*prefix, *path)), problem
    return None


def _error_field(error: jsonschema.ValidationError) -> str:
    """Dotted path of the field an error is about (the missing key for ``required`` errors)."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            parts.append(str(missing[0]))
    return ".".join(parts) or "<document>"


def validate_document(doc: Any, schema_name: str, what: str = "document",
                      subschema: str | None = None) -> None:
    """Validate ``doc`` against a schema (or one of its ``$defs``); raise :class:`SchemaError`.

    Args:
        doc: the parsed JSON document.
        schema_name: ``results`` or ``leaderboard``.
        what: how to call the document in the message (e.g. its file name).
        subschema: name of a ``$defs`` entry to validate against instead of the root (e.g. ``row``).
    """
    schema = load_schema(schema_name)
    if subschema is not None:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"],
                  "$ref": f"#/$defs/{subschema}"}
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    version = schema_version(schema_name)
    if error is not None:
        raise SchemaError(f"{what} fails the {schema_name} schema v{version} at "
                          f"{_row_prefix(error.absolute_path, doc)}field {_error_field(error)!r}: "
                          f"{error.message}")
    problem = _value_problem(doc, schema_name, subschema)
    if problem is not None:
        field, reason = problem
        raise SchemaError(f"{what} fails the {schema_name} schema v{version} at "
                          f"{_row_prefix(field.split('.'), doc)}field {field!r}: {reason}")


def _row_prefix(path: Iterable[Any], doc: Any) -> str:
    """``row 3 (edsr), `` when ``path`` points into ``doc["rows"][3]``, else empty."""
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "rows" and isinstance(doc, Mapping):
        try:
            index = int(parts[1])
            method = doc["rows"][index].get("method")
        except (ValueError, IndexError, KeyError, TypeError, AttributeError):
            return ""
        return f"row {index} ({method}), "
    return ""


def validate_results(doc: Any, what: str = "results") -> None:
    """Raise :class:`SchemaError` naming the failing field when ``doc`` is not valid results."""
    validate_document(doc, "results", what)


def read_json(path: str | Path, what: str | None = None) -> Any:
    """Parse a JSON file; a missing or malformed file is a :class:`SchemaError` (one line)."""
    what = what or str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise SchemaError(f"{what}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a results JSON file."""
    doc = read_json(path)
    validate_results(doc, what=str(path))
    return doc


def write_json(doc: Any, path: str | Path) -> Path:
    """Write ``doc`` as indented JSON, atomically (:func:`deeplightmd.atomic.write_json`)."""
    return atomic.write_json(doc, path)


def finite_or_none(value: Any) -> float | None:
    """A JSON-safe number: ``float(value)``, or ``None`` for NaN/inf/None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def summarize(values: Sequence[float | None], seed: int = 0, confidence: float = 0.95,
              n_resamples: int = 2000) -> dict[str, Any]:
    """Mean and percentile-bootstrap CI (:func:`benchmarks.metrics.stats.bootstrap_ci`) of
    per-clip values; missing and non-finite values are left out (``n`` counts the rest)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if not np.isfinite(arr).any():
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    ci = bootstrap_ci(arr, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return {"mean": finite_or_none(ci.mean), "ci_low": finite_or_none(ci.ci_low),
            "ci_high": finite_or_none(ci.ci_high), "n": int(ci.n)}


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


#: /proc/cpuinfo flags that change which kernels torch picks (and so the trained weights' bits)
ISA_FLAG_PREFIXES = ("avx2", "avx512", "amx", "fma", "f16c", "avx_vnni")


def cpu_isa_flags(cpuinfo: str | None = None) -> list[str]:
    """Sorted vector/matrix ISA flags of the CPU (``avx2``, ``avx512*``, ``amx*``, ``fma`` …)
    from the ``flags`` line of ``/proc/cpuinfo`` (``cpuinfo``: its text); [] when unreadable."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpuinfo = fh.read()
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return sorted({f for f in line.split(":", 1)[1].split()
                           if f.startswith(ISA_FLAG_PREFIXES)})
    return []


def onednn_version(config: str | None = None) -> str | None:
    """The oneDNN (MKL-DNN) version torch was built with, parsed from ``torch.__config__.show()``
    (``config``: that text); None when torch has no oneDNN."""
    if config is None:
        if not torch.backends.mkldnn.is_available():
            return None
        config = torch.__config__.show()
    found = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([0-9][0-9.]*)", config)
    return found.group(1) if found else None


def numerics_info() -> dict[str, Any]:
    """What decides a CPU run's floating-point results: intra-op and inter-op threads, the
    instruction set torch dispatches to, the CPU's ISA flags and the oneDNN version."""
    return {"threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": cpu_isa_flags(),
            "onednn": onednn_version()}


def hardware_info(device: torch.device) -> dict[str, Any]:
    """CPU/GPU model, device used, torch version and the numerics (:func:`numerics_info`)."""
    gpu = None
    if device.type == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(device)
    return {"device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), **numerics_info()}


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the repository holding this package (``+dirty`` when modified), or None."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def utc_now() -> str:
    """Current time, ISO 8601 in UTC (seconds)."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def assemble_results(*, method: Mapping[str, Any], dataset: Mapping[str, Any],
                     protocol: Mapping[str, Any], per_clip: Mapping[str, Sequence[Any]],
                     regional: Mapping[str, Mapping[str, Any]], runtime: Mapping[str, Any],
                     device: torch.device, training: Mapping[str, Any] | None = None,
                     checkpoint: Mapping[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """The results document of one run (validated before it is returned).

    Args:
        method: ``name, version, family, description, params, hparams, inputs, citation``.
        dataset: ``name, fingerprint, store, n_clips, regions`` (``split`` is set to ``test``).
        protocol: the :class:`~benchmarks.protocol.TrainProtocol` as a dict.
        per_clip: ``clip_id`` plus one list of values per local metric, aligned with it.
        regional: region name → flat ``{metric: number | None}``.
        runtime: ``train_seconds, inference_seconds, megapixels_per_second, regional_seconds,
            total_seconds``.
        device: the torch device the method ran on (for the hardware record).
        training: the report of ``Method.fit`` (JSON-able values only are kept).
        checkpoint: ``path, sha256, trained_in_this_run, store_fingerprint`` or None.
        seed: seed of the bootstrap resampling.
    """
    local = {name: summarize(values, seed=seed) for name, values in per_clip.items()
             if name != "clip_id"}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex,
        "method": dict(method),
        "source": "reproduced",
        "citation": str(method.get("citation", "")),
        "dataset": {**dataset, "split": "test"},
        "protocol": dict(protocol),
        "metrics": {"local": local,
                    "regional": {r: {k: finite_or_none(v) for k, v in m.items()}
                                 for r, m in regional.items()}},
        "per_clip": {"clip_id": [int(c) for c in per_clip["clip_id"]],
                     **{k: [finite_or_none(v) for v in vals] for k, vals in per_clip.items()
                        if k != "clip_id"}},
        "hardware": hardware_info(device),
        "runtime": {k: finite_or_none(v) if k != "inference_seconds" else float(v)
                    for k, v in runtime.items()},
        "training": _jsonable(training) if training else None,
        "checkpoint": dict(checkpoint) if checkpoint else None,
        "git_commit": git_commit(),
        "date": utc_now(),
        "toolkit_version": __version__,
    }
    validate_results(doc)
    return doc


def _jsonable(obj: Any) -> Any:
    """``obj`` with non-JSON values dropped and non-finite floats turned into None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items() if _is_plain(v)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj if _is_plain(v)]
    if isinstance(obj, float):
        return finite_or_none(obj)
    return obj


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, Mapping))


__all__ = [
    "METRIC_RANGES",
    "SCHEMA_VERSION",
    "assemble_results",
    "cpu_isa_flags",
    "git_commit",
    "hardware_info",
    "load_schema",
    "metric_range_problem",
    "numerics_info",
    "onednn_version",
    "read_json",
    "read_results",
    "schema_version",
    "summarize",
    "validate_document",
    "validate_results",
    "write_json",
]
