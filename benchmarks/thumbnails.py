"""Small PNG thumbnails of a run's output (``bench --thumbnails DIR``) for the leaderboard site.

Per run: the LR input, the SR output and the HR reference of the first test clips, and the SR and
HR mosaic of every held-out region. Radiance is shown on a log scale,
``log1p(clip(x, 0, v)) / log1p(v)`` through matplotlib's *inferno* colour map, with one ``v`` per
clip (or region) shared by LR, SR and HR so that their brightness compares: the larger of 1 and
HR's 99.9th percentile. Clips are enlarged with nearest neighbours (pixels stay visible) and
mosaics shrunk with a box filter, to about :data:`THUMB_SIDE` pixels. Files are written
atomically; the results JSON records their paths under ``thumbnails``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deeplightmd.atomic import write_bytes

#: target side (pixels) of a thumbnail's longer edge
THUMB_SIDE = 192
#: test clips shown per run
THUMB_CLIPS = 3


def display_max(hr: np.ndarray) -> float:
    """The radiance shown as the brightest colour: max(1, 99.9th percentile of finite HR)."""
    finite = hr[np.isfinite(hr)]
    return max(1.0, float(np.percentile(finite, 99.9))) if finite.size else 1.0


def radiance_rgb(image: np.ndarray, vmax: float) -> np.ndarray:
    """``(H, W, 3)`` uint8 colours of radiance on the log scale up to ``vmax`` (NaN → 0)."""
    from matplotlib import colormaps

    x = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=vmax, neginf=0.0)
    level = np.log1p(np.clip(x, 0.0, vmax)) / np.log1p(vmax)
    return (colormaps["inferno"](level)[..., :3] * 255.0 + 0.5).astype(np.uint8)


def png_bytes(rgb: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    """PNG of ``rgb`` scaled so the longer edge is about ``side`` (integer nearest enlargement,
    box-filtered shrinking)."""
    from PIL import Image

    img = Image.fromarray(rgb)
    longest = max(img.size)
    if longest < side:
        k = max(1, side // longest)
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    elif longest > side:
        scale = side / longest
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BOX)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_views(out_dir: Path, stem: str, views: Mapping[str, np.ndarray], vmax: float
                ) -> dict[str, str]:
    """Write ``<stem>_<view>.png`` for each named radiance image; ``{view: path}``."""
    return {name: str(write_bytes(out_dir / f"{stem}_{name}.png",
                                         png_bytes(radiance_rgb(image, vmax))))
            for name, image in views.items()}


class ThumbnailRecorder:
    """Writes a run's thumbnails as clips and regions are evaluated, and keeps their paths.

    Pass :meth:`add_clip` and :meth:`add_region` as the runner's ``on_clip`` / ``on_region``
    hooks; :meth:`record` is what the results JSON stores under ``thumbnails``.
    """

    def __init__(self, out_dir: str | Path, method: str, n_clips: int = THUMB_CLIPS) -> None:
        self.out_dir = Path(out_dir)
        self.method = method
        self.n_clips = n_clips
        self.clips: list[dict[str, Any]] = []
        self.regions: dict[str, dict[str, str]] = {}

    def add_clip(self, clip_id: int, lr: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> None:
        """LR/SR/HR thumbnails of a test clip (only the first ``n_clips`` clips)."""
        if len(self.clips) >= self.n_clips:
            return
        paths = write_views(self.out_dir, f"{self.method}_clip{clip_id}",
                            {"lr": lr, "sr": sr, "hr": hr}, display_max(hr))
        self.clips.append({"clip_id": int(clip_id), **paths})

    def add_region(self, region: str, sr: np.ndarray, hr: np.ndarray) -> None:
        """SR and HR thumbnails of a region mosaic."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in region)
        self.regions[region] = write_views(self.out_dir, f"{self.method}_region_{safe}",
                                           {"sr": sr, "hr": hr}, display_max(hr))

    def record(self) -> dict[str, Any]:
        """``{"clips": [{clip_id, lr, sr, hr}], "regions": {name: {sr, hr}}}`` (file paths)."""
        return {"clips": list(self.clips), "regions": dict(self.regions)}


__all__ = ["THUMB_CLIPS", "THUMB_SIDE", "ThumbnailRecorder", "display_max", "png_bytes",
           "radiance_rgb", "write_views"]
