"""The leaderboard as a static site (``deeplightmd leaderboard render --out site/``).

``index.html`` with, per dataset fingerprint: the ranking table (mean and 95 % CI of every shown
metric; a ``tier`` column when rows carry one), the regional summary, two SVG figures with error
bars (local PSNR ± CI with each region's PSNR; total-light error per region with the mean ± sd
over regions), example SR crops and region mosaics per method (the thumbnails that
``bench --thumbnails`` recorded, copied into ``img/``), then the paper-reported rows against what
was reproduced, and the provenance of every row. Every file is written atomically; the page has
no external resources.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.leaderboard.render import (
    REGION_COLUMNS,
    TOTAL_LIGHT_TOLERANCE,
    Group,
    _direction_text,
    _fmt_claims,
    group_rows,
    light_flags,
    local_columns,
    metric_mean,
    rank_rows,
    region_columns,
    region_values,
    seeds_of,
    tier_text,
)
from benchmarks.leaderboard.tiers import with_tiers
from deeplightmd.atomic import write_bytes, write_text

#: records load failures and JavaScript errors on <body> (data-* attributes) for tests and readers
STATUS_SCRIPT = """<script>
window.addEventListener('error', function (e) {
  var b = document.body;
  b.dataset.jsErrors = (b.dataset.jsErrors || '') + (e.message || 'error') + ';';
}, true);
window.addEventListener('load', function () {
  var ok = 0, bad = 0;
  document.querySelectorAll('img').forEach(function (im) {
    var good = im.complete && im.naturalWidth > 0;
    im.dataset.loaded = good ? '1' : '0'; if (good) { ok++; } else { bad++; }
  });
  document.body.dataset.imagesLoaded = ok; document.body.dataset.imagesBroken = bad;
});
</script>"""
CSS = ("body{font-family:sans-serif;margin:2em;max-width:80em}"
       "table{border-collapse:collapse;margin-bottom:1.5em}"
       "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
       "th{background:#f0f0f0}caption{font-weight:bold;text-align:left;padding:.4em 0}"
       "figure{display:inline-block;margin:.3em}figcaption{font-size:.8em;text-align:center}"
       "img.thumb{image-rendering:pixelated;border:1px solid #999}.flag{color:#b00}"
       "code{font-size:.9em}")


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _estimate_cell(est: Mapping[str, Any] | None) -> str:
    """``mean [low, high]`` of an estimate dict."""
    if not est or est.get("mean") is None:
        return "–"
    text = _fmt(est["mean"])
    if est.get("ci_low") is not None and est.get("ci_high") is not None:
        text += f" [{_fmt(est['ci_low'])}, {_fmt(est['ci_high'])}]"
    if est.get("sd") is not None:
        text += f" sd {_fmt(est['sd'])}"
    return text


def region_error(row: Mapping[str, Any], region: str, metric: str) -> tuple[float, float] | None:
    """Lower/upper error-bar lengths of a region's value when the row has a CI for it
    (``<metric>_ci_low`` / ``<metric>_ci_high``, e.g. from several seeds), else None."""
    metrics = (row.get("regional") or {}).get(region) or {}
    value, low, high = (metrics.get(metric), metrics.get(f"{metric}_ci_low"),
                        metrics.get(f"{metric}_ci_high"))
    if value is None or low is None or high is None:
        return None
    return max(0.0, value - low), max(0.0, high - value)


# ------------------------------------------------------------------------------------------------
# figures

def _mark_errorbars(container: Any, gid: str) -> None:
    """Give an errorbar's bar lines an SVG id (``errorbar-…``) so a reader or test finds them."""
    for k, artist in enumerate(container.lines[2]):
        artist.set_gid(f"errorbar-{gid}-{k}")


def _axes() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    return fig, fig.add_subplot()


def _plot_regions(ax: Any, xs: np.ndarray, methods: Sequence[Mapping[str, Any]], metric: str,
                  scale: float = 1.0) -> None:
    """Each region's value of ``metric`` (× ``scale``) beside each method's x position, with
    error bars when every point of the region has a CI (:func:`region_error`)."""
    regions = sorted({g for r in methods for g in region_values(r, metric)})
    for j, region in enumerate(regions):
        pts = [(x + 0.12 * (j + 1), scale * region_values(r, metric)[region],
                region_error(r, region, metric))
               for x, r in zip(xs, methods, strict=True) if region in region_values(r, metric)]
        yerr = None
        if all(p[2] is not None for p in pts):
            yerr = scale * np.array([p[2] for p in pts]).T
        bars = ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=yerr, fmt="s",
                           capsize=3, label=f"region {region}")
        if yerr is not None:
            _mark_errorbars(bars, f"{metric}-{_slug(region)}")


def _finish(fig: Any, ax: Any, xs: np.ndarray, methods: Sequence[Mapping[str, Any]],
            ylabel: str, title: str) -> bytes:
    ax.set_xticks(xs, [r["method"] for r in methods], rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def psnr_figure(rows: Sequence[Mapping[str, Any]], metric: str = "psnr") -> bytes | None:
    """SVG: per method, the local ``metric`` mean with its 95 % CI and each region's value."""
    methods = [r for r in rows if metric_mean(r, metric) is not None]
    if not methods:
        return None
    fig, ax = _axes()
    xs = np.arange(len(methods))
    means = [metric_mean(r, metric) for r in methods]
    errs = np.array([[m - (r["metrics"][metric].get("ci_low") or m),
                      (r["metrics"][metric].get("ci_high") or m) - m]
                     for r, m in zip(methods, means, strict=True)]).T
    bars = ax.errorbar(xs, means, yerr=np.maximum(errs, 0.0), fmt="o", capsize=5, color="k",
                       label="test clips: mean ± 95 % CI")
    _mark_errorbars(bars, f"{metric}-local")
    _plot_regions(ax, xs, methods, metric)
    return _finish(fig, ax, xs, methods, f"{metric} (dB)" if metric.startswith("psnr") else metric,
                   f"{metric}: test clips and held-out regions")


def total_light_figure(rows: Sequence[Mapping[str, Any]],
                       metric: str = "total_light_rel_error") -> bytes | None:
    """SVG: per method, each region's total-light error (%) and their mean ± sd over regions."""
    methods = [r for r in rows if region_values(r, metric)]
    if not methods:
        return None
    fig, ax = _axes()
    xs = np.arange(len(methods))
    values = [list(region_values(r, metric).values()) for r in methods]
    bars = ax.errorbar(xs, [100.0 * float(np.mean(v)) for v in values],
                       yerr=[100.0 * float(np.std(v)) for v in values], fmt="D", capsize=6,
                       color="k", label="mean ± sd over regions")
    _mark_errorbars(bars, f"{metric}-regions")
    _plot_regions(ax, xs, methods, metric, scale=100.0)
    ax.axhline(0.0, color="0.5", lw=0.8)
    return _finish(fig, ax, xs, methods, "total light error (%)",
                   "regional total light: (Σ SR − Σ HR) / Σ HR")


# ------------------------------------------------------------------------------------------------
# sections

def ranking_table(group: Group, metric: str) -> str:
    """The ranked table of a reproduced group (a ``tier`` column when any row has one; a
    ``flags`` column naming regions whose total light is off by more than the tolerance)."""
    ranked = rank_rows(group.rows, metric)
    shown = local_columns(ranked, metric)
    regions = region_columns(ranked, metric)
    tiers = any(r.get("tier") is not None for r in ranked)
    header = ["#", *(["tier"] if tiers else []), "method", "seeds", "budget", *shown,
              *(f"{m} (mean over regions)" for m in regions), "params", "Mpx/s", "flags"]
    lines = [f"<table class=\"ranking\"><caption>{_esc(group.title)} — ranked by "
             f"{_esc(metric)} ({_esc(_direction_text(metric))}); mean [95 % CI]</caption><tr>"
             + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(ranked, 1):
        metrics = row.get("metrics") or {}
        mpx = (row.get("runtime") or {}).get("megapixels_per_second")
        cells = [str(i), *([tier_text(row)] if tiers else []), row["method"],
                 ",".join(map(str, seeds_of(row))) or "–",
                 str((row.get("protocol") or {}).get("budget")),
                 *(_estimate_cell(metrics.get(m)) for m in shown),
                 *(_fmt(metric_mean(row, m)) for m in regions),
                 "–" if row.get("params") is None else f"{row['params']:,}",
                 "–" if mpx is None else f"{mpx:.2f}"]
        flags = light_flags(row)
        lines.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells)
                     + (f"<td class=\"flag\">{_esc('; '.join(flags))}</td>" if flags
                        else "<td>–</td>") + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _resolve(path: str, bases: Sequence[Path]) -> Path | None:
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    return next((b / candidate for b in bases if (b / candidate).is_file()), None)


def _copy_image(path: str, bases: Sequence[Path], out_dir: Path, name: str) -> str | None:
    """Copy a thumbnail into ``out_dir/img``; its path relative to ``out_dir`` (None: missing)."""
    source = _resolve(path, bases)
    if source is None:
        return None
    target = out_dir / "img" / name
    write_bytes(target, source.read_bytes())
    return target.relative_to(out_dir).as_posix()


def _figure_html(src: str | None, caption: str, missing: str, cls: str) -> str:
    if src is None:
        return f"<figure><em>{_esc(missing)}</em><figcaption>{_esc(caption)}</figcaption></figure>"
    return (f"<figure><img class=\"thumb {cls}\" src=\"{_esc(src)}\" alt=\"{_esc(caption)}\">"
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def examples_section(group: Group, gid: str, bases: Sequence[Path], out_dir: Path) -> str:
    """Example SR crops (LR | SR | HR) and region mosaics per method, from the rows' thumbnails."""
    parts = []
    for row in sorted(group.rows, key=lambda r: r["method"]):
        thumbs = row.get("thumbnails") or {}
        stem = f"{gid}_{_slug(row['method'])}_s{'-'.join(map(str, seeds_of(row)))}"
        figures = []
        for clip in (thumbs.get("clips") or [])[:2]:
            for view in ("lr", "sr", "hr"):
                src = _copy_image(clip[view], bases, out_dir,
                                  f"{stem}_clip{clip['clip_id']}_{view}.png")
                figures.append(_figure_html(src, f"clip {clip['clip_id']} {view.upper()}",
                                            f"missing {clip[view]}", view))
        for region, views in sorted((thumbs.get("regions") or {}).items()):
            for view in ("sr", "hr"):
                src = _copy_image(views[view], bases, out_dir,
                                  f"{stem}_region_{_slug(region)}_{view}.png")
                figures.append(_figure_html(src, f"{region} {view.upper()} mosaic",
                                            f"missing {views[view]}", view))
        body = "".join(figures) or ("<p><em>no thumbnails recorded (run <code>deeplightmd bench "
                                    "--thumbnails DIR</code>)</em></p>")
        parts.append(f"<h4>{_esc(row['method'])}</h4><div class=\"examples\">{body}</div>")
    return "\n".join(parts)


def reported_section(groups: Sequence[Group]) -> str:
    """Paper-reported rows next to what the reproduced groups give for the same claims."""
    reported = [r for g in groups if g.reported for r in g.rows]
    if not reported:
        return "<p>No paper-reported rows on this leaderboard.</p>"
    reproduced = [g for g in groups if not g.reported]
    lines = ["<table class=\"reported\"><tr><th>method</th><th>reported (paper)</th>"
             "<th>reproduced here</th><th>citation</th></tr>"]
    for row in reported:
        claims = _fmt_claims(row)
        absolute = ", ".join(f"{m} {_fmt(e.get('mean'))}" for m, e in
                             (row.get("metrics") or {}).items() if e.get("mean") is not None)
        found = []
        for group in reproduced:
            own = [r for r in group.rows if r["method"] == row["method"]]
            if not own:
                continue
            where = f"{group.rows[0]['dataset']['name']} ({(group.fingerprint or '')[:12]})"
            for claim in row.get("claims") or []:
                mine = metric_mean(own[0], claim["metric"])
                others = [metric_mean(r, claim["metric"]) for r in group.rows
                          if r["method"] != row["method"]]
                others = [v for v in others if v is not None]
                if mine is None or not others:
                    found.append(f"{where}: no reproduced {claim['metric']} to compare")
                    continue
                sign = 1.0 if claim.get("higher_is_better", True) else -1.0
                gains = [sign * (mine - v) for v in others]
                found.append(f"{where}: {claim['metric'].upper()} gain over {len(others)} "
                             f"method(s) {min(gains):+.2f}…{max(gains):+.2f} {claim['unit']}")
            for metric, est in (row.get("metrics") or {}).items():
                value = metric_mean(own[0], metric)
                if est.get("mean") is not None and value is not None:
                    found.append(f"{where}: {metric} {_fmt(value)}")
        lines.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in (
            row["method"], "; ".join(p for p in (claims, absolute) if p) or "–",
            "; ".join(found) or "not reproduced on this leaderboard",
            row.get("citation", ""))) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def threads_text(hw: Mapping[str, Any]) -> str:
    """``2 (+2 interop)`` from a hardware record; ``–`` for rows recorded without threads."""
    if hw.get("threads") is None:
        return "–"
    interop = hw.get("interop_threads")
    return f"{hw['threads']}" + (f" (+{interop} interop)" if interop is not None else "")


def isa_text(hw: Mapping[str, Any]) -> str:
    """Torch's dispatch ISA and the CPU's vector flags, e.g. ``AVX512 (avx2, avx512f, …)``."""
    capability, flags = hw.get("cpu_capability"), hw.get("cpu_flags") or []
    if capability is None and not flags:
        return "–"
    return " ".join(p for p in (capability or "", f"({', '.join(flags)})" if flags else "") if p)


def provenance_table(group: Group) -> str:
    """Fingerprint, budget, seeds, steps, hardware, commit and date of every row of a group."""
    header = ["method", "version", "budget", "seeds", "steps", "device", "CPU", "GPU", "torch",
              "threads", "ISA", "oneDNN", "train s", "commit", "date"]
    lines = [f"<p>Dataset <code>{_esc(group.rows[0]['dataset']['name'])}</code>, store "
             f"fingerprint <code>{_esc(group.fingerprint or 'none')}</code>.</p>",
             "<table class=\"provenance\"><tr>" + "".join(f"<th>{h}</th>" for h in header)
             + "</tr>"]
    for row in sorted(group.rows, key=lambda r: r["method"]):
        hw, protocol = row.get("hardware") or {}, row.get("protocol") or {}
        train = (row.get("runtime") or {}).get("train_seconds")
        cells = [row["method"], row.get("version", ""), protocol.get("budget"),
                 ",".join(map(str, seeds_of(row))) or "–", protocol.get("steps", "–"),
                 hw.get("device"), hw.get("cpu"), hw.get("gpu") or "–", hw.get("torch"),
                 threads_text(hw), isa_text(hw), hw.get("onednn") or "–",
                 _fmt(train, 1) if train is not None else "–",
                 (row.get("git_commit") or "–")[:12], row.get("date") or "–"]
        lines.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# the site

def render_site(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, metric: str = "psnr",
                bases: Sequence[str | Path] = (".",)) -> list[Path]:
    """Write ``index.html``, its SVG figures and the copied thumbnails to ``out_dir``.

    Args:
        rows: leaderboard rows (validated, e.g. ``load_board(path)["rows"]``).
        out_dir: the site folder (created).
        metric: the local metric to rank by.
        bases: folders that relative thumbnail paths are tried against, in order.

    Returns:
        The figures and ``index.html`` written (thumbnails are copied to ``img/``).
    """
    out = Path(out_dir)
    base_dirs = [Path(b) for b in bases]
    groups = group_rows(rows)
    written: list[Path] = []
    body = ["<h1>DeepLight leaderboard</h1>",
            f"<p>Rows are ranked by <code>{_esc(metric)}</code> only within one store fingerprint; "
            "values are test-split means with 95 % bootstrap CIs in brackets. Overlapping CIs "
            "mean the order of those rows is not established; the <em>tier</em> column groups "
            "rows that paired Wilcoxon tests on the per-clip values (Holm-corrected over all "
            "pairs) cannot separate from the tier's first row: rows in one tier are tied. "
            "Regional columns are means over the held-out regions; the figures show each "
            "region. A row is flagged when its total light is off by more than "
            f"{100 * TOTAL_LIGHT_TOLERANCE:.0f} % in any held-out region.</p>"]
    reproduced = [g for g in groups if not g.reported]
    if not reproduced:
        body.append("<p>No reproduced rows yet: run <code>deeplightmd bench</code>.</p>")
    for k, group in enumerate(with_tiers(g, metric) for g in reproduced):
        gid = f"g{k}"
        body.append(f"<h2 id=\"{gid}\">{_esc(group.title)}</h2>")
        body.append(ranking_table(group, metric))
        ranked = rank_rows(group.rows, metric)
        for name, svg, caption in (
                (f"{gid}_psnr.svg", psnr_figure(ranked, "psnr"),
                 "PSNR per method: test-clip mean ± 95 % CI (black) and each held-out region"),
                (f"{gid}_total_light.svg", total_light_figure(ranked),
                 "Total-light error per method and region; black: mean ± sd over regions")):
            if svg is None:
                continue
            written.append(write_bytes(out / name, svg))
            body.append(f"<figure><img class=\"plot\" src=\"{name}\" alt=\"{_esc(caption)}\" "
                        f"width=\"700\" height=\"400\"><figcaption>{_esc(caption)}</figcaption>"
                        "</figure>")
        body.append("<h3>Examples: test clips (LR | SR | HR) and region mosaics (SR | HR)</h3>")
        body.append(examples_section(group, gid, base_dirs, out))
    body.append("<h2 id=\"reported\">Reported vs reproduced</h2>")
    body.append("<p>What papers report (on their own data) next to what this leaderboard "
                "measures for the same method and metric on each reproduced store; the two "
                "are not the same benchmark and are never ranked together.</p>")
    body.append(reported_section(groups))
    body.append("<h2 id=\"provenance\">Provenance</h2>")
    body += [provenance_table(g) for g in reproduced]
    page = "\n".join(["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
                      "<title>DeepLight leaderboard</title>", f"<style>{CSS}</style>",
                      "</head><body>", STATUS_SCRIPT, *body, "</body></html>"])
    written.append(write_text(out / "index.html", page))
    return written


__all__ = ["REGION_COLUMNS", "isa_text", "provenance_table", "psnr_figure", "ranking_table",
           "region_values", "render_site", "reported_section", "seeds_of", "threads_text",
           "total_light_figure"]
