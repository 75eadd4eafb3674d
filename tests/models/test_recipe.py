"""The shipped model's recipe: `genrekit train --cv K`, reproducible for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from genrekit.cli import main


def _train(table: Path, out: Path, capsys, seed: int = 0) -> tuple[dict[str, np.ndarray], dict, dict]:
    args = [
        "train",
        "--model",
        "cnn",
        "--data",
        str(table),
        "-o",
        str(out),
        "--cv",
        "2",
        "--epochs",
        "3",
        "--seed",
        str(seed),
    ]
    assert main([*args, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    return load_file(out / "model.safetensors"), json.loads((out / "model.json").read_text()), summary


def test_same_seed_rebuilds_the_same_weights(gtzan_table: Path, tmp_path: Path, capsys) -> None:
    first, meta, _ = _train(gtzan_table, tmp_path / "a", capsys)
    second, meta_again, _ = _train(gtzan_table, tmp_path / "b", capsys)
    other, _, _ = _train(gtzan_table, tmp_path / "c", capsys, seed=1)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert any(not np.array_equal(first[name], other[name]) for name in first)
    assert meta["cross_validation"] == meta_again["cross_validation"]
    assert meta["calibration"] == meta_again["calibration"]


def test_recipe_metadata_and_summary(gtzan_table: Path, tmp_path: Path, capsys) -> None:
    _, meta, summary = _train(gtzan_table, tmp_path / "m", capsys)
    assert meta["recipe"]["epochs"] == meta["training"]["epochs"] == 3
    assert meta["recipe"]["n_folds"] == 2
    assert meta["data"]["train_rows"] == meta["data"]["rows"] == 1000
    cv = meta["cross_validation"]
    assert cv["protocol"] == summary["cross_validation"]["protocol"] == "cv2"
    assert len(cv["fold_accuracies"]) == 2
    assert cv["accuracy"]["mean"] == np.mean(cv["fold_accuracies"])
    assert meta["calibration"]["temperature"] > 0
    assert np.isfinite(meta["calibration"]["novelty"]["threshold"])
