"""Augmented copies of a clip: pitch-shifted, time-stretched and noise-mixed (the paper's section 18.6).

``genrekit extract --augment pitch,stretch,noise`` adds, beside each file's own rows, the rows
of these versions of it (each then cut into segments like the original when segmenting):

``pitch``
    Shifted by -2 and +2 semitones, length kept: ``librosa.effects.pitch_shift`` (phase vocoder
    then resampling with soxr, librosa 0.11's defaults). Rows ``<stem>.pitch-2<ext>`` and
    ``<stem>.pitch+2<ext>``.
``stretch``
    Played at 0.9 and 1.1 times the speed, pitch kept: ``librosa.effects.time_stretch`` (a
    30-s clip becomes 33.3 s and 27.3 s long). Rows ``<stem>.stretch0.9<ext>`` and
    ``<stem>.stretch1.1<ext>``.
``noise``
    White Gaussian noise added at 20 dB signal-to-noise ratio (noise power = the clip's mean
    power / 100), drawn from NumPy's PCG64 seeded with ``(NOISE_SEED, CRC-32 of the row
    name)``: the same file name always gets the same noise, whatever the order or process.
    Row ``<stem>.noise20db<ext>``.

The names keep the source clip in front, so :func:`genrekit.datasets.table.source_clip` leads every
augmented row (and its segments, ``blues.00000.pitch+2.3.wav``) back to its clip, and every
split of :mod:`genrekit.selection.protocols` keeps it on the clip's side.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence

import numpy as np

AUGMENTATIONS: tuple[str, ...] = ("pitch", "stretch", "noise")
"""The augmentation names ``--augment`` accepts."""

PITCH_STEPS: tuple[int, ...] = (-2, 2)
"""Pitch shifts in semitones."""

STRETCH_RATES: tuple[float, ...] = (0.9, 1.1)
"""Time-stretch rates (above 1: faster, shorter)."""

NOISE_SNR_DB: float = 20.0
"""Signal-to-noise ratio of the added white noise, in dB."""

NOISE_SEED: int = 0
"""First word of the noise generator's seed (the second is the CRC-32 of the row name)."""


def parse_augmentations(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the augmentation names of a comma list (``"pitch,noise"``), checked, in canonical order.

    Raises
    ------
    ValueError
        For a name that is not one of :data:`AUGMENTATIONS`.
    """
    if text is None:
        return ()
    names = [part.strip() for part in (text.split(",") if isinstance(text, str) else text) if part.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
    return tuple(name for name in AUGMENTATIONS if name in names)


def augmented_name(filename: str, tag: str) -> str:
    """Return the row name of the `tag` version of `filename` (``blues.00000.pitch+2.wav``).

    Parameters
    ----------
    filename : str
        The clip's row name (``blues.00000.wav``).
    tag : str
        The augmentation tag (``pitch+2``, ``stretch1.1``, ``noise20db``).

    Returns
    -------
    str
        ``<stem>.<tag><ext>``; :func:`genrekit.datasets.table.source_clip` leads it back to `filename`.
    """
    stem, ext = os.path.splitext(filename)
    return f"{stem}.{tag}{ext}"


def _pitch(y: np.ndarray, sr: int, steps: int) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(y, sr=sr, n_steps=steps)


def _stretch(y: np.ndarray, rate: float) -> np.ndarray:
    import librosa

    return librosa.effects.time_stretch(y, rate=rate)


def add_noise(y: np.ndarray, snr_db: float, seed: Sequence[int]) -> np.ndarray:
    """Return `y` plus white Gaussian noise at `snr_db` dB below its mean power (float32).

    Parameters
    ----------
    y : ndarray of shape (n,)
        The signal.
    snr_db : float
        Signal-to-noise ratio in dB.
    seed : sequence of int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray of shape (n,), float32
    """
    power = float(np.mean(np.square(y, dtype=np.float64)))
    noise = np.random.default_rng(list(seed)).standard_normal(len(y)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)


def variants(name: str, augment: Sequence[str]) -> list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]]:
    """Return ``(tag, make)`` for each augmented version `augment` asks for, ``make(y, sr)`` building it.

    Parameters
    ----------
    name : str
        The clip's row name (seeds the noise).
    augment : sequence of str
        Names of :data:`AUGMENTATIONS`.

    Returns
    -------
    list of (str, callable)
        In the order pitch (-2, +2), stretch (0.9, 1.1), noise.
    """
    chosen = parse_augmentations(augment)
    out: list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]] = []
    if "pitch" in chosen:
        out += [(f"pitch{s:+d}", lambda y, sr, s=s: _pitch(y, sr, s)) for s in PITCH_STEPS]
    if "stretch" in chosen:
        out += [(f"stretch{r:g}", lambda y, sr, r=r: _stretch(y, r)) for r in STRETCH_RATES]
    if "noise" in chosen:
        seed = (NOISE_SEED, zlib.crc32(name.encode("utf-8")))
        out.append((f"noise{NOISE_SNR_DB:g}db", lambda y, sr: add_noise(y, NOISE_SNR_DB, seed)))
    return out


RECORDING_CHAINS: tuple[str, ...] = (
    "gain-12db", "gain+12db", "lowpass4k", "lowpass8k", "noise20db", "noise10db", "sr8k", "sr16k",
)  # fmt: skip
"""Recording-chain distortions of :func:`recording_chain` (not augmentations: they never train)."""


def apply_gain(y: np.ndarray, db: float) -> np.ndarray:
    """Return `y` scaled by `db` decibels and clipped to [-1, 1] as a converter would (float32)."""
    return np.clip(y * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def low_pass(y: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Return `y` through an 8th-order Butterworth low-pass at `cutoff_hz`, zero phase (float32)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


def through_rate(y: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Return `y` resampled to `rate` Hz and back to `sr` (soxr), as audio recorded at `rate` (float32)."""
    import soxr

    down = soxr.resample(y, sr, rate)
    return soxr.resample(down, rate, sr)[: len(y)].astype(np.float32)


def recording_chain(y: np.ndarray, sr: int, name: str, seed: Sequence[int] = (NOISE_SEED, 0)) -> np.ndarray:
    """Return `y` distorted the way the recording chain `name` of :data:`RECORDING_CHAINS` does.

    ``gain-12db``/``gain+12db``: level change (clipped when louder); ``lowpass4k``/``lowpass8k``:
    band limit; ``noise20db``/``noise10db``: white noise at that signal-to-noise ratio (seeded by
    `seed`); ``sr8k``/``sr16k``: audio that went through that sample rate.

    Raises
    ------
    ValueError
        For a name not in :data:`RECORDING_CHAINS`.
    """
    chains: dict[str, Callable[[], np.ndarray]] = {
        "gain-12db": lambda: apply_gain(y, -12.0),
        "gain+12db": lambda: apply_gain(y, 12.0),
        "lowpass4k": lambda: low_pass(y, sr, 4000.0),
        "lowpass8k": lambda: low_pass(y, sr, 8000.0),
        "noise20db": lambda: add_noise(y, 20.0, seed),
        "noise10db": lambda: add_noise(y, 10.0, seed),
        "sr8k": lambda: through_rate(y, sr, 8000),
        "sr16k": lambda: through_rate(y, sr, 16000),
    }
    if name not in chains:
        raise ValueError(f"unknown recording chain {name!r}; choose from {', '.join(RECORDING_CHAINS)}")
    return chains[name]()
