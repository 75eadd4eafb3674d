"""The progress of ``genrekit extract --resume``: one SQLite file, one transaction per finished source file.

A checkpoint costs the same whatever the size of the table: killing ``extract`` at any moment
loses at most the files not yet committed (see :mod:`genrekit.core.store`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from genrekit.core.store import connect, features_blob, guarded, transaction, translated

CHECKPOINT_APPLICATION_ID: int = 0x47524B58
"""SQLite ``PRAGMA application_id`` of an ``extract --resume`` checkpoint (``GRKX``)."""


_CHECKPOINT_FORMAT = "genrekit-extract-progress"


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


def blob_features(blob: bytes, rows: int) -> np.ndarray:
    """Read the `rows` rows of features of :func:`~genrekit.core.store.features_blob` back (any width)."""
    return np.frombuffer(blob, dtype="<f8").reshape(rows, -1)


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
        self._conn = connect(
            self.path, _CHECKPOINT_SCHEMA, self.KIND, _CHECKPOINT_FORMAT, CHECKPOINT_APPLICATION_ID, True
        )
        text = json.dumps(settings, sort_keys=True)
        with translated(self.path, self.KIND), transaction(self._conn):
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('settings', ?)", (text,))
            (stored,) = self._conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        self.settings: dict = json.loads(stored)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    @guarded
    def add(self, source: str, filenames: Sequence[str], lengths: Sequence[int], label: str, values) -> None:
        """Record the rows of one finished source file (replacing any earlier record of it)."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                (
                    source,
                    json.dumps(list(filenames)),
                    json.dumps(list(map(int, lengths))),
                    label,
                    features_blob(values),
                ),
            )

    @guarded
    def sources(self) -> Iterator[tuple[str, list[str], list[int], str, np.ndarray]]:
        """Yield ``(source, filenames, lengths, label, features)`` of every recorded source file."""
        for source, names, lengths, label, blob in self._conn.execute(
            "SELECT source, filenames, lengths, label, features FROM sources ORDER BY source"
        ).fetchall():
            lengths = json.loads(lengths)
            yield source, json.loads(names), lengths, label, blob_features(blob, len(lengths))
