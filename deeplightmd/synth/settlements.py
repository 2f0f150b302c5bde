"""Settlements with Zipf (rank-size) populations on low, flat land, their roads and their ISP.

* Population of the k-th settlement: ``max_population · k^-zipf_q`` times a log-normal jitter
  (σ = 0.15).
* Sites are drawn from a suitability map ``exp(-(z - z0)/elevation_scale) · exp(-slope/slope_scale)
  · (1 + 2·exp(-d_water / 2 km))`` (zero on water), largest settlement first, without overlap.
* Built-up area is ``population / people_per_km2``; the built-up density of a settlement is an
  elliptical Gaussian ``exp(-(d/r)²)`` of that equivalent radius, modulated by a smooth noise
  field (parks, irregular edges). The world's density is the maximum over settlements; the
  settlement giving it owns the pixel.
* Roads: the minimum spanning tree of the sites plus, with probability ``extra_road_prob``,
  a link to each site's second-nearest neighbour; each road is a fractal (midpoint-displaced)
  polyline, 1 pixel wide, 2 pixels for major roads (both ends ≥ ``major_road_population``).
* ISP = density ≥ ``isp_threshold`` or road, plus dark industry / new-build patches (disks of
  90–300 m at the edges of built-up land) until they make ``dark_isp_fraction`` of the ISP area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from deeplightmd.synth.config import SettlementConfig
from deeplightmd.synth.terrain import Terrain, polyline_mask, smooth_noise


@dataclass
class Settlements:
    """Settlements and their built-up land on the working grid.

    Attributes:
        centres: ``(n, 2)`` (row, col) working-pixel coordinates, largest first.
        population: ``(n,)`` people.
        radius_px: ``(n,)`` equivalent built-up radius in working pixels.
        econ: ``(n,)`` log-normal economic level (median 1).
        density: built-up density in [0, 1] (float32).
        owner: index of the settlement owning each pixel, -1 where density is 0 (int32).
        roads: road pixels (bool).
        major_roads: pixels of major (lit) roads (bool).
        isp: impervious pixels (bool).
        dark_patches: ``(m, 3)`` (row, col, radius) of the dark industry / new-build patches.
        dark: pixels of the dark patches (bool).
    """

    centres: np.ndarray
    population: np.ndarray
    radius_px: np.ndarray
    econ: np.ndarray
    density: np.ndarray
    owner: np.ndarray
    roads: np.ndarray
    major_roads: np.ndarray
    isp: np.ndarray
    dark_patches: np.ndarray
    dark: np.ndarray


def zipf_populations(cfg: SettlementConfig, rng: np.random.Generator) -> np.ndarray:
    """Rank-size populations, largest first."""
    rank = np.arange(1, cfg.n_settlements + 1, dtype=np.float64)
    pop = cfg.max_population * rank ** (-cfg.zipf_q) * np.exp(0.15 * rng.standard_normal(rank.size))
    return np.sort(np.maximum(pop, 200.0))[::-1]


def suitability(terrain: Terrain, cfg: SettlementConfig) -> np.ndarray:
    """Site suitability on the coarse grid (low, flat land near water; zero on water)."""
    f = terrain.coarse_factor
    cshape = terrain.coarse_elevation.shape
    slope = terrain.slope_deg.reshape(cshape[0], f, cshape[1], f).mean(axis=(1, 3))
    water = terrain.water.reshape(cshape[0], f, cshape[1], f).mean(axis=(1, 3)) > 0.3
    z = terrain.coarse_elevation - terrain.coarse_elevation.min()
    suit = (np.exp(-z / cfg.elevation_scale_m) * np.exp(-slope / cfg.slope_scale_deg)
            * (1.0 + 2.0 * np.exp(-terrain.coarse_water_distance_m / 2000.0)))
    suit[water] = 0.0
    return suit


def place_sites(suit: np.ndarray, factor: int, radius_px: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Sites (row, col working pixels) drawn from ``suit``, largest first, not overlapping."""
    n = radius_px.size
    p = suit.ravel() / suit.sum()
    cand = rng.choice(p.size, size=min(40 * n, 200_000), p=p)
    rows, cols = np.unravel_index(cand, suit.shape)
    pts = np.column_stack([(rows + rng.uniform(size=cand.size)) * factor,
                           (cols + rng.uniform(size=cand.size)) * factor])
    sites = np.empty((n, 2))
    k, j = 0, 0
    while k < n:
        if j >= len(pts):  # crowded: place the rest at unchecked fresh candidates
            sites[k:] = pts[rng.integers(len(pts), size=n - k)]
            break
        d = np.hypot(*(sites[:k] - pts[j]).T)
        if (d >= 0.9 * (radius_px[k] + radius_px[:k])).all():
            sites[k] = pts[j]
            k += 1
        j += 1
    return sites


def _fractal_polyline(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                      levels: int = 4, roughness: float = 0.12) -> np.ndarray:
    """Midpoint-displacement polyline from ``a`` to ``b`` (perpendicular offsets)."""
    pts = np.array([a, b], dtype=np.float64)
    for level in range(levels):
        mids = 0.5 * (pts[:-1] + pts[1:])
        seg = pts[1:] - pts[:-1]
        normal = np.column_stack([-seg[:, 1], seg[:, 0]])
        mids += normal * rng.normal(0.0, roughness / (level + 1), size=(len(mids), 1))
        out = np.empty((len(pts) + len(mids), 2))
        out[0::2] = pts
        out[1::2] = mids
        pts = out
    return pts


def road_edges(sites: np.ndarray, cfg: SettlementConfig,
               rng: np.random.Generator) -> list[tuple[int, int]]:
    """Road links: minimum spanning tree plus some second-nearest-neighbour links."""
    d = cdist(sites, sites)
    mst = minimum_spanning_tree(d).tocoo()
    edges = {tuple(sorted((int(i), int(j)))) for i, j in zip(mst.row, mst.col, strict=True)}
    order = np.argsort(d, axis=1)
    for i in range(len(sites)):
        if len(sites) > 2 and rng.uniform() < cfg.extra_road_prob:
            edges.add(tuple(sorted((i, int(order[i, 2])))))
    return sorted(edges)


def build_settlements(terrain: Terrain, cfg: SettlementConfig,
                      rng: np.random.Generator) -> Settlements:
    """Place settlements, grow their built-up density, link them by roads and derive ISP."""
    shape = terrain.elevation.shape
    px = terrain.pixel
    pop = zipf_populations(cfg, rng)
    radius_px = np.sqrt(pop / cfg.people_per_km2 / np.pi) * 1000.0 / px
    sites = place_sites(suitability(terrain, cfg), terrain.coarse_factor, radius_px, rng)
    econ = np.exp(cfg.econ_sigma * rng.standard_normal(pop.size))
    texture = smooth_noise(shape, 2, 2.0, rng)
    density = np.zeros(shape, dtype=np.float32)
    owner = np.full(shape, -1, dtype=np.int32)
    for k, ((r0, c0), rad) in enumerate(zip(sites, radius_px, strict=True)):
        reach = int(np.ceil(2.2 * rad)) + 2
        rows = slice(max(int(r0) - reach, 0), min(int(r0) + reach + 1, shape[0]))
        cols = slice(max(int(c0) - reach, 0), min(int(c0) + reach + 1, shape[1]))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        yy, xx = np.mgrid[rows, cols].astype(np.float32)
        angle, aspect = rng.uniform(0, np.pi), rng.uniform(0.6, 1.0)
        u = (xx - c0) * np.cos(angle) + (yy - r0) * np.sin(angle)
        v = -(xx - c0) * np.sin(angle) + (yy - r0) * np.cos(angle)
        d2 = (u**2 * aspect + v**2 / aspect) / rad**2
        dens = np.exp(-d2) * (0.65 + 0.7 * texture[rows, cols])
        dens = np.minimum(dens, 1.0)
        win_d, win_o = density[rows, cols], owner[rows, cols]
        better = dens > win_d
        win_d[better] = dens[better]
        win_o[better] = k
    density[terrain.water] = 0.0
    owner[density <= 0] = -1
    # roads
    edges = road_edges(sites, cfg, rng)
    minor, major = [], []
    for i, j in edges:
        path = _fractal_polyline(sites[i], sites[j], rng)
        big = min(pop[i], pop[j]) >= cfg.major_road_population
        (major if big else minor).append(path)
    major_roads = polyline_mask(shape, major)
    major_roads |= np.roll(major_roads, 1, axis=1) | np.roll(major_roads, 1, axis=0)
    roads = polyline_mask(shape, minor) | major_roads
    isp = (density >= cfg.isp_threshold) | roads
    # dark industry / new-build patches at the edges of built-up land
    target = cfg.dark_isp_fraction * isp.sum() / max(1.0 - cfg.dark_isp_fraction, 1e-6)
    edge_zone = np.flatnonzero(((density >= 0.15) & (density < 0.6)).ravel())
    dark = np.zeros(shape, dtype=bool)
    patches = []
    area = 0
    max_patches = 20_000
    while area < target and edge_zone.size and len(patches) < max_patches:
        r0, c0 = np.unravel_index(edge_zone[rng.integers(edge_zone.size)], shape)
        rad = rng.uniform(90.0, 300.0) / px
        reach = int(np.ceil(rad)) + 1
        rows = slice(max(r0 - reach, 0), min(r0 + reach + 1, shape[0]))
        cols = slice(max(c0 - reach, 0), min(c0 + reach + 1, shape[1]))
        yy, xx = np.mgrid[rows, cols]
        blob = ((yy - r0) ** 2 + (xx - c0) ** 2 <= rad**2) & ~terrain.water[rows, cols]
        area += int((blob & ~dark[rows, cols]).sum())
        dark[rows, cols] |= blob
        patches.append((r0, c0, rad))
    isp |= dark
    dark_patches = np.asarray(patches, dtype=np.float64).reshape(-1, 3)
    return Settlements(sites, pop, radius_px, econ, density, owner, roads, major_roads, isp,
                       dark_patches, dark)
