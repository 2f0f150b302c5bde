"""``deeplightmd leaderboard add|validate|show|render|compare``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from benchmarks.leaderboard.board import (
    DEFAULT_FILE,
    add_to_file,
    load_board,
    read_rows,
    upgrade_board,
    validate_board,
)
from benchmarks.leaderboard.compare import compare_results
from benchmarks.leaderboard.render import (
    REGION_PREFIX,
    format_html,
    format_markdown,
    format_text,
    group_rows,
)
from benchmarks.leaderboard.seeds import add_merged_row, merge_seed_results
from benchmarks.leaderboard.site import render_site
from benchmarks.leaderboard.tiers import with_tiers
from benchmarks.metrics.config import METRICS
from benchmarks.results import (
    METRIC_RANGES,
    read_json,
    read_results,
    validate_results,
    write_json,
)
from deeplightmd.atomic import write_text
from deeplightmd.errors import ConfigError

RANK_BY_HELP = ("Metric to rank by: a local metric (psnr, ssim, …: test-clip mean) or "
                "region_<metric> (mean over held-out regions, e.g. region_psnr, "
                "region_total_light_rel_error); unknown names are refused.")


def board_file_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--file``/``--leaderboard`` on a sub-command too (``leaderboard render --file b.json``),
    overriding the group's option; ``--leaderboard`` is the name ``bench`` uses."""

    @click.option("--file", "--leaderboard", "sub_file", type=click.Path(dir_okay=False),
                  default=None, help="Leaderboard JSON file (as before the sub-command).")
    @functools.wraps(command)
    def wrapper(*args: Any, sub_file: str | None = None, **kwargs: Any) -> Any:
        if sub_file is not None:
            click.get_current_context().ensure_object(dict)["file"] = sub_file
        return command(*args, **kwargs)

    return wrapper


@click.group()
@click.option("--file", "--leaderboard", "board_file", type=click.Path(dir_okay=False),
              default=DEFAULT_FILE, envvar="DEEPLIGHT_LEADERBOARD", show_default=True,
              help="Leaderboard JSON file (env DEEPLIGHT_LEADERBOARD); also accepted after the "
                   "sub-command.")
@click.pass_context
def leaderboard(ctx: click.Context, board_file: str) -> None:
    """Keep and show the leaderboard: reproduced results and paper-reported claims.

    \b
    Examples:
      deeplightmd leaderboard add results.json
      deeplightmd leaderboard add benchmarks/reported/deeplight_paper.yaml
      deeplightmd leaderboard show
      deeplightmd leaderboard render --out site/ --file board.json
      deeplightmd leaderboard compare a.json b.json
    """
    ctx.obj = {"file": board_file}


def known_metrics(rows: list[dict]) -> set[str]:
    """Ranking metrics: the catalogued metrics and those some row reports, each local and as
    ``region_<metric>`` (mean over held-out regions)."""
    local = set(METRICS) | set(METRIC_RANGES) | {m for r in rows for m in r.get("metrics", {})}
    regional = local | {m for r in rows for reg in (r.get("regional") or {}).values()
                        for m in reg or {}}
    return local | {REGION_PREFIX + m for m in regional}


def check_metric(metric: str, rows: list[dict]) -> str:
    """``metric`` when it is a documented metric or one some row reports (local, or
    ``region_<metric>``), else ConfigError naming the known ones."""
    known = known_metrics(rows)
    if metric not in known:
        raise ConfigError(f"unknown metric {metric!r}; expected one of {', '.join(sorted(known))}")
    return metric


@leaderboard.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True,
              help="Replace rows that have the key of an existing row but other values "
                   "(otherwise refused).")
@board_file_option
@click.pass_obj
def add(obj: dict, sources: tuple[str, ...], replace: bool) -> None:
    """Add rows from results JSON or reported-row JSON/YAML files.

    Every bench run has its own run id, so a repeated run adds a row. A row identical to one on
    the board is left as is; a row with an existing key but other values needs --replace.
    """
    rows = [row for src in sources for row in read_rows(src)]
    report = add_to_file(obj["file"], rows, replace=replace)
    click.echo(f"{obj['file']}: {report.summary()}")


@leaderboard.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@board_file_option
@click.pass_obj
def validate(obj: dict, files: tuple[str, ...]) -> None:
    """Validate leaderboard, results or row files (default: the leaderboard file)."""
    for path in files or (obj["file"],):
        doc = read_json(path) if not path.endswith((".yaml", ".yml")) else None
        if isinstance(doc, dict) and "schema_version" in doc and "rows" in doc:
            board = upgrade_board(doc)
            validate_board(board, what=path)
            kind = f"leaderboard with {len(doc['rows'])} row(s)" + (
                f" (version {doc['schema_version']}, upgraded when next written)"
                if board is not doc else "")
        elif isinstance(doc, dict) and "per_clip" in doc:
            validate_results(doc, what=path)
            kind = "results"
        else:
            kind = f"{len(read_rows(path))} row(s)"
        click.echo(f"{path}: valid {kind}")


@leaderboard.command()
@click.option("--rank-by", "--metric", "metric", default="psnr", show_default=True,
              help=RANK_BY_HELP)
@board_file_option
@click.pass_obj
def show(obj: dict, metric: str) -> None:
    """Print ranked tables, one per dataset fingerprint (reported rows separately): local metrics
    with 95 % CIs, regional means over held-out regions, and flags for regions whose total light
    is off by more than 25 %."""
    board = load_board(obj["file"], missing_ok=False)
    metric = check_metric(metric, board["rows"])
    click.echo(format_text([with_tiers(g, metric) for g in group_rows(board["rows"])], metric))


@leaderboard.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="leaderboard",
              show_default=True, help="Site folder: index.html with figures and thumbnails, "
                                      "plus leaderboard.md and leaderboard.html.")
@click.option("--rank-by", "--metric", "metric", default="psnr", show_default=True,
              help=RANK_BY_HELP)
@click.option("--x", "x_axis", type=click.Choice(["runtime", "params"]), default="runtime",
              show_default=True, help="Plot's x axis: throughput (Mpx/s) or parameter count.")
@board_file_option
@click.pass_obj
def render(obj: dict, out_dir: str, metric: str, x_axis: str) -> None:
    """Write the static site (index.html: ranking with CIs, figures with error bars, example
    SR crops and mosaics, reported vs reproduced, provenance), Markdown and a one-page HTML."""
    rows = load_board(obj["file"], missing_ok=False)["rows"]
    metric = check_metric(metric, rows)
    groups = [with_tiers(g, metric) for g in group_rows(rows)]
    out = Path(out_dir)
    written = render_site(rows, out, metric, bases=(Path.cwd(), Path(obj["file"]).parent))
    write_text(out / "leaderboard.md", format_markdown(groups, metric))
    write_text(out / "leaderboard.html", format_html(groups, metric, x_axis))
    click.echo(f"wrote {written[-1]} ({len(written) - 1} figure(s)), {out / 'leaderboard.md'} "
               f"and {out / 'leaderboard.html'}")


@leaderboard.command("merge-seeds")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "row_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the merged row to this JSON file.")
@board_file_option
@click.pass_obj
def merge_seeds(obj: dict, results: tuple[str, ...], row_out: str | None) -> None:
    """Merge the results JSONs of several seeds of one run into one leaderboard row.

    The row keeps each seed's run, shows the mean and sd over seeds and a CI from a bootstrap
    over seeds and clips (one shared draw of clips when the seeds share their clips); the
    per-seed rows of these runs leave the board.
    """
    row = merge_seed_results([read_results(path) for path in results])
    if row_out is not None:
        write_json(row, row_out)
    report, removed = add_merged_row(obj["file"], row)
    click.echo(f"{obj['file']}: {report.summary()}, {removed} per-seed row(s) merged away "
               f"({row['method']}, seeds {','.join(map(str, row['protocol']['seeds']))})")


@leaderboard.command()
@click.argument("results_a", type=click.Path(dir_okay=False))
@click.argument("results_b", type=click.Path(dir_okay=False))
@click.option("--metric", default="psnr", show_default=True, help="Per-clip metric to test.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="Significance level.")
def compare(results_a: str, results_b: str, metric: str, alpha: float) -> None:
    """Paired Wilcoxon test of per-clip values of two results JSONs on the same dataset."""
    comparison = compare_results(read_results(results_a), read_results(results_b), metric, alpha)
    click.echo(comparison.summary())
