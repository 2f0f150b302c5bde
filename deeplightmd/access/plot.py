"""Plots of samples in the TorchGeo manner: one panel per modality, titles, optional suptitle.

Each panel is drawn by its modality's ``plot`` style (:mod:`deeplightmd.modalities`): ``ntl``
(radiance on a shared symmetric-log scale), ``rgb`` (a true-colour composite of the bands named
red, green and blue, else the first band in grey), ``terrain``, ``mask`` (0/1 in grey) and
``viridis`` (anything else, e.g. a declared population layer). ``build``'s preview PNGs use the
same helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib import colors
from matplotlib.figure import Figure

from deeplightmd.modalities import BUILTIN, Modality
from deeplightmd.normalize import Normalizer

#: built-in panels in drawing order (``prediction`` is drawn like ``hr_ntl``)
PANELS = ("lr_ntl", "hr_ntl", "prediction", "dmo", "dem", "isp")
TITLES = {"lr_ntl": "LR NTL", "hr_ntl": "HR NTL", "prediction": "Prediction",
          "dmo": "DMO (RGB)", "dem": "DEM (m)", "isp": "ISP"}
#: matplotlib colour map per plot style (``rgb`` is a composite, ``ntl`` uses a log norm)
STYLE_CMAPS = {"ntl": "magma", "terrain": "terrain", "mask": "gray", "viridis": "viridis"}


def rgb_composite(x: np.ndarray, band_names: tuple[str, ...]) -> np.ndarray:
    """``(H, W, 3)`` true-colour composite of the red, green and blue bands (the first band in
    grey when one is missing), stretched between the 2nd and 98th percentiles."""
    wanted = ("red", "green", "blue")
    idx = [band_names.index(b) for b in wanted] if set(wanted) <= set(band_names) else [0, 0, 0]
    rgb = np.moveaxis(np.asarray(x, dtype=np.float64)[idx], 0, -1)
    lo, hi = np.percentile(rgb, [2, 98])
    return np.clip((rgb - lo) / max(hi - lo, 1e-12), 0, 1)


def style_kwargs(style: str) -> dict[str, Any]:
    """``imshow`` keywords of a single-band plot style."""
    if style == "mask":
        return {"cmap": "gray", "vmin": 0, "vmax": 1, "interpolation": "nearest"}
    return {"cmap": STYLE_CMAPS.get(style, "viridis"), "interpolation": "nearest"}


def _physical(name: str, x: Any, normalizer: Normalizer | None) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64)
    if normalizer is not None:
        x = normalizer.denormalize("hr_ntl" if name == "prediction" else name, x)
    return x


def plot_sample(sample: dict[str, Any], normalizer: Normalizer | None = None,
                show_titles: bool = True, suptitle: str | None = None,
                modalities: dict[str, Modality] | None = None) -> Figure:
    """Plot an (unbatched) sample; radiance on a symmetric-log scale shared by LR, HR, prediction.

    Args:
        sample: a sample dict; a ``prediction`` ``(1, H, W)`` entry is plotted beside
            ``hr_ntl``.
        normalizer: when given, values are converted back to physical units first.
        show_titles: title each panel.
        suptitle: figure title.
        modalities: the store's modalities (band names, plot styles; default: the built-ins).
    """
    specs = {**BUILTIN, **(modalities or {})}
    specs["prediction"] = specs["hr_ntl"]
    names = [n for n in PANELS if n in sample] + [
        n for n in sample if n not in PANELS and n in specs and isinstance(
            sample[n], (torch.Tensor, np.ndarray))]
    data = {n: _physical(n, sample[n], normalizer) for n in names}
    radiance = [data[n] for n in names if specs[n].plot == "ntl"]
    vmax = max((float(r.max()) for r in radiance), default=1.0)
    ntl_norm = colors.SymLogNorm(linthresh=1.0, vmin=0.0, vmax=max(vmax, 1.0), base=10)
    fig = Figure(figsize=(3 * len(names), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names, strict=True):
        x, spec = data[name], specs[name]
        if spec.plot == "rgb":
            ax.imshow(rgb_composite(x, spec.band_names))
        elif spec.plot == "ntl":
            im = ax.imshow(x[0], cmap="magma", norm=ntl_norm, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8, label="nW cm⁻² sr⁻¹")
        else:
            im = ax.imshow(x[0], **style_kwargs(spec.plot))
            if spec.plot != "mask":
                fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_axis_off()
        if show_titles:
            ax.set_title(TITLES.get(name, f"{name} ({spec.units})"))
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


__all__ = ["plot_sample", "rgb_composite", "style_kwargs"]
