"""Regional metrics on a stitched province mosaic, masked to the province.

The mosaic is the SR of a whole test region produced by tiled inference; metrics are computed on
it once (patch-wise averages would double-count tile overlaps). Definitions in docs/metrics.md.
Pixels outside ``mask`` may hold NaN/nodata; they are ignored (set to 0 before SSIM windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.metrics._arrays import MetricInputError, as_mask
from benchmarks.metrics.config import MetricConfig
from benchmarks.metrics.pixel import pixel_metrics


def _masked_image(x: object, name: str, mask: np.ndarray) -> np.ndarray:
    """``x`` as float64 ``(H, W)``: finite inside ``mask``, 0 outside."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.shape != mask.shape:
        raise MetricInputError(f"{name} must have the mask's shape {mask.shape}, got {a.shape}")
    if not np.isfinite(a[mask]).all():
        raise MetricInputError(f"{name} must be finite inside the mask, found "
                               f"{int((~np.isfinite(a[mask])).sum())} NaN/inf value(s)")
    return np.where(mask, a, 0.0)


def total_light_rel_error(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray) -> float:
    """``(Σ_mask SR − Σ_mask HR) / Σ_mask HR`` (signed; NaN when the HR total is 0)."""
    total = float(hr[mask].sum())
    return (float(sr[mask].sum()) - total) / total if total > 0 else float("nan")


def lit_iou(sr: np.ndarray, hr: np.ndarray, threshold: float, mask: np.ndarray) -> float:
    """IoU of the lit areas ``SR > threshold`` and ``HR > threshold`` inside ``mask``.

    Both unlit everywhere is perfect agreement: 1.0.
    """
    a, b = (sr > threshold) & mask, (hr > threshold) & mask
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def admin_sums(image: np.ndarray, admin: np.ndarray, mask: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Light sum of every admin unit (label > 0) over its pixels inside ``mask``.

    Returns:
        ``(ids, sums)``: the unit ids present in the mask, ascending, and their radiance sums
        (nW·cm⁻²·sr⁻¹ × pixels; on an equal-area grid proportional to total light).
    """
    labels = np.where(mask, admin, 0).astype(np.int64)
    if (labels < 0).any():
        raise MetricInputError("admin labels must be >= 0 (0 = no unit)")
    ids = np.unique(labels[labels > 0])
    sums = np.bincount(labels.ravel(), weights=image.ravel(), minlength=int(labels.max()) + 1)
    return ids, sums[ids]


#: sums whose spread is below this fraction of their largest magnitude count as all equal
EQUAL_RTOL = 1e-12


def is_constant(values: np.ndarray) -> bool:
    """All ``values`` equal, up to float rounding (``ptp <= EQUAL_RTOL · max |v|``)."""
    return float(np.ptp(values)) <= EQUAL_RTOL * float(np.abs(values).max())


def agreement(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Pearson ``r`` of ``pred`` vs ``ref`` and ``R² = 1 − Σ(ref − pred)² / Σ(ref − mean ref)²``.

    R² scores ``pred`` as a prediction of ``ref`` on the identity line (bias and scale errors
    lower it), unlike ``r²``. Undefined values are NaN, never an error: both with fewer than 2
    units; ``r`` when either side is constant, ``R²`` when ``ref`` is (constant: all values
    equal up to float rounding, :func:`is_constant`, so equal sums that merely differ in the last
    bits give NaN rather than a number made of rounding noise).
    """
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if pred.size < 2:
        return float("nan"), float("nan")
    if is_constant(ref):
        return float("nan"), float("nan")
    scale = max(float(np.abs(ref).max()), float(np.abs(pred).max()))
    pred, ref = pred / scale, ref / scale  # r and R² are scale-free; no under/overflow below
    dp, dr = pred - pred.mean(), ref - ref.mean()
    ss_tot = float((dr**2).sum())
    r2 = 1.0 - float(((ref - pred) ** 2).sum()) / ss_tot
    if is_constant(pred):
        return float("nan"), r2
    r = float((dp * dr).sum()) / float(np.sqrt((dp**2).sum() * ss_tot))
    return float(np.clip(r, -1.0, 1.0)), r2


@dataclass(frozen=True)
class TileGrid:
    """Tile edges of a tiled inference: an edge at row ``b`` lies between pixel rows b−1 and b.

    Only interior edges (``0 < b < H``) count; use :meth:`from_tiling` for a regular tiling.
    """

    rows: tuple[int, ...]
    cols: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(sorted({int(b) for b in self.rows})))
        object.__setattr__(self, "cols", tuple(sorted({int(c) for c in self.cols})))

    @classmethod
    def from_tiling(cls, shape: tuple[int, int], tile: int, stride: int) -> TileGrid:
        """Edges of tiles of ``tile`` px placed every ``stride`` px from the top-left corner.

        The last tile of a row/column is moved back to end at the image edge (as torchgeo's
        ``GridGeoSampler`` does). Both the start and the end of every tile are edges.
        """
        if tile < 1 or stride < 1 or stride > tile:
            raise MetricInputError(f"need 1 <= stride <= tile, got tile={tile}, stride={stride}")

        def edges(n: int) -> tuple[int, ...]:
            if tile >= n:
                return ()
            starts = list(range(0, n - tile + 1, stride))
            if starts[-1] + tile < n:
                starts.append(n - tile)
            return tuple(sorted({e for s in starts for e in (s, s + tile) if 0 < e < n}))

        return cls(edges(shape[0]), edges(shape[1]))


def seam_ratio(image: np.ndarray, grid: TileGrid, mask: np.ndarray) -> float:
    """Mean |neighbour difference| across tile edges divided by that everywhere else.

    Vertical differences ``|x[i] − x[i−1]|`` are "across an edge" when ``i`` is in ``grid.rows``,
    horizontal ones when the column is in ``grid.cols``; only pairs with both pixels in ``mask``
    count. A seamless image gives ≈ 1, a tile-wise offset or blocking gives > 1. NaN when either
    set is empty or the image is flat.
    """
    h, w = image.shape
    dv = np.abs(np.diff(image, axis=0))
    dh = np.abs(np.diff(image, axis=1))
    ok_v, ok_h = mask[1:] & mask[:-1], mask[:, 1:] & mask[:, :-1]
    edge_v = np.zeros_like(ok_v)
    edge_h = np.zeros_like(ok_h)
    rows = [b - 1 for b in grid.rows if 0 < b < h]
    cols = [c - 1 for c in grid.cols if 0 < c < w]
    edge_v[rows, :] = True
    edge_h[:, cols] = True
    seam = np.concatenate([dv[ok_v & edge_v], dh[ok_h & edge_h]])
    rest = np.concatenate([dv[ok_v & ~edge_v], dh[ok_h & ~edge_h]])
    if seam.size == 0 or rest.size == 0 or rest.mean() == 0:
        return float("nan")
    return float(seam.mean() / rest.mean())


def compute_regional_metrics(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray | None,
                             admin: np.ndarray | None, config: MetricConfig | None = None,
                             tile_grid: TileGrid | None = None) -> dict[str, Any]:
    """All regional metrics of one province mosaic.

    Args:
        sr, hr: SR and HR radiance mosaics ``(H, W)`` or ``(1, H, W)`` in nW·cm⁻²·sr⁻¹.
        mask: boolean ``(H, W)``, True inside the province (None: every pixel).
        admin: integer ``(H, W)`` admin-unit labels, 0 = none (None: skip the admin metrics).
        config: data ranges and the lit threshold.
        tile_grid: the tile edges of the inference that made ``sr`` (None: skip the seam metric).

    Returns:
        The masked pixel metrics (``psnr``, ``ssim``, ``rmse``, ``mae`` and log variants),
        ``total_light_rel_error``, ``lit_iou``; with ``admin``: ``admin_r``, ``admin_r2``,
        ``admin_n`` and ``admin_sums`` (``{"admin_id": [...], "sr": [...], "hr": [...]}``);
        with ``tile_grid``: ``seam_ratio`` (SR) and ``seam_ratio_hr`` (HR at the same edges).
    """
    cfg = config or MetricConfig()
    shape = np.shape(hr)[-2:]
    m = as_mask(mask, (int(shape[0]), int(shape[1])))
    s, h = _masked_image(sr, "sr", m), _masked_image(hr, "hr", m)
    out: dict[str, Any] = pixel_metrics(s, h, cfg, mask=m)
    out["total_light_rel_error"] = total_light_rel_error(s, h, m)
    out["lit_iou"] = lit_iou(s, h, cfg.lit_threshold, m)
    if admin is not None:
        labels = np.asarray(admin)
        if labels.ndim == 3 and labels.shape[0] == 1:
            labels = labels[0]
        if labels.shape != m.shape:
            raise MetricInputError(f"admin must have the mask's shape {m.shape}, "
                                   f"got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise MetricInputError(f"admin must hold integer unit ids, got dtype {labels.dtype}")
        ids, sr_sums = admin_sums(s, labels, m)
        _, hr_sums = admin_sums(h, labels, m)
        out["admin_r"], out["admin_r2"] = agreement(sr_sums, hr_sums)
        out["admin_n"] = int(ids.size)
        out["admin_sums"] = {"admin_id": ids.tolist(), "sr": sr_sums.tolist(),
                             "hr": hr_sums.tolist()}
    if tile_grid is not None:
        out["seam_ratio"] = seam_ratio(s, tile_grid, m)
        out["seam_ratio_hr"] = seam_ratio(h, tile_grid, m)
    return out

