"""``deeplightmd bench`` and ``deeplightmd methods``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import yaml

from benchmarks.protocol import BUDGETS
from deeplightmd import yamlio
from deeplightmd.errors import ConfigError

#: local metrics shown in the table printed at the end of a run (when reported)
SUMMARY_METRICS = ("psnr", "ssim", "psnr_log", "ssim_log", "rmse", "mae", "gmsd_log", "piqe",
                   "lrc_rmse")
#: regional metrics shown per region (when reported)
REGION_METRICS = ("psnr", "total_light_rel_error", "lit_iou", "admin_r2", "seam_ratio")


def parse_hparams(items: tuple[str, ...]) -> dict[str, Any]:
    """``("width=32", "lr=1e-3")`` → ``{"width": 32, "lr": 0.001}`` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hparam expects NAME=VALUE, got {item!r}")
        try:
            out[key.strip()] = yamlio.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--hparam {item!r}: the value is not valid YAML: "
                              f"{str(exc).splitlines()[0]}") from exc
    return out


def parse_seeds(text: str, ctx: click.Context, *, nproc: int, checkpoint: str | None,
                out: str | None) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` for ``bench --seeds``; ConfigError for a malformed list, fewer
    than 2 or repeated seeds, --seed given too, --nproc > 1, --checkpoint, or an --out without
    ``{seed}``."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers such as 0,1,2, got "
                          f"{text!r}") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs at least 2 distinct seeds, got {text!r}")
    if ctx.get_parameter_source("seed") is not click.core.ParameterSource.DEFAULT:
        raise ConfigError("give either --seed or --seeds, not both")
    if nproc > 1 or checkpoint is not None:
        raise ConfigError("--seeds trains each seed in this process: it cannot be combined "
                          "with --nproc or --checkpoint")
    if out is not None and "{seed}" not in out:
        raise ConfigError(f"with --seeds, --out must contain {{seed}} (one results file per "
                          f"seed), got {out!r}")
    return seeds


def command_args(command: click.Command, params: Mapping[str, Any],
                 drop: tuple[str, ...] = ()) -> list[str]:
    """Command-line arguments that reproduce the parsed ``params`` of ``command``.

    ``None`` values and unset flags are left out, as are the options named in ``drop``.
    """
    args: list[str] = []
    for param in command.params:
        value = params.get(param.name or "")
        if not isinstance(param, click.Option) or param.name in drop or value in (None, ()):
            continue
        if param.is_flag:
            args += [param.opts[0]] if value else []
            continue
        for item in (value if param.multiple else (value,)):
            args += [param.opts[0], str(item)]
    return args


def summary_table(results: Mapping[str, Any]) -> str:
    """A short text table of a results document (local means ± CI and per-region metrics)."""
    local = results["metrics"]["local"]
    lines = [f"{results['method']['name']} on {results['dataset']['name']} "
             f"({results['dataset']['fingerprint'][:12]}), {results['dataset']['n_clips']} test "
             f"clips, budget {results['protocol']['budget']}, seed {results['protocol']['seed']}"]
    lines.append(f"  {'metric':<22}{'mean':>12}{'95% CI':>26}")
    for name in [m for m in SUMMARY_METRICS if m in local] or sorted(local):
        est = local[name]
        if est["mean"] is None:
            continue
        ci = f"[{est['ci_low']:.4f}, {est['ci_high']:.4f}]"
        lines.append(f"  {name:<22}{est['mean']:>12.4f}{ci:>26}")
    for region, metrics in results["metrics"]["regional"].items():
        shown = [f"{k}={metrics[k]:.4f}" for k in REGION_METRICS if metrics.get(k) is not None]
        lines.append(f"  region {region}: " + ", ".join(shown))
    rt = results["runtime"]
    mpx = rt.get("megapixels_per_second")
    lines.append(f"  params {results['method']['params']:,}; inference "
                 f"{rt['inference_seconds']:.2f} s"
                 + (f" ({mpx:.2f} Mpx/s)" if mpx else "")
                 + f"; total {rt['total_seconds']:.1f} s on {results['hardware']['device']}")
    return "\n".join(lines)


#: ``--plugin PATH`` (repeatable): a user's own Python file registering methods
PLUGIN_OPTION = click.option(
    "--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
    help="A Python file of your own that registers methods (@register_method); repeatable.")


def load_plugins(paths: tuple[str, ...]) -> None:
    """Import every ``--plugin`` file (see :func:`benchmarks.registry.load_plugin`)."""
    from benchmarks.registry import load_plugin

    for path in paths:
        load_plugin(path)


@click.command()
@click.option("--method", "method_name", required=True, help="Registered method (see `methods`).")
@click.option("--store", default="demo/demo.zarr", show_default=True,
              help="Path or URL of a DeepLightMD store.")
@click.option("--budget", type=click.Choice(BUDGETS), default="small", show_default=True,
              help="Training budget (docs/protocol.md).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole run.")
@click.option("--seeds", "seed_list", default=None, metavar="S1,S2,...",
              help="Run these seeds one after another and add ONE leaderboard row for them (mean "
                   "± sd over seeds, bootstrap CI over seeds and clips; as `leaderboard "
                   "merge-seeds`); replaces --seed. --out must then contain {seed}.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Results JSON [default: results/<method>_<budget>_seed<seed>.json].")
@click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Evaluate these weights (.safetensors from an earlier run) without training.")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N.")
@click.option("--leaderboard", "board_file", type=click.Path(dir_okay=False),
              default="leaderboard.json", show_default=True,
              help="Leaderboard file the result row is added to.")
@click.option("--no-leaderboard", is_flag=True, help="Do not add the row to the leaderboard.")
@click.option("--hparam", "hparam_items", multiple=True, metavar="NAME=VALUE",
              help="Override a hyper-parameter (repeatable).")
@click.option("--tile", type=int, default=32, show_default=True,
              help="LR tile side for regional inference.")
@click.option("--overlap", type=int, default=8, show_default=True,
              help="LR overlap between regional tiles (blended).")
@click.option("--geotiff-dir", type=click.Path(file_okay=False), default=None,
              help="Also write each region's SR mosaic as a GeoTIFF here.")
@click.option("--thumbnails", "thumbnail_dir", type=click.Path(file_okay=False), default=None,
              help="Write PNG thumbnails of the first test clips and of each region mosaic here "
                   "(shown by `leaderboard render`).")
@click.option("--loader-workers", type=int, default=None,
              help="DataLoader worker processes for training [default: the budget's, small 0, "
                   "paper 4]; speed only, the crops and their order stay the same.")
@click.option("--max-test-clips", type=int, default=None,
              help="Evaluate only the first N test clips (quick checks).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Train this many steps instead of the budget's (quick checks; recorded in the "
                   "results' protocol, so such rows are not comparable with full-budget ones).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train with N DDP processes on this machine (gloo on CPU, nccl with one GPU "
                   "per process), the same global batch split over them; rank 0 evaluates and "
                   "writes. Under torchrun use `torchrun --nproc-per-node N -m benchmarks.train` "
                   "with the bench options instead. Ignored, with a note, for methods not "
                   "trained by the shared torch loop and with --checkpoint.")
@click.option("--checkpoint-every", "state_every", type=click.IntRange(min=1), default=None,
              help="Steps between resumable training states, written atomically to "
                   "<out>.train-state.pt and deleted when the run completes [default: the "
                   "protocol's val_every, small 100, paper 5000].")
@click.option("--resume", is_flag=True,
              help="Continue a killed run from its <out>.train-state.pt (same command and "
                   "options); starts from step 0 when there is none. Ends with the weights of an "
                   "uninterrupted run.")
@click.option("--verify", is_flag=True,
              help="Full integrity check of the store first (every chunk's CRC32C); by "
                   "default a fast check of its chunk objects against the build's manifest.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@PLUGIN_OPTION
@click.pass_context
def bench(ctx: click.Context, method_name: str, store: str, budget: str, seed: int,
          seed_list: str | None, out: str | None, checkpoint: str | None, device: str,
          board_file: str, no_leaderboard: bool, hparam_items: tuple[str, ...], tile: int,
          overlap: int, geotiff_dir: str | None, max_test_clips: int | None,
          loader_workers: int | None, thumbnail_dir: str | None, steps: int | None, nproc: int,
          state_every: int | None, resume: bool, verify: bool,
          quiet: bool, plugins: tuple[str, ...] = ()) -> None:
    """Train (or load) a method on a store, evaluate it on the test split and held-out regions.

    \b
    Examples:
      deeplightmd bench --method bicubic --store demo/demo.zarr
      deeplightmd bench --method edsr --budget small --seed 1 --device cuda
      deeplightmd bench --method edsr --checkpoint results/edsr_small_seed0.safetensors
      deeplightmd bench --method edsr --nproc 2            # 2 DDP processes, same weights
      deeplightmd bench --method edsr --resume             # continue a killed run
      deeplightmd bench --method edsr --seeds 0,1,2        # one row for three seeds
    """
    from benchmarks.distributed import SINGLE, context_from_env, launch_workers
    from benchmarks.leaderboard.board import add_to_file, row_from_results
    from benchmarks.registry import get_method
    from benchmarks.runner import RegionalSettings, run_benchmark
    from benchmarks.training import TrainSession, single_process_reason

    load_plugins(plugins)
    if seed_list is not None:
        seeds = parse_seeds(seed_list, ctx, nproc=nproc, checkpoint=checkpoint, out=out)
        template = out or f"results/{method_name}_{budget}_seed{{seed}}.json"
        for k in seeds:
            ctx.invoke(bench, **{**ctx.params, "seed": k, "seed_list": None,
                                 "out": template.format(seed=k), "no_leaderboard": True})
        if not no_leaderboard:
            from benchmarks.leaderboard.seeds import add_merged_row, merge_seed_results
            from benchmarks.results import read_results
            row = merge_seed_results([read_results(template.format(seed=k)) for k in seeds])
            report, _ = add_merged_row(board_file, row)
            click.echo(f"leaderboard {board_file}: {report.summary()} (one row for seeds "
                       f"{','.join(map(str, seeds))})")
        return
    out = out or f"results/{method_name}_{budget}_seed{seed}.json"
    dist = context_from_env()
    if dist.active and nproc > 1:
        raise ConfigError(f"--nproc {nproc} inside a group of {dist.world_size} processes "
                          "(torchrun); give the process count to one of them only")
    if nproc > 1 or dist.active:
        reason = single_process_reason(get_method(method_name), checkpoint is not None)
        if reason:
            if not dist.is_main:
                return
            click.echo(f"note: {reason}; training in one process")
            nproc, dist = 1, SINGLE
    if nproc > 1:
        ctx.exit(launch_workers(command_args(ctx.command, {**ctx.params, "out": out},
                                             drop=("nproc",)), nproc))
    results = run_benchmark(
        method_name, store, budget=budget, seed=seed, out=out, checkpoint=checkpoint,
        device=device, progress=not quiet, hparams=parse_hparams(hparam_items),
        regional=RegionalSettings(tile=tile, overlap=overlap,
                                  geotiff_dir=Path(geotiff_dir) if geotiff_dir else None),
        max_test_clips=max_test_clips, loader_workers=loader_workers, steps=steps,
        thumbnail_dir=thumbnail_dir, verify="full" if verify else "fast",
        session=TrainSession(dist=dist, state_every=state_every, resume=resume))
    if results is None:  # a rank other than 0: rank 0 reports
        return
    click.echo(summary_table(results))
    click.echo(f"results: {out}")
    if results.get("checkpoint") and results["checkpoint"]["trained_in_this_run"]:
        click.echo(f"checkpoint: {results['checkpoint']['path']}")
    if not no_leaderboard:
        report = add_to_file(board_file, [row_from_results(results)])
        click.echo(f"leaderboard {board_file}: {report.summary()}")


@click.command()
@click.option("--family", default=None, help="Only methods of this family.")
@click.option("--names", "names_only", is_flag=True, help="Only the names, one per line (scripts).")
@PLUGIN_OPTION
def methods(family: str | None, names_only: bool, plugins: tuple[str, ...] = ()) -> None:
    """List the registered methods: name, family, inputs and a one-line description."""
    from benchmarks.registry import METHODS

    load_plugins(plugins)
    rows = [(name, cls.family or "-", ",".join(cls.inputs), cls.description or "")
            for name, cls in METHODS.items() if family is None or cls.family == family]
    if names_only:
        click.echo("\n".join(r[0] for r in rows))
        return
    if not rows:
        click.echo("no method registered" + (f" in family {family!r}" if family else ""))
        return
    widths = [max(len(h), *(len(r[i]) for r in rows))
              for i, h in enumerate(("name", "family", "inputs"))]
    header = ("name", "family", "inputs")
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  description")
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
