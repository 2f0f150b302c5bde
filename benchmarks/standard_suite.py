"""The `standard` benchmark suite (``make bench-standard``): three tracks, several seeds, one
summary with mean ± sd over seeds, paired tests and wall times.

Tracks (docs/protocol.md "The standard suite"):

* ``standard`` — every method trained (seeds ``--seeds``) and tested on the ``standard`` store:
  train/val from `standard` worlds 0–7, test clips and held-out regions from unseen worlds 8–9;
* ``generalization`` — the ``standard``-trained checkpoints evaluated on the ``generalization``
  store, whose test worlds come from the ``shifted`` family (``bench --checkpoint``);
* ``real`` — the same checkpoints evaluated on the ``real-viirs`` store (sim2real: real VIIRS at
  500 m, LR its exact 8 × 8 mean). Non-learned methods run there as they are.

Every run is one ``deeplightmd bench`` process (its own results JSON under ``OUT/<track>/``);
a results file that already validates is kept, so an interrupted suite resumes where it stopped.
Per track and method the seeds become one leaderboard row (``leaderboard merge-seeds``) in
``OUT/leaderboard.json``; ``OUT/summary.md`` / ``summary.json`` hold the tables.

Run: ``python -m benchmarks.standard_suite --out out/bench-standard`` (``--help`` for options).
"""

from __future__ import annotations

import itertools
import json
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from benchmarks.leaderboard.tiers import holm_pair_p_values, tiers_from_pairs
from benchmarks.results import read_results
from deeplightmd.atomic import write_text
from deeplightmd.errors import DeepLightError

METHODS = ("bicubic", "downscale-gbrt", "edsr", "fusion-edsr", "djf", "deeplightsr")
#: track → the store preset it is evaluated on
TRACKS = {"standard": "standard", "generalization": "generalization", "real": "real-viirs"}
#: the metrics of the summary tables: local test-clip means and held-out-region means
LOCAL = ("psnr", "ssim")
REGIONAL = ("psnr", "total_light_rel_error")


@dataclass
class Suite:
    """Where the suite writes and what it runs."""

    out: Path
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    tracks: tuple[str, ...] = tuple(TRACKS)
    device: str = "auto"
    workers: int = 2
    steps: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def store(self, track: str) -> Path:
        return self.out / f"{TRACKS[track]}.zarr"

    def results(self, track: str, method: str, seed: int) -> Path:
        return self.out / track / f"{method}_seed{seed}.json"

    def checkpoint(self, method: str, seed: int) -> Path:
        return self.results("standard", method, seed).with_suffix(".safetensors")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "deeplightmd.cli", *args]


def _run(argv: Sequence[str], what: str) -> float:
    """Run one command (its output passes through); seconds taken. Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), check=False)
    if proc.returncode != 0:
        raise DeepLightError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}")
    return time.perf_counter() - start


def _valid(path: Path) -> bool:
    try:
        read_results(path)
    except (DeepLightError, OSError, ValueError):
        return False
    return True


def build_stores(suite: Suite) -> None:
    """Build (or keep, when complete) the store of every track."""
    from deeplightmd.builder.store import store_state

    for track in suite.tracks:
        store = suite.store(track)
        if store_state(str(store)) == "complete":
            click.echo(f"[build] {store.name}: complete, kept")
            continue
        argv = ["build", "--preset", TRACKS[track], "--out", str(store), "--workers",
                str(suite.workers), "--overwrite", "--quiet"]
        if track != "real":
            argv += ["--worlds-dir", str(suite.out / "worlds"), "--scheduler", "processes"]
        seconds = _run(_cli(*argv), f"build {TRACKS[track]}")
        suite.seconds[f"build {TRACKS[track]}"] = round(seconds, 1)
        click.echo(f"[build] {store.name}: {seconds:.0f} s")
        _run(_cli("validate", str(store)), f"validate {store.name}")


def run_track(suite: Suite, track: str) -> None:
    """Every method × seed of one track (kept results are not run again)."""
    total = 0.0
    for method, seed in itertools.product(suite.methods, suite.seeds):
        out = suite.results(track, method, seed)
        if _valid(out):
            continue
        argv = ["bench", "--method", method, "--store", str(suite.store(track)), "--seed",
                str(seed), "--out", str(out), "--device", suite.device, "--no-leaderboard",
                "--quiet"]
        if suite.steps is not None and track == "standard":
            argv += ["--steps", str(suite.steps)]
        if track != "standard":
            checkpoint = suite.checkpoint(method, seed)
            if checkpoint.is_file():
                argv += ["--checkpoint", str(checkpoint)]
            elif _trainable(method):
                raise DeepLightError(f"{track}: no standard checkpoint {checkpoint}; run the "
                                     "standard track first")
        seconds = _run(_cli(*argv), f"{track} {method} seed {seed}")
        total += seconds
        psnr = read_results(out)["metrics"]["local"]["psnr"]["mean"]
        click.echo(f"[{track}] {method} seed {seed}: {seconds:.0f} s, psnr {psnr:.3f} dB")
    suite.seconds[f"track {track}"] = round(suite.seconds.get(f"track {track}", 0.0) + total, 1)


def _trainable(method: str) -> bool:
    from benchmarks.registry import get_method

    return bool(get_method(method).trainable)


def merge_rows(suite: Suite, board: Path) -> None:
    """One leaderboard row per track and method (its seeds merged)."""
    for track, method in itertools.product(suite.tracks, suite.methods):
        files = [str(suite.results(track, method, s)) for s in suite.seeds]
        if len(files) >= 2:
            _run(_cli("leaderboard", "--file", str(board), "merge-seeds", *files),
                 f"merge-seeds {track} {method}")
        else:
            _run(_cli("leaderboard", "--file", str(board), "add", *files), f"add {track}")


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def track_summary(docs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per method of one track: local and regional means ± sd over seeds, and the Holm-adjusted
    paired Wilcoxon p of its per-clip PSNR (averaged over seeds) against the best method."""
    rows = []
    for method, runs in docs.items():
        row: dict[str, Any] = {"method": method, "seeds": [d["protocol"]["seed"] for d in runs]}
        for m in LOCAL:
            row[m] = _mean_sd([d["metrics"]["local"][m]["mean"] for d in runs])
        for m in REGIONAL:
            row[f"region_{m}"] = _mean_sd([
                np.nanmean([r.get(m) if r.get(m) is not None else np.nan
                            for r in d["metrics"]["regional"].values()])
                for d in runs if d["metrics"]["regional"]])
        row["train_seconds"] = _mean_sd([d["runtime"].get("train_seconds") for d in runs])
        row["clips"] = _mean_per_clip(runs, "psnr")
        rows.append(row)
    rows.sort(key=lambda r: -r["psnr"][0])
    adjusted = holm_pair_p_values([r["clips"] for r in rows])
    tiers = tiers_from_pairs(len(rows), adjusted, range(len(rows)))
    for i, row in enumerate(rows):
        row["p_vs_best"] = None if i == 0 else float(adjusted[(0, i)])
        row["tier"] = tiers[i]
        del row["clips"]
    return rows


def _mean_per_clip(runs: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
    """``{clip_id: mean over the runs}`` of the finite per-clip values of ``metric``, for the
    clips every run has a value for (a two-sided paired test needs no badness sign)."""
    out: dict[int, list[float]] = {}
    for d in runs:
        if metric not in d["per_clip"]:
            continue
        for c, v in zip(d["per_clip"]["clip_id"], d["per_clip"][metric], strict=True):
            if v is not None and np.isfinite(v):
                out.setdefault(int(c), []).append(float(v))
    return {c: float(np.mean(v)) for c, v in out.items() if len(v) == len(runs)}


def _fmt(pair: tuple[float, float], digits: int = 2, pct: bool = False) -> str:
    mean, sd = pair
    if not np.isfinite(mean):
        return "–"
    if pct:
        return f"{100 * mean:+.1f} ± {100 * sd:.1f} %"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _seconds(value: float) -> str:
    """Whole seconds, or ``–`` for a method that records no training time."""
    return f"{value:.0f}" if np.isfinite(value) else "–"


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The README tables of :func:`summarize`'s output."""
    lines = [f"Machine: {summary['machine']}; seeds {summary['seeds']}; budget `small`; "
             f"wall time {summary['wall_minutes']:.0f} min in all "
             f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in summary['seconds'].items())}).", ""]
    for track, rows in summary["tracks"].items():
        lines += [f"**{track}** ({summary['stores'][track]}; {rows[0]['n_clips']} test clips, "
                  f"{rows[0]['n_regions']} held-out regions)" if rows else f"**{track}**", "",
                  "| tier | method | PSNR dB | SSIM | p vs best (Holm) | region PSNR dB | "
                  "region total light | train s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            p = "–" if r["p_vs_best"] is None else f"{r['p_vs_best']:.2g}"
            lines.append(f"| {r['tier']} | {r['method']} | {_fmt(r['psnr'])} | "
                         f"{_fmt(r['ssim'], 3)} | {p} | {_fmt(r['region_psnr'])} | "
                         f"{_fmt(r['region_total_light_rel_error'], pct=True)} | "
                         f"{_seconds(r['train_seconds'][0])} |")
        lines.append("")
    lines.append("Mean ± sd over seeds (per seed: the mean over test clips, or over held-out "
                 "regions). p: two-sided paired Wilcoxon signed-rank test of per-clip PSNR "
                 "(each clip's mean over seeds) against the best row, Holm-adjusted over all "
                 "pairs; rows whose p ≥ 0.05 against a tier's first row share its tier.")
    return "\n".join(lines) + "\n"


def summarize(suite: Suite, started: float) -> dict[str, Any]:
    """``summary.json`` and ``summary.md`` of every finished track."""
    tracks: dict[str, list[dict[str, Any]]] = {}
    stores: dict[str, str] = {}
    for track in suite.tracks:
        docs = {m: [read_results(suite.results(track, m, s)) for s in suite.seeds]
                for m in suite.methods if all(suite.results(track, m, s).is_file()
                                              for s in suite.seeds)}
        if not docs:
            continue
        rows = track_summary(docs)
        first = next(iter(docs.values()))[0]
        for r in rows:
            r["n_clips"] = first["dataset"]["n_clips"]
            r["n_regions"] = len(first["dataset"]["regions"])
        tracks[track] = rows
        stores[track] = f"`{first['dataset']['name']}`, fingerprint " \
                        f"{first['dataset']['fingerprint'][:12]}"
    hw = read_results(suite.results(suite.tracks[0], suite.methods[0], suite.seeds[0])
                      )["hardware"] if tracks else {}
    summary = {"machine": f"{hw.get('cpu') or platform.processor() or platform.machine()}, "
                          f"{hw.get('threads', '?')} threads, device {hw.get('device', '?')}",
               "seeds": list(suite.seeds), "seconds": suite.seconds,
               "wall_minutes": (time.perf_counter() - started) / 60, "stores": stores,
               "tracks": tracks}
    write_text(suite.out / "summary.json", json.dumps(summary, indent=1, default=str))
    write_text(suite.out / "summary.md", summary_markdown(summary))
    return summary


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out/bench-standard"), show_default=True,
              help="Folder of the stores, worlds, results, leaderboard and summary.")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help="Comma-separated registered methods.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--tracks", default=",".join(TRACKS), show_default=True,
              help="Comma-separated tracks: standard, generalization, real (the last two "
                   "evaluate the standard track's checkpoints).")
@click.option("--device", default="auto", show_default=True, help="Device of every bench run.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Build workers.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps instead of the budget's (quick checks; recorded in results).")
def main(out: Path, methods: str, seeds: str, tracks: str, device: str, workers: int,
         steps: int | None) -> None:
    """Build the standard, generalization and real-viirs stores, run every method × seed on
    them and write OUT/summary.md (mean ± sd over seeds, paired tests, wall times)."""
    try:
        track_list = tuple(t.strip() for t in tracks.split(",") if t.strip())
        unknown = sorted(set(track_list) - set(TRACKS))
        if unknown:
            raise click.BadParameter(f"unknown track(s) {unknown}; expected {list(TRACKS)}",
                                     param_hint="--tracks")
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError as exc:
        raise click.BadParameter(f"seeds must be integers: {exc}", param_hint="--seeds") \
            from exc
    if track_list and track_list[0] != "standard" and "standard" not in track_list:
        click.echo("note: the generalization and real tracks evaluate the standard track's "
                   "checkpoints, which must already be in --out")
    suite = Suite(out=out, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
                  seeds=seed_list, tracks=track_list, device=device, workers=workers,
                  steps=steps)
    started = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
        build_stores(suite)
        for track in suite.tracks:
            run_track(suite, track)
        merge_rows(suite, out / "leaderboard.json")
        summary = summarize(suite, started)
    except DeepLightError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    click.echo((out / "summary.md").read_text())
    click.echo(f"suite: {summary['wall_minutes']:.1f} min; results under {out}")


if __name__ == "__main__":
    main()
