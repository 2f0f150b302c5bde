"""Orchestration: :func:`generate_world` simulates the truth and writes every product atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from tqdm import tqdm

from deeplightmd._version import __version__
from deeplightmd.errors import ConfigError
from deeplightmd.sensor import block_mean, blur_and_shift
from deeplightmd.synth import observe
from deeplightmd.synth.config import ZONE_BOUNDARY_LON, WorldConfig, resolve_config
from deeplightmd.synth.grids import (
    ALBERS,
    UTM49,
    UTM50,
    Grid,
    lonlat_grid,
    product_grid,
    working_grid,
)
from deeplightmd.synth.landcover import add_built_up, natural_landcover
from deeplightmd.synth.lights import build_lights
from deeplightmd.synth.regions import TEST_REGIONS, place_test_regions, write_regions
from deeplightmd.synth.settlements import build_settlements
from deeplightmd.synth.terrain import build_terrain, smooth_noise

GENERATOR_VERSION = "deeplightmd.synth/1"
FILES = {"lr_ntl": ["lr_ntl.tif"], "hr_ntl": ["hr_ntl.tif"],
         "dmo": ["dmo/dmo_utm49.tif", "dmo/dmo_utm50.tif"], "dem": ["dem.tif"], "isp": ["isp.tif"]}
REGIONS_FILE = "regions.geojson"
ADMIN_FILE = "admin.geojson"


def step_rng(seed: int, step: str) -> np.random.Generator:
    """An independent generator per step, so one step's draws never shift another's."""
    return np.random.default_rng([seed, zlib.crc32(step.encode())])


def check_output_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Absolute output path; raise :class:`ConfigError` if it cannot be (re)written."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"output directory {out} is not empty; pass --overwrite to replace it")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {out} is not writable "
                          f"(no write permission on {parent})")
    return out


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out``, renamed onto ``out`` on success and removed on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def product_grids(cfg: WorldConfig) -> dict[str, Grid]:
    """The grid of every raster product."""
    ext = cfg.extent
    west, south, east, north = ext.bounds_lonlat
    half_overlap = ext.scene_overlap_km / 2.0 / (111.32 * np.cos(np.radians(ext.center_lat)))
    return {
        "lr_ntl": lonlat_grid(ext.bounds_lonlat, 15.0),
        "hr_ntl": product_grid(UTM50, ext.bounds_lonlat, ext.hr_pixel),
        "dmo_utm49": product_grid(UTM49, (west, south, ZONE_BOUNDARY_LON + half_overlap, north),
                                  ext.product_pixel),
        "dmo_utm50": product_grid(UTM50, (ZONE_BOUNDARY_LON - half_overlap, south, east, north),
                                  ext.product_pixel),
        "dem": lonlat_grid(ext.bounds_lonlat, float(ext.dem_arcsec)),
        "isp": product_grid(ALBERS, ext.bounds_lonlat, ext.product_pixel),
    }


def _check_covered(work: Grid, grids: dict[str, Grid]) -> None:
    """Every product grid must lie inside the working grid (else its edges would be empty)."""
    left, bottom, right, top = work.bounds
    for name, grid in grids.items():
        g_left, g_bottom, g_right, g_top = transform_bounds(
            grid.rasterio_crs, work.rasterio_crs, *grid.bounds, densify_pts=101)
        if g_left < left or g_bottom < bottom or g_right > right or g_top > top:
            raise RuntimeError(f"product grid {name} is not covered by the working grid")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _clip_estimate(cfg: WorldConfig, work: Grid, tests: dict[str, Any]) -> int:
    """Clips of ``clip_km`` on a metric grid over the world box not touching a test region."""
    from pyproj import Transformer
    from shapely import transform
    from shapely.geometry import box
    from shapely.ops import unary_union

    to_m = Transformer.from_crs("EPSG:4326", work.crs, always_xy=True)
    project = lambda g: transform(g, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))  # noqa: E731
    world = project(box(*cfg.extent.bounds_lonlat).segmentize(0.01))
    held = unary_union([project(t.segmentize(0.01)) for t in tests.values()])
    clip = cfg.extent.clip_km * 1000.0
    left, bottom, right, top = world.bounds
    count = 0
    for x in np.arange(left, right - clip + 1e-6, clip):
        for y in np.arange(bottom, top - clip + 1e-6, clip):
            cell = box(x, y, x + clip, y + clip)
            if world.contains(cell) and not cell.intersects(held):
                count += 1
    return count


def generate_world(out_dir: str | Path, preset: str = "tiny", seed: int = 0,
                   config: WorldConfig | dict[str, Any] | str | Path | None = None,
                   overwrite: bool = False, progress: bool = False,
                   family: dict[str, Any] | None = None) -> dict[str, Any]:
    """Simulate a synthetic multi-sensor world and write it to ``out_dir``.

    Args:
        out_dir: output folder (created; must be empty or absent unless ``overwrite``).
        preset: ``tiny``, ``demo`` or ``large``.
        seed: non-negative integer; the same seed gives byte-identical files.
        config: overrides of the preset ({section: {field: value}}, a YAML/JSON file path, or
            a full :class:`WorldConfig`).
        overwrite: replace an existing non-empty ``out_dir``.
        progress: show a progress bar on stderr.
        family: for a world of a family, its record (name, index, seed, drawn values), written
            to ``world.json`` as ``family`` (see :func:`generate_family_world`).

    Returns:
        The content of ``world.json``.

    Raises:
        ConfigError: unknown preset, invalid config or seed, output folder not writable or not
            empty.
        InputFileError: the config file cannot be read.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    cfg = resolve_config(preset, config)
    out = check_output_dir(out_dir, overwrite)
    started = time.perf_counter()
    steps = ["grids", "terrain", "land cover", "settlements", "lights", "HR NTL", "LR NTL",
             "DMO", "DEM", "ISP", "regions", "metadata"]
    bar = tqdm(total=len(steps), desc="synth", unit="step", disable=not progress)

    def done(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    with staging_dir(out) as tmp:
        ext = cfg.extent
        grids = product_grids(cfg)
        work = working_grid(ext, cfg.terrain.coarse_factor, list(grids.values()))
        _check_covered(work, grids)
        done("grids")
        terrain = build_terrain(work.shape, ext.work_pixel, cfg.terrain, step_rng(seed, "terrain"))
        done("terrain")
        natural = natural_landcover(terrain, cfg.landcover, step_rng(seed, "landcover"))
        done("land cover")
        towns = build_settlements(terrain, cfg.settlements, step_rng(seed, "settlements"))
        cover = add_built_up(natural, towns.isp)
        done("settlements")
        lights = build_lights(terrain, cover, towns, cfg.lights, cfg.settlements.isp_threshold,
                              step_rng(seed, "lights"), cfg.urban, step_rng(seed, "urban_light"))
        done("lights")

        hr = observe.render_hr_ntl(lights.hr_time, work, grids["hr_ntl"], cfg.lights,
                                   step_rng(seed, "hr_sensor"))
        units = {"UNITS": "nW cm-2 sr-1"}
        observe.write_geotiff(tmp / "hr_ntl.tif", hr, grids["hr_ntl"], observe.NTL_NODATA,
                              descriptions=("radiance",),
                              tags={**units, "SENSOR_LIKE": "SDGSAT-1 glimmer"})
        done("HR NTL")
        ratio_work = round(ext.hr_pixel / ext.work_pixel)
        lr = observe.render_lr_ntl(lights.lr_time, work, grids["lr_ntl"], ratio_work, cfg.sensor,
                                   step_rng(seed, "lr_sensor"))
        observe.write_geotiff(tmp / "lr_ntl.tif", lr, grids["lr_ntl"], observe.NTL_NODATA,
                              descriptions=("radiance",),
                              tags={**units, "SENSOR_LIKE": "VIIRS DNB annual"})
        done("LR NTL")

        shade = observe.hillshade(terrain.elevation, ext.work_pixel, cfg.dmo)
        texture = (2.0 * smooth_noise(work.shape, 2, 1.5, step_rng(seed, "dmo_texture"))
                   - 1.0).astype(np.float32)
        built_mix = np.clip(towns.density / cfg.settlements.isp_threshold, 0.0, 1.0)
        built_mix = np.where(towns.isp, 1.0, 0.6 * built_mix).astype(np.float32)
        footprints = {}
        bands: dict[str, list[np.ndarray]] = {"dmo_utm49": [], "dmo_utm50": []}
        half_overlap = ext.scene_overlap_km / 2.0 / (111.32 * np.cos(np.radians(ext.center_lat)))
        west, south, east, north = ext.bounds_lonlat
        footprints["dmo_utm49"] = observe.scene_footprint(
            grids["dmo_utm49"], west, south, ZONE_BOUNDARY_LON + half_overlap, north)
        footprints["dmo_utm50"] = observe.scene_footprint(
            grids["dmo_utm50"], ZONE_BOUNDARY_LON - half_overlap, south, east, north)
        dmo_rng = step_rng(seed, "dmo")
        nir_swir = {}
        for b in range(len(observe.DMO_BANDS)):
            refl = observe.reflectance_band(b, cover, shade, texture, built_mix,
                                            lights.greenhouses, cfg.dmo, dmo_rng)
            if b in (4, 5):
                nir_swir[b] = block_mean(refl, ratio_work)
            for name in bands:
                gain = cfg.dmo.scene_gain_east if name == "dmo_utm50" else 1.0
                scene = observe.warp(refl, work, grids[name], Resampling.bilinear)
                scene = scene * np.float32(gain)
                bands[name].append(observe.to_dn(scene, footprints[name]))
        for name, layers in bands.items():
            observe.write_geotiff(
                tmp / "dmo" / f"{name}.tif", np.stack(layers), grids[name], observe.DMO_NODATA,
                descriptions=observe.DMO_BANDS,
                scales=(observe.DMO_SCALE,) * len(observe.DMO_BANDS),
                offsets=(observe.DMO_OFFSET,) * len(observe.DMO_BANDS),
                tags={"SENSOR_LIKE": "Landsat-8 OLI surface reflectance"})
        del bands, footprints
        done("DMO")
        dem = observe.warp(terrain.elevation, work, grids["dem"], Resampling.bilinear)
        dem = np.clip(np.rint(dem), -32767, 32767).astype(np.int16)
        observe.write_geotiff(tmp / "dem.tif", dem, grids["dem"], observe.DEM_NODATA,
                              descriptions=("elevation",), tags={"UNITS": "m",
                                                                 "SENSOR_LIKE": "SRTM"})
        done("DEM")
        isp = observe.warp(towns.isp.astype(np.uint8), work, grids["isp"], Resampling.nearest,
                           dst_dtype="uint8")
        observe.write_geotiff(tmp / "isp.tif", isp, grids["isp"], observe.ISP_NODATA,
                              descriptions=("impervious",), tags={"SENSOR_LIKE": "GAIA"})
        done("ISP")

        a = work.transform
        centres_m = np.column_stack([a.c + a.a * towns.centres[:, 1],
                                     a.f + a.e * towns.centres[:, 0]])
        tests = place_test_regions(ext, work.crs, centres_m, step_rng(seed, "regions"))
        write_regions(tmp, ext.bounds_lonlat, tests, step_rng(seed, "admin"), REGIONS_FILE,
                      ADMIN_FILE)
        done("regions")

        stats = _world_stats(cfg, lights, towns, cover, nir_swir, ratio_work, hr, lr, work,
                             tests, terrain.water)
        stats["generation_seconds"] = round(time.perf_counter() - started, 2)
        meta = {
            "preset": preset if not isinstance(config, WorldConfig) else "custom",
            "seed": seed,
            "generator_version": f"{GENERATOR_VERSION} (deeplightmd {__version__})",
            "bounds_lonlat": list(ext.bounds_lonlat),
            "hr_pixel": ext.hr_pixel,
            "sensor_model": cfg.sensor.to_dict(),
            "files": FILES,
            "regions_file": REGIONS_FILE,
            "admin_file": ADMIN_FILE,
            "test_regions": list(TEST_REGIONS),
            **({"family": family} if family is not None else {}),
            "params": cfg.to_dict(),
            "stats": stats,
            "rasters": {name: {"crs": g.crs, "shape": list(g.shape), "res": list(g.res)}
                        for name, g in grids.items()},
            "working_grid": {"crs": work.crs, "shape": list(work.shape),
                             "res": list(work.res)},
        }
        timing_free = {k: v for k, v in meta.items()}
        timing_free["stats"] = {k: v for k, v in stats.items() if k != "generation_seconds"}
        (tmp / "world.json").write_text(json.dumps(timing_free, indent=2) + "\n")
        done("metadata")
    bar.close()
    return meta


def _world_stats(cfg: WorldConfig, lights: Any, towns: Any, cover: np.ndarray,
                 nir_swir: dict[int, np.ndarray], ratio: int, hr: np.ndarray, lr: np.ndarray,
                 work: Grid, tests: dict[str, Any], water: np.ndarray) -> dict[str, Any]:
    """Measured statistics of the truth (working grid) and of the products."""
    lc = cfg.lights
    truth = lights.hr_time
    isp = towns.isp
    lit = truth >= lc.lit_threshold
    n_isp, n_lit = max(int(isp.sum()), 1), max(int(lit.sum()), 1)
    truth60 = block_mean(truth, ratio)
    isp60 = block_mean(isp.astype(np.float32), ratio)
    nir, swir = nir_swir[4], nir_swir[5]
    ndbi = (swir - nir) / np.maximum(swir + nir, 1e-6)
    clean_hr = blur_and_shift(block_mean(lights.hr_time, ratio), cfg.sensor)
    clean_lr = blur_and_shift(block_mean(lights.lr_time, ratio), cfg.sensor)
    changed = np.abs(clean_lr - clean_hr) > np.maximum(0.5, 0.1 * np.maximum(clean_hr, clean_lr))
    signal = np.maximum(clean_hr, clean_lr) * cfg.sensor.gain >= cfg.sensor.floor
    return {
        "settlements": int(towns.population.size),
        "largest_population": float(towns.population[0]),
        "water_fraction": round(float(water.mean()), 5),
        "isp_fraction": round(float(isp.mean()), 5),
        "lit_fraction": round(float(lit.mean()), 5),
        "dark_isp_fraction": round(float((isp & (truth < lc.dark_threshold)).sum() / n_isp), 5),
        "dark_patch_isp_fraction": round(float((towns.dark & isp).sum() / n_isp), 5),
        "lit_non_isp_fraction": round(float((lit & ~isp).sum() / n_lit), 5),
        "lit_non_isp_sources_px": {
            "ports": int((lights.ports & lit & ~isp).sum()),
            "boats": int((lights.boats & lit & ~isp).sum()),
            "gas_flares": int((lights.flares & lit & ~isp).sum()),
            "greenhouses": int((lights.greenhouses & lit & ~isp).sum()),
        },
        "switched_off_lit_fraction": round(float((lights.switched_off & lit).sum() / n_lit), 5),
        "switched_on_px": int(lights.switched_on.sum()),
        "lr_signal_changed_fraction": round(float((changed & signal).sum()
                                                  / max(int(signal.sum()), 1)), 5),
        "hr_saturated_px": int((hr >= lc.hr_saturation).sum()),
        "hr_max": round(float(hr.max()), 3),
        "lr_max": round(float(lr.max()), 3),
        "truth_corr_hr_isp": round(_corr(truth60, isp60), 4),
        "truth_corr_hr_ndbi": round(_corr(np.log1p(truth60), ndbi), 4),
        "clips_outside_test_regions": _clip_estimate(cfg, work, tests),
    }


def generate_family_world(out_dir: str | Path, family: str, index: int, overwrite: bool = False,
                          progress: bool = False) -> dict[str, Any]:
    """Write world ``index`` of the packaged family ``family`` (deterministic in both).

    Raises:
        ConfigError: unknown family, bad index, output folder not writable or not empty.
    """
    from deeplightmd.synth.families import family_record, load_family, world_overrides

    fam = load_family(family)
    overrides = world_overrides(fam, index)
    record = family_record(fam, index)
    return generate_world(out_dir, preset=fam.preset, seed=record["seed"], config=overrides,
                          overwrite=overwrite, progress=progress, family=record)
