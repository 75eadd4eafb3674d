"""The 57 GTZAN features of one mono clip, as librosa computes them at its defaults.

Two implementations give the same numbers:

- :func:`reference_features`, "the plain recipe": one librosa call per feature, each computing its
  own STFT, with librosa's own ``effects.hpss`` and ``beat.beat_track``. Slow (about 2 s per 30-second
  clip), it is the yardstick for tests and benchmarks.
- :func:`clip_features`, the fast path: one single-precision STFT shared by every spectral
  feature, HPSS median filters and soft mask in the package's C extension :mod:`genrekit.audio._hpss`
  (the medians exact), tuning, tempogram and tempo in NumPy, and frame-aligned blocks so that long
  signals take bounded memory. It imports neither librosa nor numba, and compiles nothing at run
  time.

Where the fast path rounds differently from librosa (float32 STFT and inverse STFT, sums in other
orders), the features differ by about 1e-5 of a column's spread over the GTZAN table at most; the
tempo, an argmax, is the same on the test clips.

Definitions (librosa 0.11 defaults, written out because the fast path re-implements them)
-----------------------------------------------------------------------------------------
Signal: mono float32 at ``sr=22050``. STFT: ``n_fft=2048``, ``hop_length=512``, periodic Hann
window of 2048, ``center=True`` with zero padding (librosa's ``pad_mode="constant"``) of 1024
samples each side, so a signal of ``n`` samples has ``1 + n // 512`` frames.

- ``chroma_stft``: power spectrogram ``|X|**2``; tuning estimated from it (``estimate_tuning``:
  ``piptrack`` with fmin 150 Hz, fmax 4000 Hz, threshold 0.1 of each frame's maximum, parabolic
  interpolation; median magnitude threshold over all candidates; histogram of residuals with
  resolution 0.01 of a bin, 12 bins per octave); chroma filter bank (12 chroma, ``ctroct=5``,
  ``octwidth=2``, L2-normalised columns, ``base_c=True``); each frame max-normalised.
  Mean and variance over all 12 x frames values.
- ``rms``: frames of 2048 samples of the zero-padded signal (pad 1024 each side), root mean square.
- ``spectral_centroid``, ``spectral_bandwidth`` (p=2, normalised), ``rolloff`` (85 %): on the
  magnitude spectrogram ``|X|``, bin frequencies ``k * sr / n_fft``.
- ``zero_crossing_rate``: frames of 2048 of the edge-padded signal, crossings where the sign bit
  changes after values within +-1e-10 are set to 0, the first sample of a frame never counts,
  divided by 2048.
- ``harmony`` / ``perceptr``: ``effects.hpss``: median filters of kernel 31 on ``|X|`` along time
  (harmonic) and frequency (percussive), both ``scipy.ndimage.median_filter(mode="reflect")``
  (the fast path's C kernel gives the same values; see :func:`running_median`);
  soft masks with power 2 (``margin=1``, zeros split to 0); inverse STFT with the Hann window,
  window-sum-square normalisation, trimmed to the input length. Mean and variance over samples.
  (The fast path gets the percussive part as ``y - harmonic``: the masks sum to 1 and the inverse
  STFT is linear and reconstructs ``y``; where both medians of a nonzero bin vanish it uses
  librosa's masks.)
- ``tempo``: ``beat.beat_track``: onset strength = median over 128 mel bands of the positive
  first difference (lag 1) of the mel power spectrogram in dB (``power_to_db``: ref 1, amin 1e-10,
  top_db 80), shifted right by 3 frames; 0 when the envelope is all zeros. Tempogram: windows of
  344 frames (8 s), linear-ramp padding, Hann window, autocorrelation, max-normalised, averaged over
  time; log-normal prior around 120 BPM (1 octave), tempi of 320 BPM or more excluded; the argmax of
  ``log1p(1e6 * tg) + prior`` gives the tempo.
- ``mfcc1..20``: the same mel dB spectrogram (128 Slaney mels, 0 Hz to sr/2, Slaney norm),
  DCT type II orthonormal, first 20 coefficients.

Every variance uses ``ddof=0``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from genrekit.core.errors import AudioError
from genrekit.core.schema import FEATURE_NAMES, HOP_LENGTH, N_FFT, SAMPLE_RATE

from . import _hpss

__all__ = [
    "BLOCK_FRAMES",
    "MIN_SAMPLES",
    "NonFiniteFeaturesError",
    "chroma_filterbank",
    "clip_features",
    "estimate_tuning",
    "finite_features",
    "hann_window",
    "mean_tempogram",
    "mel_filterbank",
    "n_frames",
    "onset_strength",
    "power_to_db",
    "reference_features",
    "running_median",
    "stft_frames",
    "tempo_from_onsets",
]

MIN_SAMPLES: int = N_FFT
"""Shortest signal (samples) for which features are defined: one full STFT frame (``n_fft``).

Shorter signals make librosa warn that ``n_fft`` is too large for the signal, and every frame would
be mostly padding; such features would describe the padding rather than the audio.
"""

BLOCK_FRAMES: int = 2584
"""Default block length of :func:`clip_features`, in STFT frames (about 60 s at 22,050 Hz)."""

_HPSS_KERNEL = 31
_N_MELS = 128
_N_MFCC = 20
_N_CHROMA = 12
_TEMPO_SECONDS = 8.0  # librosa tempo(ac_size=8.0): autocorrelation window length
_ZC_THRESHOLD = 1e-10
_TINY32 = np.finfo(np.float32).tiny


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


class NonFiniteFeaturesError(AudioError):
    """Finite samples whose features are not: NaN or infinite (samples too large to square in float32)."""


def finite_features(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the features of `y`, or refuse them when any is NaN or infinite.

    The one check between audio and every consumer of its features (the model, a feature table,
    a catalogue, an HTTP answer): a signal whose samples are finite but huge (a float WAV holding
    1e30) overflows the power spectrum, and its features must be that file's error, never a row.

    Parameters
    ----------
    values : np.ndarray [shape=(57,)]
        The features computed from `y`.
    y : np.ndarray
        The signal (for the message).

    Returns
    -------
    np.ndarray
        `values`, unchanged.

    Raises
    ------
    NonFiniteFeaturesError
        If a feature is NaN or infinite; the message names the first such feature and the
        signal's peak.
    """
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        more = f" and {bad.size - 1} more" if bad.size > 1 else ""
        raise _non_finite(y, f"{FEATURE_NAMES[bad[0]]}{more} NaN or infinite")
    return values


def _non_finite(y: np.ndarray, detail: str) -> NonFiniteFeaturesError:
    """Return the error for a signal whose features are not finite, `detail` saying which or how."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return NonFiniteFeaturesError(
        f"features are not finite ({detail}): samples of magnitude up to "
        f"{peak:.3g} are too large to analyse (audio lies within [-1, 1])"
    )


def reference_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Compute the 57 features with one plain librosa call per feature.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal, float32 or float64, at least :data:`MIN_SAMPLES` samples.
    sr : int
        Sample rate; must be 22050.

    Returns
    -------
    np.ndarray [shape=(57,), dtype=float64]
        The features in ``schema.FEATURE_NAMES`` order.

    Raises
    ------
    AudioError
        If the signal is too short, not 1-D floating point, holds NaN/Inf, or `sr` is wrong, or
        its features are not finite (:class:`NonFiniteFeaturesError`, see :func:`finite_features`).
    """
    import librosa

    y = _check_signal(y, sr)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # as in clip_features
            return finite_features(_librosa_features(librosa, y, sr), y)
    except librosa.util.exceptions.ParameterError as exc:  # librosa refuses its own non-finite spectra
        if "finite" not in str(exc):
            raise
        raise _non_finite(y, f"librosa: {exc}") from None


def _librosa_features(librosa, y: np.ndarray, sr: int) -> np.ndarray:
    """Compute the 57 features of a checked signal by the librosa recipe (:func:`reference_features`)."""
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
    for row in librosa.feature.mfcc(y=y, sr=sr, n_mfcc=_N_MFCC):
        out += [np.mean(row, dtype=np.float64), np.var(row, dtype=np.float64)]
    return np.asarray(out, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Constants: window and filter banks (NumPy re-implementations of librosa.filters, cached).


@functools.lru_cache(maxsize=8)
def hann_window(n_fft: int = N_FFT) -> np.ndarray:
    """Periodic Hann window of `n_fft` samples, float64, read-only.

    Computed as ``scipy.signal.get_window("hann", n_fft, fftbins=True)`` computes it (a cosine sum
    over ``linspace(-pi, pi, n_fft + 1)``, last point dropped), so the values are bit-identical to
    the window librosa uses, without importing ``scipy.signal``.
    """
    phase = np.linspace(-np.pi, np.pi, n_fft + 1)
    window = np.full(n_fft + 1, 0.5) + 0.5 * np.cos(phase)
    window = window[:-1]
    window.flags.writeable = False
    return window


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa ``hz_to_mel(htk=False)``)."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    linear = freq / f_sp
    logpart = min_log_mel + np.log(np.maximum(freq, 1e-300) / 1000.0) / logstep
    return np.where(freq >= 1000.0, logpart, linear)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel` (librosa ``mel_to_hz(htk=False)``)."""
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, 1000.0 * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


@functools.lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = _N_MELS) -> np.ndarray:
    """Slaney mel filter bank, 0 Hz to sr/2, Slaney norm (``librosa.filters.mel`` defaults).

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _mel_bands(
    sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = _N_MELS, groups: int = 8
) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """Cut the mel filter bank into `groups` runs of bands, each restricted to the bins it covers.

    Returns ``(band0, band1, bin0, bin1, weights.T)`` per run: bands ``band0..band1-1`` are zero
    outside bins ``bin0..bin1-1``. Triangular filters are narrow, so the products over these
    blocks cost about an eighth of the full matrix product, with the same nonzero terms.
    """
    weights = mel_filterbank(sr, n_fft, n_mels)
    nonzero = weights != 0
    out = []
    for band0 in range(0, n_mels, -(-n_mels // groups)):
        band1 = min(n_mels, band0 - (-n_mels // groups))
        cols = np.flatnonzero(nonzero[band0:band1].any(axis=0))
        bin0, bin1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
        block = np.ascontiguousarray(weights[band0:band1, bin0:bin1].T)
        block.flags.writeable = False
        out.append((band0, band1, bin0, bin1, block))
    return tuple(out)


def _mel_spectrogram(power: np.ndarray, out: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Write ``power @ mel_filterbank(sr).T`` into `out` [shape=(frames, 128)], band block by block."""
    for band0, band1, bin0, bin1, block in _mel_bands(sr, N_FFT, _N_MELS):
        np.matmul(power[:, bin0:bin1], block, out=out[:, band0:band1])
    return out


@functools.lru_cache(maxsize=128)
def chroma_filterbank(tuning: float, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Chroma filter bank for a tuning offset (``librosa.filters.chroma`` defaults, 12 chroma).

    Returns
    -------
    np.ndarray [shape=(12, 1 + n_fft // 2), dtype=float32]
    """
    n_chroma = _N_CHROMA
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (a440 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    dist = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    dist = np.remainder(dist + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * dist / binwidthbins[None, :]) ** 2)
    wts /= np.sqrt(np.sum(wts**2, axis=0, keepdims=True))
    wts *= np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    wts = np.roll(wts, -3, axis=0)
    return np.ascontiguousarray(wts[:, : 1 + n_fft // 2], dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _dct_matrix(n_out: int = _N_MFCC, n_in: int = _N_MELS) -> np.ndarray:
    """Orthonormal DCT-II matrix, first `n_out` rows (``scipy.fft.dct(type=2, norm="ortho")``)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis


# ----------------------------------------------------------------------------------------------
# Framing and STFT over frame ranges (frames are rows: shape (frames, ...)).


def n_frames(n_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Count the centred STFT frames of a signal of `n_samples` (``1 + n_samples // hop_length``)."""
    return 1 + n_samples // hop_length


def _segment(y: np.ndarray, start: int, stop: int, mode: str) -> np.ndarray:
    """Return ``y[start:stop]``, indices outside the signal filled per `mode` ("constant" or "edge")."""
    n = y.shape[0]
    lo, hi = max(start, 0), min(stop, n)
    seg = y[lo:hi]
    before, after = lo - start, stop - hi
    if before or after:
        seg = np.pad(seg, (before, after), mode=mode)
    return seg


def _frames(
    y: np.ndarray, f0: int, f1: int, mode: str, frame_length: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Return centred frames ``f0..f1-1`` of `y` padded by `mode` [shape=(f1-f0, frame_length)], a view."""
    half = frame_length // 2
    seg = _segment(y, f0 * hop_length - half, (f1 - 1) * hop_length + half, mode)
    return np.lib.stride_tricks.sliding_window_view(seg, frame_length)[::hop_length]


def stft_frames(
    y: np.ndarray, f0: int, f1: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Frames ``f0..f1-1`` of librosa's centred, zero-padded STFT (Hann), as rows.

    As in librosa, float32 frames times the float64 window are transformed in float64 and stored as
    complex64, so the values equal ``librosa.stft(y)`` bit for bit.

    Returns
    -------
    np.ndarray [shape=(f1 - f0, 1 + n_fft // 2), dtype=complex64]
        The transpose of the matching columns of ``librosa.stft(y)``.
    """
    frames = _frames(y, f0, f1, "constant", n_fft, hop_length) * hann_window(n_fft)
    return scipy.fft.rfft(frames, axis=-1).astype(np.complex64)


def _fast_stft(y: np.ndarray, f0: int, f1: int) -> np.ndarray:
    """Frames ``f0..f1-1`` of the same STFT as :func:`stft_frames`, computed in float32 (fast path).

    Float32 frames times the float32 window, single-precision FFT: about three times faster than
    the float64 transform (no complex128 intermediate to narrow), and within float32 rounding
    (relative 1e-7 of each frame's energy) of :func:`stft_frames`, far inside the features' tolerance.
    """
    frames = _frames(y, f0, f1, "constant") * _hann32()
    return scipy.fft.rfft(frames, axis=-1, overwrite_x=True)


@functools.lru_cache(maxsize=1)
def _hann32() -> np.ndarray:
    """:func:`hann_window` of ``n_fft`` as float32, read-only."""
    window = hann_window(N_FFT).astype(np.float32)
    window.flags.writeable = False
    return window


def _window_sumsquare(count: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Overlap-added squared Hann window of `count` frames (spaced by `hop_length`).

    Built per hop-sized row (only the first and last ``n_fft // hop_length - 1`` rows miss a part)
    instead of adding `count` window copies.
    """
    k = n_fft // hop_length
    parts = np.square(hann_window(n_fft)).reshape(k, hop_length)
    out = np.empty((count + k - 1, hop_length), dtype=parts.dtype)
    out[:] = parts.sum(axis=0)
    for row in {*range(k - 1), *range(count, count + k - 1)}:
        out[row] = parts[max(0, row - count + 1) : min(row, k - 1) + 1].sum(axis=0)
    return out.ravel()


# ----------------------------------------------------------------------------------------------
# HPSS


def _reflect_index(n: int, pad_before: int, pad_after: int) -> np.ndarray:
    """Source index of each position of ``n`` values padded by reflection (NumPy "symmetric").

    NumPy's "symmetric" is SciPy's "reflect" (edge value repeated); pads longer than `n` reflect
    again, with period ``2 * n``, as both libraries do.
    """
    pos = np.mod(np.arange(-pad_before, n + pad_after), 2 * n)
    return np.where(pos >= n, 2 * n - 1 - pos, pos).astype(np.intp)


def _median_steps(
    x: np.ndarray, size: int, pad_before: int, pad_after: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Median filter of odd `size` along axis 0 of a 2-D float32 array, after reflective padding.

    Parameters
    ----------
    x : np.ndarray [shape=(n, lanes), dtype=float32]
        Any strides (a transposed view is filtered in place, without a copy).
    size : int
        Odd window length.
    pad_before, pad_after : int
        Values reflected before and after (at true signal edges; 0 where `x` already holds the
        context the windows need).
    out : np.ndarray [shape=(n + pad_before + pad_after - (size - 1), lanes), dtype=float32], optional
        Where to write the result (any strides); allocated C-contiguous if omitted.

    Returns
    -------
    np.ndarray [shape=(n + pad_before + pad_after - (size - 1), lanes), dtype=float32]
        Row ``s`` is the median of padded rows ``s .. s + size - 1``, exactly (the C extension
        :mod:`genrekit.audio._hpss` selects one of the input values; no arithmetic on them).
    """
    n_out = x.shape[0] + pad_before + pad_after - (size - 1)
    if out is None:
        out = np.empty((max(n_out, 0), x.shape[1]), dtype=np.float32)
    if x.shape[0] and n_out > 0:  # (nothing to filter in an empty array)
        _hpss.median_filter(x, out, _reflect_index(x.shape[0], pad_before, pad_after), size)
    return out


def running_median(x: np.ndarray, size: int = _HPSS_KERNEL, axis: int = -1) -> np.ndarray:
    """Median filter of odd `size` along `axis`, exactly ``scipy.ndimage.median_filter(mode="reflect")``.

    Equal to the filter librosa's ``decompose.hpss`` applies (``size=(1, 31)`` or ``(31, 1)``), but
    as one one-dimensional pass of a C kernel (:mod:`genrekit.audio._hpss`) instead of a slow
    n-dimensional one.

    Parameters
    ----------
    x : np.ndarray, dtype=float32
        Values to filter; any shape and strides.
    size : int
        Odd window length, at most 255.
    axis : int
        Axis along which to filter.

    Returns
    -------
    np.ndarray, dtype=float32
        Same shape as `x`.

    Raises
    ------
    TypeError
        If `x` is not float32.
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"running_median needs float32 values, got {x.dtype}")
    half = size // 2
    out = np.empty(x.shape, dtype=np.float32)  # the layout of `x`, whatever the axis
    moved, moved_out = np.moveaxis(x, axis, 0), np.moveaxis(out, axis, 0)
    if x.ndim <= 2:  # 2-D views of both: filtered in place, no copies
        shape2d = (moved.shape[0], moved.shape[1] if x.ndim == 2 else 1)
        _median_steps(moved.reshape(shape2d), size, half, half, moved_out.reshape(shape2d))
    else:
        flat = _median_steps(moved.reshape(moved.shape[0], -1), size, half, half)
        moved_out[...] = flat.reshape(moved.shape)
    return out


def _harmonic_median(mag: np.ndarray, pad_before: int, pad_after: int, size: int) -> np.ndarray:
    """Time-direction median of `mag` rows (frames) whose first/last rows may be true signal edges.

    `pad_before` / `pad_after` rows are reflected at the ends (only at the signal's own edges); the
    result has ``len(mag) + pad_before + pad_after - (size - 1)`` rows.
    """
    return _median_steps(mag, size, pad_before, pad_after)


def _soft_masks(harm: np.ndarray, perc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute librosa's ``util.softmask`` with power 2 for both directions (0 where both inputs vanish)."""
    z = np.maximum(harm, perc)
    bad = z < _TINY32
    z[bad] = 1
    h2 = np.square(harm / z)
    p2 = np.square(perc / z)
    den = h2 + p2
    den[bad] = 1
    mask_h = h2 / den
    mask_p = p2 / den
    mask_h[bad] = 0
    mask_p[bad] = 0
    return mask_h, mask_p


# ----------------------------------------------------------------------------------------------
# Per-frame spectral features


def _piptrack_candidates(power: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitch/magnitude pairs of librosa's ``piptrack(S=power)`` (fmin 150, fmax 4000, threshold 0.1).

    Returns only the nonzero entries (frame order), both float32.
    """
    freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    bins = np.flatnonzero((freqs >= 150.0) & (freqs < min(4000.0, sr / 2)))
    lo, hi = bins[0], bins[-1] + 1
    s = power[:, lo - 1 : hi + 1]
    ref = np.float32(0.1) * power.max(axis=1, keepdims=True)
    thr = s * (s > ref)
    centre = thr[:, 1:-1]
    is_peak = (centre > thr[:, :-2]) & (centre >= thr[:, 2:])
    rows, cols = np.nonzero(is_peak)
    x0, xm, xp = s[rows, cols + 1], s[rows, cols], s[rows, cols + 2]  # at the peaks only
    a = xp + xm - 2 * x0
    b = (xp - xm) / 2
    ok = np.abs(b) < np.abs(a)
    shift = np.zeros_like(a)
    shift[ok] = -b[ok] / a[ok]
    pitch = (cols + lo + shift) * np.float32(sr / n_fft)
    mag = x0 + np.float32(0.5) * b * shift
    return pitch.astype(np.float32), mag.astype(np.float32)


def estimate_tuning(pitch: np.ndarray, mag: np.ndarray, resolution: float = 0.01) -> float:
    """Tuning offset (fraction of a bin) from piptrack candidates, as librosa ``estimate_tuning``."""
    keep = pitch > 0
    if not keep.any():
        return 0.0
    threshold = np.median(mag[keep])
    freqs = pitch[keep & (mag >= threshold)]
    freqs = freqs[freqs > 0]
    if not freqs.size:
        return 0.0
    residual = np.mod(_N_CHROMA * np.log2(freqs / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, edges)
    return float(edges[np.argmax(counts)])


def _spectral_shape(mag: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid, bandwidth (p=2) and 85 % rolloff of each row of a magnitude spectrogram."""
    freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    moments = mag.astype(np.float64) @ np.stack([np.ones_like(freqs), freqs, freqs**2], axis=1)
    total = moments[:, 0]
    total = np.where(total < _TINY32, 1.0, total)
    centroid = moments[:, 1] / total
    spread = moments[:, 2] / total - 2 * centroid * moments[:, 1] / total
    spread += centroid**2 * moments[:, 0] / total
    bandwidth = np.sqrt(np.maximum(spread, 0.0))
    return centroid, bandwidth, freqs[_rolloff_bins(mag)]


def _rolloff_bins(mag: np.ndarray, roll_percent: float = 0.85, chunk: int = 41) -> np.ndarray:
    """First bin of each row where the cumulative magnitude reaches `roll_percent` of the total.

    Two levels instead of a cumulative sum of every row: sums over chunks of `chunk` bins locate
    the chunk where the threshold is crossed, then only that chunk is summed bin by bin. Up to
    float32 rounding of the partial sums, this is ``argmax(cumsum(mag) >= roll_percent * total)``.
    """
    n, bins = mag.shape
    n_chunks = -(-bins // chunk)
    if bins % chunk:  # zeros change no sum (1025 bins are 25 chunks of 41: no copy)
        mag = np.concatenate((mag, np.zeros((n, n_chunks * chunk - bins), dtype=mag.dtype)), axis=1)
    parts = mag.reshape(n, n_chunks, chunk)
    sums = mag.reshape(n * n_chunks, chunk) @ np.ones(chunk, dtype=mag.dtype)  # one BLAS call
    coarse = np.cumsum(sums.reshape(n, n_chunks), axis=1)
    threshold = np.asarray(roll_percent, dtype=mag.dtype) * coarse[:, -1:]
    where = np.argmax(coarse >= threshold, axis=1)
    rows = np.arange(n)
    before = np.where(where > 0, coarse[rows, where - 1], 0)
    fine = before[:, None] + np.cumsum(parts[rows, where], axis=1)
    return where * chunk + np.argmax(fine >= threshold, axis=1)


def _chroma(power: np.ndarray, tuning: float, sr: int, n_fft: int) -> np.ndarray:
    """Max-normalised chroma of each row of a power spectrogram [shape=(frames, 12)]."""
    raw = power @ chroma_filterbank(tuning, sr, n_fft).T
    peak = raw.max(axis=1, keepdims=True)
    return raw / np.where(peak < _TINY32, 1, peak)


def _hop_blocks(y: np.ndarray, f0: int, f1: int, mode: str, hop_length: int) -> np.ndarray:
    """Return the padded samples under frames ``f0..f1-1`` as hop-sized rows [shape=(f1 - f0 + 3, hop)].

    Frame ``i`` (length ``n_fft``, a multiple of the hop: 4 hops) covers rows ``i .. i + 3``, so
    per-frame sums are sums of four per-row sums instead of a cumulative sum over all samples.
    """
    seg = _segment(y, f0 * hop_length - N_FFT // 2, (f1 - 1) * hop_length + N_FFT // 2, mode)
    return seg.reshape(-1, hop_length)


def _frame_sums(row_sums: np.ndarray, count: int) -> np.ndarray:
    """Sum of each run of ``n_fft // hop`` consecutive row sums: one value per frame."""
    k = row_sums.shape[0] - count + 1
    out = row_sums[:count].copy()
    for j in range(1, k):
        out += row_sums[j : j + count]
    return out


def _rms(y: np.ndarray, f0: int, f1: int, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """RMS of frames ``f0..f1-1`` of length 2048 of the zero-padded signal (librosa ``rms``)."""
    rows = _hop_blocks(y, f0, f1, "constant", hop_length).astype(np.float64)
    energy = _frame_sums(np.einsum("ij,ij->i", rows, rows), f1 - f0)
    return np.sqrt(energy / N_FFT)


def _zero_crossing_rate(y: np.ndarray, f0: int, f1: int, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Zero-crossing rate of frames ``f0..f1-1`` of the edge-padded signal (librosa defaults).

    A crossing at sample ``p`` is a sign change between ``p - 1`` and ``p``; a frame counts those
    at its samples 1..2047 (its first sample never counts).
    """
    rows = _hop_blocks(y, f0, f1, "edge", hop_length)
    negative = (rows < -np.asarray(_ZC_THRESHOLD, dtype=rows.dtype)).ravel()
    change = np.empty(negative.shape, dtype=bool)
    change[0] = False
    np.not_equal(negative[1:], negative[:-1], out=change[1:])
    change = change.reshape(rows.shape)
    count = _frame_sums(np.count_nonzero(change, axis=1), f1 - f0) - change[: f1 - f0, 0]
    return count / N_FFT


# ----------------------------------------------------------------------------------------------
# Mel-based features: MFCC and tempo


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """Convert power to dB as librosa ``power_to_db`` with ``ref=1.0`` (top_db over the whole array)."""
    log_spec = np.float32(10.0) * np.log10(np.maximum(np.float32(amin), power))
    return np.maximum(log_spec, log_spec.max() - np.float32(top_db))


def onset_strength(mel_db: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Compute librosa's ``onset_strength(aggregate=np.median)`` from mel dB [shape=(frames, mels)]."""
    diff = np.maximum(0.0, mel_db[1:] - mel_db[:-1])
    env = np.median(diff, axis=1)
    pad = 1 + n_fft // (2 * hop_length)
    return np.concatenate((np.zeros(pad, dtype=env.dtype), env))[: mel_db.shape[0]]


def mean_tempogram(onset_env: np.ndarray, win_length: int, chunk: int = 2048) -> np.ndarray:
    """Time average of librosa's ``tempogram`` (autocorrelation, Hann, max-normalised) of an envelope.

    Each frame's autocorrelation ``a`` is the inverse transform of its power spectrum ``P``, which
    is real and even: a DCT-I of ``P`` (times ``1 / n_pad``, which the normalisation removes). Its
    largest magnitude is at lag 0 (Cauchy-Schwarz: ``|a[k]| <= a[0]``), and ``a[0]`` is a weighted
    sum of ``P`` (weights 1, 2, ..., 2, 1). Max-normalising and averaging are therefore linear in
    ``P``: the average of the normalised autocorrelations is the DCT-I of the correspondingly
    weighted sum of the power spectra, one transform instead of one per frame. Frames are
    processed `chunk` at a time (rounded down to a multiple of 64, at least 64), so memory stays
    bounded for long signals; the sum runs over fixed groups of 64 frames in order, so the result
    does not depend on `chunk`.
    """
    n = onset_env.shape[0]
    half = win_length // 2
    padded = np.pad(onset_env, (half, half), mode="linear_ramp", end_values=(0, 0))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win_length)[:n]
    window = hann_window(win_length)
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)
    lag0 = np.full(n_pad // 2 + 1, 2.0)  # a[0] = P[0] + 2 P[1] + ... + 2 P[-2] + P[-1] (DCT-I row 0)
    lag0[[0, -1]] = 1.0
    total_power = np.zeros(n_pad // 2 + 1)
    group = 64
    for start in range(0, n, max(group, chunk - chunk % group)):
        block = frames[start : start + max(group, chunk - chunk % group)]
        windowed = np.zeros((block.shape[0], n_pad))
        np.multiply(block, window, out=windowed[:, :win_length])
        spectrum = scipy.fft.rfft(windowed, axis=-1, overwrite_x=True)
        squares = np.square(spectrum.view(np.float64))  # re**2, im**2 interleaved
        power = squares[:, 0::2]
        power += squares[:, 1::2]  # librosa's abs2
        for first in range(0, power.shape[0], group):
            rows = power[first : first + group]
            peak = rows @ lag0
            total_power += (1.0 / np.where(peak < np.finfo(np.float64).tiny, 1.0, peak)) @ rows
    return scipy.fft.dct(total_power, type=1)[:win_length] / n


def tempo_from_onsets(onset_env: np.ndarray, sr: int = SAMPLE_RATE, hop_length: int = HOP_LENGTH) -> float:
    """Estimate the global tempo (BPM) from an onset envelope as librosa ``beat_track`` does.

    Returns 0 for an all-zero envelope; otherwise the argmax of ``log1p(1e6 * tg)`` plus a log-normal
    prior (120 BPM, 1 octave) over the tempogram lags, excluding tempi of 320 BPM and more.
    """
    if not onset_env.any():
        return 0.0
    win_length = int(_TEMPO_SECONDS * sr) // hop_length  # librosa.time_to_frames(8.0): 344 frames
    tg = mean_tempogram(onset_env, win_length)
    bpms = np.full(win_length, np.inf)
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, win_length))
    logprior = -0.5 * ((np.log2(bpms) - np.log2(120.0)) / 1.0) ** 2
    logprior[: int(np.argmax(bpms < 320.0))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * tg) + logprior)])


# ----------------------------------------------------------------------------------------------
# Streaming statistics


def _moments(values: list[np.ndarray]) -> np.ndarray:
    """Count, mean and sum of squared deviations of each array [shape=(3, len(values))]."""
    out = np.empty((3, len(values)))
    for i, v in enumerate(values):
        out[0, i] = v.size
        dev = v.astype(np.float64)
        out[1, i] = np.mean(dev)
        dev -= out[1, i]
        out[2, i] = np.dot(dev, dev)
    return out


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chan et al.'s parallel combination of two :func:`_moments` results."""
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return np.stack([n, a[1] + delta * b[0] / n, a[2] + b[2] + delta**2 * a[0] * b[0] / n])


# ----------------------------------------------------------------------------------------------
# The fast path


def _blocks(total: int, block_frames: int) -> list[tuple[int, int]]:
    """Split frames ``0..total-1`` into consecutive ranges of at most `block_frames`."""
    return [(f0, min(f0 + block_frames, total)) for f0 in range(0, total, block_frames)]


def _context(f0: int, f1: int, n_samples: int, hop_length: int = HOP_LENGTH) -> tuple[int, ...]:
    """Sample and frame ranges a block of core frames ``f0..f1-1`` needs.

    Returns ``(s0, s1, e0, e1, g0, g1)``: the block's samples ``s0..s1-1`` (the frames' hops, the
    last block running to the end of the signal); the frames ``e0..e1-1`` whose windows overlap
    those samples (inverse STFT); the frames ``g0..g1-1`` the harmonic median filter needs around
    them. All ranges are clipped to the signal, so every per-frame or per-sample value equals the
    whole-signal computation.
    """
    total = n_frames(n_samples, hop_length)
    half, radius = N_FFT // 2, _HPSS_KERNEL // 2
    s0 = f0 * hop_length
    s1 = n_samples if f1 == total else f1 * hop_length
    e0 = max(0, (s0 - half) // hop_length + 1)
    e1 = min(total, -(-(s1 + half) // hop_length))
    return s0, s1, e0, e1, max(0, e0 - radius), min(total, e1 + radius)


def _istft_segment(spec: np.ndarray, e0: int, s0: int, s1: int) -> np.ndarray:
    """Invert STFT rows ``e0..`` (all frames overlapping samples ``s0..s1-1``) as librosa's ``istft``.

    Hann synthesis window, overlap-add, division by the window sum-square where it exceeds tiny
    (as a product with its cached reciprocal). `spec` is overwritten; the result is float32.
    """
    frames = scipy.fft.irfft(spec, n=N_FFT, axis=-1, overwrite_x=True)
    out = np.empty(s1 - s0, dtype=np.float32)
    offset = s0 - (e0 * HOP_LENGTH - N_FFT // 2)
    # One C pass: window, overlap-add, times the reciprocal window sum-square (same values as
    # the overlap-add of ``frames * window``, from `offset`, times ``inverse``, without the temporaries).
    _hpss.overlap_add(frames, _hann32(), _inverse_window_sumsquare(frames.shape[0]), HOP_LENGTH, offset, out)
    return out


@functools.lru_cache(maxsize=8)
def _inverse_window_sumsquare(count: int) -> np.ndarray:
    """Float32 ``1 / wss`` of :func:`_window_sumsquare` where ``wss > tiny``, else 1; read-only."""
    wss = _window_sumsquare(count).astype(np.float32)
    inverse = np.float32(1) / np.where(wss > _TINY32, wss, np.float32(1))
    inverse.flags.writeable = False
    return inverse


def _hpss_signals(
    y: np.ndarray, spec: np.ndarray, mag: np.ndarray, bounds: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return harmonic and percussive samples ``s0..s1-1`` (``effects.hpss``) of one block.

    `spec` and `mag` hold the STFT frames ``g0..g1-1``; `bounds` is ``(s0, s1, e0, e1, g0, g1)`` from
    :func:`_context`. Since the two soft masks sum to 1 wherever they are defined and the inverse STFT
    is linear and reconstructs `y` exactly, the percussive part is ``y - harmonic`` unless some
    nonzero STFT bin gets both masks 0; then both parts are inverted separately as librosa does.
    """
    s0, s1, e0, e1, g0, g1 = bounds
    radius = _HPSS_KERNEL // 2
    harm = _harmonic_median(mag, radius - (e0 - g0), radius - (g1 - e1), _HPSS_KERNEL)
    core = slice(e0 - g0, e1 - g0)
    perc = running_median(mag[core], _HPSS_KERNEL, axis=1)
    spec = spec[core]
    masked = np.empty_like(spec)
    if _hpss.soft_mask(spec, harm, perc, masked):  # some nonzero bin with both medians 0
        mask_h, mask_p = _soft_masks(harm, perc)
        return _istft_segment(spec * mask_h, e0, s0, s1), _istft_segment(spec * mask_p, e0, s0, s1)
    y_harm = _istft_segment(masked, e0, s0, s1)
    return y_harm, y[s0:s1] - y_harm


def _block_moments(
    y: np.ndarray,
    spec: np.ndarray,
    mag: np.ndarray,
    f0: int,
    f1: int,
    tuning: float,
    sr: int,
    power: np.ndarray | None = None,
) -> np.ndarray:
    """Moments of the 8 frame/sample features of one block (see :func:`_context`).

    `spec` and `mag` hold the STFT and its magnitude for the frames ``g0..g1-1``; `power`, if
    given, is ``mag ** 2`` for the same frames.
    """
    bounds = _context(f0, f1, y.shape[0])
    g0 = bounds[4]
    core = mag[f0 - g0 : f1 - g0]
    core_power = np.square(core) if power is None else power[f0 - g0 : f1 - g0]
    centroid, bandwidth, rolloff = _spectral_shape(core, sr, N_FFT)
    y_harm, y_perc = _hpss_signals(y, spec, mag, bounds)
    return _moments(
        [
            _chroma(core_power, tuning, sr, N_FFT).ravel(),
            _rms(y, f0, f1),
            centroid,
            bandwidth,
            rolloff,
            _zero_crossing_rate(y, f0, f1),
            y_harm,
            y_perc,
        ]
    )


def _mel_and_tuning(
    y: np.ndarray, blocks: list[tuple[int, int]], whole_power: np.ndarray | None, sr: int
) -> tuple[np.ndarray, float]:
    """First pass: the whole mel power spectrogram [shape=(frames, 128)] and the chroma tuning.

    Both need the whole signal (the dB range, the tempo, the tuning's median threshold), but only
    the mel spectrogram and the piptrack candidates are kept, never the full STFT.
    """
    mel = np.empty((n_frames(y.shape[0]), _N_MELS), dtype=np.float32)
    pitches, mags = [], []
    for f0, f1 in blocks:
        power = whole_power if whole_power is not None else np.square(np.abs(_fast_stft(y, f0, f1)))
        _mel_spectrogram(power, mel[f0:f1], sr)
        pitch, mag = _piptrack_candidates(power, sr, N_FFT)
        pitches.append(pitch)
        mags.append(mag)
    return mel, estimate_tuning(np.concatenate(pitches), np.concatenate(mags))


def _block_stats(
    y: np.ndarray,
    blocks: list[tuple[int, int]],
    whole: np.ndarray | None,
    whole_mag: np.ndarray | None,
    whole_power: np.ndarray | None,
    tuning: float,
    sr: int,
) -> np.ndarray:
    """Second pass: combined moments of the 8 frame/sample features over all blocks."""
    stats = None
    for f0, f1 in blocks:
        if whole is None:
            _, _, _, _, g0, g1 = _context(f0, f1, y.shape[0])
            spec = _fast_stft(y, g0, g1)
            block = _block_moments(y, spec, np.abs(spec), f0, f1, tuning, sr)
        else:
            block = _block_moments(y, whole, whole_mag, f0, f1, tuning, sr, whole_power)
        stats = block if stats is None else _combine(stats, block)
    return stats


def clip_features(y: np.ndarray, sr: int = SAMPLE_RATE, *, block_frames: int = BLOCK_FRAMES) -> np.ndarray:
    """Compute the 57 features fast; same definitions as :func:`reference_features`.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal, float32 or float64, at least :data:`MIN_SAMPLES` samples.
    sr : int
        Sample rate; must be 22050.
    block_frames : int
        Frames per processing block (default :data:`BLOCK_FRAMES`, about 60 s). Memory grows with
        the block, not the signal (apart from the 128-band mel spectrogram, 0.5 kB per frame, kept
        whole for the global dB range and the tempo). Results do not depend on it beyond rounding.

    Returns
    -------
    np.ndarray [shape=(57,), dtype=float64]
        The features in ``schema.FEATURE_NAMES`` order.

    Raises
    ------
    AudioError
        If the signal is too short, not 1-D floating point, holds NaN/Inf, or `sr` is wrong, or
        its features are not finite (:class:`NonFiniteFeaturesError`, see :func:`finite_features`).
    ValueError
        If `block_frames` is not positive.
    """
    y = _check_signal(y, sr)
    if block_frames < 1:
        raise ValueError(f"block_frames must be positive, got {block_frames}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflows end as non-finite features, refused
        return finite_features(_clip_features(y, sr, block_frames), y)


def _clip_features(y: np.ndarray, sr: int, block_frames: int) -> np.ndarray:
    """Compute the 57 features of a checked signal by the fast path (see :func:`clip_features`)."""
    total = n_frames(y.shape[0])
    blocks = _blocks(total, block_frames)
    whole = _fast_stft(y, 0, total) if len(blocks) == 1 else None
    whole_mag = None if whole is None else np.abs(whole)
    whole_power = None if whole is None else np.square(whole_mag)

    mel, tuning = _mel_and_tuning(y, blocks, whole_power, sr)
    mel_db = power_to_db(mel)
    tempo = tempo_from_onsets(onset_strength(mel_db), sr)
    mfcc = mel_db @ _dct_matrix(_N_MFCC, _N_MELS).T
    stats = _block_stats(y, blocks, whole, whole_mag, whole_power, tuning, sr)

    out = np.empty(len(FEATURE_NAMES))
    out[0:16:2] = stats[1]
    out[1:16:2] = stats[2] / stats[0]
    out[16] = tempo
    out[17::2] = mfcc.mean(axis=0)
    out[18::2] = mfcc.var(axis=0)
    return out
