"""Reading rasters onto a target grid window: one warp per source file, NaN where invalid.

:func:`read_to_grid` is the single reader used by ``build`` (clips, QA, region mosaics) and by
``deeplightmd predict``: it warps only the part of each source that the destination window needs
(GDAL's warper reads source blocks on demand, from handles kept open by :class:`RasterCache`), so
memory is bounded by the window, not the source.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.warp import reproject
from rasterio.windows import Window
from scipy import ndimage

from deeplightmd.errors import InputFileError

SourceLike = str | Path | DatasetReader


@dataclass(frozen=True)
class RasterRead:
    """How to turn raw source values into physical values (see ``SourceSpec``)."""

    bands: tuple[int, ...] = (1,)
    nodata: float | None = None
    scale: float | str = 1.0
    offset: float | str = 0.0
    valid_range: tuple[float, float] | None = None


class RasterCache:
    """Read-only raster handles kept open for reuse, per thread (a GDAL handle must not be
    shared between threads) and per file version (path, size, mtime), at most ``size`` per thread.

    Opening a tiled multi-band GeoTIFF and reading its first window costs ~10 ms, and an open
    handle keeps GDAL's block cache warm for the next, adjacent window; the build reads thousands
    of windows from a handful of files. URLs and ``/vsi`` paths are not cached.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._by_thread: dict[int, OrderedDict[tuple[str, int, int], DatasetReader]] = {}

    def get(self, path: str | Path) -> DatasetReader | None:
        """An open handle on the local file ``path`` for this thread (None: not cacheable)."""
        path = str(path)
        if "://" in path or path.startswith("/vsi"):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            handles = self._by_thread.setdefault(threading.get_ident(), OrderedDict())
        if key in handles:
            handles.move_to_end(key)
            return handles[key]
        src = rasterio.open(path)
        handles[key] = src
        while len(handles) > self.size:
            handles.popitem(last=False)[1].close()
        return src

    def close(self) -> None:
        """Close every cached handle (call when no thread is reading)."""
        with self._lock:
            for handles in self._by_thread.values():
                for src in handles.values():
                    src.close()
            self._by_thread.clear()


#: the process-wide handle cache used by :func:`open_rasters` (``build_store`` closes it at the end)
RASTER_CACHE = RasterCache()


@contextlib.contextmanager
def open_rasters(paths: Sequence[SourceLike], cache: RasterCache | None = RASTER_CACHE
                 ) -> Iterator[list[DatasetReader]]:
    """Open several rasters (already-open readers pass through; local files come from ``cache``)
    and close what was opened here."""
    with contextlib.ExitStack() as stack:
        out = []
        for p in paths:
            if isinstance(p, DatasetReader):
                out.append(p)
                continue
            try:
                cached = cache.get(p) if cache is not None else None
                out.append(cached if cached is not None else stack.enter_context(rasterio.open(p)))
            except rasterio.errors.RasterioIOError as exc:
                raise InputFileError(f"cannot open raster {str(p)!r}: "
                                     f"{str(exc).splitlines()[0]}") from exc
        yield out


def _per_band(value: float | str, src: DatasetReader, attr: str,
              bands: Sequence[int]) -> np.ndarray:
    if value == "file":
        per = getattr(src, attr)
        return np.array([per[b - 1] for b in bands], dtype=np.float64)
    return np.full(len(bands), float(value))


def read_to_grid(sources: SourceLike | Sequence[SourceLike], dst_crs: CRS | str,
                 dst_transform: Affine, shape: tuple[int, int],
                 resampling: Resampling | str = Resampling.bilinear,
                 spec: RasterRead | None = None, oversample: int = 1) -> np.ndarray:
    """Warp ``sources`` onto a destination window and return physical values.

    Each source is warped with GDAL (``rasterio.warp.reproject``) over the part of the window
    that earlier sources left empty; GDAL reads the source blocks it needs on demand.

    Args:
        sources: one raster or several (paths, URLs or open readers); with several, the first
            valid value wins pixel by pixel (e.g. two overlapping Landsat scenes).
        dst_crs: destination CRS.
        dst_transform: affine transform of the destination window.
        shape: ``(height, width)`` of the window.
        resampling: rasterio resampling (``average`` for area means, ``bilinear``, ...).
        spec: bands, nodata override, scale/offset and valid range; default band 1 as is.
        oversample: read on a grid this many times finer, then average ``oversample²`` blocks
            (ignoring NaN). With ``average`` this makes an exact area mean over each destination
            footprint even when the grids are rotated against each other.

    Returns:
        ``float32`` array ``(bands, height, width)``; NaN where no source has valid data.
    """
    spec = spec or RasterRead()
    if isinstance(sources, (str, Path, DatasetReader)):
        sources = [sources]
    if isinstance(resampling, str):
        resampling = Resampling[resampling]
    dst_wkt = dst_crs if isinstance(dst_crs, str) else CRS.from_user_input(dst_crs).to_wkt()
    out = np.full((len(spec.bands), *shape), np.nan, dtype=np.float32)
    with open_rasters(sources) as readers:
        for src in readers:
            if src.crs is None:
                raise InputFileError(f"raster {src.name!r} has no CRS")
            if max(spec.bands) > src.count:
                raise InputFileError(f"raster {src.name!r} has {src.count} band(s), the manifest "
                                     f"asks for band(s) {list(spec.bands)}")
            gap = np.isnan(out).any(axis=0)
            if not gap.any():
                break
            rows, cols = np.flatnonzero(gap.any(axis=1)), np.flatnonzero(gap.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            sub = out[:, r0:r1, c0:c1]
            part = _gdal_warp(src, spec, dst_wkt, dst_transform @ Affine.translation(c0, r0),
                              (r1 - r0, c1 - c0), resampling, oversample)
            hole = np.isnan(sub)
            sub[hole] = part[hole]
    return out


def _gdal_warp(src: DatasetReader, spec: RasterRead, dst_wkt: str, dst_transform: Affine,
               shape: tuple[int, int], resampling: Resampling, oversample: int) -> np.ndarray:
    """GDAL's warper (any resampling), on a grid ``oversample`` times finer, block-averaged."""
    if oversample > 1:
        fine = _gdal_warp(src, spec, dst_wkt, dst_transform @ Affine.scale(1 / oversample),
                          (shape[0] * oversample, shape[1] * oversample), resampling, 1)
        return nan_block_mean(fine, oversample)
    nodata = spec.nodata if spec.nodata is not None else src.nodata
    if nodata is None and np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
        nodata = np.nan
    part = np.full((len(spec.bands), *shape), np.nan, dtype=np.float32)
    reproject(source=rasterio.band(src, list(spec.bands)), destination=part,
              src_nodata=nodata, dst_transform=dst_transform, dst_crs=dst_wkt,
              dst_nodata=np.nan, resampling=resampling, init_dest_nodata=True)
    scale = _per_band(spec.scale, src, "scales", spec.bands)[:, None, None]
    offset = _per_band(spec.offset, src, "offsets", spec.bands)[:, None, None]
    if np.any(scale != 1.0) or np.any(offset != 0.0):
        part = (part * scale + offset).astype(np.float32)
    if spec.valid_range is not None:
        lo, hi = spec.valid_range
        with np.errstate(invalid="ignore"):
            part[(part < lo) | (part > hi)] = np.nan
    return part


def nan_block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor × factor`` blocks of the last two axes, ignoring NaN (all NaN → NaN)."""
    h, w = x.shape[-2:]
    blocks = x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor)
    if not np.isnan(x).any():
        return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32)
    valid = np.isfinite(blocks)
    total = np.where(valid, blocks, 0.0).sum(axis=(-3, -1), dtype=np.float64)
    count = valid.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def fill_invalid(arr: np.ndarray, method: str) -> np.ndarray:
    """Replace NaN per band: ``zero`` → 0, ``nearest`` → nearest valid value (0 if none)."""
    out = np.array(arr, dtype=np.float32, copy=True)
    for band in out.reshape(-1, *out.shape[-2:]):
        bad = np.isnan(band)
        if not bad.any():
            continue
        if method == "nearest" and not bad.all():
            idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
            band[...] = band[tuple(idx)]
        else:
            band[bad] = 0.0
    return out


#: source blocks probed for a valid pixel before the whole raster is read (decimated)
PROBE_BLOCKS = 9


def _has_valid_pixel(src: DatasetReader, spec: RasterRead) -> bool:
    """True when band ``spec.bands[0]`` has a valid pixel: a few blocks spread over the raster
    are probed first (a valid raster usually answers at once, without decoding every block),
    then a decimated read of at most 512² pixels (overviews used when present) decides."""
    nodata = spec.nodata if spec.nodata is not None else src.nodata

    def any_valid(sample: np.ndarray) -> bool:
        valid = np.isfinite(sample)
        if nodata is not None and not np.isnan(nodata):
            valid &= sample != nodata
        return bool(valid.any())

    bh, bw = src.block_shapes[0]
    k = int(np.sqrt(PROBE_BLOCKS))
    for fy in np.linspace(0.5 / k, 1 - 0.5 / k, k):
        for fx in np.linspace(0.5 / k, 1 - 0.5 / k, k):
            r0 = min(int(fy * src.height) // bh * bh, max(src.height - bh, 0))
            c0 = min(int(fx * src.width) // bw * bw, max(src.width - bw, 0))
            window = Window(c0, r0, min(bw, src.width - c0), min(bh, src.height - r0))
            if any_valid(src.read(spec.bands[0], window=window).astype(np.float64)):
                return True
    step = max(1, int(np.ceil(max(src.height, src.width) / 512)))
    out_shape = (max(1, src.height // step), max(1, src.width // step))
    return any_valid(src.read(spec.bands[0], out_shape=out_shape,
                              resampling=Resampling.nearest).astype(np.float64))


def describe_source(path: str, spec: RasterRead) -> dict[str, Any]:
    """Check one source file and return its provenance record.

    Raises:
        InputFileError: missing/unreadable file, no CRS, too few bands, or no valid pixel
            (a few probed blocks, else a decimated read of at most 512² pixels).
    """
    if "://" not in path and not path.startswith("/vsi") and not Path(path).exists():
        raise InputFileError(f"source file {path!r} does not exist")
    with open_rasters([path]) as (src,):
        if src.crs is None:
            raise InputFileError(f"raster {path!r} has no CRS (georeference it first)")
        if max(spec.bands) > src.count:
            raise InputFileError(f"raster {path!r} has {src.count} band(s), the manifest asks "
                                 f"for band(s) {list(spec.bands)}")
        if not _has_valid_pixel(src, spec):
            raise InputFileError(f"raster {path!r} has no valid pixel (all NaN or nodata)")
        res = src.res
        return {"path": path, "crs": src.crs.to_string(), "resolution": [res[0], res[1]],
                "shape": [src.height, src.width], "dtype": src.dtypes[0], "count": src.count,
                "nodata": None if src.nodata is None or np.isnan(src.nodata) else src.nodata,
                "bounds": list(src.bounds)}
