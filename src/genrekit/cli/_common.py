"""Pieces shared by the subcommands: exit codes, messages, progress and output formats."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

TRAIN_EXTRA = "genrekit[train]"
"""The optional extra that brings PyTorch (training, reproduction)."""

TABLE_ENV = "GENREKIT_TABLE"
"""Environment variable naming the feature table when ``--data`` is not given."""

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops as on Ctrl-C (the same clean-up), with exit status 143."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread.

    So ``kill PID`` (what service managers and ``timeout`` send) stops a run as Ctrl-C does:
    pools are shut down, worker processes stopped, completed outputs kept. Outside the main
    thread, where Python cannot handle signals, it does nothing. The previous handler is
    restored on leaving the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def interrupted(exc: KeyboardInterrupt) -> int:
    """Say that the run was stopped (Ctrl-C or SIGTERM) and return its exit status (130 or 143)."""
    how = "terminated" if isinstance(exc, Terminated) else "interrupted"
    error(f"{how}; completed outputs are kept (use --resume where offered)")
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def error(message: str) -> None:
    """Print ``genrekit: error: message`` on stderr."""
    print(f"genrekit: error: {message}", file=sys.stderr)


def require_torch(command: str) -> None:
    """Raise a GenrekitError saying which extra to install when PyTorch is missing.

    Parameters
    ----------
    command : str
        The subcommand that needs it, for the message.
    """
    from genrekit.core.errors import GenrekitError

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        raise GenrekitError(torch_missing(command)) from exc


def torch_missing(command: str) -> str:
    """Return the message for a `command` that needs PyTorch when it is not installed."""
    return (
        f"genrekit {command} needs PyTorch, which is not installed: pip install '{TRAIN_EXTRA}' "
        "(for the CPU-only build, first: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    )


def info(message: str, quiet: bool = False) -> None:
    """Print a status line on stderr unless `quiet`."""
    if not quiet:
        print(message, file=sys.stderr)


PROGRESS_INTERVAL: float = 5.0
"""Seconds between two progress lines when stderr is not a terminal."""


class ProgressLine:
    """Progress for logs and pipes: one line on stderr every few seconds (what, how far, time left).

    A stand-in for a tqdm bar when stderr is not a terminal: it prints nothing until
    `interval` seconds have passed, then ``what: 12/56 files (21%), 9 s elapsed, about 33 s
    left`` at most once per `interval`, and a last line when closed after having printed.
    It has the part of tqdm's interface that genrekit and :mod:`pooch` use (``total``,
    ``update``, ``reset``, ``close``).

    Parameters
    ----------
    desc : str
        What is being done ("extract", "training", "download").
    total : int, optional
        Number of units, for the percentage and the time left.
    unit : str
        Name of one unit ("file", "run", "epoch"); ``"B"`` shows megabytes.
    interval : float, optional
        Seconds between two lines (default: :data:`PROGRESS_INTERVAL`).
    stream : file-like, optional
        Where to print (default: ``sys.stderr`` at the time of printing).
    work : float, optional
        The expected cost of all units together when units differ in cost (a CNN run against
        a k-NN run): the time left is then estimated from the cost done, given to
        :meth:`update`, instead of from the count.
    """

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        unit: str = "it",
        interval: float | None = None,
        stream: Any = None,
        work: float | None = None,
    ) -> None:
        self.desc, self.total, self.unit, self.stream = desc, total, unit, stream
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.n = 0
        self.work, self.work_done = work, 0.0
        self.start = self.last = time.monotonic()
        self.printed = False

    def update(self, n: int = 1, cost: float | None = None) -> None:
        """Count `n` more units done (costing `cost` of ``work``); print a line if the interval has passed."""
        self.n += n
        self.work_done += n if cost is None else cost
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._print(now)

    def reset(self, total: int | None = None) -> None:
        """Start counting again from 0 (keeping the clock), optionally with a new total."""
        self.n = 0
        if total is not None:
            self.total = total

    def close(self) -> None:
        """Print the final count if any line was printed before."""
        if self.printed:
            self._print(time.monotonic(), done=True)

    def line(self, now: float, done: bool = False) -> str:
        """Return the progress line for the time `now` (a :func:`time.monotonic` value)."""
        elapsed = now - self.start
        count = self._amount(self.n)
        units = "MB" if self.unit == "B" else f"{self.unit}s"
        if self.total:
            count += f"/{self._amount(self.total)} {units} ({100 * self.n / self.total:.0f}%)"
        else:
            count += f" {units}"
        text = f"{self.desc}: {count}, {_duration(elapsed)} elapsed"
        if done:
            return text + ", done"
        left = self._share_left()
        if left is not None:
            text += f", about {_duration(elapsed * left)} left"
        return text

    def _share_left(self) -> float | None:
        """Return the work left per unit of work done (None before any is done or without a total)."""
        if self.work and self.work_done:
            return max(self.work - self.work_done, 0.0) / self.work_done
        if self.total and self.n:
            return (self.total - self.n) / self.n
        return None

    def _amount(self, n: float) -> str:
        return f"{n / 1e6:.1f}" if self.unit == "B" else str(n)

    def _print(self, now: float, done: bool = False) -> None:
        self.printed = True
        print(self.line(now, done), file=self.stream or sys.stderr, flush=True)


def plural(count: int, noun: str) -> str:
    """Return ``"1 file"``, ``"2 files"``, ``"0 files"``: a count with its noun in the right number."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    """Format seconds as ``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(desc: str, total: int | None = None, unit: str = "it", quiet: bool = False) -> Any:
    """Return a progress object: a tqdm bar on a terminal, a :class:`ProgressLine` otherwise.

    Returns False when `quiet` (the value :mod:`pooch` reads as "no progress"). For a download
    give the expected size as `total`: :mod:`pooch` tests the object's truth, and a tqdm bar
    without a total has none.
    """
    if quiet:
        return False
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, unit_scale=unit == "B")
    return ProgressLine(desc, total, unit)


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    quiet: bool = False,
    cost: Callable[[T], float] | None = None,
    work: float | None = None,
) -> Iterator[T]:
    """Wrap `iterable` in progress output on stderr.

    A tqdm bar when stderr is a terminal; otherwise (logs, pipes, CI) a line every
    :data:`PROGRESS_INTERVAL` seconds saying what is done, how far, and the time left.
    Nothing when `quiet`.

    Parameters
    ----------
    iterable : iterable
        Items to iterate over.
    total : int, optional
        Number of items, for the rate and time-left estimate.
    desc : str
        What is being done (shown first).
    unit : str
        Name of one item ("file", "epoch", ...).
    quiet : bool
        Show nothing.
    cost, work : optional
        The cost of each item and of all items together, when items differ in cost: the time
        left is estimated from the cost done (a terminal's bar then counts cost, not items).

    Yields
    ------
    object
        The items of `iterable`, unchanged.
    """
    weighted = cost is not None and work is not None
    if quiet:
        bar: Any = False
    elif weighted and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar_format = "{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, about {remaining} left"
        bar = tqdm(total=work, desc=desc, bar_format=bar_format, dynamic_ncols=True)
    elif weighted:
        bar = ProgressLine(desc, total, unit, work=work)
    else:
        bar = progress_bar(desc, total, unit, quiet)
    if bar is False:
        yield from iterable
        return
    try:
        for item in iterable:
            yield item
            if not weighted:
                bar.update(1)
            elif isinstance(bar, ProgressLine):
                bar.update(1, cost(item))
            else:
                bar.update(cost(item))
    finally:
        bar.close()


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-q/--quiet``: no progress output and no status lines on stderr (errors still show)."""
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress or status lines on stderr (errors still show)"
    )


def add_format_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json")) -> None:
    """Add ``--format`` (human table by default, machine-readable on request)."""
    parser.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format on stdout (default: {choices[0]}); json is for scripts",
    )


def print_json(obj: Any) -> None:
    """Print `obj` as indented JSON on stdout."""
    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(obj: Any) -> Any:
    """Convert NumPy scalars and arrays (and paths) for :func:`json.dump`."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def positive_int(text: str) -> int:
    """Parse an integer argument of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--data TABLE`` (default: ``$GENREKIT_TABLE``, else the cached GTZAN table, fetched once)."""
    parser.add_argument(
        "--data",
        metavar="TABLE",
        help=f"feature table, .csv or .parquet (default: ${TABLE_ENV}, else the GTZAN 30-second table, "
        "downloaded once into the cache: see `genrekit data`)",
    )


def table_path(args: argparse.Namespace) -> str:
    """Return the table named by ``--data`` or ``GENREKIT_TABLE``, else the cached GTZAN table.

    The GTZAN table is downloaded (and verified) into the cache when it is not there yet.

    Raises
    ------
    DataError
        If no table is named and the GTZAN table can be neither found in the cache nor
        downloaded; the message says how to pass ``--data``.
    """
    from genrekit.datasets.fetch import GTZAN_TABLE, cached_path, is_cached, table_or_fetch

    data = args.data or os.environ.get(TABLE_ENV)
    if data:
        return data
    if is_cached():
        return str(cached_path())
    quiet = getattr(args, "quiet", False)
    bar = progress_bar("download", GTZAN_TABLE.size, unit="B", quiet=quiet)
    return str(table_or_fetch(progressbar=bar, log=lambda line: info(line, quiet)))


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--jobs N`` (worker processes; all cores by default)."""
    parser.add_argument(
        "--jobs", type=positive_int, metavar="N", help="worker processes (default: all cores)"
    )


def add_tagger_option(
    parser: argparse.ArgumentParser, help: str, default: tuple[str, ...] | None = None
) -> None:
    """Add ``--tagger NAMES`` (comma-separated musicnn taggers, see :func:`tagger_list`) to `parser`."""
    parser.add_argument("--tagger", type=tagger_list, default=default, metavar="NAMES", help=help)


def tagger_list(text: str) -> tuple[str, ...]:
    """Parse ``--tagger``: known names, comma-separated, no duplicates."""
    from genrekit.tagger import TAGGERS

    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in TAGGERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown tagger {', '.join(unknown) or repr(text)}; choose from msd, mtt"
        )
    return names


def joined_tags(tags: list[tuple[str, float]]) -> str:
    """Format tags as ``tag 0.42, other 0.17`` (a table cell)."""
    return ", ".join(f"{tag} {p:.2f}" for tag, p in tags)
