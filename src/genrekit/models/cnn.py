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

import copy
import functools
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from genrekit.models.portable import (
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
from genrekit.schema import FEATURE_NAMES, GENRES

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


def _as_matrix(X: Any, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Return `X` as a float64 matrix and its column names (DataFrame input) or None."""
    names = None
    if isinstance(X, pd.DataFrame):
        missing = [name for name in FEATURE_NAMES if name not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature column {missing[0]!r} ({len(missing)} missing)")
        names = np.asarray(FEATURE_NAMES, dtype=object)
        X = X.loc[:, list(FEATURE_NAMES)]
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {matrix.shape}")
    if n_features is not None and matrix.shape[1] != n_features:
        raise ValueError(f"X has {matrix.shape[1]} features, the model expects {n_features}")
    if not np.isfinite(matrix).all():
        raise ValueError("X holds NaN or infinite values")
    return matrix, names


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """The paper's 1D CNN as a scikit-learn classifier (z-scoring included).

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
    verbose : bool, default=False
        Show a progress bar over epochs on stderr.

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

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> CNNClassifier:
        """Train on (`X`, `y`), early-stopping on (`X_val`, `y_val`) when given.

        Parameters
        ----------
        X : pandas.DataFrame or array-like, shape (n_samples, n_features)
            Training features (a DataFrame must hold the FEATURE_NAMES columns).
        y : array-like of str, shape (n_samples,)
            Training labels.
        X_val, y_val : optional
            Validation data for early stopping; labels must occur in `y`.

        Returns
        -------
        CNNClassifier
            The fitted classifier.
        """
        import torch

        matrix, names = _as_matrix(X)
        labels = np.asarray(y).astype(str)
        if labels.shape != (matrix.shape[0],):
            raise ValueError(f"y has shape {labels.shape}, expected ({matrix.shape[0]},)")
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ValueError("y needs at least two classes")
        self.n_features_in_ = matrix.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.scaler_mean_ = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        self.scaler_scale_ = np.where(scale > 0, scale, 1.0)
        train = self._tensors(matrix, labels)
        val = None
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if X_val is not None:
            val = self._tensors(_as_matrix(X_val, self.n_features_in_)[0], np.asarray(y_val).astype(str))

        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            self._train(train, val)
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
        return self

    def _tensors(self, matrix: np.ndarray, labels: np.ndarray) -> tuple:
        """Scale `matrix` and encode `labels` as (float32 tensor, int64 tensor)."""
        import torch

        unknown = sorted(set(labels) - set(self.classes_))
        if unknown:
            raise ValueError(f"validation labels not in the training labels: {unknown}")
        codes = np.searchsorted(self.classes_, labels)
        scaled = (matrix - self.scaler_mean_) / self.scaler_scale_
        return torch.from_numpy(scaled.astype(np.float32)), torch.from_numpy(codes.astype(np.int64))

    def _train(self, train: tuple, val: tuple | None) -> None:
        """Run the epochs (torch settings already pinned by :meth:`fit`)."""
        import torch
        from tqdm.auto import tqdm

        torch.manual_seed(self.random_state)
        shuffle = np.random.RandomState(self.random_state)
        module = _paper_cnn_class()(self.n_features_in_, len(self.classes_), self.dropout)
        optimizer = torch.optim.Adam(
            module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_fn = torch.nn.CrossEntropyLoss()
        x_train, y_train = train
        n = len(y_train)
        self.history_ = []
        best_loss, best_state, self.best_epoch_ = np.inf, None, 0
        epochs = tqdm(range(1, self.epochs + 1), desc="training", unit="epoch", disable=not self.verbose)
        for epoch in epochs:
            module.train()
            order = torch.from_numpy(shuffle.permutation(n))
            loss_sum, correct = 0.0, 0
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                logits = module(x_train[index])
                loss = loss_fn(logits, y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(index)
                correct += int((logits.argmax(1) == y_train[index]).sum())
            row = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n}
            row.update(val_loss=None, val_accuracy=None)
            if val is not None:
                module.eval()
                with torch.no_grad():
                    logits = module(val[0])
                    row["val_loss"] = float(loss_fn(logits, val[1]))
                    row["val_accuracy"] = int((logits.argmax(1) == val[1]).sum()) / len(val[1])
            self.history_.append(row)
            epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=row["val_accuracy"], refresh=False)
            if val is None:
                self.best_epoch_ = epoch
            elif row["val_loss"] < best_loss:
                best_loss, best_state, self.best_epoch_ = (
                    row["val_loss"],
                    copy.deepcopy(module.state_dict()),
                    epoch,
                )
            elif epoch - self.best_epoch_ >= self.patience:
                break
        self.n_epochs_run_ = len(self.history_)
        if best_state is not None:
            module.load_state_dict(best_state)
        self.weights_ = {name: tensor.detach().numpy().copy() for name, tensor in module.state_dict().items()}

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the logits, shape (n_samples, n_classes), computed in NumPy."""
        check_is_fitted(self, "weights_")
        matrix, _ = _as_matrix(X, self.n_features_in_)
        return numpy_forward(self.weights_, (matrix - self.scaler_mean_) / self.scaler_scale_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, shape (n_samples, n_classes), in ``classes_`` order.

        Parameters
        ----------
        X : pandas.DataFrame or array-like, shape (n_samples, n_features)
            Raw (unscaled) features; a DataFrame must hold the FEATURE_NAMES columns.

        Returns
        -------
        numpy.ndarray
            Softmax probabilities (float64); rows sum to 1.
        """
        return softmax(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable label for each row of `X`."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
