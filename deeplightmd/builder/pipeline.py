"""``build_store``: manifest → grid → clip windows → QA → splits → per-clip reads → Zarr →
region mosaics → train statistics → fingerprint → ``complete``.

Every step is a plain function in its own module; this module only wires them together and runs
the per-clip work through a :class:`~deeplightmd.builder.parallel.Runner`.
"""

from __future__ import annotations

import datetime as _dt
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
from shapely.geometry import box
from shapely.ops import unary_union

from deeplightmd._version import __version__
from deeplightmd.builder import fingerprint as fp
from deeplightmd.builder import store as zstore
from deeplightmd.builder.grid import TargetGrid, make_grid, parse_crs
from deeplightmd.builder.manifest import Manifest, ensure_world
from deeplightmd.builder.parallel import Runner
from deeplightmd.builder.qa import passes, rejection_summary, run_quality
from deeplightmd.builder.read import RASTER_CACHE
from deeplightmd.builder.regions import (
    Region,
    load_regions,
    region_box,
    region_datasets,
    write_region_lazy,
)
from deeplightmd.builder.sources import (
    DerivedLR,
    ModalityReader,
    check_sources,
    make_derived,
    make_readers,
    sensor_model,
)
from deeplightmd.builder.splits import SplitResult, split_clips
from deeplightmd.builder.stats import TrainStats
from deeplightmd.builder.windows import clips_touching, clips_within, coverage, domain_bounds
from deeplightmd.daytime import dn_warning
from deeplightmd.errors import ConfigError, DataWarning, InputFileError, StoreError
from deeplightmd.modalities import BUILTIN, Modality
from deeplightmd.store_format import (
    FORMAT_VERSION,
    REGIONS_GROUP,
    ROOT_ATTR,
    SPLITS,
    read_store_attrs,
    store_modalities,
)

#: most adjacent clips read by one warp and written by one task
WRITE_RUN = 8
#: most HR pixels per run (a task holds ~40 bytes per HR pixel over all modalities)
RUN_PIXELS = 1 << 22
#: most adjacent clips checked by one QA task
QA_RUN = 64


@dataclass(frozen=True)
class ClipReader:
    """Everything a worker needs to produce one clip (picklable: paths and parameters only)."""

    grid: TargetGrid
    readers: dict[str, ModalityReader]
    derived: DerivedLR | None
    seed: int
    modalities: dict[str, Modality] = field(default_factory=lambda: dict(BUILTIN))

    def read_run(self, row: int, col0: int, n: int) -> list[dict[str, np.ndarray]]:
        """All modalities of the ``n`` adjacent clips ``(row, col0 … col0+n-1)``.

        One warp per modality covers the whole run (the per-call set-up of GDAL's warper
        dominates small clips); each clip is then cut out, filled and typed on its own.
        Derived LR noise uses one generator per clip, seeded with ``(seed, clip_id)``.
        """
        g = self.grid
        crs, hr_side, lr_side = g.crs_wkt, g.hr_clip, g.lr_clip
        out: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        for name, rd in self.readers.items():
            hr = self.modalities[name].grid == "hr"
            side = hr_side if hr else lr_side
            t = g.hr_transform(row, col0) if hr else g.lr_transform(row, col0)
            raw = rd.raw(crs, t, (side, side * n))
            for k in range(n):
                out[k][name] = rd.finish(raw[..., k * side:(k + 1) * side])
        if self.derived is not None:
            signal = self.derived.signal(crs, g.lr_transform(row, col0), (lr_side, lr_side * n))
            for k in range(n):
                rng = np.random.default_rng([self.seed, g.clip_id(row, col0 + k)])
                part = signal[:, k * lr_side:(k + 1) * lr_side]
                out[k]["lr_ntl"] = self.derived.radiometry(part, rng)
        return out


def run_length(grid: TargetGrid) -> int:
    """Clips per write run: :data:`WRITE_RUN`, fewer for big clips (:data:`RUN_PIXELS`)."""
    return max(1, min(WRITE_RUN, RUN_PIXELS // grid.hr_clip ** 2))


def clip_runs(clips: list[tuple[int, int]], max_len: int) -> list[tuple[int, int, int, int]]:
    """Group clips (sorted by row, col) into runs of adjacent columns on one row.

    Returns ``(first_index, row, first_col, length)`` per run; the grouping depends only on the
    clip list, so resumed and parallel builds read exactly the same windows.
    """
    runs: list[tuple[int, int, int, int]] = []
    for i, (r, c) in enumerate(clips):
        if runs:
            i0, r0, c0, n = runs[-1]
            if r == r0 and c == c0 + n and n < max_len:
                runs[-1] = (i0, r0, c0, n + 1)
                continue
        runs.append((i, r, c, 1))
    return runs


@dataclass(frozen=True)
class BuildPlan:
    """The resolved build: grid, readers, regions, split assignment and initial root attrs."""

    manifest: Manifest
    grid: TargetGrid
    clip_reader: ClipReader
    regions: list[Region]
    eligible: list[tuple[int, int]]
    splits: SplitResult
    attrs: dict[str, Any]


def _qa_task(run: tuple[int, int, int, int], grid: TargetGrid,
             readers: dict[str, ModalityReader], manifest: Manifest) -> list[dict[str, float]]:
    _, row, col0, n = run
    return run_quality(grid, row, col0, n, readers, manifest.qa)


def plan_build(m: Manifest, runner: Runner) -> BuildPlan:
    """Validate sources, lay the grid, run QA and split (nothing is written)."""
    ensure_world(m)
    crs = parse_crs(m.grid.crs)
    readers = make_readers(m)
    provenance, footprints = check_sources(m, readers, crs)
    cover = coverage(footprints)
    if cover is None:
        raise InputFileError("the manifest has no file-backed source to define the domain")
    if cover.is_empty:
        raise InputFileError(f"the sources do not overlap: no area is covered by all of "
                             f"{sorted(footprints)}")
    domain = domain_bounds(cover, m.grid.bounds_lonlat, crs)
    for name, parts in footprints.items():
        if m.grid.bounds_lonlat is not None and not unary_union(parts).buffer(1.0).contains(
                box(*domain)):
            raise InputFileError(f"source {name!r} does not cover the domain grid.bounds_lonlat="
                                 f"{list(m.grid.bounds_lonlat)}")
    grid = make_grid(crs, m.grid.hr_pixel_size, m.grid.ratio, m.grid.lr_clip, domain)
    regions = load_regions(m, grid.crs_wkt)
    for region in regions:
        if not cover.intersects(region_box(grid, region)):
            raise InputFileError(f"test region {region.name!r} lies outside the area covered by "
                                 "every source")
    candidates = clips_within(grid, cover, domain)
    touching = clips_touching(grid, candidates, [r.geometry for r in regions])
    candidates = [c for c in candidates if c not in touching]
    measured = [f for run in runner.map(_qa_task, clip_runs(candidates, QA_RUN), "QA", grid,
                                        readers, m) for f in run]
    eligible = [c for c, f in zip(candidates, measured, strict=True) if passes(f, m.qa)]
    try:
        splits = split_clips(eligible, (grid.n_rows, grid.n_cols), m.splits, m.seed)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {rejection_summary(measured, m.qa)}") from exc
    model = sensor_model(m)
    attrs = {
        "format_version": FORMAT_VERSION,
        "toolkit_version": __version__,
        "dataset": m.name,
        "manifest": m.to_dict(),
        "grid": grid.to_dict(),
        "splits": splits.counts(),
        "regions": [r.name for r in regions],
        "stats": None,
        "sensor_model": model.to_dict() if model is not None else None,
        "sources": provenance,
        "qa": {"candidates": len(candidates) + len(touching), "touching_test_regions":
               len(touching), "eligible": len(eligible)},
        "fingerprint": None,
    }
    clip_reader = ClipReader(grid, readers, make_derived(m, readers), m.seed, m.modalities())
    return BuildPlan(m, grid, clip_reader, regions, eligible, splits, attrs)


def _write_task(run: tuple[str, int, int, int, int], url: str, reader: ClipReader,
                lit_threshold: float, token: str | None = None
                ) -> list[tuple[bytes, TrainStats | None]]:
    """Read, write and summarise (digest, train stats) the clips of one run (``token``: the
    build's, so each worker opens the split arrays once, see :func:`zstore.write_clips`)."""
    split, first, row, col0, n = run
    clips = reader.read_run(row, col0, n)
    zstore.write_clips(url, split, first, clips, token)
    return [fp.summarize_clip(arrays, split == "train", lit_threshold, reader.modalities)
            for arrays in clips]


def _scan_task(job: tuple[str, int, int], url: str, lit_threshold: float,
               check: bool) -> fp.ScanResult:
    split, start, stop = job
    return fp.scan_clips(url, split, start, stop, with_stats=split == "train",
                         lit_threshold=lit_threshold, check=check)


def _missing_ranges(count: int, known: dict[int, Any], size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges (at most ``size`` long) of the indices below ``count`` not in
    ``known``."""
    out: list[tuple[int, int]] = []
    for i in range(count):
        if i in known:
            continue
        if out and out[-1][1] == i and i - out[-1][0] < size:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def scan_store(url: str, counts: dict[str, int], runner: Runner, lit_threshold: float = 0.5,
               check: bool = False,
               known: dict[str, dict[int, tuple[bytes, TrainStats | None]]] | None = None
               ) -> tuple[dict[str, tuple[bytes, list[bytes]]], TrainStats, list[str]]:
    """Per-split digests, train statistics and (optionally) value problems of every clip.

    Clips in ``known`` (``split → index → (digest, stats)``, summarised while they were written)
    are not read back; the others are. Stats are merged clip by clip in index order, so the
    result is the same however the clips were summarised.
    """
    summaries = {s: dict((known or {}).get(s, {})) for s in SPLITS}
    jobs = [(s, a, b) for s in SPLITS
            for a, b in _missing_ranges(counts[s], summaries[s], fp.SCAN_BATCH)]
    results = runner.map(_scan_task, jobs, "read back", url, lit_threshold, check)
    problems: list[str] = []
    for (split, start, stop), res in zip(jobs, results, strict=True):
        problems.extend(res.problems)
        for k, i in enumerate(range(start, stop)):
            summaries[split][i] = (res.digests[k],
                                   res.clip_stats[k] if res.clip_stats else None)
    parts: dict[str, tuple[bytes, list[bytes]]] = {}
    stats = TrainStats(lit_threshold=lit_threshold,
                       modalities=store_modalities(read_store_attrs(url)))
    for split in SPLITS:
        ordered = [summaries[split][i] for i in range(counts[split])]
        if split == "train":
            for _, clip in ordered:
                assert clip is not None
                stats.merge(clip)
        parts[split] = (fp.metadata_digest(url, split), [d for d, _ in ordered])
    return parts, stats, problems


def store_fingerprint(url: str, attrs: dict[str, Any], runner: Runner,
                      check: bool = False) -> tuple[str, TrainStats, list[str]]:
    """Recompute the fingerprint of the store at ``url`` given its (final) root attrs."""
    parts, stats, problems = scan_store(url, attrs["splits"], runner,
                                        attrs["manifest"]["qa"]["lit_threshold"], check)
    regions = {name: fp.region_digest(url, name) for name in attrs["regions"]}
    return fp.combine(attrs, parts, regions), stats, problems


def _comparable(attrs: dict[str, Any]) -> dict[str, Any]:
    skip = {"stats", "fingerprint", "complete", "build", "toolkit_version", "created",
            "chunk_manifest"}
    return {k: v for k, v in attrs.items() if k not in skip}


def build_store(manifest: Manifest, out: str, workers: int = 1, scheduler: str | None = None,
                resume: bool = False, overwrite: bool = False, progress: bool = True,
                inner_chunk: int = zstore.INNER_CHUNK) -> dict[str, Any]:
    """Build a DeepLightMD store from ``manifest`` at ``out`` (a path or fsspec URL).

    Args:
        manifest: from :func:`deeplightmd.builder.load_manifest`.
        out: output store (local path, ``memory://name``, ``s3://...``).
        workers: local parallel workers.
        scheduler: ``sync``/``threads``/``processes`` or a ``tcp://`` dask.distributed address.
        resume: continue an interrupted build of the same manifest (clips with ``done`` set are
            kept; regions not marked done are rewritten); with nothing to resume (no store, or
            one killed while it was being created) the build starts from scratch.
        overwrite: replace an existing store.
        progress: show progress bars.
        inner_chunk: clips with more HR pixels on a side are stored sharded, in inner chunks
            of at most this side (0: one chunk per clip). A storage layout only: the
            fingerprint hashes decoded values, so it does not depend on it.

    Returns:
        The root attrs (``attrs["deeplight"]``) of the finished store.

    Raises:
        StoreError: output exists (without ``overwrite``/``resume``), another build holds the
            store's lock, or the store to resume was built from another manifest or format
            version.
        InputFileError, ConfigError: bad sources or manifest.
    """
    if resume and overwrite:
        raise StoreError("choose either --resume or --overwrite, not both")
    with zstore.build_lock(out):
        return _build_locked(manifest, out, workers, scheduler, resume, overwrite, progress,
                             inner_chunk)


def _build_locked(manifest: Manifest, out: str, workers: int, scheduler: str | None,
                  resume: bool, overwrite: bool, progress: bool, inner_chunk: int
                  ) -> dict[str, Any]:
    """:func:`build_store` while holding the store's build lock."""
    state = zstore.store_state(out)
    if state in ("incomplete", "complete", "other") and not (resume or overwrite):
        raise StoreError(f"output {out!r} already exists; pass --overwrite to replace it or "
                         "--resume to continue it")
    if state == "other" and resume:
        read_store_attrs(out)  # raises the reason (not a store, another format version)
    # nothing to resume: build from scratch (a half-created store holds no clip)
    resume = resume and state in ("incomplete", "complete")
    exists = state != "absent"
    runner = Runner(workers=workers, scheduler=scheduler, progress=progress)
    if runner.scheduler == "processes" and out.startswith("memory://"):
        raise StoreError("a memory:// store cannot be shared with worker processes; use threads")
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    try:
        plan = plan_build(manifest, runner)
        lap("plan")
        attrs = dict(plan.attrs)
        attrs["build"] = {"base_dir": str(manifest.base_dir), "started": started,
                          "workers": workers, "scheduler": runner.scheduler}
        clips = {"train": plan.splits.train, "val": plan.splits.val, "test": plan.splits.test}
        if resume:
            old = read_store_attrs(out)
            if _comparable(old) != _comparable(attrs):
                raise StoreError(f"--resume: the store at {out!r} was built from another "
                                 "manifest, grid or source files; use --overwrite")
            if old.get("complete"):
                return old
            zstore.open_for_resume(out).attrs[ROOT_ATTR] = {**attrs, "complete": False,
                                                             "created": True}
        else:
            if exists:
                zstore.remove_store(out)
            zstore.create_store(out, plan.grid, clips, attrs, inner_chunk)
        todo = []
        for split in SPLITS:
            done = zstore.done_flags(out, split) if resume else np.zeros(len(clips[split]), bool)
            todo += [(split, *run) for run in clip_runs(clips[split], run_length(plan.grid))
                     if not done[run[0]:run[0] + run[3]].all()]
        written = runner.map(_write_task, todo, "clips", out, plan.clip_reader,
                             manifest.qa.lit_threshold, uuid.uuid4().hex)
        known: dict[str, dict[int, tuple[bytes, TrainStats | None]]] = {s: {} for s in SPLITS}
        for (split, first, *_), summaries in zip(todo, written, strict=True):
            known[split].update(enumerate(summaries, start=first))
        lap("clips")
        _write_regions(out, plan, runner, resume)
        lap("regions")
        attrs_final = dict(attrs)
        parts, stats, _ = scan_store(out, plan.splits.counts(), runner,
                                     manifest.qa.lit_threshold, known=known)
        attrs_final["stats"] = stats.to_dict()
        _warn_dn(plan.clip_reader.modalities, attrs_final["stats"])
        regions = {r.name: fp.region_digest(out, r.name) for r in plan.regions}
        attrs_final["fingerprint"] = fp.combine(attrs_final, parts, regions)
        lap("read_back")
        attrs_final["build"] = {**attrs["build"], "timings_s": timings,
                                "clips_written": sum(run[4] for run in todo),
                                "finished": _dt.datetime.now(_dt.UTC).isoformat(
                                    timespec="seconds")}
        return zstore.finish(out, attrs_final)
    finally:
        runner.close()
        RASTER_CACHE.close()
        zstore.forget_open_arrays(out)


def _warn_dn(modalities: dict[str, Modality], stats: dict[str, Any]) -> None:
    """One warning line when the DMO's "reflectance" looks like raw digital numbers."""
    dmo = modalities["dmo"]
    message = dn_warning(dmo.band_names, list(stats.get("dmo_mean") or []), dmo.units)
    if message:
        warnings.warn(message, DataWarning, stacklevel=3)


def _write_regions(url: str, plan: BuildPlan, runner: Runner, resume: bool) -> None:
    """Write each region mosaic (skipping, on resume, the ones already marked done)."""
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    regions_group = root.require_group(REGIONS_GROUP)
    m = plan.manifest
    reader = plan.clip_reader
    for index, region in enumerate(plan.regions):
        if resume and region.name in regions_group and \
                regions_group[region.name].attrs.get("done"):
            continue
        hr, lr = region_datasets(plan.grid, region, index, reader.readers, reader.derived,
                                 m.regions.chunk, m.seed, reader.modalities)
        group = regions_group.require_group(region.name)
        group.attrs.update({**hr.attrs, "done": False})
        runner.compute(write_region_lazy(url, hr, lr, region.name), f"region {region.name}")
        group.attrs["done"] = True
