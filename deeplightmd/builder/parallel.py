"""Running build tasks through dask: synchronous, local threads/processes, or a cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from dask.callbacks import Callback
from tqdm.auto import tqdm

from deeplightmd.errors import ConfigError

LOCAL_SCHEDULERS = ("sync", "threads", "processes")


@dataclass
class Runner:
    """Where tasks run.

    Attributes:
        workers: local worker count (threads or processes).
        scheduler: ``sync``, ``threads``, ``processes`` or a ``tcp://host:port`` address of a
            ``dask.distributed`` scheduler; ``None`` picks ``sync`` for 1 worker, else ``threads``.
        progress: show a tqdm bar per stage.
    """

    workers: int = 1
    scheduler: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.scheduler is None:
            self.scheduler = "sync" if self.workers == 1 else "threads"
        if self.scheduler not in LOCAL_SCHEDULERS and "://" not in self.scheduler:
            raise ConfigError(f"scheduler must be one of {LOCAL_SCHEDULERS} or a dask.distributed "
                              f"address like tcp://host:8786, got {self.scheduler!r}")
        self._client: Any = None
        self._pool: Any = None

    @property
    def distributed(self) -> bool:
        """True for a ``dask.distributed`` scheduler address."""
        return "://" in str(self.scheduler)

    def client(self) -> Any:
        """The (lazily connected) ``dask.distributed.Client``."""
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the dask scheduler {self.scheduler!r}: "
                                  f"{exc}") from exc
        return self._client

    def close(self) -> None:
        """Disconnect from a distributed scheduler and stop local worker processes."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _process_pool(self) -> Any:
        """One pool of worker processes for every stage (dask would start one per compute)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            name = dask.config.get("multiprocessing.context", None) or _default_context()
            context = multiprocessing.get_context(name)
            if name == "forkserver":
                context.set_forkserver_preload(list(WORKER_PRELOAD))
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool

    def map(self, fn: Callable[..., Any], items: Sequence[Any], desc: str,
            *args: Any) -> list[Any]:
        """``[fn(item, *args) for item in items]`` in parallel, results in input order."""
        if not items:
            return []
        if self.distributed:
            from distributed import as_completed

            client = self.client()
            futures = [client.submit(fn, it, *args, pure=False) for it in items]
            with tqdm(total=len(futures), desc=desc, disable=not self.progress) as bar:
                for _ in as_completed(futures):
                    bar.update(1)
            return client.gather(futures)
        tasks = [dask.delayed(fn, pure=False)(it, *args) for it in items]
        return list(self.compute(tasks, desc))

    def compute(self, delayed: Sequence[Any], desc: str) -> tuple[Any, ...]:
        """``dask.compute`` of delayed objects with a task progress bar."""
        if self.distributed:
            client = self.client()
            futures = client.compute(list(delayed))
            return tuple(client.gather(futures))
        extra = {"pool": self._process_pool()} if self.scheduler == "processes" else {}
        with _TqdmCallback(desc, self.progress):
            return dask.compute(*delayed, scheduler=self.scheduler, num_workers=self.workers,
                                **extra)


#: modules a forkserver imports once, so that each worker process starts with them loaded
#: (with ``spawn`` every worker paid ~1.3 CPU-s importing the builder: docs/speed.md)
WORKER_PRELOAD = ("deeplightmd.builder.pipeline",)


def _default_context() -> str:
    """``forkserver`` where the platform has it (POSIX), else ``spawn``.

    Never plain ``fork``: the parent holds open GDAL datasets and dask's threads, which a forked
    child would share. The forkserver is a fresh process that imports :data:`WORKER_PRELOAD` and
    forks the workers from itself. ``dask.config.set({"multiprocessing.context": ...})`` chooses
    another context.
    """
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class _TqdmCallback(Callback):
    """A tqdm bar over the tasks of a local dask computation."""

    def __init__(self, desc: str, enabled: bool) -> None:
        super().__init__()
        self.desc, self.enabled, self.bar = desc, enabled, None

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.bar = tqdm(total=total, desc=self.desc, disable=not self.enabled)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if self.bar is not None:
            self.bar.close()
