"""The shared training loop for :class:`~benchmarks.method.TorchMethod` methods.

Adam with cosine decay over ``protocol.steps`` steps of random aligned crops; every
``protocol.val_every`` steps (and at the end) the mean L1 in normalised space on the validation
clips is measured and the best weights are kept — checkpoint selection never looks at the test
split. A :class:`TrainSession` says how the run executes without changing what it learns: on
several DDP processes (:mod:`benchmarks.distributed`) and with a periodic, resumable training
state (:mod:`benchmarks.train_state`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from benchmarks.distributed import (
    SINGLE,
    DistContext,
    GlobalBatchSampler,
    all_reduce_sum,
    gather_to_main,
    process_group,
)
from benchmarks.protocol import TrainProtocol, seed_everything
from benchmarks.train_state import capture_rng, identity_key, load_state, restore_rng, save_state
from deeplightmd.errors import ConfigError

if TYPE_CHECKING:
    from benchmarks.method import Batch, Method, TorchMethod


def batch_to_device(batch: dict[str, Any], device: torch.device) -> Batch:
    """Move the float32 image tensors of a collated sample dict to ``device``.

    Metadata (``clip_id``, float64 ``bounds``, ``crs``) stays behind.
    """
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()
            if isinstance(v, torch.Tensor) and v.dtype == torch.float32}


@contextmanager
def _through(method: TorchMethod, wrapper: nn.Module | None) -> Iterator[None]:
    """Let ``method.forward`` call ``wrapper`` (the DDP module) instead of the bare network."""
    if wrapper is None:
        yield
        return
    network = method.network
    method.network = wrapper
    try:
        yield
    finally:
        method.network = network


@torch.no_grad()
def validation_l1(method: TorchMethod, val: Dataset, batch_size: int = 1,
                  ctx: DistContext = SINGLE) -> float:
    """Mean L1 (normalised space) of the method's prediction against ``hr_ntl`` over ``val``.

    With several processes each rank scores every ``world_size``-th clip and the sums are added.
    """
    if ctx.active:
        val = Subset(val, range(ctx.rank, len(val), ctx.world_size))
    loader = DataLoader(val, batch_size=batch_size, shuffle=False)
    total, count = 0.0, 0
    for raw in loader:
        batch = batch_to_device(raw, method.context.device)
        pred = method.predict(batch)
        total += torch.nn.functional.l1_loss(pred, batch["hr_ntl"], reduction="sum").item()
        count += batch["hr_ntl"].numel()
    total, count = all_reduce_sum([total, count], ctx, method.context.device)
    return total / max(count, 1)


@dataclass(frozen=True)
class TrainSession:
    """How a training run executes, not what it learns.

    Attributes:
        dist: this process's rank in the DDP group (default: one process).
        state_path: where the periodic training state is written (``None``: never).
        state_every: steps between training states (``None``: ``protocol.val_every``; the final
            step is always written).
        resume: continue from ``state_path`` when it exists.
        identity: extra settings a state must match to be resumed (e.g. the store fingerprint).
    """

    dist: DistContext = SINGLE
    state_path: Path | None = None
    state_every: int | None = None
    resume: bool = False
    identity: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state_every is not None and self.state_every < 1:
            raise ConfigError(f"steps between training states must be >= 1, got "
                              f"{self.state_every}")


def loss_curve(losses: list[float], points: int = 100) -> list[float]:
    """Mean loss over at most ``points`` consecutive windows of equal steps (per step if fewer)."""
    width = max(1, math.ceil(len(losses) / points))
    return [sum(w) / len(w) for w in (losses[i:i + width] for i in range(0, len(losses), width))]


def _state_identity(method: TorchMethod, protocol: TrainProtocol, session: TrainSession
                    ) -> dict[str, Any]:
    protocol_fields = {k: v for k, v in protocol.to_dict().items() if k != "num_workers"}
    protocol_fields["device"] = str(protocol.device).split(":")[0]  # cuda:RANK on each rank
    return {"method": method.name, "hparams": method.hparams, "protocol": protocol_fields,
            "processes": session.dist.world_size, **session.identity}


def train_method(method: TorchMethod, train: Dataset, val: Dataset | None,
                 protocol: TrainProtocol, progress: bool = True,
                 session: TrainSession | None = None) -> dict[str, Any]:
    """Train ``method.network`` under ``protocol``; return a report.

    The best-on-val weights are kept. ``session`` runs it on several processes and/or writes a
    resumable training state; the weights it reaches do not depend on either (docs/protocol.md).
    """
    session = session or TrainSession()
    if session.resume and session.state_path is None:
        raise ConfigError("--resume needs a training state path: give the run an output (--out)")
    ctx = session.dist
    generator = seed_everything(protocol.seed)
    device = method.context.device
    sampler = GlobalBatchSampler(len(train), protocol.batch_size, protocol.seed, ctx)
    # the generator only seeds DataLoader workers: crops and batches come from the seed above
    loader = DataLoader(train, batch_sampler=sampler, num_workers=protocol.num_workers,
                        generator=generator)
    if val is not None and protocol.val_clips is not None and len(val) > protocol.val_clips:
        val = Subset(val, range(protocol.val_clips))
    network = method.network
    optimizer = torch.optim.Adam(network.parameters(), lr=protocol.learning_rate,
                                 weight_decay=protocol.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: 0.5 * (1 + math.cos(math.pi * min(s, protocol.steps) / protocol.steps)))
    identity = _state_identity(method, protocol, session)
    every = session.state_every or protocol.val_every
    run: dict[str, Any] = {"step": 0, "best_val": math.inf, "best_step": 0, "best_state": None,
                           "losses": [], "seconds": 0.0, "resumed_from": None}
    if session.resume and session.state_path is not None and session.state_path.exists():
        state = load_state(session.state_path, identity)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"][ctx.rank], device)
        if tuple(state["sampler"]) != divmod(int(state["step"]), sampler.batches_per_epoch):
            raise ConfigError(f"training state {str(session.state_path)!r} stopped at epoch, "
                              f"batch {tuple(state['sampler'])}, which step {state['step']} does "
                              "not reach with this split and batch size")
        run.update(step=int(state["step"]), best_val=float(state["best_val"]),
                   best_step=int(state["best_step"]), best_state=state["best_state"],
                   losses=state["losses"].tolist(), seconds=float(state["seconds"]),
                   resumed_from=int(state["step"]))
    start = time.perf_counter() - run["seconds"]
    with process_group(ctx, device):
        wrapper = DistributedDataParallel(
            network, device_ids=[device] if device.type == "cuda" else None) if ctx.active \
            else None
        bar = tqdm(total=protocol.steps, initial=run["step"], desc=f"train {method.name}",
                   disable=not (progress and ctx.is_main), leave=False, dynamic_ncols=True)
        while run["step"] < protocol.steps:
            epoch, first = divmod(run["step"], sampler.batches_per_epoch)
            sampler.set_epoch(epoch, first)
            if hasattr(train, "set_epoch"):
                train.set_epoch(epoch)
            for raw in loader:
                run["step"] += 1
                step = run["step"]
                network.train()
                batch = batch_to_device(raw, device)
                with _through(method, wrapper):
                    loss = method.loss(method.forward(batch), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if protocol.grad_clip:
                    torch.nn.utils.clip_grad_norm_(network.parameters(), protocol.grad_clip)
                optimizer.step()
                scheduler.step()
                run["losses"].append(all_reduce_sum([loss.item()], ctx, device)[0]
                                     / ctx.world_size)
                bar.update(1)
                bar.set_postfix(loss=f"{run['losses'][-1]:.4f}")
                last = step == protocol.steps
                if val is not None and (step % protocol.val_every == 0 or last):
                    score = validation_l1(method, val, ctx=ctx)
                    if score < run["best_val"]:
                        run.update(best_val=score, best_step=step,
                                   best_state=copy.deepcopy(network.state_dict()))
                if session.state_path is not None and (step % every == 0 or last):
                    _write_state(session.state_path, run, identity, network, optimizer,
                                 scheduler, ctx, device, time.perf_counter() - start,
                                 divmod(step, sampler.batches_per_epoch))
                if last:
                    break
        bar.close()
        del wrapper  # before the group goes (see process_group)
    if run["best_state"] is not None:
        network.load_state_dict(run["best_state"])
    losses = run["losses"]
    tail = losses[-max(1, len(losses) // 10):]
    return {
        "steps": protocol.steps,
        "train_seconds": time.perf_counter() - start,
        "first_loss": losses[0] if losses else None,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "loss_curve": loss_curve(losses),
        "best_val_l1": None if run["best_val"] == math.inf else run["best_val"],
        "best_step": run["best_step"],
        "processes": ctx.world_size,
        "resumed_from_step": run["resumed_from"],
    }


def _write_state(path: Path, run: Mapping[str, Any], identity: Mapping[str, Any],
                 network: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, ctx: DistContext,
                 device: torch.device, seconds: float, sampler: tuple[int, int]) -> None:
    """Gather every rank's RNG state and let rank 0 write the training state of ``run``.

    ``sampler`` is the data sampler's position after the step: ``(epoch, batch in epoch)``.
    """
    rng = gather_to_main(capture_rng(device), ctx)
    if rng is None:
        return
    save_state({"identity": identity_key(identity), "step": run["step"], "sampler": sampler,
                "network": network.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "best_val": run["best_val"],
                "best_step": run["best_step"], "best_state": run["best_state"],
                "losses": torch.tensor(run["losses"], dtype=torch.float64),
                "seconds": seconds, "rng": rng}, path)


def shared_loop(cls: type) -> bool:
    """Whether ``cls`` trains with :func:`train_method` (a :class:`TorchMethod` keeping its fit)."""
    from benchmarks.method import TorchMethod

    return isinstance(cls, type) and issubclass(cls, TorchMethod) and cls.fit is TorchMethod.fit


def single_process_reason(cls: type, evaluating_only: bool = False) -> str | None:
    """Why a run of ``cls`` cannot use several processes (``None`` when it can)."""
    if evaluating_only:
        return "nothing is trained when evaluating a --checkpoint"
    if not shared_loop(cls):
        return (f"method {getattr(cls, 'name', cls)!r} is not trained by the shared torch loop "
                f"(family {getattr(cls, 'family', '?')})")
    return None


def fit_method(method: Method, train: Dataset, val: Dataset | None, protocol: TrainProtocol,
               progress: bool = True, session: TrainSession | None = None) -> dict[str, Any]:
    """``method.fit``; methods of the shared loop also get ``session`` (processes, resuming)."""
    if shared_loop(type(method)):
        return train_method(method, train, val, protocol, progress=progress,  # type: ignore[arg-type]
                            session=session)
    return dict(method.fit(train, val, protocol, progress=progress) or {})


__all__ = ["TrainSession", "batch_to_device", "fit_method", "loss_curve", "shared_loop",
           "single_process_reason", "train_method", "validation_l1"]
