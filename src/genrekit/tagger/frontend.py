"""musicnn's input: log-compressed mel spectrogram at 16 kHz, computed block by block.

musicnn 0.1.0 computes ``librosa.feature.melspectrogram(y, sr=16000, hop_length=256, n_fft=512,
n_mels=96)`` (centred frames, zero padding, periodic Hann window, power 2, Slaney mel bank), casts it
to float16 and applies ``log10(10000 * x + 1)``. Under the NumPy it was written for (before 2.0,
value-based casting) ``10000 * x`` of a float16 array is float32, since 10000 needs int16: the
values are rounded to float16, then compressed in float32. (Under NumPy 2 the same expression stays
float16 and overflows to infinity above a band power of 6.55: one way a newer stack breaks the
original.) :class:`LogMelStream` reproduces that on consecutive
blocks of samples, keeping at most one block plus one frame of samples; :func:`patches` cuts frames
into the network's 187-frame patches without overlap, dropping the incomplete last patch as
musicnn's ``batch_data`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from genrekit.audio.features import hann_window, mel_filterbank
from genrekit.tagger.network import N_MELS, PATCH_FRAMES

SAMPLE_RATE: int = 16000
"""musicnn's sample rate."""

N_FFT: int = 512
HOP: int = 256

PATCH_SECONDS: float = PATCH_FRAMES * HOP / SAMPLE_RATE
"""Duration of one patch, and the hop between patches (2.992 s)."""


def log_compress(mel: np.ndarray) -> np.ndarray:
    """``log10(10000 * x + 1)`` of the mel power rounded to float16, computed in float32 (see above)."""
    rounded = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * rounded + np.float32(1))


class LogMelStream:
    """Log-mel frames of a signal fed block by block (equal to the whole-signal computation).

    Frame ``t`` covers samples ``[256 t - 256, 256 t + 256)`` of the signal, zero outside it
    (librosa's ``center=True`` with constant padding): a signal of ``n`` samples has
    ``1 + n // 256`` frames.
    """

    def __init__(self) -> None:
        self._buffer = np.zeros(N_FFT // 2, dtype=np.float32)
        self._window = hann_window(N_FFT)
        self._mel_t = np.ascontiguousarray(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS).T)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add samples; return the log-mel frames now complete, shape ``(frames, 96)`` float32."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float32)])
        return self._frames()

    def finish(self) -> np.ndarray:
        """End of signal: pad half a frame of zeros and return the last frames."""
        return self.push(np.zeros(N_FFT // 2, dtype=np.float32))

    def _frames(self) -> np.ndarray:
        count = (len(self._buffer) - N_FFT) // HOP + 1
        if count <= 0:
            return np.empty((0, N_MELS), dtype=np.float32)
        frames = sliding_window_view(self._buffer[: (count - 1) * HOP + N_FFT], N_FFT)[::HOP]
        # librosa: float64 window x float32 frames, FFT in float64 stored as complex64, |.|**2 in float32
        spectrum = np.fft.rfft(frames * self._window, axis=1).astype(np.complex64)
        mel = (np.abs(spectrum) ** 2) @ self._mel_t
        self._buffer = self._buffer[count * HOP :]
        return log_compress(mel)


def log_mel(y: np.ndarray) -> np.ndarray:
    """Log-mel frames of a whole 16-kHz signal, shape ``(1 + len(y) // 256, 96)`` float32."""
    stream = LogMelStream()
    return np.concatenate([stream.push(y), stream.finish()])


def patches(frame_blocks: Iterable[np.ndarray], batch: int = 8) -> Iterator[np.ndarray]:
    """Cut consecutive log-mel frame blocks into batches of 187-frame patches.

    Parameters
    ----------
    frame_blocks : iterable of ndarray of shape (frames, 96)
        Consecutive frames (from :class:`LogMelStream`).
    batch : int > 0
        Patches per yielded array (bounds memory: the network's work arrays grow with it).

    Yields
    ------
    ndarray of shape (k, 187, 96), float32
        ``1 <= k <= batch`` patches; the frames after the last complete patch are dropped. A signal
        shorter than one patch (under 3 s) gives one patch, its frames repeated to fill it (musicnn
        fails on such input; its training repeated short clips the same way).
    """
    pending: list[np.ndarray] = []
    held = 0
    ready: list[np.ndarray] = []
    seen = False
    for block in frame_blocks:
        pending.append(block)
        held += len(block)
        while held >= PATCH_FRAMES:
            frames = np.concatenate(pending)
            ready.append(frames[:PATCH_FRAMES])
            pending, held = [frames[PATCH_FRAMES:]], held - PATCH_FRAMES
            if len(ready) == batch:
                yield np.stack(ready)
                ready, seen = [], True
    if ready:
        yield np.stack(ready)
    elif not seen and held:
        frames = np.concatenate(pending)
        yield np.resize(frames, (PATCH_FRAMES, N_MELS)).reshape(1, PATCH_FRAMES, N_MELS)
