"""genrekit: tell the genre of music from its GTZAN audio features.

The package follows the data: :mod:`~genrekit.decode` (audio files to samples),
:mod:`~genrekit.window` (clips to windows), :mod:`~genrekit.features` (samples to
the 57 GTZAN features), :mod:`~genrekit.extract` (many files to a feature table),
:mod:`~genrekit.table` (reading and checking tables), :mod:`~genrekit.cnn` and
:mod:`~genrekit.baselines` (models), :mod:`~genrekit.protocols` and
:mod:`~genrekit.evaluate` (how models are judged), :mod:`~genrekit.report`, and
:mod:`~genrekit.predict` (files to genres).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["GenreModel", "__version__", "load_model"]


def __getattr__(name: str):
    """Import the prediction API on first use, so ``import genrekit`` stays light."""
    if name in ("GenreModel", "load_model"):
        from genrekit import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'genrekit' has no attribute {name!r}")
