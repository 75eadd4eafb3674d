"""The musicnn network (Pons & Serra, 2019) in NumPy: front end, mid end, back end.

A faithful port of ``build_musicnn`` in musicnn 0.1.0's ``models.py`` at inference
(``is_training=False``: batch norms use their moving statistics, dropout is off), for the
``MTT_musicnn`` and ``MSD_musicnn`` checkpoints (``num_filt_midend=64``, ``num_units_backend=200``).
Input: patches of log-mel frames, shape ``(batch, 187, 96)``.

* Front end: a batch norm of the input; two *timbral* convolutions (kernels 7 x 38 and 7 x 67
  over time x mel, 204 filters each, time padded by 3 frames each side, valid in frequency) and
  three *temporal* ones (kernels 128, 64 and 32 frames x 1 band, 51 filters each, TensorFlow
  ``same`` padding); each is ReLU, batch norm, then a max over the mel axis. 561 channels.
* Mid end: three 7-frame convolutions of 64 filters (ReLU, batch norm), the last two residual;
  the front end's and the three outputs are concatenated (753 channels).
* Back end: max and mean over time, interleaved per channel as TensorFlow's ``concat`` +
  ``flatten`` leave them (1506 values), batch norm, a 200-unit dense layer (ReLU, batch norm: the
  *penultimate* layer, the embedding), a 50-unit dense layer, sigmoid.

Every convolution is an ``im2col`` copy and one matrix product (BLAS). Max-pooling commutes with
the bias, the ReLU and the batch norm's affine map, so the big timbral and temporal outputs are
reduced over the mel axis straight after the product: a max where the batch norm's scale is
positive, a min where it is negative (taken as a max of the product with the filter negated, so
one pass does both); the few hundred values left get bias, ReLU and batch norm. This is exact:
rounding ``z + b`` is monotonic in ``z``, and negation is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

N_MELS: int = 96
"""Mel bands of the input."""

PATCH_FRAMES: int = 187
"""Frames per input patch (3 s at 16 kHz, hop 256, as ``librosa.time_to_frames(3) + 1``)."""

BN_EPSILON: float = 1e-3
"""``tf.compat.v1.layers.batch_normalization``'s default epsilon."""

TIMBRAL: tuple[tuple[str, str], ...] = (
    ("conv2d", "batch_normalization_1"),
    ("conv2d_1", "batch_normalization_2"),
)
"""Checkpoint names of the two timbral convolutions and their batch norms (kernels 7x38, 7x67)."""

TEMPORAL: tuple[tuple[str, str], ...] = (
    ("conv2d_2", "batch_normalization_3"),
    ("conv2d_3", "batch_normalization_4"),
    ("conv2d_4", "batch_normalization_5"),
)
"""Checkpoint names of the three temporal convolutions (128, 64, 32 frames) and their batch norms."""

MIDEND: tuple[tuple[str, str], ...] = (
    ("conv2d_5", "batch_normalization_6"),
    ("conv2d_6", "batch_normalization_7"),
    ("conv2d_7", "batch_normalization_8"),
)
"""Checkpoint names of the mid end's three convolutions and their batch norms."""

INPUT_BN, POOL_BN, DENSE, DENSE_BN, OUTPUT = (
    "batch_normalization",
    "batch_normalization_9",
    "dense",
    "batch_normalization_10",
    "dense_1",
)
"""Checkpoint names of the input batch norm, the back end's layers and the output layer."""


def variable_names() -> list[str]:
    """Every checkpoint variable the network reads (the Adam slots and counters are not)."""
    names = []
    for conv, bn in TIMBRAL + TEMPORAL + MIDEND:
        names += [f"{conv}/kernel", f"{conv}/bias", *_bn_names(bn)]
    for dense in (DENSE, OUTPUT):
        names += [f"{dense}/kernel", f"{dense}/bias"]
    for bn in (INPUT_BN, POOL_BN, DENSE_BN):
        names += _bn_names(bn)
    return sorted(names)


def _bn_names(bn: str) -> list[str]:
    return [f"{bn}/{part}" for part in ("gamma", "beta", "moving_mean", "moving_variance")]


@dataclass(frozen=True)
class _Conv:
    """A convolution as a matrix product: ``(K, C)`` weights, bias, batch-norm scale and shift."""

    weights: np.ndarray
    bias: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    taps: int
    """Kernel length along time."""
    signed: np.ndarray
    """``weights`` with the columns of negative batch-norm scale negated (for the pooled blocks)."""
    sign: np.ndarray
    """+1 or -1 per filter: the sign of the batch norm's scale."""


def _batch_norm(params: Mapping[str, np.ndarray], bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference batch norm into ``x * scale + shift`` (float32, as TensorFlow computes)."""
    gamma, beta = params[f"{bn}/gamma"], params[f"{bn}/beta"]
    mean, var = params[f"{bn}/moving_mean"], params[f"{bn}/moving_variance"]
    scale = (gamma / np.sqrt(var + np.float32(BN_EPSILON))).astype(np.float32)
    return scale, (beta - mean * scale).astype(np.float32)


def _conv(params: Mapping[str, np.ndarray], conv: str, bn: str) -> _Conv:
    kernel = np.asarray(params[f"{conv}/kernel"], dtype=np.float32)  # (time, width, 1, filters)
    scale, shift = _batch_norm(params, bn)
    weights = np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]))
    sign = np.where(scale >= 0, np.float32(1), np.float32(-1))
    return _Conv(
        weights=weights,
        bias=np.asarray(params[f"{conv}/bias"], dtype=np.float32),
        scale=scale,
        shift=shift,
        taps=kernel.shape[0],
        signed=np.ascontiguousarray(weights * sign),
        sign=sign,
    )


@dataclass(frozen=True)
class Outputs:
    """What the network gives for a batch of patches."""

    probabilities: np.ndarray
    """Sigmoid outputs, shape ``(batch, n_tags)`` (the taggram's rows)."""
    penultimate: np.ndarray
    """The 200-unit penultimate layer after its batch norm, shape ``(batch, 200)`` (the embeddings)."""


class MusicnnNet:
    """A musicnn network with its weights, ready to run on log-mel patches.

    Parameters
    ----------
    params : mapping of str to ndarray
        The checkpoint's variables by their TensorFlow names (see :func:`variable_names`).
    """

    def __init__(self, params: Mapping[str, np.ndarray]) -> None:
        self.input_scale, self.input_shift = (float(v[0]) for v in _batch_norm(params, INPUT_BN))
        self.timbral = [_conv(params, conv, bn) for conv, bn in TIMBRAL]
        self.temporal = [_conv(params, conv, bn) for conv, bn in TEMPORAL]
        self.midend = [_conv(params, conv, bn) for conv, bn in MIDEND]
        self.pool_scale, self.pool_shift = _batch_norm(params, POOL_BN)
        self.dense_w = np.asarray(params[f"{DENSE}/kernel"], dtype=np.float32)
        self.dense_b = np.asarray(params[f"{DENSE}/bias"], dtype=np.float32)
        self.dense_scale, self.dense_shift = _batch_norm(params, DENSE_BN)
        self.out_w = np.asarray(params[f"{OUTPUT}/kernel"], dtype=np.float32)
        self.out_b = np.asarray(params[f"{OUTPUT}/bias"], dtype=np.float32)
        self._temporal_signed = _stacked_kernels(self.temporal)

    @property
    def n_tags(self) -> int:
        """Number of output tags."""
        return int(self.out_b.shape[0])

    def __call__(self, patches: np.ndarray) -> Outputs:
        """Run the network on log-mel patches.

        Parameters
        ----------
        patches : ndarray of shape (batch, frames, 96)
            Log-mel patches (see :mod:`genrekit.tagger.frontend`); 187 frames as trained,
            though any length of at least one frame runs.

        Returns
        -------
        Outputs
            Tag probabilities and penultimate-layer embeddings per patch.
        """
        x = np.asarray(patches, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != N_MELS or x.shape[1] < 1:
            raise ValueError(f"patches must have shape (batch, frames, {N_MELS}), got {x.shape}")
        x = x * np.float32(self.input_scale) + np.float32(self.input_shift)
        front = np.concatenate([self._timbral(x, conv) for conv in self.timbral] + self._temporal(x), axis=2)
        features = self._midend(front)
        return self._backend(features)

    @staticmethod
    def _pooled(signed: np.ndarray, conv: _Conv) -> np.ndarray:
        """Bias, ReLU, batch norm, then max over the mel axis (axis 2), reduced first (exact).

        `signed` is the product with :attr:`_Conv.signed`: its max over the mel axis, times the
        sign, is the max of the convolution where the scale is positive and the min where negative.
        """
        return MusicnnNet._finish(signed.max(axis=2), conv)

    @staticmethod
    def _finish(top: np.ndarray, conv: _Conv) -> np.ndarray:
        """Sign, bias, ReLU and batch norm of the pooled signed maxima (see :meth:`_pooled`)."""
        return np.maximum(top * conv.sign + conv.bias, 0) * conv.scale + conv.shift

    def _timbral(self, x: np.ndarray, conv: _Conv) -> np.ndarray:
        """Run a timbral block: 'same' in time (pad 3 + valid), valid over the mel axis."""
        width = conv.weights.shape[0] // conv.taps
        pad = conv.taps // 2
        xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
        cols = sliding_window_view(xp, (conv.taps, width), axis=(1, 2))  # (b, t, f, taps, width)
        b, t, f = cols.shape[:3]
        z = cols.reshape(b * t * f, -1) @ conv.signed
        return self._pooled(z.reshape(b, t, f, -1), conv)

    def _temporal(self, x: np.ndarray) -> list[np.ndarray]:
        """Run the three temporal blocks as one product with their kernels stacked in one window.

        TensorFlow's 'same' padding puts ``(k - 1) // 2`` zeros before and the rest after, so a
        kernel of ``k`` taps reads the columns ``(K - 1) // 2 - (k - 1) // 2`` onwards of the
        longest kernel's (``K`` taps) window: the shorter kernels become zero-padded columns of a
        ``(K, 153)`` matrix (one product of 153 columns runs faster than three thin ones).
        """
        longest = self._temporal_signed.shape[0]
        before = (longest - 1) // 2
        xp = np.pad(x, ((0, 0), (before, longest - 1 - before), (0, 0)))
        cols = sliding_window_view(xp, longest, axis=1)  # (b, t, mel, longest)
        b, t, f = cols.shape[:3]
        top = (cols.reshape(b * t * f, longest) @ self._temporal_signed).reshape(b, t, f, -1).max(axis=2)
        out, start = [], 0
        for conv in self.temporal:
            stop = start + conv.weights.shape[1]
            out.append(self._finish(top[..., start:stop], conv))
            start = stop
        return out

    def _midend(self, front: np.ndarray) -> np.ndarray:
        """Three 7-frame convolutions (the last two residual); returns the 753 concatenated channels."""
        layers = [front]
        current = front
        for i, conv in enumerate(self.midend):
            pad = conv.taps // 2
            xp = np.pad(current, ((0, 0), (pad, pad), (0, 0)))
            cols = sliding_window_view(xp, conv.taps, axis=1)  # (b, t, channels, taps)
            b, t = cols.shape[:2]
            cols = cols.transpose(0, 1, 3, 2).reshape(b * t, -1)
            z = (cols @ conv.weights).reshape(b, t, -1)
            out = np.maximum(z + conv.bias, 0) * conv.scale + conv.shift
            current = out if i == 0 else out + current
            layers.append(current)
        return np.concatenate(layers, axis=2)

    def _backend(self, features: np.ndarray) -> Outputs:
        """Temporal max and mean (interleaved), batch norm, dense + ReLU + batch norm, dense, sigmoid."""
        pooled = np.stack([features.max(axis=1), features.mean(axis=1, dtype=np.float32)], axis=2)
        flat = pooled.reshape(len(features), -1) * self.pool_scale + self.pool_shift
        hidden = np.maximum(flat @ self.dense_w + self.dense_b, 0) * self.dense_scale + self.dense_shift
        logits = hidden @ self.out_w + self.out_b
        return Outputs(probabilities=_sigmoid(logits), penultimate=hidden)


def _stacked_kernels(convs: list[_Conv]) -> np.ndarray:
    """Stack the signed kernels of 'same'-padded 1-D convolutions side by side in the longest one's window."""
    longest = max(conv.taps for conv in convs)
    before = (longest - 1) // 2
    out = np.zeros((longest, sum(conv.weights.shape[1] for conv in convs)), dtype=np.float32)
    col = 0
    for conv in convs:
        start = before - (conv.taps - 1) // 2
        out[start : start + conv.taps, col : col + conv.weights.shape[1]] = conv.signed
        col += conv.weights.shape[1]
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function in float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)
