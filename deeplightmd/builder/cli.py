"""Click commands ``build``, ``info``, ``validate`` and ``preview`` (see deeplightmd/cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from deeplightmd.errors import ConfigError, StoreError


@click.command()
@click.option("--preset", help="packaged manifest preset: tiny, demo, large (synthetic worlds, "
              "generated when absent), paper (template for real files), shanghai-viirs, "
              "paper-rehearsal / paper-counts (the paper's layout / counts on coarse synthetic "
              "worlds, docs/scale.md); or a "
              "multi-world preset: standard, generalization (train/val and test from different "
              "family worlds, synthesised into --worlds-dir), standard-tiny (tests)")
@click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False),
              help="manifest YAML file")
@click.option("--out", required=True, help="output store: a path or fsspec URL (memory://, s3://)")
@click.option("--world", type=click.Path(file_okay=False, path_type=Path),
              help="directory the source paths are relative to (the synthetic world for presets)")
@click.option("--worlds-dir", type=click.Path(file_okay=False, path_type=Path),
              help="multi-world presets: cache folder of the synthesised worlds "
                   "[default: worlds/ beside --out]")
@click.option("--workers", default=1, show_default=True, type=int, help="local parallel workers")
@click.option("--scheduler", help="sync | threads | processes | tcp://host:port (dask.distributed)")
@click.option("--resume", is_flag=True, help="continue an interrupted build (per-clip done flags)")
@click.option("--overwrite", is_flag=True, help="replace an existing store")
@click.option("--quiet", is_flag=True, help="no progress bars")
def build(preset: str | None, manifest_path: str | None, out: str, world: Path | None,
          worlds_dir: Path | None, workers: int, scheduler: str | None, resume: bool,
          overwrite: bool, quiet: bool) -> None:
    """Build a DeepLightMD Zarr store from a manifest (reproject, cut clips, split, write)."""
    from deeplightmd.builder import build_store, load_manifest
    from deeplightmd.builder.manifest import list_presets
    from deeplightmd.builder.multiworld import build_multiworld, multiworld_presets

    if (preset is None) == (manifest_path is None):
        raise ConfigError("give exactly one of --preset NAME or --manifest FILE")
    start = time.perf_counter()
    if preset in multiworld_presets():
        if world is not None or resume:
            raise ConfigError(f"--preset {preset} synthesises its own worlds (--worlds-dir) and "
                              "builds all or nothing: --world and --resume do not apply")
        attrs = build_multiworld(preset, out, worlds_dir=worlds_dir, workers=workers,
                                 scheduler=scheduler, overwrite=overwrite, progress=not quiet,
                                 log=click.echo)
    else:
        if worlds_dir is not None:
            raise ConfigError("--worlds-dir applies only to the multi-world presets "
                              f"{multiworld_presets()}")
        if (preset is not None and preset not in list_presets()
                and Path(preset).suffix not in (".yaml", ".yml") and not Path(preset).exists()):
            raise ConfigError(f"unknown preset {preset!r}; expected one of {list_presets()}, a "
                              f"multi-world preset {multiworld_presets()} or a manifest .yaml path")
        manifest = load_manifest(preset or manifest_path, world_dir=world)
        attrs = build_store(manifest, out, workers=workers, scheduler=scheduler, resume=resume,
                            overwrite=overwrite, progress=not quiet)
    counts = ", ".join(f"{k} {v}" for k, v in attrs["splits"].items())
    click.echo(f"built {out}: {counts}; regions {', '.join(attrs['regions']) or '-'}; "
               f"{time.perf_counter() - start:.1f} s; fingerprint {attrs['fingerprint'][:16]}")


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def info(store: str, as_json: bool) -> None:
    """Show counts, grid, sizes, sources and fingerprint of a store."""
    from deeplightmd.builder.inspect import format_info, store_info

    summary = store_info(store)
    click.echo(json.dumps(summary, indent=2) if as_json else format_info(summary))


@click.command()
@click.argument("store")
@click.option("--workers", default=1, show_default=True, type=int)
def validate(store: str, workers: int) -> None:
    """Check schema, counts, splits, values, done flags and the fingerprint of a store."""
    from deeplightmd.builder.inspect import validate_store

    problems = validate_store(store, workers=workers)
    if problems:
        more = f" (+{len(problems) - 1} more, listed above)" if len(problems) > 1 else ""
        for p in problems:   # every problem on stdout; the one-line error on stderr
            click.echo(f"  {p}")
        raise StoreError(f"store {store!r} is invalid: {problems[0]}{more}")
    click.echo(f"{store}: valid")


@click.command()
@click.argument("store")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "val", "test"]))
@click.option("--index", default=0, show_default=True, type=int)
@click.option("--region", help="preview a held-out region mosaic instead of a clip")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="PNG to write")
def preview(store: str, split: str, index: int, region: str | None, out: str) -> None:
    """Write a PNG with every modality of one clip (or region mosaic) side by side."""
    from deeplightmd.builder.preview import preview as make_preview

    click.echo(f"wrote {make_preview(store, out, split=split, index=index, region=region)}")
