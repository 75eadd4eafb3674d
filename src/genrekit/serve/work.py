"""What the worker processes run: one task per upload or live update.

Each worker process loads the model (and, with ``serve --tags``, the taggers) once
(:func:`init_worker`) and then runs :func:`predict_task`, :func:`features_task`,
:func:`tags_task` or :func:`live_task` on a temporary file
that the event loop wrote. Errors are raised as :class:`~genrekit.core.errors.GenrekitError`
subclasses whose message names the upload (never the temporary path), so the
service can turn them into 4xx answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile

from genrekit.core.errors import GenrekitError
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.prediction.model import TOP_TAGS

_MODEL = None
"""The model of this worker process (set by :func:`init_worker`)."""


def init_worker(model_dir: str | None, detect_music: bool = False, taggers: Sequence[str] = ()) -> None:
    """Set up a worker process: one BLAS thread, Ctrl-C left to the server, the model and taggers loaded."""
    from threadpoolctl import threadpool_limits

    import genrekit

    global _MODEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)
    _MODEL = genrekit.load_model(model_dir, detect_music=detect_music)
    if taggers:
        from genrekit.tagger.model import default_tagger

        for name in taggers:
            default_tagger(name)  # read from the cache that `genrekit serve --tags` filled


def ping() -> int:
    """Return this worker's process id (the warm-up task: it makes the pool start its workers)."""
    return os.getpid()


@contextlib.contextmanager
def _named(path: Path, name: str) -> Iterator[None]:
    """Re-raise what the block raises, the temporary `path` replaced by the upload's `name` in its message."""
    try:
        yield
    except GenrekitError as exc:
        raise type(exc)(str(exc).replace(str(path), name)) from None


def predict_task(
    path: str,
    name: str,
    max_seconds: float | None,
    min_confidence: float,
    top_k: int,
    tags: Sequence[str] = (),
    top_tags: int = TOP_TAGS,
) -> dict:
    """Predict the genre of one uploaded file (and tag it, from the same decoding, when asked).

    Parameters
    ----------
    path : str
        The temporary file.
    name : str
        The client's name for it (used in the answer and in errors).
    max_seconds : float or None
        Longest audio accepted: a longer file is refused before it is decoded.
    min_confidence : float
        Top probability below which the genre is ``"uncertain"``.
    top_k : int
        Genres listed in ``top_k``.
    tags : sequence of str
        Also tag the file with these musicnn taggers (the record's ``deep_tags``).
    top_tags : int
        Tags per tagger.

    Returns
    -------
    dict
        The record of ``genrekit predict --format json``, ``file`` being `name`.

    Raises
    ------
    TooLongError, AudioError
        With messages naming `name`.
    """
    path_ = Path(path)
    with _named(path_, name):
        prediction = _MODEL.predict_file(path_, max_seconds, tags)
    return {**prediction.to_record(min_confidence, top_k, top_tags), "file": name}


def tags_task(path: str, name: str, max_seconds: float, taggers: Sequence[str], top: int) -> dict:
    """Tag one uploaded file with musicnn taggers, as ``genrekit tags`` does.

    Parameters
    ----------
    path : str
        The temporary file.
    name : str
        The client's name for it.
    max_seconds : float
        Longest audio accepted: a longer file is refused before it is decoded.
    taggers : sequence of str
        The taggers to run (``"msd"``, ``"mtt"``), in the answer's order.
    top : int
        Tags per tagger.

    Returns
    -------
    dict
        The record of ``genrekit tags --format json``: ``file`` (`name`) and ``tags``
        (``{"tagger", "tag", "probability"}``, each tagger's `top` tags, most probable first).

    Raises
    ------
    TooLongError, AudioError
        With messages naming `name`.
    """
    from genrekit.tagger.model import default_tagger, tag_file, tags_record

    path_ = Path(path)
    with _named(path_, name):
        results = tag_file(path_, [default_tagger(t) for t in taggers], max_seconds)
    return tags_record(name, [results[t] for t in taggers], top)


def features_task(path: str, name: str, max_seconds: float, segment_seconds: float | None) -> dict:
    """Compute the 57 GTZAN features of one uploaded file, and of its segments on request.

    Parameters
    ----------
    path : str
        The temporary file.
    name : str
        The client's name for it.
    max_seconds : float
        Longest audio accepted: a longer file is refused before it is decoded.
    segment_seconds : float, optional
        Also compute the features of consecutive segments of this length (3 gives
        the segments of the public 3-second table, see :mod:`genrekit.audio.window`).

    Returns
    -------
    dict
        ``file``, ``duration``, ``samples``, ``features`` (name -> value) and, with
        `segment_seconds`, ``segments`` (``start``, ``end`` in seconds, ``features``).

    Raises
    ------
    TooLongError, AudioError
        With messages naming `name`.
    """
    from genrekit.audio.analysis import span_features
    from genrekit.audio.decode import load_audio
    from genrekit.audio.window import segment_length, segments

    path_ = Path(path)
    with _named(path_, name):
        y = load_audio(path_, sr=SAMPLE_RATE, max_seconds=max_seconds)
        where = f"{path_}: "  # the temporary path, replaced by the upload's name below
        (whole,) = span_features(y, [(0, len(y))], where)
        result = {
            "file": name,
            "duration": len(y) / SAMPLE_RATE,
            "samples": len(y),
            "features": _named_features(whole),
        }
        if segment_seconds is not None:
            spans = segments(len(y), segment_length(segment_seconds, sr=SAMPLE_RATE))
            values = span_features(y, spans, where, name_segments=True)
            result["segments"] = [
                {"start": start / SAMPLE_RATE, "end": end / SAMPLE_RATE, "features": _named_features(row)}
                for (start, end), row in zip(spans, values, strict=True)
            ]
    return result


def _named_features(values: np.ndarray) -> dict[str, float]:
    """Return the 57 features as ``{name: value}`` in GTZAN column order."""
    return dict(zip(FEATURE_NAMES, np.asarray(values, dtype=np.float64).tolist(), strict=True))


def live_task(samples: np.ndarray, sample_rate: int, folder: str, min_confidence: float, top_k: int) -> dict:
    """Predict the genre of the last seconds of a live stream.

    The samples go through the same path as an uploaded file (a temporary WAV
    file, decoded and resampled like any other), so live and file predictions
    agree on the same audio.

    Parameters
    ----------
    samples : ndarray of float32
        Mono samples in [-1, 1].
    sample_rate : int
        Their rate in Hz.
    folder : str
        Where the temporary file goes (the service's upload folder).
    min_confidence, top_k
        As for :func:`predict_task`.

    Returns
    -------
    dict
        The prediction record, ``file`` being ``"live"``.
    """
    handle, path = tempfile.mkstemp(suffix=".wav", dir=folder)
    os.close(handle)
    try:
        soundfile.write(path, samples, sample_rate, subtype="FLOAT")
        return predict_task(path, "live", None, min_confidence, top_k)
    finally:
        os.unlink(path)
