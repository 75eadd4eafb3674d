"""SQLite files genrekit writes (a library catalogue, an extract checkpoint): opening, checking, transactions.

A store is one SQLite file in WAL mode with ``synchronous=NORMAL``. It is identified before
anything is written to it (SQLite's ``application_id``, and its ``meta`` table naming its format
and version): a file of another program, format or version is refused, never altered. Every
change runs in one transaction (:func:`transaction`), so a writer killed at any moment leaves the
file consistent; SQLite's errors (damage, full disk, read-only folder) become
:class:`~genrekit.core.errors.CatalogueError` naming the file (:func:`translated`, :func:`guarded`).
Features are stored as little-endian float64 blobs (:func:`features_blob`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from genrekit.core.errors import CatalogueError, CatalogueStorageError
from genrekit.core.schema import FEATURE_NAMES

SCHEMA_VERSION: int = 1
"""Default version of a store's tables (an extract checkpoint's); a file of another version is refused,
never altered, unless its kind upgrades older versions (``connect``'s `upgrade`)."""

Upgrade = Callable[[sqlite3.Connection, int], None]
"""Brings the tables of a file from the version it names up to the current one, inside a transaction."""


def _storage_error(path: Path, kind: str, exc: sqlite3.Error) -> CatalogueError:
    """Return the error naming `path` for an SQLite error met while using it."""
    name = _error_name(exc)
    if name.startswith("SQLITE_FULL"):
        return CatalogueStorageError(
            f"{path}: cannot write the {kind}: the disk is full ({exc}); what was committed is kept: "
            "free some space and run the command again"
        )
    if name.startswith("SQLITE_IOERR"):
        return CatalogueStorageError(
            f"{path}: cannot read or write the {kind}: the disk failed or is full ({exc}, {name}); "
            "what was committed is kept: check the disk and its free space, then run the command again"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return CatalogueStorageError(
            f"{path}: the {kind} is damaged ({exc}); restore a backup, "
            f"or salvage it with `sqlite3 {path.name} .recover`"
        )
    if name.startswith("SQLITE_NOTADB"):
        return CatalogueError(f"{path}: not a genrekit {kind}: not an SQLite database ({exc})")
    if name.startswith("SQLITE_READONLY"):
        return CatalogueError(f"{path}: cannot write the {kind}: {_read_only_reason(path)} ({exc})")
    if name.startswith("SQLITE_BUSY"):
        return CatalogueError(f"{path}: the {kind} stayed locked by another process ({exc}); try again")
    return CatalogueError(f"{path}: cannot use the {kind}: {exc}" + (f" ({name})" if name else ""))


def _error_name(exc: sqlite3.Error) -> str:
    """Return SQLite's name of an error (``SQLITE_FULL``, ...), or "" when Python does not give it."""
    return getattr(exc, "sqlite_errorname", None) or ""


def _read_only_reason(path: Path) -> str:
    """Say why a file cannot be written: its folder, or the file itself, is read-only."""
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError:
        return f"its folder {path.parent} is read-only (SQLite needs to create files beside it)"
    return "the file is read-only"


@contextlib.contextmanager
def translated(path: Path, kind: str) -> Iterator[None]:
    """Raise SQLite's errors within the block as :class:`CatalogueError` naming `path`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:  # OperationalError too: disk full, I/O error, locked
        raise _storage_error(path, kind, exc) from exc


def guarded(method: Callable) -> Callable:
    """Make a method of :class:`Catalogue` or :class:`ExtractCheckpoint` raise SQLite's errors as ours."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            with translated(self.path, self.KIND):
                yield from method(self, *args, **kwargs)

        return generator

    @functools.wraps(method)
    def plain(self, *args, **kwargs):
        with translated(self.path, self.KIND):
            return method(self, *args, **kwargs)

    return plain


def connect(
    path: Path,
    schema: str,
    kind: str,
    fmt: str,
    app_id: int,
    create: bool,
    readonly: bool = False,
    verify: bool = False,
    version: int = SCHEMA_VERSION,
    upgrade: Upgrade | None = None,
) -> sqlite3.Connection:
    """Open (or create) an SQLite file of `kind`, checking its identity, format and version.

    The file is identified (``application_id``, else an older genrekit's ``meta`` table) before
    anything is written to it: a file that is neither new, nor empty, nor of `kind` is refused.
    A `readonly` connection never writes nor creates anything. With `verify`, SQLite's
    ``quick_check`` runs first.

    A file of an older `version` is refused unless `upgrade` is given: a writable connection
    then upgrades it in one transaction (its tables, the ``meta`` version and ``user_version``;
    all of it or nothing), a read-only one reads it as it is (the caller reads ``meta`` to learn
    its version). A file of a newer version is always refused.

    Raises
    ------
    CatalogueError
        If the file is missing (and not to be created), not of `kind`, or of another version.
    CatalogueStorageError
        If it is damaged, or cannot be written (disk full).
    """
    if (readonly or not create) and not path.is_file():
        raise CatalogueError(f"{path}: no such {kind}")
    try:
        conn = _open_readonly(path, kind) if readonly else _open_writable(path, create)
    except sqlite3.DatabaseError as exc:
        raise _storage_error(path, kind, exc) from exc
    try:
        with translated(path, kind):
            if verify:
                _quick_check(conn, path, kind)
            meta = _identify(conn, path, kind, fmt, app_id, create and not readonly, schema, version)
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            found = _version(meta)
            if upgrade is not None and found is not None and found < version and not readonly:
                _upgrade(conn, app_id, version, upgrade)
                found = version
    except BaseException:
        conn.close()
        raise
    if found != version and not (upgrade is not None and readonly and found is not None and found < version):
        conn.close()
        raise CatalogueError(
            f"{path}: {kind} of version {meta.get('version')}; this genrekit reads version {version}"
            + (
                " (made by a newer genrekit: upgrade genrekit)"
                if found is not None and found > version
                else ""
            )
        )
    return conn


def _version(meta: dict[str, str]) -> int | None:
    """Return the version a ``meta`` table names, None when it names none or no number."""
    try:
        return int(meta.get("version", ""))
    except ValueError:
        return None


def _upgrade(conn: sqlite3.Connection, app_id: int, version: int, upgrade: Upgrade) -> None:
    """Upgrade a file to `version` in one transaction (read again inside it: another process may have)."""
    with transaction(conn):
        found = _version(read_meta(conn) or {})
        if found is None or found >= version:
            return
        upgrade(conn, found)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(version),))
        _stamp(conn, app_id, version)


def _open_writable(path: Path, create: bool) -> sqlite3.Connection:
    """Connect for reading and writing (nothing is written yet)."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file: errors show here
    except BaseException:
        conn.close()
        raise
    return conn


def _open_readonly(path: Path, kind: str) -> sqlite3.Connection:
    """Connect with ``mode=ro``; in a folder this process cannot write, as ``immutable``.

    A WAL reader must create the ``-shm`` file beside the database. Where it cannot, nothing
    else can change the file either, so reading it as immutable is safe, unless a ``-wal``
    file holds changes not yet in it (it is refused then, saying why).
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=60)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if not _error_name(exc).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
            raise
    wal = Path(f"{path}-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise CatalogueError(
            f"{path}: cannot read the {kind} in a folder this process cannot write: {wal.name} holds "
            "changes not yet copied into it, which SQLite reads only with write access; open it "
            "once where the folder is writable (any genrekit command), then it reads anywhere"
        )
    conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _quick_check(conn: sqlite3.Connection, path: Path, kind: str) -> None:
    """Run SQLite's ``PRAGMA quick_check``; raise :class:`CatalogueStorageError` naming the damage."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise CatalogueStorageError(
            f"{path}: the {kind} is damaged (SQLite quick_check: {shown}); restore a backup, or "
            f"salvage it with `sqlite3 {path.name} .recover`"
        )


def _identify(
    conn: sqlite3.Connection,
    path: Path,
    kind: str,
    fmt: str,
    app_id: int,
    create: bool,
    schema: str,
    version: int = SCHEMA_VERSION,
) -> dict[str, str]:
    """Return the ``meta`` of a file of `kind`: stamp an older genrekit's, create it in an empty file.

    Raises
    ------
    CatalogueError
        If the file belongs to something else (another application id, or tables but no genrekit
        ``meta``), or is empty and not to be created.
    """
    (found,) = conn.execute("PRAGMA application_id").fetchone()
    meta = read_meta(conn)
    ours = meta is not None and meta.get("format") == fmt
    if found not in (0, app_id) or (found == app_id and not ours):
        raise CatalogueError(f"{path}: not a genrekit {kind} (SQLite application_id {found:#x})")
    if ours:
        if found == 0 and create:  # made by a genrekit older than the stamp
            with transaction(conn):
                _stamp(conn, app_id, _version(meta) or 0)
        return meta
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise CatalogueError(
            f"{path}: not a genrekit {kind}: an SQLite database of another program (tables {shown}); "
            "genrekit writes nothing into it: name a new file"
        )
    if not create:
        raise CatalogueError(f"{path}: not a genrekit {kind} (an empty file)")
    with transaction(conn):
        if read_meta(conn) is None:  # another process may have created it meanwhile
            for statement in filter(str.strip, schema.split(";")):
                conn.execute(statement)
            rows = [("format", fmt), ("version", str(version))]
            conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
            _stamp(conn, app_id, version)
    return read_meta(conn) or {}


def _stamp(conn: sqlite3.Connection, app_id: int, version: int) -> None:
    """Write the identity of a genrekit file: its application id and schema version."""
    conn.execute(f"PRAGMA application_id = {int(app_id)}")
    conn.execute(f"PRAGMA user_version = {int(version)}")


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
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def features_blob(values: np.ndarray) -> bytes:
    """Features as little-endian float64 bytes."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def blob_features(blob: bytes) -> np.ndarray:
    """Read the features of :func:`features_blob` back, as a float64 array of shape (n, 57)."""
    return np.frombuffer(blob, dtype="<f8").reshape(-1, len(FEATURE_NAMES))
