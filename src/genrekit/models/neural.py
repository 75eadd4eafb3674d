"""What every torch-trained network of genrekit shares: input checks, z-scoring, the training loop.

:class:`NeuralClassifier` is a scikit-learn style classifier whose subclasses
name a torch module (:meth:`NeuralClassifier._network`) and its NumPy forward
pass (:meth:`NeuralClassifier._numpy_logits`); everything else is here, once:
z-scoring fitted on the training rows, Adam with optional L2 weight decay,
cross-entropy on integer labels, shuffled mini-batches, early stopping on
validation loss with the best epoch's weights restored, single-threaded
deterministic torch (same seed and data on CPU: identical weights), and
prediction in NumPy from the stored weights (torch is imported by ``fit`` only).

Subclasses: :class:`genrekit.models.cnn.CNNClassifier` (the paper's CNN),
:class:`genrekit.models.sequence.CNNGRUClassifier` and
:class:`genrekit.models.sequence.AttentionClassifier`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from genrekit.core.schema import FEATURE_NAMES
from genrekit.models.portable_nets import MIN_STEPS, softmax


def _feature_frame(X: Any) -> Any:
    """Return `X` with the FEATURE_NAMES columns in table order when it is a DataFrame holding them all."""
    if isinstance(X, pd.DataFrame) and set(FEATURE_NAMES) <= set(X.columns):
        return X.loc[:, list(FEATURE_NAMES)]
    return X


def pad_steps_tensor(x: Any) -> Any:
    """Zero-pad a torch batch at the end of its last axis to :data:`MIN_STEPS` steps when shorter.

    The torch twin of :func:`genrekit.models.portable.pad_steps`, for the conv networks' modules.
    """
    import torch

    return torch.nn.functional.pad(x, (0, max(0, MIN_STEPS - x.shape[-1])))


class NeuralClassifier(ClassifierMixin, BaseEstimator):
    """Base of the torch-trained classifiers (see the module docstring); not used directly.

    Subclasses define ``__init__`` with every parameter they take (scikit-learn
    reads them from its signature) and at least the ones :meth:`fit` reads:
    ``epochs``, ``batch_size``, ``learning_rate``, ``patience``,
    ``weight_decay``, ``random_state`` and ``verbose`` (see
    :class:`genrekit.models.cnn.CNNClassifier` for their meaning).

    Attributes
    ----------
    PORTABLE_NODE : str
        The node type of the saved model (:mod:`genrekit.models.portable`).
    classes_, weights_, scaler_mean_, scaler_scale_, history_, best_epoch_, n_epochs_run_,
    n_features_in_, feature_names_in_
        Fitted state, as documented by :class:`genrekit.models.cnn.CNNClassifier`.
    """

    PORTABLE_NODE: str = ""

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    weight_decay: float
    random_state: int
    verbose: Any

    def _network(self, n_features: int, n_classes: int) -> Any:
        """Return a fresh torch module mapping (n, n_features) scaled rows to (n, n_classes) logits."""
        raise NotImplementedError

    def _numpy_logits(self, scaled: np.ndarray) -> np.ndarray:
        """Return the eval-mode logits of the module with :attr:`weights_`, computed in NumPy."""
        raise NotImplementedError

    def portable_fields(self) -> dict:
        """Return the fields the saved node needs besides its arrays (architecture sizes, training)."""
        settings = {key: value for key, value in self.get_params().items() if key != "verbose"}
        return {
            "training": {
                **settings,
                "best_epoch": int(self.best_epoch_),
                "n_epochs_run": int(self.n_epochs_run_),
            }
        }

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> NeuralClassifier:
        """Train on (`X`, `y`), early-stopping on (`X_val`, `y_val`) when given.

        Parameters
        ----------
        X : pandas.DataFrame or array-like, shape (n_samples, n_features)
            Training features (a DataFrame holding the FEATURE_NAMES columns is read in
            the table's column order).
        y : array-like, shape (n_samples,)
            Training labels (strings or numbers).
        X_val, y_val : optional
            Validation data for early stopping; labels must occur in `y`.

        Returns
        -------
        NeuralClassifier
            The fitted classifier.
        """
        import torch

        matrix, labels = validate_data(self, _feature_frame(X), y, dtype=np.float64)
        check_classification_targets(labels)
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds 1 class ({self.classes_[0]!r}); a classifier needs at least two")
        self.scaler_mean_ = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        self.scaler_scale_ = np.where(scale > 0, scale, 1.0)
        train = self._tensors(matrix, labels)
        val = None
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if X_val is not None:
            val_matrix = validate_data(self, _feature_frame(X_val), dtype=np.float64, reset=False)
            val = self._tensors(val_matrix, np.asarray(y_val))

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

    def _epochs(self) -> Any:
        """Return the epoch numbers, wrapped in the progress display `verbose` asks for."""
        from tqdm.auto import tqdm

        epochs = range(1, self.epochs + 1)
        if callable(self.verbose):
            return self.verbose(epochs, total=self.epochs, desc="training", unit="epoch")
        return tqdm(epochs, desc="training", unit="epoch", disable=not self.verbose)

    def _train(self, train: tuple, val: tuple | None) -> None:
        """Run the epochs (torch settings already pinned by :meth:`fit`)."""
        import torch

        torch.manual_seed(self.random_state)
        shuffle = np.random.RandomState(self.random_state)
        module = self._network(self.n_features_in_, len(self.classes_))
        optimizer = torch.optim.Adam(
            module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_fn = torch.nn.CrossEntropyLoss()
        x_train, y_train = train
        n = len(y_train)
        self.history_ = []
        best_loss, best_state, self.best_epoch_ = np.inf, None, 0
        epochs = self._epochs()
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
            if hasattr(epochs, "set_postfix"):  # a tqdm bar (not a caller's progress wrapper)
                epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=row["val_accuracy"])
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

    def logits(self, X: Any) -> np.ndarray:
        """Return the logits, shape (n_samples, n_classes), computed in NumPy from the stored weights."""
        check_is_fitted(self, "weights_")
        matrix = validate_data(self, _feature_frame(X), dtype=np.float64, reset=False)
        return self._numpy_logits((matrix - self.scaler_mean_) / self.scaler_scale_)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the logits as scikit-learn expects them: shape (n_samples,) for two classes.

        With two classes the score is the second class's logit minus the first's
        (positive: ``classes_[1]``); otherwise the (n_samples, n_classes) logits.
        """
        logits = self.logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, shape (n_samples, n_classes), in ``classes_`` order.

        Parameters
        ----------
        X : pandas.DataFrame or array-like, shape (n_samples, n_features)
            Raw (unscaled) features, in the columns the model was fitted on.

        Returns
        -------
        numpy.ndarray
            Softmax probabilities (float64); rows sum to 1.
        """
        return softmax(self.logits(X))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable label for each row of `X`."""
        logits = self.logits(X)
        return self.classes_[np.argmax(logits, axis=1)]
