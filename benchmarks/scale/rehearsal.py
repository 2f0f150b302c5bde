"""A build rehearsed at the paper's scale on a local ``dask.distributed`` cluster.

Starts a ``LocalCluster`` of worker *processes* (one thread each, a memory limit per worker),
runs ``deeplightmd build --scheduler tcp://…`` against it as a separate process, then
``deeplightmd validate``, and measures:

* CPU seconds of the build: every worker process, the build's driver process and this process
  (which hosts the scheduler), summed and divided by the clips built (**per-clip CPU**);
* peak resident memory of each worker (its own ``VmHWM``, read on the worker at the end, and
  the largest RSS sampled while the build ran; a restarted worker is reported);
* the store's size on disk (bytes and objects, per clip) and its clip layout (shards, inner
  chunks);
* a projection to the paper's 22,540 clips: core-hours, wall hours on 64 and 256 workers,
  stored TB and object count, all from the per-clip measurements of this run.

Presets (``deeplightmd/builder/presets/``): ``paper-rehearsal`` (the paper's 256² / 2048²
layout, 64 clips) and ``paper-counts`` (the paper's 18,032 / 2,254 / 2,254 clips of 2² / 16²).
The report goes to ``OUT/report.json`` and ``OUT/report.md`` (written atomically); the store
is ``OUT/store.zarr`` (replaced on every run) and the effective manifest ``OUT/manifest.yaml``.

Run: ``python -m benchmarks.scale.rehearsal --out out/scale/rehearsal [--clips N]``
(``--help`` for options; ``make bench-scale`` runs both presets).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from deeplightmd.atomic import write_json, write_text
from deeplightmd.errors import ConfigError, DeepLightError

#: the paper's clip count (18,032 + 2,254 + 2,254), the target of the projection
PAPER_CLIPS = 18032 + 2254 + 2254
#: the paper's HR clip side (px)
PAPER_HR_CLIP = 2048
#: peak RSS per worker the paper-scale build aims to stay under (issue 15)
RSS_GOAL_MB = 2048.0
DEFAULT_PRESET = "paper-rehearsal"
#: worker counts the projection gives wall hours for
PROJECTED_WORKERS = (64, 256)


class RehearsalFailed(DeepLightError):
    """The build or the validation of the rehearsal failed (not a bad input)."""


def split_counts(clips: int) -> dict[str, int]:
    """Train / val / test counts of ``clips`` clips in the paper's 8:1:1 proportion.

    ``val = test = max(1, round(clips / 10))``, train the rest (64 → 52 / 6 / 6).

    Raises:
        ConfigError: fewer than 3 clips (each split needs one).
    """
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 3:
        raise ConfigError(f"--clips must be an integer >= 3 (one clip per split), got {clips!r}")
    held = max(1, round(clips / 10))
    return {"train": clips - 2 * held, "val": held, "test": held}


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``SECTION.KEY=VALUE`` manifest overrides as :func:`load_manifest` keywords.

    Values are read as YAML (``40`` is an int, ``[0, 1]`` a list); ``grid.lr_clip=40`` becomes
    ``{"grid__lr_clip": 40}``.

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
            raise ConfigError(f"--set expects SECTION.KEY=VALUE (e.g. grid.lr_clip=40), "
                              f"got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from exc
        out[key.strip().replace(".", "__")] = parsed
    return out


def worker_usage() -> dict[str, float]:
    """This process's pid, CPU seconds (user + system), current RSS and peak RSS (MB).

    Run on every worker with ``client.run``; the peak is the process's own ``VmHWM``.
    """
    import psutil

    from benchmarks.speed.peak import peak_rss_mb

    proc = psutil.Process()
    cpu = proc.cpu_times()
    return {"pid": float(os.getpid()), "cpu_s": cpu.user + cpu.system,
            "rss_mb": proc.memory_info().rss / 2 ** 20, "peak_rss_mb": peak_rss_mb()}


class RssSampler:
    """Samples every worker's RSS at a fixed interval in a background thread (largest kept)."""

    def __init__(self, client: Any, interval: float) -> None:
        self.client, self.interval = client, interval
        self.max_rss: dict[str, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                usage = self.client.run(worker_usage)
            except Exception:  # a worker restarting mid-sample: the next sample counts
                continue
            self.samples += 1
            for address, u in usage.items():
                self.max_rss[address] = max(self.max_rss.get(address, 0.0), u["rss_mb"])

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


#: per-split arrays whose chunks hold many clips (written once by the driver)
SHARED_ARRAYS = ("clip_id", "row", "col", "bounds")


def store_size(path: Path) -> dict[str, Any]:
    """Bytes and files of a local store: in all, per top-level group, and the *clip objects*
    (chunk or shard files of the per-clip split arrays, ``done`` included: one per clip and
    variable, all-zero ones left unwritten) — the objects that grow with the clip count."""
    total, files, clip_objects, clip_bytes, groups = 0, 0, 0, 0, {}
    for root, _, names in os.walk(path):
        rel = Path(root).relative_to(path).parts
        group = rel[0] if rel else "."
        per_clip = (len(rel) >= 3 and rel[0] in ("train", "val", "test") and rel[2] == "c"
                    and rel[1] not in SHARED_ARRAYS)
        for name in names:
            size = (Path(root) / name).stat().st_size
            total += size
            files += 1
            clip_objects += per_clip
            clip_bytes += size if per_clip else 0
            bytes_, count = groups.get(group, (0, 0))
            groups[group] = (bytes_ + size, count + 1)
    return {"bytes": total, "files": files, "clip_objects": clip_objects,
            "clip_bytes": clip_bytes,
            "groups": {g: {"bytes": b, "files": n} for g, (b, n) in sorted(groups.items())}}


def clip_layout(store: Path) -> dict[str, Any]:
    """Shard and inner-chunk shapes of the HR and LR NTL arrays of the first non-empty split."""
    import zarr

    root = zarr.open_group(str(store), mode="r")
    for split in ("train", "val", "test"):
        if root[split]["hr_ntl"].shape[0]:
            out = {}
            for name in ("hr_ntl", "lr_ntl", "dmo"):
                arr = root[split][name]
                out[name] = {"shard": list(arr.shards) if arr.shards else None,
                             "chunk": list(arr.chunks)}
            return out
    return {}


def _run(argv: list[str], what: str, input_errors: bool = False
         ) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``argv``; return the process, its wall seconds and its CPU seconds (user + sys).

    A failure raises :class:`RehearsalFailed` with the command's last output line, or — with
    ``input_errors`` and exit code 2 (a bad manifest, too few clips) — a :class:`ConfigError`.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else "(no output)"
        if input_errors and proc.returncode == 2:
            raise ConfigError(f"{what}: {last.removeprefix('Error: ')}")
        raise RehearsalFailed(f"{what} failed (exit {proc.returncode}): {last}")
    return proc, wall, cpu


@dataclass
class Rehearsal:
    """What one rehearsal builds, and on which cluster.

    Attributes:
        out: folder of the store, manifest and report (the store is replaced).
        preset: manifest preset name or YAML path.
        clips: build this many clips (8:1:1, :func:`split_counts`) instead of the preset's.
        world: the synthetic world folder (default: the preset's cached world, made if absent).
        settings: further manifest overrides (:func:`parse_settings`).
        workers: worker processes of the local cluster (one thread each).
        memory_limit: memory limit per worker (dask syntax: ``4GiB``).
        interval: seconds between RSS samples of the workers.
    """

    out: Path
    preset: str = DEFAULT_PRESET
    clips: int | None = None
    world: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    memory_limit: str = "4GiB"
    interval: float = 0.5

    def memory_limit_bytes(self) -> int:
        """The memory limit in bytes (``ConfigError`` if it does not parse or is not positive)."""
        from dask.utils import parse_bytes

        try:
            value = int(parse_bytes(self.memory_limit))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--memory-limit must be a size like 4GiB or 2000MB, "
                              f"got {self.memory_limit!r}") from exc
        if value <= 0:
            raise ConfigError(f"--memory-limit must be positive, got {self.memory_limit!r}")
        return value


def run_rehearsal(r: Rehearsal, log: Any = click.echo) -> dict[str, Any]:
    """Build, validate and measure; write ``OUT/report.json`` and ``OUT/report.md``.

    Returns:
        The report (see the module docstring).

    Raises:
        ConfigError, InputFileError: bad preset, overrides, world or options.
        RehearsalFailed: the build or ``validate`` failed.
    """
    from deeplightmd.builder.manifest import ensure_world, load_manifest
    from deeplightmd.store_format import read_store_attrs

    if r.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {r.workers}")
    limit = r.memory_limit_bytes()
    overrides = dict(r.settings)
    if r.clips is not None:
        overrides.update({f"splits__{k}": v for k, v in split_counts(r.clips).items()})
    manifest = load_manifest(r.preset, world_dir=r.world, **overrides)
    from distributed import Client, LocalCluster
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    clock = time.perf_counter()
    ensure_world(manifest)
    synth_s = time.perf_counter() - clock
    r.out.mkdir(parents=True, exist_ok=True)
    manifest_path = write_text(r.out / "manifest.yaml",
                               yaml.safe_dump(manifest.to_dict(), sort_keys=False))
    store = r.out / "store.zarr"
    log(f"[rehearsal] {manifest.name}: {manifest.grid.lr_clip}² LR / {manifest.hr_clip}² HR "
        f"clips, {manifest.splits.train}/{manifest.splits.val}/{manifest.splits.test}; "
        f"{r.workers} worker processes, {r.memory_limit} each")
    cli = [sys.executable, "-m", "deeplightmd.cli"]
    with LocalCluster(n_workers=r.workers, threads_per_worker=1, processes=True,
                      memory_limit=limit, host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None, worker_dashboard_address=None) as cluster, \
            Client(cluster) as client:
        address = cluster.scheduler_address
        client.wait_for_workers(r.workers)
        before = client.run(worker_usage)
        own_before = time.process_time()
        with RssSampler(client, r.interval) as sampler:
            _, build_wall, driver_cpu = _run(
                [*cli, "build", "--manifest", str(manifest_path), "--world",
                 str(manifest.base_dir), "--out", str(store), "--scheduler", address,
                 "--overwrite", "--quiet"], "deeplightmd build", input_errors=True)
        scheduler_cpu = time.process_time() - own_before
        after = client.run(worker_usage)
    workers = []
    restarts = 0
    for address_w, end in sorted(after.items()):
        start = before.get(address_w)
        restarted = start is None or start["pid"] != end["pid"]
        restarts += restarted
        workers.append({"address": address_w, "pid": int(end["pid"]),
                        "cpu_s": end["cpu_s"] - (0.0 if restarted else start["cpu_s"]),
                        "peak_rss_mb": end["peak_rss_mb"],
                        "max_sampled_rss_mb": sampler.max_rss.get(address_w, end["rss_mb"]),
                        "restarted": restarted})
    log(f"[rehearsal] built {store} in {build_wall:.1f} s; validating")
    _, validate_wall, validate_cpu = _run([*cli, "validate", str(store), "--workers",
                                           str(r.workers)], "deeplightmd validate")
    attrs = read_store_attrs(str(store))
    counts = dict(attrs["splits"])
    n_clips = sum(counts.values())
    worker_cpu = sum(w["cpu_s"] for w in workers)
    total_cpu = worker_cpu + driver_cpu + scheduler_cpu
    size = store_size(store)
    per_clip_cpu = total_cpu / n_clips
    core_hours = per_clip_cpu * PAPER_CLIPS / 3600.0
    peak = max(max(w["peak_rss_mb"], w["max_sampled_rss_mb"]) for w in workers)
    report = {
        "preset": r.preset,
        "dataset": attrs["dataset"],
        "manifest": str(manifest_path),
        "store": str(store),
        "started": started,
        "layout": {"lr_clip": attrs["grid"]["lr_clip"], "hr_clip": attrs["grid"]["hr_clip"],
                   "ratio": attrs["grid"]["ratio"], "hr_pixel_m": manifest.grid.hr_pixel_size,
                   "paper_layout": attrs["grid"]["hr_clip"] == PAPER_HR_CLIP,
                   "arrays": clip_layout(store)},
        "counts": counts,
        "clips": n_clips,
        "regions": list(attrs["regions"]),
        "qa": attrs["qa"],
        "cluster": {"workers": r.workers, "threads_per_worker": 1, "processes": True,
                    "memory_limit_bytes": limit},
        "synth_s": synth_s,
        "build": {"wall_s": build_wall, "timings_s": attrs["build"].get("timings_s", {}),
                  "cpu_s": {"workers": worker_cpu, "driver": driver_cpu,
                            "scheduler_host": scheduler_cpu, "total": total_cpu}},
        "per_clip": {"cpu_s": per_clip_cpu, "wall_s": build_wall / n_clips,
                     "stored_bytes": size["clip_bytes"] / n_clips,
                     "objects": size["clip_objects"] / n_clips},
        "workers": workers,
        "peak_rss_mb": peak,
        "rss_goal_mb": RSS_GOAL_MB,
        "rss_samples": sampler.samples,
        "worker_restarts": restarts,
        "store_size": size,
        "validate": {"valid": True, "wall_s": validate_wall, "cpu_s": validate_cpu},
        "projection": {
            "clips": PAPER_CLIPS,
            "of_layout": f"{attrs['grid']['lr_clip']}² LR / {attrs['grid']['hr_clip']}² HR",
            "core_hours": core_hours,
            **{f"wall_hours_{n}_workers": core_hours / n for n in PROJECTED_WORKERS},
            # clip objects scale with the clips; metadata, shared arrays and regions do not
            "stored_tb": (size["clip_bytes"] / n_clips * PAPER_CLIPS
                          + size["bytes"] - size["clip_bytes"]) / 1e12,
            "objects": round(size["clip_objects"] / n_clips * PAPER_CLIPS
                             + size["files"] - size["clip_objects"]),
        },
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or
                    platform.machine(), "python": platform.python_version(),
                    "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg())},
    }
    write_json(report, r.out / "report.json")
    text = format_report(report)
    write_text(r.out / "report.md", text + "\n")
    return report


def _fmt(value: float, digits: int = 2) -> str:
    """A number with thousands separators and ``digits`` decimals (``-`` for non-finite)."""
    return f"{value:,.{digits}f}" if math.isfinite(value) else "-"


def format_report(rep: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lay, b, p, proj = rep["layout"], rep["build"], rep["per_clip"], rep["projection"]
    cpu = b["cpu_s"]
    counts = " / ".join(f"{rep['counts'][s]:,}" for s in ("train", "val", "test"))
    shard = lay["arrays"].get("hr_ntl", {})
    rows = [
        ("preset", f"{rep['preset']} ({rep['dataset']})"),
        ("layout", f"{lay['lr_clip']}² LR / {lay['hr_clip']}² HR of {lay['hr_pixel_m']:g} m, "
                   f"ratio {lay['ratio']}; hr_ntl shard {shard.get('shard')} of inner chunks "
                   f"{shard.get('chunk')}"),
        ("clips (train / val / test)", f"{counts} = {rep['clips']:,}; regions "
                                       f"{', '.join(rep['regions']) or '-'}"),
        ("cluster", f"LocalCluster, {rep['cluster']['workers']} worker processes x 1 thread, "
                    f"memory limit {rep['cluster']['memory_limit_bytes'] / 2**30:.2f} GiB each"),
        ("world synthesis", f"{_fmt(rep['synth_s'], 1)} s (0 when cached)"),
        ("build wall", f"{_fmt(b['wall_s'], 1)} s (stages: " + ", ".join(
            f"{k} {v:.1f}" for k, v in b["timings_s"].items()) + " s)"),
        ("build CPU", f"{_fmt(cpu['total'], 1)} s = workers {_fmt(cpu['workers'], 1)} + "
                      f"driver {_fmt(cpu['driver'], 1)} + scheduler host "
                      f"{_fmt(cpu['scheduler_host'], 1)}"),
        ("per clip", f"{_fmt(p['cpu_s'])} CPU-s, {_fmt(p['wall_s'])} wall-s, "
                     f"{_fmt(p['stored_bytes'] / 1e6)} MB stored in "
                     f"{_fmt(p['objects'], 1)} objects"),
        ("peak RSS per worker", ", ".join(
            f"{_fmt(max(w['peak_rss_mb'], w['max_sampled_rss_mb']), 0)} MB"
            + (" (restarted)" if w["restarted"] else "") for w in rep["workers"])
            + f" (goal <= {rep['rss_goal_mb']:,.0f} MB)"),
        ("store on disk", f"{_fmt(rep['store_size']['bytes'] / 1e6, 1)} MB in "
                          f"{rep['store_size']['files']:,} files"),
        ("validate", f"{'valid' if rep['validate']['valid'] else 'INVALID'} in "
                     f"{_fmt(rep['validate']['wall_s'], 1)} s"),
        (f"projection: {proj['clips']:,} clips of {proj['of_layout']}",
         f"{_fmt(proj['core_hours'], 1)} core-hours; "
         + ", ".join(f"{_fmt(proj[f'wall_hours_{n}_workers'])} h on {n} workers"
                     for n in PROJECTED_WORKERS)
         + f"; {_fmt(proj['stored_tb'], 3)} TB in {proj['objects']:,} objects"),
        ("machine", f"{rep['machine']['cpus']} CPUs, load average "
                    f"{rep['machine']['loadavg_start'][0]:.1f} -> "
                    f"{rep['machine']['loadavg_end'][0]:.1f}"),
    ]
    lines = ["| measurement | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the store (replaced), manifest.yaml and report.json/.md.")
@click.option("--preset", default=DEFAULT_PRESET, show_default=True,
              help="Manifest preset (paper-rehearsal, paper-counts, ...) or a manifest YAML.")
@click.option("--clips", type=int, default=None,
              help="Build this many clips (8:1:1) instead of the preset's counts.")
@click.option("--world", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="World folder the sources are read from [default: the preset's cached "
                   "synthetic world, made when absent].")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Manifest override, repeatable (e.g. --set grid.lr_clip=40).")
@click.option("--workers", default=2, show_default=True, type=int,
              help="Worker processes of the local dask cluster (one thread each).")
@click.option("--memory-limit", default="4GiB", show_default=True,
              help="Memory limit per worker.")
def main(out: Path, preset: str, clips: int | None, world: Path | None,
         settings: tuple[str, ...], workers: int, memory_limit: str) -> None:
    """Build a preset on a local dask cluster of worker processes, validate it, and report
    per-clip CPU, peak RSS per worker, store size and the projection to 22,540 clips."""
    try:
        if world is not None and not world.is_dir():
            raise ConfigError(f"--world {str(world)!r} is not a folder")
        rehearsal = Rehearsal(out=out, preset=preset, clips=clips, world=world,
                              settings=parse_settings(settings), workers=workers,
                              memory_limit=memory_limit)
        report = run_rehearsal(rehearsal)
    except RehearsalFailed as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except DeepLightError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    click.echo(format_report(report))
    click.echo(f"report: {out / 'report.json'}")


if __name__ == "__main__":
    main()
