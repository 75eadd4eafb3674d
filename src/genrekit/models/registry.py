"""The named model recipes: ``genrekit train --model NAME``, ``genrekit reproduce --models A,B``, Python.

Every recipe builds a fresh, unfitted scikit-learn style classifier from a seed.
Feature transforms are part of the model (a pipeline step fitted on the training
rows only) and are recorded in a saved model's metadata. A recipe with a grid
is *tuned*: a :class:`~sklearn.model_selection.GridSearchCV` with a stratified
:data:`INNER_FOLDS`-fold inner cross-validation (scikit-learn's unshuffled
``StratifiedKFold``: deterministic) over the rows it is fitted on
picks the hyperparameters, then refits on all of them. Inside an outer
protocol (``cv10``, ``filtered``, ...) that search therefore sees the outer
training rows only: nested tuning. The inner folds (and stacking's) are
:class:`~genrekit.selection.protocols.SourceKFold`: fitted inside
:func:`~genrekit.selection.protocols.rows_from_sources`, they keep the rows of one
source clip (segments, augmented copies) in one fold.

===============  =====================================================================================
name             recipe
===============  =====================================================================================
``cnn``          the paper's 1D CNN (:mod:`genrekit.models.cnn`), early stopping on validation rows
``cnn-l2``       the same CNN with an L2 penalty (Adam weight decay 1e-3)
``cnn-dropout``  the same CNN with dropout 0.3 instead of 0.5
``cnn-gru``      the paper's two conv blocks, then a bidirectional GRU (:mod:`genrekit.models.sequence`)
``attention``    a 2-layer transformer encoder over the 57 features as tokens (same module)
``knn``          the paper's k-NN baseline (:mod:`genrekit.models.baselines`), untuned
``svm``          the paper's SVM baseline, untuned
``mlp``          the paper's MLP baseline, untuned
``logreg``       multinomial logistic regression; C tuned
``knn-tuned``    k-NN with inverse-distance weights; k tuned
``svm-tuned``    RBF SVM, probabilities by one sigmoid per class (5-fold inner CV); C and gamma tuned
``mlp-tuned``    MLP (256, 128) with early stopping; L2 penalty alpha tuned
``extratrees``   extremely randomised trees (300), untuned
``gbm``          LightGBM gradient-boosted trees (optional extra ``genrekit[gbm]``); leaves tuned
``ensemble``     soft voting (equal weights) over members (default :data:`ENSEMBLE_MEMBERS`)
``stacking``     stacking over the same members: a logistic regression on the members'
                 probabilities from a 5-fold inner cross-validation
===============  =====================================================================================

All recipes but the paper's three baselines and the networks start with
:class:`~genrekit.models.transforms.FeatureTransform` (``log1p`` of the
``*_var`` columns, then z-scores); the baselines and the networks (the CNNs,
``cnn-gru``, ``attention``) z-score only, as in the reproduction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genrekit.core.errors import GenrekitError

INNER_FOLDS: int = 3
"""Folds of the inner cross-validation that tunes a recipe's hyperparameters."""

STACKING_FOLDS: int = 5
"""Folds of the inner cross-validation whose out-of-fold probabilities train a stacking model."""

ENSEMBLE_MEMBERS: tuple[str, ...] = ("svm-tuned", "logreg", "gbm", "extratrees", "mlp-tuned")
"""Default members of ``ensemble`` and ``stacking``."""

PAPER_MODELS: tuple[str, ...] = ("cnn", "knn", "svm", "mlp")
"""The models of the paper's Table 1: what ``genrekit reproduce`` runs by default."""


@dataclass(frozen=True)
class Recipe:
    """A named way to build a classifier.

    Attributes
    ----------
    name : str
        Registry name.
    description : str
        One line for help texts and reports.
    transform : str
        The feature transform at the start of the pipeline.
    grid : mapping of str to sequence
        Hyperparameters tuned by the inner search (parameter names of the
        untuned estimator); empty for an untuned recipe.
    uses_validation : bool
        Whether ``fit`` takes validation rows for early stopping (the CNNs).
    requires : str or None
        Optional package the recipe needs (``lightgbm``, ``torch``).
    """

    name: str
    description: str
    transform: str
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    uses_validation: bool = False
    requires: str | None = None


_LOG_Z = "log1p of the *_var columns, then z-score (training rows)"
_Z = "z-score (training rows)"

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("cnn", "the paper's 1D CNN (early stopping on validation rows)", _Z, {}, True, "torch"),
        Recipe("cnn-l2", "the paper's CNN with an L2 penalty (weight decay 1e-3)", _Z, {}, True, "torch"),
        Recipe("cnn-dropout", "the paper's CNN with dropout 0.3 (paper: 0.5)", _Z, {}, True, "torch"),
        Recipe(
            "cnn-gru",
            "CNN+GRU hybrid: the paper's conv blocks, then a bidirectional GRU (64)",
            _Z,
            {},
            True,
            "torch",
        ),
        Recipe(
            "attention",
            "transformer encoder over the features as tokens (2 layers, d 32, 4 heads)",
            _Z,
            {},
            True,
            "torch",
        ),
        Recipe("knn", "the paper's k-NN baseline (k = 5), untuned", _Z),
        Recipe("svm", "the paper's SVM baseline (RBF, C = 1), untuned", _Z),
        Recipe("mlp", "the paper's MLP baseline (256, 128), untuned", _Z),
        Recipe("logreg", "multinomial logistic regression", _LOG_Z, {"classifier__C": (0.1, 1.0, 10.0)}),
        Recipe(
            "knn-tuned",
            "k-NN, inverse-distance weights",
            _LOG_Z,
            {"classifier__n_neighbors": (3, 7, 15)},
        ),
        Recipe(
            "svm-tuned",
            "RBF SVM, sigmoid-calibrated probabilities",
            _LOG_Z,
            {
                "classifier__estimator__C": (1.0, 10.0, 100.0),
                "classifier__estimator__gamma": ("scale", 0.005),
            },
        ),
        Recipe(
            "mlp-tuned",
            "MLP (256, 128), early stopping",
            _LOG_Z,
            {"classifier__alpha": (0.1, 1.0, 3.0)},
        ),
        Recipe("extratrees", "extremely randomised trees (300), untuned", _LOG_Z),
        Recipe(
            "gbm",
            "LightGBM gradient boosting (300 rounds, rate 0.05)",
            _LOG_Z,
            {"classifier__num_leaves": (7, 15)},
            requires="lightgbm",
        ),
        Recipe("ensemble", "soft voting over members", "each member's own"),
        Recipe(
            "stacking",
            "stacking over members (logistic regression on their probabilities)",
            "each member's own",
        ),
    )
}
"""Every recipe by name."""


def recipe(name: str) -> Recipe:
    """Return the recipe called `name`.

    Raises
    ------
    GenrekitError
        If there is no such recipe (the message lists the names).
    """
    if name not in RECIPES:
        raise GenrekitError(f"unknown model {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def parse_names(text: str) -> list[str]:
    """Return the recipe names of a comma list (``"cnn,svm-tuned"``), each checked."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise GenrekitError("no model names given")
    for name in names:
        recipe(name)
    return list(dict.fromkeys(names))


def _pipeline(classifier: Any) -> Any:
    from sklearn.pipeline import Pipeline

    from genrekit.models.transforms import FeatureTransform

    return Pipeline([("features", FeatureTransform()), ("classifier", classifier)])


def _network(name: str, seed: int, epochs: int, patience: int, **params: Any) -> Any:
    """Return a torch-trained network: ``cnn`` (the paper's CNN), ``cnn-gru`` or ``attention``."""
    from genrekit.models.cnn import CNNClassifier
    from genrekit.models.sequence import AttentionClassifier, CNNGRUClassifier

    kind = {"cnn": CNNClassifier, "cnn-gru": CNNGRUClassifier, "attention": AttentionClassifier}[name]
    return kind(epochs=epochs, patience=patience, random_state=seed, **params)


def _lightgbm(seed: int) -> Any:
    try:
        from lightgbm import LGBMClassifier
    except ImportError as exc:
        raise GenrekitError("model 'gbm' needs LightGBM: pip install 'genrekit[gbm]'") from exc
    return LGBMClassifier(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.5,
        reg_lambda=1.0,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
    )


def _untuned(name: str, seed: int, epochs: int, patience: int, members: Sequence[str], tune: bool) -> Any:
    """Return recipe `name` without its own inner search (an ensemble's members tuned if `tune`)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    builders: dict[str, Callable[[], Any]] = {
        "cnn": lambda: _network("cnn", seed, epochs, patience),
        "cnn-l2": lambda: _network("cnn", seed, epochs, patience, weight_decay=1e-3),
        "cnn-dropout": lambda: _network("cnn", seed, epochs, patience, dropout=0.3),
        "cnn-gru": lambda: _network("cnn-gru", seed, epochs, patience),
        "attention": lambda: _network("attention", seed, epochs, patience),
        "logreg": lambda: _pipeline(LogisticRegression(C=1.0, max_iter=5000)),
        "knn-tuned": lambda: _pipeline(KNeighborsClassifier(n_neighbors=7, weights="distance")),
        "svm-tuned": lambda: _pipeline(
            CalibratedClassifierCV(SVC(C=10.0, gamma="scale"), method="sigmoid", ensemble=False)
        ),
        "mlp-tuned": lambda: _pipeline(
            MLPClassifier(
                hidden_layer_sizes=(256, 128),
                alpha=1.0,
                max_iter=500,
                early_stopping=True,
                validation_fraction=0.1,
                n_iter_no_change=20,
                random_state=seed,
            )
        ),
        "extratrees": lambda: _pipeline(
            ExtraTreesClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=seed)
        ),
        "gbm": lambda: _pipeline(_lightgbm(seed)),
        "ensemble": lambda: _ensemble(seed, epochs, patience, members, tune, stacking=False),
        "stacking": lambda: _ensemble(seed, epochs, patience, members, tune, stacking=True),
    }
    if name in ("knn", "svm", "mlp"):
        from genrekit.models.baselines import make_baseline

        return make_baseline(name, random_state=seed)
    return builders[name]()


def _ensemble(
    seed: int, epochs: int, patience: int, members: Sequence[str], tune: bool, stacking: bool
) -> Any:
    """Soft voting or stacking over `members` (each built, and tuned, by its own recipe)."""
    from sklearn.ensemble import StackingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression

    from genrekit.selection.protocols import SourceKFold

    bad = [m for m in members if m in ("ensemble", "stacking") or recipe(m).uses_validation]
    if bad or not members:
        raise GenrekitError(f"ensemble members must be non-ensemble, non-CNN models; got {list(members)}")
    estimators = [(m, make_model(m, seed, tune=tune, epochs=epochs, patience=patience)) for m in members]
    if not stacking:
        return VotingClassifier(estimators, voting="soft")
    return StackingClassifier(
        estimators,
        final_estimator=LogisticRegression(C=1.0, max_iter=5000),
        cv=SourceKFold(STACKING_FOLDS, shuffle=True, random_state=seed),
        stack_method="predict_proba",
    )


def make_model(
    name: str,
    seed: int = 0,
    *,
    tune: bool = True,
    epochs: int = 200,
    patience: int = 20,
    members: Sequence[str] = ENSEMBLE_MEMBERS,
) -> Any:
    """Return a fresh, unfitted classifier built by recipe `name`.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    seed : int, default=0
        Seed of the model and of its inner cross-validation.
    tune : bool, default=True
        Wrap a recipe that has a grid (an ensemble: each member that has one)
        in its inner search (False: the default hyperparameters, within the grid).
    epochs, patience : int
        The CNNs' epoch cap and early-stopping patience.
    members : sequence of str
        Members of ``ensemble`` / ``stacking``.

    Returns
    -------
    estimator
        ``fit`` / ``predict`` / ``predict_proba``; a CNN's ``fit`` also takes
        validation rows.

    Raises
    ------
    GenrekitError
        For an unknown name, bad members, or a missing optional package.
    """
    rec = recipe(name)
    estimator = _untuned(name, seed, epochs, patience, members, tune)
    if not tune or not rec.grid:
        return estimator
    from sklearn.model_selection import GridSearchCV

    from genrekit.selection.protocols import SourceKFold

    return GridSearchCV(
        estimator,
        {key: list(values) for key, values in rec.grid.items()},
        cv=SourceKFold(INNER_FOLDS),
        n_jobs=1,
    )


def _short(param: str) -> str:
    """Return a grid parameter without its pipeline path (``classifier__estimator__C`` -> ``C``)."""
    return param.rsplit("__", 1)[-1]


def chosen_params(estimator: Any) -> dict:
    """Return what the inner searches of a fitted `estimator` chose, by member.

    Returns
    -------
    dict
        ``{"params": {...}}`` for a tuned model, ``{member: {...}}`` for an
        ensemble's tuned members; empty when nothing was tuned.
    """
    if hasattr(estimator, "best_params_"):
        return {"params": {_short(key): value for key, value in estimator.best_params_.items()}}
    if hasattr(estimator, "named_estimators_"):
        chosen = {}
        for member, fitted in estimator.named_estimators_.items():
            inner = chosen_params(fitted)
            if inner:
                chosen[member] = inner["params"]
        return chosen
    return {}


def describe(name: str, members: Sequence[str] = ENSEMBLE_MEMBERS) -> dict:
    """Return a recipe's metadata: name, description, transform, grid, inner folds and members."""
    rec = recipe(name)
    info: dict[str, Any] = {
        "name": rec.name,
        "description": rec.description,
        "transform": rec.transform,
        "grid": {_short(key): list(values) for key, values in rec.grid.items()},
        "inner_folds": INNER_FOLDS if rec.grid else None,
    }
    if name in ("ensemble", "stacking"):
        info["members"] = [describe(member) for member in members]
    return info
