"""``predict_geotiff``: load a method from its checkpoint and super-resolve a user's GeoTIFF.

Steps: check every input file → load the method (checkpoint metadata gives the method name,
hyper-parameters, modalities, ratio and the training store's normalisation statistics) → lay the
SR grid on the LR raster (cropped to the region) → check the auxiliaries cover it → tiled
inference (the toolkit's :func:`~deeplightmd.predict.tiled.predict_tiled`) streaming finished
rows into the COG writer and the light-sum accumulators.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling

from benchmarks.checkpoints import load_checkpoint, restore_weights
from benchmarks.method import Method, MethodContext
from benchmarks.protocol import resolve_device
from benchmarks.registry import get_method
from deeplightmd.errors import ConfigError, DataWarning
from deeplightmd.integrity import verify_store
from deeplightmd.normalize import Normalizer
from deeplightmd.predict.grid import (
    AUX_NAMES,
    SRGrid,
    aux_reader,
    check_aux_coverage,
    check_file,
    make_sr_grid,
    parse_constant,
)
from deeplightmd.predict.io import OutputSettings, SRWriter
from deeplightmd.predict.sums import LightSums, light_sums_from_layer, read_polygons, select_region
from deeplightmd.predict.tiled import TiledPrediction, TileSettings, predict_tiled
from deeplightmd.store_format import read_store_attrs


@dataclass(frozen=True)
class PredictRequest:
    """Everything ``deeplightmd predict`` needs.

    Attributes:
        method: registered method name.
        lr: LR NTL GeoTIFF (any CRS).
        out: output GeoTIFF.
        checkpoint: ``.safetensors`` saved by ``deeplightmd bench`` (optional for non-learned
            methods when ``store`` gives the normalisation statistics).
        store: a DeepLightMD store whose ratio and statistics to use when the checkpoint has none.
        aux: auxiliary rasters by modality (``dmo``, ``dem``, ``isp``), or ``constant:VALUE``
            (the manifest's constant stand-in, e.g. for a model trained with
            ``dmo: {constant: 0}``).
        region: polygon layer restricting (and cropping) the output.
        region_name: feature name selected in ``region`` (all features when ``None``).
        name_field: field holding feature names in ``region``/``admin`` (auto when ``None``).
        admin: polygon layer of admin units for light sums (default: the region features).
        tiles: tile size and overlap.
        output: GeoTIFF layout.
        preserve_lr_sum: rescale each LR footprint to the LR value.
        device: ``auto``, ``cpu``, ``cuda``, ...
        progress: show a progress bar.
    """

    method: str
    lr: str | Path
    out: str | Path
    checkpoint: str | Path | None = None
    store: str | None = None
    aux: dict[str, str | Path] = field(default_factory=dict)
    region: str | Path | None = None
    region_name: str | None = None
    name_field: str | None = None
    admin: str | Path | None = None
    tiles: TileSettings = field(default_factory=TileSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    preserve_lr_sum: bool = False
    device: str = "auto"
    progress: bool = True


@dataclass
class PredictResult:
    """The written raster and what was computed on the way."""

    path: Path
    grid: SRGrid
    tiling: TiledPrediction
    sums: LightSums | None
    checkpoint_meta: dict[str, Any]


def load_method(name: str, checkpoint: str | Path | None, store: str | None,
                device: torch.device) -> tuple[Method, dict[str, Any]]:
    """The method ready to predict, with the metadata of its checkpoint (``{}`` without one).

    Ratio and normaliser come from the checkpoint's metadata, else from ``store``.

    Raises:
        ConfigError: unknown method, checkpoint of another method or modality set, weights that
            do not fit, or no source of normalisation statistics.
    """
    cls = get_method(name)
    state: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    if checkpoint is not None:
        check_file(checkpoint, "checkpoint")
        state, meta = load_checkpoint(checkpoint, cls)
    elif cls.trainable:
        raise ConfigError(f"method {name!r} is learned: pass --checkpoint with its trained weights")
    stats, ratio = meta.get("stats"), meta.get("ratio")
    if not stats and store is not None:
        attrs = read_store_attrs(store)
        verify_store(store, attrs, "fast")
        stats, ratio = attrs.get("stats"), attrs["grid"]["ratio"]
    if not stats:
        where = f"checkpoint {str(checkpoint)!r} records" if checkpoint else "no checkpoint gives"
        raise ConfigError(f"{where} no normalisation statistics; pass --store with the store the "
                          "method was trained on")
    context = MethodContext(ratio=int(ratio or 8), normalizer=Normalizer.from_dict(stats),
                            device=device)
    method = cls(context, **(meta.get("hparams") or {}))
    if state:
        restore_weights(method, state, checkpoint)
    return method, meta


#: the LR input's mean log-radiance may lie this many training standard deviations from the
#: training mean before ``predict`` warns
RADIANCE_Z_WARN = 2.0
#: most LR pixels per side read for the check (an averaged overview of bigger rasters)
RADIANCE_CHECK_SIDE = 512


def radiance_warning(src: rasterio.io.DatasetReader, normalizer: Normalizer) -> str | None:
    """One line when the LR radiance distribution lies outside the checkpoint's training
    statistics, else ``None``.

    The mean of ``log1p(radiance)`` over valid pixels (of an averaged overview of at most
    :data:`RADIANCE_CHECK_SIDE`² pixels) is compared with the training ``ntl_mean``/``ntl_std``
    (HR radiance of the train split): more than :data:`RADIANCE_Z_WARN` standard deviations
    away, or a 99th percentile beyond the training mean + 6 std, e.g. a synthetic-trained model
    on real VIIRS (other units or scaling).
    """
    shape = (min(src.height, RADIANCE_CHECK_SIDE), min(src.width, RADIANCE_CHECK_SIDE))
    x = src.read(1, out_shape=shape, masked=True, resampling=Resampling.average)
    values = np.asarray(x.compressed(), dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    logs = np.log1p(np.clip(values, 0, None))
    mean, p99 = float(logs.mean()), float(np.percentile(logs, 99))
    z = (mean - normalizer.ntl_mean) / normalizer.ntl_std
    tail = (p99 - normalizer.ntl_mean) / normalizer.ntl_std
    if abs(z) <= RADIANCE_Z_WARN and tail <= 6.0:
        return None
    return (f"the LR radiance lies outside the checkpoint's training statistics (mean log1p "
            f"{mean:.2f} vs {normalizer.ntl_mean:.2f} ± {normalizer.ntl_std:.2f}, z = {z:+.1f}; "
            f"99th pct z = {tail:+.1f}): check units and scaling, or train on similar data")


def predict_geotiff(req: PredictRequest) -> PredictResult:
    """Super-resolve ``req.lr`` with ``req.method`` and write ``req.out`` (see module docstring).

    Raises:
        InputFileError: missing file, LR without CRS, auxiliaries not covering the LR extent.
        ConfigError: bad checkpoint, missing modality, region outside the raster, bad options.
    """
    lr_path = check_file(req.lr, "LR")
    unknown = sorted(set(req.aux) - set(AUX_NAMES))
    if unknown:
        raise ConfigError(f"unknown auxiliary modality/modalities {unknown}; expected {AUX_NAMES}")
    aux_paths = {k: v if parse_constant(v) is not None else check_file(v, k.upper())
                 for k, v in req.aux.items() if v is not None}
    for path, what in ((req.region, "region"), (req.admin, "admin")):
        if path is not None:
            check_file(path, what)
    method, meta = load_method(req.method, req.checkpoint, req.store, resolve_device(req.device))
    unused = sorted(k for k in aux_paths if k not in method.inputs)
    if unused:
        flags = ", ".join(f"--{m}" for m in unused)
        raise ConfigError(f"method {method.name!r} reads {list(method.inputs)}, not {unused}; "
                          f"drop {flags} (it would be ignored)")
    missing = [m for m in method.inputs if m != "lr_ntl" and m not in aux_paths]
    if missing:
        flags = ", ".join(f"--{m}" for m in missing)
        raise ConfigError(f"method {method.name!r} reads {list(method.inputs)}; the inputs lack "
                          f"{missing} (pass {flags}); a file, or constant:VALUE when the model "
                          "was trained with that constant stand-in")
    grid = make_sr_grid(lr_path, method.context.ratio)
    lr_crs = grid.crs
    region_geom, region_layer = None, None
    if req.region is not None:
        layer = read_polygons(req.region, lr_crs, "region")
        region_geom, region_layer = select_region(layer, req.region_name, req.name_field)
        grid = make_sr_grid(lr_path, method.context.ratio, region_geom)
    readers = {}
    for name in method.inputs:
        if name != "lr_ntl":
            if parse_constant(aux_paths[name]) is None:
                check_aux_coverage(name, aux_paths[name], grid)
            readers[name] = aux_reader(name, aux_paths[name])
    with rasterio.open(lr_path) as src:
        message = radiance_warning(src, method.context.normalizer)
    if message:
        warnings.warn(message, DataWarning, stacklevel=2)
    sums = None
    if req.admin is not None:
        sums = light_sums_from_layer(read_polygons(req.admin, grid.crs, "admin"), req.name_field,
                                     grid.ratio, "admin")
    elif region_layer is not None:
        sums = light_sums_from_layer(region_layer, req.name_field, grid.ratio, "region")
    tags = {"method": method.name, "checkpoint": str(req.checkpoint or ""),
            "ratio": str(grid.ratio), "preserve_lr_sum": str(req.preserve_lr_sum),
            "lr_source": Path(lr_path).name, "tile": str(req.tiles.tile),
            "overlap": str(req.tiles.overlap)}
    with rasterio.open(lr_path) as src, SRWriter(req.out, grid, req.output, tags) as writer:
        tiling = predict_tiled(
            method, grid, src, readers, req.tiles,
            lambda row, sr, _lr, valid: writer.write_rows(row, sr, valid),
            preserve_sum=req.preserve_lr_sum, region=region_geom,
            sums=[sums] if sums is not None else None, progress=req.progress)
    return PredictResult(Path(req.out), grid, tiling, sums, meta)
