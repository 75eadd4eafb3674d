"""NumPy forward passes of the paper's CNN and of the CNN+GRU and attention networks.

The paper's CNN is :class:`genrekit.models.cnn.PaperCNN`; the other two are in
:mod:`genrekit.models.sequence`.

Each function reproduces a torch module in eval mode (dropout off) from its
``state_dict`` as NumPy arrays, in float64, importing NumPy only; it is what a
saved ``cnn_gru`` or ``attention`` node (:mod:`genrekit.models.portable`) runs.
The torch layers are re-implemented from their documented equations:

``torch.nn.GRU`` (one layer, ``batch_first``, gates in the order r, z, n; a
bidirectional GRU runs the same equations with the ``_reverse`` weights over
the steps in reverse order)::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h                      h starts at 0

``torch.nn.TransformerEncoderLayer`` (``norm_first=True``, ReLU, ``batch_first``)::

    x = x + out_proj(MultiHeadAttention(LayerNorm1(x)))
    x = x + linear2(relu(linear1(LayerNorm2(x))))

where multi-head attention splits ``in_proj`` into query, key and value,
cuts each into ``n_heads`` heads of ``d / n_heads`` columns, and takes
``softmax(q k^T / sqrt(d / n_heads)) v`` per head, heads concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from genrekit.core.schema import FEATURE_NAMES, GENRES

CONV1_FILTERS: int = 32
"""Filters of the first convolution."""

CONV2_FILTERS: int = 64
"""Filters of the second convolution."""

KERNEL_SIZE: int = 3
"""Kernel width of both convolutions (``padding="valid"``)."""

POOL_SIZE: int = 2
"""Max-pooling width and stride (odd lengths are floored, as in Keras)."""

DENSE_UNITS: int = 128
"""Units of the hidden dense layer."""

DROPOUT: float = 0.5
"""Dropout rate after the hidden dense layer (training only)."""


def _conv_length(length: int) -> int:
    """Length after a valid convolution of width :data:`KERNEL_SIZE`."""
    return length - KERNEL_SIZE + 1


def _pool_length(length: int) -> int:
    """Length after floor max pooling of width :data:`POOL_SIZE`."""
    return length // POOL_SIZE


MIN_STEPS: int = 10
"""Shortest input the two conv/pool stages accept; shorter inputs are zero-padded to it (:func:`pad_steps`).

The 57 GTZAN features are never padded; padding only lets the networks fit a table
of fewer columns (e.g. a feature subset), as scikit-learn expects of a classifier.
"""


def pad_steps(x: np.ndarray) -> np.ndarray:
    """Zero-pad scaled inputs (n, l) at the end to :data:`MIN_STEPS` steps when l is shorter."""
    missing = MIN_STEPS - x.shape[1]
    return np.pad(x, ((0, 0), (0, missing))) if missing > 0 else x


def flat_length(n_features: int = len(FEATURE_NAMES)) -> int:
    """Return the width of the flatten layer for `n_features` input steps.

    Parameters
    ----------
    n_features : int, default=57
        Input sequence length (padded to :data:`MIN_STEPS` when shorter).

    Returns
    -------
    int
        ``CONV2_FILTERS`` times the length left after both conv/pool stages.
    """
    length = max(n_features, MIN_STEPS)
    return CONV2_FILTERS * _pool_length(_conv_length(_pool_length(_conv_length(length))))


def weight_shapes(n_features: int = len(FEATURE_NAMES), n_classes: int = len(GENRES)) -> dict[str, tuple]:
    """Return the name and shape of every weight of :class:`PaperCNN`, in torch's layout.

    Computed by arithmetic, without torch, so saved models can be checked on load.

    Parameters
    ----------
    n_features : int, default=57
        Input sequence length.
    n_classes : int, default=10
        Output units.

    Returns
    -------
    dict of str to tuple of int
        ``{"conv1.weight": (32, 1, 3), "conv1.bias": (32,), ...}``.
    """
    return {
        "conv1.weight": (CONV1_FILTERS, 1, KERNEL_SIZE),
        "conv1.bias": (CONV1_FILTERS,),
        "conv2.weight": (CONV2_FILTERS, CONV1_FILTERS, KERNEL_SIZE),
        "conv2.bias": (CONV2_FILTERS,),
        "dense1.weight": (DENSE_UNITS, flat_length(n_features)),
        "dense1.bias": (DENSE_UNITS,),
        "dense2.weight": (n_classes, DENSE_UNITS),
        "dense2.bias": (n_classes,),
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit."""
    return np.maximum(x, 0.0)


def _conv1d_valid(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Apply a valid 1-D cross-correlation like ``torch.nn.Conv1d``: (n, c, l) -> (n, o, l - k + 1)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, weight.shape[2], axis=2)  # (n, c, l', k)
    return np.einsum("nclk,ock->nol", windows, weight, optimize=True) + bias[None, :, None]


def _max_pool(x: np.ndarray, size: int = POOL_SIZE) -> np.ndarray:
    """Floor max pooling over the last axis: (n, c, l) -> (n, c, l // size)."""
    n, c, length = x.shape
    out = length // size
    return x[:, :, : out * size].reshape(n, c, out, size).max(axis=3)


def conv_pool_stages(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Run the paper's conv + ReLU + max-pool stages ``conv1``, ``conv2``: (n, l) -> (n, channels, l')."""
    h = _max_pool(relu(_conv1d_valid(pad_steps(x)[:, None, :], w["conv1.weight"], w["conv1.bias"])))
    return _max_pool(relu(_conv1d_valid(h, w["conv2.weight"], w["conv2.bias"])))


def numpy_forward(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Run the paper's CNN (:class:`genrekit.models.cnn.PaperCNN`) in eval mode in NumPy.

    Parameters
    ----------
    weights : mapping of str to numpy.ndarray
        The module's ``state_dict`` as arrays (names from
        :func:`genrekit.models.cnn.weight_shapes`).
    x : numpy.ndarray, shape (n_samples, n_features)
        Scaled input features.

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_classes)
        Logits, float64.
    """
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    h = conv_pool_stages(w, x)
    h = h.reshape(h.shape[0], -1)  # channel-major, as torch's Flatten
    h = relu(h @ w["dense1.weight"].T + w["dense1.bias"])
    return h @ w["dense2.weight"].T + w["dense2.bias"]


LAYER_NORM_EPS: float = 1e-5
"""``torch.nn.LayerNorm``'s default epsilon, used by every layer norm of the attention network."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``torch.nn.Linear`` over the last axis of `x` (any rank), as one 2-D product (BLAS)."""
    flat = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    return (flat @ weight.T + bias).reshape(*x.shape[:-1], weight.shape[0])


def gru_last_state(w: Mapping[str, np.ndarray], x: np.ndarray, suffix: str = "") -> np.ndarray:
    """Run one direction of a one-layer ``torch.nn.GRU`` called ``gru`` over `x` (n, steps, inputs).

    `suffix` ``""`` is the forward direction; ``"_reverse"`` the backward one, fed
    the steps in reverse order (torch's names and order). Returns the hidden state
    after the last step fed, shape (n, hidden).
    """
    w_ih, w_hh = w[f"gru.weight_ih_l0{suffix}"], w[f"gru.weight_hh_l0{suffix}"]
    b_ih, b_hh = w[f"gru.bias_ih_l0{suffix}"], w[f"gru.bias_hh_l0{suffix}"]
    inputs = dense(x.transpose(1, 0, 2), w_ih, b_ih)  # (steps, n, 3 hidden): every step's input part
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    steps = range(x.shape[1])
    for step in reversed(steps) if suffix == "_reverse" else steps:
        i_r, i_z, i_n = np.split(inputs[step], 3, axis=1)
        h_r, h_z, h_n = np.split(h @ w_hh.T + b_hh, 3, axis=1)
        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
        h = (1.0 - z) * np.tanh(i_n + r * h_n) + z * h
    return h


def cnn_gru_forward(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Return the logits (n, n_classes) of :class:`~genrekit.models.sequence.CNNGRUClassifier`'s network.

    Parameters
    ----------
    weights : mapping of str to numpy.ndarray
        The module's ``state_dict`` as arrays.
    x : numpy.ndarray, shape (n_samples, n_features)
        Scaled input features.
    """
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    steps = conv_pool_stages(w, x).transpose(0, 2, 1)  # (n, steps, channels)
    h = np.hstack([gru_last_state(w, steps), gru_last_state(w, steps, "_reverse")])
    return h @ w["dense.weight"].T + w["dense.bias"]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``torch.nn.LayerNorm`` over the last axis (biased variance, :data:`LAYER_NORM_EPS`)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def multi_head_attention(w: Mapping[str, np.ndarray], x: np.ndarray, prefix: str, n_heads: int) -> np.ndarray:
    """``torch.nn.MultiheadAttention`` self-attention of `x` (n, tokens, d), no mask."""
    n, tokens, d = x.shape
    head = d // n_heads
    qkv = dense(x, w[f"{prefix}.in_proj_weight"], w[f"{prefix}.in_proj_bias"])
    q, k, v = (
        part.reshape(n, tokens, n_heads, head).transpose(0, 2, 1, 3) for part in np.split(qkv, 3, axis=2)
    )
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head)  # (n, heads, tokens, tokens)
    attended = softmax_last(scores) @ v  # (n, heads, tokens, head)
    joined = attended.transpose(0, 2, 1, 3).reshape(n, tokens, d)
    return dense(joined, w[f"{prefix}.out_proj.weight"], w[f"{prefix}.out_proj.bias"])


def softmax_last(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of an array of any rank."""
    shape = x.shape
    return softmax(x.reshape(-1, shape[-1])).reshape(shape)


def encoder_layer(w: Mapping[str, np.ndarray], x: np.ndarray, prefix: str, n_heads: int) -> np.ndarray:
    """One pre-norm ``torch.nn.TransformerEncoderLayer`` (ReLU feed-forward) in eval mode."""
    normed = layer_norm(x, w[f"{prefix}.norm1.weight"], w[f"{prefix}.norm1.bias"])
    x = x + multi_head_attention(w, normed, f"{prefix}.self_attn", n_heads)
    h = layer_norm(x, w[f"{prefix}.norm2.weight"], w[f"{prefix}.norm2.bias"])
    h = np.maximum(dense(h, w[f"{prefix}.linear1.weight"], w[f"{prefix}.linear1.bias"]), 0.0)
    return x + dense(h, w[f"{prefix}.linear2.weight"], w[f"{prefix}.linear2.bias"])


def attention_forward(weights: Mapping[str, np.ndarray], x: np.ndarray, n_heads: int) -> np.ndarray:
    """Return the logits (n, n_classes) of :class:`~genrekit.models.sequence.AttentionClassifier`'s network.

    Parameters
    ----------
    weights : mapping of str to numpy.ndarray
        The module's ``state_dict`` as arrays.
    x : numpy.ndarray, shape (n_samples, n_features)
        Scaled input features.
    n_heads : int
        Attention heads of every encoder layer.
    """
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    h = x[:, :, None] * w["value_embedding"] + w["feature_embedding"]  # (n, features, d)
    n_layers = len({name.split(".")[2] for name in w if name.startswith("encoder.layers.")})
    for layer in range(n_layers):
        h = encoder_layer(w, h, f"encoder.layers.{layer}", n_heads)
    pooled = layer_norm(h.mean(axis=1), w["norm.weight"], w["norm.bias"])
    return pooled @ w["dense.weight"].T + w["dense.bias"]
