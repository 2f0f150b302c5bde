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

The pieces (:func:`evaluate_local`, :func:`predict_region`, :func:`save_checkpoint`,
:func:`load_checkpoint`) are public so that tests and notebooks can use them one at a time.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.distributed import SINGLE, rank_device
from benchmarks.method import Method, MethodContext
from benchmarks.protocol import TrainProtocol, protocol_for_budget, resolve_device, seed_everything
from benchmarks.registry import get_method
from benchmarks.results import assemble_results, utc_now, write_json
from benchmarks.thumbnails import ThumbnailRecorder
from benchmarks.training import TrainSession, fit_method, single_process_reason
from deeplightmd._version import __version__
from deeplightmd.access import read_region_mosaic, split_modalities
from deeplightmd.access._store import band_request, normalizer_of
from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.integrity import decode_errors, verify_store
from deeplightmd.normalize import Normalizer
from deeplightmd.predict.tiled import predict_windows, timed_predict
from deeplightmd.store_format import (
    read_store_attrs,
)
from deeplightmd.store_format import store_modalities as modalities_of

CHECKPOINT_FORMAT = "deeplight-checkpoint"
CHECKPOINT_VERSION = 1
LocalMetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray, Any], Mapping[str, float]]
#: called with ``(clip_id, lr, sr, hr)`` radiance arrays of each evaluated test clip
ClipHook = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]
#: called with ``(region, sr, hr)`` radiance mosaics of each evaluated region
RegionHook = Callable[[str, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class RegionalSettings:
    """Tiled inference over the region mosaics.

    Attributes:
        tile: LR tile side (pixels) fed to the method.
        overlap: LR pixels shared by neighbouring tiles (blended by the stitcher); about the
            method's receptive field in LR pixels keeps seams invisible.
        regions: the regions to evaluate (``None``: all regions of the store; ``()``: none).
        geotiff_dir: when set, the SR mosaic of each region is written there as
            ``<method>_<region>.tif`` (float32 radiance, the region's CRS and HR transform).
    """

    tile: int = 32
    overlap: int = 8
    regions: tuple[str, ...] | None = None
    geotiff_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ConfigError(f"tile must be >= 1 LR pixel, got {self.tile}")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(f"overlap must be in [0, tile={self.tile}), got {self.overlap}")


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
# checkpoints

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


def _jsonable(value: Any) -> Any:
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
        "method": method.name, "hparams": _jsonable(method.hparams),
        "inputs": list(method.inputs), "modalities": list(method.required_modalities()),
        "store_fingerprint": store_fingerprint, "dataset": dataset,
        "ratio": int(method.context.ratio), "stats": method.context.normalizer.to_dict(),
        "protocol": protocol.to_dict() if protocol else None,
        "training": _jsonable(dict(training)) if training else None,
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

    Raises :class:`ConfigError` when it was saved by another method or for other modalities.
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
    return state, meta


def restore_weights(method: Method, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``method.load_state_dict(state)`` with mismatches reported as :class:`ConfigError`."""
    try:
        method.load_state_dict(dict(state))
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"checkpoint {str(path)!r} does not fit method {method.name!r}: "
                          f"{first}") from exc


# ------------------------------------------------------------------------------------------------
# evaluation

def normalized_inputs(raw: Mapping[str, Any], names: Iterable[str], normalizer: Normalizer,
                      device: torch.device) -> dict[str, torch.Tensor]:
    """The modalities ``names`` of a batch in physical units, normalised and on ``device``."""
    return {n: normalizer.normalize(n, raw[n].to(device=device, dtype=torch.float32))
            for n in names}


@dataclass
class LocalEvaluation:
    """Per-clip metrics of the test split and the inference time spent on them."""

    per_clip: dict[str, list[float | None]]
    inference_seconds: float
    hr_pixels: int

    @property
    def megapixels_per_second(self) -> float | None:
        """Output HR megapixels per second of ``predict``."""
        return self.hr_pixels / 1e6 / self.inference_seconds if self.inference_seconds > 0 \
            else None


def evaluate_local(method: Method, test: torch.utils.data.Dataset, metric_fn: LocalMetricFn,
                   sensor_model: Any = None, batch_size: int = 4, max_clips: int | None = None,
                   progress: bool = True, on_clip: ClipHook | None = None) -> LocalEvaluation:
    """Predict every test clip and compute ``metric_fn(sr, hr, lr, sensor_model)`` on radiance.

    Args:
        method: the (fitted) method.
        test: a dataset of whole test clips in **physical units** (``normalize=False``) with the
            method's inputs plus ``hr_ntl`` and ``lr_ntl``; inputs are normalised here.
        metric_fn: per-clip metrics of 2-D radiance arrays ``(sr, hr, lr, sensor_model)``.
        sensor_model: the store's sensor model (``None`` when unknown).
        batch_size: clips per ``predict`` call.
        max_clips: evaluate only the first clips (quick checks; recorded in the results).
        progress: show a progress bar.
        on_clip: called with ``(clip_id, lr, sr, hr)`` of every clip (e.g. thumbnails).
    """
    normalizer = method.context.normalizer
    device = method.context.device
    if max_clips is not None:
        test = torch.utils.data.Subset(test, range(min(max_clips, len(test))))
    loader = torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=False)
    per_clip: dict[str, list[float | None]] = {"clip_id": []}
    seconds, pixels = 0.0, 0
    bar = tqdm(total=len(test), desc=f"test {method.name}", disable=not progress, leave=False,
               dynamic_ncols=True)
    for raw in loader:
        batch = normalized_inputs(raw, method.inputs, normalizer, device)
        pred, dt = timed_predict(method, batch)
        seconds += dt
        pixels += int(pred.shape[0] * pred.shape[-2] * pred.shape[-1])
        sr = normalizer.denormalize("hr_ntl", pred.float()).cpu().numpy()
        hr = raw["hr_ntl"].numpy()
        lr = raw["lr_ntl"].numpy()
        if sr.shape != hr.shape:
            raise ConfigError(f"method {method.name!r} predicted shape {tuple(sr.shape)}, expected "
                              f"{tuple(hr.shape)}")
        for i in range(sr.shape[0]):
            values = metric_fn(sr[i, 0], hr[i, 0], lr[i, 0], sensor_model)
            per_clip["clip_id"].append(int(raw["clip_id"][i]))
            if on_clip is not None:
                on_clip(int(raw["clip_id"][i]), lr[i, 0], sr[i, 0], hr[i, 0])
            for name, value in values.items():
                per_clip.setdefault(name, []).append(None if value is None else float(value))
        bar.update(sr.shape[0])
    bar.close()
    n = len(per_clip["clip_id"])
    ragged = [k for k, v in per_clip.items() if len(v) != n]
    if ragged:
        raise ConfigError(f"local metrics {ragged} were not reported for every clip")
    return LocalEvaluation(per_clip, seconds, pixels)


@dataclass
class RegionPrediction:
    """The stitched SR mosaic of a region (radiance) and how it was made."""

    sr: np.ndarray
    windows: list[tuple[int, int, int, int]]
    seconds: float


def predict_region(method: Method, region: Any, stitcher: Any, progress: bool = True
                   ) -> RegionPrediction:
    """Tiled inference over a region: predict each tile, denormalise, blend into ``stitcher``
    (through :func:`deeplightmd.predict.tiled.predict_windows`, the one tiled-inference loop).

    Args:
        method: the (fitted) method.
        region: a :class:`~deeplightmd.access.RegionDataset` (normalised tiles, each with a
            ``window`` = LR ``(row, col, h, w)``) or any sequence of such tile dicts.
        stitcher: a :class:`~deeplightmd.access.Stitcher` for the region's HR shape; receives
            radiance tiles ``(H, W)``, so blending happens in physical units.
        progress: show a progress bar.
    """
    device = method.context.device
    if hasattr(region, "windows"):
        windows = [tuple(int(v) for v in w) for w in region.windows]
        tile_at = region.__getitem__
    else:
        tiles = [region[i] for i in range(len(region))]
        windows = [tuple(int(v) for v in t["window"]) for t in tiles]
        tile_at = tiles.__getitem__

    def batch_of(i: int) -> dict[str, torch.Tensor]:
        tile = tile_at(i)
        return {n: tile[n][None].to(device=device, dtype=torch.float32) for n in method.inputs}

    seconds = predict_windows(method, windows, batch_of, stitcher.add, progress=progress,
                              desc=f"tiles {method.name}", leave=False)
    result = stitcher.result()
    sr = result.cpu().numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
    return RegionPrediction(np.squeeze(sr, axis=0) if sr.ndim == 3 else sr, windows, seconds)


def tile_grid(windows: Iterable[tuple[int, int, int, int]], ratio: int,
              hr_shape: tuple[int, int]) -> Any:
    """The :class:`~benchmarks.metrics.TileGrid` (HR rows/cols where a tile starts or ends)."""
    from benchmarks.metrics import TileGrid

    windows = list(windows)
    rows = {e * ratio for r, _, h, _ in windows for e in (r, r + h)}
    cols = {e * ratio for _, c, _, w in windows for e in (c, c + w)}
    return TileGrid(tuple(b for b in rows if 0 < b < hr_shape[0]),
                    tuple(b for b in cols if 0 < b < hr_shape[1]))


def write_geotiff(path: str | Path, array: np.ndarray, crs: Any, transform: Any) -> Path:
    """Write a 2-D float32 raster (deflate, tiled) with the given CRS and affine transform."""
    import rasterio
    import rasterio._err
    import rasterio.errors

    path = Path(path)
    h, w = array.shape
    tiled = h >= 256 and w >= 256
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "float32",
               "crs": crs, "transform": transform, "compress": "deflate", "tiled": tiled,
               **({"blockxsize": 256, "blockysize": 256} if tiled else {})}
    with atomic_path(path, errors=(rasterio.errors.RasterioError,
                                   rasterio._err.CPLE_BaseError)) as tmp, \
            rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array.astype(np.float32), 1)
        dst.update_tags(1, units="nW cm-2 sr-1", long_name="super-resolved nighttime light")
    return path


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Scalar entries of a (possibly nested) metrics dict, nested keys joined by ``.``."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, np.integer, np.floating)):
            out[name] = None if value is None else float(value)
    return out


def read_region_reference(store: str, region: str) -> np.ndarray:
    """The HR NTL mosaic of a region (radiance)."""
    return read_region_mosaic(store, region, "hr_ntl", "hr")


def evaluate_regions(method: Method, store: str, settings: RegionalSettings, metric_config: Any,
                     progress: bool = True, on_region: RegionHook | None = None
                     ) -> tuple[dict[str, dict[str, float | None]], float]:
    """Regional metrics of every selected region; returns ``(per-region metrics, seconds)``.
    ``on_region(name, sr, hr)`` is called with each region's mosaics (e.g. thumbnails)."""
    from benchmarks.metrics import compute_regional_metrics
    from deeplightmd.access import RegionDataset

    attrs = read_store_attrs(store)
    names = list(attrs.get("regions", [])) if settings.regions is None else list(settings.regions)
    out: dict[str, dict[str, float | None]] = {}
    total = 0.0
    ratio = method.context.ratio
    for name in names:
        with decode_errors(store, f"region {name}"):
            region = RegionDataset(store, name, tile=settings.tile, overlap=settings.overlap,
                                   modalities=method.inputs, normalize=True,
                                   bands=method.bands)
            if region.ratio != ratio:
                raise StoreError(f"region {name!r} has ratio {region.ratio}, the store {ratio}")
            pred = predict_region(method, region, region.stitcher(), progress=progress)
            hr = read_region_reference(store, name)
        total += pred.seconds
        metrics = compute_regional_metrics(pred.sr, hr, np.asarray(region.mask).astype(bool),
                                           np.asarray(region.admin), metric_config,
                                           tile_grid=tile_grid(pred.windows, ratio, hr.shape))
        flat = flatten_metrics(metrics)
        hr_px = int(pred.sr.size)
        flat.update({"tiles": float(len(pred.windows)), "hr_megapixels": hr_px / 1e6,
                     "inference_seconds": pred.seconds,
                     "megapixels_per_second": hr_px / 1e6 / pred.seconds if pred.seconds else None})
        out[name] = flat
        if settings.geotiff_dir is not None:
            write_geotiff(Path(settings.geotiff_dir) / f"{method.name}_{name}.tif", pred.sr,
                          region.crs, region.transform)
        if on_region is not None:
            on_region(name, pred.sr, hr)
    return out, total


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
    context = make_context(attrs, torch_device, seed, cls.bands)
    protocol = make_protocol(cls, budget, seed, torch_device, int(attrs["grid"]["lr_clip"]),
                             loader_workers, steps)
    fingerprint = attrs.get("fingerprint")
    regional = regional or RegionalSettings()
    metric_config = MetricConfig()

    training: dict[str, Any] | None = None
    ckpt_record: dict[str, Any] | None = None
    if checkpoint is not None:
        state, meta = load_checkpoint(checkpoint, cls)
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
                       "store_fingerprint": meta.get("store_fingerprint")}
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
                           "trained_in_this_run": True, "store_fingerprint": fingerprint}

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
                "params": int(method.num_parameters()), "hparams": _jsonable(method.hparams),
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
    """The store's :class:`~deeplightmd.sensor.SensorModel`, or ``None`` when unknown."""
    from deeplightmd.sensor import SensorModel

    params = attrs.get("sensor_model")
    return SensorModel.from_dict(params) if params else None


__all__ = ["LocalEvaluation", "RegionPrediction", "RegionalSettings", "check_store_modalities",
           "evaluate_local", "evaluate_regions", "file_sha256", "load_checkpoint", "make_context",
           "make_method", "make_protocol", "needed_modalities", "predict_region",
           "read_checkpoint_meta", "restore_weights", "run_benchmark", "save_checkpoint",
           "store_modalities", "tile_grid", "write_geotiff"]
