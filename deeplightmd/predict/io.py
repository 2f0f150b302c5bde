"""Writing the SR raster: a tiled, compressed GeoTIFF in COG layout, written band by band.

Rows are written as they are finished (:meth:`SRWriter.write_rows`) into a tiled GeoTIFF beside
the output, together with an internal mask (255 valid, 0 nodata); :meth:`SRWriter.close` then
copies it with GDAL's COG driver (tiles of ``blocksize``, deflate with a floating-point
predictor, the mask kept, overviews optional), so no step ever holds the whole raster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import rasterio._err
import rasterio.errors
import rasterio.shutil
from rasterio.windows import Window

from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError
from deeplightmd.predict.grid import SRGrid

#: nodata of the SR raster (NaN: never a radiance, propagates through arithmetic)
NODATA = float("nan")


@dataclass(frozen=True)
class OutputSettings:
    """How the SR GeoTIFF is laid out.

    Attributes:
        blocksize: internal tile side in pixels (a multiple of 16).
        compress: GDAL compression (``deflate``, ``zstd``, ``lzw``, ``none``).
        overviews: build internal overviews (average) for fast display.
    """

    blocksize: int = 256
    compress: str = "deflate"
    overviews: bool = False

    def __post_init__(self) -> None:
        if self.blocksize < 16 or self.blocksize % 16:
            raise ConfigError(f"blocksize must be a positive multiple of 16, got {self.blocksize}")


class SRWriter:
    """Row-band writer of the SR raster; use as a context manager.

    Args:
        path: output ``.tif``.
        grid: the SR grid (CRS, transform, shape).
        settings: layout of the final file.
        tags: dataset tags (method, checkpoint, ...).
    """

    def __init__(self, path: str | Path, grid: SRGrid, settings: OutputSettings | None = None,
                 tags: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.grid = grid
        self.settings = settings or OutputSettings()
        self.tags = dict(tags or {})
        self._tmp = self.path.with_name(f".{self.path.name}.part.tif")
        self._dst: rasterio.io.DatasetWriter | None = None
        self._env: rasterio.Env | None = None

    def __enter__(self) -> SRWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h, w = self.grid.shape
        self._env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True)
        self._env.__enter__()
        self._dst = rasterio.open(
            self._tmp, "w", driver="GTiff", height=h, width=w, count=1, dtype="float32",
            crs=self.grid.crs, transform=self.grid.transform, nodata=NODATA, tiled=True,
            blockxsize=self.settings.blocksize, blockysize=self.settings.blocksize,
            compress="deflate", predictor=3, BIGTIFF="IF_SAFER")
        return self

    def write_rows(self, row: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Write SR rows ``row … row + len(data)`` (NaN where ``valid`` is False) and their mask."""
        assert self._dst is not None, "use SRWriter as a context manager"
        window = Window(0, row, data.shape[1], data.shape[0])
        out = np.where(valid, data, NODATA).astype(np.float32)
        self._dst.write(out, 1, window=window)
        self._dst.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=window)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._dst is not None and self._env is not None
        try:
            self._dst.update_tags(**self.tags)
            self._dst.update_tags(1, units="nW cm-2 sr-1",
                                  long_name="super-resolved nighttime light")
            self._dst.close()
            if exc_type is None:
                self._to_cog()
        finally:
            self._env.__exit__(exc_type, exc, tb)
            if self._tmp.exists():
                os.remove(self._tmp)

    def _to_cog(self) -> None:
        s = self.settings
        h, w = self.grid.shape
        levels = "AUTO" if s.overviews and max(h, w) > s.blocksize else "NONE"
        compress = "NONE" if s.compress.lower() == "none" else s.compress.upper()
        options = {"BLOCKSIZE": s.blocksize, "COMPRESS": compress, "OVERVIEWS": levels,
                   "RESAMPLING": "AVERAGE", "BIGTIFF": "IF_SAFER"}
        if compress in ("DEFLATE", "ZSTD", "LZW"):
            options["PREDICTOR"] = "FLOATING_POINT"
        with atomic_path(self.path, errors=(rasterio.errors.RasterioError,
                                            rasterio._err.CPLE_BaseError)) as tmp:
            rasterio.shutil.copy(self._tmp, tmp, driver="COG", **options)

