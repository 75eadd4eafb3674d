from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from genrekit.core.schema import FEATURE_NAMES, GENRES
from genrekit.selection.metrics import (
    SCALAR_METRICS,
    classification_table,
    confused_pairs,
    confusion_frame,
    example_predictions,
    predicted_labels,
    roc_auc_per_class,
    score_run,
    summarize,
    t_interval,
)
from genrekit.selection.protocols import paper_splits


@pytest.fixture(scope="module")
def predictions(gtzan_table: Path):
    """Real test-set predictions of a quick baseline on the paper split (seed 0)."""
    table = pd.read_csv(gtzan_table)
    X = table[list(FEATURE_NAMES)].to_numpy(float)
    y = table["label"].to_numpy()
    split = paper_splits(y, [0])[0]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(
        X[split.train], y[split.train]
    )
    proba = model.predict_proba(X[split.test])
    assert list(model.classes_) == list(GENRES)
    return y[split.test], proba, model.predict(X[split.test]), table["filename"].to_numpy()[split.test]


def test_predicted_labels_is_the_models_prediction(predictions):
    _, proba, y_model, _ = predictions
    np.testing.assert_array_equal(predicted_labels(proba, GENRES), y_model)


def test_score_run_matches_sklearn(predictions):
    y_true, proba, y_pred, _ = predictions
    scores = score_run(y_true, proba, GENRES)
    assert list(scores) == list(SCALAR_METRICS)
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        assert scores[f"precision_{average}"] == pytest.approx(
            precision_score(y_true, y_pred, average=average, zero_division=0)
        )
        assert scores[f"recall_{average}"] == pytest.approx(recall_score(y_true, y_pred, average=average))
        assert scores[f"f1_{average}"] == pytest.approx(f1_score(y_true, y_pred, average=average))
    assert scores["roc_auc_macro"] == pytest.approx(
        roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=list(GENRES))
    )
    assert 0.5 < scores["accuracy"] < 0.9


def test_roc_auc_per_class_matches_sklearn(predictions):
    y_true, proba, _, _ = predictions
    auc = roc_auc_per_class(y_true, proba, GENRES)
    expected = roc_auc_score(y_true, proba, multi_class="ovr", average=None, labels=list(GENRES))
    np.testing.assert_allclose([auc[g] for g in GENRES], expected)
    assert np.isnan(roc_auc_per_class(np.array(["rock", "rock"]), proba[:2], GENRES)["rock"])


def test_confusion_frame_has_genre_names(predictions):
    y_true, _, y_pred, _ = predictions
    frame = confusion_frame(y_true, y_pred, GENRES)
    assert list(frame.index) == list(GENRES) and list(frame.columns) == list(GENRES)
    np.testing.assert_array_equal(frame.to_numpy(), confusion_matrix(y_true, y_pred, labels=list(GENRES)))
    assert frame.loc["blues"].sum() == 10


def test_classification_table_matches_sklearn_report(predictions):
    y_true, _, y_pred, _ = predictions
    table = classification_table(y_true, y_pred, GENRES)
    report = classification_report(y_true, y_pred, labels=list(GENRES), output_dict=True, zero_division=0)
    assert list(table.index) == [*GENRES, "macro avg", "weighted avg"]
    for name in table.index:
        assert table.loc[name, "precision"] == pytest.approx(report[name]["precision"])
        assert table.loc[name, "recall"] == pytest.approx(report[name]["recall"])
        assert table.loc[name, "f1"] == pytest.approx(report[name]["f1-score"])
        assert table.loc[name, "support"] == report[name]["support"]


def test_confused_pairs_count_both_directions(predictions):
    y_true, _, y_pred, _ = predictions
    frame = confusion_frame(y_true, y_pred, GENRES)
    pairs = confused_pairs(frame, top=5)
    counts = frame.to_numpy()
    symmetric = counts + counts.T
    off_diagonal = sorted((symmetric[i, j] for i in range(10) for j in range(i + 1, 10)), reverse=True)
    assert [p["total"] for p in pairs] == [int(v) for v in off_diagonal[:5] if v]
    for pair in pairs:
        a, b = pair["pair"]
        assert pair["a_as_b"] == frame.loc[a, b] and pair["b_as_a"] == frame.loc[b, a]
        assert GENRES.index(a) < GENRES.index(b)


def test_confused_pairs_on_a_known_matrix():
    frame = confusion_frame(["a", "a", "b", "b", "c"], ["b", "a", "a", "c", "c"], ["a", "b", "c"])
    assert confused_pairs(frame) == [
        {"pair": ("a", "b"), "a_as_b": 1, "b_as_a": 1, "total": 2},
        {"pair": ("b", "c"), "a_as_b": 1, "b_as_a": 0, "total": 1},
    ]


def test_example_predictions_show_mistakes_then_hits(predictions):
    y_true, proba, y_pred, files = predictions
    rows = example_predictions(files, y_true, proba, GENRES, n=6)
    assert len(rows) == 6
    wrong = [row for row in rows if not row["correct"]]
    assert wrong and rows[: len(wrong)] == wrong
    for row in rows:
        i = list(files).index(row["file"])
        assert row["true"] == y_true[i] and row["predicted"] == y_pred[i]
        assert row["probability"] == pytest.approx(proba[i].max())


def test_t_interval_matches_scipy():
    values = [0.61, 0.66, 0.70, 0.64, 0.68]
    low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)
    assert all(np.isnan(t_interval([0.5])))


def test_summarize():
    summary = summarize([0.5, 0.7])
    assert summary["mean"] == pytest.approx(0.6)
    assert summary["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary["n"] == 2
    assert summary["ci_low"] < 0.5 and summary["ci_high"] > 0.7
    single = summarize([0.4])
    assert single["std"] == 0.0 and np.isnan(single["ci_low"])
