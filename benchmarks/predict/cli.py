"""The ``deeplightmd predict`` command (the harness's; wired in deeplightmd/cli.py)."""

from __future__ import annotations

from pathlib import Path

import click

from benchmarks.predict.run import PredictRequest, predict_geotiff
from benchmarks.registry import load_plugin
from deeplightmd.atomic import write_text
from deeplightmd.predict.io import OutputSettings
from deeplightmd.predict.tiled import TileSettings

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option("--method", required=True, help="registered method (see `deeplightmd methods`)")
@click.option("--checkpoint", type=_FILE,
              help="weights (.safetensors) saved by `deeplightmd bench`; its sidecar gives the "
                   "ratio and normalisation statistics")
@click.option("--store", help="store giving ratio and statistics when the checkpoint has none "
                              "(non-learned methods need no checkpoint)")
@click.option("--lr", "lr", required=True, type=_FILE, help="LR NTL GeoTIFF (any CRS)")
@click.option("--dmo", help="7-band daytime multispectral raster (any CRS), or constant:VALUE")
@click.option("--dem", help="elevation raster in metres (any CRS), or constant:VALUE")
@click.option("--isp", help="impervious-surface / urban mask raster (any CRS), or constant:VALUE")
@click.option("--region", type=_FILE, help="polygon layer: crop and mask the output to it")
@click.option("--name", "region_name", help="feature of --region to use (default: all)")
@click.option("--name-field", help="field with feature names in --region/--admin (default: auto)")
@click.option("--admin", type=_FILE, help="polygon layer of admin units: print light sums")
@click.option("--sums-csv", type=_FILE, help="also write the light sums as CSV")
@click.option("--tile", default=64, show_default=True, type=int, help="LR tile side")
@click.option("--overlap", default=8, show_default=True, type=int, help="LR tile overlap")
@click.option("--preserve-lr-sum", is_flag=True,
              help="rescale each LR footprint so the block mean equals the LR input")
@click.option("--overviews", is_flag=True, help="build internal overviews")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:1")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--out", required=True, type=_FILE, help="output SR GeoTIFF (COG layout)")
@click.option("--plugin", "plugins", multiple=True, type=_FILE,
              help="a Python file of your own registering the method (as for bench); repeatable")
def predict(method: str, checkpoint: Path | None, store: str | None, lr: Path, dmo: str | None,
            dem: str | None, isp: str | None, region: Path | None, region_name: str | None,
            name_field: str | None, admin: Path | None, sums_csv: Path | None, tile: int,
            overlap: int, preserve_lr_sum: bool, overviews: bool, device: str, quiet: bool,
            out: Path, plugins: tuple[Path, ...] = ()) -> None:
    """Super-resolve an LR nighttime-light GeoTIFF ×8 with a trained method.

    \b
    Example:
      deeplightmd predict --method edsr --checkpoint edsr.safetensors \\
        --lr viirs_2020.tif --region districts.geojson --out sr.tif
    """
    for path in plugins:
        load_plugin(path)
    aux = {k: v for k, v in (("dmo", dmo), ("dem", dem), ("isp", isp)) if v is not None}
    req = PredictRequest(method=method, lr=lr, out=out, checkpoint=checkpoint, store=store,
                         aux=aux, region=region, region_name=region_name, name_field=name_field,
                         admin=admin, tiles=TileSettings(tile, overlap),
                         output=OutputSettings(overviews=overviews),
                         preserve_lr_sum=preserve_lr_sum, device=device, progress=not quiet)
    result = predict_geotiff(req)
    h, w = result.grid.shape
    click.echo(f"wrote {result.path}: {h}x{w} px, {result.tiling.tiles} tiles, "
               f"{result.tiling.valid_pixels} valid px, {result.tiling.seconds:.1f} s inference")
    if result.sums is not None:
        click.echo("light sums (nW cm-2 sr-1 x LR pixels):")
        click.echo(result.sums.to_text())
        if sums_csv is not None:
            write_text(sums_csv, result.sums.to_csv())
            click.echo(f"wrote {sums_csv}")
