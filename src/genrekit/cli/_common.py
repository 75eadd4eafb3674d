"""Pieces shared by the subcommands: exit codes, messages, progress and output formats."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

TABLE_ENV = "GENREKIT_TABLE"
"""Environment variable naming the feature table when ``--data`` is not given."""

T = TypeVar("T")


def error(message: str) -> None:
    """Print ``genrekit: error: message`` on stderr."""
    print(f"genrekit: error: {message}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    """Print a status line on stderr unless `quiet`."""
    if not quiet:
        print(message, file=sys.stderr)


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Wrap `iterable` in a progress bar shown only when stderr is a terminal.

    Parameters
    ----------
    iterable : iterable
        Items to iterate over.
    total : int, optional
        Number of items, for the rate and time-left estimate.
    desc : str
        Label in front of the bar.
    unit : str
        Name of one item ("file", "epoch", ...).

    Yields
    ------
    object
        The items of `iterable`, unchanged.
    """
    if not sys.stderr.isatty():  # no bar: no need to import tqdm (it costs a new process time)
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True)


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
    """Add ``--data TABLE`` (default: the ``GENREKIT_TABLE`` environment variable)."""
    parser.add_argument(
        "--data", metavar="TABLE", help=f"feature table, .csv or .parquet (default: ${TABLE_ENV})"
    )


def table_path(args: argparse.Namespace) -> str:
    """Return the table named by ``--data`` or ``GENREKIT_TABLE``.

    Raises
    ------
    GenrekitError
        If neither names one.
    """
    from genrekit.errors import GenrekitError

    data = args.data or os.environ.get(TABLE_ENV)
    if not data:
        raise GenrekitError(f"no feature table: pass --data TABLE or set {TABLE_ENV}")
    return data


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--jobs N`` (worker processes; all cores by default)."""
    parser.add_argument(
        "--jobs", type=positive_int, metavar="N", help="worker processes (default: all cores)"
    )
