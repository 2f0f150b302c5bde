"""Opt-in structure of the HR light field (:class:`~deeplightmd.synth.config.UrbanLightConfig`).

Off by default (the ``tiny``/``demo``/``large`` presets do not use it, so their worlds are
unchanged); the ``standard`` and ``shifted`` world families switch it on. Layers:

* **street grid** — inside built-up land, streets every ``street_spacing_m`` (1 working pixel
  wide, orientation drawn per settlement) at ``1 + street_contrast`` of the settlement
  radiance, block interiors at ``1 - street_contrast / 2`` (road hierarchy: lit arterials are
  the major roads at ``lights.lit_road_radiance``, minor roads at ``minor_road_radiance``);
* **commercial / transport cores** — ``1 + core_boost`` where the built-up density is at least
  ``core_density`` in settlements of at least ``core_population``;
* **dark parks** — ``park_fraction`` of the built-up land, in smooth blobs, at 5 %;
* **heavy tail** — a mean-1 log-normal per-pixel factor of σ ``radiance_sigma``;
* **villages** — Poisson hamlets (discs of 30–90 m, log-normal radiance of median
  ``village_radiance``) on open land outside the ISP, clustered by a smooth intensity field;
* **glow** — ``glow_fraction`` of all light is spread by a Gaussian of σ ``glow_sigma_m``
  (atmospheric adjacency and light spill, seen by the HR sensor too);
* **airfields** — settlements of at least ``airfield_population`` get a rectangle at the edge of
  their built-up land with a dark interior (runways, taxiways and grass: × 0.02) and a bright
  apron strip along one long side (× ``1 + core_boost``): impervious land that is not lit.

Every draw comes from the generator handed in (its own synthesis step), so switching the
layers on never shifts another step's draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deeplightmd.synth.config import UrbanLightConfig
from deeplightmd.synth.landcover import BARE, CROPLAND
from deeplightmd.synth.settlements import Settlements
from deeplightmd.synth.terrain import Terrain, smooth_noise


@dataclass
class UrbanLayers:
    """Multiplicative factor on settlement radiance and additive (max-composed) layers."""

    town_factor: np.ndarray
    minor_roads: np.ndarray
    villages: np.ndarray


def _street_factor(s: Settlements, cfg: UrbanLightConfig, pixel: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Street / block factor on the pixels of each settlement (orientation per settlement)."""
    shape = s.density.shape
    angle = np.append(rng.uniform(0.0, np.pi / 2, s.population.size), 0.0).astype(np.float32)
    theta = angle[s.owner]
    rr, cc = np.indices(shape, dtype=np.float32)
    u = cc * np.cos(theta) + rr * np.sin(theta)
    v = rr * np.cos(theta) - cc * np.sin(theta)
    spacing = np.float32(cfg.street_spacing_m / pixel)
    street = (np.mod(u, spacing) < 1.0) | (np.mod(v, spacing) < 1.0)
    c = np.float32(cfg.street_contrast)
    return np.where(street, 1.0 + c, 1.0 - c / 2.0).astype(np.float32)


def _disc_offsets(radius: float) -> np.ndarray:
    """``(k, 2)`` row/col offsets of the pixels of a disc of ``radius`` pixels."""
    r = int(np.ceil(radius))
    dr, dc = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dr**2 + dc**2 <= radius**2 + 1e-9
    return np.column_stack([dr[inside], dc[inside]])


def _villages(cover: np.ndarray, s: Settlements, water: np.ndarray, pixel: float, coarse: int,
              cfg: UrbanLightConfig, rng: np.random.Generator) -> np.ndarray:
    """Radiance of Poisson hamlets on open land outside the ISP (clustered by a smooth field
    made ``coarse`` times coarser, a divisor of the grid)."""
    shape = cover.shape
    layer = np.zeros(shape, dtype=np.float32)
    allowed = np.isin(cover, (CROPLAND, BARE)) & ~s.isp & ~water
    idx = np.flatnonzero(allowed.ravel())
    if cfg.villages_per_km2 <= 0 or idx.size == 0:
        return layer
    weight = smooth_noise(shape, coarse, 2.0, rng).ravel()[idx] ** 2 + 1e-6
    n = int(rng.poisson(cfg.villages_per_km2 * idx.size * (pixel / 1000.0) ** 2))
    centres = rng.choice(idx, size=n, p=weight / weight.sum())
    radius_px = rng.uniform(30.0, 90.0, n) / pixel
    value = (cfg.village_radiance * rng.lognormal(0.0, 0.6, n)).astype(np.float32)
    r0, c0 = np.unravel_index(centres, shape)
    for rad in np.unique(np.round(radius_px * 2) / 2):
        pick = np.round(radius_px * 2) / 2 == rad
        off = _disc_offsets(max(rad, 0.5))
        rr = np.clip(r0[pick, None] + off[None, :, 0], 0, shape[0] - 1)
        cc = np.clip(c0[pick, None] + off[None, :, 1], 0, shape[1] - 1)
        vals = np.broadcast_to(value[pick, None], rr.shape)
        np.maximum.at(layer, (rr.ravel(), cc.ravel()), vals.ravel())
    return np.where(allowed, layer, 0.0).astype(np.float32)


def urban_layers(terrain: Terrain, cover: np.ndarray, s: Settlements, cfg: UrbanLightConfig,
                 rng: np.random.Generator) -> UrbanLayers:
    """The layers of ``cfg`` for settlements ``s`` on the working grid."""
    shape = cover.shape
    px = terrain.pixel
    factor = np.ones(shape, dtype=np.float32)
    if cfg.street_spacing_m > 0:
        factor *= _street_factor(s, cfg, px, rng)
    if cfg.core_boost > 0:
        big = np.append(s.population >= cfg.core_population, False)[s.owner]
        factor *= np.where(big & (s.density >= cfg.core_density),
                           np.float32(1.0 + cfg.core_boost), np.float32(1.0))
    if cfg.park_fraction > 0:
        built = s.density >= 0.3
        noise = smooth_noise(shape, terrain.coarse_factor, 2.5, rng)
        if built.any():
            cut = np.quantile(noise[built], 1.0 - cfg.park_fraction)
            factor *= np.where(built & (noise > cut), np.float32(0.05), np.float32(1.0))
    if cfg.radiance_sigma > 0:
        sig = cfg.radiance_sigma
        factor *= np.exp(sig * rng.standard_normal(shape, dtype=np.float32)
                         - np.float32(sig * sig / 2.0))
    minor = s.roads & ~s.major_roads
    minor_roads = np.where(minor, np.float32(cfg.minor_road_radiance), np.float32(0.0))
    villages = _villages(cover, s, terrain.water, px, terrain.coarse_factor, cfg, rng)
    if cfg.airfield_population > 0:  # last: its draws never shift the layers above
        factor *= _airfields(s, cfg, px, rng)
    return UrbanLayers(factor.astype(np.float32), minor_roads, villages)


def _airfields(s: Settlements, cfg: UrbanLightConfig, pixel: float,
               rng: np.random.Generator) -> np.ndarray:
    """Factor of the airfields: 0.02 inside each rectangle, ``1 + core_boost`` on its apron
    strip (the outer quarter of its width on one long side), 1 elsewhere."""
    shape = s.density.shape
    out = np.ones(shape, dtype=np.float32)
    rr, cc = np.indices(shape, dtype=np.float32)
    half_l = np.float32(cfg.airfield_length_m / pixel / 2.0)
    half_w = np.float32(cfg.airfield_width_m / pixel / 2.0)
    for k in np.flatnonzero(s.population >= cfg.airfield_population):
        edge = np.flatnonzero(((s.owner == k) & (s.density >= 0.3) & (s.density < 0.6)).ravel())
        if edge.size == 0:
            continue
        r0, c0 = np.unravel_index(rng.choice(edge), shape)
        theta = np.float32(rng.uniform(0.0, np.pi))
        u = (cc - c0) * np.cos(theta) + (rr - r0) * np.sin(theta)
        v = (rr - r0) * np.cos(theta) - (cc - c0) * np.sin(theta)
        inside = (np.abs(u) <= half_l) & (np.abs(v) <= half_w)
        apron = inside & (v >= half_w / 2)
        out = np.where(inside, np.float32(0.02), out)
        out = np.where(apron, np.float32(1.0 + cfg.core_boost), out)
    return out


def glow(radiance: np.ndarray, cfg: UrbanLightConfig, pixel: float) -> np.ndarray:
    """Spread ``glow_fraction`` of the light by a Gaussian of σ ``glow_sigma_m`` (total kept)."""
    if cfg.glow_fraction <= 0:
        return radiance
    spread = ndimage.gaussian_filter(radiance, cfg.glow_sigma_m / pixel, mode="nearest")
    f = np.float32(cfg.glow_fraction)
    return ((1.0 - f) * radiance + f * spread).astype(np.float32)
