"""Tests for saving and loading model folders (genrekit.models.io)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.numpy

from genrekit.core.errors import ModelError
from genrekit.datasets.table import read_table
from genrekit.models.cnn import CNNClassifier
from genrekit.models.io import METADATA_FILE, WEIGHTS_FILE, load_model_dir, save_model


@pytest.fixture(scope="module")
def frame(gtzan_table):
    return read_table(gtzan_table, labels="gtzan").iloc[::5]


@pytest.fixture(scope="module")
def model(frame):
    return CNNClassifier(epochs=2, random_state=3).fit(frame, frame["label"])


@pytest.fixture
def saved(model, tmp_path):
    directory = tmp_path / "model"
    save_model(
        model, directory, {"data": {"sha256": "ab" * 32, "name": "t.csv"}, "metrics": {"accuracy": 0.5}}
    )
    return directory


def test_round_trip(model, saved, frame):
    loaded, metadata = load_model_dir(saved)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert list(loaded.classes_) == list(model.classes_)
    assert loaded.to_estimator().get_params() == model.get_params()
    assert (loaded.best_epoch_, loaded.n_epochs_run_) == (2, 2)
    assert loaded.history_ == model.history_
    assert metadata["kind"] == "paper-cnn" and metadata["format_version"] == 1
    assert metadata["data"]["name"] == "t.csv" and metadata["metrics"] == {"accuracy": 0.5}
    assert metadata["training"]["random_state"] == 3
    assert sum(row["params"] for row in metadata["architecture"]) == sum(
        w.size for w in model.weights_.values()
    )
    assert sorted(p.name for p in saved.iterdir()) == [METADATA_FILE, WEIGHTS_FILE]


def test_overwrite_and_refusals(model, saved, tmp_path):
    save_model(model, saved)  # replacing a model folder is fine
    assert sorted(p.name for p in saved.iterdir()) == [METADATA_FILE, WEIGHTS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging leftovers
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match=r"holds 'notes\.txt'"):
        save_model(model, tmp_path / "other")
    with pytest.raises(ModelError, match="reserved"):
        save_model(model, tmp_path / "m2", {"labels": ["x"]})
    with pytest.raises(ModelError, match="unfitted"):
        save_model(CNNClassifier(), tmp_path / "m3")


def _edit_json(directory, edit):
    path = directory / METADATA_FILE
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def _rewrite_weights(directory, edit):
    path = directory / WEIGHTS_FILE
    weights = safetensors.numpy.load(path.read_bytes())
    edit(weights)
    path.write_bytes(safetensors.numpy.save(weights))


CORRUPTIONS = {
    "missing-dir": (lambda d: d.rename(d.with_name("gone")), "no such model folder"),
    "missing-json": (lambda d: (d / METADATA_FILE).unlink(), "missing model.json"),
    "missing-weights": (lambda d: (d / WEIGHTS_FILE).unlink(), "missing model.safetensors"),
    "bad-json": (lambda d: (d / METADATA_FILE).write_text("{not json"), "model.json: not valid JSON"),
    "json-list": (lambda d: (d / METADATA_FILE).write_text("[]"), "expected a JSON object"),
    "wrong-version": (
        lambda d: _edit_json(d, lambda j: j.update(format_version=99)),
        "unsupported format_version 99",
    ),
    "wrong-kind": (lambda d: _edit_json(d, lambda j: j.update(kind="svm")), "kind 'svm'"),
    "no-version": (
        lambda d: _edit_json(d, lambda j: j.pop("format_version")),
        "missing field 'format_version'",
    ),
    "feature-names": (
        lambda d: _edit_json(d, lambda j: j["feature_names"].__setitem__(16, "bpm")),
        r"feature_names\[16\] is 'bpm', expected 'tempo'",
    ),
    "short-scaler": (
        lambda d: _edit_json(d, lambda j: j["scaler"]["mean"].pop()),
        "scaler 'mean' must be 57 finite numbers",
    ),
    "label-count": (
        lambda d: _edit_json(d, lambda j: j["labels"].append("polka")),
        "output layer has 10 units but .* lists 11 labels",
    ),
    "wrong-shape": (
        lambda d: _rewrite_weights(
            d, lambda w: w.update({"dense1.weight": w["dense1.weight"][:, :700].copy()})
        ),
        r"weight 'dense1.weight' has shape \(128, 700\), expected \(128, 768\)",
    ),
    "missing-weight": (
        lambda d: _rewrite_weights(d, lambda w: w.pop("conv2.bias")),
        r"weight names do not match the architecture \(missing \['conv2.bias'\]",
    ),
    "other-weights": (
        lambda d: _rewrite_weights(d, lambda w: w["conv1.bias"].__setitem__(0, 1.0)),
        "SHA-256 differs",
    ),
    "truncated-weights": (
        lambda d: (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:-100]),
        "cannot read weights",
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corruptions(saved, kind):
    corrupt, message = CORRUPTIONS[kind]
    corrupt(saved)
    with pytest.raises(ModelError, match=message):
        load_model_dir(saved)
