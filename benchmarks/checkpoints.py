"""Checkpoint I/O: a method's weights as safetensors plus a JSON sidecar of what ``predict``
and ``bench --checkpoint`` need (method, hyper-parameters, modalities, ratio, statistics).

Used by :func:`benchmarks.runner.run_benchmark` and :mod:`benchmarks.predict`; the names are
also importable from :mod:`benchmarks.runner`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from benchmarks.method import Method
from benchmarks.protocol import TrainProtocol
from benchmarks.results import utc_now, write_json
from deeplightmd._version import __version__
from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError

CHECKPOINT_FORMAT = "deeplight-checkpoint"
CHECKPOINT_VERSION = 1


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a checkpoint: ``<name>.safetensors.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def jsonable(value: Any) -> Any:
    """``value`` through JSON (non-JSON leaves as strings), as recorded in sidecars/results."""
    return json.loads(json.dumps(value, default=str))


def save_checkpoint(method: Method, path: str | Path, *, store_fingerprint: str | None,
                    dataset: str | None = None, protocol: TrainProtocol | None = None,
                    training: Mapping[str, Any] | None = None) -> Path:
    """Write ``method.state_dict()`` to ``path`` (safetensors) plus its JSON sidecar.

    The sidecar (also embedded in the safetensors header as ``deeplight``) records the method
    name, hyper-parameters, modalities, store fingerprint, ratio and normalisation statistics
    (what ``deeplightmd predict`` needs), protocol and the file's sha256.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ConfigError(f"checkpoint path must end in .safetensors, got {str(path)!r}")
    meta = {
        "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
        "method": method.name, "hparams": jsonable(method.hparams),
        "inputs": list(method.inputs), "modalities": list(method.required_modalities()),
        "store_fingerprint": store_fingerprint, "dataset": dataset,
        "ratio": int(method.context.ratio), "stats": method.context.normalizer.to_dict(),
        "protocol": protocol.to_dict() if protocol else None,
        "training": jsonable(dict(training)) if training else None,
        "toolkit_version": __version__, "date": utc_now(),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in method.state_dict().items()}
    with atomic_path(path, errors=(SafetensorError,)) as tmp:
        save_file(state, str(tmp), metadata={"deeplight": json.dumps(meta)})
    write_json({**meta, "sha256": file_sha256(path)}, sidecar_path(path))
    return path


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's metadata: the JSON sidecar when present, else the safetensors header."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} not found")
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"checkpoint sidecar {str(side)!r} is not valid JSON: {exc.msg}") \
                from exc
        if meta.get("sha256") and meta["sha256"] != file_sha256(path):
            raise ConfigError(f"checkpoint {str(path)!r} does not match the sha256 in its sidecar "
                              f"{str(side)!r}; the weights were changed after saving")
        return meta
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = (fh.metadata() or {}).get("deeplight")
    except Exception as exc:  # safetensors raises its own error types for non-safetensors files
        raise ConfigError(f"{str(path)!r} is not a safetensors checkpoint: {exc}") from exc
    if not header:
        raise ConfigError(f"checkpoint {str(path)!r} has neither a JSON sidecar nor deeplight "
                          "metadata; it was not written by `deeplightmd bench`")
    return json.loads(header)


def load_checkpoint(path: str | Path, cls: type[Method]) -> tuple[dict[str, torch.Tensor],
                                                                  dict[str, Any]]:
    """Tensors and metadata of a checkpoint saved for method ``cls`` (safetensors only).

    The metadata's ``hparams`` pass through :meth:`Method.checkpoint_hparams` (checkpoints of
    earlier versions). Raises :class:`ConfigError` when it was saved by another method or for
    other modalities.
    """
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{str(path)!r} is not a deeplight checkpoint (format "
                          f"{meta.get('format')!r})")
    if meta.get("method") != cls.name:
        raise ConfigError(f"checkpoint {str(path)!r} was saved by method {meta.get('method')!r}, "
                          f"not {cls.name!r}")
    expected = list(cls.required_modalities())
    if sorted(meta.get("modalities") or []) != sorted(expected):
        raise ConfigError(f"checkpoint {str(path)!r} was trained on modalities "
                          f"{meta.get('modalities')}, method {cls.name!r} uses {expected}")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors' own error types
        raise ConfigError(f"cannot read checkpoint {str(path)!r}: {exc}") from exc
    meta["hparams"] = cls.checkpoint_hparams(dict(meta.get("hparams") or {}))
    return state, meta


def restore_weights(method: Method, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``method.load_state_dict(state)`` with mismatches reported as :class:`ConfigError`."""
    try:
        method.load_state_dict(dict(state))
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"checkpoint {str(path)!r} does not fit method {method.name!r}: "
                          f"{first}") from exc


__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "file_sha256", "jsonable", "load_checkpoint",
           "read_checkpoint_meta", "restore_weights", "save_checkpoint", "sidecar_path"]
