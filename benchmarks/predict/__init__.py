"""``deeplightmd predict``: super-resolve users' GeoTIFFs with a trained method.

The harness owns ``predict`` because it needs the method registry and checkpoint I/O; the
toolkit pieces it drives (SR grid, GeoTIFF writer, tiled inference, light sums) live in
:mod:`deeplightmd.predict`, which never imports the harness.

- :func:`predict_geotiff` / :class:`PredictRequest` — the whole run (what the CLI calls).
- :func:`load_method` — a registered method restored from its checkpoint.
- :func:`~deeplightmd.predict.make_sr_grid`, :func:`~deeplightmd.predict.predict_tiled`,
  :func:`~deeplightmd.predict.preserve_lr_sum`, :class:`~deeplightmd.predict.LightSums` —
  re-exported from the toolkit.

See docs/predict.md.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module defining it (imported on first access, so that listing the
#: ``deeplightmd`` sub-commands does not import torch)
_EXPORTS = {
    **dict.fromkeys(("PredictRequest", "PredictResult", "load_method", "predict_geotiff"),
                    "benchmarks.predict.run"),
    **dict.fromkeys(("NODATA", "LightSums", "OutputSettings", "SRGrid", "SRWriter", "TileSettings",
                     "make_sr_grid", "predict_tiled", "preserve_lr_sum"), "deeplightmd.predict"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
