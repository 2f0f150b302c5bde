"""Preview PNGs: every modality of one clip or one region mosaic side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import zarr
from matplotlib.colors import LogNorm

from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError
from deeplightmd.store_format import DMO_BANDS, REGIONS_GROUP, SPLITS, read_store_attrs

#: radiance below this is shown at the bottom of the log colour scale
LOG_FLOOR = 0.1
#: largest side (pixels) of a region mosaic drawn in a preview
MAX_PREVIEW_SIDE = 1024


def _rgb(dmo: np.ndarray) -> np.ndarray:
    """True-colour composite (red, green, blue) stretched between the 2nd and 98th percentiles."""
    idx = [DMO_BANDS.index(b) for b in ("red", "green", "blue")]
    rgb = np.moveaxis(dmo[idx].astype(np.float64), 0, -1)
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    return np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1)


def clip_panels(url: str, split: str, index: int) -> tuple[dict[str, np.ndarray], str]:
    """Arrays of clip ``index`` of ``split`` and a title."""
    attrs = read_store_attrs(url)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    n = attrs["splits"][split]
    if not 0 <= index < n:
        raise ConfigError(f"--index must be in [0, {n - 1}] for split {split!r}, got {index}")
    group = zarr.open_group(url, mode="r", path=split)
    data = {name: group[name][index] for name in ("lr_ntl", "hr_ntl", "dmo", "dem", "isp")}
    title = f"{attrs['dataset']}  {split}[{index}]  clip_id {int(group['clip_id'][index])}"
    return data, title


def region_panels(url: str, name: str) -> tuple[dict[str, np.ndarray], str]:
    """Arrays of a region mosaic (decimated to at most ``MAX_PREVIEW_SIDE``) and a title."""
    attrs = read_store_attrs(url)
    if name not in attrs["regions"]:
        raise ConfigError(f"no region {name!r} in the store; regions are {attrs['regions']}")
    hr = zarr.open_group(url, mode="r", path=f"{REGIONS_GROUP}/{name}/hr")
    lr = zarr.open_group(url, mode="r", path=f"{REGIONS_GROUP}/{name}/lr")
    step = max(1, int(np.ceil(max(hr["hr_ntl"].shape) / MAX_PREVIEW_SIDE)))
    lr_step = max(1, step // attrs["grid"]["ratio"])
    data = {"lr_ntl": lr["lr_ntl"][::lr_step, ::lr_step]}
    for key in ("hr_ntl", "dem", "isp", "mask", "admin"):
        data[key] = hr[key][::step, ::step]
    data["dmo"] = hr["dmo"][:, ::step, ::step]
    return data, f"{attrs['dataset']}  region {name}"


def render(data: dict[str, np.ndarray], title: str, out: str | Path) -> Path:
    """Draw the panels (NTL on a shared log scale) and save a PNG."""
    vmax = max(float(np.max(data["hr_ntl"])), float(np.max(data["lr_ntl"])), LOG_FLOOR * 10)
    norm = LogNorm(vmin=LOG_FLOOR, vmax=vmax)
    panels: list[tuple[str, Any, dict[str, Any]]] = [
        ("LR NTL (log)", np.clip(data["lr_ntl"], LOG_FLOOR, None), {"norm": norm, "cmap": "magma"}),
        ("HR NTL (log)", np.clip(data["hr_ntl"], LOG_FLOOR, None), {"norm": norm, "cmap": "magma"}),
        ("DMO RGB", _rgb(data["dmo"]), {}),
        ("DEM (m)", data["dem"], {"cmap": "terrain"}),
        ("ISP", data["isp"], {"cmap": "gray", "vmin": 0, "vmax": 1}),
    ]
    if "mask" in data:
        panels.append(("region mask", data["mask"], {"cmap": "gray", "vmin": 0, "vmax": 1}))
        panels.append(("admin units", np.ma.masked_equal(data["admin"], 0), {"cmap": "tab20"}))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (label, img, kw) in zip(axes, panels, strict=True):
        im = ax.imshow(img, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if img.ndim == 2:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return out


def preview(url: str, out: str | Path, split: str = "test", index: int = 0,
            region: str | None = None) -> Path:
    """Write a PNG of one clip (``split``/``index``) or of a region mosaic (``region``)."""
    data, title = region_panels(url, region) if region else clip_panels(url, split, index)
    return render(data, title, out)
