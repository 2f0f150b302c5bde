"""Source checks and per-modality readers (files, a constant stand-in, or LR derived from HR)."""

from __future__ import annotations

import glob
import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from deeplightmd.builder.manifest import Manifest, SourceSpec, source_bands, source_scaling
from deeplightmd.builder.read import RasterRead, describe_source, fill_invalid, read_to_grid
from deeplightmd.builder.windows import footprint
from deeplightmd.errors import ConfigError, InputFileError
from deeplightmd.sensor import SensorModel, block_mean, blur_and_shift, radiometric


@dataclass(frozen=True)
class ModalityReader:
    """Reads one modality onto any target window; picklable (paths only) for process workers."""

    name: str
    paths: tuple[str, ...] = ()
    read: RasterRead = field(default_factory=RasterRead)
    resampling: str = "bilinear"
    oversample: int = 1
    threshold: float | None = None
    fill: str = "zero"
    constant: float | None = None
    bands: int = 1
    dtype: str = "float32"

    def raw(self, crs: CRS | str, transform: Affine, shape: tuple[int, int],
            resampling: str | None = None) -> np.ndarray:
        """Physical values ``(bands, h, w)`` with NaN where invalid (before fill/threshold)."""
        if self.constant is not None:
            return np.full((self.bands, *shape), self.constant, dtype=np.float32)
        if resampling is not None:  # a quick look (QA): the given resampling, no oversampling
            return read_to_grid(list(self.paths), crs, transform, shape, resampling, self.read)
        return read_to_grid(list(self.paths), crs, transform, shape, self.resampling, self.read,
                            oversample=self.oversample)

    def finish(self, arr: np.ndarray) -> np.ndarray:
        """Raw values → store values: thresholded (masks), NaN filled, in the store dtype."""
        if self.threshold is not None:
            arr = np.where(np.isnan(arr), np.nan, (arr >= self.threshold).astype(np.float32))
        return fill_invalid(arr, self.fill).astype(self.dtype)

    def window(self, crs: CRS | str, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
        """Final store values ``(bands, h, w)`` of one window."""
        return self.finish(self.raw(crs, transform, shape))


@dataclass(frozen=True)
class DerivedLR:
    """LR NTL made from HR NTL with the sensor model (HR read with a margin, then cropped)."""

    hr: ModalityReader
    sensor: SensorModel
    noise: bool = True

    @property
    def margin(self) -> int:
        """LR pixels read around the window so the PSF halo and shift see real neighbours."""
        s = self.sensor
        return int(np.ceil(4 * max(s.psf_sigma, s.halo_sigma) + max(map(abs, s.shift)))) + 1

    def signal(self, crs: CRS | str, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
        """Blurred, shifted, area-aggregated HR radiance on the LR window (before radiometry)."""
        m, r = self.margin, self.sensor.ratio
        hr_t = Affine(transform.a / r, 0.0, transform.c - m * transform.a,
                      0.0, transform.e / r, transform.f - m * transform.e)
        hr = self.hr.window(crs, hr_t, ((shape[0] + 2 * m) * r, (shape[1] + 2 * m) * r))
        lr = block_mean(blur_and_shift(hr[0], self.sensor), r)
        return lr[m:m + shape[0], m:m + shape[1]]

    def radiometry(self, signal: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Gain, floor, offset and (when enabled) noise: ``(h, w)`` → ``(1, h, w)`` float32."""
        return radiometric(signal, self.sensor, rng if self.noise else None
                           ).astype(np.float32)[None]

    def window(self, crs: CRS | str, transform: Affine, shape: tuple[int, int],
               rng: np.random.Generator | None) -> np.ndarray:
        """Derived LR radiance ``(1, h, w)`` on the LR window ``transform``/``shape``."""
        return self.radiometry(self.signal(crs, transform, shape), rng)


def expand_files(m: Manifest, name: str, spec: SourceSpec) -> tuple[str, ...]:
    """Resolved source paths of a modality (globs expanded, sorted); error when none exist."""
    out: list[str] = []
    for pattern in spec.files:
        path = m.resolve(pattern)
        if any(ch in pattern for ch in "*?[") and "://" not in path:
            matches = sorted(glob.glob(path))
            if not matches:
                raise InputFileError(f"sources.{name}: no file matches {path!r}")
            out.extend(matches)
        else:
            out.append(path)
    return tuple(out)


def make_readers(m: Manifest) -> dict[str, ModalityReader]:
    """One reader per file/constant modality of the manifest (no file is opened here)."""
    readers = {}
    modalities = m.modalities()
    for name, s in m.sources.items():
        scale, offset = source_scaling(name, s)
        readers[name] = ModalityReader(
            name=name, paths=expand_files(m, name, s) if s.constant is None else (),
            read=RasterRead(bands=source_bands(name, s), nodata=s.nodata, scale=scale,
                            offset=offset,
                            valid_range=tuple(s.valid_range) if s.valid_range else None),
            resampling=s.resampling, oversample=s.oversample, threshold=s.threshold,
            fill=s.fill, constant=s.constant, bands=modalities[name].bands,
            dtype=modalities[name].dtype)
    return readers


def world_json(m: Manifest) -> dict[str, Any] | None:
    """``world.json`` of the base directory, when there is one."""
    path = m.base_dir / "world.json"
    return json.loads(path.read_text()) if path.is_file() else None


def sensor_model(m: Manifest) -> SensorModel | None:
    """The sensor model relating LR to HR: the derive rule's, else world.json's, else None."""
    spec = m.derive.get("lr_ntl")
    world = world_json(m)
    if spec is not None and spec.sensor_model != "world":
        params = dict(spec.sensor_model)
        params.setdefault("ratio", m.grid.ratio)
        model = SensorModel.from_dict(params)
    elif world is not None and world.get("sensor_model"):
        model = SensorModel.from_dict(world["sensor_model"])
    elif spec is not None:
        raise ConfigError(f"derive.lr_ntl.sensor_model is 'world' but {m.base_dir}/world.json "
                          "has no sensor_model")
    else:
        return None
    if spec is not None and model.ratio != m.grid.ratio:
        raise ConfigError(f"sensor model ratio {model.ratio} differs from grid.ratio "
                          f"{m.grid.ratio}")
    return model


def make_derived(m: Manifest, readers: dict[str, ModalityReader]) -> DerivedLR | None:
    """The derive rule for ``lr_ntl``, or None when LR NTL has its own source."""
    spec = m.derive.get("lr_ntl")
    if spec is None:
        return None
    model = sensor_model(m)
    assert model is not None
    return DerivedLR(hr=readers["hr_ntl"], sensor=model, noise=spec.noise)


#: threads hashing source files while the sources are checked (hashlib releases the GIL)
HASH_THREADS = 2


def sha256_file(path: str) -> str | None:
    """sha256 of a local file (None for URLs)."""
    if "://" in path or path.startswith("/vsi"):
        return None
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_sources(m: Manifest, readers: dict[str, ModalityReader], crs: CRS
                  ) -> tuple[dict[str, Any], dict[str, list[BaseGeometry]]]:
    """Validate every source file; return provenance per modality and footprints in ``crs``."""
    provenance: dict[str, Any] = {}
    footprints: dict[str, list[BaseGeometry]] = {}
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        sums = {path: pool.submit(_checked_sha256, path)
                for rd in readers.values() for path in rd.paths}
        for name, rd in readers.items():
            if rd.constant is not None:
                provenance[name] = {"constant": rd.constant}
                continue
            provenance[name], footprints[name] = _describe_modality(m, rd, crs, sums)
    spec = m.derive.get("lr_ntl")
    if spec is not None:
        provenance["lr_ntl"] = {"derived_from": spec.from_, "noise": spec.noise}
    return provenance, footprints


def _checked_sha256(path: str) -> str | None:
    """sha256 of a source file, or None when it cannot be read (describe_source reports why)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def _describe_modality(m: Manifest, rd: ModalityReader, crs: CRS, sums: dict[str, Future]
                       ) -> tuple[dict[str, Any], list[BaseGeometry]]:
    """Provenance record and target-CRS footprints of one file-backed modality."""
    records, parts = [], []
    for path in rd.paths:
        rec = describe_source(path, rd.read)
        parts.append(footprint(rec.pop("bounds"), rec["crs"], crs))
        rec["checksum"] = sums[path].result()
        try:
            rec["path"] = str(Path(path).relative_to(m.base_dir))
        except ValueError:
            pass
        records.append(rec)
    return {"files": records, "resampling": rd.resampling, "bands": list(rd.read.bands)}, parts
