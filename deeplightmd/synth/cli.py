"""``deeplightmd synth``: write the synthetic multi-sensor world."""

from __future__ import annotations

from pathlib import Path

import click
import rasterio

from deeplightmd.errors import ConfigError
from deeplightmd.synth.config import PRESETS
from deeplightmd.synth.families import family_names
from deeplightmd.synth.world import generate_family_world, generate_world


def _human_size(n_bytes: int) -> str:
    """``1.2 MB``-style size."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _short_crs(crs: rasterio.crs.CRS) -> str:
    """``EPSG:xxxx`` when the CRS has a code, else a short projection name."""
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    return "Albers (aea)" if "Albers" in crs.to_wkt() else crs.to_string()[:30]


def summary_table(out_dir: Path, files: dict[str, list[str]]) -> str:
    """A plain-text table of the written rasters: file, CRS, size, shape (bands × rows × cols)."""
    rows = [("file", "CRS", "size", "shape")]
    for paths in files.values():
        for rel in paths:
            path = out_dir / rel
            with rasterio.open(path) as ds:
                shape = f"{ds.count}x{ds.height}x{ds.width}"
                rows.append((rel, _short_crs(ds.crs), _human_size(path.stat().st_size), shape))
    for rel in ("regions.geojson", "admin.geojson", "world.json"):
        rows.append((rel, "EPSG:4326" if rel.endswith("geojson") else "-",
                     _human_size((out_dir / rel).stat().st_size), "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines)


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", default=None,
              help=f"World size: {', '.join(PRESETS)} (tiny: seconds, ~0.45°x0.35°; demo: "
                   "~1.3°x1.05°, about a minute; large: ~2.4°x2.0°, for speed benchmarks). "
                   "Default: tiny.")
@click.option("--seed", default=None, type=click.IntRange(min=0),
              help="Random seed; the same seed gives byte-identical files. Default: 0.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML/JSON file overriding preset fields, e.g. '{settlements: "
                   "{n_settlements: 60}, sensor: {gain: 0.9}}'.")
@click.option("--family", default=None,
              help=f"Draw world --index of a world family ({', '.join(family_names())}): sensor "
                   "and landscape parameters from the ranges of the family's YAML "
                   "(deeplightmd/synth/family_specs/); excludes --preset/--seed/--config.")
@click.option("--index", "index", default=None, type=click.IntRange(min=0),
              help="Which world of --family (deterministic in family and index).")
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists and is not empty.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def synth(out_dir: Path, preset: str | None, seed: int | None, config_file: Path | None,
          family: str | None, index: int | None, overwrite: bool, quiet: bool) -> None:
    """Write a deterministic synthetic multi-sensor world to OUT_DIR.

    \b
    Physically grounded truth (fractal terrain, rivers, land cover, Zipf settlements, roads,
    lights) is simulated on one metric grid, then each sensor is rendered in its own CRS/grid:
      lr_ntl.tif            VIIRS-DNB-like, EPSG:4326 15", float32 radiance
      hr_ntl.tif            SDGSAT-1-like, EPSG:32650 60 m, float32 radiance
      dmo/dmo_utm49|50.tif  Landsat-8-like bands 1-7, UTM 49N/50N 30 m, uint16 + scale/offset
      dem.tif               SRTM-like, EPSG:4326 1" or 3", int16 m
      isp.tif               GAIA-like, Albers 30 m, uint8 {0,1}
      regions.geojson, admin.geojson, world.json
    Files are written to a temporary folder and moved into place only when complete.
    See docs/synthetic-world.md.
    """
    if family is None and index is not None:
        raise ConfigError("--index needs --family")
    if family is not None:
        if preset is not None or seed is not None or config_file is not None:
            raise ConfigError("--family excludes --preset, --seed and --config "
                              "(the family's YAML sets them)")
        if index is None:
            raise ConfigError("--family needs --index K (a non-negative integer)")
        meta = generate_family_world(out_dir, family, index, overwrite=overwrite,
                                     progress=not quiet)
        what = f"{family} family world {index} (seed {meta['seed']})"
    else:
        seed = 0 if seed is None else seed
        meta = generate_world(out_dir, preset=preset or "tiny", seed=seed, config=config_file,
                              overwrite=overwrite, progress=not quiet)
        what = f"{meta['preset']} world (seed {seed})"
    out = out_dir.expanduser().absolute()
    click.echo(f"wrote {what} to {out} in "
               f"{meta['stats']['generation_seconds']:.1f} s")
    click.echo(summary_table(out, meta["files"]))
