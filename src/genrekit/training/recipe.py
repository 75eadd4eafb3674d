"""The recipe behind a model meant for prediction (the shipped model among them).

:func:`fit_final` trains a registry model (:mod:`genrekit.models.registry`; by
default the paper's CNN with the paper's settings: Adam, batch 32, 200 epochs)
on every row of a table, and states how well that recipe generalises by
running it on the folds of a stratified k-fold cross-validation (protocol
``cv<k>``: each fold's model is trained the same way on the other folds, its
hyperparameters tuned inside them, and scored on its own rows). The folds' out-of-fold
logits also calibrate the probabilities (a temperature) and their held-out
feature distances set the novelty threshold (see :mod:`genrekit.models.calibrate`).

There is no early stopping: with no rows to spare for it, a fixed epoch count
keeps the final model and the cross-validated ones trained alike, and nothing
is selected on the rows that score them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genrekit.core.parallel import map_tasks
from genrekit.models.calibrate import FeatureNovelty, fit_temperature, scaled_probabilities
from genrekit.models.registry import ENSEMBLE_MEMBERS, chosen_params, describe, make_model
from genrekit.selection.metrics import file_accuracy, summarize
from genrekit.selection.protocols import Groups, cv_fit_splits, cv_name, rows_from_sources

CONFIDENCE_STEPS: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Thresholds at which the recipe's out-of-fold confidence is tabulated."""


RELIABILITY_BINS: int = 10
"""Equal-width confidence bins of the reliability diagram and the expected calibration error."""


def _build(name: str, seed: int, epochs: int, batch_size: int, options: dict):
    """Return recipe `name` seeded with `seed`; the CNNs with a fixed epoch count and batch size."""
    model = make_model(name, seed, epochs=epochs, **options)
    if hasattr(model, "batch_size"):
        model.set_params(batch_size=batch_size)
    return model


def heldout_logits(model: Any, X: np.ndarray) -> np.ndarray:
    """Return the logits a saved copy of the fitted `model` gives (what prediction will see).

    Parameters
    ----------
    model : estimator
        A fitted classifier: a network (``weights_``) or one :func:`genrekit.models.export.export_model`
        exports.
    X : numpy.ndarray, shape (n, n_features)
        The rows to score.

    Returns
    -------
    numpy.ndarray, shape (n, n_classes)
        Logits, columns in ``model.classes_`` order.
    """
    if hasattr(model, "weights_"):
        return model.logits(X)
    from genrekit.models.export import export_model
    from genrekit.models.portable import PortableClassifier

    spec, arrays = export_model(model)
    return PortableClassifier(spec, arrays, model.classes_, X.shape[1]).decision_function(X)


def _fit_task(task: tuple) -> object:
    """Fit one fold's model and return its held-out logits and choices, or (no test rows) the final model."""
    name, seed, epochs, batch_size, options, X_train, y_train, groups, X_test = task
    with rows_from_sources(X_train, groups):
        fitted = _build(name, seed, epochs, batch_size, options).fit(X_train, y_train)
    if X_test is None:
        return fitted
    return heldout_logits(fitted, X_test), chosen_params(fitted)


def fit_final(
    X: np.ndarray,
    y: np.ndarray,
    n_folds: int = 10,
    seed: int = 0,
    epochs: int = 200,
    batch_size: int = 32,
    on_fold: Callable[[int, float], None] | None = None,
    model: str = "cnn",
    members: tuple[str, ...] = ENSEMBLE_MEMBERS,
    tune: bool = True,
    jobs: int = 1,
    groups: Groups = None,
    filenames: Sequence[str] | None = None,
) -> tuple[object, dict]:
    """Cross-validate a recipe, then fit it on every row.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        Features of every row.
    y : ndarray of str, shape (n,)
        Labels.
    n_folds : int
        Folds of the cross-validation (protocol ``cv<n_folds>``).
    seed : int
        Seed of the folds, of each fold's model and of the final model.
    epochs, batch_size : int
        Training settings, the same for the fold models and the final one.
    on_fold : callable, optional
        Called as ``on_fold(fold, accuracy)`` after each fold (for progress).
    model : str, default="cnn"
        The registry recipe. The CNNs train for exactly `epochs` epochs (no
        early stopping); tuned recipes run their inner search inside each
        fold's training rows, and on all rows for the final model.
    members : tuple of str
        Members of ``ensemble`` / ``stacking``.
    tune : bool, default=True
        Run the inner searches (False: every recipe's default hyperparameters).
    jobs : int, default=1
        Processes that fit the fold models and the final model side by side
        (1: one after the other in this process); the results do not depend on it.
    groups : sequence of str, optional
        Source clip of each row (:func:`genrekit.datasets.table.source_groups`): the folds, and every
        inner cross-validation, keep a clip's rows (segments, augmented copies) together.
    filenames : sequence of str, optional
        The table's ``filename`` column: its augmented rows (:func:`genrekit.datasets.table.is_augmented`)
        only train; the out-of-fold scores, calibration and confidence table leave them out.

    Returns
    -------
    model : estimator
        Trained on all rows.
    metadata : dict
        ``recipe``, ``cross_validation`` (accuracy per fold and its summary,
        what each fold's inner search chose, the confidence table; with `groups` whose clips
        have several rows, also ``file_accuracies`` / ``file_accuracy``: per source clip, the
        argmax of its rows' mean calibrated probabilities) and
        ``calibration`` (temperature, novelty, expected calibration error and
        reliability bins before and after scaling), ready to save with the model.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(str)
    classes = np.unique(y)
    logits = np.empty((len(y), len(classes)))
    distances = np.empty(len(y))
    options = {"members": members, "tune": tune}
    splits = cv_fit_splits(y, n_folds, seed, groups, filenames)
    sources = None if groups is None else np.asarray(groups, dtype=str)
    tasks = []
    for split in splits:
        rows = split.train
        fold_sources = None if sources is None else sources[rows]
        tasks.append(
            (model, split.seed, epochs, batch_size, options, X[rows], y[rows], fold_sources, X[split.test])
        )
        distances[split.test] = FeatureNovelty.fit(X[rows]).distance(X[split.test])
    tasks.append((model, seed, epochs, batch_size, options, X, y, sources, None))
    accuracies, chosen = [], []
    results = map_tasks(_fit_task, tasks, jobs, ordered=True)
    for split, (_, result) in zip(splits, results, strict=False):  # the last result is the final model
        if isinstance(result, Exception):
            raise result
        logits[split.test], fold_chosen = result
        accuracies.append(float(np.mean(classes[logits[split.test].argmax(axis=1)] == y[split.test])))
        chosen.append(fold_chosen)
        if on_fold is not None:
            on_fold(split.repeat, accuracies[-1])
    _, final = next(results)
    if isinstance(final, Exception):
        raise final
    cnn = hasattr(final, "weights_")
    what = f"paper CNN, {epochs} epochs on all rows, no early stopping" if model == "cnn" else model
    metadata = {
        "recipe": {
            **describe(model, members),
            "tuned": tune,
            "description": f"{what}; scored by {n_folds}-fold CV",
            "n_folds": n_folds,
            "seed": seed,
            **({"epochs": epochs, "batch_size": batch_size} if cnn else {}),
            "chosen": chosen_params(final),
        },
        "cross_validation": {
            "protocol": cv_name(n_folds),
            "fold_accuracies": accuracies,
            "accuracy": summarize(accuracies),
            "chosen": chosen,
        },
    }
    scored = np.sort(np.concatenate([split.test for split in splits]))
    logits, distances, y_scored = logits[scored], distances[scored], y[scored]
    metadata["calibration"] = calibration(logits, np.searchsorted(classes, y_scored), X, distances)
    proba = np.empty((len(y), len(classes)))
    proba[scored] = scaled_probabilities(logits, metadata["calibration"]["temperature"])
    metadata["cross_validation"]["confidence"] = confidence_table(proba[scored], classes, y_scored)
    if sources is not None and len(np.unique(sources)) < len(sources):
        per_file = [file_accuracy(y[s.test], proba[s.test], classes, sources[s.test])[0] for s in splits]
        metadata["cross_validation"] |= {"file_accuracies": per_file, "file_accuracy": summarize(per_file)}
    return final, metadata


def confidence_table(
    proba: np.ndarray, classes: np.ndarray, y: np.ndarray, thresholds: tuple[float, ...] = CONFIDENCE_STEPS
) -> list[dict]:
    """Share of rows reaching each confidence threshold, and the accuracy among them.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Held-out (out-of-fold) calibrated probabilities.
    classes : ndarray of str
        Class names, the columns of `proba`.
    y : ndarray of str
        True labels.
    thresholds : tuple of float
        Minimum top probabilities to report.

    Returns
    -------
    list of dict
        ``threshold``, ``coverage`` (share of rows whose top probability reaches
        it) and ``accuracy`` (among those rows; None when there are none).
    """
    top, right = proba.max(axis=1), classes[proba.argmax(axis=1)] == y
    table = []
    for threshold in thresholds:
        kept = top >= threshold
        accuracy = float(right[kept].mean()) if kept.any() else None
        table.append({"threshold": threshold, "coverage": float(kept.mean()), "accuracy": accuracy})
    return table


def calibration(logits: np.ndarray, codes: np.ndarray, X_train: np.ndarray, distances: np.ndarray) -> dict:
    """Return the ``calibration`` metadata of a model from held-out evidence.

    Parameters
    ----------
    logits : ndarray of shape (n, n_classes)
        Logits of held-out rows (out-of-fold or validation rows).
    codes : ndarray of int, shape (n,)
        Their true class indices.
    X_train : ndarray of shape (m, n_features)
        The rows the final model was trained on (the novelty reference).
    distances : ndarray of shape (n,)
        Distances of held-out rows from the rows their model was trained on.

    Returns
    -------
    dict
        ``temperature`` and ``novelty`` (see :class:`genrekit.prediction.model.GenreModel`).
    """
    temperature = fit_temperature(logits, codes)
    before, after = scaled_probabilities(logits, 1.0), scaled_probabilities(logits, temperature)
    return {
        "temperature": temperature,
        "novelty": FeatureNovelty.fit(X_train).with_threshold(distances).to_dict(),
        "ece_before": expected_calibration_error(before, codes),
        "ece_after": expected_calibration_error(after, codes),
        "reliability_before": reliability(before, codes),
        "reliability_after": reliability(after, codes),
    }


def reliability(proba: np.ndarray, codes: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Return the reliability diagram's bins: top-probability range, rows, mean confidence, accuracy.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Held-out probabilities.
    codes : ndarray of int, shape (n,)
        True class indices.
    bins : int
        Equal-width bins over [0, 1] of the top probability.

    Returns
    -------
    list of dict
        ``low``, ``high``, ``count``, ``confidence`` and ``accuracy`` (None for an empty bin).
    """
    top, right = proba.max(axis=1), proba.argmax(axis=1) == codes
    which = np.minimum((top * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        kept = which == b
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": int(kept.sum()),
                "confidence": float(top[kept].mean()) if kept.any() else None,
                "accuracy": float(right[kept].mean()) if kept.any() else None,
            }
        )
    return table


def expected_calibration_error(proba: np.ndarray, codes: np.ndarray, bins: int = RELIABILITY_BINS) -> float:
    """Return the expected calibration error: the row-weighted mean ``|accuracy - confidence|`` over bins."""
    table = reliability(proba, codes, bins)
    n = sum(row["count"] for row in table)
    return float(
        sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table if row["count"]) / n
    )
