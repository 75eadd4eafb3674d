"""The storage of a library scan and of ``extract --resume``: one SQLite file, standard library only.

Everything genrekit keeps about a library lives behind this module. A
catalogue (``genrekit scan PATH --db library.db``) holds, per audio file:

``files``
    ``path`` (absolute), ``size`` and ``mtime_ns`` as seen when it was read,
    ``status`` (``ok``, ``failed`` or ``gone``), ``n_samples`` (at 22,050 Hz),
    ``segment_seconds`` (when 3-s segments were stored too), ``error``.
``windows``
    The 57 features of each 30-s window (``kind`` 0) and, when asked, of each
    segment (``kind`` 1): first and last sample, features as 57 little-endian
    float64 values.
``predictions``
    The prediction of one model per file: ``model_id`` (:func:`model_id`),
    ``genre`` (the best genre, or ``uncertain``), ``best_guess``, ``confidence``,
    ``novelty`` (NULL when the model has none), ``familiar``, ``probabilities``
    (JSON, genre -> probability).

Identity: a catalogue carries SQLite's ``application_id`` :data:`APPLICATION_ID` and
``user_version`` :data:`SCHEMA_VERSION` (an extract checkpoint :data:`CHECKPOINT_APPLICATION_ID`).
genrekit creates its tables only in a new or empty file and refuses any other SQLite file, so it
never writes into another program's database; a catalogue of an older genrekit, which has the
``meta`` table but no stamp, is stamped when it is first opened for writing.

Damage: a file that fails SQLite's ``PRAGMA quick_check`` (checked when a command opens it), or
that cannot be written (disk full, I/O error), raises :class:`CatalogueStorageError`; the files
committed before stay as they were.

Read-only places: a reader (``readonly=True``) opens the file with ``mode=ro``; in a folder it
cannot write (where SQLite cannot make the ``-shm`` file a WAL reader needs) it opens it as
``immutable``, which is safe because nothing can change the file there either, unless a
``-wal`` file holds changes not yet copied into it: then it says so.

Crash safety: the database runs in WAL mode with ``synchronous=NORMAL`` and
every file is written in its own transaction (its row, windows and
prediction, or nothing), so killing the writer at any moment (``kill -9``)
loses at most the files not yet committed and never leaves a half-written
one; a power cut may in addition lose the last transactions, never the
consistency of the file. One process writes (the scanning client); readers
(``genrekit library ...``, a web page) may read at the same time.

``extract --resume`` keeps its progress in the same kind of file
(:class:`ExtractCheckpoint`): one transaction per finished source file, so a
checkpoint costs the same whatever the size of the table.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.schema import FEATURE_NAMES

SCHEMA_VERSION: int = 1
"""Version of the catalogue's tables; a catalogue of another version is refused, never altered."""

APPLICATION_ID: int = 0x47524B43
"""SQLite ``PRAGMA application_id`` of a catalogue (``GRKC`` in ASCII)."""

CHECKPOINT_APPLICATION_ID: int = 0x47524B58
"""SQLite ``PRAGMA application_id`` of an ``extract --resume`` checkpoint (``GRKX``)."""

WINDOW, SEGMENT = 0, 1
"""``windows.kind``: a 30-s prediction window, or a table segment (``--segments``)."""

PAGE: int = 1000
"""Rows read per query when walking a large table (keeps memory flat)."""

_FORMAT = "genrekit-catalogue"
_CHECKPOINT_FORMAT = "genrekit-extract-progress"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'gone')),
    n_samples INTEGER,
    segment_seconds REAL,
    error TEXT
);
CREATE TABLE windows (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start_sample INTEGER NOT NULL,
    end_sample INTEGER NOT NULL,
    features BLOB NOT NULL,
    PRIMARY KEY (file_id, kind, idx)
) WITHOUT ROWID;
CREATE TABLE predictions (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    genre TEXT NOT NULL,
    best_guess TEXT NOT NULL,
    confidence REAL NOT NULL,
    novelty REAL,
    familiar INTEGER NOT NULL,
    probabilities TEXT NOT NULL
);
CREATE INDEX predictions_model ON predictions(model_id);
"""

_CHECKPOINT_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    source TEXT PRIMARY KEY,
    filenames TEXT NOT NULL,
    lengths TEXT NOT NULL,
    label TEXT NOT NULL,
    features BLOB NOT NULL
);
"""


class CatalogueError(GenrekitError):
    """A catalogue or checkpoint file cannot be opened, is of another version, or was made otherwise."""


class CatalogueStorageError(CatalogueError):
    """A catalogue or checkpoint is damaged (fails SQLite's checks) or cannot be written (disk full, I/O).

    Its own exit status (3), so that scripts can tell it from bad input: what was committed
    before is kept, and the fix is the file's or the disk's (restore a backup, free space).
    """

    exit_status = 3


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
def _translated(path: Path, kind: str) -> Iterator[None]:
    """Raise SQLite's errors within the block as :class:`CatalogueError` naming `path`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:  # OperationalError too: disk full, I/O error, locked
        raise _storage_error(path, kind, exc) from exc


def _guarded(method: Callable) -> Callable:
    """Make a method of :class:`Catalogue` or :class:`ExtractCheckpoint` raise SQLite's errors as ours."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            with _translated(self.path, self.KIND):
                yield from method(self, *args, **kwargs)

        return generator

    @functools.wraps(method)
    def plain(self, *args, **kwargs):
        with _translated(self.path, self.KIND):
            return method(self, *args, **kwargs)

    return plain


@dataclass(frozen=True)
class Entry:
    """What the catalogue knows of one file's identity (for an incremental scan).

    Attributes
    ----------
    id : int
        Row id.
    path : str
        Absolute path.
    size : int
        Size in bytes when it was read.
    mtime_ns : int
        Modification time (ns) when it was read.
    status : str
        ``ok``, ``failed`` or ``gone``.
    segment_seconds : float or None
        Length of the stored segments, None when none are stored.
    """

    id: int
    path: str
    size: int
    mtime_ns: int
    status: str
    segment_seconds: float | None


@dataclass(frozen=True)
class Analysis:
    """The features of one file, as a worker computed them (or why it failed).

    Attributes
    ----------
    path : str
        Absolute path.
    size, mtime_ns : int
        The file's size and modification time (ns), taken before decoding.
    n_samples : int
        Decoded length at 22,050 Hz (0 for a failure).
    bounds : ndarray of shape (n_windows, 2)
        First and last (exclusive) sample of each 30-s window.
    features : ndarray of shape (n_windows, 57)
        Features of each window.
    segment_seconds : float or None
        Segment length, when segments were asked for.
    segment_bounds, segment_features : ndarray or None
        The same for the segments.
    error : str or None
        Why the file failed (the message names it); None when it did not.
    """

    path: str
    size: int
    mtime_ns: int
    n_samples: int = 0
    bounds: np.ndarray | None = None
    features: np.ndarray | None = None
    segment_seconds: float | None = None
    segment_bounds: np.ndarray | None = None
    segment_features: np.ndarray | None = None
    error: str | None = None


@dataclass(frozen=True)
class Prediction:
    """One file's stored prediction (see the module docstring for the fields)."""

    model_id: str
    genre: str
    best_guess: str
    confidence: float
    novelty: float
    familiar: bool
    probabilities: dict[str, float]


def model_id(metadata: dict) -> str:
    """Return the identity of a model: the first 16 hex digits of the SHA-256 of its metadata.

    The metadata (``model.json``) holds the SHA-256 of the weights and the
    calibration, so the id changes when either changes, and two copies of the
    same model folder share it.

    Parameters
    ----------
    metadata : dict
        ``GenreModel.metadata``.

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _connect(
    path: Path,
    schema: str,
    kind: str,
    fmt: str,
    app_id: int,
    create: bool,
    readonly: bool = False,
    verify: bool = False,
) -> sqlite3.Connection:
    """Open (or create) an SQLite file of `kind`, checking its identity, format and version.

    The file is identified (``application_id``, else an older genrekit's ``meta`` table) before
    anything is written to it: a file that is neither new, nor empty, nor of `kind` is refused.
    A `readonly` connection never writes nor creates anything. With `verify`, SQLite's
    ``quick_check`` runs first.

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
        with _translated(path, kind):
            if verify:
                _quick_check(conn, path, kind)
            meta = _identify(conn, path, kind, fmt, app_id, create and not readonly, schema)
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    if meta.get("version") != str(SCHEMA_VERSION):
        conn.close()
        raise CatalogueError(
            f"{path}: {kind} of version {meta.get('version')}; this genrekit reads version {SCHEMA_VERSION}"
        )
    return conn


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
    conn: sqlite3.Connection, path: Path, kind: str, fmt: str, app_id: int, create: bool, schema: str
) -> dict[str, str]:
    """Return the ``meta`` of a file of `kind`: stamp an older genrekit's, create it in an empty file.

    Raises
    ------
    CatalogueError
        If the file belongs to something else (another application id, or tables but no genrekit
        ``meta``), or is empty and not to be created.
    """
    (found,) = conn.execute("PRAGMA application_id").fetchone()
    meta = _read_meta(conn)
    ours = meta is not None and meta.get("format") == fmt
    if found not in (0, app_id) or (found == app_id and not ours):
        raise CatalogueError(f"{path}: not a genrekit {kind} (SQLite application_id {found:#x})")
    if ours:
        if found == 0 and create:  # made by a genrekit older than the stamp
            with _transaction(conn):
                _stamp(conn, app_id)
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
    with _transaction(conn):
        if _read_meta(conn) is None:  # another process may have created it meanwhile
            for statement in filter(str.strip, schema.split(";")):
                conn.execute(statement)
            rows = [("format", fmt), ("version", str(SCHEMA_VERSION))]
            conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
            _stamp(conn, app_id)
    return _read_meta(conn) or {}


def _stamp(conn: sqlite3.Connection, app_id: int) -> None:
    """Write the identity of a genrekit file: its application id and schema version."""
    conn.execute(f"PRAGMA application_id = {int(app_id)}")
    conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")


def _read_meta(conn: sqlite3.Connection) -> dict[str, str] | None:
    """Return the ``meta`` table as a dict, or None when the file has none."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return None
    return dict(conn.execute("SELECT key, value FROM meta"))


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction: all of it is committed, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _blob(values: np.ndarray) -> bytes:
    """Features as little-endian float64 bytes."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def _features(blob: bytes) -> np.ndarray:
    """Read the features of :func:`_blob` back, as a float64 array of shape (n, 57)."""
    return np.frombuffer(blob, dtype="<f8").reshape(-1, len(FEATURE_NAMES))


def _nan_to_null(value: float) -> float | None:
    """SQLite stores NaN as NULL; say so explicitly."""
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class StoredFile:
    """The stored windows (or segments) of one file, read back for re-classification or export.

    Attributes
    ----------
    id : int
        Row id.
    path : str
        Absolute path.
    n_samples : int
        Decoded length.
    bounds : ndarray of shape (n, 2)
        First and last (exclusive) sample of each window or segment.
    features : ndarray of shape (n, 57)
        Their features.
    """

    id: int
    path: str
    n_samples: int
    bounds: np.ndarray
    features: np.ndarray


class Catalogue:
    """A library catalogue: one SQLite file (see the module docstring).

    Parameters
    ----------
    path : path-like
        The database file.
    create : bool
        Create it (and its folder) when missing; otherwise a missing file is an error.
    readonly : bool
        Open it for reading only (a missing file is an error); another process may be writing it.
        In a folder this process cannot write, it is read as immutable (see the module docstring).
    verify : bool
        Run SQLite's ``quick_check`` first (the commands do: a damaged file is named at once).

    Raises
    ------
    CatalogueError
        If the file is not a genrekit catalogue, is of another schema version or
        cannot be opened.
    CatalogueStorageError
        If it is damaged or its disk is full (then, too, when a later call meets it).
    """

    KIND = "catalogue"

    def __init__(
        self, path: str | os.PathLike[str], create: bool = True, readonly: bool = False, verify: bool = False
    ) -> None:
        self.path = Path(path)
        self._conn = _connect(
            self.path, _SCHEMA, self.KIND, _FORMAT, APPLICATION_ID, create, readonly=readonly, verify=verify
        )

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing (one writer) ---------------------------------------------------------------------

    @_guarded
    def put(self, analysis: Analysis, prediction: Prediction | None = None) -> None:
        """Store one file's analysis (or failure) and prediction, replacing what was stored, atomically.

        Parameters
        ----------
        analysis : Analysis
            The worker's result.
        prediction : Prediction, optional
            The current model's prediction (None for a failed file).
        """
        failed = analysis.error is not None
        with _transaction(self._conn):
            (file_id,) = self._conn.execute(
                "INSERT INTO files (path, size, mtime_ns, status, n_samples, segment_seconds, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET size=excluded.size, "
                "mtime_ns=excluded.mtime_ns, status=excluded.status, n_samples=excluded.n_samples, "
                "segment_seconds=excluded.segment_seconds, error=excluded.error RETURNING id",
                (
                    analysis.path,
                    analysis.size,
                    analysis.mtime_ns,
                    "failed" if failed else "ok",
                    None if failed else analysis.n_samples,
                    None if failed else analysis.segment_seconds,
                    analysis.error,
                ),
            ).fetchone()
            self._conn.execute("DELETE FROM windows WHERE file_id = ?", (file_id,))
            self._conn.execute("DELETE FROM predictions WHERE file_id = ?", (file_id,))
            if failed:
                return
            self._insert_windows(file_id, WINDOW, analysis.bounds, analysis.features)
            if analysis.segment_bounds is not None:
                self._insert_windows(file_id, SEGMENT, analysis.segment_bounds, analysis.segment_features)
            if prediction is not None:
                self._insert_prediction(file_id, prediction)

    def _insert_windows(self, file_id: int, kind: int, bounds: np.ndarray, features: np.ndarray) -> None:
        self._conn.executemany(
            "INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?)",
            [
                (file_id, kind, i, int(start), int(end), _blob(row))
                for i, ((start, end), row) in enumerate(zip(bounds, features, strict=True))
            ],
        )

    def _insert_prediction(self, file_id: int, p: Prediction) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                file_id,
                p.model_id,
                p.genre,
                p.best_guess,
                p.confidence,
                _nan_to_null(p.novelty),
                int(p.familiar),
                json.dumps(p.probabilities),
            ),
        )

    @_guarded
    def put_predictions(self, items: Iterable[tuple[int, Prediction]]) -> None:
        """Store new predictions of stored files (by row id), in one transaction."""
        with _transaction(self._conn):
            for file_id, prediction in items:
                self._insert_prediction(file_id, prediction)

    @_guarded
    def mark_gone(self, ids: Sequence[int]) -> None:
        """Mark files as gone (deleted from the library), in one transaction; their data stays."""
        with _transaction(self._conn):
            self._conn.executemany("UPDATE files SET status = 'gone' WHERE id = ?", [(i,) for i in ids])

    @_guarded
    def restat(self, path: str, size: int, mtime_ns: int) -> None:
        """Record a new size and modification time of a file whose audio did not change (its tags did)."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
            )

    # -- reading ----------------------------------------------------------------------------------

    @_guarded
    def entries(self, root: str) -> Iterator[Entry]:
        """Yield the entries of `root` and of every path below it, ordered by path (in pages).

        Parameters
        ----------
        root : str
            An absolute path (a file or a folder, without trailing separator).
        """
        below, after = root + os.sep, root + chr(ord(os.sep) + 1)
        last = ""
        while True:
            rows = self._conn.execute(
                "SELECT id, path, size, mtime_ns, status, segment_seconds FROM files "
                "WHERE (path = ? OR (path >= ? AND path < ?)) AND path > ? ORDER BY path LIMIT ?",
                (root, below, after, last, PAGE),
            ).fetchall()
            yield from (Entry(*row) for row in rows)
            if len(rows) < PAGE:
                return
            last = rows[-1][1]

    @_guarded
    def stale(self, model: str, after: int = 0, limit: int = PAGE) -> list[StoredFile]:
        """Return up to `limit` stored files, of row id above `after`, predicted by no or another model."""
        rows = self._conn.execute(
            "SELECT f.id, f.path, f.n_samples FROM files f LEFT JOIN predictions p ON p.file_id = f.id "
            "WHERE f.id > ? AND f.status = 'ok' AND (p.model_id IS NULL OR p.model_id != ?) "
            "ORDER BY f.id LIMIT ?",
            (after, model, limit),
        ).fetchall()
        return self._with_windows(rows, WINDOW)

    @_guarded
    def stored(self, kind: int = WINDOW) -> Iterator[StoredFile]:
        """Yield every file with status ``ok`` and its windows (or segments), ordered by path, in pages."""
        last = ""
        while True:
            rows = self._conn.execute(
                "SELECT id, path, n_samples FROM files WHERE status = 'ok' AND path > ? "
                "ORDER BY path LIMIT ?",
                (last, PAGE),
            ).fetchall()
            yield from self._with_windows(rows, kind)
            if len(rows) < PAGE:
                return
            last = rows[-1][1]

    def _with_windows(self, rows: list[tuple[int, str, int]], kind: int) -> list[StoredFile]:
        """Attach the windows of `kind` to ``(id, path, n_samples)`` rows (files without any are left out)."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found: dict[int, list[tuple[int, int, bytes]]] = {}
        for file_id, start, end, blob in self._conn.execute(
            f"SELECT file_id, start_sample, end_sample, features FROM windows "
            f"WHERE kind = ? AND file_id IN ({marks}) ORDER BY file_id, idx",
            (kind, *(row[0] for row in rows)),
        ):
            found.setdefault(file_id, []).append((start, end, blob))
        return [
            StoredFile(
                file_id,
                path,
                n_samples,
                np.array([(start, end) for start, end, _ in found[file_id]], dtype=np.int64),
                np.concatenate([_features(blob) for _, _, blob in found[file_id]]),
            )
            for file_id, path, n_samples in rows
            if file_id in found
        ]

    @_guarded
    def counts(self) -> dict[str, object]:
        """Return files per status, hours of audio, files per predicted genre, and the models seen."""
        status = dict(self._conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        (samples,) = self._conn.execute(
            "SELECT COALESCE(SUM(n_samples), 0) FROM files WHERE status = 'ok'"
        ).fetchone()
        genres = dict(
            self._conn.execute(
                "SELECT p.genre, COUNT(*) FROM predictions p JOIN files f ON f.id = p.file_id "
                "WHERE f.status = 'ok' GROUP BY p.genre ORDER BY COUNT(*) DESC, p.genre"
            )
        )
        models = dict(
            self._conn.execute(
                "SELECT p.model_id, COUNT(*) FROM predictions p JOIN files f ON f.id = p.file_id "
                "WHERE f.status = 'ok' GROUP BY p.model_id"
            )
        )
        return {"status": status, "samples": samples, "genres": genres, "models": models}

    @_guarded
    def search(
        self, text: str = "", genre: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict]:
        """Return files whose path contains `text` (and whose genre is `genre`), ordered by path.

        Each item: ``id``, ``path``, ``status``, ``n_samples``, ``error``, ``genre``,
        ``best_guess``, ``confidence``, ``novelty``, ``familiar``, ``model_id``
        (the prediction's fields are None when there is none).
        """
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cursor = self._conn.execute(
            "SELECT f.id, f.path, f.status, f.n_samples, f.error, p.genre, p.best_guess, p.confidence, "
            "p.novelty, p.familiar, p.model_id FROM files f LEFT JOIN predictions p ON p.file_id = f.id "
            "WHERE f.path LIKE ? ESCAPE '\\' AND (? IS NULL OR p.genre = ?) ORDER BY f.path LIMIT ? OFFSET ?",
            (pattern, genre, genre, limit, offset),
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    @_guarded
    def path_of(self, file_id: int) -> str | None:
        """Return the path of the file numbered `file_id` (the ``id`` of :meth:`search`), None if unknown."""
        row = self._conn.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else row[0]

    @_guarded
    def predictions(self) -> Iterator[tuple[str, Prediction]]:
        """Yield ``(path, prediction)`` of every file with status ``ok`` and a prediction, by path."""
        last = ""
        while True:
            rows = self._conn.execute(
                "SELECT f.path, p.model_id, p.genre, p.best_guess, p.confidence, p.novelty, p.familiar, "
                "p.probabilities FROM files f JOIN predictions p ON p.file_id = f.id "
                "WHERE f.status = 'ok' AND f.path > ? ORDER BY f.path LIMIT ?",
                (last, PAGE),
            ).fetchall()
            for path, model, genre, best, confidence, novelty, familiar, proba in rows:
                novelty = math.nan if novelty is None else novelty
                proba = json.loads(proba)
                yield path, Prediction(model, genre, best, confidence, novelty, bool(familiar), proba)
            if len(rows) < PAGE:
                return
            last = rows[-1][0]


class ExtractCheckpoint:
    """The progress of ``genrekit extract``: the rows of each finished source file, one transaction each.

    Parameters
    ----------
    path : path-like
        The checkpoint file (``OUT.progress.db``).
    settings : dict
        The extraction's settings (JSON-able); a resumed run must use the same.
    resume : bool
        Keep what the file holds; otherwise start it afresh.

    Raises
    ------
    CatalogueError
        If the file cannot be opened or is not a genrekit extract checkpoint.
    """

    KIND = "extract checkpoint"

    def __init__(self, path: str | os.PathLike[str], settings: dict, resume: bool) -> None:
        self.path = Path(path)
        if not resume:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._conn = _connect(
            self.path, _CHECKPOINT_SCHEMA, self.KIND, _CHECKPOINT_FORMAT, CHECKPOINT_APPLICATION_ID, True
        )
        text = json.dumps(settings, sort_keys=True)
        with _translated(self.path, self.KIND), _transaction(self._conn):
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('settings', ?)", (text,))
            (stored,) = self._conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        self.settings: dict = json.loads(stored)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    @_guarded
    def add(self, source: str, filenames: Sequence[str], lengths: Sequence[int], label: str, values) -> None:
        """Record the rows of one finished source file (replacing any earlier record of it)."""
        with _transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                (
                    source,
                    json.dumps(list(filenames)),
                    json.dumps(list(map(int, lengths))),
                    label,
                    _blob(values),
                ),
            )

    @_guarded
    def sources(self) -> Iterator[tuple[str, list[str], list[int], str, np.ndarray]]:
        """Yield ``(source, filenames, lengths, label, features)`` of every recorded source file."""
        for source, names, lengths, label, blob in self._conn.execute(
            "SELECT source, filenames, lengths, label, features FROM sources ORDER BY source"
        ).fetchall():
            yield source, json.loads(names), json.loads(lengths), label, _features(blob)
