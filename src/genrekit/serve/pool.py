"""The worker pool: CPU work in processes, awaited from the event loop, with a bounded queue."""

from __future__ import annotations

import asyncio
import functools
import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from genrekit.core.parallel import init_worker
from genrekit.serve import work


class WorkerDiedError(RuntimeError):
    """Worker processes died (killed, out of memory) while running a task, twice."""


class QueueFullError(RuntimeError):
    """The service already has as many requests in progress as it accepts.

    Attributes
    ----------
    retry_after : int
        Seconds after which a retry has a fair chance.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"server busy: too many requests in progress; retry after {retry_after} s")
        self.retry_after = retry_after


class WorkerPool:
    """Worker processes that hold the model, plus the bound on requests in progress.

    Workers are started with ``spawn`` (no fork of a process running an event loop and
    threads). A request takes a slot (:meth:`admit`) once its upload has arrived, for the
    wait and the work; when all `capacity` slots are taken the next request is refused at once.

    Parameters
    ----------
    model_dir : str or None
        The model folder each worker loads (the shipped model when None).
    workers : int
        Worker processes.
    capacity : int
        Most requests in progress at once.
    detect_music : bool
        Whether the workers' model runs the music detector.
    taggers : tuple of str
        The musicnn taggers each worker loads (none: tags are off).
    """

    def __init__(
        self,
        model_dir: str | None,
        workers: int,
        capacity: int,
        detect_music: bool = False,
        taggers: tuple[str, ...] = (),
    ) -> None:
        self.model_dir = model_dir
        self.detect_music = detect_music
        self.taggers = taggers
        self.workers = workers
        self.capacity = capacity
        self.active = 0
        self.mean_seconds = 0.1
        self.ready = False
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,  # genrekit's common set-up (exit with the server), then the model
            initargs=(work.init_worker, self.model_dir, self.detect_music, self.taggers),
        )

    async def warm_up(self) -> None:
        """Start every worker (each loads the model), then mark the pool ready."""
        await asyncio.gather(*(self.run(work.ping) for _ in range(self.workers)))
        self.ready = True

    def admit(self) -> None:
        """Take a slot for one request.

        Raises
        ------
        QueueFullError
            When all slots are taken.
        """
        if self.active >= self.capacity:
            waves = math.ceil(self.active / self.workers)
            raise QueueFullError(max(1, math.ceil(waves * self.mean_seconds)))
        self.active += 1

    def release(self) -> None:
        """Give back a slot taken by :meth:`admit`."""
        self.active -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a worker process and return its result.

        When a worker dies, every task of its pool fails; the pool is replaced and the
        task is tried once more on the new one.

        Raises
        ------
        WorkerDiedError
            If a worker died during the retry too.
        Exception
            Whatever `fn` raised.
        """
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for attempt in (1, 2):
            executor = self._executor
            try:
                result = await loop.run_in_executor(executor, functools.partial(fn, *args))
                break
            except BrokenProcessPool as exc:
                self._replace(executor)
                if attempt == 2:
                    raise WorkerDiedError(
                        "a worker process died twice while handling the request (out of memory?)"
                    ) from exc
        self.mean_seconds = 0.9 * self.mean_seconds + 0.1 * (time.perf_counter() - start)
        return result

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Put a new pool in place of `broken`, unless another task already did."""
        if broken is self._executor:
            self._executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the workers (pending tasks are cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
