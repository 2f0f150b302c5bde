"""Multi-process (DDP) training: the process group, the global-batch sampler and the launcher.

A run with ``N`` processes trains on exactly the batches of a one-process run: every rank draws
the same per-epoch permutation from the run seed (:class:`GlobalBatchSampler`), cuts the same
global batch of ``B`` clips out of it, and reads its own contiguous ``B/N`` share. The loss of
every method is a mean over the batch's pixels, DDP averages the ranks' gradients, so the
gradient is the one-process gradient up to float summation order (docs/protocol.md).

Processes come from ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) or from :func:`launch_workers` (``deeplightmd bench --nproc N``),
which sets the same variables for ``N`` children of ``python -m benchmarks.train``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from torch.utils.data import Sampler

from deeplightmd.errors import ConfigError

#: environment variables that make a process one rank of a torchrun-style group
RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the training group (``world_size == 1``: no group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes checkpoints, results and prints summaries."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1


SINGLE = DistContext()


def context_from_env(env: Mapping[str, str] | None = None) -> DistContext:
    """The :class:`DistContext` described by torchrun's variables (:data:`SINGLE` when unset)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        ctx = DistContext(rank=int(env.get("RANK", "0")), world_size=int(env["WORLD_SIZE"]),
                          local_rank=int(env.get("LOCAL_RANK", "0")))
    except ValueError as exc:
        raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {exc}") from exc
    if ctx.world_size < 1 or not 0 <= ctx.rank < ctx.world_size:
        raise ConfigError(f"RANK {ctx.rank} is not in [0, WORLD_SIZE={ctx.world_size})")
    return ctx


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA runs with several ranks."""
    if device.type == "cuda" and ctx.active:
        if torch.cuda.device_count() <= ctx.local_rank:
            raise ConfigError(f"rank {ctx.rank} needs cuda:{ctx.local_rank} but only "
                              f"{torch.cuda.device_count()} CUDA device(s) are visible")
        return torch.device("cuda", ctx.local_rank)
    return device


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(ctx: DistContext, device: torch.device) -> Iterator[DistContext]:
    """Join the group of ``ctx`` (env:// rendezvous) for the duration; a no-op for one process.

    Objects holding the group (a ``DistributedDataParallel`` wrapper) must be dropped inside the
    block: gloo's destructor joins a thread that waits for the peers, which may be gone later.
    """
    if not ctx.active:
        yield ctx
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group(backend_for(device), init_method="env://", rank=ctx.rank,
                             world_size=ctx.world_size,
                             device_id=device if device.type == "cuda" else None)
    try:
        yield ctx
        tdist.barrier()  # no rank leaves while another is still in a collective
    finally:
        tdist.destroy_process_group()


def all_reduce_sum(values: Sequence[float], ctx: DistContext, device: torch.device
                   ) -> list[float]:
    """Element-wise float64 sum of ``values`` over the ranks (unchanged for one process)."""
    if not ctx.active:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t.tolist()


def gather_to_main(obj: Any, ctx: DistContext) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (a list in rank order); ``None`` on the other ranks."""
    if not ctx.active:
        return [obj]
    out: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    tdist.gather_object(obj, out, dst=0)
    return out


# ------------------------------------------------------------------------------------------------
# data: global batches, sharded per rank

class GlobalBatchSampler(Sampler[list[int]]):
    """Shuffled global batches of one epoch, of which this rank yields its contiguous share.

    Epoch ``e``'s permutation is replayed from the seed (a ``torch.Generator`` seeded with
    ``seed``; each epoch draws one int64, the permutation, and one discarded permutation), which is
    exactly what ``DataLoader(shuffle=True, drop_last=True, generator=seeded)`` drew before this
    sampler existed, so one-process runs keep their batches. A split smaller than the batch is one
    batch of all its clips per epoch. ``set_epoch(e, start=k)`` resumes an epoch at its ``k``-th
    batch; the sampler's whole state is ``(epoch, start)``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, ctx: DistContext = SINGLE) -> None:
        if n < 1:
            raise ConfigError("the training split is empty")
        self.n = int(n)
        self.global_batch = min(int(batch_size), self.n)
        if self.global_batch % ctx.world_size:
            raise ConfigError(f"the global batch of {self.global_batch} clips cannot be split "
                              f"evenly over {ctx.world_size} processes")
        self.share = self.global_batch // ctx.world_size
        self.seed = int(seed)
        self.ctx = ctx
        self.epoch, self.start = 0, 0
        self._replayed = -1
        self._generator = torch.Generator()
        self._permutation: list[int] = []

    @property
    def batches_per_epoch(self) -> int:
        """Global batches in an epoch (the last incomplete one is dropped)."""
        return self.n // self.global_batch

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its global batch ``start``."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ConfigError(f"batch {start} is outside an epoch of {self.batches_per_epoch}")
        self.epoch, self.start = int(epoch), int(start)

    def permutation(self, epoch: int) -> list[int]:
        """The clip order of ``epoch`` (the same on every rank)."""
        if epoch < self._replayed or self._replayed < 0:
            self._generator.manual_seed(self.seed)
            self._replayed = -1
        while self._replayed < epoch:
            torch.empty((), dtype=torch.int64).random_(generator=self._generator)
            self._permutation = torch.randperm(self.n, generator=self._generator).tolist()
            torch.randperm(self.n, generator=self._generator)
            self._replayed += 1
        return self._permutation

    def global_batches(self, epoch: int) -> list[list[int]]:
        """Every global batch of ``epoch``, in order."""
        perm, b = self.permutation(epoch), self.global_batch
        return [perm[i * b:(i + 1) * b] for i in range(self.batches_per_epoch)]

    def __iter__(self) -> Iterator[list[int]]:
        lo = self.ctx.rank * self.share
        for batch in self.global_batches(self.epoch)[self.start:]:
            yield batch[lo:lo + self.share]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start


# ------------------------------------------------------------------------------------------------
# launcher for `deeplightmd bench --nproc N`

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_workers(args: Sequence[str], nproc: int, poll_s: float = 0.2) -> int:
    """Run ``python -m benchmarks.train ARGS`` as ``nproc`` ranks on this machine; exit status.

    The children get torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). Rank 0 writes to this terminal; the
    others' stderr is shown only when one of them fails first (so bad input prints one
    ``Error:`` line, not one per rank). When a rank fails the others are terminated and its
    status returned.
    """
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
            "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc)}
    with tempfile.TemporaryDirectory(prefix="deeplight-ranks-") as tmp:
        logs = [Path(tmp) / f"rank{r}.err" for r in range(nproc)]
        procs = []
        for r in range(nproc):
            with open(logs[r], "wb") as err:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.train", *args],
                    env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
                    stderr=None if r == 0 else err, preexec_fn=_die_with_parent))
        failed = _wait_first_failure(procs, poll_s)
        if failed > 0:
            sys.stderr.write(logs[failed].read_text(errors="replace"))
        if failed < 0:
            return 0
        code = procs[failed].returncode
        return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as shells do


def _die_with_parent() -> None:
    """In a child on Linux: be killed with SIGKILL when the launcher dies (no orphaned ranks)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _wait_first_failure(procs: Sequence[subprocess.Popen], poll_s: float) -> int:
    """Wait for every process; on the first failure terminate the rest. Its index, or -1."""
    failed = -1
    try:
        while failed < 0 and any(p.poll() is None for p in procs):
            failed = next((i for i, p in enumerate(procs) if p.returncode not in (None, 0)), -1)
            time.sleep(0 if failed >= 0 else poll_s)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if failed < 0:
        failed = next((i for i, p in enumerate(procs) if p.returncode != 0), -1)
    return failed


__all__ = ["SINGLE", "DistContext", "GlobalBatchSampler", "all_reduce_sum", "backend_for",
           "context_from_env", "free_port", "gather_to_main", "launch_workers", "process_group",
           "rank_device"]
