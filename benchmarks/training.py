"""The shared training loop for :class:`~benchmarks.method.TorchMethod` methods.

Adam with cosine decay over ``protocol.steps`` steps of random aligned crops; every
``protocol.val_every`` steps (and at the end) the mean L1 in normalised space on the validation
clips is measured and the best weights are kept — checkpoint selection never looks at the test
split.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from benchmarks.protocol import TrainProtocol, seed_everything

if TYPE_CHECKING:
    from benchmarks.method import Batch, TorchMethod


def batch_to_device(batch: dict[str, Any], device: torch.device) -> Batch:
    """Move the float32 image tensors of a collated sample dict to ``device``.

    Metadata (``clip_id``, float64 ``bounds``, ``crs``) stays behind.
    """
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()
            if isinstance(v, torch.Tensor) and v.dtype == torch.float32}


def _forever(loader: DataLoader, dataset: Dataset) -> Iterator[dict[str, Any]]:
    """Endless batches; each pass is a new epoch, so datasets with ``set_epoch`` draw new crops."""
    epoch = 0
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


@torch.no_grad()
def validation_l1(method: TorchMethod, val: Dataset, batch_size: int = 1) -> float:
    """Mean L1 (normalised space) of the method's prediction against ``hr_ntl`` over ``val``."""
    loader = DataLoader(val, batch_size=batch_size, shuffle=False)
    total, count = 0.0, 0
    for raw in loader:
        batch = batch_to_device(raw, method.context.device)
        pred = method.predict(batch)
        total += torch.nn.functional.l1_loss(pred, batch["hr_ntl"], reduction="sum").item()
        count += batch["hr_ntl"].numel()
    return total / max(count, 1)


def train_method(method: TorchMethod, train: Dataset, val: Dataset | None,
                 protocol: TrainProtocol, progress: bool = True) -> dict[str, Any]:
    """Train ``method.network`` under ``protocol``; return a report.

    The best-on-val weights are kept.
    """
    generator = seed_everything(protocol.seed)
    device = method.context.device
    loader = DataLoader(train, batch_size=protocol.batch_size, shuffle=True, drop_last=True,
                        num_workers=protocol.num_workers, generator=generator)
    if len(loader) == 0:
        loader = DataLoader(train, batch_size=len(train), shuffle=True, generator=generator)
    if val is not None and protocol.val_clips is not None and len(val) > protocol.val_clips:
        val = Subset(val, range(protocol.val_clips))
    optimizer = torch.optim.Adam(method.network.parameters(), lr=protocol.learning_rate,
                                 weight_decay=protocol.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: 0.5 * (1 + math.cos(math.pi * min(s, protocol.steps) / protocol.steps)))
    best_val, best_step, best_state = math.inf, 0, None
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(total=protocol.steps, desc=f"train {method.name}", disable=not progress,
               leave=False, dynamic_ncols=True)
    for step, raw in zip(range(1, protocol.steps + 1), _forever(loader, train), strict=False):
        method.network.train()
        batch = batch_to_device(raw, device)
        loss = method.loss(method.forward(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if protocol.grad_clip:
            torch.nn.utils.clip_grad_norm_(method.network.parameters(), protocol.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if val is not None and (step % protocol.val_every == 0 or step == protocol.steps):
            score = validation_l1(method, val)
            if score < best_val:
                best_val, best_step = score, step
                best_state = copy.deepcopy(method.network.state_dict())
    bar.close()
    if best_state is not None:
        method.network.load_state_dict(best_state)
    tail = losses[-max(1, len(losses) // 10):]
    return {
        "steps": protocol.steps,
        "train_seconds": time.perf_counter() - start,
        "first_loss": losses[0] if losses else None,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "best_val_l1": None if best_val == math.inf else best_val,
        "best_step": best_step,
    }


__all__ = ["batch_to_device", "train_method", "validation_l1"]
