"""Running one task per file on worker processes, so one bad file never stops a batch."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from typing import Any, TypeVar

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

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=init_worker)
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


PARENT_POLL_SECONDS: float = 0.5
"""How often a worker checks that its parent still lives (where no parent-death signal exists)."""

_PR_SET_PDEATHSIG = 1
"""``prctl`` option (Linux ``<sys/prctl.h>``): the signal a process gets when its parent thread ends."""


def init_worker(setup: Callable[..., Any] | None = None, *args: Any) -> None:
    """Set up a worker process of any genrekit pool, then run ``setup(*args)``.

    Every pool (:func:`map_tasks`, the scan's local processes, the service's workers, the
    reproduction's runs) starts its processes with this initialiser, so they all behave alike:
    one BLAS thread, Ctrl-C left to the parent (which stops the run), SIGTERM at its default
    (a forked worker would otherwise inherit the parent's handler), and exit as soon as the
    parent dies (:func:`exit_with_parent`), even when it was killed with ``kill -9``.

    Parameters
    ----------
    setup : callable, optional
        A pool's own set-up (e.g. loading a model), run last.
    *args
        Its arguments.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    exit_with_parent()
    threadpool_limits(1)
    if setup is not None:
        setup(*args)


def exit_with_parent() -> None:
    """Make this process exit when its parent process dies.

    On Linux the kernel sends SIGKILL at once (``prctl(PR_SET_PDEATHSIG)``; it fires when the
    thread that started this process ends, and genrekit starts pools from threads that outlive
    them). Everywhere, a daemon thread also polls the parent's process id every
    :data:`PARENT_POLL_SECONDS` and exits when it changed (the orphan was adopted by another
    process). A parent that died before this call is noticed at once.
    """
    import multiprocessing

    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="genrekit-parent", daemon=True).start()


def _parent_death_signal(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent dies (nothing elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _watch_parent(parent_pid: int) -> None:
    """Exit this process (without clean-up: the parent that owned it is gone) when its parent changes."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)
