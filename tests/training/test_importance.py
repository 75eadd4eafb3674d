"""Permutation importance finds a planted informative feature and its family."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from genrekit.cli import main
from genrekit.core.schema import FEATURE_NAMES
from genrekit.models.registry import make_model
from genrekit.training.importance import FAMILIES, family_columns, permutation_importance, saved_recipe


def _planted(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise features; the label is decided by `tempo` alone (three bands of it)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    tempo = FEATURE_NAMES.index("tempo")
    y = np.asarray(["slow", "mid", "fast"])[np.digitize(X[:, tempo], [-0.43, 0.43])]
    return X, y


def test_every_feature_is_in_exactly_one_family():
    columns = np.concatenate(list(family_columns().values()))
    assert sorted(columns.tolist()) == list(range(len(FEATURE_NAMES)))
    assert len(FAMILIES) == 7


def test_planted_feature_and_family_rank_first():
    X, y = _planted()
    linear = permutation_importance(lambda seed: make_model("logreg", seed, tune=False), X, y, n_folds=3)
    assert linear["features"][0]["name"] == "tempo"
    assert linear["families"][0]["name"] == "tempo"
    assert linear["features"][0]["drop"]["ci_low"] > 0  # the interval over folds excludes no effect
    noise = [row["drop"]["mean"] for row in linear["features"][1:]]
    assert max(noise) < linear["features"][0]["drop"]["mean"] / 3


def test_model_explain_cli(gtzan_table, tmp_path, capsys):
    small = tmp_path / "small.csv"
    pd.read_csv(gtzan_table, dtype=str, keep_default_na=False).iloc[::4].to_csv(small, index=False)
    out = tmp_path / "m"
    assert main(["train", "--data", str(small), "--model", "logreg", "-o", str(out), "--format", "json"]) == 0
    capsys.readouterr()
    args = ["model", "explain", str(out), "--data", str(small), "--folds", "2", "--repeats", "1"]
    assert main([*args, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe"] == "logreg" and result["protocol"] == "cv2"
    assert {row["name"] for row in result["families"]} == set(FAMILIES)
    assert len(result["features"]) == len(FEATURE_NAMES)
    assert main(args) == 0
    assert "accuracy drop when shuffled" in capsys.readouterr().out


def test_report_section_renders_importance():
    from genrekit.evaluation.document import Table, to_markdown
    from genrekit.evaluation.report import importance_blocks

    X, y = _planted(n=120)
    result = permutation_importance(lambda seed: make_model("logreg", seed, tune=False), X, y, n_folds=2)
    blocks = importance_blocks({"importance": {"shipped": {"name": "logreg", **result}}})
    md = to_markdown(blocks)
    assert "permutation importance" in md and "| tempo |" in md
    families = next(block for block in blocks if isinstance(block, Table))
    assert [row[0] for row in families.rows] == [row["name"] for row in result["families"]]
    assert importance_blocks({}) == []


def test_saved_recipes_are_rebuilt_as_they_were_trained():
    """A format-1 CNN variant and a format-2 network are retrained by their own recipe and epoch count."""
    l2 = {"kind": "paper-cnn", "training": {"epochs": 7, "batch_size": 16}, "recipe": {"name": "cnn-l2"}}
    name, build = saved_recipe(l2)
    model = build(3)
    assert name == "cnn-l2" and model.weight_decay == 1e-3 and model.epochs == 7 and model.batch_size == 16
    plain = {"kind": "paper-cnn", "training": {"epochs": 7, "batch_size": 16}}
    assert saved_recipe(plain)[0] == "cnn" and saved_recipe(plain)[1](0).weight_decay == 0.0
    gru = {"kind": "genrekit-model", "recipe": {"name": "cnn-gru"}, "model": {"training": {"epochs": 5}}}
    name, build = saved_recipe(gru)
    assert name == "cnn-gru" and type(build(0)).__name__ == "CNNGRUClassifier" and build(0).epochs == 5


def test_early_stopped_networks_are_rebuilt_with_their_best_epoch():
    """The weights of an early-stopped network are its best epoch's: retrain for that many epochs."""
    stopped = {"kind": "paper-cnn", "training": {"epochs": 200, "batch_size": 32, "best_epoch": 41}}
    assert saved_recipe(stopped)[1](0).epochs == 41
    training = {"epochs": 200, "best_epoch": 17, "n_epochs_run": 37}
    gru = {"kind": "genrekit-model", "recipe": {"name": "cnn-gru"}, "model": {"training": training}}
    assert saved_recipe(gru)[1](0).epochs == 17


def test_augmented_rows_never_score_the_importance(monkeypatch):
    """With file names, the folds' test rows are the original rows only; augmented rows still train."""
    from genrekit.training import importance as importance_module

    X, y = _planted(n=120)
    names = [f"clip{i // 2}.wav" if i % 2 == 0 else f"clip{i // 2}.pitch+2.wav" for i in range(len(y))]
    y = np.repeat(y[::2], 2)  # a clip and its augmented copy share the label
    scored, trained = [], []
    drops = importance_module._drops

    def recording(predict, X_test, y_test, *args):
        scored.append(len(y_test))
        return drops(predict, X_test, y_test, *args)

    def build(seed):
        model = make_model("logreg", seed, tune=False)
        fit = model.fit
        model.fit = lambda X_fit, y_fit: (trained.append(len(y_fit)), fit(X_fit, y_fit))[1]
        return model

    monkeypatch.setattr(importance_module, "_drops", recording)
    permutation_importance(build, X, y, n_folds=2, sources=[n.split(".")[0] for n in names], filenames=names)
    assert sum(scored) == len(y) // 2 and sum(trained) == len(y)  # every original row tested once
