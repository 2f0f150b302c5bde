"""Terrain: a fractal DEM with a regional trend, least-cost rivers, carved valleys and lakes.

The relief is made on a coarse grid (``coarse_factor`` working pixels per cell), rivers are routed
over it from high ground to the lowest edge point (least-cost paths, so they follow valleys), the
valleys around them are carved, lakes flatten low basins, and the result is interpolated onto the
working grid with fine-scale roughness added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage
from skimage.graph import route_through_array

from deeplightmd.synth.config import TerrainConfig


@dataclass
class Terrain:
    """Terrain on the working grid (arrays ``(h, w)``) and its coarse version.

    Attributes:
        elevation: metres (float32).
        slope_deg: slope in degrees (float32).
        water: rivers and lakes (bool).
        coarse_elevation: elevation on the coarse grid (float32).
        coarse_water_distance_m: distance to the nearest water on the coarse grid (float32, m).
        coarse_factor: working pixels per coarse cell.
        pixel: working pixel size (m).
        river_paths: one ``(n, 2)`` array of (row, col) working-pixel coordinates per river.
    """

    elevation: np.ndarray
    slope_deg: np.ndarray
    water: np.ndarray
    coarse_elevation: np.ndarray
    coarse_water_distance_m: np.ndarray
    coarse_factor: int
    pixel: float
    river_paths: list[np.ndarray]


def fractal_surface(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with power spectrum ``∝ k^-beta``, scaled to zero mean, unit std."""
    h, w = shape
    ky = fft.fftfreq(h)[:, None]
    kx = fft.rfftfreq(w)[None, :]
    k = np.sqrt(kx**2 + ky**2)
    k[0, 0] = 1.0
    amplitude = (k ** (-beta / 2.0)).astype(np.float32)
    amplitude[0, 0] = 0.0
    spectrum = fft.rfft2(rng.standard_normal(shape, dtype=np.float32)) * amplitude
    field = fft.irfft2(spectrum, s=shape).astype(np.float32)
    return (field - field.mean()) / max(float(field.std()), 1e-12)


def upsample(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear interpolation of a coarse grid onto a grid ``factor`` times finer (cell-aligned)."""
    if factor == 1:
        return coarse.astype(np.float32)
    return ndimage.zoom(coarse.astype(np.float32), factor, order=1, mode="nearest",
                        grid_mode=True)


def smooth_noise(shape: tuple[int, int], factor: int, beta: float,
                 rng: np.random.Generator) -> np.ndarray:
    """A fractal field in [0, 1] made on a grid ``factor`` coarser and interpolated to ``shape``."""
    coarse = fractal_surface((shape[0] // factor, shape[1] // factor), beta, rng)
    fine = upsample(coarse, factor)
    lo, hi = np.percentile(fine, [0.5, 99.5])
    return np.clip((fine - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def polyline_mask(shape: tuple[int, int], paths: list[np.ndarray]) -> np.ndarray:
    """Pixels crossed by polylines of (row, col) coordinates (sampled every half pixel)."""
    mask = np.zeros(shape, dtype=bool)
    for path in paths:
        if len(path) < 2:
            continue
        seg = np.diff(path, axis=0)
        n = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) * 2).astype(int), 1)
        t = np.concatenate([np.arange(k) / k for k in n])
        start = np.repeat(path[:-1], n, axis=0)
        pts = start + np.repeat(seg, n, axis=0) * t[:, None]
        pts = np.vstack([pts, path[-1:]])
        r = np.clip(np.floor(pts[:, 0]).astype(int), 0, shape[0] - 1)
        c = np.clip(np.floor(pts[:, 1]).astype(int), 0, shape[1] - 1)
        mask[r, c] = True
    return mask


def disk(radius: int) -> np.ndarray:
    """A boolean disk structuring element of the given radius (pixels)."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return x**2 + y**2 <= radius**2 + 0.5


def _route_rivers(elev: np.ndarray, n_rivers: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Least-cost river paths (coarse (row, col)) from high sources to the lowest edge cell."""
    if n_rivers == 0:
        return []
    edge = np.zeros_like(elev, dtype=bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    outlet = np.unravel_index(np.argmin(np.where(edge, elev, np.inf)), elev.shape)
    rel = (elev - elev.min()) / max(float(np.ptp(elev)), 1e-6)
    cost = 1.0 + 60.0 * rel**1.5
    high = np.flatnonzero(rel.ravel() > np.quantile(rel, 0.75))
    paths = []
    for _ in range(n_rivers):
        src = np.unravel_index(rng.choice(high), elev.shape)
        idx, _ = route_through_array(cost, src, outlet, fully_connected=True, geometric=True)
        path = np.asarray(idx, dtype=np.float64)
        cost[path[:, 0].astype(int), path[:, 1].astype(int)] = 0.2  # later rivers join this one
        if len(path) > 5:
            path = ndimage.gaussian_filter1d(path, 1.5, axis=0, mode="nearest")
        paths.append(path)
    return paths


def _lake_mask(shape: tuple[int, int], centre: tuple[float, float], radius: float,
               rng: np.random.Generator) -> tuple[tuple[slice, slice], np.ndarray]:
    """An irregular lake (radius modulated by low-order harmonics) as (window, mask)."""
    r0, c0 = centre
    reach = int(np.ceil(radius * 1.6)) + 1
    rows = slice(max(int(r0) - reach, 0), min(int(r0) + reach + 1, shape[0]))
    cols = slice(max(int(c0) - reach, 0), min(int(c0) + reach + 1, shape[1]))
    yy, xx = np.mgrid[rows, cols]
    theta = np.arctan2(yy - r0, xx - c0)
    wobble = np.ones_like(theta)
    for order in (2, 3, 5):
        wobble += rng.uniform(0.05, 0.2) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    aspect = rng.uniform(0.5, 1.0)
    angle = rng.uniform(0, np.pi)
    u = (xx - c0) * np.cos(angle) + (yy - r0) * np.sin(angle)
    v = -(xx - c0) * np.sin(angle) + (yy - r0) * np.cos(angle)
    d = np.sqrt(u**2 * aspect + v**2 / aspect)
    return (rows, cols), d <= radius * wobble


def build_terrain(shape: tuple[int, int], pixel: float, cfg: TerrainConfig,
                  rng: np.random.Generator) -> Terrain:
    """Simulate the terrain on a working grid of ``shape`` pixels of ``pixel`` metres."""
    f = cfg.coarse_factor
    cshape = (shape[0] // f, shape[1] // f)
    cell = pixel * f
    # fractal relief on a regional trend: mountains on one side, plains on the other
    rough = fractal_surface(cshape, cfg.fractal_beta, rng)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:cshape[0], 0:cshape[1]].astype(np.float32)
    trend = xx * np.cos(angle) + yy * np.sin(angle)
    trend = (trend - trend.min()) / max(float(np.ptp(trend)), 1e-6)
    u = 0.6 * trend + 0.4 * (rough - rough.min()) / max(float(np.ptp(rough)), 1e-6)
    u = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
    elev = cfg.base_elevation_m + cfg.relief_m * u**2.2
    # rivers follow least-cost paths; valleys are carved around them
    paths = _route_rivers(elev, cfg.n_rivers, rng)
    river_c = polyline_mask(cshape, paths)
    if river_c.any():
        dist = ndimage.distance_transform_edt(~river_c) * cell
        carve = np.exp(-((dist / cfg.valley_width_m) ** 2))
        floor = ndimage.grey_erosion(elev, size=5)
        elev = elev - cfg.valley_depth_m * carve
        elev = np.where(carve > 0.5, np.minimum(elev, floor + (1 - carve) * 20.0), elev)
    # fine grid: interpolate, add roughness
    fine = upsample(elev, f)
    if cfg.fine_noise_m > 0:
        noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 1.2)
        fine += noise * (cfg.fine_noise_m / max(float(noise.std()), 1e-6))
    river_paths = [(p + 0.5) * f for p in paths]
    water = np.zeros(shape, dtype=bool)
    for i, path in enumerate(river_paths):
        width_px = cfg.river_width_m * (1.0 if i == 0 else 0.6) / pixel
        line = polyline_mask(shape, [path])
        radius = max(round(width_px / 2), 0)
        water |= ndimage.binary_dilation(line, disk(radius)) if radius else line
    # lakes in low, flat places
    if cfg.n_lakes:
        rel = (elev - elev.min()) / max(float(np.ptp(elev)), 1e-6)
        weight = np.exp(-rel / 0.05).ravel()
        picks = rng.choice(weight.size, size=cfg.n_lakes, replace=False, p=weight / weight.sum())
        for pick in picks:
            r, c = np.unravel_index(pick, cshape)
            centre = ((r + rng.uniform()) * f, (c + rng.uniform()) * f)
            radius = cfg.lake_radius_m / pixel * rng.uniform(0.6, 1.4)
            window, lake = _lake_mask(shape, centre, radius, rng)
            water[window] |= lake
            level = float(np.percentile(fine[window][lake], 5)) if lake.any() else 0.0
            fine[window] = np.where(lake, level, fine[window])
    fine = np.where(water, fine - 2.0, fine).astype(np.float32)
    gy, gx = np.gradient(fine, pixel)
    slope = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)
    water_c = water.reshape(cshape[0], f, cshape[1], f).any(axis=(1, 3))
    if water_c.any():
        water_dist = (ndimage.distance_transform_edt(~water_c) * cell).astype(np.float32)
    else:
        water_dist = np.full(cshape, 1e9, dtype=np.float32)
    return Terrain(fine, slope, water, elev.astype(np.float32), water_dist, f, pixel, river_paths)
