"""Feature tables: reading, checking and writing tables with the GTZAN columns."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from genrekit.atomic import atomic_write, atomic_write_bytes
from genrekit.errors import TableError

TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File extensions a feature table may have; the extension picks the format."""


def table_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the extension of `path`.

    Raises
    ------
    TableError
        If the extension is neither ``.csv`` nor ``.parquet``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise TableError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")
    return suffix[1:]


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `frame` to `path` atomically, as CSV or Parquet by the extension.

    CSV is written like the public GTZAN table: a header line, no index, LF line
    endings and floats with full (round-trip) precision.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write.
    path : path-like
        Destination; ``.csv`` or ``.parquet``.
    """
    if table_format(path) == "csv":
        with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())
