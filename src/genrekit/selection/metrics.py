"""Metrics of a classifier's test predictions and summaries over repeated runs.

Everything is computed with scikit-learn's metric functions; this module only
puts the numbers in the shapes the report needs (genre names on every axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

SCALAR_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc_macro",
)
"""The per-run scalar metrics returned by :func:`score_run`, in report order."""


def predicted_labels(proba: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Return the most probable class of each row of `proba` (first class on ties)."""
    return np.asarray(classes)[np.argmax(proba, axis=1)]


def roc_auc_per_class(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """One-vs-rest ROC-AUC of each class from predicted probabilities.

    Parameters
    ----------
    y_true : array-like of str, shape (n,)
        True labels.
    proba : numpy.ndarray, shape (n, n_classes)
        Predicted probabilities, columns in `classes` order.
    classes : sequence of str
        Class names.

    Returns
    -------
    dict
        ``{class: auc}``; NaN for a class absent from (or the only one in) `y_true`.
    """
    y_true = np.asarray(y_true)
    result = {}
    for column, name in enumerate(classes):
        positive = y_true == name
        if positive.all() or not positive.any():
            result[name] = float("nan")
        else:
            result[name] = float(roc_auc_score(positive, proba[:, column]))
    return result


def score_run(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Scalar metrics of one run: accuracy, macro/weighted precision, recall, F1 and macro ROC-AUC.

    Parameters
    ----------
    y_true : array-like of str, shape (n,)
        True labels of the test rows.
    proba : numpy.ndarray, shape (n, n_classes)
        Predicted probabilities, columns in `classes` order; the prediction is
        the most probable class.
    classes : sequence of str
        Class names.

    Returns
    -------
    dict
        Keys :data:`SCALAR_METRICS`. Precision of a class never predicted counts
        as 0 (scikit-learn's ``zero_division=0``). ``roc_auc_macro`` is the mean
        one-vs-rest AUC over the classes present in `y_true`.
    """
    y_true = np.asarray(y_true)
    y_pred = predicted_labels(proba, classes)
    labels = list(classes)
    scores: dict[str, float] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        present = [name for name in labels if np.any(y_true == name)]
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=present, average=average, zero_division=0
        )
        scores[f"precision_{average}"] = float(p)
        scores[f"recall_{average}"] = float(r)
        scores[f"f1_{average}"] = float(f)
    scores["roc_auc_macro"] = float(np.nanmean(list(roc_auc_per_class(y_true, proba, classes).values())))
    return {name: scores[name] for name in SCALAR_METRICS}


def file_accuracy(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], sources: Sequence[str]
) -> tuple[float, int]:
    """Accuracy per source file: each file's prediction is the argmax of the mean of its rows' probabilities.

    For a table of segments (or of augmented copies), the rows of one source clip
    (:func:`genrekit.datasets.table.source_clip`) are averaged as ``genrekit predict`` averages a
    file's windows; the file is right when that prediction is its label.

    Parameters
    ----------
    y_true : array-like of str, shape (n,)
        True labels of the test rows (one label per source clip).
    proba : numpy.ndarray, shape (n, n_classes)
        Their predicted probabilities, columns in `classes` order.
    classes : sequence of str
        Class names.
    sources : array-like of str, shape (n,)
        The source clip of each test row.

    Returns
    -------
    accuracy : float
        Share of the source clips predicted right.
    n_files : int
        Number of source clips.
    """
    codes = np.unique(np.asarray(sources, dtype=str), return_inverse=True)[1].ravel()
    n_files = int(codes.max()) + 1
    sums = np.zeros((n_files, proba.shape[1]))
    np.add.at(sums, codes, proba)  # the argmax of the sum is the argmax of the mean
    first = np.zeros(n_files, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # a row of each file, for its label
    right = predicted_labels(sums, classes) == np.asarray(y_true)[first]
    return float(right.mean()), n_files


def confusion_frame(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """Confusion matrix with genre names: rows true, columns predicted.

    Parameters
    ----------
    y_true, y_pred : array-like of str, shape (n,)
        True and predicted labels.
    labels : sequence of str
        Row/column order.

    Returns
    -------
    pandas.DataFrame
        Integer counts, index ``true`` and columns ``predicted`` named by `labels`.
    """
    matrix = confusion_matrix(y_true, y_pred, labels=list(labels))
    return pd.DataFrame(
        matrix,
        index=pd.Index(list(labels), name="true"),
        columns=pd.Index(list(labels), name="predicted"),
    )


def classification_table(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, with macro and weighted averages.

    Parameters
    ----------
    y_true, y_pred : array-like of str, shape (n,)
        True and predicted labels.
    labels : sequence of str
        Classes, in row order.

    Returns
    -------
    pandas.DataFrame
        Columns ``precision, recall, f1, support``; one row per class then
        ``macro avg`` and ``weighted avg`` (support: the number of rows),
        as in :func:`sklearn.metrics.classification_report`.
    """
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    table = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=labels)
    for average in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        table.loc[f"{average} avg"] = [ap, ar, af, int(s.sum())]
    table["support"] = table["support"].astype(int)
    return table


def confused_pairs(confusion: pd.DataFrame, top: int = 5) -> list[dict[str, object]]:
    """Return the most confused pairs of classes, counting both directions.

    Parameters
    ----------
    confusion : pandas.DataFrame
        A square confusion matrix (rows true, columns predicted), as from
        :func:`confusion_frame`.
    top : int
        How many pairs to return.

    Returns
    -------
    list of dict
        ``{"pair": (a, b), "a_as_b": n, "b_as_a": m, "total": n + m}``, largest
        total first (ties by the class order); pairs with no confusion are left out.
    """
    labels = list(confusion.index)
    counts = confusion.to_numpy()
    pairs = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            total = int(counts[i, j] + counts[j, i])
            if total:
                pairs.append(
                    {
                        "pair": (labels[i], labels[j]),
                        "a_as_b": int(counts[i, j]),
                        "b_as_a": int(counts[j, i]),
                        "total": total,
                    }
                )
    pairs.sort(key=lambda item: -item["total"])
    return pairs[:top]


def example_predictions(
    filenames: Sequence[str], y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], n: int = 8
) -> list[dict[str, object]]:
    """Pick example predictions: the most confident mistakes, then the most confident hits.

    Parameters
    ----------
    filenames : sequence of str
        File of each row.
    y_true : array-like of str
        True labels.
    proba : numpy.ndarray, shape (n_rows, n_classes)
        Predicted probabilities.
    classes : sequence of str
        Class names (columns of `proba`).
    n : int
        Number of examples; up to half are mistakes.

    Returns
    -------
    list of dict
        ``{"file", "true", "predicted", "probability", "correct"}``; `probability`
        is that of the predicted class.
    """
    y_true = np.asarray(y_true)
    y_pred = predicted_labels(proba, classes)
    confidence = proba.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    wrong = [i for i in order if y_pred[i] != y_true[i]][: n // 2]
    right = [i for i in order if y_pred[i] == y_true[i]][: n - len(wrong)]
    return [
        {
            "file": str(filenames[i]),
            "true": str(y_true[i]),
            "predicted": str(y_pred[i]),
            "probability": float(confidence[i]),
            "correct": bool(y_pred[i] == y_true[i]),
        }
        for i in wrong + right
    ]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of `values`.

    Parameters
    ----------
    values : sequence of float
        One value per repeat or fold (at least 2 for a finite interval).
    confidence : float
        Coverage of the interval.

    Returns
    -------
    (float, float)
        ``mean -/+ t_{(1+confidence)/2, n-1} * s / sqrt(n)``, with ``s`` the sample
        standard deviation (ddof 1). NaN bounds for fewer than 2 values; the
        mean itself for zero spread.
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean - float(half), mean + float(half)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (e.g. accuracy over `trials` files).

    Parameters
    ----------
    successes, trials : int
        Counts (``0 <= successes <= trials``).
    confidence : float
        Coverage of the interval.

    Returns
    -------
    (float, float)
        The interval; NaN bounds when `trials` is 0.
    """
    if trials == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf((1 + confidence) / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return float(low), float(high)


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation and t-interval of repeated measurements.

    Parameters
    ----------
    values : sequence of float
        One value per repeat or fold.
    confidence : float
        Coverage of the interval (see :func:`t_interval`).

    Returns
    -------
    dict
        ``mean``, ``std`` (ddof 1; 0 for a single value), ``ci_low``, ``ci_high``, ``n``.
    """
    values = np.asarray(values, dtype=float)
    low, high = t_interval(values, confidence)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "ci_low": low,
        "ci_high": high,
        "n": len(values),
    }
