"""Clip quality checks, made cheaply on each clip's LR grid before splitting.

A clip passes when every file-backed modality has at least ``min_valid_fraction`` valid pixels
(nearest-neighbour sample on the LR grid: not NaN, not nodata, inside ``valid_range``) and, when
``min_lit_fraction > 0``, at least that fraction of LR pixels of area-averaged HR NTL is above
``lit_threshold``.
"""

from __future__ import annotations

import numpy as np

from deeplightmd.builder.grid import TargetGrid
from deeplightmd.builder.manifest import QASpec
from deeplightmd.builder.sources import ModalityReader


def run_quality(grid: TargetGrid, row: int, col0: int, n: int,
                readers: dict[str, ModalityReader], qa: QASpec) -> list[dict[str, float]]:
    """Measured fractions for the ``n`` adjacent clips ``(row, col0 …)``, one LR warp each."""
    side = grid.lr_clip
    transform, shape = grid.lr_transform(row, col0), (side, side * n)
    out: list[dict[str, float]] = [{} for _ in range(n)]
    for name, rd in readers.items():
        if rd.constant is not None:
            continue
        valid = np.isfinite(rd.raw(grid.crs_wkt, transform, shape, resampling="nearest")).all(0)
        for k in range(n):
            out[k][name] = float(valid[:, k * side:(k + 1) * side].mean())
    if qa.min_lit_fraction > 0 and "hr_ntl" in readers:
        ntl = readers["hr_ntl"].raw(grid.crs_wkt, transform, shape, resampling="average")[0]
        lit = np.nan_to_num(ntl) > qa.lit_threshold
        for k in range(n):
            out[k]["lit"] = float(lit[:, k * side:(k + 1) * side].mean())
    return out


def passes(fractions: dict[str, float], qa: QASpec) -> bool:
    """The QA verdict for one clip's measured fractions."""
    valid = all(v >= qa.min_valid_fraction for k, v in fractions.items() if k != "lit")
    return valid and fractions.get("lit", 1.0) >= qa.min_lit_fraction


def rejection_summary(fractions: list[dict[str, float]], qa: QASpec) -> str:
    """Why clips failed QA: ``QA rejected 60 of 60 candidate clips: hr_ntl 60 (…)``."""
    failed = [f for f in fractions if not passes(f, qa)]
    counts: dict[str, int] = {}
    for f in failed:
        for name, value in f.items():
            limit = qa.min_lit_fraction if name == "lit" else qa.min_valid_fraction
            if value < limit:
                counts[name] = counts.get(name, 0) + 1
    parts = [f"{name} in {k} (" + (f"lit fraction below {qa.min_lit_fraction}" if name == "lit"
                                   else f"valid pixels below {qa.min_valid_fraction:.0%}: NaN, "
                                        "nodata, or outside the source's valid_range such as "
                                        "negative radiance") + ")"
             for name, k in sorted(counts.items())]
    return (f"QA rejected {len(failed)} of {len(fractions)} candidate clips"
            + (": " + "; ".join(parts) if parts else ""))
