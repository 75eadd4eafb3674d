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
``tags`` (``scan --tags``)
    Per file and musicnn tagger (``tagger``: ``msd`` or ``mtt``): the file-level tag
    ``probabilities`` (JSON, tag -> probability: the mean over 3-s patches) and the 200-d
    ``embedding`` (the mean of the patch embeddings, 200 little-endian float32 values).
``music`` (``scan --detect-music``)
    Per file: the music ``probability`` of the detector (:mod:`genrekit.tagger.music`), the
    RMS ``level_dbfs`` and ``is_music``, the verdict then. A file's stored prediction takes it
    into account (its genre is ``not music`` when the detector rejected it).

Identity: a catalogue carries SQLite's ``application_id`` :data:`APPLICATION_ID` and
``user_version`` :data:`SCHEMA_VERSION` (an extract checkpoint :data:`CHECKPOINT_APPLICATION_ID`).
genrekit creates its tables only in a new or empty file and refuses any other SQLite file, so it
never writes into another program's database; a catalogue of an older genrekit, which has the
``meta`` table but no stamp, is stamped when it is first opened for writing.

Versions: a catalogue of version 1 (before ``tags`` and ``music``) is upgraded in place, in one
transaction, the first time a command opens it for writing (``scan``, ``library tag``); a
read-only command reads it as it is (no tags). A catalogue of a newer genrekit is refused.

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

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.errors import GenrekitError
from genrekit.core.store import (
    blob_features,
    connect,
    features_blob,
    guarded,
    read_meta,
    transaction,
    translated,
)

APPLICATION_ID: int = 0x47524B43
"""SQLite ``PRAGMA application_id`` of a catalogue (``GRKC`` in ASCII)."""

SCHEMA_VERSION: int = 2
"""Version of the catalogue's tables: 2 added ``tags`` and ``music`` (version 1 is upgraded)."""

EMBEDDING_DIM: int = 200
"""Length of a stored embedding (musicnn's penultimate layer)."""


WINDOW, SEGMENT = 0, 1
"""``windows.kind``: a 30-s prediction window, or a table segment (``--segments``)."""

PAGE: int = 1000
"""Rows read per query when walking a large table (keeps memory flat)."""

_FORMAT = "genrekit-catalogue"

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

_TAG_TABLES = """
CREATE {temp}TABLE tags (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    tagger TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (file_id, tagger)
) WITHOUT ROWID;
CREATE {temp}TABLE music (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    probability REAL NOT NULL,
    level_dbfs REAL NOT NULL,
    is_music INTEGER NOT NULL
);
"""


def _create_tag_tables(conn, temp: bool = False) -> None:
    """Create the tables of version 2 (``TEMP`` ones, empty, to read a version-1 file as it is)."""
    for statement in filter(str.strip, _TAG_TABLES.format(temp="TEMP " if temp else "").split(";")):
        conn.execute(statement)


def _upgrade(conn, found: int) -> None:
    """Bring a catalogue of version `found` to :data:`SCHEMA_VERSION` (run inside a transaction)."""
    if found < 2:
        _create_tag_tables(conn)


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
    taggers : frozenset of str
        The taggers whose tags are stored.
    music : bool
        Whether the music detector's decision is stored.
    """

    id: int
    path: str
    size: int
    mtime_ns: int
    status: str
    segment_seconds: float | None
    taggers: frozenset[str] = frozenset()
    music: bool = False


@dataclass(frozen=True)
class FileTags:
    """One tagger's file-level output, as a catalogue stores it.

    Attributes
    ----------
    tagger : str
        ``msd`` or ``mtt``.
    probabilities : dict of str to float
        Tag -> probability (the mean over the file's 3-s patches).
    embedding : ndarray of shape (200,), float32
        The mean of the patch embeddings.
    """

    tagger: str
    probabilities: dict[str, float]
    embedding: np.ndarray


@dataclass(frozen=True)
class MusicCheck:
    """The music detector's decision on one file (see :class:`genrekit.tagger.music.MusicDecision`)."""

    probability: float
    level_dbfs: float
    is_music: bool


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
    tags : tuple of FileTags
        The taggers' outputs, when asked for.
    music : MusicCheck or None
        The music detector's decision, when asked for.
    tags_only : bool
        Only `tags` and `music` were computed (a file whose stored features are kept).
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
    tags: tuple[FileTags, ...] = ()
    music: MusicCheck | None = None
    tags_only: bool = False


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


def embedding_blob(values: np.ndarray) -> bytes:
    """Return an embedding as little-endian float32 bytes."""
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def blob_embedding(blob: bytes) -> np.ndarray:
    """Read an embedding of :func:`embedding_blob` back, as float64 of shape (200,)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float64)


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
    music : float
        The stored music probability (NaN when the detector did not run on it).
    """

    id: int
    path: str
    n_samples: int
    bounds: np.ndarray
    features: np.ndarray
    music: float = math.nan


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

    Attributes
    ----------
    version : int
        The schema version of the file as opened: :data:`SCHEMA_VERSION`, or 1 for an older
        catalogue opened read-only (read without tags; a writer upgrades it first).

    Raises
    ------
    CatalogueError
        If the file is not a genrekit catalogue, is of a newer schema version or
        cannot be opened.
    CatalogueStorageError
        If it is damaged or its disk is full (then, too, when a later call meets it).
    """

    KIND = "catalogue"

    def __init__(
        self, path: str | os.PathLike[str], create: bool = True, readonly: bool = False, verify: bool = False
    ) -> None:
        self.path = Path(path)
        self._conn = connect(
            self.path,
            _SCHEMA + _TAG_TABLES.format(temp=""),
            self.KIND,
            _FORMAT,
            APPLICATION_ID,
            create,
            readonly=readonly,
            verify=verify,
            version=SCHEMA_VERSION,
            upgrade=_upgrade,
        )
        self.version = int((read_meta(self._conn) or {})["version"])
        if self.version < SCHEMA_VERSION:  # read-only: an older catalogue read as it is, without tags
            with translated(self.path, self.KIND):
                _create_tag_tables(self._conn, temp=True)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing (one writer) ---------------------------------------------------------------------

    @guarded
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
        with transaction(self._conn):
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
            for table in ("windows", "predictions", "tags", "music"):
                self._conn.execute(f"DELETE FROM {table} WHERE file_id = ?", (file_id,))
            if failed:
                return
            self._insert_windows(file_id, WINDOW, analysis.bounds, analysis.features)
            if analysis.segment_bounds is not None:
                self._insert_windows(file_id, SEGMENT, analysis.segment_bounds, analysis.segment_features)
            self._insert_tags(file_id, analysis)
            if prediction is not None:
                self._insert_prediction(file_id, prediction)

    @guarded
    def put_tags(self, analysis: Analysis) -> bool:
        """Add the tags and music decision of a tags-only analysis to a stored file, atomically.

        The file's features stay. A new music decision removes the file's prediction, which
        :meth:`stale` then offers for re-classification with it.

        Parameters
        ----------
        analysis : Analysis
            A successful analysis with ``tags_only``.

        Returns
        -------
        bool
            False when the catalogue holds no analysed file at that path (nothing is stored).
        """
        with transaction(self._conn):
            row = self._conn.execute(
                "SELECT id FROM files WHERE path = ? AND status = 'ok'", (analysis.path,)
            ).fetchone()
            if row is None:
                return False
            if analysis.music is not None:
                self._conn.execute("DELETE FROM predictions WHERE file_id = ?", row)
            self._insert_tags(row[0], analysis)
        return True

    def _insert_tags(self, file_id: int, analysis: Analysis) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?)",
            [
                (file_id, t.tagger, json.dumps(t.probabilities), embedding_blob(t.embedding))
                for t in analysis.tags
            ],
        )
        if analysis.music is not None:
            m = analysis.music
            self._conn.execute(
                "INSERT OR REPLACE INTO music VALUES (?, ?, ?, ?)",
                (file_id, m.probability, m.level_dbfs, int(m.is_music)),
            )

    def _insert_windows(self, file_id: int, kind: int, bounds: np.ndarray, features: np.ndarray) -> None:
        self._conn.executemany(
            "INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?)",
            [
                (file_id, kind, i, int(start), int(end), features_blob(row))
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

    @guarded
    def put_predictions(self, items: Iterable[tuple[int, Prediction]]) -> None:
        """Store new predictions of stored files (by row id), in one transaction."""
        with transaction(self._conn):
            for file_id, prediction in items:
                self._insert_prediction(file_id, prediction)

    @guarded
    def mark_gone(self, ids: Sequence[int]) -> None:
        """Mark files as gone (deleted from the library), in one transaction; their data stays."""
        with transaction(self._conn):
            self._conn.executemany("UPDATE files SET status = 'gone' WHERE id = ?", [(i,) for i in ids])

    @guarded
    def restat(self, path: str, size: int, mtime_ns: int) -> None:
        """Record a new size and modification time of a file whose audio did not change (its tags did)."""
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
            )

    # -- reading ----------------------------------------------------------------------------------

    @guarded
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
                "SELECT id, path, size, mtime_ns, status, segment_seconds, "
                "(SELECT group_concat(tagger) FROM tags WHERE file_id = files.id), "
                "EXISTS (SELECT 1 FROM music WHERE file_id = files.id) FROM files "
                "WHERE (path = ? OR (path >= ? AND path < ?)) AND path > ? ORDER BY path LIMIT ?",
                (root, below, after, last, PAGE),
            ).fetchall()
            for *row, taggers, music in rows:
                yield Entry(*row, frozenset(taggers.split(",") if taggers else ()), bool(music))
            if len(rows) < PAGE:
                return
            last = rows[-1][1]

    @guarded
    def stale(self, model: str, after: int = 0, limit: int = PAGE) -> list[StoredFile]:
        """Return up to `limit` stored files, of row id above `after`, predicted by no or another model."""
        rows = self._conn.execute(
            "SELECT f.id, f.path, f.n_samples, m.probability FROM files f "
            "LEFT JOIN predictions p ON p.file_id = f.id LEFT JOIN music m ON m.file_id = f.id "
            "WHERE f.id > ? AND f.status = 'ok' AND (p.model_id IS NULL OR p.model_id != ?) "
            "ORDER BY f.id LIMIT ?",
            (after, model, limit),
        ).fetchall()
        return self._with_windows(rows, WINDOW)

    @guarded
    def stored(self, kind: int = WINDOW) -> Iterator[StoredFile]:
        """Yield every file with status ``ok`` and its windows (or segments), ordered by path, in pages."""
        last = ""
        while True:
            rows = self._conn.execute(
                "SELECT f.id, f.path, f.n_samples, m.probability FROM files f "
                "LEFT JOIN music m ON m.file_id = f.id WHERE f.status = 'ok' AND f.path > ? "
                "ORDER BY f.path LIMIT ?",
                (last, PAGE),
            ).fetchall()
            yield from self._with_windows(rows, kind)
            if len(rows) < PAGE:
                return
            last = rows[-1][1]

    def _with_windows(self, rows: list[tuple[int, str, int, float | None]], kind: int) -> list[StoredFile]:
        """Attach the windows of `kind` to ``(id, path, n_samples, music)`` rows (files without: left out)."""
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
                np.concatenate([blob_features(blob) for _, _, blob in found[file_id]]),
                math.nan if music is None else music,
            )
            for file_id, path, n_samples, music in rows
            if file_id in found
        ]

    @guarded
    def stored_embeddings(self) -> tuple[list[str], list[int], list[str], np.ndarray]:
        """Return every stored tagger (in name order), then :meth:`embeddings` of them all.

        Raises
        ------
        GenrekitError
            If the catalogue holds no embeddings (it was scanned without ``--tags``).
        """
        taggers = sorted(self.counts()["taggers"])
        if not taggers:
            raise GenrekitError(f"{self.path}: no embeddings in the catalogue; run genrekit scan --tags")
        return (taggers, *self.embeddings(taggers))

    def embeddings(self, taggers: Sequence[str]) -> tuple[list[int], list[str], np.ndarray]:
        """Return the analysed files that have an embedding of every one of `taggers`, by path.

        Parameters
        ----------
        taggers : sequence of str
            Tagger names; a file's row is their embeddings side by side, in this order.

        Returns
        -------
        ids : list of int
        paths : list of str
        matrix : ndarray of shape (files, 200 * len(taggers)), float64
        """
        ids, paths, rows = [], [], []
        marks = ",".join("?" * len(taggers))
        order = {name: i for i, name in enumerate(taggers)}
        current: tuple[int, str] | None = None
        parts: dict[str, np.ndarray] = {}
        cursor = self._conn.execute(
            f"SELECT f.id, f.path, t.tagger, t.embedding FROM files f JOIN tags t ON t.file_id = f.id "
            f"WHERE f.status = 'ok' AND t.tagger IN ({marks}) ORDER BY f.path",
            tuple(taggers),
        )
        for file_id, path, tagger, blob in [*cursor, (None, None, None, None)]:
            if current is not None and file_id != current[0]:
                if len(parts) == len(order):
                    ids.append(current[0])
                    paths.append(current[1])
                    rows.append(np.concatenate([parts[name] for name in taggers]))
                parts = {}
            current = (file_id, path)
            if tagger is not None:
                parts[tagger] = blob_embedding(blob)
        width = EMBEDDING_DIM * len(taggers)
        return ids, paths, np.asarray(rows, dtype=np.float64).reshape(-1, width)

    @guarded
    def file_tags(self, path: str) -> list[FileTags]:
        """Return the stored tags of the file at `path` (an empty list when none), by tagger name."""
        rows = self._conn.execute(
            "SELECT t.tagger, t.probabilities, t.embedding FROM files f JOIN tags t ON t.file_id = f.id "
            "WHERE f.path = ? ORDER BY t.tagger",
            (path,),
        ).fetchall()
        return [FileTags(name, json.loads(proba), blob_embedding(blob)) for name, proba, blob in rows]

    @guarded
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
        taggers = dict(
            self._conn.execute(
                "SELECT t.tagger, COUNT(*) FROM tags t JOIN files f ON f.id = t.file_id "
                "WHERE f.status = 'ok' GROUP BY t.tagger ORDER BY t.tagger"
            )
        )
        music = dict(
            self._conn.execute(
                "SELECT m.is_music, COUNT(*) FROM music m JOIN files f ON f.id = m.file_id "
                "WHERE f.status = 'ok' GROUP BY m.is_music"
            )
        )
        return {
            "status": status,
            "samples": samples,
            "genres": genres,
            "models": models,
            "taggers": taggers,
            "music_checked": sum(music.values()),
            "not_music": music.get(0, 0),
        }

    @guarded
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

    @guarded
    def path_of(self, file_id: int) -> str | None:
        """Return the path of the file numbered `file_id` (the ``id`` of :meth:`search`), None if unknown."""
        row = self._conn.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else row[0]

    @guarded
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


# -- the tag journal: every tag genrekit writes into a file, old and new value ---------------------

_JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS tag_journal (
    id INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    time REAL NOT NULL,
    path TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    model_id TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tag_journal_path ON tag_journal(path, field)
"""


@dataclass(frozen=True)
class JournalEntry:
    """One field of one file that genrekit rewrote.

    Attributes
    ----------
    id : int
        Row id (grows with time).
    run : str
        The id of the tagging run that wrote it.
    time : float
        When (seconds since the epoch, UTC).
    path : str
        The file.
    field : str
        The tag field (``genre``, ``mood``, ``genrekit_confidence`` ...).
    old, new : tuple of str
        The values before and after (empty: the field was absent / removed).
    model_id : str
        The model whose prediction was written.
    undone : bool
        Whether ``library tag --undo`` restored `old`.
    """

    id: int
    run: str
    time: float
    path: str
    field: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    model_id: str
    undone: bool


class TagJournal:
    """The journal of tag changes, kept in a catalogue's SQLite file (table ``tag_journal``).

    The table is created on first use, so older catalogues gain it without a
    schema change. A change is recorded *before* the file is replaced: after a
    kill in between, the journal names a change the file never got, which undo
    recognises (the file already holds the old values) and which is harmless.

    Parameters
    ----------
    catalogue : Catalogue
        An open catalogue (read-only ones can be read, not written).
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self._conn = catalogue._conn
        self._ready = False

    def _exists(self) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='tag_journal'"
        ).fetchone()
        return found is not None

    def record(self, run: str, path: str, changes: dict, model: str, when: float) -> None:
        """Record the changes of one file in one transaction.

        Parameters
        ----------
        run : str
            The id of the tagging run.
        path : str
            The file.
        changes : dict
            Field -> ``(old values, new values)``.
        model : str
            The model id.
        when : float
            Time of the change (seconds since the epoch).
        """
        with transaction(self._conn):
            if not self._ready:
                for statement in filter(str.strip, _JOURNAL_SCHEMA.split(";")):
                    self._conn.execute(statement)
                self._ready = True
            self._conn.executemany(
                "INSERT INTO tag_journal (run, time, path, field, old, new, model_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (run, when, path, name, json.dumps(list(old)), json.dumps(list(new)), model)
                    for name, (old, new) in changes.items()
                ],
            )

    def entries(self, since: float | None = None, include_undone: bool = False) -> list[JournalEntry]:
        """Return the entries at or after `since` (all when None), oldest first."""
        if not self._exists():
            return []
        rows = self._conn.execute(
            "SELECT id, run, time, path, field, old, new, model_id, undone FROM tag_journal "
            "WHERE time >= ? AND (? OR undone = 0) ORDER BY id",
            (-math.inf if since is None else since, int(include_undone)),
        ).fetchall()
        return [
            JournalEntry(i, run, t, path, name, tuple(json.loads(old)), tuple(json.loads(new)), m, bool(u))
            for i, run, t, path, name, old, new, m, u in rows
        ]

    def mark_undone(self, ids: Sequence[int]) -> None:
        """Mark entries as undone, in one transaction."""
        with transaction(self._conn):
            self._conn.executemany("UPDATE tag_journal SET undone = 1 WHERE id = ?", [(i,) for i in ids])

    def written(self, field: str = "genre") -> dict[str, tuple[str, ...]]:
        """Return, per file, the last value genrekit wrote into `field` and did not undo."""
        return {entry.path: entry.new for entry in self.entries() if entry.field == field}


def failed_files(catalogue: Catalogue) -> list[tuple[str, str]]:
    """Return ``(path, error)`` of every file the scan could not analyse (status ``failed``), by path."""
    rows = catalogue._conn.execute(
        "SELECT path, COALESCE(error, '') FROM files WHERE status = 'failed' ORDER BY path"
    ).fetchall()
    return [(path, why) for path, why in rows]
