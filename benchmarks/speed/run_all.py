"""The whole speed/memory suite in one run (``make bench-speed``): a JSON report and a table.

Every figure is an absolute number plus a ratio to a reference measured in the same run, on the
machine described at the top of the report (CPU model, cores, torch threads, device, load):

* build — ``build_store`` with 1 and 2 workers (subprocesses), HR Mpx/s and MB/s; references:
  the Zarr-write floor (same arrays from memory, same codec), the build's reads alone (no
  write) and naive per-clip ``reproject``;
* loader — ``DeepLightDataset`` through a DataLoader, samples/s; reference: raw zarr chunk reads
  of the same clips;
* inference — ``predict`` HR Mpx/s per method; reference: bicubic;
* regional — tiled + blended inference over a region mosaic; reference: the same mosaic as one
  tile;
* memory — peak RSS of the build and of ``deeplightmd predict`` on two region sizes; reference:
  the smaller region.

Usage::

    python -m benchmarks.speed.run_all --quick --out-dir out/speed     # tiny preset, ~minutes
    python -m benchmarks.speed.run_all --out-dir out/speed             # demo preset
    python -m benchmarks.speed.run_all --quick --build-presets demo,large  # + builds vs bound
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.results import cpu_model
from benchmarks.speed import build_speed, inference_speed, loader_speed, memory
from deeplightmd.atomic import write_text
from deeplightmd.builder import load_manifest
from deeplightmd.builder.manifest import ensure_world


@dataclass(frozen=True)
class SuiteConfig:
    """Sizes of one run of the suite (``quick`` keeps it to a few minutes on 2 cores)."""

    preset: str
    naive_sample: int
    loader_workers: tuple[int, ...]
    loader_epochs: int
    loader_rounds: int
    batch_size: int
    repeats: int
    region_sides: tuple[int, int]

    @classmethod
    def for_mode(cls, quick: bool) -> SuiteConfig:
        """The quick (tiny preset) or full (demo preset) configuration."""
        if quick:
            return cls("tiny", 8, (0, 1), 1, 1, 4, 2, (128, 512))
        return cls("demo", 24, (0, 1, 2), 2, 3, 8, 3, (256, 1024))


def describe_machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(), "platform": platform.platform(),
        "load_avg_1min_start": os.getloadavg()[0],
    }


#: 2-worker builds of ``--build-presets`` use worker processes (the issue-15 target)
BOUND_SCHEDULERS = ["processes"]
#: clips of the naive per-clip reference in a ``--build-presets`` measurement
BOUND_NAIVE_SAMPLE = 4


def run_suite(out_dir: Path, quick: bool, world: Path | None = None,
              device: str | None = None, build_presets: tuple[str, ...] = ()
              ) -> dict[str, Any]:
    """Run every part; write ``speed.json`` and ``speed.md`` into ``out_dir``; the report.

    ``build_presets``: also build each of these presets with 1 worker and 2 worker processes
    next to its bound (:func:`benchmarks.speed.build_speed.measure_preset`), e.g. demo and large.
    """
    cfg = SuiteConfig.for_mode(quick)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    report: dict[str, Any] = {"started": _dt.datetime.now(_dt.UTC).isoformat(
        timespec="seconds"), "mode": "quick" if quick else "full", "config": asdict(cfg),
        "machine": describe_machine(dev)}
    manifest = load_manifest(cfg.preset, world_dir=world)
    ensure_world(manifest)
    with tempfile.TemporaryDirectory(prefix="deeplight-speed-") as tmp_dir:
        tmp = Path(tmp_dir)
        store = str(tmp / "w1.zarr")
        builds = [build_speed.timed_build(cfg.preset, manifest.base_dir, str(tmp / f"w{w}.zarr"),
                                          w) for w in (1, 2)]
        floor = build_speed.floor_write(store, tmp)
        naive = build_speed.naive_reproject(cfg.preset, manifest.base_dir, store,
                                            cfg.naive_sample)
        warp = build_speed.timed_warp_only(cfg.preset, manifest.base_dir, store)["warm"]
        report["build"] = {"preset": cfg.preset, "runs": builds, "floor": floor, "naive": naive,
                           "warp_only": warp}
        report["loader"] = loader_speed.run(store, "train", list(cfg.loader_workers),
                                            cfg.batch_size, cfg.loader_epochs, cfg.repeats,
                                            str(dev), cfg.loader_rounds)
        methods = inference_speed.available_methods()
        report["inference"] = inference_speed.method_rates(store, methods, dev, cfg.batch_size,
                                                           cfg.repeats)
        report["regional"] = [inference_speed.regional_overhead(store, m, dev,
                                                                repeats=cfg.repeats)
                              for m in ("bicubic", "edsr") if m in methods]
        report["memory"] = memory.predict_memory(store, cfg.region_sides)
    report["build_bound"] = [
        build_speed.measure_preset(p, world if p == cfg.preset else None, BOUND_SCHEDULERS,
                                   BOUND_NAIVE_SAMPLE, rss_fraction=0)
        for p in build_presets]
    report["machine"]["load_avg_1min_end"] = os.getloadavg()[0]
    write_text(out_dir / "speed.json", json.dumps(report, indent=2))
    write_text(out_dir / "speed.md", format_markdown(report))
    return report


def format_markdown(r: dict[str, Any]) -> str:
    """The report as Markdown: machine line, then one table with value, reference and ratio."""
    m = r["machine"]
    b = r["build"]
    w1, w2 = b["runs"]
    floor, naive, warp = b["floor"], b["naive"], b["warp_only"]
    raw = r["loader"]["raw_zarr"]["samples_per_s"]
    rows = [
        ("build, 1 worker", f"{w1['hr_mpx_per_s']:.3f} HR Mpx/s, {w1['mb_per_s']:.2f} MB/s "
         f"({w1['seconds']:.1f} s, {w1['clips']} clips)", f"floor {floor['mb_per_s']:.1f} MB/s",
         f"{w1['mb_per_s'] / floor['mb_per_s']:.3f}"),
        ("build reads alone (warp only, no write), CPU", f"{warp['cpu_s']:.1f} CPU s",
         f"floor {floor['cpu_s']:.1f} CPU s",
         f"{warp['cpu_s'] / floor['cpu_s']:.1f}x; one-core bound "
         f"{floor['cpu_s'] / (floor['cpu_s'] + warp['cpu_s']):.3f} of the floor"),
        ("build, 1 worker vs its bound (floor + warm warp only), CPU",
         f"{w1['cpu_s']:.1f} CPU s", f"{floor['cpu_s'] + warp['cpu_s']:.1f} CPU s",
         f"{(floor['cpu_s'] + warp['cpu_s']) / w1['cpu_s']:.3f} (target >= 0.8)"),
        ("build, 1 worker vs naive", f"{w1['hr_mpx_per_s']:.3f} HR Mpx/s",
         f"naive reproject {naive['hr_mpx_per_s']:.3f} HR Mpx/s",
         f"{w1['hr_mpx_per_s'] / naive['hr_mpx_per_s']:.2f}"),
        ("build clip stage, 1 worker vs naive", f"{w1['clip_stage_hr_mpx_per_s']:.3f} HR Mpx/s",
         f"naive reproject {naive['hr_mpx_per_s']:.3f} HR Mpx/s",
         f"{w1['clip_stage_hr_mpx_per_s'] / naive['hr_mpx_per_s']:.2f}"),
        ("build, 2 workers", f"{w2['hr_mpx_per_s']:.3f} HR Mpx/s ({w2['seconds']:.1f} s)",
         f"1 worker {w1['seconds']:.1f} s", f"{w1['seconds'] / w2['seconds']:.2f}x speed-up"),
        ("build peak RSS", f"{w1['peak_rss_mb']:.0f} MB (1 w), {w2['peak_rss_mb']:.0f} MB (2 w)",
         f"store {w1['store_mb']:.1f} MB", f"{w2['peak_rss_mb'] / w1['peak_rss_mb']:.2f}"),
    ]
    for ld in r["loader"]["dataloader"]:
        rows.append((f"loader, {ld['workers']} workers", f"{ld['steady_samples_per_s']:.1f} "
                     "samples/s", f"raw zarr {raw:.1f} samples/s", f"{ld['ratio_to_raw']:.2f}"))
    base = next((x for x in r["inference"] if x["method"] == "bicubic"), None)
    for x in r["inference"]:
        rows.append((f"inference {x['method']} (batch {x['batch']}x{x['hr_side']}², "
                     f"{x['params']:,} params)", f"{x['hr_mpx_per_s']:.3f} HR Mpx/s",
                     f"bicubic {base['hr_mpx_per_s']:.2f} HR Mpx/s" if base else "-",
                     f"{x['ratio_to_bicubic']:.4f}" if x["ratio_to_bicubic"] else "-"))
    for g in r["regional"]:
        t, u = g["tiled"], g["untiled"]
        rows.append((f"regional {g['method']} {g['region']} ({g['lr_shape'][0]}x"
                     f"{g['lr_shape'][1]} LR), {t['tiles']} tiles of {t['tile']}/{t['overlap']}",
                     f"{t['seconds']:.3f} s", f"untiled {u['seconds']:.3f} s",
                     f"{g['tiled_over_untiled_time']:.2f}"))
    mem = r["memory"]
    small, large = mem["runs"]
    rows.append((f"predict peak RSS ({mem['method']}, tile {mem['tile']})",
                 f"{large['peak_rss_mb']:.0f} MB at {large['sr_mpx']:.1f} SR Mpx",
                 f"{small['peak_rss_mb']:.0f} MB at {small['sr_mpx']:.2f} SR Mpx "
                 f"({mem['pixel_ratio']:.0f}x fewer px)", f"{mem['rss_ratio']:.2f}"))
    for pb in r.get("build_bound", []):
        rows += bound_rows(pb)
    head = (f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} with "
            f"{m['torch_threads']} threads, device {m['device']}"
            f"{' (' + m['gpu'] + ')' if m['gpu'] else ''}; 1-min load average "
            f"{m['load_avg_1min_start']:.1f} → {m['load_avg_1min_end']:.1f}; mode {r['mode']} "
            f"(preset {b['preset']}).")
    lines = [head, "", "| measurement | value | reference (same run) | ratio |",
             "|---|---|---|---:|"]
    lines += [f"| {a} | {v} | {ref} | {ratio} |" for a, v, ref, ratio in rows]
    return "\n".join(lines) + "\n"


def bound_rows(pb: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Table rows of one ``--build-presets`` measurement: the 1-worker build against its bound
    (issue 15: >= 0.8) and the 2-process speed-up (>= 1.6 on large), each with its load."""
    b1, b2 = pb["builds"][0], pb["builds"][-1]
    floor, warm, cold = pb["floor"], pb["warp_only"]["warm"], pb["warp_only"]["cold"]
    q = pb["ratios"]

    def load(b: dict[str, Any]) -> str:
        start, end = b.get("load_1min") or (None, None)
        return f"load {start:.1f} → {end:.1f}" if start is not None else "load ?"

    preset = pb["preset"]
    return [
        (f"build {preset}, 1 worker vs its bound (floor + warm warp only)",
         f"{b1['cpu_s']:.1f} CPU s, {b1['seconds']:.1f} s ({b1['clips']} clips; {load(b1)})",
         f"{floor['cpu_s'] + warm['cpu_s']:.1f} CPU s = floor {floor['cpu_s']:.1f} + warm warp "
         f"{warm['cpu_s']:.1f} (cold {cold['cpu_s']:.1f})",
         f"{q['build_w1_over_bound_cpu']:.3f} CPU, {q['build_w1_over_bound_wall']:.3f} wall "
         f"(target >= 0.8); {q['build_w1_over_cold_bound_cpu']:.3f} with the cold warp"),
        (f"build {preset}, {b2['workers']} worker {b2['scheduler']}",
         f"{b2['seconds']:.1f} s, {b2['cpu_s_per_clip']:.3f} CPU s/clip, CPU efficiency "
         f"{b2['cpu_efficiency']:.2f} ({load(b2)})",
         f"1 worker {b1['seconds']:.1f} s, {b1['cpu_s_per_clip']:.3f} CPU s/clip",
         f"{b1['seconds'] / b2['seconds']:.2f}x speed-up (target >= 1.6 on large); same "
         f"fingerprint: {b2['fingerprint'] == b1['fingerprint']}"),
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point: run, write, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny preset, fewer repeats")
    parser.add_argument("--out-dir", type=Path, default=Path("out/speed"))
    parser.add_argument("--world", type=Path, help="synthetic world dir (default: cache)")
    parser.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--build-presets", default="",
                        help="comma-separated presets (e.g. demo,large) also built with 1 worker "
                             "and 2 worker processes against their bound (issue 15)")
    args = parser.parse_args(argv)
    presets = tuple(p for p in args.build_presets.split(",") if p)
    report = run_suite(args.out_dir, args.quick, args.world, args.device, presets)
    print(format_markdown(report))
    print(f"wrote {args.out_dir / 'speed.json'} and {args.out_dir / 'speed.md'}")
    return report


if __name__ == "__main__":
    main()
