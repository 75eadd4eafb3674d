"""Analysing library files on a Dask distributed cluster (``genrekit scan --dask``).

Requires the optional extra ``genrekit[dask]`` (Dask ``distributed``). The
workers must see the files under the same paths as the client (a shared
filesystem), or read them through their URLs (``s3://...``, with the fsspec
backend installed and configured on the workers, see
:mod:`genrekit.library.remote`), and have genrekit installed; the client stays
the only writer of the catalogue and runs the model itself.

Files go to the workers in batches of ``batch_files`` (one task each, run by
:func:`genrekit.library.scan.analyse_batch`); only a few batches per worker are
submitted ahead, so the client's memory does not grow with the library.

Failures
--------
A worker that dies (killed, out of memory, its machine lost) takes its tasks
with it; the scheduler gives them to another worker, so nothing is lost, and
since the client stores each file once, by path, nothing is duplicated. A task
that was on workers that died more than ``distributed.scheduler.allowed-failures``
times (a scheduler setting, 3 by default) fails with ``KilledWorker``: its batch
is then split and each of its files submitted on its own. Dask counts a death
against every task the worker held, so an innocent file queued beside a crashing
one can fail too: a file that fails on its own is tried once more, alone on
the whole cluster (no new batches go out until the tasks in flight are done),
and stored as failed only if it kills the workers there too. So a file that
crashes every worker that reads it costs at most ``3 * (allowed_failures + 1)``
worker deaths, and a file that never crashes is never stored as failed for it.
Any other error of a batch (the cluster gone, genrekit missing on a
worker) leaves its files :class:`~genrekit.library.scan.Lost`: not stored, so
the next scan retries them.

A scheduler that dies (or stops answering) cancels every task in flight; the scan
stops with :class:`ClusterLostError` (``genrekit scan`` exit status 4) once the
client has been without its scheduler for :data:`SCHEDULER_GRACE_SECONDS`,
instead of waiting for results that will never come. What was committed
before stays in the catalogue, and the next scan goes on from there.

With a timeout, a file that runs longer is stored
as failed at once (a hang is the file's, and trying it elsewhere would only
cost another timeout; ``scan --retry-failed`` tries it again) and the worker
that ran it is restarted, since a Python thread cannot be stopped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from genrekit.core.errors import GenrekitError
from genrekit.library.catalogue import Analysis
from genrekit.library.scan import Lost, Runner, TimedOut, Todo, analyse_batch, killed_repeatedly

if TYPE_CHECKING:
    from distributed import Client

LOCAL_PREFIX: str = "local:"
"""``--dask local:N`` starts a local cluster of N single-threaded worker processes."""

BATCH_FILES: int = 8
"""Files per Dask task (default)."""

AHEAD_PER_WORKER: int = 2
"""Batches submitted ahead per worker thread."""

SCHEDULER_GRACE_SECONDS: float = 10.0
"""How long the client may be without its scheduler (reconnecting) before the scan stops."""

POLL_SECONDS: float = 0.1
"""How often the client looks for finished tasks and at its connection while none is finished."""

CLOSE_SECONDS: float = 5.0
"""How long closing the client may take (a dead scheduler cannot answer the goodbye)."""


class ClusterLostError(GenrekitError):
    """The Dask scheduler died or stopped answering during a scan (exit status 4).

    Files committed before are kept; those in flight were not stored, so the next scan
    analyses them.
    """

    exit_status = 4


def _client(address: str):
    """Connect to the scheduler at `address`, or start ``local:N``; return (client, cluster or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise GenrekitError("--dask needs Dask distributed: pip install 'genrekit[dask]'") from exc
    if address.startswith(LOCAL_PREFIX):
        try:
            n_workers = int(address.removeprefix(LOCAL_PREFIX))
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise GenrekitError(f"--dask {address}: expected local:N with N >= 1 workers")
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    try:
        return Client(address, timeout=30), None
    except (OSError, TimeoutError) as exc:
        raise GenrekitError(f"--dask {address}: cannot reach the Dask scheduler: {exc}") from exc


def run_dask(
    address: str,
    segment_seconds: float | None = None,
    batch_files: int = BATCH_FILES,
    timeout: float | None = None,
) -> Runner:
    """Return a runner that analyses files on the Dask cluster at `address` (or ``local:N``).

    Parameters
    ----------
    address : str
        A scheduler address (``tcp://host:8786``) or ``local:N``.
    segment_seconds : float, optional
        Also compute segment features (see :func:`genrekit.library.scan.analyse_file`).
    batch_files : int
        Files per task.
    timeout : float, optional
        Seconds one file may take; a file that takes longer is stored as failed,
        the worker that ran it is restarted (through its nanny; a worker without
        one is closed) and the rest of its batch is submitted again.

    Returns
    -------
    callable
        The runner (see :mod:`genrekit.library.scan`); the cluster is connected
        when it starts and closed when it ends.
    """

    def run(todo: Iterator[Todo]) -> Iterator[list[Analysis | Lost]]:
        client, cluster = _client(address)  # first: it says which extra to install
        from distributed import as_completed

        lost = False
        try:
            ahead = AHEAD_PER_WORKER * max(sum(client.nthreads().values()), 1)
            batches: dict = {}  # future -> (its files, whether it runs alone on the cluster)
            suspects: list[Todo] = []  # files that failed on their own, to try alone
            running = as_completed()

            def submit(items: list[Todo], alone: bool = False) -> None:
                future = client.submit(analyse_batch, items, segment_seconds, timeout, pure=False)
                batches[future] = (items, alone)
                running.add(future)

            def top_up() -> None:
                if suspects:  # drain the cluster, then try one suspect alone
                    if not batches:
                        submit([suspects.pop(0)], alone=True)
                    return
                while len(batches) < ahead and (items := list(islice(todo, batch_files))):
                    submit(items)

            top_up()
            for future in _completed(client, running, address):
                items, alone = batches.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # sorted out by _settle
                    outcome = exc
                future.release()  # first: a restarted worker's results are not computed again
                if results := _settle(client, items, outcome, submit, suspects if not alone else None):
                    yield results
                top_up()
        except ClusterLostError:
            lost = True
            raise
        finally:
            _close(client, quiet=lost)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()

    return run


def _close(client: Client, quiet: bool) -> None:
    """Close the client within :data:`CLOSE_SECONDS`; `quiet`: without Dask's log of the lost link.

    Closing a client that is still trying to reconnect makes Dask log the cancelled attempt as
    an error with a traceback; after :class:`ClusterLostError` the message already said it all.
    """
    logger = logging.getLogger("distributed.client")
    level = logger.level
    if quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):  # a dead scheduler cannot answer: close anyway
            client.close(timeout=CLOSE_SECONDS)
    finally:
        logger.setLevel(level)


def _completed(client: Client, running, address: str) -> Iterator:
    """Yield the futures of `running` as they finish, and stop if the scheduler is gone.

    Distributed's own iterator waits forever once the scheduler has died (the client
    gives up reconnecting and closes, and nothing completes any more).

    Raises
    ------
    ClusterLostError
        When the client has been without its scheduler for :data:`SCHEDULER_GRACE_SECONDS`
        (or has closed).
    """
    lost_since: float | None = None
    while not running.is_empty():
        if running.has_ready():
            yield from running.next_batch(block=False)
            continue
        if client.status == "running":
            lost_since = None
        else:
            lost_since = lost_since or time.monotonic()
            waited = time.monotonic() - lost_since
            if client.status in ("closing", "closed") or waited >= SCHEDULER_GRACE_SECONDS:
                raise ClusterLostError(
                    f"--dask {address}: lost the Dask scheduler (client {client.status} for {waited:.0f} s); "
                    "the files committed so far are kept: run the scan again once the cluster is back"
                )
        time.sleep(POLL_SECONDS)


def _settle(
    client: Client,
    items: list[Todo],
    outcome: list[Analysis] | BaseException,
    submit: Callable[[list[Todo]], None],
    suspects: list[Todo] | None,
) -> list[Analysis | Lost]:
    """Turn the outcome of a batch's task into results, submitting again what must be.

    A batch whose workers died (``KilledWorker``) is split into one task per
    file; a file on its own that killed them is added to `suspects`, or failed
    when it ran alone on the cluster (`suspects` None). Any other error leaves
    the batch's files :class:`~genrekit.library.scan.Lost`. Of a finished batch,
    the workers that timed out are restarted (before the results are handed on,
    so that this happens even if the consumer stops there) and the files left
    out after a timeout submitted again.

    Parameters
    ----------
    client : distributed.Client
        The client (to restart workers).
    items : list of Todo
        The batch's files.
    outcome : list of Analysis, or Exception
        What the task returned, or what it raised.
    submit : callable
        Submits a list of files as one task.
    suspects : list of Todo, or None
        The files to try alone on the cluster; None when this task ran alone.

    Returns
    -------
    list of Analysis or Lost
        What to yield for this batch (empty when it was all submitted again).
    """
    from distributed import KilledWorker

    if isinstance(outcome, KilledWorker):
        if len(items) > 1:
            for item in items:
                submit([item])
            return []
        if suspects is not None:
            suspects.append(items[0])
            return []
        return [killed_repeatedly(items[0], f"Dask: {type(outcome).__name__}: {outcome}")]
    if isinstance(outcome, BaseException):  # the cluster, not the files: leave them for the next scan
        return [Lost(t.path, f"Dask task failed: {type(outcome).__name__}: {outcome}") for t in items]
    _recycle(client, outcome)
    done = {result.path for result in outcome}
    if left := [item for item in items if item.path not in done]:
        submit(left)
    return list(outcome)


def _recycle(client: Client, results: list[Analysis]) -> None:
    """Restart the workers that timed out on a file, so that the analysis stuck there stops.

    Parameters
    ----------
    client : distributed.Client
        The client of the cluster.
    results : list of Analysis
        A batch's results; those that are :class:`~genrekit.library.scan.TimedOut`
        name the worker to restart (through its nanny; one without is closed).
    """
    if hung := sorted({r.worker for r in results if isinstance(r, TimedOut) and r.worker}):
        client.restart_workers(hung, raise_for_error=False)
