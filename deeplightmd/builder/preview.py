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

from deeplightmd.access.plot import rgb_composite, style_kwargs
from deeplightmd.atomic import atomic_path
from deeplightmd.errors import ConfigError
from deeplightmd.modalities import BUILTIN, Modality
from deeplightmd.store_format import REGIONS_GROUP, SPLITS, read_store_attrs, store_modalities

#: radiance below this is shown at the bottom of the log colour scale
LOG_FLOOR = 0.1
#: largest side (pixels) of a region mosaic drawn in a preview
MAX_PREVIEW_SIDE = 1024


def display_text(text: str) -> str:
    """``text`` as the preview can draw it: unchanged when an installed font has every glyph
    (matplotlib falls back through :data:`CJK_FONTS`), else transliterated to ASCII with
    ``unidecode`` when it is installed, else with ``U+XXXX`` for each character no font has
    (never as empty boxes)."""
    missing = [ch for ch in text if not _has_glyph(ch)]
    if not missing:
        return text
    try:
        from unidecode import unidecode
    except ImportError:
        return "".join(f"U+{ord(ch):04X}" if ch in missing else ch for ch in text)
    return unidecode(text)


#: fonts with CJK glyphs tried before DejaVu Sans when they are installed
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "Source Han Sans SC",
             "Microsoft YaHei", "SimHei", "PingFang SC")


def _font_families() -> list[str]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in installed] + ["DejaVu Sans"]


def _has_glyph(ch: str) -> bool:
    """True when one of the fonts the preview uses can draw ``ch``."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    if ord(ch) < 128:
        return True
    for family in _font_families():
        path = font_manager.findfont(family, fallback_to_default=False)
        if ord(ch) in FT2Font(path).get_charmap():
            return True
    return False


def clip_panels(url: str, split: str, index: int) -> tuple[dict[str, np.ndarray], str]:
    """Arrays of clip ``index`` of ``split`` and a title."""
    attrs = read_store_attrs(url)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    n = attrs["splits"][split]
    if not 0 <= index < n:
        raise ConfigError(f"--index must be in [0, {n - 1}] for split {split!r}, got {index}")
    group = zarr.open_group(url, mode="r", path=split)
    data = {name: group[name][index] for name in store_modalities(attrs)}
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
    for key, spec in store_modalities(attrs).items():
        if spec.grid == "hr":
            data[key] = hr[key][..., ::step, ::step]
    for key in ("mask", "admin"):
        data[key] = hr[key][::step, ::step]
    return data, f"{attrs['dataset']}  region {name}"


def render(data: dict[str, np.ndarray], title: str, out: str | Path,
           modalities: dict[str, Modality] | None = None) -> Path:
    """Draw one panel per modality in its plot style (NTL on a shared log scale) and save a PNG.

    ``modalities`` gives band names and styles (default: the built-ins); the region ``mask``
    and ``admin`` layers, when present, come last.
    """
    specs = modalities or BUILTIN
    ntl = [data[n] for n in data if n in specs and specs[n].plot == "ntl"]
    vmax = max(*(float(np.max(x)) for x in ntl), LOG_FLOOR * 10)
    norm = LogNorm(vmin=LOG_FLOOR, vmax=vmax)
    panels: list[tuple[str, Any, dict[str, Any]]] = []
    for name, spec in specs.items():
        if name not in data:
            continue
        x = data[name]
        label = f"{name} ({spec.units})"
        if spec.plot == "ntl":
            panels.append((f"{name} (log)", np.clip(np.squeeze(x), LOG_FLOOR, None),
                           {"norm": norm, "cmap": "magma"}))
        elif spec.plot == "rgb":
            panels.append((f"{name} RGB", rgb_composite(x, spec.band_names), {}))
        else:
            img = x[0] if x.ndim == 3 else x
            panels.append((label, img, style_kwargs(spec.plot)))
    if "mask" in data:
        panels.append(("region mask", data["mask"], {"cmap": "gray", "vmin": 0, "vmax": 1}))
        panels.append(("admin units", np.ma.masked_equal(data["admin"], 0), {"cmap": "tab20"}))
    out = Path(out)
    with plt.rc_context({"font.family": _font_families()}):
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
        for ax, (label, img, kw) in zip(axes, panels, strict=True):
            im = ax.imshow(img, **{"interpolation": "nearest", **kw})
            ax.set_title(label, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if img.ndim == 2:
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(display_text(title), fontsize=11)
        fig.tight_layout()
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
    return render(data, title, out, store_modalities(read_store_attrs(url)))
