"""The paper's proposed sequence models (genrekit.models.sequence): CNN+GRU and attention encoder.

Shapes and parameter counts, the NumPy forward passes against torch, training, seeding,
the pickle-free save / load round trip and ``genrekit train --model``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from genrekit.cli import main
from genrekit.datasets.table import feature_matrix, read_table
from genrekit.models.io import load_model_dir, save_model
from genrekit.models.portable_nets import attention_forward, cnn_gru_forward
from genrekit.models.registry import make_model
from genrekit.models.sequence import AttentionClassifier, CNNGRUClassifier, FeatureTransformer

# torch runs the networks in float32, the NumPy passes in float64 from the same (float32) weights:
# the logits differ by float32 rounding accumulated over the layers, measured at ~3e-6 on trained
# models (logits of order 10); 1e-4 absolute leaves room for other CPUs' summation orders while a
# wrong gate order, head split or missing layer norm moves logits by 1e-1 or more.
NUMPY_VS_TORCH = 1e-4

NAMES = ("cnn-gru", "attention")


def _module(name: str, n_features: int = 57, n_classes: int = 10, seed: int = 1):
    torch.manual_seed(seed)
    return make_model(name)._network(n_features, n_classes).eval()


@pytest.fixture(scope="module")
def data(gtzan_table):
    frame = read_table(gtzan_table)
    X, y = feature_matrix(frame), frame["label"].to_numpy(dtype=str)
    order = np.random.RandomState(0).permutation(len(y))
    return X[order[:300]], y[order[:300]], X[order[300:400]], y[order[300:400]], X[order[400:500]]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, X_val, y_val, _ = data
    return {name: make_model(name, seed=3, epochs=4, patience=2).fit(X, y, X_val, y_val) for name in NAMES}


@pytest.mark.parametrize(("name", "total"), [("cnn-gru", 57_546), ("attention", 21_130)])
def test_shapes_and_parameter_counts(name, total):
    module = _module(name)
    assert sum(p.numel() for p in module.parameters()) == total  # the counts in the module docstring
    assert module(torch.zeros(5, 57)).shape == (5, 10)
    assert _module(name, 40, 3)(torch.zeros(2, 40)).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_forward_equals_torch(name):
    module = _module(name)
    with torch.no_grad():  # move every weight off its initial value, biases and layer norms included
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = np.random.default_rng(0).normal(size=(64, 57)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    weights = {key: value.numpy() for key, value in module.state_dict().items()}
    if name == "cnn-gru":
        got = cnn_gru_forward(weights, x.astype(np.float64))
    else:
        got = attention_forward(weights, x.astype(np.float64), module.encoder.layers[0].self_attn.num_heads)
    assert np.abs(expected).max() > 0.1  # not a trivially small output
    np.testing.assert_allclose(got, expected, rtol=0, atol=NUMPY_VS_TORCH)


def test_attention_is_over_tokens_and_heads_must_divide():
    module = FeatureTransformer(57, 10, 32, 4, 64, 2, 0.1)
    assert module.value_embedding.shape == module.feature_embedding.shape == (57, 32)
    assert len(module.encoder.layers) == 2
    with pytest.raises(ValueError, match="does not divide"):
        AttentionClassifier(n_heads=5, epochs=1).fit(np.zeros((4, 57)), ["a", "b"] * 2)


@pytest.mark.parametrize("name", NAMES)
def test_training_early_stopping_and_numpy_prediction(fitted, data, name):
    _, _, X_val, y_val, X_test = data
    model = fitted[name]
    assert model.n_epochs_run_ <= 4 and 1 <= model.best_epoch_ <= model.n_epochs_run_
    losses = [row["val_loss"] for row in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (100, 10) and np.allclose(proba.sum(axis=1), 1)
    # the kept weights are the best epoch's, and NumPy prediction gives that epoch's validation accuracy
    accuracy = float(np.mean(model.predict(X_val) == y_val))
    assert accuracy == pytest.approx(model.history_[model.best_epoch_ - 1]["val_accuracy"], abs=1e-9)
    assert accuracy > 0.2  # chance is 0.1, after 4 epochs on 300 rows
    module = model._network(57, 10).eval()
    module.load_state_dict({key: torch.from_numpy(value) for key, value in model.weights_.items()})
    scaled = ((X_test - model.scaler_mean_) / model.scaler_scale_).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(scaled)).numpy()
    np.testing.assert_allclose(model.decision_function(X_test), expected, rtol=0, atol=NUMPY_VS_TORCH)


@pytest.mark.parametrize("kind", [CNNGRUClassifier, AttentionClassifier])
def test_same_seed_same_weights_and_clone(data, kind):
    X, y, *_ = data
    fits = [kind(epochs=1, random_state=5).fit(X[:100], y[:100]) for _ in range(2)]
    other = kind(epochs=1, random_state=6).fit(X[:100], y[:100])
    assert fits[0].weights_.keys() == fits[1].weights_.keys()
    for key in fits[0].weights_:
        assert np.array_equal(fits[0].weights_[key], fits[1].weights_[key]), key
    assert not np.array_equal(fits[0].weights_["dense.weight"], other.weights_["dense.weight"])
    fresh = clone(fits[0])
    assert fresh.get_params() == fits[0].get_params() and not hasattr(fresh, "weights_")


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(fitted, data, tmp_path, name):
    *_, X_test = data
    model = fitted[name]
    save_model(model, tmp_path / "m", {"recipe": {"name": name}})
    loaded, metadata = load_model_dir(tmp_path / "m")
    assert metadata["kind"] == "genrekit-model" and metadata["format_version"] == 2
    node = metadata["model"]
    assert node["type"] == model.PORTABLE_NODE
    assert node["training"]["best_epoch"] == model.best_epoch_ and node["training"]["epochs"] == 4
    assert (node.get("n_heads") == 4) == (name == "attention")
    # the same float32 weights and float64 arithmetic: the same probabilities to rounding
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=0, atol=1e-12)
    assert list(loaded.classes_) == list(model.classes_)


def test_train_command(gtzan_table, tmp_path, capsys):
    table, out = tmp_path / "small.csv", tmp_path / "model"
    pd.read_csv(gtzan_table, dtype=str, keep_default_na=False).iloc[::4].to_csv(table, index=False)
    args = ["train", "--data", str(table), "-o", str(out), "--model", "cnn-gru", "--epochs", "2"]
    assert main([*args, "--format", "json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "cnn-gru" and summary["epochs_run"] == 2
    assert summary["validation"]["rows"] == 25  # the default validation fraction of 250 rows
    model, metadata = load_model_dir(out)
    assert metadata["model"]["type"] == "cnn_gru"
    assert metadata["validation"]["accuracy"] is not None
    assert metadata["recipe"]["name"] == "cnn-gru" and metadata["recipe"]["transform"].startswith("z-score")
    assert model.predict(read_table(table)).shape == (250,)
    # model explain retrains the recipe the metadata names, with the saved epoch count
    explain = ["model", "explain", str(out), "--data", str(table), "--folds", "2", "--repeats", "1"]
    assert main([*explain, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recipe"] == "cnn-gru" and len(report["families"]) == 7
