"""Ranked tables of a leaderboard (text, Markdown, self-contained HTML with an embedded plot).

Rows are grouped by dataset fingerprint and never ranked across groups; paper-reported rows form
their own groups (one per dataset name), shown after the reproduced ones.

A ranking metric is a local metric (``psnr``: the test-clip mean) or ``region_<metric>``: the
mean over a row's held-out regions of a regional metric (``region_psnr``,
``region_total_light_rel_error``, ``region_lit_iou``, ``region_admin_r2``, …). Reproduced tables
always show the regional columns of :data:`REGION_COLUMNS` and a ``flags`` column that names every
region whose total light is off by more than :data:`TOTAL_LIGHT_TOLERANCE`.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.metrics.config import METRICS

#: extra columns shown when some row of a group has them
DISPLAY_METRICS = ("psnr", "ssim", "psnr_log", "rmse", "gmsd_log", "piqe")
#: regional metrics shown (mean over held-out regions) beside the local ones in every ranking
REGION_COLUMNS = ("psnr", "total_light_rel_error", "lit_iou", "admin_r2")
#: prefix of a ranking metric that is the mean over regions of a regional metric
REGION_PREFIX = "region_"
#: |total-light error| above which a region's light sum is flagged (0.25 = off by more than 25 %)
TOTAL_LIGHT_TOLERANCE = 0.25
LEGEND = ("tier: rows that paired Wilcoxon tests on per-clip values (Holm over all pairs, "
          "alpha 0.05) cannot separate from the tier's first row are tied; "
          f"{REGION_PREFIX}<metric>: mean over the held-out regions; flags: regions whose total "
          f"light is off by more than {100 * TOTAL_LIGHT_TOLERANCE:.0f} % (|total-light error| "
          f"> {TOTAL_LIGHT_TOLERANCE:g}).")
X_AXES = {"runtime": ("megapixels_per_second", "inference throughput (output Mpx/s)"),
          "params": ("params", "learned parameters")}


def metric_direction(metric: str) -> str:
    """``higher``, ``lower`` (is better), ``zero`` or ``one`` (ideal value) from the metric
    catalogue :data:`benchmarks.metrics.config.METRICS`; unknown metrics rank higher-first."""
    info = METRICS.get(metric.removeprefix(REGION_PREFIX))
    return info.direction if info is not None else "higher"


def badness(metric: str, value: float) -> float:
    """A number that is smaller for better values of ``metric`` (the ranking key)."""
    direction = metric_direction(metric)
    if direction == "lower":
        return value
    if direction == "zero":
        return abs(value)
    if direction == "one":
        return abs(value - 1.0)
    return -value


def _direction_text(metric: str) -> str:
    return {"higher": "higher is better", "lower": "lower is better",
            "zero": "closer to 0 is better", "one": "closer to 1 is better"}[
        metric_direction(metric)]


@dataclass
class Group:
    """Rows that may be ranked together (same dataset fingerprint and source kind)."""

    title: str
    reported: bool
    fingerprint: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def group_rows(rows: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Rows grouped by (source kind, dataset fingerprint or name); reproduced groups first."""
    groups: dict[tuple[bool, str], Group] = {}
    for row in rows:
        reported = row["source"] == "reported"
        fp = row["dataset"].get("fingerprint")
        key = (reported, fp or f"name:{row['dataset']['name']}")
        if key not in groups:
            where = f"fingerprint {fp[:12]}" if fp else "no store fingerprint"
            kind = "paper-reported, not comparable with reproduced rows" if reported \
                else "reproduced"
            groups[key] = Group(f"{row['dataset']['name']} ({where}; {kind})", reported, fp)
        groups[key].rows.append(dict(row))
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1]))]


def seeds_of(row: Mapping[str, Any]) -> list[int]:
    """The seeds behind a row: ``protocol.seeds`` (multi-seed rows) or ``[protocol.seed]``."""
    protocol = row.get("protocol") or {}
    seeds = protocol.get("seeds")
    if seeds:
        return [int(s) for s in seeds]
    return [] if protocol.get("seed") is None else [int(protocol["seed"])]


def region_values(row: Mapping[str, Any], metric: str) -> dict[str, float]:
    """``{region: value}`` of a regional metric (finite values only)."""
    out = {}
    for region, metrics in (row.get("regional") or {}).items():
        value = (metrics or {}).get(metric)
        if value is not None and math.isfinite(value):
            out[region] = float(value)
    return out


def is_regional(metric: str) -> bool:
    """Whether ``metric`` names a mean over regions (``region_<metric>``)."""
    return metric.startswith(REGION_PREFIX)


def metric_mean(row: Mapping[str, Any], metric: str) -> float | None:
    """The row's mean of ``metric`` (for ``region_<m>``: the mean of ``m`` over its regions),
    or None."""
    if is_regional(metric) and metric not in (row.get("metrics") or {}):
        values = list(region_values(row, metric.removeprefix(REGION_PREFIX)).values())
        return sum(values) / len(values) if values else None
    value = (row.get("metrics") or {}).get(metric, {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def light_flags(row: Mapping[str, Any], tolerance: float = TOTAL_LIGHT_TOLERANCE) -> list[str]:
    """``total light <region> +96 %`` for every region whose |total-light error| > ``tolerance``
    (sorted by region)."""
    return [f"total light {region} {100.0 * value:+.0f} %" for region, value in
            sorted(region_values(row, "total_light_rel_error").items())
            if abs(value) > tolerance]


def local_columns(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Local metrics shown for ``rows``: the ranking metric (when local) first, then the
    :data:`DISPLAY_METRICS` some row has."""
    first = [] if is_regional(metric) else [metric]
    return first + [m for m in DISPLAY_METRICS if m != metric
                    and any(metric_mean(r, m) is not None for r in rows)]


def region_columns(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Regional columns shown (``region_<m>`` names): the ranking metric (when regional and not
    one of them) first, then :data:`REGION_COLUMNS` when some row has regional metrics."""
    names = [REGION_PREFIX + m for m in REGION_COLUMNS] if any(r.get("regional") for r in rows) \
        else []
    return ([metric] if is_regional(metric) and metric not in names else []) + names


def rank_rows(rows: Sequence[Mapping[str, Any]], metric: str = "psnr") -> list[dict[str, Any]]:
    """Rows sorted best first on ``metric`` (rows without it last, by method name)."""
    def key(row: Mapping[str, Any]) -> tuple[bool, float, str]:
        value = metric_mean(row, metric)
        return (value is None, badness(metric, value) if value is not None else 0.0, row["method"])

    return [dict(r) for r in sorted(rows, key=key)]


def _fmt_estimate(est: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not est or est.get("mean") is None:
        return "–"
    text = f"{est['mean']:.{digits}f}"
    if est.get("ci_low") is not None and est.get("ci_high") is not None:
        half = (est["ci_high"] - est["ci_low"]) / 2.0
        text += f" ± {half:.{digits}f}"
    if est.get("sd") is not None:
        text += f" (sd {est['sd']:.{digits}f})"
    return text


def tier_text(row: Mapping[str, Any]) -> str:
    """The row's significance tier, ``–`` when it has none."""
    return "–" if row.get("tier") is None else str(row["tier"])


def format_value(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals, ``–`` for None or non-finite."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _fmt_claims(row: Mapping[str, Any]) -> str:
    parts = []
    for c in row.get("claims") or []:
        sign = "+" if c.get("higher_is_better", True) else "−"
        parts.append(f"{c['metric'].upper()} {sign}{c['min']:g}…{c['max']:g} {c['unit']} "
                     f"vs {c['versus']}")
    return "; ".join(parts)


def table_rows(group: Group, metric: str = "psnr", citation: bool = True
               ) -> tuple[list[str], list[list[str]]]:
    """Header and cell strings of a group's ranked table (``citation``: a column for reported
    rows' citations; a ``tier`` column when some row carries ``tier``)."""
    ranked = rank_rows(group.rows, metric)
    shown = local_columns(ranked, metric)
    regions = region_columns(ranked, metric)
    tiers = any(r.get("tier") is not None for r in ranked)
    header = ["#", *(["tier"] if tiers else []), "method", "budget", "seed", *shown, *regions,
              "params", "Mpx/s", "date", "flags"]
    if group.reported:
        header = ["#", "method", "version", *shown, "claims", *(["citation"] if citation else [])]
    cells = []
    for i, row in enumerate(ranked, 1):
        metrics = row.get("metrics") or {}
        values = [_fmt_estimate(metrics.get(m)) for m in shown]
        if group.reported:
            cells.append([str(i), row["method"], row["version"], *values, _fmt_claims(row),
                          *([row.get("citation", "")] if citation else [])])
            continue
        protocol = row.get("protocol") or {}
        mpx = (row.get("runtime") or {}).get("megapixels_per_second")
        tier = [tier_text(row)] if tiers else []
        cells.append([str(i), *tier, row["method"], str(protocol.get("budget")),
                      ",".join(map(str, seeds_of(row))) or "–", *values,
                      *(format_value(metric_mean(row, m)) for m in regions),
                      "–" if row.get("params") is None else f"{row['params']:,}",
                      "–" if mpx is None else f"{mpx:.2f}", (row.get("date") or "")[:10],
                      "; ".join(light_flags(row)) or "–"])
    return header, cells


def format_text(groups: Sequence[Group], metric: str = "psnr") -> str:
    """Plain-text ranked tables, one per group."""
    blocks = []
    for group in groups:
        header, cells = table_rows(group, metric, citation=False)
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        lines = [f"== {group.title} — ranked by {metric} ({_direction_text(metric)}) =="]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        blocks.append("\n".join(lines))
    if any(not g.reported for g in groups):
        blocks.append(LEGEND)
    return "\n\n".join(blocks) if blocks else "(empty leaderboard)"


def format_markdown(groups: Sequence[Group], metric: str = "psnr") -> str:
    """Markdown page: one ranked table per group (mean ± half-width of the 95 % CI)."""
    out = ["# DeepLight leaderboard", "",
           f"Ranked by `{metric}` within each dataset fingerprint; values are test-split means "
           "± half the 95 % bootstrap CI. Rows on different fingerprints are never ranked "
           "together; paper-reported rows are listed separately. " + LEGEND, ""]
    for group in groups:
        header, cells = table_rows(group, metric)
        out += [f"## {group.title}", "", "| " + " | ".join(header) + " |",
                "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        out.append("")
    return "\n".join(out)


def plot_png(groups: Sequence[Group], metric: str = "psnr", x: str = "runtime") -> bytes | None:
    """PNG bytes of ``metric`` against throughput or parameters for the reproduced groups."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    key, label = X_AXES[x]
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    plotted = False
    for group in groups:
        if group.reported:
            continue
        pts = []
        for row in group.rows:
            xv = row.get("params") if key == "params" else (row.get("runtime") or {}).get(key)
            yv = metric_mean(row, metric)
            if xv is not None and yv is not None and xv > 0:
                pts.append((float(xv), yv, row["method"]))
        if not pts:
            continue
        plotted = True
        ax.scatter([p[0] for p in pts], [p[1] for p in pts],
                   label=(group.fingerprint or "")[:12])
        for px, py, name in pts:
            ax.annotate(name, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if not plotted:
        return None
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {x}")
    ax.legend(title="dataset fingerprint", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def format_html(groups: Sequence[Group], metric: str = "psnr", x: str = "runtime") -> str:
    """A self-contained HTML page (inline CSS, base64-embedded PNG plot, no external links)."""
    png = plot_png(groups, metric, x)
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>DeepLight leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin-bottom:2em}"
             "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
             "th{background:#f0f0f0}caption{font-weight:bold;text-align:left;padding:.4em 0}"
             "</style></head><body>", "<h1>DeepLight leaderboard</h1>",
             f"<p>Ranked by <code>{html.escape(metric)}</code> within each dataset fingerprint "
             "(mean ± half the 95 % bootstrap CI). Rows on different fingerprints are never "
             "ranked together; paper-reported rows are listed separately.</p>"]
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt=\"{html.escape(metric)} vs {html.escape(x)}\" "
                     f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(metric)} "
                     f"against {html.escape(X_AXES[x][1])}</figcaption></figure>")
    for group in groups:
        header, cells = table_rows(group, metric)
        parts.append(f"<table><caption>{html.escape(group.title)}</caption><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                  for row in cells]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["DISPLAY_METRICS", "REGION_COLUMNS", "REGION_PREFIX", "TOTAL_LIGHT_TOLERANCE", "Group",
           "badness", "format_html", "format_markdown", "format_text", "format_value",
           "group_rows", "is_regional", "light_flags", "local_columns", "metric_direction",
           "metric_mean", "plot_png", "rank_rows", "region_columns", "region_values", "seeds_of",
           "table_rows", "tier_text"]
