"""Shared plumbing of the readers: option checks and a per-process lazy handle on a store."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from deeplightmd.daytime import conform_bands
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.modalities import Modality
from deeplightmd.normalize import Normalizer
from deeplightmd.sensor import SensorModel
from deeplightmd.store_format import MODALITY_NAMES, SPLITS, read_store_attrs

StoreLike = str | os.PathLike


def store_url(store: StoreLike) -> str:
    """A path or fsspec URL as a string (paths made absolute so worker processes find them)."""
    text = os.fspath(store)
    return text if "://" in text else str(Path(text).absolute())


def load_attrs(url: str) -> dict[str, Any]:
    """Version-checked root attrs; warns when the store was never finished."""
    attrs = read_store_attrs(url)
    if not attrs.get("complete", False):
        warnings.warn(f"store {url!r} is incomplete (attrs complete != true): some clips may be "
                      "missing; rebuild or resume it with `deeplightmd build`", stacklevel=3)
    return attrs


def check_split(split: str, attrs: dict[str, Any]) -> str:
    """``split`` if the store has it, else :class:`ConfigError`."""
    known = tuple(attrs.get("splits", {})) or SPLITS
    if split not in known:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(known)}")
    return split


def check_region(region: str, attrs: dict[str, Any]) -> str:
    """``region`` if the store has it, else :class:`ConfigError`."""
    known = list(attrs.get("regions", []))
    if region not in known:
        raise ConfigError(f"unknown region {region!r}; this store has "
                          f"{', '.join(known) if known else 'no regions'}")
    return region


def check_modalities(modalities: Iterable[str], allowed: tuple[str, ...] = MODALITY_NAMES
                     ) -> tuple[str, ...]:
    """The requested modalities as a tuple, each checked against ``allowed``."""
    if isinstance(modalities, str):
        modalities = (modalities,)
    mods = tuple(dict.fromkeys(modalities))
    if not mods:
        raise ConfigError(f"no modality requested; expected some of {', '.join(allowed)}")
    unknown = [m for m in mods if m not in allowed]
    if unknown:
        raise ConfigError(f"unknown modality {unknown[0]!r}; expected some of {', '.join(allowed)}")
    return mods


def normalizer_of(attrs: dict[str, Any], specs: dict[str, Modality] | None = None,
                  bands: Mapping[str, tuple[str, ...]] | None = None) -> Normalizer:
    """The :class:`Normalizer` of the store's train statistics (for the DMO bands ``bands``
    when given, see :func:`band_request`)."""
    stats = attrs.get("stats")
    if not stats:
        raise StoreError("store has no normalisation statistics (attrs stats); rebuild it")
    normalizer = Normalizer.from_dict(stats)
    if specs is not None and bands and "dmo" in bands:
        normalizer = normalizer.with_bands(specs["dmo"].band_names, bands["dmo"])
    return normalizer


def band_request(specs: dict[str, Modality], bands: Mapping[str, tuple[str, ...]] | None
                 ) -> dict[str, tuple[str, ...]]:
    """Checked ``modality → wanted band names`` (only the DMO's band order is adjustable)."""
    out = {k: tuple(v) for k, v in (bands or {}).items()}
    unknown = sorted(set(out) - {"dmo"})
    if unknown:
        raise ConfigError(f"bands can be chosen for dmo only, got {unknown}")
    if "dmo" in out and not out["dmo"]:
        raise ConfigError("bands['dmo'] names no band")
    return out


def conform(specs: dict[str, Modality], bands: Mapping[str, tuple[str, ...]], name: str,
            x: np.ndarray) -> np.ndarray:
    """``x`` (modality ``name`` as stored) with the bands ``bands[name]`` (missing ones 0)."""
    if name not in bands:
        return x
    return conform_bands(np.asarray(x), specs[name].band_names, bands[name])


def sensor_model_of(attrs: dict[str, Any]) -> SensorModel | None:
    """The store's LR sensor model, or ``None`` when unknown (real LR data)."""
    params = attrs.get("sensor_model")
    return SensorModel.from_dict(params) if params else None


class LazyGroup:
    """A read-only zarr group opened on first use in each process (safe to pickle to workers)."""

    def __init__(self, url: str, path: str = "") -> None:
        self.url, self.path = url, path
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._pid: int | None = None

    @property
    def group(self) -> zarr.Group:
        """The zarr group, (re)opened when first used in this process."""
        if self._group is None or self._pid != os.getpid():
            root = zarr.open_group(self.url, mode="r")
            self._group = root[self.path] if self.path else root
            self._arrays = {}
            self._pid = os.getpid()
        return self._group

    def __getitem__(self, name: str) -> zarr.Array:
        group = self.group
        if name not in self._arrays:
            self._arrays[name] = group[name]
        return self._arrays[name]

    def read_many(self, requests: list[tuple[str, tuple[Any, ...]]]) -> list[np.ndarray]:
        """Read ``(array name, selection)`` pairs concurrently in one trip to zarr's IO loop.

        One sample needs one read per modality; gathering them saves a thread hand-off per read
        (the dominant cost for small clips) and overlaps decompression of the chunks.
        """
        arrays = [self[name] for name, _ in requests]

        async def gather() -> list[Any]:
            return await asyncio.gather(*(arr.async_array.getitem(sel)
                                          for arr, (_, sel) in zip(arrays, requests, strict=True)))

        return [np.asarray(x) for x in sync(gather())]

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "path": self.path, "_group": None, "_arrays": {}, "_pid": None}
