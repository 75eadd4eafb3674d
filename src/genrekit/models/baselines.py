"""Classical baselines the paper's literature review names: k-NN, SVM and an MLP.

The paper gives no settings for them, so each uses standard, untuned
hyperparameters (scikit-learn's defaults unless stated); none was chosen by
looking at any test data. Every baseline is a :class:`~sklearn.pipeline.Pipeline`
of a :class:`~sklearn.preprocessing.StandardScaler` and the classifier, so the
z-score statistics come from the training rows only, and every one has
``predict_proba``.

``"knn"``
    :class:`~sklearn.neighbors.KNeighborsClassifier` with k = 5, uniform weights,
    Euclidean distance on the z-scored features.
``"svm"``
    :class:`~sklearn.svm.SVC` with an RBF kernel, C = 1, ``gamma="scale"``, its
    probabilities from Platt (sigmoid) scaling fitted on 5-fold cross-validated
    decision values of the training rows
    (:class:`~sklearn.calibration.CalibratedClassifierCV` with ``ensemble=False``,
    the replacement for ``SVC(probability=True)``); deterministic.
``"mlp"``
    :class:`~sklearn.neural_network.MLPClassifier` with hidden layers (256, 128),
    ReLU, Adam (learning rate 1e-3), L2 penalty 1e-4, batches of 200, up to
    500 epochs with early stopping on its own internal 10% split of the
    training rows (patience 20, like the CNN), seeded by `random_state`.
"""

from __future__ import annotations

from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

BASELINES: tuple[str, ...] = ("knn", "svm", "mlp")
"""Names accepted by :func:`make_baseline`."""


def _classifier(name: str, random_state: int) -> ClassifierMixin:
    """Return the unfitted classifier called `name` (see the module docstring)."""
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=5)
    if name == "svm":
        return CalibratedClassifierCV(
            SVC(kernel="rbf", C=1.0, gamma="scale"), method="sigmoid", ensemble=False
        )
    return MLPClassifier(
        hidden_layer_sizes=(256, 128),
        alpha=1e-4,
        learning_rate_init=1e-3,
        max_iter=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=random_state,
    )


def make_baseline(name: str, random_state: int = 0) -> Pipeline:
    """Return an unfitted baseline: StandardScaler followed by the classifier `name`.

    Parameters
    ----------
    name : {"knn", "svm", "mlp"}
        Which baseline (see the module docstring for its settings).
    random_state : int, default=0
        Seed of the MLP's initialisation, shuffling and internal validation
        split (k-NN and the SVM are deterministic).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``("scaler", StandardScaler())`` and ``("classifier", ...)``.

    Raises
    ------
    ValueError
        If `name` is not one of :data:`BASELINES`.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return Pipeline([("scaler", StandardScaler()), ("classifier", _classifier(name, random_state))])
