"""genrekit: tell the genre of music from its audio.

The public API is what :data:`__all__` lists; everything else is an implementation
module whose names may change. Names are imported on first use, so ``import genrekit``
stays light (no scikit-learn, no PyTorch). The package follows the data, one layer
importing only the layers below it:

``core`` (errors, schema, atomic writes, processes) < ``audio`` (decode, windows, the 57
features) < ``datasets`` (tables, the fault-filtered split) < ``selection`` (grouped splits
and folds, metrics) < ``models`` (estimators, registry, calibration, saved models) <
``prediction`` (:class:`GenreModel`, the verdict) < ``extraction`` / ``training`` <
``library`` (catalogue, scan, tags, learning) < ``evaluation`` (the paper's
reproduction, cross-dataset) < ``serve`` < ``cli``.

Examples
--------
>>> import genrekit
>>> for path, result in genrekit.predict(["song.mp3"]):  # doctest: +SKIP
...     print(path, result.verdict())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from genrekit.core.version import __version__

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "GenrekitError": "genrekit.core.errors",
    "AudioError": "genrekit.core.errors",
    "TableError": "genrekit.core.errors",
    "ModelError": "genrekit.core.errors",
    "SettingsError": "genrekit.core.errors",
    "DataError": "genrekit.core.errors",
    "load_audio": "genrekit.audio.decode",
    "clip_features": "genrekit.audio.features",
    "read_table": "genrekit.datasets.table",
    "SourceKFold": "genrekit.selection.protocols",
    "make_model": "genrekit.models.registry",
    "GenreModel": "genrekit.prediction.model",
    "FilePrediction": "genrekit.prediction.model",
    "load_model": "genrekit.prediction.model",
    "predict": "genrekit.prediction.model",
    "extract": "genrekit.extraction.extract",
    "train": "genrekit.training.train",
    "TrainSettings": "genrekit.training.train",
    "Catalogue": "genrekit.library.catalogue",
    "CatalogueError": "genrekit.core.errors",
    "scan": "genrekit.library.scan",
    "reproduce": "genrekit.evaluation.reproduce",
    "evaluate_files": "genrekit.evaluation.crossdataset",
    "evaluate_table": "genrekit.evaluation.crossdataset",
}

__all__ = [
    "AudioError",
    "Catalogue",
    "CatalogueError",
    "DataError",
    "FilePrediction",
    "GenreModel",
    "GenrekitError",
    "ModelError",
    "SettingsError",
    "SourceKFold",
    "TableError",
    "TrainSettings",
    "__version__",
    "clip_features",
    "evaluate_files",
    "evaluate_table",
    "extract",
    "load_audio",
    "load_model",
    "make_model",
    "predict",
    "read_table",
    "reproduce",
    "scan",
    "train",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on first use
    from genrekit.audio.decode import load_audio
    from genrekit.audio.features import clip_features
    from genrekit.core.errors import (
        AudioError,
        CatalogueError,
        DataError,
        GenrekitError,
        ModelError,
        SettingsError,
        TableError,
    )
    from genrekit.datasets.table import read_table
    from genrekit.evaluation.crossdataset import evaluate_files, evaluate_table
    from genrekit.evaluation.reproduce import reproduce
    from genrekit.extraction.extract import extract
    from genrekit.library.catalogue import Catalogue
    from genrekit.library.scan import scan
    from genrekit.models.registry import make_model
    from genrekit.prediction.model import FilePrediction, GenreModel, load_model, predict
    from genrekit.selection.protocols import SourceKFold
    from genrekit.training.train import TrainSettings, train


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'genrekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public API (for tab completion)."""
    return sorted({*globals(), *__all__})
