"""Tags, embeddings and the music decision of a file, from its one decoding pass.

A library scan (and a prediction) decodes each file once, at 22,050 Hz, for its GTZAN features
(:func:`genrekit.audio.analysis.analyse_file`); a :class:`~genrekit.tagger.model.TagStream`
(:func:`tag_stream`) takes the same blocks through the analysis's ``tap`` and runs every
tagger the scan asks for, plus the music detector's, so one decoding pass gives the features, the
tags of several taggers and the music decision (:func:`music_decision`), in memory bounded
whatever the file's length. Workers build each tagger once per process
(:func:`~genrekit.tagger.model.default_tagger`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from genrekit.tagger.model import Tagger, TagResult, TagStream, default_tagger
from genrekit.tagger.music import MusicDecision, _coefficients, decide


def music_tagger_name() -> str:
    """Return the name of the tagger whose embeddings the music detector reads (``mtt``)."""
    return str(_coefficients()["tagger"])


def _wanted(names: Sequence[str], music: bool) -> list[str]:
    """Return the taggers `names`, plus the music detector's when `music`, each once."""
    return list(dict.fromkeys([*names, *([music_tagger_name()] if music else [])]))


def prepare(names: Sequence[str], music: bool, weights: str | os.PathLike[str] | None = None) -> None:
    """Obtain the weights of the taggers `names` (and the music detector's) once, before workers start.

    Weights missing from the cache are read from `weights` (a wheel, folder or checkpoint) or
    downloaded with pip (see :mod:`genrekit.tagger.weights`), so that workers only read the cache.

    Raises
    ------
    ModelError
        If a name is not a tagger, or the weights cannot be obtained.
    """
    for name in _wanted(names, music):
        Tagger(name, weights)


def tag_stream(names: Sequence[str], music: bool, sr: int) -> TagStream:
    """Return a stream of the cached taggers `names`, plus the music detector's when `music`."""
    return TagStream([default_tagger(name) for name in _wanted(names, music)], sr)


def music_decision(stream: TagStream, results: Mapping[str, TagResult]) -> MusicDecision:
    """Return the music detector's decision on a finished :func:`tag_stream` asked for `music`."""
    return decide(results[music_tagger_name()].embeddings, stream.level_dbfs)


__all__ = ["music_decision", "music_tagger_name", "prepare", "tag_stream"]
