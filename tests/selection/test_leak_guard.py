"""Leak guard: no outer test row ever reaches an inner search or any fit (nested tuning)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from genrekit.datasets.table import feature_matrix, read_table
from genrekit.evaluation import reproduce as reproduce_module
from genrekit.evaluation.reproduce import Settings, Task, run_task
from genrekit.models.registry import make_model
from genrekit.models.transforms import FeatureTransform
from genrekit.selection.protocols import cv_splits
from genrekit.training import recipe as recipe_module


@pytest.fixture(scope="module")
def table(gtzan_table):
    frame = read_table(gtzan_table).iloc[::5]  # 200 rows, 20 per genre
    X, y = feature_matrix(frame), frame["label"].to_numpy(dtype=str)
    assert len({row.tobytes() for row in X}) == len(X)  # rows identify themselves
    return X, y


@pytest.fixture
def recorder(monkeypatch, table):
    """Record the table rows every FeatureTransform.fit (every model fit) and every search receives."""
    X, _ = table
    index = {row.tobytes(): i for i, row in enumerate(X)}
    seen: dict[str, list[set[int]]] = {"fit": [], "search": []}

    def rows_of(data) -> set[int]:
        return {index[np.asarray(row, dtype=np.float64).tobytes()] for row in np.asarray(data)}

    def wrap(kind, original):
        @functools.wraps(original)
        def recording(self, data, *args, **kwargs):
            seen[kind].append(rows_of(data))
            return original(self, data, *args, **kwargs)

        return recording

    monkeypatch.setattr(FeatureTransform, "fit", wrap("fit", FeatureTransform.fit))
    monkeypatch.setattr(GridSearchCV, "fit", wrap("search", GridSearchCV.fit))
    return seen


SMALL_MEMBERS = ("logreg", "knn-tuned", "extratrees")


def _assert_clean(seen, train, test):
    train, test = set(train.tolist()), set(test.tolist())
    assert seen["search"] and seen["fit"]
    for rows in seen["search"] + seen["fit"]:
        assert rows <= train and not rows & test
    assert any(rows == train for rows in seen["fit"])  # the refit on all training rows
    assert any(len(rows) < len(train) for rows in seen["fit"])  # the inner folds' fits


@pytest.mark.parametrize("name", ["svm-tuned", "stacking"])
def test_reproduce_runs_never_see_test_rows(table, recorder, monkeypatch, name):
    X, y = table
    monkeypatch.setattr(reproduce_module, "make_recipe", functools.partial(make_model, members=SMALL_MEMBERS))
    split = cv_splits(y, n_folds=5, seed=0)[2]
    result = run_task(Task(split, name), X, y, np.unique(y), Settings())
    _assert_clean(recorder, split.train, split.test)
    assert result["chosen"]  # what the inner search chose is recorded


def test_the_shipped_recipe_never_sees_a_fold_test_row(table, recorder, monkeypatch):
    X, y = table
    monkeypatch.setattr(recipe_module, "make_model", functools.partial(make_model, members=SMALL_MEMBERS))
    seen_by_fold = []
    original = recipe_module.heldout_logits

    def per_fold(model, X_test):
        seen_by_fold.append({key: list(value) for key, value in recorder.items()})
        for value in recorder.values():
            value.clear()
        return original(model, X_test)

    monkeypatch.setattr(recipe_module, "heldout_logits", per_fold)
    _, metadata = recipe_module.fit_final(X, y, n_folds=3, model="ensemble")
    for split, seen in zip(cv_splits(y, 3, 0), seen_by_fold, strict=True):
        _assert_clean(seen, np.concatenate([split.train, split.val]), split.test)
    assert len(metadata["cross_validation"]["chosen"]) == 3
