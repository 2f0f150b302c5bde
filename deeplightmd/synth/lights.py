"""HR radiance truth (nW·cm⁻²·sr⁻¹ on the working grid) at the HR and at the LR acquisition.

Light sources, each a layer:

* **settlements** — ``base_radiance · econ_k · (P_k / reference_population)^size_exponent ·
  density^density_gamma · fade`` on the pixels owned by settlement k (its log-normal economic
  level, its population); ``fade`` is a smoothstep from ``fringe_start · isp_threshold`` to the
  ISP threshold, so dim scattered lights at the fringe lie outside the ISP;
* **dark ISP** — industry / new-build patches keep only ``dark_factor`` of that radiance;
* **lit roads** — major roads at ``lit_road_radiance`` (minor roads are dark ISP);
* **lit non-ISP** — ports (water next to settlements, ``port_radiance``), boats (single pixels
  on water, ``boats_per_km2``, log-normal ``boat_radiance``), gas flares (3×3 pixels on bare land
  or forest far from settlements, ``flare_radiance``) and lit greenhouses (rectangles of
  150–500 m on cropland near settlements, ``greenhouse_fraction`` of the cropland).

Time mismatch between the two acquisitions: on a grid of ``mismatch_block_m`` blocks, a share
``switch_off_fraction`` of the lit blocks is off (× 0.1) at the LR acquisition; a share
``switch_on_fraction`` of the dark new-build patches is lit at the LR acquisition; boats are
elsewhere and flares burn with another intensity (log-normal, σ = 0.4).

With an enabled :class:`~deeplightmd.synth.config.UrbanLightConfig` the street grid, cores,
parks, heavy tail, minor roads, villages and glow of :mod:`deeplightmd.synth.urbanlight` are
added (villages and minor roads max-composed with the roads; glow last, at both acquisitions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deeplightmd.synth.config import LightsConfig, UrbanLightConfig
from deeplightmd.synth.landcover import BARE, CROPLAND, FOREST
from deeplightmd.synth.settlements import Settlements
from deeplightmd.synth.terrain import Terrain
from deeplightmd.synth.urbanlight import glow, urban_layers


@dataclass
class Lights:
    """Radiance truth on the working grid (float32) and the masks of each light source."""

    hr_time: np.ndarray
    lr_time: np.ndarray
    ports: np.ndarray
    boats: np.ndarray
    flares: np.ndarray
    greenhouses: np.ndarray
    switched_off: np.ndarray
    switched_on: np.ndarray


def settlement_radiance(s: Settlements, cfg: LightsConfig, isp_threshold: float) -> np.ndarray:
    """Radiance of built-up land (before dark patches).

    Below the ISP threshold the lights fade out (a smoothstep from ``fringe_start·threshold`` to
    the threshold): scattered houses outside the impervious mask are dimly lit.
    """
    size = (s.population / cfg.reference_population) ** cfg.size_exponent
    level = cfg.base_radiance * s.econ * size
    level = np.append(level, 0.0).astype(np.float32)  # owner -1 -> 0
    lo = cfg.fringe_start * isp_threshold
    t = np.clip((s.density - lo) / max(isp_threshold - lo, 1e-6), 0.0, 1.0)
    fade = t * t * (3.0 - 2.0 * t)
    return level[s.owner] * s.density ** np.float32(cfg.density_gamma) * fade


def _stamp_rects(shape: tuple[int, int], allowed: np.ndarray, centres: np.ndarray,
                 sizes: np.ndarray) -> np.ndarray:
    """Mask of axis-aligned rectangles ∩ ``allowed``.

    ``centres`` are (row, col) and ``sizes`` (h, w), both in pixels.
    """
    mask = np.zeros(shape, dtype=bool)
    for (r, c), (h, w) in zip(centres.astype(int), np.maximum(sizes.astype(int), 1),
                              strict=True):
        rows = slice(max(r - h // 2, 0), min(r + (h + 1) // 2, shape[0]))
        cols = slice(max(c - w // 2, 0), min(c + (w + 1) // 2, shape[1]))
        mask[rows, cols] = True
    return mask & allowed


def _ports(terrain: Terrain, s: Settlements, cfg: LightsConfig,
           rng: np.random.Generator) -> np.ndarray:
    """Lit port water next to settlements that lie close to water."""
    shape = terrain.water.shape
    px = terrain.pixel
    f = terrain.coarse_factor
    ports = np.zeros(shape, dtype=bool)
    for (r0, c0), rad in zip(s.centres, s.radius_px, strict=True):
        cr, cc = min(int(r0) // f, terrain.coarse_water_distance_m.shape[0] - 1), \
            min(int(c0) // f, terrain.coarse_water_distance_m.shape[1] - 1)
        if terrain.coarse_water_distance_m[cr, cc] > rad * px + 600.0:
            continue
        if rng.uniform() >= cfg.port_probability:
            continue
        reach = int(rad + 600.0 / px) + 2
        rows = slice(max(int(r0) - reach, 0), min(int(r0) + reach + 1, shape[0]))
        cols = slice(max(int(c0) - reach, 0), min(int(c0) + reach + 1, shape[1]))
        wr, wc = np.nonzero(terrain.water[rows, cols])
        if wr.size == 0:
            continue
        d = np.hypot(wr + rows.start - r0, wc + cols.start - c0)
        pr, pc = wr[np.argmin(d)] + rows.start, wc[np.argmin(d)] + cols.start
        prad = min(150.0 + 0.3 * rad * px, 800.0) / px
        yy, xx = np.mgrid[rows, cols]
        disc = (yy - pr) ** 2 + (xx - pc) ** 2 <= prad**2
        ports[rows, cols] |= disc & terrain.water[rows, cols]
    return ports


def _point_layer(shape: tuple[int, int], flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A float32 layer with ``values`` at flat pixel indices (summed where they coincide)."""
    layer = np.zeros(shape[0] * shape[1], dtype=np.float32)
    np.add.at(layer, flat_index, values.astype(np.float32))
    return layer.reshape(shape)


def _boats(water: np.ndarray, pixel: float, cfg: LightsConfig,
           rng: np.random.Generator) -> np.ndarray:
    """Boats: Poisson-many single lit pixels on water."""
    idx = np.flatnonzero(water.ravel())
    area_km2 = idx.size * (pixel / 1000.0) ** 2
    n = int(rng.poisson(cfg.boats_per_km2 * area_km2)) if idx.size else 0
    where = rng.choice(idx, size=n) if n else np.zeros(0, dtype=int)
    return _point_layer(water.shape, where, cfg.boat_radiance * rng.lognormal(0.0, 0.5, n))


def _flare_sites(cover: np.ndarray, s: Settlements, cfg: LightsConfig,
                 rng: np.random.Generator) -> np.ndarray:
    """Flat indices of flare pixels (3×3 per flare) on bare land or forest far from settlements."""
    remote = np.flatnonzero((np.isin(cover, (BARE, FOREST)) & (s.density < 0.005)).ravel())
    if remote.size == 0 or cfg.n_gas_flares == 0:
        return np.zeros((0, 9), dtype=int)
    centres = rng.choice(remote, size=cfg.n_gas_flares, replace=False) \
        if remote.size >= cfg.n_gas_flares else remote
    h, w = cover.shape
    r, c = np.unravel_index(centres, cover.shape)
    dr, dc = np.mgrid[-1:2, -1:2]
    rr = np.clip(r[:, None] + dr.ravel()[None, :], 0, h - 1)
    cc = np.clip(c[:, None] + dc.ravel()[None, :], 0, w - 1)
    return rr * w + cc


def _flare_layer(shape: tuple[int, int], sites: np.ndarray, strength: np.ndarray,
                 cfg: LightsConfig) -> np.ndarray:
    """Flares of relative ``strength`` (one per flare) at ``sites`` (a centre-peaked 3×3 kernel)."""
    kernel = np.array([0.25, 0.5, 0.25])
    k = np.outer(kernel, kernel).ravel() / 0.25
    values = cfg.flare_radiance * strength[:, None] * k[None, :]
    return _point_layer(shape, sites.ravel(), values.ravel())


def _greenhouses(cover: np.ndarray, s: Settlements, pixel: float, cfg: LightsConfig,
                 rng: np.random.Generator) -> np.ndarray:
    """Lit greenhouse rectangles on cropland near settlements."""
    crop = cover == CROPLAND
    near = np.flatnonzero((crop & (s.density > 0.003) & (s.density < 0.15)).ravel())
    target = cfg.greenhouse_fraction * crop.sum()
    if near.size == 0 or target <= 0:
        return np.zeros(cover.shape, dtype=bool)
    mean_area = (325.0 / pixel) ** 2
    n = max(int(np.ceil(target / mean_area)), 1)
    centres = np.column_stack(np.unravel_index(rng.choice(near, size=n), cover.shape))
    sizes = rng.uniform(150.0, 500.0, size=(n, 2)) / pixel
    return _stamp_rects(cover.shape, crop, centres, sizes)


def _switch_blocks(shape: tuple[int, int], lit: np.ndarray, block: int, fraction: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Pixels of a random ``fraction`` of the lit ``block × block`` blocks."""
    bh, bw = -(-shape[0] // block), -(-shape[1] // block)
    draw = rng.uniform(size=(bh, bw))
    padded = np.zeros((bh * block, bw * block), dtype=bool)
    padded[:shape[0], :shape[1]] = lit
    has_light = padded.reshape(bh, block, bw, block).any(axis=(1, 3))
    off_blocks = has_light & (draw < fraction)
    return np.repeat(np.repeat(off_blocks, block, 0), block, 1)[:shape[0], :shape[1]]


def _patch_mask(shape: tuple[int, int], patches: np.ndarray, water: np.ndarray) -> np.ndarray:
    """Mask of disk patches ``(row, col, radius)`` off water."""
    mask = np.zeros(shape, dtype=bool)
    for r0, c0, rad in patches:
        reach = int(np.ceil(rad)) + 1
        rows = slice(max(int(r0) - reach, 0), min(int(r0) + reach + 1, shape[0]))
        cols = slice(max(int(c0) - reach, 0), min(int(c0) + reach + 1, shape[1]))
        yy, xx = np.mgrid[rows, cols]
        mask[rows, cols] |= ((yy - r0) ** 2 + (xx - c0) ** 2 <= rad**2) & ~water[rows, cols]
    return mask


def build_lights(terrain: Terrain, cover: np.ndarray, s: Settlements, cfg: LightsConfig,
                 isp_threshold: float, rng: np.random.Generator,
                 urban: UrbanLightConfig | None = None,
                 urban_rng: np.random.Generator | None = None) -> Lights:
    """Compose the radiance truth at both acquisitions (``urban`` layers drawn from
    ``urban_rng`` when enabled)."""
    shape = cover.shape
    px = terrain.pixel
    town = settlement_radiance(s, cfg, isp_threshold)
    roads = np.where(s.major_roads, np.float32(cfg.lit_road_radiance), np.float32(0.0))
    use_urban = urban is not None and urban.enabled
    if use_urban:
        assert urban is not None and urban_rng is not None
        layers = urban_layers(terrain, cover, s, urban, urban_rng)
        town = town * layers.town_factor
        roads = np.maximum(roads, np.maximum(layers.minor_roads, layers.villages))
    ports = _ports(terrain, s, cfg, rng)
    port_level = np.float32(cfg.port_radiance)
    greenhouses = _greenhouses(cover, s, px, cfg, rng)
    green_level = np.float32(cfg.greenhouse_radiance) * rng.lognormal(0.0, 0.3, shape).astype(
        np.float32)
    flare_sites = _flare_sites(cover, s, cfg, rng)
    n_flares = len(flare_sites)
    boats_hr = _boats(terrain.water, px, cfg, rng)
    boats_lr = _boats(terrain.water, px, cfg, rng)
    flares_hr = _flare_layer(shape, flare_sites, rng.lognormal(0.0, 0.4, n_flares), cfg)
    flares_lr = _flare_layer(shape, flare_sites, rng.lognormal(0.0, 0.4, n_flares), cfg)

    def compose(dark: np.ndarray, boats: np.ndarray, flares: np.ndarray) -> np.ndarray:
        town_t = np.where(dark, town * np.float32(cfg.dark_factor), town)
        out = np.maximum(town_t, roads)
        out = np.where(ports, np.maximum(out, port_level), out)
        out = np.where(greenhouses, np.maximum(out, green_level), out)
        return (out + boats + flares).astype(np.float32)

    hr = compose(s.dark, boats_hr, flares_hr)
    keep = rng.uniform(size=len(s.dark_patches)) >= cfg.switch_on_fraction
    still_dark = _patch_mask(shape, s.dark_patches[keep], terrain.water) & s.dark
    switched_on = s.dark & ~still_dark
    lr = compose(still_dark, boats_lr, flares_lr)
    block = max(round(cfg.mismatch_block_m / px), 1)
    switched_off = _switch_blocks(shape, hr >= cfg.lit_threshold, block,
                                  cfg.switch_off_fraction, rng)
    lr = np.where(switched_off, lr * np.float32(0.1), lr).astype(np.float32)
    if use_urban:
        assert urban is not None
        hr, lr = glow(hr, urban, px), glow(lr, urban, px)
    return Lights(hr, lr, ports, boats_hr > 0, flares_hr > 0, greenhouses, switched_off,
                  switched_on)
