"""The paper's 1D CNN over the 57 GTZAN features, as a scikit-learn style classifier.

Architecture (Grace & Govind Reddy; Keras defaults: ``padding="valid"``, pooling
floors odd lengths)::

    input     (57 steps, 1 channel)       the z-scored features as a sequence
    conv1     Conv1d(1 -> 32, k=3) + ReLU  -> (55, 32)
    pool1     MaxPool1d(2)                 -> (27, 32)
    conv2     Conv1d(32 -> 64, k=3) + ReLU -> (25, 64)
    pool2     MaxPool1d(2)                 -> (12, 64)
    flatten                                -> 768 (torch order: channel-major)
    dense1    Linear(768 -> 128) + ReLU
    dropout   Dropout(0.5)
    dense2    Linear(128 -> n_classes)     softmax in the loss / predict_proba

Training (:class:`CNNClassifier`): Adam (learning rate 1e-3), cross-entropy on
integer labels, mini-batches of 32 reshuffled every epoch, up to 200 epochs.
With validation data, training stops once the validation loss has not improved
for `patience` (20) epochs and the weights of the best epoch are restored;
without, exactly `epochs` epochs run.

torch is needed only to train (:meth:`CNNClassifier.fit`) and for
:func:`model_summary` / :class:`PaperCNN`; prediction runs the forward pass in
NumPy from the stored weights, so loading a model and predicting never imports
torch.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genrekit.core.schema import FEATURE_NAMES, GENRES
from genrekit.models.neural import NeuralClassifier, pad_steps_tensor
from genrekit.models.portable_nets import (
    CONV1_FILTERS,
    CONV2_FILTERS,
    DENSE_UNITS,
    DROPOUT,
    KERNEL_SIZE,
    POOL_SIZE,
    flat_length,
    numpy_forward,
    softmax,
    weight_shapes,
)

__all__ = [
    "CONV1_FILTERS",
    "CONV2_FILTERS",
    "DENSE_UNITS",
    "DROPOUT",
    "KERNEL_SIZE",
    "POOL_SIZE",
    "CNNClassifier",
    "flat_length",
    "model_summary",
    "numpy_forward",
    "softmax",
    "weight_shapes",
]

PAPER_TOTAL_PARAMS: tuple[int, int] = (114_250, 254_240)
"""The two total parameter counts the paper states (its summary table and its text)."""

PAPER_PARAMS_NOTE: str = (
    "The paper states two totals, 114,250 (Model Summary and the Keras table of Figure 4) and "
    "254,240 (Section 6 text), and its per-layer rows are not consistent with one network: they sum to "
    "112,298, not 114,250; conv1d_1's 5,248 = 64*(27*3)+64 implies 27 input channels although conv1d "
    "outputs 32; dense's 105,632 is not 128*(inputs+1) for any whole number of inputs (its 512-wide "
    "flatten would give 65,664); and "
    "conv1d's output length 32 implies an input of 34 steps, not the 57 features. Built layer for layer "
    "from the paper's description on the 57-feature input (valid convolutions, floor pooling), the network "
    "has conv1 128 + conv2 6,208 + dense1 98,432 (768*128+128, flatten 12*64 = 768) + dense2 1,290 = "
    "106,058 parameters for 10 classes. The convolution and output rows match the paper (128, 1,290); the "
    "difference lies in the input length the dense layer sees."
)
"""Why our parameter count differs from the paper's (shown by ``genrekit model summary``)."""


@functools.cache
def _paper_cnn_class() -> type:
    """Define :class:`PaperCNN` on first use, so importing this module does not import torch."""
    import torch
    from torch import nn

    class PaperCNN(nn.Module):
        """The paper's 1D CNN (see the module docstring), layer for layer.

        Parameters
        ----------
        n_features : int, default=57
            Input sequence length (one channel).
        n_classes : int, default=10
            Output units (logits; softmax is applied by the loss or by the caller).
        dropout : float, default=DROPOUT
            Dropout rate after the hidden dense layer (training only).
        """

        def __init__(
            self, n_features: int = len(FEATURE_NAMES), n_classes: int = len(GENRES), dropout: float = DROPOUT
        ) -> None:
            super().__init__()
            self.n_features = n_features
            self.n_classes = n_classes
            self.conv1 = nn.Conv1d(1, CONV1_FILTERS, KERNEL_SIZE)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool1d(POOL_SIZE)
            self.conv2 = nn.Conv1d(CONV1_FILTERS, CONV2_FILTERS, KERNEL_SIZE)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool1d(POOL_SIZE)
            self.flatten = nn.Flatten()
            self.dense1 = nn.Linear(flat_length(n_features), DENSE_UNITS)
            self.relu3 = nn.ReLU()
            self.dropout = nn.Dropout(dropout)
            self.dense2 = nn.Linear(DENSE_UNITS, n_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return logits for `x` of shape (n, n_features) or (n, 1, n_features)."""
            if x.dim() == 2:
                x = x.unsqueeze(1)
            x = pad_steps_tensor(x)
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = self.dropout(self.relu3(self.dense1(self.flatten(x))))
            return self.dense2(x)

    PaperCNN.__module__ = __name__
    return PaperCNN


def __getattr__(name: str) -> Any:
    """Provide :class:`PaperCNN` lazily (it needs torch)."""
    if name == "PaperCNN":
        return _paper_cnn_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_summary(n_features: int = len(FEATURE_NAMES), n_classes: int = len(GENRES)) -> list[dict]:
    """Return a Keras-style layer table computed from a :class:`PaperCNN`.

    Output shapes come from a forward pass with hooks, parameter counts from
    each layer's ``parameters()``. Shapes are written as Keras writes them,
    ``(None, steps, channels)`` for sequences, so they compare with the paper.

    Parameters
    ----------
    n_features : int, default=57
        Input sequence length.
    n_classes : int, default=10
        Output units.

    Returns
    -------
    list of dict
        One row per layer: ``layer`` (``"conv1 (Conv1d)"``), ``output_shape``
        (list, None for the batch) and ``params`` (int).
    """
    import torch

    module = _paper_cnn_class()(n_features, n_classes).eval()
    rows: list[dict] = []

    def hook(layer: torch.nn.Module, _inputs: Any, output: torch.Tensor, name: str) -> None:
        shape = list(output.shape[1:])
        if len(shape) == 2:  # torch (channels, steps) -> Keras (steps, channels)
            shape = shape[::-1]
        params = sum(p.numel() for p in layer.parameters())
        rows.append(
            {"layer": f"{name} ({type(layer).__name__})", "output_shape": [None, *shape], "params": params}
        )

    handles = [
        child.register_forward_hook(functools.partial(hook, name=name))
        for name, child in module.named_children()
        if not isinstance(child, torch.nn.ReLU)
    ]
    with torch.no_grad():
        module(torch.zeros(1, n_features))
    for handle in handles:
        handle.remove()
    return rows


class CNNClassifier(NeuralClassifier):
    """The paper's 1D CNN as a scikit-learn classifier (z-scoring included).

    Training and prediction are :class:`~genrekit.models.neural.NeuralClassifier`'s.

    Parameters
    ----------
    epochs : int, default=200
        Maximum number of epochs (exactly this many without validation data).
    batch_size : int, default=32
        Mini-batch size; rows are reshuffled every epoch.
    learning_rate : float, default=1e-3
        Adam learning rate.
    patience : int, default=20
        Early stopping: stop after this many epochs without a lower validation
        loss, then restore the best epoch's weights. Used only when validation
        data is passed to :meth:`fit`.
    dropout : float, default=0.5
        Dropout rate after the hidden dense layer (the paper's 0.5).
    weight_decay : float, default=0.0
        L2 penalty: Adam adds ``weight_decay * w`` to every weight's gradient
        (the paper uses none).
    random_state : int, default=0
        Seed of the initial weights, dropout and shuffling; a fit on CPU with the
        same seed and data gives identical weights.
    verbose : bool or callable, default=False
        Show a progress bar over epochs on stderr; a callable
        ``verbose(iterable, total=, desc=, unit=)`` wraps the epochs instead (for example
        :func:`genrekit.cli._common.progress`, which also prints lines when stderr is not a terminal).

    Attributes
    ----------
    classes_ : numpy.ndarray of str
        Class labels, sorted; output unit ``i`` is ``classes_[i]``.
    weights_ : dict of str to numpy.ndarray
        The network weights (float32), names and shapes as :func:`weight_shapes`.
    scaler_mean_, scaler_scale_ : numpy.ndarray, shape (n_features,)
        z-score statistics of the training rows (scale 1 for constant features).
    history_ : list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss``, ``train_accuracy`` (running
        means over the epoch's batches, in training mode), ``val_loss``,
        ``val_accuracy`` (None without validation data).
    best_epoch_ : int
        Epoch whose weights were kept (the last one without validation data).
    n_epochs_run_ : int
        Epochs actually run.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : numpy.ndarray of str
        Feature names, set when fitted on a DataFrame.
    """

    PORTABLE_NODE = "cnn"

    def __init__(
        self,
        epochs: int = 200,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        patience: int = 20,
        dropout: float = DROPOUT,
        weight_decay: float = 0.0,
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.verbose = verbose

    def _network(self, n_features: int, n_classes: int) -> Any:
        """Return a fresh :class:`PaperCNN` with this classifier's dropout."""
        return _paper_cnn_class()(n_features, n_classes, self.dropout)

    def _numpy_logits(self, scaled: np.ndarray) -> np.ndarray:
        """Return the eval-mode logits of the paper's CNN in NumPy (:func:`numpy_forward`)."""
        return numpy_forward(self.weights_, scaled)
