"""Toolkit pieces of ``deeplightmd predict`` (super-resolving users' GeoTIFFs).

The command itself, which loads a registered method from its checkpoint, lives in the harness
(:mod:`benchmarks.predict`); this package never imports the harness.

- :func:`make_sr_grid` — the LR grid refined ×ratio (auxiliaries warped onto it by the build
  reader).
- :func:`predict_tiled` — bounded-memory tiled inference with overlap blending (the only tiled
  inference driver; the benchmark's regional evaluation uses it too).
- :func:`preserve_lr_sum` — per-footprint rescaling so the output re-aggregates to the LR input.
- :class:`SRWriter` — the COG writer; :class:`LightSums` — light sums per admin unit.

See docs/predict.md.
"""

from deeplightmd.predict.grid import SRGrid, make_sr_grid
from deeplightmd.predict.io import NODATA, OutputSettings, SRWriter
from deeplightmd.predict.sums import LightSums
from deeplightmd.predict.tiled import TileSettings, predict_tiled, preserve_lr_sum

__all__ = ["NODATA", "LightSums", "OutputSettings", "SRGrid", "SRWriter", "TileSettings",
           "make_sr_grid", "predict_tiled", "preserve_lr_sum"]
