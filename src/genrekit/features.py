"""The 57 GTZAN features of one mono clip, as librosa computes them at its defaults.

Placeholder body: the fast path currently delegates to the reference recipe.
"""

from __future__ import annotations

import numpy as np

from .errors import AudioError
from .schema import N_FFT, SAMPLE_RATE

MIN_SAMPLES: int = N_FFT
"""Shortest signal (in samples) for which the features are defined: one full STFT frame."""


def _check_signal(y: np.ndarray, sr: int) -> np.ndarray:
    """Validate `y` and `sr`; return `y` as contiguous float32 or raise `AudioError`."""
    if sr != SAMPLE_RATE:
        raise AudioError(f"sr must be {SAMPLE_RATE}, got {sr}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(f"signal must be mono (1-D), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise AudioError(f"signal must be floating point, got dtype {y.dtype}")
    if y.shape[0] < MIN_SAMPLES:
        raise AudioError(f"too short: {y.shape[0]} samples, need at least {MIN_SAMPLES}")
    if not np.all(np.isfinite(y)):
        raise AudioError("contains NaN or Inf samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def reference_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Compute the 57 features with one plain librosa call per feature (slow yardstick)."""
    import librosa

    y = _check_signal(y, sr)
    rows = [
        librosa.feature.chroma_stft(y=y, sr=sr),
        librosa.feature.rms(y=y),
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_rolloff(y=y, sr=sr),
        librosa.feature.zero_crossing_rate(y),
        *librosa.effects.hpss(y),
    ]
    out = []
    for values in rows:
        out += [np.mean(values, dtype=np.float64), np.var(values, dtype=np.float64)]
    out.append(float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=sr)[0])[0]))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    for row in mfcc:
        out += [np.mean(row, dtype=np.float64), np.var(row, dtype=np.float64)]
    return np.asarray(out, dtype=np.float64)


def clip_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Compute the 57 features quickly (currently the reference recipe)."""
    return reference_features(y, sr)
