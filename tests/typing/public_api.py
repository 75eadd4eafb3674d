"""What a user writes with genrekit's public API; a type checker reads it (it is never run).

``mypy`` checks it in the test command: every name of ``genrekit.__all__`` used here must be
visible to a type checker through the lazy package face, with the types the docs promise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import genrekit


def predict_songs(paths: list[Path]) -> dict[str, str]:
    """Genres of audio files by name, as the quick start shows."""
    verdicts: dict[str, str] = {}
    for path, result in genrekit.predict(paths):
        if isinstance(result, genrekit.GenrekitError):
            verdicts[path.name] = f"failed: {result}"
        else:
            verdicts[path.name] = result.verdict()
    return verdicts


def top_genres(model: genrekit.GenreModel, path: Path) -> list[tuple[str, float]]:
    """The three most probable genres of one file."""
    prediction: genrekit.FilePrediction = model.predict_file(path)
    return prediction.top(3)


def features_of(path: Path) -> np.ndarray:
    """The 57 features of a whole file."""
    return genrekit.clip_features(genrekit.load_audio(path))


def train_and_load(table: Path, out: Path) -> genrekit.GenreModel:
    """Train the default recipe and load the model it saved."""
    summary: dict = genrekit.train(table, out, genrekit.TrainSettings(cv=5))
    assert summary["model_dir"]
    return genrekit.load_model(out)


def catalogue_files(db: Path) -> int:
    """Files in a catalogue."""
    with genrekit.Catalogue(db, readonly=True) as catalogue:
        return sum(1 for _ in catalogue.predictions())


version: str = genrekit.__version__
