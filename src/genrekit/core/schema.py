"""The GTZAN feature-table schema shared by every stage of genrekit.

The column names, their order and the audio constants follow the public GTZAN
``features_30_sec.csv`` table (Kaggle, andradaolteanu), whose features were
computed with librosa at its defaults. A table may hold tagger embeddings instead of the 57
features (:func:`declared_features`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genrekit.core.errors import TableError

SAMPLE_RATE: int = 22050
"""Sample rate (Hz) at which all features are computed."""

N_FFT: int = 2048
"""STFT frame length in samples (librosa's default)."""

HOP_LENGTH: int = 512
"""STFT hop in samples (librosa's default)."""

GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
"""The ten GTZAN genres, in the table's (alphabetical) order."""

_STAT_FEATURES: tuple[str, ...] = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"{name}_{stat}" for name in _STAT_FEATURES for stat in ("mean", "var")),
    "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, 21) for stat in ("mean", "var")),
)
"""The 57 feature columns, in the table's order."""

ID_COLUMNS: tuple[str, ...] = ("filename", "length")
"""Columns before the features: the clip's file name and its length in samples."""

LABEL_COLUMN: str = "label"
"""The last column: the genre label (empty for unlabelled audio)."""

TABLE_COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *FEATURE_NAMES, LABEL_COLUMN)
"""All 60 columns of a GTZAN feature table, in order."""

EMBEDDING_SIZES: dict[str, int] = {"msd": 200, "mtt": 200}
"""Columns of the embeddings genrekit computes (the musicnn taggers' penultimate layer), by space;
the block of another space is as wide as its highest column number + 1."""

_EMBEDDING_COLUMN = re.compile(r"^(?P<space>[a-z][a-z0-9]*)_emb_(?P<index>\d{3,})$")
"""An embedding column: ``<space>_emb_<dimension>`` with at least three digits (``msd_emb_007``)."""


def embedding_columns(space: str, size: int | None = None) -> tuple[str, ...]:
    """Return the columns of an embedding: ``<space>_emb_000`` ... (``size`` of them).

    Parameters
    ----------
    space : str
        The embedding's name (``"msd"``, ``"mtt"``: the musicnn taggers).
    size : int, optional
        Its dimensions; :data:`EMBEDDING_SIZES` gives those of the known spaces.

    Returns
    -------
    tuple of str
    """
    size = EMBEDDING_SIZES[space] if size is None else size
    return tuple(f"{space}_emb_{i:03d}" for i in range(size))


def declared_features(columns: Sequence[str]) -> tuple[str, ...]:
    """Return the feature columns a table header declares, present or not.

    The 57 GTZAN features when the header names no embedding column, else every column of each
    embedding it names (spaces in name order); which of them are missing is the caller's to say.

    Parameters
    ----------
    columns : sequence of str
        The header.

    Returns
    -------
    tuple of str

    Raises
    ------
    TableError
        If the header mixes GTZAN features and embeddings, or names an embedding column beyond
        its embedding's size (naming the column).
    """
    blocks: dict[str, list[tuple[int, str]]] = {}
    for name in map(str, columns):
        match = _EMBEDDING_COLUMN.match(name)
        if match:
            blocks.setdefault(match["space"], []).append((int(match["index"]), name))
    if not blocks:
        return FEATURE_NAMES
    gtzan = [str(name) for name in columns if name in FEATURE_NAMES]
    if gtzan:
        first = min(blocks)
        raise TableError(
            f"column {blocks[first][0][1]!r} is an embedding ({first!r}) but column {gtzan[0]!r} a GTZAN "
            "feature: a table holds one kind of features; extract them into separate tables"
        )
    names: list[str] = []
    for space in sorted(blocks):
        size = EMBEDDING_SIZES.get(space, max(index for index, _ in blocks[space]) + 1)
        beyond = [name for index, name in blocks[space] if index >= size]
        if beyond:
            raise TableError(f"column {beyond[0]!r} lies beyond the {size} columns of embedding {space!r}")
        names += embedding_columns(space, size)
    return tuple(names)
