"""Multi-process (DDP, gloo) and resumable training give the weights of one uninterrupted process.

The end-to-end tests run ``deeplightmd bench`` as subprocesses on the tiny store with SRCNN for a
few steps, one torch thread per process (so the CPU kernels, and hence the float rounding, are
the same in every run):

* ``--nproc 2`` (two gloo ranks, each loading half of every global batch of 8) against one
  process: the same loss curve and weights up to float summation order (DDP averages two
  half-batch gradients where one process sums the whole batch);
* a run killed with SIGKILL once its first training state exists, then ``--resume``: the same
  weights and loss curve **bit for bit** (every input of a step — weights, Adam moments, scheduler
  step, RNG states, sampler position — is restored exactly, and the kernels are the same).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from benchmarks.distributed import DistContext, GlobalBatchSampler
from benchmarks.train_state import capture_rng, load_state, restore_rng, save_state
from benchmarks.training import loss_curve
from deeplightmd.cli import cli
from deeplightmd.errors import ConfigError

STEPS = 12
BENCH = ["--method", "srcnn", "--steps", str(STEPS), "--max-test-clips", "1", "--tile", "64",
         "--overlap", "0", "--no-leaderboard", "--quiet"]


# ------------------------------------------------------------------------------------------------
# global batches

@pytest.mark.parametrize(("n", "batch"), [(13, 4), (40, 8), (5, 8)])
def test_sampler_replays_the_shuffled_dataloader_of_one_process(n, batch):
    generator = torch.Generator()
    generator.manual_seed(7)
    loader = DataLoader(range(n), batch_size=batch, shuffle=True, drop_last=True,
                        generator=generator)
    if len(loader) == 0:  # the harness's rule for a split smaller than a batch
        loader = DataLoader(range(n), batch_size=n, shuffle=True, generator=generator)
    before = [b.tolist() for _ in range(4) for b in loader]
    sampler = GlobalBatchSampler(n, batch, seed=7)
    assert [b for e in range(4) for b in sampler.global_batches(e)] == before


def test_ranks_split_each_global_batch_into_disjoint_shares():
    single = GlobalBatchSampler(40, 8, seed=3)
    ranks = [GlobalBatchSampler(40, 8, seed=3, ctx=DistContext(r, 4)) for r in range(4)]
    for epoch in (0, 2, 1):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        for whole, *shares in zip(single, *ranks, strict=True):
            assert [i for share in shares for i in share] == whole
            assert all(len(share) == 2 for share in shares)
    single.set_epoch(1, start=3)
    assert list(single) == single.global_batches(1)[3:] and len(single) == 2
    with pytest.raises(ConfigError, match="cannot be split evenly over 3 processes"):
        GlobalBatchSampler(40, 8, seed=0, ctx=DistContext(0, 3))


# ------------------------------------------------------------------------------------------------
# training state files

def test_training_state_round_trip_is_atomic_and_checked(tmp_path):
    path = tmp_path / "run.train-state.pt"
    torch.manual_seed(5)
    np.random.seed(5)
    rng = capture_rng(torch.device("cpu"))
    expected = (torch.rand(3), np.random.rand(3))
    save_state({"identity": json.dumps({"a": 1}), "rng": [rng], "w": torch.ones(2)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    state = load_state(path, {"a": 1})
    restore_rng(state["rng"][0], torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3),
                                                                      expected[1])
    with pytest.raises(ConfigError, match="belongs to a run with other a"):
        load_state(path, {"a": 2})
    torch.save({"format": "deeplight-train-state", "evil": Path("x")}, tmp_path / "p.pt")
    with pytest.raises(ConfigError, match="cannot read training state"):
        load_state(tmp_path / "p.pt", {})  # weights_only refuses arbitrary objects
    (tmp_path / "junk.pt").write_text("not a state")
    with pytest.raises(ConfigError, match="cannot read training state"):
        load_state(tmp_path / "junk.pt", {})


def test_loss_curve_keeps_at_most_100_window_means():
    assert loss_curve([1.0, 2.0, 3.0]) == [1.0, 2.0, 3.0]
    curve = loss_curve([float(i) for i in range(250)])
    assert len(curve) == 84 and curve[0] == 1.0 and curve[-1] == 249.0  # the last window is short


# ------------------------------------------------------------------------------------------------
# the command line

def test_nproc_is_ignored_with_a_note_for_methods_without_the_torch_loop(tiny_store, tmp_path):
    out = tmp_path / "bicubic.json"
    result = CliRunner().invoke(cli, ["bench", "--method", "bicubic", "--store", tiny_store,
                                      "--out", str(out), "--nproc", "2", "--max-test-clips",
                                      "1", "--no-leaderboard", "--quiet"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == ["note: method 'bicubic' is not trained by the shared torch loop "
                     "(family interpolation); training in one process"]
    assert out.is_file()


def test_nproc_inside_torchrun_and_a_foreign_state_are_refused(tiny_store, tmp_path,
                                                               monkeypatch):
    runner = CliRunner()
    args = ["bench", "--store", tiny_store, *BENCH, "--out", str(tmp_path / "r.json")]
    with monkeypatch.context() as env:
        env.setenv("WORLD_SIZE", "2")
        env.setenv("RANK", "0")
        result = runner.invoke(cli, [*args, "--nproc", "2"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("Error: --nproc 2 inside a group of 2")
    save_state({"identity": json.dumps({"method": "edsr"})}, tmp_path / "r.train-state.pt")
    result = runner.invoke(cli, [*args, "--resume"])
    assert result.exit_code == 2
    assert "belongs to a run with other" in result.output.splitlines()[-1]


# ------------------------------------------------------------------------------------------------
# end to end: processes and SIGKILL

def test_bad_input_under_nproc_prints_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "bench", "--method", "srcnn",
                           "--store", str(tmp_path / "missing.zarr"), "--nproc", "2",
                           "--no-leaderboard", "--quiet", "--out", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: no DeepLightMD store at {str(tmp_path / 'missing.zarr')!r}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _bench(store: str, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "deeplightmd.cli", "bench", "--store", store,
                             *BENCH, "--out", str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out.with_suffix(".safetensors")))


def _training(out: Path) -> dict:
    return json.loads(out.read_text())["training"]


@pytest.fixture(scope="module")
def one_process(tiny_store, tmp_path_factory) -> Path:
    """The uninterrupted one-process run every other run is compared with."""
    out = tmp_path_factory.mktemp("one") / "srcnn.json"
    _finish(_bench(tiny_store, out))
    return out


@pytest.mark.slow
def test_two_gloo_processes_train_the_weights_of_one(tiny_store, one_process, tmp_path):
    out = tmp_path / "srcnn.json"
    _finish(_bench(tiny_store, out, "--nproc", "2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # rank 0 alone wrote, state removed
        "srcnn.json", "srcnn.safetensors", "srcnn.safetensors.json"]
    one, two = _training(one_process), _training(out)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert len(two["loss_curve"]) == STEPS
    np.testing.assert_allclose(two["loss_curve"], one["loss_curve"], rtol=0, atol=1e-6)
    a, b = _weights(one_process), _weights(out)
    delta = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 <= delta < 1e-5, delta   # measured 1.7e-7: summation order only


@pytest.mark.slow
def test_a_sigkilled_run_resumes_to_the_same_weights(tiny_store, one_process, tmp_path):
    out = tmp_path / "srcnn.json"
    state = out.with_suffix(".train-state.pt")
    proc = _bench(tiny_store, out, "--checkpoint-every", "2")
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL and not out.exists(), "finished before the kill"
    killed_at = torch.load(state, weights_only=True)["step"]
    assert 2 <= killed_at < STEPS
    _finish(_bench(tiny_store, out, "--checkpoint-every", "2", "--resume"))
    assert not state.exists()
    resumed, one = _training(out), _training(one_process)
    assert resumed["resumed_from_step"] == killed_at
    assert resumed["loss_curve"] == one["loss_curve"]
    a, b = _weights(one_process), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
