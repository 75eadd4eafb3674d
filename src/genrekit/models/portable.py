"""NumPy inference for every saved model family, without scikit-learn, pandas, LightGBM or PyTorch.

A fitted model is described by a *spec*, a JSON tree of nodes, and a flat dict
of named arrays (stored in ``model.safetensors``). :func:`build` turns them into
a :class:`PortableClassifier`, whose ``decision_function`` returns **logits**:
row-wise scores whose softmax is the model's probability of each class. For
networks and linear models these are the pre-softmax outputs; for models that
produce probabilities directly they are ``log(max(p, PROBA_FLOOR))``, so the
softmax gives back ``p`` to within ``PROBA_FLOOR``. A caller may divide them by a
temperature before the softmax (see :mod:`genrekit.models.calibrate`).

Node types (``"type"`` field) and the arrays each one reads (by the names
listed in its ``"arrays"`` field):

``pipeline``
    ``steps``: feature transforms, then one classifier node.
``transform``
    ``x -> (slog(x) - mean) / scale``, where ``slog(x) = sign(x) log(1 + |x|)``
    is applied to the columns listed in ``log_columns`` (the GTZAN ``*_var``
    columns, which are never negative, so it is ``log1p`` there).
``linear``
    Multinomial logistic regression: ``coef`` (k, d), ``intercept`` (k); logits
    ``X coef^T + intercept`` (one column for two classes: logits ``[0, z]``).
``mlp``
    Dense layers ``coef_i`` / ``intercept_i`` with ReLU between them, softmax
    (or, for two classes, logistic) output; the logits are the last layer.
``svc``
    A libsvm RBF support vector machine: ``support_vectors``, ``dual_coef``
    (libsvm's own sign), ``intercept`` (``-rho``), ``n_support``, ``gamma``.
    One-vs-one decision values as libsvm computes them. With
    ``probability: "libsvm"`` the probabilities are libsvm's: Platt's sigmoid per
    pair (``prob_a``, ``prob_b``) then pairwise coupling (Wu, Lin & Weng 2004,
    method 2, libsvm's ``multiclass_probability``). With ``probability:
    "ovr_sigmoid"`` they are those of scikit-learn's ``CalibratedClassifierCV``
    (sigmoid, one calibrator per class on the one-vs-rest decision function,
    ``sigmoid_a`` / ``sigmoid_b``, rows normalised to sum 1).
``knn``
    Brute-force Euclidean k nearest neighbours of the stored (transformed)
    ``fit_x`` with class codes ``fit_y``; uniform or inverse-distance weights.
``forest``
    Decision trees in scikit-learn's array layout, concatenated: ``left``,
    ``right`` (global node index, -1 for a leaf; int32), ``feature`` (int32),
    ``threshold``, ``value`` (class shares per node, float32) and ``roots``; inputs are rounded to
    float32 first, as scikit-learn's trees compare them; the probability is the
    mean of the trees' leaf shares.
``lightgbm``
    LightGBM trees from ``Booster.dump_model()``: ``left``, ``right`` (global
    node index, -1 for a leaf), ``feature``, ``threshold``, ``default_left``,
    ``zero_missing`` (a value within 1e-35 of zero takes the default branch, as
    LightGBM's ``missing_type: Zero``), ``value`` (leaf output), ``roots`` and
    ``tree_class`` (tree ``t`` adds to class ``t mod k``); logits are the summed
    leaf outputs (one column for two classes: ``[0, z]``).
``voting``
    Soft voting: the ``weights``-weighted mean of the members' probabilities.
``stacking``
    The members' probabilities, concatenated in member order, are the input of
    the ``final`` node (a ``linear`` node).
``cnn``
    The paper's 1D CNN (:func:`numpy_forward`): z-scoring by ``scaler_mean`` /
    ``scaler_scale`` then the network weights named as
    :func:`genrekit.models.cnn.weight_shapes`.
``cnn_gru``, ``attention``
    The CNN+GRU hybrid and the attention encoder of :mod:`genrekit.models.sequence`:
    z-scoring as ``cnn``, then their ``state_dict`` arrays run by
    :mod:`genrekit.models.portable_nets` (``attention`` also reads ``n_heads``).
    All three network nodes may hold a ``training`` field (settings, best epoch,
    epochs run) that inference does not read.

This module imports NumPy only; it is what ``genrekit predict`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from genrekit.core.schema import FEATURE_NAMES
from genrekit.models.portable_nets import attention_forward, cnn_gru_forward, numpy_forward, relu, softmax

PROBA_FLOOR: float = 1e-9
"""Smallest probability kept before taking logs (so that logits stay finite)."""

LIGHTGBM_ZERO: float = 1e-35
"""LightGBM's ``kZeroThreshold``: values this close to zero count as missing under ``missing_type: Zero``."""


def log_proba(proba: np.ndarray) -> np.ndarray:
    """Return ``log(max(proba, PROBA_FLOOR))``: logits whose softmax is `proba` to within the floor."""
    return np.log(np.maximum(proba, PROBA_FLOOR))


def _two_class(z: np.ndarray) -> np.ndarray:
    """Logits ``[0, z]`` of a model with one output column for two classes."""
    return np.column_stack([np.zeros(len(z)), z]) if z.shape[1] == 1 else z


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """Return ``sign(x) * log(1 + |x|)`` (``log1p`` for non-negative values)."""
    return np.sign(x) * np.log1p(np.abs(x))


def svc_ovo_decision(x: np.ndarray, a: Mapping[str, np.ndarray], gamma: float) -> np.ndarray:
    """Return libsvm's one-vs-one decision values of an RBF SVC, shape (n, k (k - 1) / 2).

    Pair ``(i, j)``, ``i < j``, in libsvm order; positive values favour class ``i``.
    """
    sv, coef, n_support = a["support_vectors"], a["dual_coef"], a["n_support"].astype(np.int64)
    sq = (x * x).sum(axis=1)[:, None] + (sv * sv).sum(axis=1)[None, :] - 2.0 * x @ sv.T
    kernel = np.exp(-gamma * np.maximum(sq, 0.0))
    starts = np.concatenate([[0], np.cumsum(n_support)])
    k = len(n_support)
    columns = []
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            columns.append(kernel[:, si] @ coef[j - 1, si] + kernel[:, sj] @ coef[i, sj])
    return np.column_stack(columns) + a["intercept"][None, :]


def _pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """Libsvm's ``multiclass_probability`` for every row: pairwise probabilities (n, k, k) -> (n, k).

    The same fixed-point iteration, stopping rule (``max error < 0.005 / k``) and
    iteration cap (``max(100, k)``) as libsvm, applied row by row (a converged row
    is left alone while others go on).
    """
    n, k, _ = r.shape
    q = -r.transpose(0, 2, 1) * r  # Q[t, j] = -r[j, t] r[t, j] off the diagonal
    diag = (r * r).sum(axis=1) - (r.diagonal(axis1=1, axis2=2) ** 2)  # sum_{j != t} r[j, t]^2
    q[:, np.arange(k), np.arange(k)] = diag
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    active = np.ones(n, dtype=bool)
    for _ in range(max(100, k)):
        qp = np.einsum("ntj,nj->nt", q, p)
        pqp = (p * qp).sum(axis=1)
        active &= np.abs(qp - pqp[:, None]).max(axis=1) >= eps
        if not active.any():
            break
        rows = np.flatnonzero(active)
        pa, qpa, pqpa, qa = p[rows], qp[rows], pqp[rows], q[rows]
        for t in range(k):
            qtt = qa[:, t, t]
            diff = (-qpa[:, t] + pqpa) / qtt
            pa[:, t] += diff
            pqpa = (pqpa + diff * (diff * qtt + 2 * qpa[:, t])) / (1 + diff) / (1 + diff)
            qpa = (qpa + diff[:, None] * qa[:, t, :]) / (1 + diff)[:, None]
            pa /= (1 + diff)[:, None]
        p[rows] = pa
    return p


def svc_libsvm_proba(dec: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, k: int) -> np.ndarray:
    """Return libsvm's probabilities from one-vs-one decision values (Platt per pair, then coupling)."""
    f = dec * prob_a + prob_b
    pair = np.where(f >= 0, np.exp(-np.abs(f)) / (1 + np.exp(-np.abs(f))), 1 / (1 + np.exp(-np.abs(f))))
    pair = np.clip(pair, 1e-7, 1 - 1e-7)
    r = np.zeros((len(dec), k, k))
    column = 0
    for i in range(k):
        for j in range(i + 1, k):
            r[:, i, j] = pair[:, column]
            r[:, j, i] = 1 - pair[:, column]
            column += 1
    if k == 2:
        return np.column_stack([r[:, 0, 1], r[:, 1, 0]])
    return _pairwise_coupling(r)


def ovr_decision(dec: np.ndarray, k: int) -> np.ndarray:
    """Return scikit-learn's one-vs-rest decision function from one-vs-one values (votes + confidences)."""
    votes = np.zeros((len(dec), k))
    confidence = np.zeros((len(dec), k))
    column = 0
    for i in range(k):
        for j in range(i + 1, k):
            confidence[:, i] += dec[:, column]
            confidence[:, j] -= dec[:, column]
            votes[:, i] += dec[:, column] > 0
            votes[:, j] += dec[:, column] <= 0
            column += 1
    return votes + confidence / (3 * (np.abs(confidence) + 1))


def _traverse(
    x: np.ndarray, a: Mapping[str, np.ndarray], go_left: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Return the leaf index of every (tree, row): shape (n_trees, n).

    `go_left(node, values)` says which rows at `node` (global indices, same shape
    as `values`, the rows' values of the node's split feature) go left.
    """
    left, right, feature = a["left"], a["right"], a["feature"]
    node = np.repeat(a["roots"][:, None], len(x), axis=1)
    rows = np.arange(len(x))[None, :]
    while True:
        internal = left[node] >= 0
        if not internal.any():
            return node
        values = x[rows, np.where(internal, feature[node], 0)]
        step = np.where(go_left(node, values), left[node], right[node])
        node = np.where(internal, step, node)


def _forest_proba(x: np.ndarray, a: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean leaf class shares of scikit-learn trees (inputs rounded to float32 like scikit-learn)."""
    x32 = x.astype(np.float32).astype(np.float64)
    leaves = _traverse(x32, a, lambda node, values: values <= a["threshold"][node])
    return a["value"][leaves].astype(np.float64).mean(axis=0)


def _lightgbm_logits(x: np.ndarray, a: Mapping[str, np.ndarray], k: int) -> np.ndarray:
    """Return the summed leaf outputs of LightGBM trees per class."""

    def go_left(node: np.ndarray, values: np.ndarray) -> np.ndarray:
        missing = a["zero_missing"][node].astype(bool) & (np.abs(values) <= LIGHTGBM_ZERO)
        return np.where(missing, a["default_left"][node].astype(bool), values <= a["threshold"][node])

    leaves = _traverse(x, a, go_left)
    per_tree = a["value"][leaves]  # (n_trees, n)
    outputs = 1 if k == 2 else k
    logits = np.zeros((x.shape[0], outputs))
    tree_class = a["tree_class"].astype(np.int64)
    for c in range(outputs):
        logits[:, c] = per_tree[tree_class == c].sum(axis=0)
    return _two_class(logits)


class _Node:
    """A node of a spec bound to its arrays."""

    def __init__(self, spec: dict, arrays: Mapping[str, np.ndarray]) -> None:
        self.spec = spec
        self.a = {key: np.asarray(arrays[name]) for key, name in spec.get("arrays", {}).items()}
        self.children = [_bind(child, arrays) for child in spec.get("children", [])]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Return the node's logits for rows `x` (classifiers) or transformed rows (transforms)."""
        kind = self.spec["type"]
        a, k = self.a, int(self.spec.get("n_classes", 0))
        if kind == "transform":
            z = x.copy()
            columns = a["log_columns"].astype(np.int64)
            z[:, columns] = signed_log1p(z[:, columns])
            return (z - a["mean"]) / a["scale"]
        if kind == "pipeline":
            for child in self.children:
                x = child.logits(x)
            return x
        if kind == "linear":
            return _two_class(x @ a["coef"].T + a["intercept"])
        if kind == "mlp":
            n_layers = int(self.spec["n_layers"])
            for i in range(n_layers):
                x = x @ a[f"coef_{i}"] + a[f"intercept_{i}"]
                if i < n_layers - 1:
                    x = relu(x)
            return _two_class(x)
        if kind == "svc":
            dec = svc_ovo_decision(x, a, float(self.spec["gamma"]))
            if self.spec["probability"] == "libsvm":
                return log_proba(svc_libsvm_proba(dec, a["prob_a"], a["prob_b"], k))
            scores = ovr_decision(dec, k) if k > 2 else -dec  # two classes: scikit-learn's sign
            if k == 2:
                scores = scores[:, :1]
            proba = 1.0 / (1.0 + np.exp(a["sigmoid_a"] * scores + a["sigmoid_b"]))
            if k == 2:
                proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
            total = proba.sum(axis=1, keepdims=True)
            proba = np.where(total > 0, proba / np.where(total > 0, total, 1), 1.0 / k)
            return log_proba(proba)
        if kind == "knn":
            return log_proba(self._knn_proba(x, k))
        if kind == "forest":
            return log_proba(_forest_proba(x, a))
        if kind == "lightgbm":
            return _lightgbm_logits(x, a, k)
        if kind == "voting":
            weights = a["weights"] / a["weights"].sum()
            proba = sum(w * softmax(child.logits(x)) for w, child in zip(weights, self.children, strict=True))
            return log_proba(proba)
        if kind == "stacking":
            *members, final = self.children
            return final.logits(np.hstack([softmax(member.logits(x)) for member in members]))
        if kind in ("cnn", "cnn_gru", "attention"):
            return self._network_logits((x - a["scaler_mean"]) / a["scaler_scale"])
        raise ValueError(f"unknown model node type {kind!r}")

    def _network_logits(self, scaled: np.ndarray) -> np.ndarray:
        """Logits of a torch-trained network node from its z-scored input."""
        kind = self.spec["type"]
        if kind == "cnn":
            return numpy_forward(self.a, scaled)
        if kind == "cnn_gru":
            return cnn_gru_forward(self.a, scaled)
        return attention_forward(self.a, scaled, int(self.spec["n_heads"]))

    def _knn_proba(self, x: np.ndarray, k: int) -> np.ndarray:
        """Class shares among the nearest stored rows (inverse-distance weighted if so fitted)."""
        fit_x, fit_y = self.a["fit_x"], self.a["fit_y"].astype(np.int64)
        n_neighbors = int(self.spec["n_neighbors"])
        sq = (x * x).sum(axis=1)[:, None] + (fit_x * fit_x).sum(axis=1)[None, :] - 2.0 * x @ fit_x.T
        dist = np.sqrt(np.maximum(sq, 0.0))
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :n_neighbors]
        near_dist = np.take_along_axis(dist, nearest, axis=1)
        if self.spec["weights"] == "distance":
            with np.errstate(divide="ignore"):
                weight = 1.0 / near_dist
            exact = np.isinf(weight)
            weight = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), weight)
        else:
            weight = np.ones_like(near_dist)
        proba = np.zeros((len(x), k))
        np.add.at(proba, (np.arange(len(x))[:, None], fit_y[nearest]), weight)
        return proba / proba.sum(axis=1, keepdims=True)


def _bind(spec: dict, arrays: Mapping[str, np.ndarray]) -> _Node:
    """Bind `spec` and its children to `arrays`, raising KeyError naming a missing array."""
    for name in spec.get("arrays", {}).values():
        if name not in arrays:
            raise KeyError(f"array {name!r} of a {spec.get('type')!r} node is missing")
    return _Node(spec, arrays)


def array_names(spec: dict) -> list[str]:
    """Return the names of every array a spec tree reads."""
    names = list(spec.get("arrays", {}).values())
    for child in spec.get("children", []):
        names += array_names(child)
    return names


class PortableClassifier:
    """A saved classifier run in NumPy: ``classes_``, ``decision_function``, ``predict_proba``, ``predict``.

    Parameters
    ----------
    spec : dict
        The node tree (see the module docstring).
    arrays : mapping of str to numpy.ndarray
        The arrays the nodes name.
    classes : sequence of str
        Class labels, in the order of the logit columns.
    n_features : int
        Number of input features.

    Raises
    ------
    KeyError
        If an array the spec names is missing.
    """

    def __init__(self, spec: dict, arrays: Mapping[str, np.ndarray], classes: Any, n_features: int) -> None:
        self.spec = spec
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = int(n_features)
        self._root = _bind(spec, {name: np.asarray(value) for name, value in arrays.items()})

    def _matrix(self, X: Any) -> np.ndarray:
        """Return `X` (array-like, or a DataFrame holding the model's feature columns) as a float64 matrix."""
        names = getattr(self, "feature_names_in_", None)  # set by a load; else the GTZAN 57 when 57
        if names is None and self.n_features_in_ == len(FEATURE_NAMES):
            names = FEATURE_NAMES
        if hasattr(X, "columns") and names is not None:
            missing = [name for name in names if name not in X.columns]
            if missing:
                raise ValueError(f"X lacks feature column {missing[0]!r} ({len(missing)} missing)")
            X = X[list(names)]
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise ValueError("X holds NaN or infinite values")
        return matrix

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the logits, shape (n, n_classes); ``softmax`` of a row is its probabilities."""
        return self._root.logits(self._matrix(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, shape (n, n_classes), in ``classes_`` order."""
        return softmax(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable class of each row."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
