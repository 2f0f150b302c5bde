"""Plots of samples in the TorchGeo manner: one panel per modality, titles, optional suptitle."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib import colors
from matplotlib.figure import Figure

from deeplightmd.normalize import Normalizer
from deeplightmd.store_format import DMO_BANDS

#: (red, green, blue) DMO band indices for a true-colour composite
RGB = tuple(DMO_BANDS.index(b) for b in ("red", "green", "blue"))
PANELS = ("lr_ntl", "hr_ntl", "prediction", "dmo", "dem", "isp")
TITLES = {"lr_ntl": "LR NTL", "hr_ntl": "HR NTL", "prediction": "Prediction",
          "dmo": "DMO (RGB)", "dem": "DEM (m)", "isp": "ISP"}


def _physical(name: str, x: Any, normalizer: Normalizer | None) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64)
    if normalizer is not None:
        x = normalizer.denormalize("hr_ntl" if name == "prediction" else name, x)
    return x


def _rgb(dmo: np.ndarray) -> np.ndarray:
    """True-colour composite with a per-image 2-98 % stretch."""
    rgb = np.moveaxis(dmo[list(RGB)], 0, -1)
    lo, hi = np.percentile(rgb, [2, 98])
    return np.clip((rgb - lo) / max(hi - lo, 1e-12), 0, 1)


def plot_sample(sample: dict[str, Any], normalizer: Normalizer | None = None,
                show_titles: bool = True, suptitle: str | None = None) -> Figure:
    """Plot an (unbatched) sample; radiance on a symmetric-log scale shared by LR, HR, prediction.

    Args:
        sample: a sample dict; a ``prediction`` ``(1, H, W)`` entry is plotted beside
            ``hr_ntl``.
        normalizer: when given, values are converted back to physical units first.
        show_titles: title each panel.
        suptitle: figure title.
    """
    names = [n for n in PANELS if n in sample]
    data = {n: _physical(n, sample[n], normalizer) for n in names}
    radiance = [data[n] for n in ("lr_ntl", "hr_ntl", "prediction") if n in data]
    vmax = max((float(r.max()) for r in radiance), default=1.0)
    ntl_norm = colors.SymLogNorm(linthresh=1.0, vmin=0.0, vmax=max(vmax, 1.0), base=10)
    fig = Figure(figsize=(3 * len(names), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names, strict=True):
        x = data[name]
        if name == "dmo":
            ax.imshow(_rgb(x))
        elif name in ("lr_ntl", "hr_ntl", "prediction"):
            im = ax.imshow(x[0], cmap="magma", norm=ntl_norm, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8, label="nW cm⁻² sr⁻¹")
        elif name == "dem":
            im = ax.imshow(x[0], cmap="terrain")
            fig.colorbar(im, ax=ax, shrink=0.8)
        else:
            ax.imshow(x[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        if show_titles:
            ax.set_title(TITLES[name])
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


__all__ = ["plot_sample"]
