"""Permutation importance of each feature and each feature family, with intervals over folds.

For each fold of a stratified k-fold cross-validation, a recipe is trained on
the other folds; then, on the fold's own (held-out) rows, the columns of one
feature, or of one family of features, are shuffled among the rows and the
drop in accuracy is measured (mean over `repeats` shuffles). The importance of
a feature is that drop, summarised over the folds (mean, std, 95% t-interval).
Shuffling a whole family at once measures what the family carries together,
which single-feature importances miss when features stand in for each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from genrekit.core.schema import FEATURE_NAMES
from genrekit.selection.metrics import summarize
from genrekit.selection.protocols import Groups, cv_fit_splits, cv_name, rows_from_sources

FAMILIES: dict[str, tuple[str, ...]] = {
    "chroma": ("chroma_stft",),
    "rms": ("rms",),
    "spectral shape": ("spectral_centroid", "spectral_bandwidth", "rolloff"),
    "zero crossings": ("zero_crossing_rate",),
    "harmonic/percussive": ("harmony", "perceptr"),
    "tempo": ("tempo",),
    "MFCC": ("mfcc",),
}
"""Feature families: the GTZAN feature-name prefixes that make up each one."""


def family_columns(names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """Return the column indices of each family in `names`."""
    return {
        family: np.asarray([i for i, name in enumerate(names) if name.startswith(prefixes)], dtype=np.int64)
        for family, prefixes in FAMILIES.items()
    }


def _drops(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    groups: list[np.ndarray],
    repeats: int,
    rng: np.random.RandomState,
) -> tuple[float, np.ndarray]:
    """Return the accuracy on (X, y) and its mean drop when each group of columns is shuffled."""
    base = float(np.mean(predict(X) == y))
    drops = np.empty(len(groups))
    for g, columns in enumerate(groups):
        scores = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, columns] = X[rng.permutation(len(X))][:, columns]
            scores.append(float(np.mean(predict(shuffled) == y)))
        drops[g] = base - np.mean(scores)
    return base, drops


def permutation_importance(
    build: Callable[[int], object],
    X: np.ndarray,
    y: np.ndarray,
    names: tuple[str, ...] = FEATURE_NAMES,
    n_folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    on_fold: Callable[[int], None] | None = None,
    sources: Groups = None,
    filenames: Sequence[str] | None = None,
) -> dict:
    """Cross-validated permutation importance of every feature and every feature family.

    Parameters
    ----------
    build : callable
        ``build(seed)`` returns a fresh, unfitted classifier with ``fit`` and ``predict``.
    X : ndarray of shape (n, n_features)
        Features.
    y : ndarray of str, shape (n,)
        Labels.
    names : tuple of str
        Column names (the families are found by their prefixes).
    n_folds : int
        Folds of the stratified cross-validation (protocol ``cv<n_folds>``).
    repeats : int
        Shuffles per feature or family and fold.
    seed : int
        Seed of the folds, of each fold's model and of the shuffles.
    on_fold : callable, optional
        Called with the fold number after each fold (for progress).
    sources : sequence of str, optional
        Source clip of each row: folds and inner cross-validations keep a clip's rows together.
    filenames : sequence of str, optional
        The table's ``filename`` column: augmented rows only train, never score
        (:func:`genrekit.selection.protocols.without_augmented`).

    Returns
    -------
    dict
        ``protocol``, ``repeats``, ``accuracy`` (summary of the folds'
        unshuffled accuracies) and ``features`` / ``families``: lists of
        ``{"name", "drop"}`` (accuracy drop summarised over folds, as fractions),
        most important first.
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y).astype(str)
    families = family_columns(names)
    families = {family: columns for family, columns in families.items() if len(columns)}
    groups = [np.asarray([i]) for i in range(X.shape[1])] + list(families.values())
    rng = np.random.RandomState(seed)
    accuracies, drops = [], []
    for split in cv_fit_splits(y, n_folds, seed, sources, filenames):
        rows = split.train
        with rows_from_sources(X[rows], None if sources is None else np.asarray(sources)[rows]):
            model = build(split.seed).fit(X[rows], y[rows])
        base, drop = _drops(model.predict, X[split.test], y[split.test], groups, repeats, rng)
        accuracies.append(base)
        drops.append(drop)
        if on_fold is not None:
            on_fold(split.repeat)
    table = np.asarray(drops)  # (folds, groups)

    def ranked(labels: list[str], columns: np.ndarray) -> list[dict]:
        pairs = zip(labels, columns, strict=True)
        items = [{"name": label, "drop": summarize(table[:, c].tolist())} for label, c in pairs]
        return sorted(items, key=lambda item: -item["drop"]["mean"])

    n = X.shape[1]
    return {
        "protocol": cv_name(n_folds),
        "repeats": repeats,
        "accuracy": summarize(accuracies),
        "features": ranked(list(names), np.arange(n)),
        "families": ranked(list(families), np.arange(n, n + len(families))),
    }


def saved_recipe(metadata: dict) -> tuple[str, Callable[[int], object]]:
    """Return the registry name of a saved model's recipe and a ``build(seed)`` that makes it afresh.

    A format-1 paper CNN is ``cnn`` (or the ``cnn-l2`` / ``cnn-dropout`` its
    metadata names) with its saved batch size; a format-2 model names its recipe, its
    ensemble members and whether it was tuned. A network is retrained (no early stopping,
    as the shipped CNN's recipe) for the epochs its saved weights had: ``best_epoch``, the
    epoch early stopping kept (the last epoch of a network trained without validation),
    else the saved epoch cap.

    Raises
    ------
    ModelError
        If the metadata names no recipe.
    """
    from genrekit.core.errors import ModelError
    from genrekit.models.registry import ENSEMBLE_MEMBERS, make_model

    if metadata["kind"] == "paper-cnn":
        training = metadata["training"]
        name = metadata.get("recipe", {}).get("name", "cnn")  # cnn-l2 and cnn-dropout name themselves

        def build_cnn(seed: int) -> object:
            model = make_model(name, seed, epochs=_trained_epochs(training))
            return model.set_params(batch_size=training["batch_size"])

        return name, build_cnn
    recipe = metadata.get("recipe")
    if not isinstance(recipe, dict) or "name" not in recipe:
        raise ModelError("the model's metadata does not name its recipe; cannot retrain it to explain it")
    members = tuple(member["name"] for member in recipe.get("members", [])) or ENSEMBLE_MEMBERS
    tune = bool(recipe.get("tuned", True))
    epochs = _trained_epochs(metadata.get("model", {}).get("training", {}))  # networks (cnn-gru, ...)
    return recipe["name"], lambda seed: make_model(
        recipe["name"], seed, tune=tune, members=members, epochs=epochs
    )


def _trained_epochs(training: dict) -> int:
    """Return the epochs behind a saved network's weights: ``best_epoch``, else ``epochs`` (default 200)."""
    return int(training.get("best_epoch") or training.get("epochs", 200))
