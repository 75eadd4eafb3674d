"""Tests for the paper's CNN (genrekit.models.cnn): shapes, parameter count, NumPy inference, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from genrekit.core.schema import FEATURE_NAMES, GENRES
from genrekit.datasets.table import read_table
from genrekit.models.cnn import (
    CONV1_FILTERS,
    CONV2_FILTERS,
    DENSE_UNITS,
    KERNEL_SIZE,
    PAPER_PARAMS_NOTE,
    CNNClassifier,
    PaperCNN,
    model_summary,
    numpy_forward,
    weight_shapes,
)


@pytest.fixture(scope="module")
def split(gtzan_table):
    frame = read_table(gtzan_table, labels="gtzan")
    return train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=0)


@pytest.fixture(scope="module")
def trained(split):
    train, _ = split
    return CNNClassifier(epochs=30).fit(train, train["label"])


def _hand_count(n_features: int, n_classes: int) -> int:
    """Parameters from the layer formulas: conv = out*(in*k) + out, dense = out*in + out."""
    conv1 = CONV1_FILTERS * (1 * KERNEL_SIZE) + CONV1_FILTERS
    length = (n_features - KERNEL_SIZE + 1) // 2
    conv2 = CONV2_FILTERS * (CONV1_FILTERS * KERNEL_SIZE) + CONV2_FILTERS
    length = (length - KERNEL_SIZE + 1) // 2
    dense1 = DENSE_UNITS * (CONV2_FILTERS * length) + DENSE_UNITS
    dense2 = n_classes * DENSE_UNITS + n_classes
    return conv1 + conv2 + dense1 + dense2


@pytest.mark.parametrize(("n_features", "n_classes"), [(57, 10), (40, 3)])
def test_shapes_and_parameter_count(n_features, n_classes):
    module = PaperCNN(n_features, n_classes)
    assert module(torch.zeros(5, n_features)).shape == (5, n_classes)
    assert module(torch.zeros(5, 1, n_features)).shape == (5, n_classes)
    total = sum(p.numel() for p in module.parameters())
    assert total == _hand_count(n_features, n_classes)
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == weight_shapes(n_features, n_classes)
    rows = model_summary(n_features, n_classes)
    assert sum(row["params"] for row in rows) == total
    assert [row["layer"].split()[0] for row in rows] == [
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "flatten",
        "dense1",
        "dropout",
        "dense2",
    ]


def test_summary_keras_shapes_and_note():
    rows = {row["layer"].split()[0]: row for row in model_summary()}
    assert rows["conv1"]["output_shape"] == [None, 55, 32]
    assert rows["pool1"]["output_shape"] == [None, 27, 32]
    assert rows["pool2"]["output_shape"] == [None, 12, 64]
    assert rows["flatten"]["output_shape"] == [None, 12 * 64]
    assert f"{_hand_count(57, 10):,}" in PAPER_PARAMS_NOTE
    assert "114,250" in PAPER_PARAMS_NOTE and "254,240" in PAPER_PARAMS_NOTE


def test_numpy_forward_equals_torch():
    torch.manual_seed(1)
    module = PaperCNN().eval()
    x = np.random.default_rng(0).normal(size=(64, 57)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    weights = {k: v.numpy() for k, v in module.state_dict().items()}
    np.testing.assert_allclose(numpy_forward(weights, x.astype(np.float64)), expected, atol=1e-5, rtol=1e-5)


def test_training_beats_chance_and_numpy_matches_torch(trained, split):
    _, test = split
    accuracy = float(np.mean(trained.predict(test) == test["label"].to_numpy()))
    assert accuracy > 0.5  # chance is 0.1
    proba = trained.predict_proba(test)
    assert proba.shape == (200, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(trained.classes_) == list(GENRES)
    # The NumPy path reproduces torch's eval-mode softmax from the same weights.
    module = PaperCNN().eval()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in trained.weights_.items()})
    scaled = (test[list(FEATURE_NAMES)].to_numpy() - trained.scaler_mean_) / trained.scaler_scale_
    with torch.no_grad():
        expected = torch.softmax(module(torch.from_numpy(scaled.astype(np.float32))), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    # Arrays in FEATURE_NAMES order give the same answer as the DataFrame.
    np.testing.assert_array_equal(trained.predict_proba(test[list(FEATURE_NAMES)].to_numpy()), proba)


def test_fitted_state(trained, split):
    train, _ = split
    assert trained.n_epochs_run_ == 30 and trained.best_epoch_ == 30
    assert [row["epoch"] for row in trained.history_] == list(range(1, 31))
    assert trained.history_[-1]["train_loss"] < trained.history_[0]["train_loss"]
    assert trained.history_[0]["val_loss"] is None
    features = train[list(FEATURE_NAMES)].to_numpy()
    np.testing.assert_allclose(trained.scaler_mean_, features.mean(axis=0))
    assert list(trained.feature_names_in_) == list(FEATURE_NAMES)
    assert trained.n_features_in_ == 57


def test_same_seed_same_weights(split):
    train, _ = split
    small = train.iloc[:300]
    fits = [CNNClassifier(epochs=3, random_state=7).fit(small, small["label"]) for _ in range(2)]
    for name in fits[0].weights_:
        assert np.array_equal(fits[0].weights_[name], fits[1].weights_[name]), name
    other = CNNClassifier(epochs=3, random_state=8).fit(small, small["label"])
    assert not np.array_equal(other.weights_["dense1.weight"], fits[0].weights_["dense1.weight"])
    assert torch.get_num_threads() >= 1 and not torch.are_deterministic_algorithms_enabled()


def test_early_stopping_restores_best(split):
    train, val = split
    model = CNNClassifier(epochs=200, patience=3).fit(train, train["label"], val, val["label"])
    losses = [row["val_loss"] for row in model.history_]
    assert model.n_epochs_run_ < 200
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert model.n_epochs_run_ == model.best_epoch_ + 3
    # The kept weights are the best epoch's: their validation accuracy is that epoch's.
    accuracy = float(np.mean(model.predict(val) == val["label"].to_numpy()))
    assert accuracy == pytest.approx(model.history_[model.best_epoch_ - 1]["val_accuracy"], abs=1e-9)


def test_sklearn_clone(trained):
    fresh = clone(trained)
    assert fresh.get_params() == trained.get_params() and not hasattr(fresh, "weights_")


def test_bad_input(trained):
    with pytest.raises(ValueError, match="expecting 57"):
        trained.predict_proba(np.zeros((2, 56)))
    with pytest.raises(ValueError, match="NaN"):
        trained.predict_proba(np.full((1, 57), np.nan))
    with pytest.raises(ValueError, match=r"1 class.*at least two"):
        CNNClassifier(epochs=1).fit(np.zeros((4, 57)), ["a"] * 4)
    with pytest.raises(ValueError, match="not in the training labels"):
        CNNClassifier(epochs=1).fit(np.zeros((4, 57)), ["a", "b"] * 2, np.zeros((1, 57)), ["c"])


def test_saved_cnn_loads_and_predicts_in_numpy(trained, tmp_path):
    from genrekit.models.io import load_model_dir, save_model

    save_model(trained, tmp_path / "m")
    model, _ = load_model_dir(tmp_path / "m")
    assert model.predict_proba(np.zeros((2, 57))).shape == (2, len(trained.classes_))
