"""Turn a fitted estimator into a portable spec and arrays (see :mod:`genrekit.models.portable`).

Supported: :class:`~sklearn.pipeline.Pipeline` of
:class:`~genrekit.models.transforms.FeatureTransform` / ``StandardScaler`` steps and
one classifier; :class:`~sklearn.model_selection.GridSearchCV` (its refitted best
estimator); ``LogisticRegression``; ``MLPClassifier`` (ReLU); ``SVC`` (RBF, with
``probability=True``) and ``CalibratedClassifierCV`` over such an SVC (sigmoid,
``ensemble=False``); ``KNeighborsClassifier`` (Euclidean); ``ExtraTreesClassifier``
and ``RandomForestClassifier``; LightGBM's ``LGBMClassifier`` (numerical splits);
``VotingClassifier`` (soft) and ``StackingClassifier`` (``predict_proba``, a
logistic regression on top, no passthrough); the paper's
:class:`~genrekit.models.cnn.CNNClassifier` and the networks of
:mod:`genrekit.models.sequence`. Anything else raises
:class:`~genrekit.core.errors.ModelError` naming the estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genrekit.core.errors import ModelError


class _Exporter:
    """Collects the arrays of a spec tree under unique names."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def node(self, kind: str, path: str, arrays: dict[str, Any], **fields: Any) -> dict:
        """Return a spec node of type `kind` whose arrays are stored as ``path/<key>``."""
        names = {}
        for key, value in arrays.items():
            name = f"{path}/{key}"
            self.arrays[name] = np.ascontiguousarray(value)
            names[key] = name
        return {"type": kind, "arrays": names, **fields}

    def export(self, est: Any, path: str, n_classes: int) -> dict:
        """Return the spec node of `est` (recursively)."""
        name = type(est).__name__
        method = getattr(self, f"_{name}", None)
        if method is None:
            raise ModelError(f"cannot save a {name} without pickle: no portable format for it")
        return method(est, path, n_classes)

    def _GridSearchCV(self, est: Any, path: str, n_classes: int) -> dict:
        return self.export(est.best_estimator_, path, n_classes)

    def _Pipeline(self, est: Any, path: str, n_classes: int) -> dict:
        children = [self.export(step, f"{path}/{i}", n_classes) for i, (_, step) in enumerate(est.steps)]
        return {"type": "pipeline", "children": children}

    def _FeatureTransform(self, est: Any, path: str, n_classes: int) -> dict:
        arrays = {"log_columns": est.log_columns_, "mean": est.mean_, "scale": est.scale_}
        return self.node("transform", path, arrays, description=est.describe())

    def _StandardScaler(self, est: Any, path: str, n_classes: int) -> dict:
        arrays = {
            "log_columns": np.zeros(0, dtype=np.int64),
            "mean": est.mean_ if est.with_mean else np.zeros(est.n_features_in_),
            "scale": est.scale_ if est.with_std else np.ones(est.n_features_in_),
        }
        return self.node("transform", path, arrays, description="z-score (training rows)")

    def _LogisticRegression(self, est: Any, path: str, n_classes: int) -> dict:
        arrays = {"coef": est.coef_.astype(np.float64), "intercept": est.intercept_.astype(np.float64)}
        return self.node("linear", path, arrays, n_classes=n_classes)

    def _MLPClassifier(self, est: Any, path: str, n_classes: int) -> dict:
        if est.activation != "relu":
            raise ModelError(f"cannot save an MLPClassifier with activation {est.activation!r} (relu only)")
        arrays = {f"coef_{i}": w for i, w in enumerate(est.coefs_)}
        arrays |= {f"intercept_{i}": b for i, b in enumerate(est.intercepts_)}
        return self.node("mlp", path, arrays, n_classes=n_classes, n_layers=len(est.coefs_))

    def _svc_arrays(self, svc: Any) -> tuple[dict, float]:
        if svc.kernel != "rbf":
            raise ModelError(f"cannot save an SVC with kernel {svc.kernel!r} (rbf only)")
        arrays = {
            "support_vectors": svc.support_vectors_,
            "dual_coef": svc._dual_coef_,  # libsvm's own signs (the public one is flipped for 2 classes)
            "intercept": svc._intercept_,
            "n_support": svc.n_support_.astype(np.int64),
        }
        return arrays, float(svc._gamma)

    def _SVC(self, est: Any, path: str, n_classes: int) -> dict:
        if not est.probability:
            raise ModelError("cannot save an SVC fitted without probability=True")
        arrays, gamma = self._svc_arrays(est)
        arrays |= {"prob_a": est.probA_, "prob_b": est.probB_}
        return self.node("svc", path, arrays, n_classes=n_classes, gamma=gamma, probability="libsvm")

    def _CalibratedClassifierCV(self, est: Any, path: str, n_classes: int) -> dict:
        fitted = est.calibrated_classifiers_
        if len(fitted) != 1 or est.method != "sigmoid" or type(fitted[0].estimator).__name__ != "SVC":
            raise ModelError("cannot save a CalibratedClassifierCV other than sigmoid, ensemble=False, SVC")
        arrays, gamma = self._svc_arrays(fitted[0].estimator)
        arrays |= {
            "sigmoid_a": np.asarray([c.a_ for c in fitted[0].calibrators], dtype=np.float64),
            "sigmoid_b": np.asarray([c.b_ for c in fitted[0].calibrators], dtype=np.float64),
        }
        return self.node("svc", path, arrays, n_classes=n_classes, gamma=gamma, probability="ovr_sigmoid")

    def _KNeighborsClassifier(self, est: Any, path: str, n_classes: int) -> dict:
        if est.effective_metric_ != "euclidean" or est.weights not in ("uniform", "distance"):
            raise ModelError("cannot save a KNeighborsClassifier other than Euclidean, uniform/distance")
        arrays = {"fit_x": est._fit_X.astype(np.float64), "fit_y": est._y.astype(np.int64)}
        return self.node(
            "knn", path, arrays, n_classes=n_classes, n_neighbors=int(est.n_neighbors), weights=est.weights
        )

    def _forest(self, est: Any, path: str, n_classes: int) -> dict:
        parts: dict[str, list] = {key: [] for key in ("left", "right", "feature", "threshold", "value")}
        roots, offset = [], 0
        for tree in (t.tree_ for t in est.estimators_):
            leaf = tree.children_left < 0
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["feature"].append(np.where(leaf, 0, tree.feature))
            parts["threshold"].append(tree.threshold)
            value = tree.value[:, 0, :].astype(np.float64)
            parts["value"].append((value / value.sum(axis=1, keepdims=True)).astype(np.float32))
            roots.append(offset)
            offset += tree.node_count
        arrays = {key: np.concatenate(values) for key, values in parts.items()}
        for key in ("left", "right", "feature"):
            arrays[key] = arrays[key].astype(np.int32)  # a forest's size: node shares in float32 too
        arrays["roots"] = np.asarray(roots, dtype=np.int64)
        return self.node("forest", path, arrays, n_classes=n_classes, n_trees=len(roots))

    _ExtraTreesClassifier = _forest
    _RandomForestClassifier = _forest

    def _LGBMClassifier(self, est: Any, path: str, n_classes: int) -> dict:
        dump = est.booster_.dump_model()
        parts: dict[str, list] = {
            key: []
            for key in ("left", "right", "feature", "threshold", "default_left", "zero_missing", "value")
        }
        roots, tree_class = [], []
        for index, info in enumerate(dump["tree_info"]):
            roots.append(len(parts["left"]))
            tree_class.append(index % dump["num_tree_per_iteration"])
            _lightgbm_nodes(info["tree_structure"], parts)
        arrays = {key: np.asarray(values) for key, values in parts.items()}
        for key in ("left", "right", "feature", "default_left", "zero_missing"):
            arrays[key] = arrays[key].astype(np.int64)
        arrays["threshold"] = arrays["threshold"].astype(np.float64)
        arrays["value"] = arrays["value"].astype(np.float64)
        arrays["roots"] = np.asarray(roots, dtype=np.int64)
        arrays["tree_class"] = np.asarray(tree_class, dtype=np.int64)
        return self.node("lightgbm", path, arrays, n_classes=n_classes, n_trees=len(roots))

    def _VotingClassifier(self, est: Any, path: str, n_classes: int) -> dict:
        if est.voting != "soft":
            raise ModelError("cannot save a VotingClassifier with hard voting (no probabilities)")
        members = [self.export(m, f"{path}/{i}", n_classes) for i, m in enumerate(est.estimators_)]
        weights = np.ones(len(members)) if est.weights is None else np.asarray(est.weights, dtype=np.float64)
        spec = self.node("voting", path, {"weights": weights}, n_classes=n_classes)
        return spec | {"children": members}

    def _StackingClassifier(self, est: Any, path: str, n_classes: int) -> dict:
        if est.passthrough or any(m != "predict_proba" for m in est.stack_method_):
            raise ModelError("cannot save a StackingClassifier with passthrough or non-probability stacking")
        if n_classes == 2:
            raise ModelError("cannot save a two-class StackingClassifier (it drops a probability column)")
        members = [self.export(m, f"{path}/{i}", n_classes) for i, m in enumerate(est.estimators_)]
        final = self.export(est.final_estimator_, f"{path}/final", n_classes)
        return {"type": "stacking", "n_classes": n_classes, "children": [*members, final]}

    def _network(self, est: Any, path: str, n_classes: int) -> dict:
        arrays = {name: np.asarray(w, dtype=np.float32) for name, w in est.weights_.items()}
        arrays |= {"scaler_mean": est.scaler_mean_, "scaler_scale": est.scaler_scale_}
        return self.node(est.PORTABLE_NODE, path, arrays, n_classes=n_classes, **est.portable_fields())

    _CNNClassifier = _network
    _CNNGRUClassifier = _network
    _AttentionClassifier = _network


def _lightgbm_nodes(node: dict, parts: dict[str, list]) -> int:
    """Append `node` and its subtree to `parts` (depth first); return its global index."""
    index = len(parts["left"])
    for key in parts:
        parts[key].append(0)
    if "leaf_value" in node or "split_feature" not in node:
        parts["left"][index] = parts["right"][index] = -1
        parts["value"][index] = node.get("leaf_value", 0.0)
        return index
    if node["decision_type"] != "<=":
        raise ModelError(f"cannot save a LightGBM split of type {node['decision_type']!r} (numerical only)")
    parts["feature"][index] = node["split_feature"]
    parts["threshold"][index] = float(node["threshold"])
    parts["default_left"][index] = int(bool(node["default_left"]))
    parts["zero_missing"][index] = int(node["missing_type"] == "Zero")
    parts["left"][index] = _lightgbm_nodes(node["left_child"], parts)
    parts["right"][index] = _lightgbm_nodes(node["right_child"], parts)
    return index


def export_model(estimator: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Return the portable spec of a fitted `estimator` and the arrays it names.

    Parameters
    ----------
    estimator : estimator
        A fitted classifier of a supported kind (see the module docstring).

    Returns
    -------
    spec : dict
        The node tree, JSON-ready.
    arrays : dict of str to numpy.ndarray
        Every array the tree names.

    Raises
    ------
    ModelError
        If the estimator, or a part of it, has no portable form, or it is unfitted.
    """
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ModelError(f"cannot save an unfitted {type(estimator).__name__}; call fit() first")
    exporter = _Exporter()
    spec = exporter.export(estimator, "model", len(classes))
    return spec, exporter.arrays
