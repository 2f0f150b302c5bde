"""``deeplightmd predict``: super-resolve users' GeoTIFFs with a trained method.

- :func:`predict_geotiff` / :class:`PredictRequest` — the whole run (what the CLI calls).
- :func:`make_sr_grid` — the LR grid refined ×ratio (auxiliaries warped onto it by the build
  reader).
- :func:`predict_tiled` — bounded-memory tiled inference with overlap blending.
- :func:`preserve_lr_sum` — per-footprint rescaling so the output re-aggregates to the LR input.
- :class:`LightSums` — light sums per admin unit.

See docs/predict.md.
"""

from deeplightmd.predict.grid import SRGrid, make_sr_grid
from deeplightmd.predict.io import NODATA, OutputSettings, SRWriter
from deeplightmd.predict.run import PredictRequest, PredictResult, load_method, predict_geotiff
from deeplightmd.predict.sums import LightSums
from deeplightmd.predict.tiled import TileSettings, predict_tiled, preserve_lr_sum

__all__ = ["NODATA", "LightSums", "OutputSettings", "PredictRequest", "PredictResult", "SRGrid",
           "SRWriter", "TileSettings", "load_method", "make_sr_grid", "predict_geotiff",
           "predict_tiled", "preserve_lr_sum"]
