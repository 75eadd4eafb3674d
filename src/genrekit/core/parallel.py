"""Running one task per file on worker processes, so one bad file never stops a batch."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from typing import TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """Return the number of cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Return a context in which BLAS and OpenMP thread pools use one thread.

    genrekit's policy for feature extraction and prediction, in worker processes, on the command
    line and in the Python API: the matrix products are small, and on a busy machine extra BLAS
    threads cost more than they gain (parallelism comes from processes instead).
    """
    return threadpool_limits(1)


def map_tasks(
    fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None, ordered: bool = False
) -> Iterator[tuple[T, R | Exception]]:
    """Apply `fn` to each item, on `jobs` worker processes, and yield results as they come.

    Each task runs with one BLAS thread: the parallelism comes from the
    processes, and on the small matrix products of feature extraction extra
    BLAS threads cost more than they gain. Workers ignore Ctrl-C; the caller
    gets the KeyboardInterrupt, and pending tasks are cancelled.

    Parameters
    ----------
    fn : callable
        A picklable (module-level) function of one item.
    items : sequence
        The items, e.g. file paths.
    jobs : int, optional
        Worker processes; all available cores when None. With 1 (or a single
        item) the tasks run in this process.
    ordered : bool
        Yield in the order of `items` (each result as soon as it and all before
        it are done); otherwise in the order tasks finish.

    Yields
    ------
    item : object
        The item.
    result : object or Exception
        What `fn` returned, or the exception it raised (a worker that died
        gives a :class:`~concurrent.futures.process.BrokenProcessPool`).
    """
    jobs = min(jobs or cpu_count(), max(len(items), 1))
    if jobs <= 1:
        for item in items:
            with one_blas_thread():
                yield item, _call(fn, item)
        return
    from concurrent.futures import ProcessPoolExecutor  # (multiprocessing: only when it is used)

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker)
    try:
        futures = {pool.submit(fn, item): item for item in items}
        for future in futures if ordered else as_completed(futures):
            yield futures[future], _result(future)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _call(fn: Callable[[T], R], item: T) -> R | Exception:
    """Return ``fn(item)``, or the exception it raised."""
    try:
        return fn(item)
    except Exception as exc:  # one file's failure, whatever it is, must not stop the batch
        return exc


def _result(future: Future) -> object:
    """Return a finished task's result, or the exception it raised."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        return BrokenProcessPool(f"worker process died ({exc}); out of memory?")
    except Exception as exc:  # raised by the task in its worker
        return exc


def _init_worker() -> None:
    """Set up a worker process: one BLAS thread, and Ctrl-C left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)
