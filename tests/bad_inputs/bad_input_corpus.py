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
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import yaml
import zarr
from affine import Affine

from deeplightmd.builder.manifest import PRESETS_DIR
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
    nodata_dmo = _raster(root / "dmo_nodata.tif", np.full((7, 128, 128), np.nan, "float32"),
                         "EPSG:4326", near)
    isp = _raster(root / "isp.tif", np.ones((128, 128), "uint8"), "EPSG:4326", near)
    radiance = np.full((96, 144), -3.0, "float32")   # negative but for a few valid pixels
    radiance[::16, ::16] = 5.0
    negative = _raster(root / "negative.tif", radiance, "EPSG:4326", near)
    manifests["negative"] = _manifest(root / "m_negative.yaml",
                                      sources={"hr_ntl": {"files": [negative]}})
    manifests["dotdot"] = _manifest(root / "m_dotdot.yaml", regions={"test_regions": ["../x"]})
    duplicate = root / "m_duplicate.yaml"
    duplicate.write_text(Path(_manifest(root / "m_clean.yaml")).read_text().replace(
        "grid:\n", "grid:\n  ratio: 4\n", 1))
    synth_duplicate = root / "synth_duplicate.yaml"
    synth_duplicate.write_text("seed: 1\nseed: 2\n")

    holed, corrupted, half = _damaged_copies(root, store)
    row = {"method": "paper-sr", "version": "1", "source": "reported", "citation": "ref",
           "dataset": {"name": "d", "fingerprint": None}, "split": "test",
           "protocol": {"budget": None, "seed": None}, "metrics": {"psnr": {"mean": 30.0}}}
    row_ok = root / "row_ok.json"
    row_ok.write_text(json.dumps(row))
    rows_nan, rows_huge = root / "row_nan.json", root / "row_huge.json"
    rows_nan.write_text(json.dumps({**row, "metrics": {"psnr": {"mean": float("nan")}}}))
    rows_huge.write_text(json.dumps({**row, "metrics": {"psnr": {"mean": 1e308}}}))
    rows_twice = root / "rows_twice.json"
    rows_twice.write_text(json.dumps({"rows": [row, {**row, "metrics": {"psnr": {"mean": 1.0}}}]}))
    board_nan = root / "board_nan.json"
    board_nan.write_text(json.dumps({"schema_version": 2, "rows": [
        {**row, "metrics": {"psnr": {"mean": float("nan")}}}]}))
    board_ok = root / "board_ok.json"
    board_ok.write_text(json.dumps({"schema_version": 2, "rows": [row]}))
    a_file = root / "a_file"
    a_file.write_text("not a folder")

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
        # issue 16: results and stores never lost or silently wrong
        BadInput("leaderboard: board holding NaN fails validate",
                 ("leaderboard", "--file", str(board_nan), "validate"),
                 r"row 0 \(paper-sr\), field 'rows\.0\.metrics\.psnr\.mean': NaN/inf"),
        BadInput("leaderboard: add to a board holding NaN",
                 ("leaderboard", "--file", str(board_nan), "add", str(row_ok)),
                 r"field 'rows\.0\.metrics\.psnr\.mean'"),
        BadInput("leaderboard: row with NaN PSNR",
                 ("leaderboard", "--file", board_new, "add", str(rows_nan)),
                 r"field 'metrics\.psnr\.mean': NaN/inf", board_new),
        BadInput("leaderboard: row with PSNR 1e308",
                 ("leaderboard", "--file", board_new, "add", str(rows_huge)),
                 r"field 'metrics\.psnr\.mean': 1e\+308 is outside the valid range", board_new),
        BadInput("leaderboard: two differing rows with one key",
                 ("leaderboard", "--file", board_new, "add", str(rows_twice)),
                 r"new rows 0 and 1 have the same key", board_new),
        BadInput("leaderboard: show a misspelt file",
                 ("leaderboard", "--file", str(root / "typo.json"), "show"),
                 r"typo\.json' not found"),
        BadInput("leaderboard: show an unknown metric",
                 ("leaderboard", "--file", str(board_ok), "show", "--metric", "foo"),
                 r"unknown metric 'foo'"),
        BadInput("leaderboard: render an unknown metric",
                 ("leaderboard", "--file", str(board_ok), "render", "--metric", "foo", "--out",
                  str(root / "site")), r"unknown metric 'foo'", str(root / "site")),
        BadInput("leaderboard: unwritable output folder",
                 ("leaderboard", "--file", str(a_file / "lb.json"), "add", str(row_ok)),
                 r"cannot write leaderboard .*a_file' is a file, not a folder",
                 str(a_file / "lb.json")),
        BadInput("leaderboard: render into an unwritable folder",
                 ("leaderboard", "--file", str(board_ok), "render", "--out", str(a_file / "s")),
                 r"cannot write .*a_file' is a file, not a folder; nothing was written",
                 str(a_file / "s" / "leaderboard.md")),
        BadInput("validate: deleted chunk",
                 ("validate", holed), r"val/hr_ntl clip 2: chunk object val/hr_ntl/c/2/0/0 is "
                                      r"missing"),
        BadInput("validate: half-written store", ("validate", half),
                 r"is invalid: store is not marked complete"),
        BadInput("bench: deleted chunk",
                 ("bench", "--method", "edsr", "--store", holed, "--out", out_bench,
                  "--no-leaderboard", "--quiet"),
                 r"fails its integrity check: val/hr_ntl clip 2: chunk object", out_bench),
        BadInput("bench: corrupted chunk met while reading",
                 ("bench", "--method", "bicubic", "--store", corrupted, "--out", out_bench,
                  "--no-leaderboard", "--quiet", "--tile", "16", "--overlap", "4"),
                 r"test clip 1 cannot be read \(ValueError: Stored and computed checksum",
                 out_bench),
        BadInput("bench --verify: corrupted chunk",
                 ("bench", "--method", "edsr", "--store", corrupted, "--out", out_bench,
                  "--no-leaderboard", "--quiet", "--verify"),
                 r"test/lr_ntl clip 1: CRC32C checksum mismatch", out_bench),
        BadInput("bench: results into an unwritable folder",
                 ("bench", "--method", "bicubic", "--store", store, "--out",
                  str(a_file / "r.json"), "--no-leaderboard", "--quiet", "--max-test-clips", "1",
                  "--tile", "16", "--overlap", "4"),
                 r"cannot write .*r\.json': .*a_file' is a file, not a folder",
                 str(a_file / "r.json")),
        build("region name with '..'", r"'\.\./x' cannot name a store group", "--manifest",
              manifests["dotdot"]),
        build("duplicate manifest key", r"duplicate key 'ratio' at line", "--manifest",
              str(duplicate)),
        build("negative radiance", r"too few clips.*QA rejected \d+ of \d+ candidate clips: "
              r"hr_ntl in \d+ .*negative radiance", "--manifest", manifests["negative"]),
        BadInput("synth: duplicate config key",
                 ("synth", str(root / "synth_dup"), "--config", str(synth_duplicate), "-q"),
                 r"duplicate key 'seed'", str(root / "synth_dup" / "world.json")),
        BadInput("predict: --isp for a method without ISP input",
                 ("predict", "--method", "bicubic", "--store", store, "--lr", lr_ok, "--isp",
                  isp, "--out", out_sr, "--quiet"), r"reads \['lr_ntl'\], not \['isp'\]; "
                                                    r"drop --isp", out_sr),
        BadInput("predict: all-nodata auxiliary",
                 ("predict", "--method", "guided-filter", "--store", store, "--lr", lr_ok,
                  "--dmo", nodata_dmo, "--out", out_sr, "--quiet"),
                 r"DMO raster .* holds only nodata over the LR extent", out_sr),
        BadInput("predict: store with a deleted chunk",
                 ("predict", "--method", "bicubic", "--store", holed, "--lr", lr_ok, "--out",
                  out_sr, "--quiet"), r"fails its integrity check", out_sr),
    ]


def _damaged_copies(root: Path, store: str) -> tuple[str, str, str]:
    """Copies of ``store``: one chunk deleted; one chunk with a flipped byte; half-written (not
    complete, later done flags and the regions not written yet)."""
    holed, corrupted, half = root / "holed.zarr", root / "corrupted.zarr", root / "half.zarr"
    for copy in (holed, corrupted, half):
        if not copy.exists():
            shutil.copytree(store, copy)
    chunk = holed / "val" / "hr_ntl" / "c" / "2" / "0" / "0"
    if chunk.exists():
        chunk.unlink()
    chunk = corrupted / "test" / "lr_ntl" / "c" / "1" / "0" / "0"
    blob = bytearray(chunk.read_bytes())
    blob[5] ^= 1
    chunk.write_bytes(bytes(blob))
    group = zarr.open_group(str(half), mode="r+", use_consolidated=False)
    attrs = dict(group.attrs[ROOT_ATTR])
    group.attrs[ROOT_ATTR] = {**attrs, "complete": False, "fingerprint": None, "stats": None}
    shutil.rmtree(half / "test" / "done" / "c", ignore_errors=True)
    shutil.rmtree(half / "regions", ignore_errors=True)
    return str(holed), str(corrupted), str(half)


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
