"""Learning a library's own genres from the files it already has tagged.

The input is what a catalogue stores: the features of every 30-second window of
every file, the file each window belongs to, and the label of the tagged files
(see :mod:`genrekit.library.taxonomy`). Everything here works on those arrays,
whatever stores them.

* **Grouped cross-validation** (:func:`cross_validate`): folds are drawn over
  files (:class:`~sklearn.model_selection.StratifiedGroupKFold`, stratified by
  label), so the windows of one file are never on both sides of a split. A
  file's prediction is the mean of its windows' probabilities; accuracy is
  counted per file, overall and per genre, with intervals.
* **Options that are measured, not guessed** (:func:`compare_options`): with or
  without extra labelled rows from another collection (the GTZAN table), and
  with the collection's own feature standardisation (each collection z-scored
  by its own mean and standard deviation: the library's statistics come from all
  its windows, tagged and untagged, which uses no label) or one scaler fitted
  on the training rows.
* **Feature sets side by side** (:func:`compare_feature_sets`): the 57 GTZAN
  features of each window, the file's musicnn embedding (``scan --tags``), or
  both side by side, each measured by :func:`compare_options` on the same files
  and the same folds (a file's embedding is repeated for each of its windows, so
  every set has the same rows, hence the same grouped folds).
* **Out-of-fold use of the figures**: :func:`audit` lists tagged files whose tag
  the model contradicts when that file was held out; :func:`suggest` ranks
  untagged files by how unsure the model is of them (uncertainty sampling).

The classifier is built by :func:`make_classifier`, the one place that names a
model family.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedGroupKFold

from genrekit.core.errors import GenrekitError
from genrekit.library.learn_defaults import DEFAULT_AUDIT_CONFIDENCE, DEFAULT_FOLDS, DEFAULT_MODELS
from genrekit.models.calibrate import (
    DEFAULT_MIN_CONFIDENCE,
    NOVELTY_QUANTILE,
    FeatureNovelty,
    fit_temperature,
    scaled_probabilities,
)
from genrekit.selection.metrics import summarize, wilson_interval


def default_models() -> tuple[tuple[str, ...], dict[str, str]]:
    """Return the :data:`DEFAULT_MODELS` that can be built here, and why any other is left out.

    ``gbm`` needs LightGBM, the optional extra ``genrekit[gbm]``.
    """
    import importlib.util

    if importlib.util.find_spec("lightgbm") is not None:
        return DEFAULT_MODELS, {}
    missing = {"gbm": "LightGBM is not installed: pip install 'genrekit[gbm]'"}
    return tuple(m for m in DEFAULT_MODELS if m not in missing), missing


DEFAULT_MODEL: str = "logreg"
"""Recipe of :class:`LibraryClassifier` when none is named."""


class LearnError(GenrekitError):
    """Too little or inconsistent data to learn from."""


def make_classifier(name: str = DEFAULT_MODEL, random_state: int = 0):
    """Return an unfitted classifier for window features: a recipe of the model registry, untuned.

    The recipe's inner hyperparameter search is left out: its folds are drawn
    over rows, and the windows of one file would sit on both sides of them.

    Parameters
    ----------
    name : str
        A recipe of :mod:`genrekit.models.registry` that trains on rows alone
        (not the CNNs, which need validation rows).
    random_state : int
        Seed of the recipe.

    Returns
    -------
    estimator
        A scikit-learn classifier with ``predict_proba``, saved without pickle by
        :func:`genrekit.models.io.save_model`.

    Raises
    ------
    GenrekitError
        For an unknown recipe, a CNN, or a missing optional package.
    """
    from genrekit.models.registry import make_model, recipe

    if recipe(name).uses_validation:
        raise LearnError(f"model {name!r} needs validation rows; choose a recipe that trains on rows alone")
    return make_model(name, random_state, tune=False)


@dataclass(frozen=True)
class Extra:
    """Labelled rows from another collection (e.g. the GTZAN table), added to every training set.

    Attributes
    ----------
    features : ndarray of shape (n, n_features)
        Their features.
    labels : ndarray of str, shape (n,)
        Their classes, already in the library's taxonomy.
    name : str
        What they are, for reports.
    """

    features: np.ndarray
    labels: np.ndarray
    name: str = "extra"


class LibraryClassifier(ClassifierMixin, BaseEstimator):
    """A window classifier with the options :func:`compare_options` measures.

    Parameters
    ----------
    model : str
        The registry recipe (see :func:`make_classifier`).
    own_scaling : bool
        True: every collection is z-scored by its own statistics (the library's
        from the `reference` windows, extra rows by theirs) before the
        classifier. False: rows are used as they are (the classifier's own
        scaling, if any, is fitted on the training rows).
    random_state : int
        Seed of the classifier.

    Attributes
    ----------
    classes_ : ndarray of str
        Class names, in the order of the probability columns.
    pipeline_ : sklearn.pipeline.Pipeline
        ``("library", StandardScaler)`` with the library's statistics (an
        identity when `own_scaling` is False), then ``("model", the fitted recipe)``:
        what :func:`genrekit.models.io.save_model` saves.
    """

    def __init__(self, model: str = DEFAULT_MODEL, own_scaling: bool = True, random_state: int = 0) -> None:
        self.model = model
        self.own_scaling = own_scaling
        self.random_state = random_state

    def fit(
        self, X: np.ndarray, y: Sequence[str], reference: np.ndarray | None = None, extra: Extra | None = None
    ) -> LibraryClassifier:
        """Fit on the library's labelled windows `X`, `y` (and the `extra` rows).

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Labelled windows of the library (may be empty when `extra` is given).
        y : sequence of str
            Their classes.
        reference : ndarray, optional
            The library windows whose statistics standardise it (all windows,
            tagged and untagged); `X` when None (then `X` must not be empty).
        extra : Extra, optional
            Rows from another collection (standardised by their own statistics when `own_scaling`).
        """
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        X = np.asarray(X, dtype=np.float64)
        library = StandardScaler(with_mean=self.own_scaling, with_std=self.own_scaling)
        library.fit(X if reference is None else np.asarray(reference, dtype=np.float64))
        rows, labels = [library.transform(X) if len(X) else X], [np.asarray(y, dtype=object)]
        if extra is not None:
            own = StandardScaler(with_mean=self.own_scaling, with_std=self.own_scaling)
            rows.append(own.fit_transform(np.asarray(extra.features, dtype=np.float64)))
            labels.append(np.asarray(extra.labels, dtype=object))
        target = np.concatenate(labels).astype(str)
        model = make_classifier(self.model, self.random_state).fit(np.concatenate(rows), target)
        self.pipeline_ = Pipeline([("library", library), ("model", model)])
        self.classes_ = np.asarray(model.classes_).astype(str)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the class probabilities of each window (columns in ``classes_`` order)."""
        return self.pipeline_.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the most probable class of each window."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def file_means(values: np.ndarray, window_file: np.ndarray, n_files: int) -> np.ndarray:
    """Mean of the rows of `values` per file (``window_file[i]`` is the file index of row ``i``)."""
    sums = np.zeros((n_files, values.shape[1]))
    np.add.at(sums, window_file, values)
    counts = np.bincount(window_file, minlength=n_files)
    return sums / np.maximum(counts, 1)[:, None]


@dataclass(frozen=True)
class Windows:
    """The windows of a library: features and the file each belongs to.

    Attributes
    ----------
    features : ndarray of shape (n_windows, n_features)
        Window features.
    file_ids : ndarray of str, shape (n_windows,)
        The file of each window.
    """

    features: np.ndarray
    file_ids: np.ndarray

    def __post_init__(self) -> None:
        if len(self.features) != len(self.file_ids):
            raise LearnError(f"{len(self.features)} feature rows but {len(self.file_ids)} file ids")

    def files(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the distinct files (first-appearance order) and each window's index into them."""
        ids, first, inverse = np.unique(self.file_ids, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return ids[order], rank[inverse]


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions of the tagged files of a library.

    Attributes
    ----------
    classes : tuple of str
        Class names, in the order of the probability columns.
    files : ndarray of str
        The tagged files, in the library's order.
    labels : ndarray of str
        Their classes.
    proba : ndarray of shape (n_files, n_classes)
        Each file's out-of-fold probabilities (mean over its windows,
        temperature-scaled, see `temperature`).
    fold : ndarray of int
        The fold in which each file was held out.
    temperature : float
        Fitted on the out-of-fold window log-probabilities (it changes no
        prediction, only how sure they are).
    heldout_novelty : ndarray
        Distance of each held-out window from its fold's training windows (for
        the novelty threshold of the final model).
    options : dict
        The options that produced it.
    """

    classes: tuple[str, ...]
    files: np.ndarray
    labels: np.ndarray
    proba: np.ndarray
    fold: np.ndarray
    temperature: float
    heldout_novelty: np.ndarray
    options: dict = field(default_factory=dict)

    @property
    def predicted(self) -> np.ndarray:
        """The most probable class of each file."""
        return np.asarray(self.classes)[np.argmax(self.proba, axis=1)]

    def accuracy(self) -> dict:
        """File accuracy: pooled over folds with a Wilson 95% interval, and per fold (t-interval)."""
        correct = self.predicted == self.labels
        low, high = wilson_interval(int(correct.sum()), len(correct))
        per_fold = [float(correct[self.fold == k].mean()) for k in np.unique(self.fold)]
        return {
            "accuracy": float(correct.mean()),
            "ci_low": low,
            "ci_high": high,
            "files": len(correct),
            "folds": summarize(per_fold),
        }

    def per_genre(self) -> dict[str, dict]:
        """Recall (share of a genre's files called that genre) and precision per class, with intervals."""
        predicted = self.predicted
        table = {}
        for name in self.classes:
            mine, called = self.labels == name, predicted == name
            hits = int((mine & called).sum())
            low, high = wilson_interval(hits, int(mine.sum()))
            table[name] = {
                "files": int(mine.sum()),
                "recall": hits / max(int(mine.sum()), 1),
                "ci_low": low,
                "ci_high": high,
                "precision": hits / int(called.sum()) if called.any() else float("nan"),
            }
        return table

    def confident(self, min_confidence: float) -> dict:
        """Share of files whose top probability reaches `min_confidence`, and their accuracy."""
        sure = self.proba.max(axis=1) >= min_confidence
        right = self.predicted[sure] == self.labels[sure]
        low, high = wilson_interval(int(right.sum()), int(sure.sum()))
        return {
            "min_confidence": min_confidence,
            "coverage": float(sure.mean()),
            "accuracy": float(right.mean()) if sure.any() else float("nan"),
            "ci_low": low,
            "ci_high": high,
        }

    def to_dict(self, min_confidence: float) -> dict:
        """Return the figures, JSON-ready."""
        return {
            "options": self.options,
            **self.accuracy(),
            "per_genre": self.per_genre(),
            "confident": self.confident(min_confidence),
            "temperature": self.temperature,
        }


def _labelled(windows: Windows, labels: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of labelled windows, their labels and their file index among the labelled files."""
    rows = np.flatnonzero([file_id in labels for file_id in windows.file_ids])
    if len(rows) == 0:
        raise LearnError("no window belongs to a labelled file")
    sub = Windows(windows.features[rows], windows.file_ids[rows])
    window_file = sub.files()[1]
    return rows, np.asarray([labels[f] for f in sub.file_ids]), window_file


def n_folds(labels: Sequence[str], wanted: int = DEFAULT_FOLDS) -> int:
    """Folds for grouped CV: `wanted`, or fewer when the rarest class has fewer files.

    Raises
    ------
    LearnError
        If fewer than two classes, or a class with a single file.
    """
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    if len(counts) < 2:
        raise LearnError(f"need at least two genres with tagged files, found {len(counts)}")
    if counts.min() < 2:
        raise LearnError("every genre needs at least two tagged files for cross-validation")
    return int(min(wanted, counts.min()))


def grouped_folds(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Return the fold of each row: stratified by label, every group (file) within one fold."""
    fold = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        fold[test] = k
    return fold


def _aligned(proba: np.ndarray, have: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Place the columns of `proba` (classes `have`) in the order of `classes` (zeros for absent ones)."""
    out = np.zeros((len(proba), len(classes)))
    position = {name: i for i, name in enumerate(classes)}
    out[:, [position[name] for name in have]] = proba
    return out


def cross_validate(
    windows: Windows,
    labels: Mapping[str, str],
    *,
    model: str = DEFAULT_MODEL,
    own_scaling: bool = True,
    extra: Extra | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> CVResult:
    """Cross-validate a window classifier, grouped by file, on a library's tagged files.

    Parameters
    ----------
    windows : Windows
        Every window of the library, tagged files and untagged ones (the latter
        only feed the library's standardisation when `own_scaling`).
    labels : mapping
        File id -> class, for the tagged files.
    model, own_scaling : see :class:`LibraryClassifier`.
    extra : Extra, optional
        Rows from another collection added to every training fold (never tested on).
    folds : int
        Folds wanted (fewer when a class has fewer files, see :func:`n_folds`).
    seed : int
        Seed of the fold assignment and of the classifier.

    Returns
    -------
    CVResult
        The out-of-fold file probabilities and what produced them.
    """
    rows, y, window_file = _labelled(windows, labels)
    X = windows.features[rows]
    files = np.asarray(Windows(X, windows.file_ids[rows]).files()[0])
    file_labels = np.asarray([labels[f] for f in files])
    k = n_folds(file_labels, folds)
    fold = grouped_folds(y, window_file, k, seed)
    classes = tuple(sorted(set(file_labels)))
    window_proba = np.zeros((len(X), len(classes)))
    novelty = np.zeros(len(X))
    for test_fold in range(k):
        test = fold == test_fold
        clf = LibraryClassifier(model, own_scaling, seed).fit(X[~test], y[~test], windows.features, extra)
        window_proba[test] = _aligned(clf.predict_proba(X[test]), clf.classes_, classes)
        novelty[test] = FeatureNovelty.fit(X[~test]).distance(X[test])
    codes = np.searchsorted(classes, y)
    temperature = fit_temperature(np.log(np.clip(window_proba, 1e-9, None)), codes)
    proba = file_means(
        scaled_probabilities(np.log(np.clip(window_proba, 1e-9, None)), temperature), window_file, len(files)
    )
    options = {
        "model": model,
        "own_scaling": own_scaling,
        "extra": None if extra is None else extra.name,
        "folds": k,
        "seed": seed,
    }
    file_fold = np.zeros(len(files), dtype=np.int64)
    file_fold[window_file] = fold
    return CVResult(classes, files, file_labels, proba, file_fold, temperature, novelty, options)


def option_grid(models: Sequence[str], extra: Extra | None) -> dict[str, dict]:
    """Return the options :func:`compare_options` measures, by name, simplest first.

    Every model family with the library's own standardisation and no extra rows;
    with `extra`, also with the extra rows under each standardisation (own:
    each collection z-scored by its own statistics; training: the rows as they
    are). Without extra rows the two standardisations differ only in whether
    the untagged files' statistics take part, so only own is measured.
    """
    grid = {}
    for model in models:
        settings = [(True, False)] + ([(True, True), (False, True)] if extra is not None else [])
        for own, use_extra in settings:
            rows = f"with {extra.name}" if use_extra else "no extra rows"
            name = f"{model}, {'own' if own else 'training'} scaling, {rows}"
            grid[name] = {"model": model, "own_scaling": own, "extra": use_extra, "name": name}
    return grid


def compare_options(
    windows: Windows,
    labels: Mapping[str, str],
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    extra: Extra | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> tuple[dict, dict[str, CVResult]]:
    """Cross-validate every option of :func:`option_grid` and choose the best out-of-fold file accuracy.

    All options are measured on the same folds. Ties go to the option listed
    first (the simpler). The chosen figure is the best of a few on the same
    folds, so it is slightly optimistic; the report gives all of them.

    Returns
    -------
    chosen : dict
        ``{"model": str, "own_scaling": bool, "extra": bool, "name": str}``.
    results : dict
        Option name (e.g. ``"gbm, own scaling, no extra rows"``) -> its :class:`CVResult`.
    """
    grid = option_grid(models, extra)
    results = {
        name: cross_validate(
            windows,
            labels,
            model=option["model"],
            own_scaling=option["own_scaling"],
            extra=extra if option["extra"] else None,
            folds=folds,
            seed=seed,
        )
        for name, option in grid.items()
    }
    best = max(results, key=lambda name: results[name].accuracy()["accuracy"])
    return grid[best], results


FEATURE_SETS: tuple[str, ...] = ("gtzan", "embedding", "both")
"""Feature sets :func:`compare_feature_sets` measures: the 57 features, the embedding, both."""


def feature_set(windows: Windows, embeddings: Mapping[str, np.ndarray], name: str) -> Windows:
    """Return the windows of the files that have an embedding, with the features of set `name`.

    Parameters
    ----------
    windows : Windows
        The library's windows (57 features each).
    embeddings : mapping
        File id -> its embedding (one vector per file).
    name : {"gtzan", "embedding", "both"}
        ``gtzan``: the 57 features; ``embedding``: the file's embedding on each of its
        windows; ``both``: the two side by side.
    """
    if name not in FEATURE_SETS:
        raise LearnError(f"unknown feature set {name!r}; choose from {', '.join(FEATURE_SETS)}")
    rows = np.flatnonzero([file_id in embeddings for file_id in windows.file_ids])
    ids = windows.file_ids[rows]
    gtzan = windows.features[rows]
    if name == "gtzan":
        return Windows(gtzan, ids)
    width = len(next(iter(embeddings.values()))) if embeddings else 0
    embedded = np.asarray([embeddings[f] for f in ids], dtype=np.float64).reshape(len(ids), width)
    return Windows(embedded if name == "embedding" else np.hstack([gtzan, embedded]), ids)


def compare_feature_sets(
    windows: Windows,
    embeddings: Mapping[str, np.ndarray],
    labels: Mapping[str, str],
    *,
    sets: Sequence[str] = FEATURE_SETS,
    models: Sequence[str] = DEFAULT_MODELS,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> dict:
    """Measure each feature set with :func:`compare_options` on the same files and folds.

    Only the labelled files that have an embedding take part (the others are counted), so the
    sets are compared on the same files; no extra rows are added (they have no embedding).

    Returns
    -------
    dict
        ``files`` (labelled files compared), ``left_out`` (labelled files without an
        embedding), ``protocol`` and, per set, ``{"chosen", "accuracy", "ci_low", "ci_high",
        "per_genre", "options"}``: the best option's figures and every option's accuracy.

    Raises
    ------
    LearnError
        If fewer than two classes have labelled files with an embedding.
    """
    kept = {f: label for f, label in labels.items() if f in embeddings}
    if len(set(kept.values())) < 2:
        raise LearnError(
            f"{len(kept)} labelled files have an embedding ({len(set(kept.values()))} genre(s)); "
            "comparing feature sets needs two genres or more (run genrekit scan --tags)"
        )
    report: dict = {"files": len(kept), "left_out": len(labels) - len(kept)}
    for name in sets:
        chosen, results = compare_options(
            feature_set(windows, embeddings, name), kept, models=models, folds=folds, seed=seed
        )
        best = results[chosen["name"]]
        figures = best.to_dict(min_confidence)
        report["protocol"] = f"cross-validation grouped by file, {best.options['folds']} folds, seed {seed}"
        report[name] = {
            "chosen": chosen["name"],
            **{key: figures[key] for key in ("accuracy", "ci_low", "ci_high", "per_genre")},
            "options": {option: result.accuracy()["accuracy"] for option, result in results.items()},
        }
    return report


def audit(
    files: Sequence[str],
    labels: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    classes_of: Mapping[str, Sequence[str]] | None = None,
    min_confidence: float = DEFAULT_AUDIT_CONFIDENCE,
) -> list[dict]:
    """Tagged files whose tag the out-of-fold model confidently contradicts, most confident first.

    Parameters
    ----------
    files : sequence of str
        Tagged files.
    labels : sequence of str
        Their classes (their tag).
    proba : ndarray of shape (n_files, n_classes)
        Their out-of-fold probabilities (each file predicted by a model that
        never saw it), e.g. ``CVResult.proba``.
    classes : sequence of str
        Column names of `proba`.
    classes_of : mapping, optional
        File id -> every class its tag names; a prediction among them is no
        contradiction (a file tagged "Rock; Pop" predicted pop). Its label only
        when omitted.
    min_confidence : float
        Out-of-fold probability of the predicted genre from which a file is listed.

    Returns
    -------
    list of dict
        ``file``, ``tag``, ``predicted``, ``probability`` (of the prediction),
        ``tag_probability``.
    """
    classes_of = classes_of or {}
    proba = np.asarray(proba, dtype=np.float64)
    best = np.argmax(proba, axis=1)
    position = {name: i for i, name in enumerate(classes)}
    found = []
    for i, file_id in enumerate(files):
        predicted = str(classes[best[i]])
        if predicted in classes_of.get(file_id, (labels[i],)) or proba[i, best[i]] < min_confidence:
            continue
        found.append(
            {
                "file": str(file_id),
                "tag": str(labels[i]),
                "predicted": predicted,
                "probability": float(proba[i, best[i]]),
                "tag_probability": float(proba[i, position[labels[i]]]),
            }
        )
    return sorted(found, key=lambda row: -row["probability"])


def suggest(files: Sequence[str], proba: np.ndarray, classes: Sequence[str], n: int = 20) -> list[dict]:
    """Rank untagged files, least sure first (smallest margin between the two best genres); keep `n`.

    Labelling them helps the model most under uncertainty sampling (Lewis & Gale
    1994; margin sampling, Scheffer et al. 2001).

    Parameters
    ----------
    files : sequence of str
        Untagged files.
    proba : ndarray of shape (n_files, n_classes)
        Their predicted probabilities.
    classes : sequence of str
        Column names of `proba`.
    n : int
        How many to return.

    Returns
    -------
    list of dict
        ``file``, ``margin`` (top minus second probability), ``entropy`` (nats),
        ``guesses`` (the two best genres with probabilities), least sure first.
    """
    if len(files) == 0:
        return []
    proba = np.asarray(proba, dtype=np.float64)
    order = np.argsort(-proba, axis=1)
    rows = np.arange(len(proba))
    margin = proba[rows, order[:, 0]] - proba[rows, order[:, 1]] if proba.shape[1] > 1 else proba[:, 0]
    entropy = -(proba * np.log(np.clip(proba, 1e-12, None))).sum(axis=1)
    ranked = np.lexsort((-entropy, margin))[:n]
    return [
        {
            "file": str(files[i]),
            "margin": float(margin[i]),
            "entropy": float(entropy[i]),
            "guesses": [(str(classes[j]), float(proba[i, j])) for j in order[i, :2]],
        }
        for i in ranked
    ]


@dataclass(frozen=True)
class LearnedModel:
    """A classifier fitted on all tagged files, with the calibration its cross-validation gave.

    Attributes
    ----------
    classifier : LibraryClassifier
        Fitted on every labelled window.
    temperature : float
        Divides the window log-probabilities before the softmax (from the CV).
    novelty : FeatureNovelty
        Distance from the labelled windows; its threshold is a high quantile of
        the held-out distances of the CV.
    """

    classifier: LibraryClassifier
    temperature: float
    novelty: FeatureNovelty

    @property
    def classes_(self) -> np.ndarray:
        """Class names, in the order of the probability columns."""
        return self.classifier.classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the calibrated class probabilities of each window."""
        log_proba = np.log(np.clip(self.classifier.predict_proba(X), 1e-9, None))
        return scaled_probabilities(log_proba, self.temperature)

    def calibration(self) -> dict:
        """Return the ``calibration`` metadata :class:`genrekit.prediction.model.GenreModel` reads."""
        return {
            "temperature": self.temperature,
            "novelty": self.novelty.to_dict(),
            "fitted_on": "out-of-fold windows of the grouped cross-validation",
        }

    def save(self, directory: str | os.PathLike[str], metadata: dict) -> None:
        """Save as a genrekit model folder (no pickle), loadable by :func:`genrekit.load_model`.

        Parameters
        ----------
        directory : path-like
            The model folder (replaced atomically).
        metadata : dict
            Extra fields of ``model.json`` (taxonomy, training files, figures).
        """
        from genrekit.models.io import save_model

        save_model(self.classifier.pipeline_, directory, {"calibration": self.calibration(), **metadata})


def predict_files(model, windows: Windows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the files of `windows`, their probabilities (window mean) and whether each is familiar.

    Parameters
    ----------
    model : LearnedModel or GenreModel
        Anything with ``predict_proba`` of feature rows (calibrated) and a
        ``novelty`` (:class:`FeatureNovelty` or None).
    windows : Windows
        The windows of the files to predict.

    Returns
    -------
    files : ndarray of str
        The files, in first-appearance order.
    proba : ndarray of shape (n_files, n_classes)
        Mean of each file's window probabilities.
    familiar : ndarray of bool
        Whether the median distance of a file's windows from the training
        windows is within the novelty threshold (all True without novelty).
    """
    files, window_file = windows.files()
    proba = file_means(model.predict_proba(windows.features), window_file, len(files))
    if model.novelty is None:
        return files, proba, np.ones(len(files), dtype=bool)
    medians = file_medians(model.novelty.distance(windows.features), window_file, len(files))
    return files, proba, medians <= model.novelty.threshold


def file_medians(values: np.ndarray, window_file: np.ndarray, n_files: int) -> np.ndarray:
    """Median of `values` per file (``window_file[i]`` is the file index of value ``i``; NaN for none)."""
    order = np.argsort(window_file, kind="stable")
    bounds = np.cumsum(np.bincount(window_file, minlength=n_files))[:-1]
    return np.array([np.median(part) if len(part) else np.nan for part in np.split(values[order], bounds)])


@dataclass(frozen=True)
class ClassFamiliarity:
    """Open-set check of a learned model: whether a file is like the training files of its genre.

    For each class, the distance of a file from that class's training windows
    (:class:`FeatureNovelty`, the median over the file's windows) and the
    largest distance accepted: a high quantile of the distances of the class's
    own files when they were held out in the grouped cross-validation. A file
    predicted as a class but farther than its threshold is like none of the
    learned genres: "uncertain".

    Attributes
    ----------
    novelty : dict
        Class -> its :class:`FeatureNovelty` (fitted on all its windows, threshold from the CV).
    report : dict
        Class -> ``threshold``, ``files`` (held out), ``own_accepted`` (of them within the
        threshold), ``other_files``, ``other_accepted`` (held-out files of other classes
        the threshold would let through).
    """

    novelty: dict
    report: dict

    def familiar(self, windows: Windows, predicted: Sequence[str]) -> np.ndarray:
        """Return whether each file of `windows` is within the threshold of its `predicted` class."""
        files, window_file = windows.files()
        predicted = np.asarray(predicted)
        result = np.ones(len(files), dtype=bool)
        for name, novelty in self.novelty.items():
            mine = predicted == name
            if mine.any():
                medians = file_medians(novelty.distance(windows.features), window_file, len(files))
                result[mine] = medians[mine] <= novelty.threshold
        return result

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (see :meth:`from_dict`)."""
        return {name: {**self.report[name], "novelty": n.to_dict()} for name, n in self.novelty.items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> ClassFamiliarity:
        """Rebuild from :meth:`to_dict` output."""
        novelty = {name: FeatureNovelty.from_dict(row["novelty"]) for name, row in data.items()}
        report = {name: {k: v for k, v in row.items() if k != "novelty"} for name, row in data.items()}
        return cls(novelty, report)


def class_familiarity(
    windows: Windows, labels: Mapping[str, str], cv: CVResult, quantile: float = NOVELTY_QUANTILE
) -> ClassFamiliarity:
    """Choose each class's familiarity threshold on the folds of the grouped cross-validation `cv`.

    In every fold, each class's distance model is fitted on its training-fold
    windows and measured on the held-out files; the class's threshold is the
    `quantile` of its own held-out files' distances, so about that share of its
    own unseen files pass. The final models are fitted on all of each class's windows.
    """
    rows, y, window_file = _labelled(windows, labels)
    X = windows.features[rows]
    n_files = len(cv.files)
    window_fold = cv.fold[window_file]
    novelty, report = {}, {}
    for name in cv.classes:
        own, other = [], []
        for k in np.unique(cv.fold):
            train = (y == name) & (window_fold != k)
            if train.sum() < 2:
                continue
            medians = file_medians(FeatureNovelty.fit(X[train]).distance(X), window_file, n_files)
            held = cv.fold == k
            own.extend(medians[held & (cv.labels == name)])
            other.extend(medians[held & (cv.labels != name)])
        threshold = float(np.quantile(own, quantile)) if own else np.inf
        novelty[name] = replace(FeatureNovelty.fit(X[y == name]), threshold=threshold)
        report[name] = {
            "threshold": threshold,
            "files": len(own),
            "own_accepted": int(np.sum(np.asarray(own) <= threshold)),
            "other_files": len(other),
            "other_accepted": int(np.sum(np.asarray(other) <= threshold)),
        }
    return ClassFamiliarity(novelty, report)


def fit_learned(
    windows: Windows, labels: Mapping[str, str], cv: CVResult, extra: Extra | None = None
) -> LearnedModel:
    """Fit the final model on every tagged file with the options and calibration of `cv`.

    Parameters
    ----------
    windows : Windows
        Every window of the library (the untagged ones feed own standardisation).
    labels : mapping
        File id -> class, for the tagged files.
    cv : CVResult
        The cross-validation whose options (model, scaling, extra rows) are used.
    extra : Extra, optional
        The extra rows; used only when `cv` used them.
    """
    rows, y, _ = _labelled(windows, labels)
    options = cv.options
    classifier = LibraryClassifier(options["model"], options["own_scaling"], options["seed"]).fit(
        windows.features[rows], y, windows.features, extra if options["extra"] else None
    )
    novelty = FeatureNovelty.fit(windows.features[rows]).with_threshold(cv.heldout_novelty)
    return LearnedModel(classifier, cv.temperature, novelty)
