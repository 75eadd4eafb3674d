"""Questions asked of a library catalogue, with JSON-ready answers (for the CLI and a web page).

:func:`stats` (files, hours, per genre, uncertain, failed), :func:`tracks` (a
searchable list), :func:`projection` (a 2-D map of the library), :func:`similar`
(nearest tracks) and :func:`table` (the GTZAN feature table of the stored
windows or segments). Every answer holds only dicts, lists, strings, numbers
and None, so ``json.dumps`` takes it as it is.

Tracks are compared in the standardised feature space: each file is the mean
of its 30-s windows' 57 features, and each feature is scaled to zero mean and
unit variance over the files of the catalogue (the paper's playlist use:
similar tracks are near each other). :func:`similar` can compare them in the
embedding space instead (``space="embedding"``): the 200-d musicnn embeddings
that ``scan --tags`` stores, by cosine distance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genrekit.audio.decode import genre_from_path
from genrekit.audio.window import segment_name
from genrekit.core.errors import GenrekitError
from genrekit.core.schema import FEATURE_NAMES, GENRES, SAMPLE_RATE
from genrekit.library.catalogue import EMBEDDING_DIM, SEGMENT, WINDOW, Catalogue


def stats(catalogue: Catalogue) -> dict:
    """Count the catalogue's files: analysed, failed, gone, hours of audio, per genre, uncertain.

    Returns
    -------
    dict
        ``files`` (analysed), ``failed``, ``gone``, ``hours``, ``genres``
        (genre -> files, ``uncertain`` and ``not music`` included), ``uncertain``, ``models``
        (model id -> files predicted by it), ``taggers`` (tagger -> files with its tags and
        embedding), ``music_checked`` (files the music detector ran on), ``not_music``.
    """
    counts = catalogue.counts()
    status = counts["status"]
    return {
        "files": status.get("ok", 0),
        "failed": status.get("failed", 0),
        "gone": status.get("gone", 0),
        "hours": counts["samples"] / SAMPLE_RATE / 3600,
        "genres": counts["genres"],
        "uncertain": counts["genres"].get("uncertain", 0),
        "models": counts["models"],
        "taggers": counts["taggers"],
        "music_checked": counts["music_checked"],
        "not_music": counts["not_music"],
    }


def tracks(
    catalogue: Catalogue, text: str = "", genre: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict]:
    """List the files whose path contains `text` (and whose stored genre is `genre`), by path.

    Returns
    -------
    list of dict
        ``id`` (for :meth:`Catalogue.path_of`), ``path``, ``status``, ``duration`` (s),
        ``genre``, ``best_guess``, ``confidence``, ``novelty``, ``familiar``, ``model_id``, ``error``; the
        prediction's fields are None for a file without one.
    """
    rows = catalogue.search(text, genre, limit, offset)
    for row in rows:
        samples = row.pop("n_samples")
        row["duration"] = None if samples is None else samples / SAMPLE_RATE
        row["familiar"] = None if row["familiar"] is None else bool(row["familiar"])
    return rows


def _file_matrix(catalogue: Catalogue) -> tuple[list[int], list[str], np.ndarray]:
    """Row ids and paths of the analysed files, and their standardised mean window features."""
    ids, paths, rows = [], [], []
    for stored in catalogue.stored(WINDOW):
        ids.append(stored.id)
        paths.append(stored.path)
        rows.append(stored.features.mean(axis=0))
    if not rows:
        raise GenrekitError(f"{catalogue.path}: no analysed files in the catalogue")
    matrix = np.asarray(rows)
    std = matrix.std(axis=0)
    return ids, paths, (matrix - matrix.mean(axis=0)) / np.where(std > 0, std, 1.0)


def embedding_matrix(catalogue: Catalogue) -> tuple[list[int], list[str], np.ndarray]:
    """Row ids and paths of the files with an embedding of every stored tagger, and those embeddings.

    Each tagger's 200 values are scaled to unit length (a zero vector stays zero); the taggers
    are side by side in name order.

    Raises
    ------
    GenrekitError
        If the catalogue holds no embeddings (it was scanned without ``--tags``).
    """
    taggers, ids, paths, matrix = catalogue.stored_embeddings()
    blocks = matrix.reshape(len(matrix), len(taggers), EMBEDDING_DIM)
    norms = np.linalg.norm(blocks, axis=2, keepdims=True)
    return ids, paths, (blocks / np.where(norms > 0, norms, 1.0)).reshape(len(matrix), -1)


def _genres(catalogue: Catalogue) -> dict[str, str]:
    """Path -> stored genre (``uncertain`` included) of the analysed files."""
    return {path: prediction.genre for path, prediction in catalogue.predictions()}


def projection(catalogue: Catalogue) -> dict:
    """Project the library onto its first two principal components (a 2-D map, coloured by genre).

    Returns
    -------
    dict
        ``points``: one ``{"id", "path", "genre", "x", "y"}`` per analysed file;
        ``explained_variance``: the share of the variance along x and along y.
    """
    ids, paths, matrix = _file_matrix(catalogue)
    _, singular, vt = np.linalg.svd(matrix, full_matrices=False)
    xy = matrix @ vt[:2].T
    if xy.shape[1] < 2:  # a single file
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    variance = singular**2
    share = (variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance))[:2]
    genres = _genres(catalogue)
    return {
        "points": [
            {"id": i, "path": path, "genre": genres.get(path), "x": float(x), "y": float(y)}
            for i, path, (x, y) in zip(ids, paths, xy, strict=True)
        ],
        "explained_variance": [float(v) for v in np.pad(share, (0, 2 - len(share)))],
    }


def file_key(path: str | os.PathLike[str]) -> str:
    """Return the catalogue's key of a file: its absolute path, or its URL as a scan stores it.

    Parameters
    ----------
    path : path-like
        A file (relative paths are taken from the current folder), or its URL.

    Returns
    -------
    str
        The absolute path; for a URL, the backend's own spelling, as the scan's
        listing stores it (``fs.unstrip_protocol``: ``s3a://`` as ``s3://``,
        ``gs://`` as ``gcs://``, ``local://`` as ``file://``, and whatever else the
        backend normalises).

    Raises
    ------
    BackendError
        If the URL's fsspec backend is not installed.
    """
    from genrekit.library import remote

    if not remote.is_url(path):
        return str(Path(path).resolve())
    fs, stripped = remote.filesystem(path)
    return fs.unstrip_protocol(stripped)


SPACES: tuple[str, ...] = ("features", "embedding")
"""The spaces :func:`similar` compares tracks in."""


def similar(
    catalogue: Catalogue, path: str | os.PathLike[str], n: int = 10, space: str = "features"
) -> list[dict]:
    """Return the `n` tracks nearest to `path`, nearest first.

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue.
    path : path-like
        A file of the catalogue (relative paths are taken from the current folder), or its URL.
    n : int
        How many tracks.
    space : {"features", "embedding"}
        ``features``: Euclidean distance in the standardised feature space. ``embedding``:
        cosine distance (1 - cosine similarity, 0 to 2) between the stored musicnn embeddings,
        each tagger's embedding scaled to unit length and those of every stored tagger side by
        side (so the distance is the mean of the taggers' cosine distances).

    Returns
    -------
    list of dict
        ``{"id", "path", "genre", "distance"}`` for each track.

    Raises
    ------
    GenrekitError
        If `path` is not an analysed file of the catalogue (with an embedding), or the catalogue
        holds no embeddings, or `space` is unknown.
    """
    key = file_key(path)
    if space not in SPACES:
        raise GenrekitError(f"unknown space {space!r}; choose from {', '.join(SPACES)}")
    ids, paths, matrix = _file_matrix(catalogue) if space == "features" else embedding_matrix(catalogue)
    try:
        row = paths.index(key)
    except ValueError:
        what = (
            "an analysed file" if space == "features" else "a file with an embedding (genrekit scan --tags)"
        )
        raise GenrekitError(f"{path}: not {what} of the catalogue {catalogue.path}") from None
    if space == "features":
        distances = np.sqrt(((matrix - matrix[row]) ** 2).sum(axis=1))
    else:
        distances = 1.0 - (matrix @ matrix[row]) / (len(matrix[row]) / EMBEDDING_DIM)
    distances[row] = math.inf
    order = np.argsort(distances, kind="stable")[: min(n, len(paths) - 1)]
    genres = _genres(catalogue)
    return [
        {"id": ids[i], "path": paths[i], "genre": genres.get(paths[i]), "distance": float(distances[i])}
        for i in order
    ]


def table(
    catalogue: Catalogue, segments: bool = False, genres: Sequence[str] | None = GENRES
) -> pd.DataFrame:
    """Return the GTZAN feature table of the stored windows (or segments), ready for ``genrekit train``.

    Each 30-s window (or segment) is one row. A file of one window keeps its
    name (``blues.00000.wav``, whose features equal its ``extract`` row);
    window or segment ``i`` of a longer file is named like a segment,
    ``song.<i>.mp3``. Files that share a name are named by their path below the
    common folder, as by :func:`genrekit.extraction.extract.extract`. The label is
    the genre folder holding the file (see :func:`genrekit.audio.decode.genre_from_path`).

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue.
    segments : bool
        Rows of the stored segments (``scan --segment-seconds``) instead of windows.
    genres : sequence of str or None
        Folder names taken as labels (default: the ten GTZAN genres; None: any).

    Returns
    -------
    pandas.DataFrame
        Columns ``TABLE_COLUMNS``, files ordered by path.
    """
    from genrekit.extraction.extract import rows_frame, unique_names

    stored = list(catalogue.stored(SEGMENT if segments else WINDOW))
    names = unique_names([Path(f.path) for f in stored])
    frames = []
    for f in stored:
        name = names[Path(f.path)]
        rows = [segment_name(name, i) for i in range(len(f.bounds))]
        if not segments and len(rows) == 1:
            rows = [name]
        label = genre_from_path(f.path, genres)
        frames.append(rows_frame(rows, f.bounds[:, 1] - f.bounds[:, 0], f.features, label))
    if not frames:
        return rows_frame([], [], np.empty((0, len(FEATURE_NAMES))), "")
    return pd.concat(frames, ignore_index=True)
