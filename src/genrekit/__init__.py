"""genrekit: tell the genre of music from its GTZAN audio features.

The package follows the data: :mod:`~genrekit.audio.decode` (audio files to samples),
:mod:`~genrekit.audio.window` (clips to windows), :mod:`~genrekit.audio.features` (samples to
the 57 GTZAN features), :mod:`~genrekit.library.extract` (many files to a feature table),
:mod:`~genrekit.table` (reading and checking tables), :mod:`~genrekit.models.cnn` and
:mod:`~genrekit.models.baselines` (models), :mod:`~genrekit.evaluation.protocols` and
:mod:`~genrekit.evaluation.metrics` (how models are judged), :mod:`~genrekit.evaluation.report`, and
:mod:`~genrekit.library.predict` (files to genres).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["GenreModel", "__version__", "load_model"]


def __getattr__(name: str):
    """Import the prediction API on first use, so ``import genrekit`` stays light."""
    if name in ("GenreModel", "load_model"):
        from genrekit.library import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'genrekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the public names with the lazily imported ones (for ``dir()``, completion and autodoc)."""
    return sorted(set(globals()) | set(__all__))
