"""The periodic training state that makes a run resumable (docs/protocol.md, "Resuming").

A state file holds everything the next step depends on: the network, the optimiser and scheduler
states, the best-on-val weights so far, the loss history, the step (from which the sampler's
``(epoch, batch)`` follows) and the RNG states of torch (CPU and CUDA), NumPy and Python of every
rank. It is written with ``torch.save`` into a temporary file beside the target and renamed over
it, so a kill at any moment leaves either the previous state or the new one; it is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeplightmd.errors import ConfigError

STATE_FORMAT = "deeplight-train-state"
STATE_VERSION = 1


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The RNG states of torch (CPU, and ``device`` when CUDA), NumPy and Python."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Set the RNG states saved by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


def identity_key(identity: Mapping[str, Any]) -> str:
    """Canonical JSON of the settings a state belongs to (compared on resume)."""
    return json.dumps(identity, sort_keys=True, default=str)


def save_state(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": STATE_FORMAT, "format_version": STATE_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(path: str | Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    """Read a state written by :func:`save_state` for a run with the same ``identity``.

    Raises :class:`ConfigError` when the file is not a training state (or not loadable without
    unpickling arbitrary objects) or belongs to a run with other settings.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot read training state {str(path)!r}: {first}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{str(path)!r} is not a deeplight training state")
    if state.get("format_version") != STATE_VERSION:
        raise ConfigError(f"training state {str(path)!r} has format version "
                          f"{state.get('format_version')}, this toolkit reads {STATE_VERSION}")
    saved, wanted = json.loads(state.get("identity", "{}")), json.loads(identity_key(identity))
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        raise ConfigError(f"training state {str(path)!r} belongs to a run with other "
                          f"{', '.join(differ)}; delete it or run without --resume")
    return state


__all__ = ["STATE_FORMAT", "STATE_VERSION", "capture_rng", "identity_key", "load_state",
           "restore_rng", "save_state"]
