"""What the worker processes run: one task per upload or live update.

Each worker process loads the model once (:func:`init_worker`) and then runs
:func:`predict_task`, :func:`features_task` or :func:`live_task` on a temporary file
that the event loop wrote. Errors are raised as :class:`~genrekit.errors.GenrekitError`
subclasses whose message names the upload (never the temporary path), so the
service can turn them into 4xx answers.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from genrekit.errors import GenrekitError
from genrekit.schema import FEATURE_NAMES, SAMPLE_RATE

_MODEL = None
"""The model of this worker process (set by :func:`init_worker`)."""


class TooLongError(GenrekitError):
    """The audio is longer than the service accepts (``--max-seconds``)."""


def init_worker(model_dir: str | None, detect_music: bool = False) -> None:
    """Set up a worker process: one BLAS thread, Ctrl-C left to the server, the model loaded."""
    from threadpoolctl import threadpool_limits

    import genrekit

    global _MODEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)
    _MODEL = genrekit.load_model(model_dir, detect_music=detect_music)


def ping() -> int:
    """Return this worker's process id (the warm-up task: it makes the pool start its workers)."""
    return os.getpid()


def _named(exc: GenrekitError, path: Path, name: str) -> GenrekitError:
    """Return `exc` with the temporary `path` replaced by the upload's `name` in its message."""
    return type(exc)(str(exc).replace(str(path), name))


def _check_duration(seconds: float, name: str, max_seconds: float) -> None:
    """Raise :class:`TooLongError` when `seconds` exceeds `max_seconds`."""
    if seconds > max_seconds:
        raise TooLongError(
            f"{name}: {seconds:.1f} s of audio, longer than this server's limit of {max_seconds:g} s"
        )


def _check_header_duration(path: Path, name: str, max_seconds: float) -> None:
    """Refuse a file whose header already says it is too long, before decoding it.

    Formats libsndfile cannot read are checked after decoding instead.
    """
    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError):
        return
    if info.samplerate > 0:
        _check_duration(info.frames / info.samplerate, name, max_seconds)


def predict_task(path: str, name: str, max_seconds: float, min_confidence: float, top_k: int) -> dict:
    """Predict the genre of one uploaded file.

    Parameters
    ----------
    path : str
        The temporary file.
    name : str
        The client's name for it (used in the answer and in errors).
    max_seconds : float
        Longest audio accepted.
    min_confidence : float
        Top probability below which the genre is ``"uncertain"``.
    top_k : int
        Genres listed in ``top_k``.

    Returns
    -------
    dict
        The record of ``genrekit predict --format json``, ``file`` being `name`.

    Raises
    ------
    TooLongError, AudioError
        With messages naming `name`.
    """
    from genrekit.cli.predict import prediction_record

    path_ = Path(path)
    try:
        _check_header_duration(path_, name, max_seconds)
        prediction = _MODEL.predict_file(path_)
        _check_duration(prediction.duration, name, max_seconds)
    except GenrekitError as exc:
        raise _named(exc, path_, name) from None
    return {**prediction_record(prediction, min_confidence, top_k), "file": name}


def features_task(path: str, name: str, max_seconds: float, segment_seconds: float | None) -> dict:
    """Compute the 57 GTZAN features of one uploaded file, and of its segments on request.

    Parameters
    ----------
    path : str
        The temporary file.
    name : str
        The client's name for it.
    max_seconds : float
        Longest audio accepted.
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
    from genrekit.audio.decode import load_audio
    from genrekit.audio.features import clip_features
    from genrekit.audio.window import segment_length, segments

    path_ = Path(path)
    try:
        _check_header_duration(path_, name, max_seconds)
        y = load_audio(path_, sr=SAMPLE_RATE)
        _check_duration(len(y) / SAMPLE_RATE, name, max_seconds)
        result = {
            "file": name,
            "duration": len(y) / SAMPLE_RATE,
            "samples": len(y),
            "features": _named_features(clip_features(y, sr=SAMPLE_RATE)),
        }
        if segment_seconds is not None:
            spans = segments(len(y), segment_length(segment_seconds, sr=SAMPLE_RATE))
            result["segments"] = [
                {
                    "start": start / SAMPLE_RATE,
                    "end": end / SAMPLE_RATE,
                    "features": _named_features(clip_features(y[start:end], sr=SAMPLE_RATE)),
                }
                for start, end in spans
            ]
    except GenrekitError as exc:
        raise _named(exc, path_, name) from None
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
        return predict_task(path, "live", float("inf"), min_confidence, top_k)
    finally:
        os.unlink(path)
