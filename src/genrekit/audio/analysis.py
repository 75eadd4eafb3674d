"""One analysis path: an audio file, decoded once, to the features of its windows and segments.

Every part of genrekit that turns a file into features goes through here: prediction
(:func:`genrekit.prediction.model.file_windows`), a library scan (windows and, when asked,
3-s segments from the same decoding pass), ``extract`` and the HTTP API (the spans of a signal
already in memory, :func:`span_features`).

The file is decoded block by block (:func:`genrekit.audio.decode.open_audio`) and each span's
features are computed as soon as its samples are in (:func:`genrekit.audio.window.stream_windows`),
so memory holds the longest span plus one block, whatever the file's length. The features equal
those of the same spans of :func:`genrekit.audio.decode.load_audio`'s whole signal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from genrekit.audio.features import clip_features
from genrekit.audio.window import segment_length, segments, stream_windows, windows
from genrekit.core.errors import AudioError
from genrekit.core.schema import SAMPLE_RATE

MIN_SECONDS: float = 3.0
"""Shortest audio whose genre is predicted (the length of a segment of the public 3-second table)."""


class TooShortError(AudioError):
    """A signal shorter than one segment (``extract`` skips such an augmented version)."""


@dataclass(frozen=True)
class Spans:
    """Spans of one signal and their features.

    Attributes
    ----------
    bounds : ndarray of shape (n, 2), dtype int64
        First and one-past-last sample of each span.
    features : ndarray of shape (n, 57)
        The GTZAN features of each span.
    """

    bounds: np.ndarray
    features: np.ndarray


@dataclass(frozen=True)
class FileAnalysis:
    """What one decoding pass of a file gives.

    Attributes
    ----------
    n_samples : int
        Length of the decoded file at 22,050 Hz.
    windows : Spans
        The prediction windows (:func:`genrekit.audio.window.windows`).
    segments : Spans or None
        The consecutive segments (:func:`genrekit.audio.window.segments`), when asked.
    """

    n_samples: int
    windows: Spans
    segments: Spans | None = None


def segment_spans(n_samples: int, seconds: float, where: str) -> list[tuple[int, int]]:
    """Return the segments of `seconds` of a signal of `n_samples`.

    Raises
    ------
    TooShortError
        If not even one segment fits; the message starts with `where`.
    """
    length = segment_length(seconds, sr=SAMPLE_RATE)
    spans = segments(n_samples, length)
    if not spans:
        raise TooShortError(
            f"{where}too short for one {seconds:g} s segment: {n_samples} samples, need {length}"
        )
    return spans


def analyse_file(
    path: str | os.PathLike[str],
    window_seconds: float = 30.0,
    segment_seconds: float | None = None,
    min_seconds: float = MIN_SECONDS,
    max_seconds: float | None = None,
    tap: Callable[[np.ndarray], None] | None = None,
) -> FileAnalysis:
    """Decode `path` once into the features of its windows and, optionally, of its segments.

    Parameters
    ----------
    path : path-like
        An audio file in any format :func:`genrekit.audio.decode.load_audio` reads.
    window_seconds : float
        Window length (a model's ``window_seconds``), ``round(window_seconds * 22050)``
        samples; see :func:`genrekit.audio.window.windows` for the tail.
    segment_seconds : float, optional
        Also the features of consecutive segments of this length (3: the public
        3-second table's).
    min_seconds : float
        Shortest file analysed.
    max_seconds : float, optional
        Longest file analysed: a longer one is refused before it is decoded.
    tap : callable, optional
        Called with every decoded block, in order (another analysis of the same pass, e.g.
        the music detector's resampler); a block is valid only during the call.

    Returns
    -------
    FileAnalysis
        The windows and segments with their features.

    Raises
    ------
    TooLongError
        If the file is longer than `max_seconds`.
    AudioError
        If the file cannot be decoded, is shorter than `min_seconds`, or a span's
        features cannot be computed; the message starts with the file name.
    """
    from genrekit.audio.decode import open_audio

    with open_audio(path, sr=SAMPLE_RATE, max_seconds=max_seconds) as (n_samples, blocks):
        try:
            window_bounds = windows(
                n_samples,
                window=round(window_seconds * SAMPLE_RATE),
                min_samples=round(min_seconds * SAMPLE_RATE),
                sr=SAMPLE_RATE,
            )
            segment_bounds = (
                [] if segment_seconds is None else segment_spans(n_samples, segment_seconds, "")
            )
            # both kinds of span from the same blocks, in order of their starts
            spans = sorted({*window_bounds, *segment_bounds})
            if tap is not None:
                blocks = _tapped(blocks, tap)
            features = {(a, b): clip_features(y, sr=SAMPLE_RATE) for a, b, y in stream_windows(blocks, spans)}
        except AudioError as exc:
            message = str(exc)
            raise AudioError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from exc
    return FileAnalysis(
        n_samples,
        _spans(window_bounds, features),
        None if segment_seconds is None else _spans(segment_bounds, features),
    )


def _tapped(blocks: Iterable[np.ndarray], tap: Callable[[np.ndarray], None]) -> Iterator[np.ndarray]:
    """Pass `blocks` on unchanged, handing each one to `tap` as well."""
    for block in blocks:
        tap(block)
        yield block


def _spans(bounds: Sequence[tuple[int, int]], features: dict[tuple[int, int], np.ndarray]) -> Spans:
    """Gather the features of `bounds` into :class:`Spans`."""
    return Spans(
        np.asarray(bounds, dtype=np.int64).reshape(-1, 2),
        np.stack([features[span] for span in bounds]),
    )


def span_features(
    y: np.ndarray,
    bounds: Sequence[tuple[int, int]],
    where: str,
    features_fn: Callable[..., np.ndarray] = clip_features,
    name_segments: bool = False,
) -> np.ndarray:
    """Return the features of spans of a signal in memory, one row per span.

    Parameters
    ----------
    y : ndarray of shape (n,)
        The signal at 22,050 Hz.
    bounds : sequence of (int, int)
        The spans.
    where : str
        What the signal is, the start of its error messages (the file name and a colon).
    features_fn : callable
        ``features_fn(samples, sr=...)``: :func:`genrekit.audio.features.clip_features`
        or the plain librosa recipe.
    name_segments : bool
        Name the span in an error message (``segment 3`` and a colon).

    Returns
    -------
    ndarray of shape (len(bounds), 57)

    Raises
    ------
    AudioError
        If a span's features cannot be computed; the message starts with `where`.
    """
    rows = []
    for i, (start, end) in enumerate(bounds):
        try:
            rows.append(features_fn(y[start:end], sr=SAMPLE_RATE))
        except AudioError as exc:
            segment = f"segment {i}: " if name_segments else ""
            raise AudioError(f"{where}{segment}{exc}") from exc
    return np.asarray(rows)
