"""Reliability of ``deeplightmd build``: SIGKILL at random points and at instants swept over a
whole build (store creation included) then ``--resume``, per-chunk CRC32C checksums and the
chunk manifest that ``validate``, ``bench`` and the dataset check (naming split, variable and
clip), the build lock (two builds to one ``--out``), and concurrent readers that never see a
clip flagged done before all its data is written."""

from __future__ import annotations

import contextlib
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

from deeplightmd.access import DeepLightDataset
from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.inspect import check_chunk_checksums, validate_store
from deeplightmd.builder.store import store_state
from deeplightmd.errors import StoreError
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


#: a fork server: imports the toolkit once (no zarr I/O, so no event-loop thread yet), then per
#: stdin line ``run<TAB>arg…`` forks a child that runs ``deeplightmd arg…`` and prints its pid;
#: ``wait<TAB>pid`` prints the child's exit status. Each build then starts in milliseconds.
_FORK_SERVER = """
import os, sys
import deeplightmd.builder.cli, deeplightmd.builder.pipeline  # noqa: F401 (imported once)
from deeplightmd.cli import cli
for line in sys.stdin:
    cmd, *args = line.rstrip("\\n").split("\\t")
    if cmd == "run":
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            try:
                cli.main(args=args, prog_name="deeplightmd")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            os._exit(code)
        print(pid, flush=True)
    elif cmd == "wait":
        print(os.waitstatus_to_exitcode(os.waitpid(int(args[0]), 0)[1]), flush=True)
"""


class ForkServer:
    """Client of :data:`_FORK_SERVER`."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def _ask(self, *words: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\t".join(words) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, argv: list[str]) -> int:
        """Fork a child running ``deeplightmd argv``; its pid."""
        return self._ask("run", *argv)

    def wait(self, pid: int) -> int:
        """The exit code of child ``pid`` (negative: killed by that signal)."""
        return self._ask("wait", str(pid))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _kill_at(server: ForkServer, argv: list[str], delay: float, out: Path,
             until: str | None = None) -> str:
    """Start a build, SIGKILL it after ``delay`` s (or, with ``until``, as soon as that path
    under ``out`` exists); return the store's state after the kill."""
    pid = server.start(argv)
    try:
        if until is None:
            time.sleep(delay)
        else:
            deadline = time.time() + 120
            while not (out / until).exists() and time.time() < deadline:
                time.sleep(0.0005)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)   # a finished child is a zombie until waited for
        server.wait(pid)
    return store_state(str(out))


@pytest.mark.slow
def test_sigkill_swept_over_a_whole_build_always_resumes_to_the_clean_fingerprint(
        tiny_store, tiny_world, tmp_path):
    """Kill ``build`` at 20 instants from its start to its completion (among them the moments
    the store folder, its root metadata and its first array appear); ``--resume`` — also with
    nothing yet to resume — must give the clean fingerprint every time."""
    clean = read_store_attrs(tiny_store)["fingerprint"]
    manifest = load_manifest("tiny", world_dir=tiny_world)
    server = ForkServer()
    try:
        argv = _build_cmd(tiny_world, tmp_path / "timed.zarr")[3:]
        start = time.perf_counter()
        assert server.wait(server.start(argv)) == 0
        duration = time.perf_counter() - start
        assert read_store_attrs(str(tmp_path / "timed.zarr"))["fingerprint"] == clean
        polled = [".", "zarr.json", "train/zarr.json"]
        n_timed = 20 - len(polled)
        instants = [(duration * (k + 0.5) / n_timed, None) for k in range(n_timed)]
        instants += [(0.0, p) for p in polled]
        states = []
        for i, (delay, until) in enumerate(instants):
            out = tmp_path / f"k{i}.zarr"
            argv = _build_cmd(tiny_world, out)[3:]
            states.append(_kill_at(server, argv, delay, out, until))
            resumed = build_store(manifest, str(out), resume=True, progress=False)
            assert resumed["fingerprint"] == clean, (i, delay, until, states[-1])
            assert store_state(str(out)) == "complete"
            shutil.rmtree(out)
    finally:
        server.close()
    # the sweep saw the build before the store existed, while it was created or written
    assert "absent" in states and "incomplete" in states, states
    assert {"half-created", "incomplete"} & set(states[n_timed:]), states


def test_a_build_killed_inside_its_first_metadata_write_is_half_created_and_resumes(
        tiny_store, tiny_world, tmp_path):
    """zarr's LocalStore writes ``zarr.<hex>.partial`` and renames it to ``zarr.json``; a kill in
    between leaves a folder holding only that temporary file (seen once in CI by the sweep
    above). It is a half-created store: a plain build and ``--resume`` create it again, while a
    folder holding anything else stays ``other`` and is never deleted."""
    manifest = load_manifest("tiny", world_dir=tiny_world)
    clean = read_store_attrs(tiny_store)["fingerprint"]
    for resume in (False, True):
        out = tmp_path / f"killed-{resume}.zarr"
        out.mkdir()
        (out / "zarr.0123456789abcdef0123456789abcdef.partial").write_bytes(b'{"zarr_for')
        assert store_state(str(out)) == "half-created"
        attrs = build_store(manifest, str(out), resume=resume, progress=False)
        assert attrs["fingerprint"] == clean
        assert not list(out.glob("*.partial"))
    other = tmp_path / "user.zarr"
    other.mkdir()
    (other / "zarr.0123456789abcdef0123456789abcdef.partial").write_bytes(b"{")
    (other / "notes.txt").write_text("mine")
    assert store_state(str(other)) == "other"
    with pytest.raises(StoreError, match="no DeepLightMD store"):
        build_store(manifest, str(other), resume=True, progress=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_second_build_to_the_same_out_refuses_and_the_first_completes(
        tiny_store, tiny_world, tmp_path):
    out = tmp_path / "shared.zarr"
    first = subprocess.Popen(_build_cmd(tiny_world, out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "zarr.json").exists() and first.poll() is None and \
                time.time() < deadline:
            time.sleep(0.002)
        assert first.poll() is None, "the first build ended before the second started"
        os.kill(first.pid, signal.SIGSTOP)   # keep it mid-build (holding its lock) meanwhile
        for extra in ([], ["--resume"], ["--overwrite"]):
            second = subprocess.run([*_build_cmd(tiny_world, out), *extra], capture_output=True,
                                    text=True, timeout=300)
            lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
            assert second.returncode == 2 and len(lines) == 1, second.stderr[-1500:]
            assert lines[0].startswith("Error: another build is writing"), lines
    finally:
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-1500:]
    assert read_store_attrs(str(out))["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]


def test_resume_with_nothing_to_resume_builds_from_scratch(tiny_store, tiny_world, tmp_path):
    manifest = load_manifest("tiny", world_dir=tiny_world)
    out = tmp_path / "fresh.zarr"
    attrs = build_store(manifest, str(out), resume=True, progress=False)
    assert attrs["fingerprint"] == read_store_attrs(tiny_store)["fingerprint"]


def test_a_deleted_chunk_is_named_by_validate_and_refused_by_bench_and_the_dataset(
        tiny_store, tmp_path):
    copy = tmp_path / "holed.zarr"
    shutil.copytree(tiny_store, copy)
    (copy / "val" / "hr_ntl" / "c" / "2" / "0" / "0").unlink()
    (copy / "regions" / "Beijing" / "hr" / "dem" / "c" / "0" / "0").unlink()
    problems = validate_store(str(copy))
    assert "val/hr_ntl clip 2: chunk object val/hr_ntl/c/2/0/0 is missing" in problems
    assert any(p.startswith("regions/Beijing/hr/dem chunk c/0/0: chunk object") for p in problems)
    with pytest.raises(StoreError, match=r"fails its integrity check: regions/Beijing/hr/dem "
                                         r"chunk c/0/0: chunk object .* is missing \(\+1 more\)"):
        DeepLightDataset(str(copy), "test")
    assert len(DeepLightDataset(str(copy), "test", verify="none")) == 5
    proc = subprocess.run([sys.executable, "-m", "deeplightmd.cli", "bench", "--method", "edsr",
                           "--store", str(copy), "--out", str(tmp_path / "r.json"),
                           "--leaderboard", str(tmp_path / "lb.json"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-1500:]
    assert "fails its integrity check: regions/Beijing/hr/dem chunk c/0/0" in lines[0]
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.safetensors").exists()
    assert not (tmp_path / "lb.json").exists()
