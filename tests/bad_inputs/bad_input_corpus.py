"""The bad-input corpus: broken files and command lines for every ``deeplightmd`` command.

:func:`write_corpus` writes the broken inputs (corrupt GeoTIFF, raster without CRS, a raster
in the wrong place, NaN-filled and wrong-band sources, an empty polygon file, malformed or
misspelt manifests, malformed results JSON, a leaderboard row failing its schema, a checkpoint
of another method, a store of another format version, …) into a folder and returns one
:class:`BadInput` per case: the command line and the one-line error it must give (exit code 2).
The files are generated rather than committed so they stay tiny and always match the code.

Run ``python tests/bad_inputs/bad_input_corpus.py DIR --world W --store S`` to write the corpus
and print the cases (``W``: a tiny synthetic world, ``S``: a store built from it).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import yaml
import zarr
from affine import Affine

from deeplightmd.build.manifest import PRESETS_DIR
from deeplightmd.store_format import ROOT_ATTR


@dataclass(frozen=True)
class BadInput:
    """One bad input.

    Attributes:
        name: case id.
        argv: arguments after ``deeplightmd``.
        message: regular expression the single ``Error: …`` line must match.
        output: a path the command must not leave behind as a finished product (a store marked
            complete, a file or a world), or ``None``.
    """

    name: str
    argv: tuple[str, ...]
    message: str
    output: str | None = None


def _raster(path: Path, data: np.ndarray, crs: str | None, transform: Affine) -> str:
    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2],
                       count=bands.shape[0], dtype=bands.dtype, crs=crs,
                       transform=transform) as dst:
        dst.write(bands)
    return str(path)


def _manifest(path: Path, **changes: dict) -> str:
    """The tiny preset with ``changes`` merged into its sections, written to ``path``."""
    doc = yaml.safe_load((PRESETS_DIR / "tiny.yaml").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            for sub, v in value.items():
                if isinstance(v, dict) and isinstance(doc[key].get(sub), dict):
                    doc[key][sub].update(v)
                else:
                    doc[key][sub] = v
        else:
            doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def write_corpus(root: Path, world: Path, store: str) -> list[BadInput]:
    """Write every broken input under ``root``; the cases, in a fixed order."""
    root.mkdir(parents=True, exist_ok=True)
    w = str(world)
    near = Affine(1 / 240, 0, 113.7, 0, -1 / 240, 31.3)      # over the tiny world
    far = Affine(1 / 240, 0, -10.0, 0, -1 / 240, 50.0)       # over the Atlantic
    ones = np.ones((96, 144), "float32")

    corrupt = root / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 8)  # TIFF magic, then garbage
    no_crs = _raster(root / "no_crs.tif", ones, None, near)
    elsewhere = _raster(root / "elsewhere.tif", ones, "EPSG:4326", far)
    nan = _raster(root / "nan.tif", np.full((96, 144), np.nan, "float32"), "EPSG:4326", near)
    one_band = _raster(root / "one_band.tif", ones, "EPSG:4326", near)
    empty_polygons = root / "empty.geojson"
    empty_polygons.write_text(json.dumps({"type": "FeatureCollection", "features": []}))

    manifests = {
        "corrupt": _manifest(root / "m_corrupt.yaml", sources={"dem": {"files": [str(corrupt)]}}),
        "no_crs": _manifest(root / "m_no_crs.yaml", sources={"dem": {"files": [no_crs]}}),
        "elsewhere": _manifest(root / "m_elsewhere.yaml",
                               sources={"dem": {"files": [elsewhere]}}),
        "nan": _manifest(root / "m_nan.yaml", sources={"hr_ntl": {"files": [nan]}}),
        "bands": _manifest(root / "m_bands.yaml", sources={"dmo": {"files": [one_band]}}),
        "missing": _manifest(root / "m_missing.yaml",
                             sources={"dem": {"files": [str(root / "nope.tif")]}}),
        "regions": _manifest(root / "m_regions.yaml",
                             regions={"file": str(empty_polygons)}),
        "unknown_key": _manifest(root / "m_unknown.yaml", splits={"trian": 4}),
    }
    malformed = root / "m_malformed.yaml"
    malformed.write_text("name: x\ngrid: {crs: EPSG:4326\nsources: [\n")

    exists = root / "exists.zarr"
    exists.mkdir(exist_ok=True)
    (exists / "keep.txt").write_text("not a store")
    other_version = root / "v9.zarr"
    zarr.open_group(str(other_version), mode="w").attrs[ROOT_ATTR] = {"format_version": 9}
    not_a_store = root / "not_a_store"
    not_a_store.mkdir(exist_ok=True)
    synth_exists = root / "synth_exists"
    synth_exists.mkdir(exist_ok=True)
    (synth_exists / "keep.txt").write_text("x")
    synth_config = root / "synth_bad.yaml"
    synth_config.write_text("seed: [1, 2\n")

    results = root / "results_malformed.json"
    results.write_text('{"method": "bicubic", "per_clip": [1, 2,')
    bad_row = root / "row_bad.json"
    bad_row.write_text(json.dumps({"method": "x", "version": "1", "source": "someone",
                                   "citation": "", "dataset": {"name": "d"}, "split": "test",
                                   "protocol": {"budget": "small", "seed": 0},
                                   "metrics": {"psnr": {"mean": 1.0}}}))
    board = root / "board_malformed.json"
    board.write_text("[1, 2")

    lr_ok = _raster(root / "lr.tif", np.full((16, 16), 5.0, "float32"), "EPSG:4326", near)
    checkpoint = _checkpoint(root / "srcnn.safetensors", store)

    def build(name: str, message: str, *extra: str) -> BadInput:
        out = str(root / f"out_{name}.zarr")
        return BadInput(name, ("build", *extra, "--world", w, "--out", out, "--quiet"), message,
                        out)

    out_bench = str(root / "out_bench.json")
    out_sr = str(root / "out_sr.tif")
    board_new = str(root / "board_new.json")
    return [
        BadInput("synth: out dir exists", ("synth", str(synth_exists), "--preset", "tiny",
                                            "-q"), r"(exists|not empty)",
                 str(synth_exists / "world.json")),
        BadInput("synth: malformed config YAML", ("synth", str(root / "synth_out"), "--config",
                                                   str(synth_config), "-q"), r"YAML|yaml",
                 str(root / "synth_out" / "world.json")),
        build("corrupt GeoTIFF", r"corrupt\.tif", "--manifest", manifests["corrupt"]),
        build("raster without CRS", r"has no CRS", "--manifest", manifests["no_crs"]),
        build("wrong footprint", r"(does not cover|do not overlap|outside)", "--manifest",
              manifests["elsewhere"]),
        build("NaN-filled source", r"no valid pixel", "--manifest", manifests["nan"]),
        build("wrong band count", r"has 1 band\(s\)", "--manifest", manifests["bands"]),
        build("missing source file", r"nope\.tif' does not exist", "--manifest",
              manifests["missing"]),
        build("empty polygon file", r"regions file .* has no polygon", "--manifest",
              manifests["regions"]),
        build("malformed manifest YAML", r"is not valid YAML", "--manifest", str(malformed)),
        build("unknown manifest key", r"unknown key\(s\) \['trian'\]", "--manifest",
              manifests["unknown_key"]),
        build("unknown preset", r"unknown preset 'tinyy'", "--preset", "tinyy"),
        BadInput("build: out dir exists", ("build", "--preset", "tiny", "--world", w, "--out",
                                           str(exists), "--quiet"), r"already exists",
                 str(exists)),
        BadInput("build: resume store of another version",
                 ("build", "--preset", "tiny", "--world", w, "--out", str(other_version),
                  "--resume", "--quiet"), r"format version 9", str(other_version)),
        BadInput("info: store of another version", ("info", str(other_version)),
                 r"format version 9"),
        BadInput("validate: not a store", ("validate", str(not_a_store)),
                 r"no DeepLightMD store|not a DeepLightMD store"),
        BadInput("bench: unknown method", ("bench", "--method", "srcnnn", "--store", store,
                                           "--out", out_bench, "--no-leaderboard", "--quiet"),
                 r"unknown method 'srcnnn'", out_bench),
        BadInput("bench: store of another version",
                 ("bench", "--method", "bicubic", "--store", str(other_version), "--out",
                  out_bench, "--no-leaderboard", "--quiet"), r"format version 9", out_bench),
        BadInput("predict: corrupt LR GeoTIFF",
                 ("predict", "--method", "bicubic", "--store", store, "--lr", str(corrupt),
                  "--out", out_sr, "--quiet"), r"corrupt\.tif", out_sr),
        BadInput("predict: LR without CRS",
                 ("predict", "--method", "bicubic", "--store", store, "--lr", no_crs, "--out",
                  out_sr, "--quiet"), r"has no CRS", out_sr),
        BadInput("predict: checkpoint of another method",
                 ("predict", "--method", "edsr", "--checkpoint", checkpoint, "--lr", lr_ok,
                  "--out", out_sr, "--quiet"), r"saved by method 'srcnn', not 'edsr'", out_sr),
        BadInput("predict: unknown method",
                 ("predict", "--method", "nosuch", "--store", store, "--lr", lr_ok, "--out",
                  out_sr, "--quiet"), r"unknown method 'nosuch'", out_sr),
        BadInput("predict: empty region polygon file",
                 ("predict", "--method", "bicubic", "--store", store, "--lr", lr_ok, "--region",
                  str(empty_polygons), "--out", out_sr, "--quiet"), r"has no polygon", out_sr),
        BadInput("leaderboard: malformed results JSON",
                 ("leaderboard", "--file", board_new, "add", str(results)),
                 r"is not valid JSON", board_new),
        BadInput("leaderboard: row failing the schema",
                 ("leaderboard", "--file", board_new, "validate", str(bad_row)),
                 r"row_bad\.json", board_new),
        BadInput("leaderboard: malformed leaderboard file",
                 ("leaderboard", "--file", str(board), "show"), r"is not valid JSON"),
    ]


def _checkpoint(path: Path, store: str) -> str:
    """An (untrained) ``srcnn`` checkpoint saved the way ``deeplightmd bench`` saves one."""
    import torch

    from benchmarks.method import MethodContext
    from benchmarks.registry import get_method
    from benchmarks.runner import save_checkpoint
    from deeplightmd.normalize import Normalizer
    from deeplightmd.store_format import read_store_attrs

    attrs = read_store_attrs(store)
    ctx = MethodContext(ratio=attrs["grid"]["ratio"],
                        normalizer=Normalizer.from_dict(attrs["stats"]),
                        device=torch.device("cpu"))
    method = get_method("srcnn")(ctx)
    save_checkpoint(method, path, store_fingerprint=attrs["fingerprint"],
                    dataset=attrs["dataset"])
    return str(path)


def main() -> None:
    """Write the corpus and print its cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args()
    for case in write_corpus(args.out, args.world, args.store):
        print(f"{case.name}: deeplightmd {' '.join(case.argv)}")


if __name__ == "__main__":
    main()
