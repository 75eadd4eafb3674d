"""The paper's proposed sequence models over the 57 features: a CNN+GRU hybrid and an attention encoder.

The paper (sections 11 and 18.3) proposes hybrid CNN-RNN and attention models as
future work; these are small versions of both, trained like the paper's CNN
(:class:`~genrekit.models.neural.NeuralClassifier`: z-scored inputs, Adam 1e-3,
batch 32, up to 200 epochs, early stopping on validation loss with patience 20)
and predicting in NumPy (:mod:`genrekit.models.portable_nets`).

:class:`CNNGRUClassifier`, registry name ``cnn-gru`` (torch layout ``(channels,
steps)``; sizes for 57 features and 10 classes)::

    input     (57 steps, 1 channel)        the z-scored features as a sequence
    conv1     Conv1d(1 -> 32, k=3) + ReLU   -> (32, 55)    the paper's first block
    pool1     MaxPool1d(2)                  -> (32, 27)
    conv2     Conv1d(32 -> 64, k=3) + ReLU  -> (64, 25)    the paper's second block
    pool2     MaxPool1d(2)                  -> (64, 12)
    gru       bidirectional GRU(64 -> 64 per direction) over the 12 pooled steps;
              the two directions' final hidden states, concatenated -> 128
    dropout   Dropout(0.5)
    dense     Linear(128 -> n_classes)      softmax in the loss / predict_proba

    parameters: conv1 128 + conv2 6,208 + gru 49,920 + dense 1,290 = 57,546

(Bidirectional rather than one direction, or the mean of the GRU's outputs: on the
validation rows of two seeded 72/8/20 splits of the GTZAN table it reached the
lowest validation loss of the three; the test rows were not looked at.)

:class:`AttentionClassifier`, registry name ``attention``: every feature is a
token (an FT-Transformer-style tokenizer)::

    tokens    x_i * value_embedding[i] + feature_embedding[i]   -> (57 tokens, d = 32)
              (a learned embedding of the value, per feature, plus a learned feature-id embedding)
    encoder   2 x TransformerEncoderLayer(d = 32, 4 heads, feed-forward 64, ReLU,
              dropout 0.1, pre-norm: x + MHA(LN(x)), then x + FF(LN(x)))
    pool      mean over the 57 tokens, then LayerNorm(32)
    dropout   Dropout(0.1)
    dense     Linear(32 -> n_classes)       softmax in the loss / predict_proba

    parameters: embeddings 3,648 + encoder 2 x 8,544 + norm 64 + dense 330 = 21,130

Both are deterministic with a seed (single-threaded torch, deterministic
algorithms). Their weights are what a saved model stores (format 2, nodes
``cnn_gru`` and ``attention``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genrekit.models.neural import NeuralClassifier, pad_steps_tensor
from genrekit.models.portable_nets import (
    CONV1_FILTERS,
    CONV2_FILTERS,
    KERNEL_SIZE,
    POOL_SIZE,
    attention_forward,
    cnn_gru_forward,
)

GRU_UNITS: int = 64
"""Hidden units of the CNN+GRU's GRU."""

D_MODEL: int = 32
"""Token width of the attention encoder."""

N_HEADS: int = 4
"""Attention heads per encoder layer."""

FEEDFORWARD: int = 64
"""Hidden units of each encoder layer's feed-forward block."""

N_LAYERS: int = 2
"""Encoder layers."""


@functools.cache
def _modules() -> tuple[type, type]:
    """Define the torch modules on first use, so importing this module does not import torch."""
    import torch
    from torch import nn

    class CNNGRU(nn.Module):
        """The paper's two conv blocks, then a GRU over the pooled steps (see the module docstring)."""

        def __init__(self, n_features: int, n_classes: int, hidden: int, dropout: float) -> None:
            super().__init__()
            self.conv1 = nn.Conv1d(1, CONV1_FILTERS, KERNEL_SIZE)
            self.conv2 = nn.Conv1d(CONV1_FILTERS, CONV2_FILTERS, KERNEL_SIZE)
            self.pool = nn.MaxPool1d(POOL_SIZE)
            self.gru = nn.GRU(CONV2_FILTERS, hidden, batch_first=True, bidirectional=True)
            self.dropout = nn.Dropout(dropout)
            self.dense = nn.Linear(2 * hidden, n_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return logits for `x` of shape (n, n_features)."""
            x = pad_steps_tensor(x)
            h = self.pool(torch.relu(self.conv1(x.unsqueeze(1))))
            h = self.pool(torch.relu(self.conv2(h)))
            _, last = self.gru(h.transpose(1, 2))  # (2 directions, n, hidden)
            return self.dense(self.dropout(torch.cat([last[0], last[1]], dim=1)))

    class FeatureTransformer(nn.Module):
        """Each feature a token, a small pre-norm transformer encoder, mean pooling (module docstring)."""

        def __init__(
            self,
            n_features: int,
            n_classes: int,
            d_model: int,
            n_heads: int,
            feedforward: int,
            n_layers: int,
            dropout: float,
        ) -> None:
            super().__init__()
            bound = 1.0 / np.sqrt(d_model)
            self.value_embedding = nn.Parameter(torch.empty(n_features, d_model).uniform_(-bound, bound))
            self.feature_embedding = nn.Parameter(torch.empty(n_features, d_model).uniform_(-bound, bound))
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, feedforward, dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.dropout = nn.Dropout(dropout)
            self.dense = nn.Linear(d_model, n_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return logits for `x` of shape (n, n_features)."""
            tokens = x.unsqueeze(2) * self.value_embedding + self.feature_embedding
            pooled = self.norm(self.encoder(tokens).mean(dim=1))
            return self.dense(self.dropout(pooled))

    for module in (CNNGRU, FeatureTransformer):
        module.__module__ = __name__
    return CNNGRU, FeatureTransformer


def __getattr__(name: str) -> Any:
    """Provide the torch modules ``CNNGRU`` and ``FeatureTransformer`` lazily (they need torch)."""
    names = ("CNNGRU", "FeatureTransformer")
    if name in names:
        return _modules()[names.index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CNNGRUClassifier(NeuralClassifier):
    """A CNN+GRU hybrid over the 57-feature sequence, as a scikit-learn classifier (z-scoring included).

    Parameters
    ----------
    hidden_size : int, default=64
        Units of each direction of the GRU.
    dropout : float, default=0.5
        Dropout rate before the output layer (the paper's CNN's 0.5).
    epochs, batch_size, learning_rate, patience, weight_decay, random_state, verbose
        Training settings, as for :class:`genrekit.models.cnn.CNNClassifier`.

    Attributes
    ----------
    classes_, weights_, scaler_mean_, scaler_scale_, history_, best_epoch_, n_epochs_run_,
    n_features_in_, feature_names_in_
        As for :class:`genrekit.models.cnn.CNNClassifier`.
    """

    PORTABLE_NODE = "cnn_gru"

    def __init__(
        self,
        hidden_size: int = GRU_UNITS,
        dropout: float = 0.5,
        epochs: int = 200,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        patience: int = 20,
        weight_decay: float = 0.0,
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.verbose = verbose

    def _network(self, n_features: int, n_classes: int) -> Any:
        """Return a fresh ``CNNGRU`` module."""
        return _modules()[0](n_features, n_classes, self.hidden_size, self.dropout)

    def _numpy_logits(self, scaled: np.ndarray) -> np.ndarray:
        """Return the eval-mode logits in NumPy (:func:`~genrekit.models.portable_nets.cnn_gru_forward`)."""
        return cnn_gru_forward(self.weights_, scaled)


class AttentionClassifier(NeuralClassifier):
    """A small transformer encoder over the 57 features as tokens, as a scikit-learn classifier.

    Parameters
    ----------
    d_model : int, default=32
        Token width.
    n_heads : int, default=4
        Attention heads (must divide `d_model`).
    feedforward : int, default=64
        Hidden units of each layer's feed-forward block.
    n_layers : int, default=2
        Encoder layers.
    dropout : float, default=0.1
        Dropout inside the encoder layers and before the output layer.
    epochs, batch_size, learning_rate, patience, weight_decay, random_state, verbose
        Training settings, as for :class:`genrekit.models.cnn.CNNClassifier`.

    Attributes
    ----------
    classes_, weights_, scaler_mean_, scaler_scale_, history_, best_epoch_, n_epochs_run_,
    n_features_in_, feature_names_in_
        As for :class:`genrekit.models.cnn.CNNClassifier`.
    """

    PORTABLE_NODE = "attention"

    def __init__(
        self,
        d_model: int = D_MODEL,
        n_heads: int = N_HEADS,
        feedforward: int = FEEDFORWARD,
        n_layers: int = N_LAYERS,
        dropout: float = 0.1,
        epochs: int = 200,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        patience: int = 20,
        weight_decay: float = 0.0,
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        self.d_model = d_model
        self.n_heads = n_heads
        self.feedforward = feedforward
        self.n_layers = n_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.verbose = verbose

    def _network(self, n_features: int, n_classes: int) -> Any:
        """Return a fresh ``FeatureTransformer`` module."""
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}")
        return _modules()[1](
            n_features, n_classes, self.d_model, self.n_heads, self.feedforward, self.n_layers, self.dropout
        )

    def _numpy_logits(self, scaled: np.ndarray) -> np.ndarray:
        """Return the eval-mode logits in NumPy (:func:`~genrekit.models.portable_nets.attention_forward`)."""
        return attention_forward(self.weights_, scaled, self.n_heads)

    def portable_fields(self) -> dict:
        """Return the saved node's fields: the head count (inference needs it) and the training record."""
        return {"n_heads": int(self.n_heads), **super().portable_fields()}
