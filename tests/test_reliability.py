"""Reliability of ``deeplightmd build``: SIGKILL at random points then ``--resume``, per-chunk
CRC32C checksums that ``validate`` checks (naming split, variable and clip), and concurrent
readers that never see a clip flagged done before all its data is written."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from deeplightmd.build import build_store, load_manifest
from deeplightmd.build.inspect import check_chunk_checksums, validate_store
from deeplightmd.store_format import MODALITIES, ROOT_ATTR, SPLITS, read_store_attrs


def _build_cmd(world: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "deeplightmd.cli", "build", "--preset", "tiny", "--world",
            str(world), "--out", str(out), "--quiet"]


def _done_count(out: Path) -> int:
    """Clips flagged done so far (one chunk object per done clip; 0-flags are never written)."""
    total = 0
    for split in SPLITS:
        d = out / split / "done" / "c"
        if d.is_dir():
            total += len(os.listdir(d))
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_point_then_resume_gives_the_clean_fingerprint(
        tiny_store, tiny_world, tmp_path, seed):
    rng = random.Random(seed)
    attrs = read_store_attrs(tiny_store)
    total = sum(attrs["splits"].values())
    # kill after k done clips (k == total: during the region/read-back stage) + a random delay
    k, delay = rng.randint(1, total), rng.uniform(0.0, 0.15)
    out = tmp_path / f"killed{seed}.zarr"
    proc = subprocess.Popen(_build_cmd(tiny_world, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while proc.poll() is None and _done_count(out) < k and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        assert proc.poll() is None, f"the build finished before the kill point (k={k})"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    killed = zarr.open_group(str(out), mode="r", use_consolidated=False).attrs[ROOT_ATTR]
    assert killed["complete"] is False and killed["fingerprint"] is None
    done = _done_count(out)
    assert done >= min(k, total)
    manifest = load_manifest("tiny", world_dir=tiny_world)
    resumed = build_store(manifest, str(out), resume=True, progress=False)
    assert resumed["fingerprint"] == attrs["fingerprint"]
    # done clips are kept: only the one run in flight (<= 8 clips) is rewritten besides the rest
    assert resumed["build"]["clips_written"] <= total - done + 7
    if seed == 0:
        assert validate_store(str(out)) == []


def test_validate_names_the_split_variable_and_clip_of_a_flipped_byte(tiny_store, tmp_path):
    copy = tmp_path / "flipped.zarr"
    shutil.copytree(tiny_store, copy)
    assert check_chunk_checksums(str(copy)) == []
    rng = np.random.default_rng(7)
    for rel, label in [("val/dmo/c/2/0/0/0", "val/dmo clip 2"),
                       ("train/dem/c/5/0/0", "train/dem clip 5"),
                       ("test/bounds/c/0/0", "test/bounds chunk c/0/0")]:
        chunk = copy / rel
        blob = bytearray(chunk.read_bytes())
        blob[int(rng.integers(0, len(blob)))] ^= 1 << int(rng.integers(0, 8))
        chunk.write_bytes(bytes(blob))
        problems = check_chunk_checksums(str(copy))
        assert any(p.startswith(f"{label}: CRC32C checksum mismatch") for p in problems), problems
    problems = validate_store(str(copy))
    assert sum("CRC32C checksum mismatch" in p for p in problems) == 3, problems
    # every reader verifies the trailer: the flipped chunk fails instead of returning wrong data
    with pytest.raises(ValueError, match="checksum"):
        zarr.open_array(str(copy), path="val/dmo", mode="r")[2]
    region = copy / "regions" / "Beijing" / "hr" / "hr_ntl" / "c" / "0" / "0"
    blob = bytearray(region.read_bytes())
    blob[3] ^= 0xFF
    region.write_bytes(bytes(blob))
    assert any(p.startswith("regions/Beijing/hr/hr_ntl chunk c/0/0: CRC32C")
               for p in check_chunk_checksums(str(copy)))
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "validate", str(copy)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: store") and "CRC32C checksum mismatch" in last


def test_concurrent_reader_never_sees_an_incomplete_done_clip(tiny_store, tiny_world, tmp_path):
    """Read done flags while a build runs; each done clip must already hold its final data."""
    out = tmp_path / "live.zarr"
    reference = {s: zarr.open_group(tiny_store, mode="r", path=s) for s in SPLITS}
    checked: dict[str, set[int]] = {s: set() for s in SPLITS}
    proc = subprocess.Popen(_build_cmd(tiny_world, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    polls_while_running = 0
    try:
        while proc.poll() is None:
            for split in SPLITS:
                try:
                    group = zarr.open_group(str(out), mode="r", path=split,
                                            use_consolidated=False)
                    done = group["done"][...]
                except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
                    continue  # the store is still being created
                polls_while_running += 1
                for i in np.flatnonzero(done):
                    if i in checked[split]:
                        continue
                    for name in MODALITIES:
                        np.testing.assert_array_equal(group[name][i], reference[split][name][i],
                                                      err_msg=f"{split}/{name} clip {i}")
                    checked[split].add(int(i))
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-500:]
    assert polls_while_running > 0
    seen = sum(len(v) for v in checked.values())
    assert seen >= 5, f"only {seen} done clips were observed during the build"
    assert read_store_attrs(str(out))["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]
