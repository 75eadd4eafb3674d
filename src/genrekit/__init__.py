"""genrekit: tell the genre of music from its GTZAN audio features.

The package follows the data: :mod:`~genrekit.audio.decode` (audio files to samples),
:mod:`~genrekit.audio.window` (clips to windows), :mod:`~genrekit.audio.features` (samples to
the 57 GTZAN features), :mod:`~genrekit.extraction.extract` (many files to a feature table),
:mod:`~genrekit.datasets.table` (reading and checking tables), :mod:`~genrekit.models.cnn` and
:mod:`~genrekit.models.baselines` (models), :mod:`~genrekit.selection.protocols` and
:mod:`~genrekit.selection.metrics` (how models are judged), :mod:`~genrekit.evaluation.report`, and
:mod:`~genrekit.prediction.model` (files to genres).
"""

from __future__ import annotations

from genrekit.core.version import __version__

__all__ = ["GenreModel", "__version__", "load_model"]


def __getattr__(name: str):
    """Import the prediction API on first use, so ``import genrekit`` stays light."""
    if name in ("GenreModel", "load_model"):
        from genrekit.prediction import model as predict

        return getattr(predict, name)
    raise AttributeError(f"module 'genrekit' has no attribute {name!r}")
