"""Cutting signals: 3-second table segments and 30-second prediction windows.

Everything here works on sample counts and returns ``(start, end)`` pairs
(``end`` exclusive), so it is pure and cheap; slice the signal with them.

Segments
    The public GTZAN 3-second table (``features_3_sec.csv``) names segment
    ``i`` of ``blues.00000.wav`` ``blues.00000.<i>.wav`` and gives every segment
    a ``length`` of 66,149 samples, one short of 3 s at 22,050 Hz. How its
    segments were placed is not published with the table; genrekit cuts
    consecutive, non-overlapping segments of that length from the start of the
    clip (segment ``i`` covers samples ``[i * 66149, (i + 1) * 66149)``), which
    gives the table's ten segments per 30-second clip. Trailing samples
    shorter than a segment are dropped.

Windows
    A clip of any length is classified through 30-second windows like the
    GTZAN training clips: full windows from the start; a tail shorter than half
    a window joins the last window (so a GTZAN clip of 661,794 samples is one
    window, the whole clip, whose features equal its table row); a longer tail
    gets its own full-length window aligned to the end of the clip (it overlaps
    the one before). A clip shorter than one window is a single window.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from genrekit.audio.features import MIN_SAMPLES
from genrekit.core.errors import AudioError
from genrekit.core.schema import SAMPLE_RATE

WINDOW_SECONDS: float = 30.0
"""Length of a prediction window in seconds (the length of a GTZAN clip)."""


def segment_length(seconds: float, sr: int = SAMPLE_RATE) -> int:
    """Return the length in samples of a `seconds`-long table segment.

    Following the public GTZAN 3-second table, a segment is one sample short of
    ``seconds * sr``: 66,149 samples for 3 s at 22,050 Hz.

    Parameters
    ----------
    seconds : float > 0
        Nominal segment duration.
    sr : int > 0
        Sample rate in Hz (default 22050).

    Returns
    -------
    int
        ``round(seconds * sr) - 1``.

    Raises
    ------
    ValueError
        If the segment would hold less than one sample.
    """
    length = round(seconds * sr) - 1
    if length < 1:
        raise ValueError(f"segment of {seconds} s at {sr} Hz holds no samples")
    return length


def segments(n_samples: int, length: int) -> list[tuple[int, int]]:
    """Cut `n_samples` into consecutive segments of `length` samples.

    Parameters
    ----------
    n_samples : int >= 0
        Length of the signal.
    length : int > 0
        Length of each segment (see :func:`segment_length`).

    Returns
    -------
    list of (int, int)
        ``(i * length, (i + 1) * length)`` for every whole segment; the trailing
        ``n_samples % length`` samples are dropped. Empty when the signal is
        shorter than one segment.
    """
    if length < 1:
        raise ValueError(f"segment length must be positive, got {length}")
    return [(i * length, (i + 1) * length) for i in range(max(n_samples, 0) // length)]


def segment_name(filename: str | os.PathLike[str], index: int) -> str:
    """Return the table name of segment `index` of `filename`.

    Parameters
    ----------
    filename : str or path-like
        The clip's name in the table; a folder part (used by
        :func:`genrekit.extraction.extract.extract` to tell apart files with the same name)
        is kept.
    index : int
        The segment number, from 0.

    Returns
    -------
    str
        The stem, ``.<index>``, then the extension: ``blues.00000.wav`` gives
        ``blues.00000.3.wav`` for segment 3.

    Examples
    --------
    >>> segment_name("blues.00000.wav", 3)
    'blues.00000.3.wav'
    """
    stem, ext = os.path.splitext(os.fspath(filename))
    return f"{stem}.{index}{ext}"


def windows(
    n_samples: int,
    window: int | None = None,
    min_samples: int = MIN_SAMPLES,
    sr: int = SAMPLE_RATE,
) -> list[tuple[int, int]]:
    """Cut a clip of `n_samples` into prediction windows (see the module docstring).

    Parameters
    ----------
    n_samples : int
        Length of the clip.
    window : int > 0, optional
        Window length in samples; ``WINDOW_SECONDS * sr`` (661,500 at 22,050 Hz)
        when omitted.
    min_samples : int
        Shortest clip that can be classified (default: the features' minimum).
    sr : int > 0
        Sample rate in Hz, used only for the default `window` (default 22050).

    Returns
    -------
    list of (int, int)
        ``(start, end)`` of each window, in order; together they cover the clip.

    Raises
    ------
    AudioError
        If `n_samples` is below `min_samples`.

    Examples
    --------
    >>> windows(661794)
    [(0, 661794)]
    >>> windows(1_500_000, window=600_000, min_samples=1)
    [(0, 600000), (600000, 1200000), (900000, 1500000)]
    """
    if window is None:
        window = round(WINDOW_SECONDS * sr)
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    if n_samples < min_samples:
        raise AudioError(f"too short: {n_samples} samples, need at least {min_samples}")
    n_full, tail = divmod(n_samples, window)
    if n_full == 0:
        return [(0, n_samples)]
    bounds = [(i * window, (i + 1) * window) for i in range(n_full)]
    if 2 * tail < window:
        bounds[-1] = (bounds[-1][0], n_samples)
    else:
        bounds.append((n_samples - window, n_samples))
    return bounds


def stream_windows(
    blocks: Iterable[np.ndarray], spans: Sequence[tuple[int, int]]
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Cut windows out of a signal that arrives block by block, holding only what is still needed.

    Parameters
    ----------
    blocks : iterable of ndarray of shape (m,)
        Consecutive samples of the signal (e.g. from :func:`genrekit.audio.decode.open_audio`);
        a block may be a buffer that the next one overwrites.
    spans : sequence of (int, int)
        ``(start, end)`` of each window, starts and ends non-decreasing (as :func:`windows` gives).

    Yields
    ------
    start, end : int
        The window's bounds.
    samples : ndarray of shape (end - start,), dtype float32
        Its samples, equal to ``signal[start:end]``; a view of an internal buffer that is valid
        only until the next window is requested.

    Raises
    ------
    AudioError
        If the blocks end before the last window does.

    Notes
    -----
    Samples before the next window's start are dropped as soon as a window is done, so the buffer
    holds at most the longest window plus one block, whatever the signal's length.
    """
    pending = list(spans)
    if not pending:
        return
    buffer = np.empty(max(end - start for start, end in pending), dtype=np.float32)
    origin = filled = 0  # buffer[0] is sample `origin`; `filled` samples are valid
    for block in blocks:
        if filled + len(block) > len(buffer):  # once: room for the longest window plus a block
            grown = np.empty(filled + len(block), dtype=np.float32)
            grown[:filled] = buffer[:filled]
            buffer = grown
        buffer[filled : filled + len(block)] = block
        filled += len(block)
        while pending and pending[0][1] <= origin + filled:
            start, end = pending.pop(0)
            yield start, end, buffer[start - origin : end - origin]
        drop = min(pending[0][0] - origin, filled) if pending else filled
        if drop > 0:
            buffer[: filled - drop] = buffer[drop:filled]
            origin, filled = origin + drop, filled - drop
    if pending:
        raise AudioError(f"signal ended at sample {origin + filled}, before window {pending[0]}")
