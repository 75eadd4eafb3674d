"""Tests for the scikit-learn baselines (genrekit.models.baselines)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from genrekit.core.schema import FEATURE_NAMES
from genrekit.datasets.table import feature_matrix, read_table
from genrekit.models.baselines import BASELINES, make_baseline


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Tiny matrices: several BLAS threads on a shared 2-core machine are ~20x slower than one.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def split(gtzan_table):
    frame = read_table(gtzan_table, labels="gtzan")
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=0)
    return feature_matrix(train), train["label"].to_numpy(), feature_matrix(test), test["label"].to_numpy()


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_fits_and_beats_chance(name, split):
    x_train, y_train, x_test, y_test = split
    model = make_baseline(name, random_state=0)
    assert isinstance(model, Pipeline) and isinstance(model.steps[0][1], StandardScaler)
    model.fit(x_train, y_train)
    # The scaler saw the training rows only.
    np.testing.assert_allclose(model.named_steps["scaler"].mean_, x_train.mean(axis=0))
    proba = model.predict_proba(x_test)
    assert proba.shape == (len(x_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(x_test) == y_test) > 0.5  # chance is 0.1
    assert len(FEATURE_NAMES) == x_train.shape[1]


def test_seeded_baselines_repeat(split):
    x_train, y_train, x_test, _ = split
    first = make_baseline("mlp", random_state=3).fit(x_train[:300], y_train[:300]).predict_proba(x_test)
    second = make_baseline("mlp", random_state=3).fit(x_train[:300], y_train[:300]).predict_proba(x_test)
    np.testing.assert_array_equal(first, second)


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline 'rf'; choose from knn, svm, mlp"):
        make_baseline("rf")
