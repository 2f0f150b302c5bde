"""``python -m deeplightmd.synth.realism``: statistics against hand-computed values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from deeplightmd.synth.realism import (
    aggregate,
    cli_main,
    ks_log_lit,
    lit_fraction,
    report,
    spectrum_slope,
    top_share,
)


def test_aggregate_is_a_block_mean_and_drops_blocks_with_an_invalid_pixel():
    x = np.arange(16, dtype=float).reshape(4, 4)
    valid = np.ones((4, 4), dtype=bool)
    valid[3, 3] = False
    mean, ok = aggregate(x, valid, 2)
    assert mean[0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert mean[1, 0] == pytest.approx((8 + 9 + 12 + 13) / 4)
    assert ok.tolist() == [[True, True], [True, False]]
    mean, ok = aggregate(np.ones((5, 5)), np.ones((5, 5), bool), 2)  # edges cropped
    assert mean.shape == (2, 2)


def test_lit_fraction_ks_and_top_share_by_hand():
    x = np.array([0.5, 1.0, 2.0, 10.0])
    assert lit_fraction(x, np.array([True, True, True, False]), 1.0) == pytest.approx(2 / 3)
    # ECDFs of log{1,2,3,4} and log{3,4,5,6}: largest gap 0.5 (at 2 and at 4)
    assert ks_log_lit(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6]), 1.0) == 0.5
    assert ks_log_lit(np.array([1.0, 2, 0.1]), np.array([16.0, 32]), 1.0) == 1.0  # 0.1 unlit
    assert top_share(np.array([1.0] * 99 + [101.0])) == pytest.approx(101 / 200)


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_spectrum_slope_recovers_a_power_law(beta: float):
    n, rng = 128, np.random.default_rng(1)
    f = np.fft.fftfreq(n) * n
    k = np.hypot(f[:, None], f[None, :])
    amp = np.where(k > 0, np.maximum(k, 1.0) ** (-beta / 2), 0.0)
    field = np.fft.ifft2(amp * np.exp(2j * np.pi * rng.uniform(size=(n, n)))).real
    field = 0.5 * field / np.abs(field).max()  # log1p(expm1(field)) == field
    slope, tiles = spectrum_slope(np.expm1(field), np.ones((n, n), bool), 32)
    assert tiles == 16
    assert slope == pytest.approx(-beta, abs=0.4)
    assert spectrum_slope(np.ones((40, 40)), np.ones((40, 40), bool), 32) == (None, 1)


def _write(path: Path, data: np.ndarray, crs: str, transform, nodata=None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype="float64", crs=crs, transform=transform,
                       nodata=nodata) as ds:
        ds.write(data.astype(np.float64), 1)


def _ks_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(np.log(a)), np.sort(np.log(b))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def test_report_on_a_tiny_world_matches_hand_computed_statistics(tiny_world: Path,
                                                                 tmp_path: Path):
    with rasterio.open(tiny_world / "hr_ntl.tif") as ds:
        hr, crs, t = ds.read(1).astype(np.float64), ds.crs.to_string(), ds.transform
    h, w = (hr.shape[0] // 8) * 8, (hr.shape[1] // 8) * 8
    agg = hr[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))  # 480 m block means
    same = tmp_path / "same.tif"
    _write(same, agg, crs, from_origin(t.c, t.f, 480.0, 480.0))
    brighter = tmp_path / "brighter.tif"
    _write(brighter, 3.0 * agg, crs, from_origin(t.c, t.f, 480.0, 480.0))
    rep = report([tiny_world], [same, brighter])
    world, = rep["worlds"]
    assert world["factor"] == 8 and world["valid_px"] == agg.size
    assert world["lit_fraction"] == pytest.approx(float((agg >= 1.0).mean()))
    assert world["median_lit"] == pytest.approx(float(np.median(agg[agg >= 1.0])))
    to_same, to_brighter = rep["pairs"]
    assert to_same["ks"] == pytest.approx(0.0)
    assert to_same["d_slope"] == pytest.approx(0.0, abs=1e-9)
    assert to_same["lit_rel"] == pytest.approx(0.0)
    lit, lit3 = agg[agg >= 1.0], 3.0 * agg[3.0 * agg >= 1.0]
    assert to_brighter["ks"] == pytest.approx(_ks_by_hand(lit, lit3))
    expected = ((agg >= 1.0).mean() - (3 * agg >= 1.0).mean()) / (3 * agg >= 1.0).mean()
    assert to_brighter["lit_rel"] == pytest.approx(expected)
    assert to_brighter["ks_ok"] == (to_brighter["ks"] <= 0.2)


def test_cli_prints_the_table_and_writes_json(tiny_world: Path, tmp_path: Path, capsys):
    with rasterio.open(tiny_world / "lr_ntl.tif") as ds:
        real, crs, t = ds.read(1), ds.crs.to_string(), ds.transform
    path = tmp_path / "real.tif"
    _write(path, real, crs, t, nodata=-9999.0)
    out = tmp_path / "r.json"
    assert cli_main([str(tiny_world), "--real", str(path), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "KS (<= 0.2)" in text and "tiny-seed0" in text and "lit frac" in text
    assert json.loads(out.read_text())["pairs"][0]["world"] == "tiny-seed0"


@pytest.mark.parametrize("args, pattern", [
    (["{world}", "--real", "{tmp}/missing.tif"], r"cannot read real raster"),
    (["{tmp}", "--real", "{real}"], r"neither a synth world folder nor a DeepLightMD store"),
    (["{world}", "--real", "{real}", "--lit-threshold", "0"], r"lit threshold must be > 0"),
    (["{world}"], r"Missing option '--real'"),
])
def test_bad_input_is_one_error_line_exit_2(tiny_world: Path, tmp_path: Path, args, pattern):
    real = tmp_path / "real.tif"
    _write(real, np.ones((20, 20)), "EPSG:4326", from_origin(114.0, 31.0, 1 / 240, 1 / 240))
    argv = [a.format(world=tiny_world, tmp=tmp_path, real=real) for a in args]
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.synth.realism", *argv],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    import re
    assert re.search(pattern, lines[0]), lines[0]


def test_shanghai_numbers_are_reported(real_data: Path, tiny_world: Path):
    vnl = real_data / "shanghai_ntl_500m" / "viirs_vnl_v2_annual" / \
        "NTL_Shanghai_NPP-VIIRS_2013_2022_2020.tif"
    mgup = real_data / "shanghai_ntl_500m" / "urban_extent_mgup" / "real_sh.tif"
    if not vnl.is_file():
        pytest.skip(f"{vnl} not found")
    rep = report([tiny_world], [vnl], mgup)
    real, = rep["real"]
    assert real["valid_px"] == 33812  # the MGUP mask (PROVENANCE.md)
    assert 0.8 < real["lit_fraction"] < 1.0 and real["urban_rural_ratio"] > 2


def test_a_store_is_put_back_on_its_clip_grid(tiny_store: str, tiny_world: Path,
                                              tmp_path: Path):
    import zarr
    root = zarr.open_group(tiny_store, mode="r")
    n_clips = sum(root[s]["hr_ntl"].shape[0] for s in ("train", "val", "test"))
    size = root["train"]["hr_ntl"].shape[-1]
    real = tmp_path / "real.tif"  # 480 m pixels: 8 x 8 HR pixels of 60 m
    _write(real, np.ones((30, 30)), "EPSG:32650", from_origin(500_000.0, 3_400_000.0, 480, 480))
    rep = report([Path(tiny_store)], [real])
    world, = rep["worlds"]
    assert world["name"].startswith("store:") and world["factor"] == 8
    assert world["valid_px"] == n_clips * (size // 8) ** 2


def test_family_summary_by_hand():
    """Per real raster: medians over the worlds, whether the medians meet the goals, and how
    many worlds meet each goal and all three."""
    from deeplightmd.synth.realism import family_summary

    def pair(world, real, ks, d, lit):
        return {"world": world, "real": real, "ks": ks, "d_slope": d, "lit_rel": lit,
                "ks_ok": ks <= 0.2, "slope_ok": abs(d) <= 0.3, "lit_ok": abs(lit) <= 0.3}

    pairs = [pair("w0", "A", 0.10, -0.35, 0.05), pair("w1", "A", 0.21, 0.10, -0.10),
             pair("w2", "A", 0.15, 0.00, 0.40), pair("w0", "B", 0.30, 0.50, 0.5)]
    a, b = family_summary(pairs)
    assert (a["real"], a["worlds"], b["worlds"]) == ("A", 3, 1)
    assert (a["median_ks"], a["median_d_slope"], a["median_lit_rel"]) == pytest.approx(
        (0.15, 0.0, 0.05))
    assert a["median_ok"] and not b["median_ok"]
    assert (a["ks_ok"], a["slope_ok"], a["lit_ok"], a["all_ok"]) == (2, 2, 2, 0)
    assert (b["ks_ok"], b["all_ok"]) == (0, 0)
    none = family_summary([{**pair("w0", "C", 0.1, 0.0, 0.0), "d_slope": None,
                            "slope_ok": False}])[0]
    assert none["median_d_slope"] is None and not none["median_ok"]
