"""SQLite files genrekit writes (a library catalogue, an extract checkpoint): opening, checking, transactions.

A store is one SQLite file in WAL mode with ``synchronous=NORMAL``, whose ``meta`` table names
its format and version: a file of another format or version is refused, never altered. Every
change runs in one transaction (:func:`transaction`), so a writer killed at any moment leaves the
file consistent. Features are stored as little-endian float64 blobs (:func:`features_blob`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from genrekit.core.errors import CatalogueError
from genrekit.core.schema import FEATURE_NAMES

SCHEMA_VERSION: int = 1
"""Version of the catalogue's tables; a catalogue of another version is refused, never altered."""


def connect(
    path: Path, schema: str, kind: str, fmt: str, create: bool, readonly: bool = False
) -> sqlite3.Connection:
    """Open (or create) an SQLite file of `kind` in WAL mode, checking its format and version.

    A `readonly` connection (SQLite's ``mode=ro``) never writes nor creates anything.
    """
    if (readonly or not create) and not path.is_file():
        raise CatalogueError(f"{path}: no such {kind}")
    try:
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60)
        else:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        meta = read_meta(conn)
        if meta is None and create and not readonly:
            with transaction(conn):
                if read_meta(conn) is None:
                    for statement in filter(str.strip, schema.split(";")):
                        conn.execute(statement)
                    conn.executemany(
                        "INSERT INTO meta VALUES (?, ?)", [("format", fmt), ("version", str(SCHEMA_VERSION))]
                    )
            meta = read_meta(conn)
    except (sqlite3.Error, OSError) as exc:
        raise CatalogueError(f"{path}: cannot open as a genrekit {kind}: {exc}") from exc
    if meta is None or meta.get("format") != fmt:
        conn.close()
        raise CatalogueError(f"{path}: not a genrekit {kind}")
    if meta.get("version") != str(SCHEMA_VERSION):
        conn.close()
        raise CatalogueError(
            f"{path}: {kind} of version {meta.get('version')}; this genrekit reads version {SCHEMA_VERSION}"
        )
    return conn


def read_meta(conn: sqlite3.Connection) -> dict[str, str] | None:
    """Return the ``meta`` table as a dict, or None when the file has none."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return None
    return dict(conn.execute("SELECT key, value FROM meta"))


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction: all of it is committed, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def features_blob(values: np.ndarray) -> bytes:
    """Features as little-endian float64 bytes."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def blob_features(blob: bytes) -> np.ndarray:
    """Read the features of :func:`features_blob` back, as a float64 array of shape (n, 57)."""
    return np.frombuffer(blob, dtype="<f8").reshape(-1, len(FEATURE_NAMES))
