"""Multi-world presets: one store whose train/val clips come from some synthetic worlds and whose
test clips and held-out regions come from other, unseen worlds.

A multi-world preset (``deeplightmd/builder/multiworld_presets/<name>.yaml``) names a single-world
manifest preset (grid, sources, QA), the *train worlds* (``family`` + ``indices``, each giving
``train`` and ``val`` clips) and the *test worlds* (each giving ``test`` clips and its held-out
regions with admin units). :func:`build_multiworld`

1. synthesises every world into a cache folder (``<family><index>``, deterministic in family and
   index; a cached world is reused when its ``world.json`` records the same family draw),
2. builds each world with :func:`~deeplightmd.builder.pipeline.build_store` into a temporary *part
   store* (train worlds: no test split, no regions; test worlds: only test clips and regions),
3. merges the parts into one store written under a temporary name and renamed at the end (all or
   nothing): clips are concatenated per split, region ``R`` of world ``W`` becomes ``W-R``, and the
   train statistics and fingerprint are recomputed with the single-world build's functions.

Clip positions: the worlds' clip lattices are stacked top to bottom into one lattice of
``max(n_cols)`` columns, with ``buffer + 1`` empty rows between worlds, so clip ids stay
``row * n_cols + col`` and clips of different worlds never look adjacent. Each clip keeps the
``bounds`` of its own world; ``attrs["multiworld"]["lattice"]`` maps row ranges to worlds and
``attrs["worlds"]`` lists each split's worlds with their drawn parameters.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zarr

from deeplightmd.builder import fingerprint as fp
from deeplightmd.builder import store as zstore
from deeplightmd.builder.grid import TargetGrid
from deeplightmd.builder.manifest import load_manifest
from deeplightmd.builder.parallel import Runner
from deeplightmd.builder.pipeline import build_store, scan_store
from deeplightmd.builder.stats import TrainStats
from deeplightmd.errors import ConfigError, StoreError, reject_unknown
from deeplightmd.store_format import REGIONS_GROUP, SPLITS, read_store_attrs, store_modalities

PRESET_PACKAGE = "deeplightmd.builder.multiworld_presets"
PRESET_KEYS = ("name", "description", "manifest", "train", "test", "block", "seed")
#: clips copied from a part store by one merge task
COPY_BATCH = 16


@dataclass(frozen=True)
class WorldRef:
    """World ``index`` of a synthetic world family."""

    family: str
    index: int

    @property
    def label(self) -> str:
        """Folder name and region prefix, e.g. ``standard8``."""
        return f"{self.family}{self.index}"


@dataclass(frozen=True)
class MultiWorldPreset:
    """A parsed multi-world preset (see the module docstring)."""

    name: str
    description: str
    manifest: str
    train_worlds: tuple[WorldRef, ...]
    train_per_world: int
    val_per_world: int
    test_worlds: tuple[WorldRef, ...]
    test_per_world: int
    block: int = 0
    seed: int = 0


def multiworld_presets() -> list[str]:
    """Names of the packaged multi-world presets."""
    files = resources.files(PRESET_PACKAGE).iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".yaml"))


def _preset_data(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The YAML mapping of preset ``name`` with its ``base`` preset's keys filled in."""
    if name not in multiworld_presets():
        raise ConfigError(f"unknown multi-world preset {name!r}; expected one of "
                          f"{multiworld_presets()}")
    text = resources.files(PRESET_PACKAGE).joinpath(f"{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"multi-world preset {name!r} must be a mapping")
    reject_unknown(data, ("base", *PRESET_KEYS), "key(s)", f" in multi-world preset {name!r}")
    base = data.pop("base", None)
    if base is None:
        return data
    if base in (*seen, name):
        raise ConfigError(f"multi-world preset {name!r}: circular base {base!r}")
    return {**_preset_data(base, (*seen, name)), **data}


def _worlds(section: Any, where: str, count_keys: tuple[str, ...]) -> tuple[tuple[WorldRef, ...],
                                                                           dict[str, int]]:
    """The worlds and per-world clip counts of a ``train``/``test`` section."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping with family, indices and clips_per_world")
    reject_unknown(section, ("family", "indices", "clips_per_world"), "key(s)", f" in {where}")
    from deeplightmd.synth.families import family_names

    family = section.get("family")
    if family not in family_names():
        raise ConfigError(f"{where}.family must be one of {family_names()}, got {family!r}")
    indices = section.get("indices")
    if (not isinstance(indices, list) or not indices
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                       for i in indices) or len(set(indices)) != len(indices)):
        raise ConfigError(f"{where}.indices must be distinct non-negative integers, "
                          f"got {indices!r}")
    counts = section.get("clips_per_world")
    if not isinstance(counts, dict):
        raise ConfigError(f"{where}.clips_per_world must map {list(count_keys)} to counts")
    reject_unknown(counts, count_keys, "key(s)", f" in {where}.clips_per_world")
    for key in count_keys:
        value = counts.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}.clips_per_world.{key} must be an integer >= 1, "
                              f"got {value!r}")
    return tuple(WorldRef(family, i) for i in indices), counts


def load_multiworld_preset(name: str) -> MultiWorldPreset:
    """Read and check the packaged multi-world preset ``name`` (:class:`ConfigError` if bad)."""
    return parse_multiworld_preset(name, _preset_data(name))


def parse_multiworld_preset(name: str, data: dict[str, Any]) -> MultiWorldPreset:
    """Check a multi-world preset mapping (``base`` already resolved)."""
    reject_unknown(data, PRESET_KEYS, "key(s)", f" in multi-world preset {name!r}")
    from deeplightmd.builder.manifest import list_presets

    if data.get("manifest") not in list_presets():
        raise ConfigError(f"multi-world preset {name!r}: manifest must be one of "
                          f"{list_presets()}, got {data.get('manifest')!r}")
    for key in ("manifest", "train", "test"):
        if key not in data:
            raise ConfigError(f"multi-world preset {name!r} is missing the key {key!r}")
    train, train_counts = _worlds(data["train"], f"{name}.train", ("train", "val"))
    test, test_counts = _worlds(data["test"], f"{name}.test", ("test",))
    for key in ("block", "seed"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"multi-world preset {name!r}: {key} must be an integer >= 0, "
                              f"got {value!r}")
    shared = {w.label for w in train} & {w.label for w in test}
    if shared:
        raise ConfigError(f"multi-world preset {name!r}: worlds {sorted(shared)} are both train "
                          "and test worlds (test worlds must be unseen)")
    return MultiWorldPreset(
        name=str(data.get("name", name)), description=str(data.get("description", "")).strip(),
        manifest=str(data["manifest"]), train_worlds=train,
        train_per_world=train_counts["train"], val_per_world=train_counts["val"],
        test_worlds=test, test_per_world=test_counts["test"], block=int(data.get("block", 0)),
        seed=int(data.get("seed", 0)))


def _synth_task(world: WorldRef, worlds_dir: Path) -> float:
    """Synthesise ``world`` into ``worlds_dir / label`` unless an identical draw is cached;
    returns the seconds spent (0 when cached)."""
    from deeplightmd.synth.families import family_record, load_family
    from deeplightmd.synth.world import generate_family_world

    out = worlds_dir / world.label
    meta = out / "world.json"
    if meta.is_file():
        try:
            cached = json.loads(meta.read_text()).get("family")
        except json.JSONDecodeError:
            cached = None
        if cached == family_record(load_family(world.family), world.index):
            return 0.0
    start = time.perf_counter()
    generate_family_world(out, world.family, world.index, overwrite=True)
    return time.perf_counter() - start


def _part_manifest(preset: MultiWorldPreset, world: WorldRef, worlds_dir: Path,
                   test: bool) -> Any:
    """The single-world manifest of one world: train/val only, or test clips and regions."""
    if test:
        splits = {"train": 0, "val": 0, "test": preset.test_per_world}
        regions: dict[str, Any] = {}
    else:
        splits = {"train": preset.train_per_world, "val": preset.val_per_world, "test": 0}
        regions = {"test_regions": []}
    return load_manifest(preset.manifest, world_dir=worlds_dir / world.label,
                         name=f"{preset.name}/{world.label}", world=None, seed=preset.seed,
                         splits={**splits, "block": preset.block, "on_shortfall": "error"},
                         regions=regions)


def _copy_task(job: tuple[str, int, str, int, int], url: str,
               lit_threshold: float) -> list[tuple[bytes, TrainStats | None]]:
    """Copy clips ``start:stop`` of ``split`` from a part store to index ``first`` of ``url``;
    returns each clip's (digest, train stats) as the single-world build summarises them."""
    split, first, part, start, stop = job
    modalities = store_modalities(read_store_attrs(part))
    group = zarr.open_group(part, mode="r", use_consolidated=False, path=split)
    values = {name: group[name][start:stop] for name in modalities}
    clips = [{name: v[k] if modalities[name].bands > 1 else v[k][None]
              for name, v in values.items()} for k in range(stop - start)]
    zstore.write_clips(url, split, first, clips)
    return [fp.summarize_clip(c, split == "train", lit_threshold, modalities) for c in clips]


@dataclass
class _Part:
    """A built part store and where its clips go in the merged lattice."""

    world: WorldRef
    role: str                 # "train" (train + val clips) or "test"
    url: str
    attrs: dict[str, Any]
    row_offset: int = 0


def _stack(parts: list[_Part], buffer: int) -> TargetGrid:
    """Set each part's row offset; the merged lattice (first world's CRS, pixel and origin)."""
    grids = [TargetGrid.from_dict(p.attrs["grid"]) for p in parts]
    first = grids[0]
    for p, g in zip(parts, grids, strict=True):
        if (g.crs_wkt, g.hr_pixel_size, g.ratio, g.lr_clip) != \
                (first.crs_wkt, first.hr_pixel_size, first.ratio, first.lr_clip):
            raise ConfigError(f"world {p.world.label} has another CRS, pixel size, ratio or clip "
                              "size than the first world; all worlds must share the grid")
    row = 0
    for p, g in zip(parts, grids, strict=True):
        p.row_offset = row
        row += g.n_rows + buffer + 1
    return dataclasses.replace(first, n_rows=row - buffer - 1,
                               n_cols=max(g.n_cols for g in grids))


def _world_record(part: _Part, worlds_dir: Path, count: int) -> dict[str, Any]:
    """What the store records about one world of a split."""
    meta = json.loads((worlds_dir / part.world.label / "world.json").read_text())
    family = meta.get("family") or {}
    return {"world": part.world.label, "family": part.world.family, "index": part.world.index,
            "seed": family.get("seed"), "clips": count,
            "sensor_model": part.attrs.get("sensor_model") or meta.get("sensor_model"),
            "drawn": family.get("drawn", {})}


def _merged_sources(parts: list[_Part]) -> dict[str, Any]:
    """Every world's source files per modality, paths prefixed with the world folder."""
    out: dict[str, Any] = {}
    for name, first in parts[0].attrs["sources"].items():
        if "files" not in first:
            out[name] = first
            continue
        files = [{**f, "path": f"{p.world.label}/{f['path']}"}
                 for p in parts for f in p.attrs["sources"][name]["files"]]
        out[name] = {**first, "files": files}
    return out


def _merged_attrs(preset: MultiWorldPreset, parts: list[_Part], grid: TargetGrid,
                  worlds_dir: Path) -> dict[str, Any]:
    """Root attrs of the merged store (``stats`` and ``fingerprint`` still unset)."""
    counts = {s: sum(p.attrs["splits"][s] for p in parts) for s in SPLITS}
    regions = [f"{p.world.label}-{r}" for p in parts for r in p.attrs["regions"]]
    manifest = parts[0].attrs["manifest"]
    manifest = {**manifest, "name": preset.name, "world": None,
                "splits": {**manifest["splits"], **counts},
                "regions": {**manifest["regions"], "test_regions": regions}}
    worlds = {s: [_world_record(p, worlds_dir, p.attrs["splits"][s]) for p in parts
                  if p.attrs["splits"][s]] for s in SPLITS}
    lattice = [{"world": p.world.label, "row_offset": p.row_offset,
                **{k: p.attrs["grid"][k] for k in ("n_rows", "n_cols", "origin_x", "origin_y")}}
               for p in parts]
    qa = {k: sum(p.attrs["qa"][k] for p in parts) for k in parts[0].attrs["qa"]}
    first = parts[0].attrs
    return {
        "format_version": first["format_version"], "toolkit_version": first["toolkit_version"],
        "dataset": preset.name, "manifest": manifest, "grid": grid.to_dict(), "splits": counts,
        "regions": regions, "stats": None,
        # each world has its own LR sensor (see worlds.*.sensor_model): no single store model
        "sensor_model": None, "sources": _merged_sources(parts), "qa": qa,
        "worlds": worlds,
        "multiworld": {"preset": preset.name, "description": preset.description,
                       "manifest_preset": preset.manifest, "lattice": lattice},
        "fingerprint": None,
    }


def _copy_regions(part: _Part, url: str) -> None:
    """Copy the part's region mosaics to ``regions/<world>-<region>`` of the merged store."""
    for region in part.attrs["regions"]:
        name = f"{part.world.label}-{region}"
        shutil.copytree(Path(part.url) / REGIONS_GROUP / region, Path(url) / REGIONS_GROUP / name)
        for path in (f"{REGIONS_GROUP}/{name}", f"{REGIONS_GROUP}/{name}/hr",
                     f"{REGIONS_GROUP}/{name}/lr"):
            group = zarr.open_group(url, mode="r+", use_consolidated=False, path=path)
            group.attrs.update({"name": name, "world": part.world.label})


def _merge(preset: MultiWorldPreset, parts: list[_Part], url: str, worlds_dir: Path,
           runner: Runner, build: dict[str, Any]) -> dict[str, Any]:
    """Write the merged store at ``url`` from the part stores; returns its final root attrs
    (``build``: the unhashed record of how it was built)."""
    buffer = int(parts[0].attrs["manifest"]["splits"]["buffer"])
    grid = _stack(parts, buffer)
    attrs = _merged_attrs(preset, parts, grid, worlds_dir)
    lit = float(attrs["manifest"]["qa"]["lit_threshold"])
    clips: dict[str, list[tuple[int, int]]] = {s: [] for s in SPLITS}
    bounds: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    jobs: list[tuple[str, int, str, int, int]] = []
    for p in parts:
        for split in SPLITS:
            n = p.attrs["splits"][split]
            if not n:
                continue
            group = zarr.open_group(p.url, mode="r", use_consolidated=False, path=split)
            first = len(clips[split])
            clips[split] += [(int(r) + p.row_offset, int(c))
                             for r, c in zip(group["row"][...], group["col"][...], strict=True)]
            bounds[split].append(group["bounds"][...])
            jobs += [(split, first + a, p.url, a, min(a + COPY_BATCH, n))
                     for a in range(0, n, COPY_BATCH)]
    zstore.create_store(url, grid, clips, attrs)
    for split in SPLITS:  # each clip keeps the bounds of its own world
        if clips[split]:
            zarr.open_array(url, path=f"{split}/bounds", mode="r+")[...] = \
                np.concatenate(bounds[split])
    results = runner.map(_copy_task, jobs, "merge clips", url, lit)
    known: dict[str, dict[int, tuple[bytes, TrainStats | None]]] = {s: {} for s in SPLITS}
    for (split, first, *_), summaries in zip(jobs, results, strict=True):
        known[split].update(enumerate(summaries, start=first))
    zarr.open_group(url, mode="r+", use_consolidated=False).require_group(REGIONS_GROUP)
    for p in parts:
        _copy_regions(p, url)
    split_parts, stats, _ = scan_store(url, attrs["splits"], runner, lit, known=known)
    attrs["stats"] = stats.to_dict()
    regions = {name: fp.region_digest(url, name) for name in attrs["regions"]}
    attrs["fingerprint"] = fp.combine(attrs, split_parts, regions)
    attrs["build"] = build
    zstore.finish(url, attrs)
    return {**attrs, "complete": True}


def _local_path(out: str) -> Path:
    if "://" in out:
        raise StoreError(f"multi-world presets write a local store, got {out!r}")
    return Path(out).resolve()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def build_multiworld(preset_name: str, out: str, worlds_dir: Path | None = None,
                     workers: int = 1, scheduler: str | None = None, overwrite: bool = False,
                     progress: bool = True,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the multi-world preset ``preset_name`` into the local store ``out``.

    Args:
        preset_name: a packaged multi-world preset (:func:`multiworld_presets`).
        out: output store path (local; written under a temporary name, renamed at the end).
        worlds_dir: cache folder of the synthetic worlds (default: ``worlds`` beside ``out``).
        workers, scheduler: parallelism of synthesis, each world's build and the merge.
        overwrite: replace an existing store at ``out``.
        progress: progress bars of each stage.
        log: called with one line per step (``None``: silent).

    Returns:
        The root attrs of the finished store.

    Raises:
        StoreError: ``out`` exists without ``overwrite`` or is not a local path.
        ConfigError, InputFileError: bad preset, or a world yields too few clips.
    """
    say = log or (lambda _line: None)
    preset = load_multiworld_preset(preset_name)
    path = _local_path(out)
    if zstore.store_exists(str(path)) and not overwrite:
        raise StoreError(f"output {out!r} already exists; pass --overwrite to replace it")
    worlds_dir = (worlds_dir or path.parent / "worlds").resolve()
    worlds_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    work = path.with_name(f".{path.name}.parts-{os.getpid()}")
    start = time.perf_counter()
    runner = Runner(workers=workers, scheduler=scheduler, progress=progress)
    try:
        worlds = [*preset.train_worlds, *preset.test_worlds]
        say(f"synthesising {len(worlds)} worlds into {worlds_dir} "
            f"({', '.join(w.label for w in worlds)})")
        spent = runner.map(_synth_task, worlds, "worlds", worlds_dir)
        cached = sum(1 for s in spent if s == 0.0)
        timings = {"worlds": round(time.perf_counter() - start, 3)}
        say(f"worlds ready ({cached} cached) in {timings['worlds']:.1f} s")
        work.mkdir(parents=True)
        parts = []
        roles = [(w, "train") for w in preset.train_worlds] + \
            [(w, "test") for w in preset.test_worlds]
        for k, (world, role) in enumerate(roles, start=1):
            t0 = time.perf_counter()
            url = str(work / f"{world.label}.zarr")
            manifest = _part_manifest(preset, world, worlds_dir, role == "test")
            attrs = build_store(manifest, url, workers=workers, scheduler=scheduler,
                                progress=progress)
            parts.append(_Part(world, role, url, attrs))
            counts = ", ".join(f"{s} {n}" for s, n in attrs["splits"].items() if n)
            say(f"[{k}/{len(roles)}] {world.label} ({role} world): {counts}"
                + (f"; regions {', '.join(attrs['regions'])}" if attrs["regions"] else "")
                + f"; {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        timings["parts"] = round(t0 - start - timings["worlds"], 3)
        _remove(tmp)
        build = {"worlds_dir": str(worlds_dir), "workers": workers, "scheduler": runner.scheduler,
                 "timings_s": timings, "worlds_cached": cached}
        attrs = _merge(preset, parts, str(tmp), worlds_dir, runner, build)
        say(f"merged {len(parts)} part stores in {time.perf_counter() - t0:.1f} s")
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            _remove(old)
        else:
            tmp.rename(path)
        return attrs
    finally:
        runner.close()
        _remove(work)
        _remove(tmp)


def format_worlds(worlds: dict[str, list[dict[str, Any]]]) -> list[str]:
    """``info`` lines: each split's worlds (with clip counts), then every world's family seed and
    drawn parameters in one column per world."""
    lines = ["worlds"]
    for split in SPLITS:
        listed = ", ".join(f"{w['world']} ({w['clips']})" for w in worlds.get(split, []))
        lines.append(f"  {split:<6} {listed or '-'}")
    records = {w["world"]: w for split in SPLITS for w in worlds.get(split, [])}
    keys = sorted({k for w in records.values() for k in w["drawn"]})
    width = max([len("seed"), *(len(k) for k in keys)]) + 2
    cols = max(11, *(len(name) + 1 for name in records))
    lines.append("  " + "parameter".ljust(width) + "".join(n.rjust(cols) for n in records))
    lines.append("  " + "seed".ljust(width)
                 + "".join(str(w["seed"]).rjust(cols) for w in records.values()))
    for key in keys:
        cells = [w["drawn"].get(key) for w in records.values()]
        lines.append("  " + key.ljust(width) + "".join(
            ("-" if v is None else f"{v:.4g}").rjust(cols) for v in cells))
    return lines
