"""Land cover driven by terrain: water, forest, cropland, bare land and (later) built-up.

Natural cover follows thresholds on slope and elevation that are perturbed by a smooth noise
field (so borders are irregular): steep or high land is forest, the highest land is bare rock,
a small share of the lowlands is bare soil, the rest is cropland; rivers and lakes are water.
:func:`add_built_up` paints the impervious pixels of the settlements on top.
"""

from __future__ import annotations

import numpy as np

from deeplightmd.synth.config import LandCoverConfig
from deeplightmd.synth.terrain import Terrain, smooth_noise

WATER, FOREST, CROPLAND, BARE, BUILT = 1, 2, 3, 4, 5
#: class code -> name
CLASS_NAMES = {WATER: "water", FOREST: "forest", CROPLAND: "cropland", BARE: "bare",
               BUILT: "built-up"}


def natural_landcover(terrain: Terrain, cfg: LandCoverConfig,
                      rng: np.random.Generator) -> np.ndarray:
    """Class codes (uint8) of the natural land cover on the working grid."""
    shape = terrain.elevation.shape
    f = terrain.coarse_factor
    wiggle = 1.0 + cfg.threshold_noise * (2.0 * smooth_noise(shape, f, 2.5, rng) - 1.0)
    cover = np.full(shape, CROPLAND, dtype=np.uint8)
    forest = ((terrain.slope_deg > cfg.forest_slope_deg * wiggle)
              | (terrain.elevation > cfg.forest_elevation_m * wiggle))
    cover[forest] = FOREST
    patches = smooth_noise(shape, f, 2.0, rng)
    low = ~forest
    if cfg.bare_patch_fraction > 0 and low.any():
        cut = np.quantile(patches[low], 1.0 - cfg.bare_patch_fraction)
        cover[low & (patches > cut)] = BARE
    cover[terrain.elevation > cfg.bare_elevation_m * wiggle] = BARE
    cover[terrain.water] = WATER
    return cover


def add_built_up(cover: np.ndarray, isp: np.ndarray) -> np.ndarray:
    """Land cover with impervious pixels set to built-up (a new array)."""
    out = cover.copy()
    out[isp] = BUILT
    return out
