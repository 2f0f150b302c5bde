"""The speed benchmarks measure what they claim (not how fast: timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.registry import get_method
from benchmarks.speed.build_speed import timed_build, warp_only
from benchmarks.speed.crop_read import crop_read_times, dataset_sample_times
from benchmarks.speed.peak import peak_rss_mb
from benchmarks.speed.train_speed import method_train_rates, synthetic_batch
from deeplightmd.store_format import MODALITIES, read_store_attrs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_child_peak_is_its_own_not_the_parents(tmp_path: Path):
    ballast = np.ones(400 * 2 ** 20 // 8)  # 400 MB touched in this (parent) process
    assert peak_rss_mb() > 400
    out = tmp_path / "peak.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed.peak", str(out), "platform"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip()  # the module really ran as __main__
    child = json.loads(out.read_text())["peak_rss_mb"]
    assert 1 < child < 200, child  # ru_maxrss would report the parent's > 400 MB here
    del ballast


def test_peak_keeps_the_exit_status(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed.peak", str(tmp_path / "p.json"),
                           "deeplightmd.cli", "info", str(tmp_path / "missing.zarr")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and (tmp_path / "p.json").exists()


def test_warp_only_reads_every_clip_of_the_store(tiny_world: Path, tiny_store: str):
    res = warp_only("tiny", tiny_world, tiny_store)
    assert res["clips"] == sum(read_store_attrs(tiny_store)["splits"].values())
    assert res["runs"] <= res["clips"] and res["hr_mpx_per_s"] > 0


def test_timed_build_counts_the_build_not_the_child_imports(tiny_world: Path, tiny_store: str,
                                                            tmp_path: Path):
    res = timed_build("tiny", tiny_world, str(tmp_path / "b.zarr"), 1)
    assert res["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
    # the child's interpreter start-up and imports are outside cpu_s, inside child_cpu_s
    assert 0 < res["cpu_s"] < res["child_cpu_s"]


def test_synthetic_batch_has_the_protocol_shapes():
    batch = synthetic_batch(2, 4, 8, torch.device("cpu"))
    assert set(batch) == set(MODALITIES)
    assert batch["lr_ntl"].shape == (2, 1, 4, 4) and batch["dmo"].shape == (2, 7, 32, 32)
    assert set(batch["isp"].unique().tolist()) <= {0.0, 1.0}


def test_train_rates_skip_untrainable_methods_and_scale_to_the_budget():
    rows = method_train_rates(["bicubic", "srcnn"], "small", torch.device("cpu"), steps=2,
                              warmup=1)
    assert [r["method"] for r in rows] == ["srcnn"]  # bicubic is not trainable: skipped
    row = rows[0]
    assert row["batch"] == 8 and row["lr_crop"] == 16 and row["budget_steps"] == 300
    assert row["budget_hours"] == pytest.approx(300 / row["steps_per_s"] / 3600)
    assert row["time_per_step_over_edsr"] is None  # no EDSR in this run


def test_crop_read_compares_both_layouts_on_identical_values():
    res = crop_read_times(bands=2, clips=2, side=64, crop=16, crops=3, inner=16)
    assert res["chunk_per_clip"]["crop_read_ms"] > 0 and res["sharded"]["crop_read_ms"] > 0
    assert res["crop_read_speedup"] == pytest.approx(res["chunk_per_clip"]["crop_read_ms"]
                                                     / res["sharded"]["crop_read_ms"])


def test_dataset_sample_times_cover_both_layouts(tiny_store: str):
    res = dataset_sample_times(tiny_store, lr_clip=16, clips=2, crop=4, passes=1, inners=(0, 32))
    assert res["hr_clip"] == 128 and set(res["layouts"]) == {"chunk_per_clip", "inner_32"}
    assert all(v["ms_per_sample"] > 0 for v in res["layouts"].values())


def test_bound_rows_show_both_targets_and_the_load():
    from benchmarks.speed.run_all import bound_rows

    build = {"cpu_s": 10.0, "seconds": 11.0, "clips": 100, "workers": 1, "scheduler": "sync",
             "cpu_s_per_clip": 0.1, "cpu_efficiency": 0.91, "load_1min": [1.0, 2.0],
             "fingerprint": "f"}
    two = {**build, "seconds": 6.0, "cpu_s": 11.0, "workers": 2, "scheduler": "processes",
           "cpu_s_per_clip": 0.11, "cpu_efficiency": 0.92}
    pb = {"preset": "large", "builds": [build, two], "floor": {"cpu_s": 2.0},
          "warp_only": {"warm": {"cpu_s": 6.0}, "cold": {"cpu_s": 7.0}},
          "ratios": {"build_w1_over_bound_cpu": 0.8, "build_w1_over_bound_wall": 0.7,
                     "build_w1_over_cold_bound_cpu": 0.9}}
    (name1, value1, ref1, ratio1), (name2, value2, _, ratio2) = bound_rows(pb)
    assert "large, 1 worker" in name1 and "load 1.0 → 2.0" in value1
    assert "8.0 CPU s = floor 2.0 + warm warp 6.0 (cold 7.0)" == ref1
    assert ratio1.startswith("0.800 CPU, 0.700 wall (target >= 0.8); 0.900")
    assert "2 worker processes" in name2 and "CPU efficiency 0.92" in value2
    assert ratio2.startswith("1.83x speed-up") and "same fingerprint: True" in ratio2


@pytest.mark.parametrize("name", ["edsr", "swinir", "fusion-edsr", "deeplightsr"])
def test_step_modes_train_every_network_kind_on_cpu(name: str):
    """The GPU timing modes run on the CPU too: finite loss, float32 weights, weights move."""
    from benchmarks.method import MethodContext
    from benchmarks.runner import make_method
    from benchmarks.speed.train_speed import STEP_MODES, step_rate

    torch.manual_seed(0)
    method = make_method(get_method(name), MethodContext(ratio=8, device=torch.device("cpu")),
                         "small")
    before = [p.detach().clone() for p in method.network.parameters()]
    rate = step_rate(method, synthetic_batch(2, 4, 8, torch.device("cpu")), steps=1, warmup=1,
                     mode=STEP_MODES["bf16-cl"])
    assert rate["mode"] == "bf16-cl" and rate["steps_per_s"] > 0
    after = list(method.network.parameters())
    assert all(p.dtype == torch.float32 for p in after)     # autocast leaves the weights alone
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    conv = next(m for m in method.network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_step_modes_compare_against_the_first_mode_and_reject_unknown_names():
    from benchmarks.speed.train_speed import parse_modes

    rows = method_train_rates(["edsr"], "small", torch.device("cpu"), steps=1, warmup=0,
                              modes=parse_modes("fp32,cl"))
    assert [r["mode"] for r in rows] == ["fp32", "cl"]
    assert rows[0]["speedup_over_first_mode"] is None
    assert rows[1]["speedup_over_first_mode"] == pytest.approx(
        rows[1]["steps_per_s"] / rows[0]["steps_per_s"])
    with pytest.raises(ValueError, match=r"fp16.*expected.*bf16-cl"):
        parse_modes("fp32,fp16")
