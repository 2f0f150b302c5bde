"""Run one method under the benchmark protocol: fit, checkpoint, local and regional evaluation.

:func:`run_benchmark` is what ``deeplightmd bench`` calls (docs/protocol.md describes every step):

1. resolve the method in the registry and check the store has the modalities it needs;
2. build its :class:`~benchmarks.method.MethodContext` (ratio, train-split normaliser, device, seed)
   and the :class:`~benchmarks.protocol.TrainProtocol` of the budget plus the method's overrides;
3. train on random train crops with checkpoint selection on val (``Method.fit``) and save the
   weights (safetensors + JSON sidecar) — or load existing weights with ``checkpoint=``;
4. local metrics on every test clip (per-clip values kept) and regional metrics on each held-out
   region mosaic, predicted tile by tile with overlap and blended by the
   :class:`~deeplightmd.access.Stitcher`;
5. assemble and validate the results JSON (:mod:`benchmarks.results`).

This module orchestrates; the pieces live by responsibility and are re-exported here so that
tests and notebooks can use them one at a time: checkpoint I/O in :mod:`benchmarks.checkpoints`
(:func:`save_checkpoint`, :func:`load_checkpoint`), evaluation in :mod:`benchmarks.evaluate`
(:func:`evaluate_local`, :func:`predict_region`, :func:`evaluate_regions`). Stores are read only
through :mod:`deeplightmd.access`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    file_sha256,
    jsonable,
    load_checkpoint,
    read_checkpoint_meta,
    restore_weights,
    save_checkpoint,
    sidecar_path,
)
from benchmarks.distributed import SINGLE, rank_device
from benchmarks.evaluate import (
    ClipHook,
    LocalEvaluation,
    LocalMetricFn,
    RegionalSettings,
    RegionHook,
    RegionPrediction,
    evaluate_local,
    evaluate_regions,
    flatten_metrics,
    normalized_inputs,
    predict_region,
    read_region_reference,
    tile_grid,
    timed_predict,
    write_geotiff,
)
from benchmarks.method import Method, MethodContext
from benchmarks.protocol import TrainProtocol, protocol_for_budget, resolve_device, seed_everything
from benchmarks.registry import get_method
from benchmarks.results import assemble_results, write_json
from benchmarks.thumbnails import ThumbnailRecorder
from benchmarks.training import TrainSession, fit_method, single_process_reason
from deeplightmd._version import __version__
from deeplightmd.access import split_modalities
from deeplightmd.access._store import band_request, normalizer_of
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.integrity import verify_store
from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import read_store_attrs
from deeplightmd.store_format import store_modalities as modalities_of

# ------------------------------------------------------------------------------------------------
# store checks and method set-up

def store_modalities(store: str) -> dict[str, tuple[str, ...]]:
    """Modalities present in each split group of the store (``{split: names}``)."""
    return split_modalities(store)


def check_store_modalities(store: str, method_name: str, needed: Iterable[str]) -> None:
    """Raise :class:`StoreError` listing the modalities ``needed`` that some split lacks."""
    needed = tuple(dict.fromkeys(needed))
    for split, present in store_modalities(store).items():
        missing = [m for m in needed if m not in present]
        if missing:
            raise StoreError(f"store {store!r} lacks modality(ies) {', '.join(missing)} in split "
                             f"{split!r}, needed by method {method_name!r} (the split has "
                             f"{', '.join(present) or 'nothing'})")


def needed_modalities(cls: type[Method]) -> tuple[str, ...]:
    """Everything the harness reads for a method: its inputs, its targets, and ``hr_ntl``."""
    return tuple(dict.fromkeys((*cls.inputs, *cls.targets, "hr_ntl")))


def make_context(attrs: Mapping[str, Any], device: torch.device, seed: int,
                 bands: Mapping[str, tuple[str, ...]] | None = None) -> MethodContext:
    """The method context of a store: ratio, train-split normaliser (for the method's DMO
    ``bands``), device and seed."""
    specs = modalities_of(dict(attrs))
    normalizer = normalizer_of(dict(attrs), specs, band_request(specs, bands))
    return MethodContext(ratio=int(attrs["grid"]["ratio"]), normalizer=normalizer,
                         device=device, seed=seed)


def checkpoint_context(meta: Mapping[str, Any], attrs: Mapping[str, Any], device: torch.device,
                       seed: int, path: str | Path) -> MethodContext:
    """The method context of checkpoint ``path`` evaluated on a store (``attrs``): the
    normalisation statistics it was trained with (as ``predict`` uses them), not the store's,
    so a model evaluated on another store sees its inputs as in training.

    Raises :class:`ConfigError` when the checkpoint was trained at another ratio or records no
    statistics.
    """
    ratio = int(attrs["grid"]["ratio"])
    if meta.get("ratio") is not None and int(meta["ratio"]) != ratio:
        raise ConfigError(f"checkpoint {str(path)!r} was trained at ratio {meta['ratio']}, the "
                          f"store has ratio {ratio}")
    if not meta.get("stats"):
        raise ConfigError(f"checkpoint {str(path)!r} records no normalisation statistics; "
                          "save it again with `deeplightmd bench`")
    return MethodContext(ratio=ratio, normalizer=Normalizer.from_dict(dict(meta["stats"])),
                         device=device, seed=seed)


def make_protocol(cls: type[Method], budget: str, seed: int, device: torch.device,
                  lr_clip: int | None = None, loader_workers: int | None = None,
                  steps: int | None = None) -> TrainProtocol:
    """Budget protocol + the method's overrides, with the run's seed and device.

    The training crop is limited to the store's LR clip side when the clips are smaller.
    ``loader_workers`` replaces the budget's DataLoader worker count (speed only: crops and
    batch order do not depend on it); ``steps`` the number of training steps (quick checks).
    """
    run = {"seed": seed, "device": str(device)}
    if loader_workers is not None:
        run["num_workers"] = loader_workers
    if steps is not None:
        run["steps"] = steps
    protocol = protocol_for_budget(budget).with_overrides(
        {**cls.protocol_overrides(budget), **run})
    if lr_clip is not None and protocol.lr_crop > lr_clip:
        protocol = protocol.with_overrides({"lr_crop": lr_clip})
    return protocol


def make_method(cls: type[Method], context: MethodContext, budget: str,
                hparams: Mapping[str, Any] | None = None) -> Method:
    """An instance with the budget's default hyper-parameters updated by ``hparams``."""
    return cls(context, **{**cls.default_hparams(budget), **(hparams or {})})


# ------------------------------------------------------------------------------------------------
# the whole run

def run_benchmark(method_name: str | type[Method], store: str | Path, budget: str = "small",
                  seed: int = 0,
                  out: str | Path | None = None, checkpoint: str | Path | None = None,
                  device: str = "auto", progress: bool = True,
                  hparams: Mapping[str, Any] | None = None,
                  checkpoint_out: str | Path | None = None,
                  regional: RegionalSettings | None = None, max_test_clips: int | None = None,
                  eval_batch_size: int = 4, loader_workers: int | None = None,
                  steps: int | None = None, session: TrainSession | None = None,
                  thumbnail_dir: str | Path | None = None, verify: str = "fast"
                  ) -> dict[str, Any] | None:
    """Train (or load) ``method_name`` on ``store`` and evaluate it; return the results dict.

    With several processes (``session.dist``) every rank trains and only rank 0 evaluates,
    writes and returns the results; the other ranks return ``None``.

    Args:
        method_name: a registered method (``deeplightmd methods``), or a
            :class:`~benchmarks.method.Method` subclass (e.g. one defined in a notebook).
        store: path or URL of a DeepLightMD store.
        budget: ``small`` or ``paper`` (see :func:`~benchmarks.protocol.protocol_for_budget`).
        seed: seed of everything random (weights, crops, bootstrap).
        out: where to write the results JSON (``None``: not written).
        checkpoint: evaluate these weights (a ``.safetensors`` saved by a previous run) instead of
            training.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, …
        progress: show progress bars.
        hparams: hyper-parameters overriding the budget defaults.
        checkpoint_out: where to save trained weights (default: ``out`` with suffix
            ``.safetensors``; nothing is saved when both are ``None`` or nothing was learned).
        regional: tiled-inference settings (default :class:`RegionalSettings`).
        max_test_clips: evaluate only the first test clips (quick checks).
        eval_batch_size: test clips per ``predict`` call.
        loader_workers: DataLoader worker processes for training (default: the budget's).
        steps: training steps instead of the budget's (quick checks; recorded in the protocol).
        session: processes and resumable training state
            (:class:`~benchmarks.training.TrainSession`); its ``state_path`` defaults to the
            checkpoint's ``<name>.train-state.pt``, deleted once the results are written.
        thumbnail_dir: write PNG thumbnails of the first test clips and of every region mosaic
            here (:mod:`benchmarks.thumbnails`; the leaderboard site shows them) and record
            their paths in the results under ``thumbnails``.
        verify: integrity check of the store before anything is trained (``fast``: chunk
            objects against the build's manifest; ``full``: also every chunk's CRC32C; ``none``);
            the datasets then skip their own check.
    """
    from benchmarks.metrics import MetricConfig, compute_local_metrics
    from deeplightmd.access import DeepLightDataset

    start = time.perf_counter()
    store = str(store)
    cls = get_method(method_name) if isinstance(method_name, str) else method_name
    attrs = read_store_attrs(store)
    verify_store(store, attrs, verify)
    check_store_modalities(store, cls.name, needed_modalities(cls))
    session = session or TrainSession()
    if session.dist.active and single_process_reason(cls, checkpoint is not None):
        if not session.dist.is_main:
            return None
        session = replace(session, dist=SINGLE)
    torch_device = rank_device(resolve_device(device), session.dist)
    seed_everything(seed)
    if checkpoint is not None:
        state, meta = load_checkpoint(checkpoint, cls)
        context = checkpoint_context(meta, attrs, torch_device, seed, checkpoint)
    else:
        context = make_context(attrs, torch_device, seed, cls.bands)
    protocol = make_protocol(cls, budget, seed, torch_device, int(attrs["grid"]["lr_clip"]),
                             loader_workers, steps)
    fingerprint = attrs.get("fingerprint")
    regional = regional or RegionalSettings()
    metric_config = MetricConfig()

    training: dict[str, Any] | None = None
    ckpt_record: dict[str, Any] | None = None
    if checkpoint is not None:
        if hparams and any(meta["hparams"].get(k) != v for k, v in hparams.items()):
            raise ConfigError(f"hyper-parameters {dict(hparams)} differ from those of checkpoint "
                              f"{str(checkpoint)!r}: {meta['hparams']}")
        method = cls(context, **meta["hparams"])
        restore_weights(method, state, checkpoint)
        if meta.get("store_fingerprint") != fingerprint:
            warnings.warn(f"checkpoint {str(checkpoint)!r} was trained on store fingerprint "
                          f"{meta.get('store_fingerprint')}, evaluating on {fingerprint}",
                          stacklevel=2)
        if meta.get("protocol"):
            protocol = TrainProtocol(**{**meta["protocol"], "device": str(torch_device)})
        training = meta.get("training")
        ckpt_record = {"path": str(checkpoint), "sha256": file_sha256(checkpoint),
                       "trained_in_this_run": False,
                       "store_fingerprint": meta.get("store_fingerprint"),
                       "dataset": meta.get("dataset")}
    else:
        method = make_method(cls, context, budget, hparams)
        train_names = tuple(dict.fromkeys((*cls.inputs, *cls.targets)))
        train = DeepLightDataset(store, "train", modalities=train_names, crop=protocol.lr_crop,
                                 normalize=True, seed=seed, verify="none", bands=cls.bands)
        val = DeepLightDataset(store, "val", modalities=train_names, crop=None, normalize=True,
                               seed=seed, verify="none", bands=cls.bands)
        target = checkpoint_out or (Path(out).with_suffix(".safetensors") if out else None)
        session = replace(session, identity={"store_fingerprint": fingerprint},
                          state_path=session.state_path or (
                              Path(target).with_suffix(".train-state.pt") if target else None))
        training = fit_method(method, train, val, protocol, progress, session)
        if not session.dist.is_main:
            return None
        if target is not None and method.state_dict():
            path = save_checkpoint(method, target, store_fingerprint=fingerprint,
                                   dataset=attrs.get("dataset"), protocol=protocol,
                                   training=training)
            ckpt_record = {"path": str(path), "sha256": file_sha256(path),
                           "trained_in_this_run": True, "store_fingerprint": fingerprint,
                           "dataset": attrs.get("dataset")}

    sensor_model = context_sensor_model(attrs)
    test = DeepLightDataset(store, "test", modalities=tuple(dict.fromkeys(
        (*cls.inputs, "lr_ntl", "hr_ntl"))), crop=None, normalize=False, seed=seed,
        verify="none", bands=cls.bands)

    def metric_fn(sr: np.ndarray, hr: np.ndarray, lr: np.ndarray, model: Any
                  ) -> Mapping[str, float]:
        return compute_local_metrics(sr, hr, lr, model, metric_config)

    thumbs = ThumbnailRecorder(thumbnail_dir, cls.name) if thumbnail_dir is not None else None
    local = evaluate_local(method, test, metric_fn, sensor_model, batch_size=eval_batch_size,
                           max_clips=max_test_clips, progress=progress,
                           on_clip=thumbs.add_clip if thumbs else None)
    regions, regional_seconds = evaluate_regions(method, store, regional, metric_config,
                                                 progress=progress,
                                                 on_region=thumbs.add_region if thumbs else None)
    results = assemble_results(
        method={"name": cls.name, "version": str(getattr(cls, "version", "") or __version__),
                "family": cls.family, "description": cls.description,
                "params": int(method.num_parameters()), "hparams": jsonable(method.hparams),
                "inputs": list(cls.inputs), "citation": cls.citation},
        dataset={"name": str(attrs.get("dataset", "unknown")), "fingerprint": fingerprint,
                 "store": store, "n_clips": len(local.per_clip["clip_id"]),
                 "regions": list(regions)},
        protocol={**protocol.to_dict(), "metric_config": metric_config.to_dict(),
                  "regional": {"tile": regional.tile, "overlap": regional.overlap},
                  "max_test_clips": max_test_clips},
        per_clip=local.per_clip, regional=regions,
        runtime={"train_seconds": (training or {}).get("train_seconds"),
                 "inference_seconds": local.inference_seconds,
                 "megapixels_per_second": local.megapixels_per_second,
                 "regional_seconds": regional_seconds,
                 "total_seconds": time.perf_counter() - start},
        device=torch_device, training=training, checkpoint=ckpt_record, seed=seed)
    if thumbs is not None:
        results["thumbnails"] = thumbs.record()
    if out is not None:
        write_json(results, out)
    if checkpoint is None and session.state_path is not None:
        session.state_path.unlink(missing_ok=True)  # the run is complete
    return results


def context_sensor_model(attrs: Mapping[str, Any]) -> Any:
    """``clip_id →`` :class:`~deeplightmd.sensor.SensorModel` of the store's clips (one model
    for a single-world store, each world's own in a multi-world store; ``None`` when unknown)."""
    from deeplightmd.sensor import clip_sensor_models

    return clip_sensor_models(dict(attrs))


__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "ClipHook", "LocalEvaluation",
           "LocalMetricFn", "RegionHook", "RegionPrediction", "RegionalSettings",
           "check_store_modalities", "checkpoint_context", "context_sensor_model",
           "evaluate_local", "evaluate_regions",
           "file_sha256", "flatten_metrics", "load_checkpoint", "make_context", "make_method",
           "make_protocol", "needed_modalities", "normalized_inputs", "predict_region",
           "read_checkpoint_meta", "read_region_reference", "restore_weights", "run_benchmark",
           "save_checkpoint", "sidecar_path", "store_modalities", "tile_grid", "timed_predict",
           "write_geotiff"]
