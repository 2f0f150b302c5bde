"""Realism report: a synthetic world's light field against real VIIRS rasters.

``python -m deeplightmd.synth.realism WORLD_OR_STORE... --real RASTER... [--impervious RASTER]``

Each world (a ``deeplightmd synth`` folder, or a built store whose HR clips are put back on
their clip grid) has its HR radiance **aggregated** (block mean) to the real raster's pixel
size, and is compared with the real raster on:

* **KS** — the two-sample Kolmogorov–Smirnov statistic of log radiance over lit pixels
  (radiance ≥ ``lit_threshold``) of the world and of the real raster;
* **slope** — the radially averaged power-spectrum slope of ``log(1 + radiance)``: the mean
  spectrum of every fully valid ``tile × tile`` window (mean removed, Hann-windowed), fitted as
  ``log10 P = a + slope · log10 k`` over wavenumbers ``k = 1 … tile/2`` (cycles per tile);
* **lit fraction** — the share of valid pixels with radiance ≥ ``lit_threshold``;
* **light vs impervious** — the median radiance of urban pixels (impervious share ≥ 0.5) over
  that of the other pixels, and the Spearman correlation of radiance and impervious share
  (real: ``--impervious``, e.g. the MGUP urban extent; world: its ``isp``).

It prints one table of statistics per raster and one of comparisons per (world, real) pair,
with the goals of issue 19 (KS ≤ 0.20, |Δslope| ≤ 0.3, lit fraction within ±30 % relative).
The exit code is non-zero only on bad input (``Error: …``, exit 2).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from scipy import stats

from deeplightmd.atomic import write_text
from deeplightmd.errors import ConfigError, DeepLightError, InputFileError

#: goals of issue 19 for the `standard` family against Shanghai VNL 2020
GOAL_KS = 0.20
GOAL_SLOPE = 0.3
GOAL_LIT_REL = 0.30
#: impervious share at and above which an aggregated pixel counts as urban
URBAN_SHARE = 0.5


@dataclass(frozen=True)
class RealismConfig:
    """Settings of the comparison.

    Attributes:
        lit_threshold: radiance (nW·cm⁻²·sr⁻¹) at and above which a pixel is lit.
        tile: side (pixels at the compared resolution) of the spectrum windows.
    """

    lit_threshold: float = 1.0
    tile: int = 32

    def __post_init__(self) -> None:
        if not self.lit_threshold > 0:
            raise ConfigError(f"lit threshold must be > 0, got {self.lit_threshold!r}")
        if self.tile < 8:
            raise ConfigError(f"spectrum tile must be >= 8 pixels, got {self.tile!r}")


@dataclass
class Field:
    """A radiance raster with its valid mask and optional impervious share, at one resolution."""

    name: str
    radiance: np.ndarray
    valid: np.ndarray
    pixel_m: float
    impervious: np.ndarray | None = None


@dataclass(frozen=True)
class FieldStats:
    """Statistics of one :class:`Field`."""

    name: str
    pixel_m: float
    valid_px: int
    lit_px: int
    lit_fraction: float
    median_lit: float
    p99: float
    top1_share: float
    slope: float | None
    tiles: int
    urban_rural_ratio: float | None
    spearman_isp: float | None


# ----------------------------------------------------------------------------- statistics


def aggregate(x: np.ndarray, valid: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block mean over ``factor × factor`` blocks (edges cropped); a block is valid if all are."""
    if factor <= 1:
        return x.astype(np.float64), valid.copy()
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    xs = np.where(valid, x, 0.0)[:h, :w].astype(np.float64)
    blocks = xs.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    ok = valid[:h, :w].reshape(h // factor, factor, w // factor, factor).all(axis=(1, 3))
    return blocks, ok


def lit_fraction(x: np.ndarray, valid: np.ndarray, threshold: float) -> float:
    """Share of valid pixels with ``x >= threshold``."""
    n = int(valid.sum())
    return float((x[valid] >= threshold).sum() / n) if n else float("nan")


def ks_log_lit(a: np.ndarray, b: np.ndarray, threshold: float) -> float:
    """Two-sample KS statistic of ``log(radiance)`` of the lit values of ``a`` and ``b``."""
    la, lb = a[a >= threshold], b[b >= threshold]
    if la.size == 0 or lb.size == 0:
        return float("nan")
    return float(stats.ks_2samp(np.log(la), np.log(lb)).statistic)


def radial_spectrum(tile: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum ``P(k)``, ``k = 1 … n/2``, of a square tile (mean
    removed, Hann window)."""
    n = tile.shape[0]
    win = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2((tile - tile.mean()) * win)) ** 2
    f = np.fft.fftfreq(n) * n
    k = np.rint(np.hypot(f[:, None], f[None, :])).astype(int)
    ks = np.arange(1, n // 2 + 1)
    sums = np.bincount(k.ravel(), power.ravel(), minlength=n)[ks]
    counts = np.bincount(k.ravel(), minlength=n)[ks]
    return sums / counts


def spectrum_slope(x: np.ndarray, valid: np.ndarray, tile: int) -> tuple[float | None, int]:
    """Slope of ``log10 P(k)`` against ``log10 k`` of ``log1p(x)``, averaged over every fully
    valid non-overlapping ``tile × tile`` window; ``(None, 0)`` when there is none."""
    spectra = []
    for r in range(0, x.shape[0] - tile + 1, tile):
        for c in range(0, x.shape[1] - tile + 1, tile):
            if valid[r:r + tile, c:c + tile].all():
                spectra.append(radial_spectrum(np.log1p(np.maximum(x[r:r + tile, c:c + tile],
                                                                   0.0))))
    if not spectra:
        return None, 0
    p = np.mean(spectra, axis=0)
    k = np.arange(1, tile // 2 + 1)
    good = p > 0
    if good.sum() < 2:  # flat tiles: no spectrum to fit
        return None, len(spectra)
    slope = np.polyfit(np.log10(k[good]), np.log10(p[good]), 1)[0]
    return float(slope), len(spectra)


def top_share(x: np.ndarray, share: float = 0.01) -> float:
    """Share of the total light carried by the brightest ``share`` of the pixels."""
    v = np.sort(np.maximum(x, 0.0))[::-1]
    total = v.sum()
    n = max(round(share * v.size), 1)
    return float(v[:n].sum() / total) if total > 0 else float("nan")


def field_stats(f: Field, cfg: RealismConfig) -> FieldStats:
    """Every single-raster statistic of ``f``."""
    v = f.radiance[f.valid]
    lit = v[v >= cfg.lit_threshold]
    slope, tiles = spectrum_slope(f.radiance, f.valid, cfg.tile)
    ratio = rho = None
    if f.impervious is not None:
        isp = f.impervious[f.valid]
        urban = isp >= URBAN_SHARE
        if urban.any() and (~urban).any():
            rural_med = float(np.median(v[~urban]))
            ratio = float(np.median(v[urban]) / rural_med) if rural_med > 0 else float("inf")
        if np.ptp(isp) > 0 and np.ptp(v) > 0:
            rho = float(stats.spearmanr(v, isp).statistic)
    return FieldStats(
        name=f.name, pixel_m=round(f.pixel_m, 1), valid_px=int(v.size), lit_px=int(lit.size),
        lit_fraction=lit_fraction(f.radiance, f.valid, cfg.lit_threshold),
        median_lit=float(np.median(lit)) if lit.size else float("nan"),
        p99=float(np.percentile(v, 99)) if v.size else float("nan"),
        top1_share=top_share(v), slope=slope, tiles=tiles, urban_rural_ratio=ratio,
        spearman_isp=rho)


def compare(world: Field, real: Field, ws: FieldStats, rs: FieldStats,
            cfg: RealismConfig) -> dict[str, Any]:
    """KS, slope difference and relative lit-fraction difference of ``world`` against ``real``,
    and whether each meets its goal."""
    ks = ks_log_lit(world.radiance[world.valid], real.radiance[real.valid], cfg.lit_threshold)
    d_slope = None if ws.slope is None or rs.slope is None else ws.slope - rs.slope
    lit_rel = (ws.lit_fraction - rs.lit_fraction) / rs.lit_fraction \
        if rs.lit_fraction > 0 else float("nan")
    return {"world": world.name, "real": real.name, "ks": ks, "d_slope": d_slope,
            "lit_rel": lit_rel, "ks_ok": bool(ks <= GOAL_KS),
            "slope_ok": bool(d_slope is not None and abs(d_slope) <= GOAL_SLOPE),
            "lit_ok": bool(abs(lit_rel) <= GOAL_LIT_REL)}


# ----------------------------------------------------------------------------- readers


def _pixel_m(ds: rasterio.io.DatasetReader) -> float:
    """Mean pixel side (m) of a raster: from degrees at its centre latitude when geographic."""
    rx, ry = abs(ds.transform.a), abs(ds.transform.e)
    if ds.crs is not None and ds.crs.is_geographic:
        lat = np.radians((ds.bounds.top + ds.bounds.bottom) / 2.0)
        return float(np.sqrt(rx * 111_320.0 * np.cos(lat) * ry * 110_574.0))
    return float(np.sqrt(rx * ry))


def _open(path: Path, what: str) -> rasterio.io.DatasetReader:
    try:
        return rasterio.open(path)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise InputFileError(f"cannot read {what} {path}: {str(exc).splitlines()[0]}") from exc


def read_real(path: Path, impervious: Path | None, zero_is_fill: bool) -> Field:
    """A real NTL raster: valid = finite, not nodata (and not exactly 0 with ``zero_is_fill``:
    clip fill of GEE exports), and valid in ``impervious`` when given."""
    with _open(path, "real raster") as ds:
        x = ds.read(1).astype(np.float64)
        valid = np.isfinite(x)
        if ds.nodata is not None:
            valid &= x != ds.nodata
        pixel = _pixel_m(ds)
        shape, transform = ds.shape, ds.transform
    if zero_is_fill:
        valid &= x != 0
    isp = None
    if impervious is not None:
        with _open(impervious, "impervious raster") as ds:
            if ds.shape != shape or not ds.transform.almost_equals(transform):
                raise ConfigError(f"impervious raster {impervious} is not on the grid of {path}")
            m = ds.read(1).astype(np.float64)
            if ds.nodata is not None:
                valid &= m != ds.nodata
            isp = m
    if not valid.any():
        raise ConfigError(f"real raster {path} has no valid pixel")
    return Field(path.stem, np.where(valid, x, 0.0), valid, pixel, isp)


def _world_dir_field(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    """HR radiance, valid mask, impervious share on the HR grid, HR pixel and a label."""
    meta = json.loads((path / "world.json").read_text())
    with _open(path / "hr_ntl.tif", "world HR NTL") as ds:
        hr = ds.read(1).astype(np.float64)
        valid = np.isfinite(hr) & (hr != ds.nodata)
        crs, transform, pixel = ds.crs, ds.transform, abs(ds.transform.a)
    isp = np.zeros(hr.shape, dtype=np.float32)
    with _open(path / "isp.tif", "world ISP") as ds:
        src = ds.read(1).astype(np.float32)
        src[src == ds.nodata] = np.nan
        reproject(src, isp, src_transform=ds.transform, src_crs=ds.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.average, src_nodata=np.nan,
                  dst_nodata=np.nan)
    fam = meta.get("family")  # ISP outside its (Albers) raster counts as 0
    label = f"{fam['name']}#{fam['index']}" if fam else f"{meta['preset']}-seed{meta['seed']}"
    return hr, valid, np.nan_to_num(isp), pixel, label


def _store_field(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    """Every clip of a store put back on its clip grid (holes invalid)."""
    import zarr

    try:
        root = zarr.open_group(str(path), mode="r")
        attrs = dict(root.attrs)["deeplight"]
    except Exception as exc:  # zarr raises many types for a non-store folder
        raise InputFileError(f"{path} is neither a synth world folder nor a DeepLightMD store "
                             f"({type(exc).__name__})") from exc
    pixel = float(attrs["manifest"]["grid"]["hr_pixel_size"])
    parts = []
    for split in ("train", "val", "test"):
        if split in root and root[split]["hr_ntl"].shape[0]:
            g = root[split]
            parts.append((g["hr_ntl"][:], g["isp"][:], g["row"][:], g["col"][:]))
    if not parts:
        raise ConfigError(f"store {path} has no clip")
    size = parts[0][0].shape[-1]
    n_rows = max(int(p[2].max()) for p in parts) + 1
    n_cols = max(int(p[3].max()) for p in parts) + 1
    hr = np.zeros((n_rows * size, n_cols * size))
    isp = np.zeros_like(hr)
    valid = np.zeros(hr.shape, dtype=bool)
    for clips, isps, rows, cols in parts:
        for clip, ic, r, c in zip(clips, isps, rows, cols, strict=True):
            win = (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
            hr[win], isp[win], valid[win] = clip, ic, True
    return hr, valid, isp, pixel, f"store:{attrs.get('dataset', path.name)}"


def read_world(path: Path, pixel_m: float) -> tuple[Field, int]:
    """A world folder or store, aggregated to ``pixel_m``; returns the field and the factor."""
    if (path / "world.json").is_file():
        hr, valid, isp, pixel, label = _world_dir_field(path)
    elif path.is_dir():
        hr, valid, isp, pixel, label = _store_field(path)
    else:
        raise InputFileError(f"{path} is neither a synth world folder nor a DeepLightMD store")
    factor = max(round(pixel_m / pixel), 1)
    x, ok = aggregate(hr, valid, factor)
    share, _ = aggregate(isp, valid, factor)
    if not ok.any():
        raise ConfigError(f"world {path} has no valid pixel at {pixel_m:.0f} m")
    return Field(label, np.where(ok, x, 0.0), ok, pixel * factor, share), factor


# ----------------------------------------------------------------------------- report


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in rows)


def report(worlds: list[Path], reals: list[Path], impervious: Path | None = None,
           cfg: RealismConfig | None = None, zero_is_fill: bool = True) -> dict[str, Any]:
    """Statistics of every real raster and world and the comparison of every pair."""
    cfg = cfg or RealismConfig()
    real_fields = [read_real(p, impervious, zero_is_fill) for p in reals]
    real_stats = [field_stats(f, cfg) for f in real_fields]
    out: dict[str, Any] = {"config": asdict(cfg), "real": [asdict(s) for s in real_stats],
                           "worlds": [], "pairs": []}
    cache: dict[tuple[Path, float], tuple[Field, FieldStats]] = {}
    for rf, rs in zip(real_fields, real_stats, strict=True):
        for w in worlds:
            key = (w, round(rf.pixel_m, 1))
            if key not in cache:
                wf, factor = read_world(w, rf.pixel_m)
                cache[key] = (wf, field_stats(wf, cfg))
                out["worlds"].append({**asdict(cache[key][1]), "factor": factor})
            wf, ws = cache[key]
            out["pairs"].append(compare(wf, rf, ws, rs, cfg))
    out["summary"] = family_summary(out["pairs"])
    return out


def _median(values: list[float | None]) -> float | None:
    """Median of the finite values (a statistic a world cannot give is None), else None."""
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.median(kept)) if kept else None


def family_summary(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per real raster, over the worlds compared with it: the median KS, Δslope and relative
    lit fraction, whether those medians meet the goals, and how many worlds meet each goal and
    all three (a family's realism, next to each world's)."""
    out = []
    for real in dict.fromkeys(p["real"] for p in pairs):
        mine = [p for p in pairs if p["real"] == real]
        med = {k: _median([p[k] for p in mine]) for k in ("ks", "d_slope", "lit_rel")}
        met = None not in med.values() and med["ks"] <= GOAL_KS and \
            abs(med["d_slope"]) <= GOAL_SLOPE and abs(med["lit_rel"]) <= GOAL_LIT_REL
        out.append({"real": real, "worlds": len(mine), **{f"median_{k}": v for k, v in med.items()},
                    "median_ok": bool(met),
                    "ks_ok": sum(p["ks_ok"] for p in mine),
                    "slope_ok": sum(p["slope_ok"] for p in mine),
                    "lit_ok": sum(p["lit_ok"] for p in mine),
                    "all_ok": sum(p["ks_ok"] and p["slope_ok"] and p["lit_ok"] for p in mine)})
    return out


def format_report(rep: dict[str, Any]) -> str:
    """The two plain-text tables of :func:`report`."""
    head = ["raster", "pixel m", "valid px", "lit frac", "median lit", "p99", "top1% light",
            "slope", "tiles", "urban/rural", "rho(ISP)"]
    rows = [head]
    for s in rep["real"] + rep["worlds"]:
        rows.append([s["name"], _fmt(s["pixel_m"], ".0f"), str(s["valid_px"]),
                     _fmt(s["lit_fraction"]), _fmt(s["median_lit"], ".2f"), _fmt(s["p99"], ".1f"),
                     _fmt(s["top1_share"]), _fmt(s["slope"], ".2f"), str(s["tiles"]),
                     _fmt(s["urban_rural_ratio"], ".1f"), _fmt(s["spearman_isp"], ".2f")])
    ok = lambda b: "ok" if b else "MISS"  # noqa: E731
    pairs = [["world", "real", f"KS (<= {GOAL_KS:g})", f"dslope (|.|<= {GOAL_SLOPE:g})",
              f"lit frac rel (|.|<= {GOAL_LIT_REL:.0%})"]]
    for p in rep["pairs"]:
        pairs.append([p["world"], p["real"], f"{_fmt(p['ks'])} {ok(p['ks_ok'])}",
                      f"{_fmt(p['d_slope'], '+.2f')} {ok(p['slope_ok'])}",
                      f"{_fmt(p['lit_rel'], '+.1%')} {ok(p['lit_ok'])}"])
    lit = rep["config"]["lit_threshold"]
    family = [["family vs", "worlds", "median KS", "median dslope", "median lit rel",
               "medians", "KS ok", "slope ok", "lit ok", "all ok"]]
    for f in rep.get("summary") or family_summary(rep["pairs"]):
        n = f["worlds"]
        family.append([f["real"], str(n), _fmt(f["median_ks"]), _fmt(f["median_d_slope"], "+.2f"),
                       _fmt(f["median_lit_rel"], "+.1%"), ok(f["median_ok"]),
                       f"{f['ks_ok']}/{n}", f"{f['slope_ok']}/{n}", f"{f['lit_ok']}/{n}",
                       f"{f['all_ok']}/{n}"])
    return (f"lit: radiance >= {lit:g} nW cm-2 sr-1; slope: log10 P(k) of log(1 + radiance) "
            f"over {rep['config']['tile']}-px tiles\n" + _table(rows) + "\n\n" + _table(pairs)
            + "\n\n" + _table(family))


@click.command("realism")
@click.argument("worlds", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--real", "reals", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Real NTL raster (GeoTIFF); repeat for several.")
@click.option("--impervious", type=click.Path(path_type=Path),
              help="Impervious/urban raster on the real rasters' grid (e.g. MGUP real_sh.tif); "
                   "its nodata also masks the real rasters.")
@click.option("--lit-threshold", default=1.0, show_default=True, type=float,
              help="Radiance (nW cm-2 sr-1) at and above which a pixel is lit.")
@click.option("--tile", default=32, show_default=True, type=int,
              help="Side of the power-spectrum windows (pixels at the real resolution).")
@click.option("--zero-is-data", is_flag=True,
              help="Count exact zeros of the real rasters as data (default: clip fill).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the numbers as JSON (atomically).")
def main(worlds: tuple[Path, ...], reals: tuple[Path, ...], impervious: Path | None,
         lit_threshold: float, tile: int, zero_is_data: bool, json_out: Path | None) -> None:
    """Compare synthetic worlds (synth folders or stores) with real VIIRS rasters."""
    rep = report(list(worlds), list(reals), impervious, RealismConfig(lit_threshold, tile),
                 zero_is_fill=not zero_is_data)
    if json_out is not None:
        write_text(json_out, json.dumps(rep, indent=2) + "\n")
    click.echo(format_report(rep))


def cli_main(argv: list[str] | None = None) -> int:
    """Run :func:`main`; a bad input is one ``Error: …`` line and exit code 2."""
    try:
        main.main(args=argv, prog_name="python -m deeplightmd.synth.realism",
                  standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return 2
    except (DeepLightError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
