"""The GTZAN feature-table schema shared by every stage of genrekit.

The column names, their order and the audio constants follow the public GTZAN
``features_30_sec.csv`` table (Kaggle, andradaolteanu), whose features were
computed with librosa at its defaults.
"""

from __future__ import annotations

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
