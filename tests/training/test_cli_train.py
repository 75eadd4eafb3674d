"""Tests for ``genrekit train`` and ``genrekit model`` (run in-process)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genrekit.cli import main
from genrekit.datasets.table import file_sha256, read_table
from genrekit.models.io import load_model_dir


@pytest.fixture(scope="module")
def small_table(gtzan_table, tmp_path_factory):
    """Every 4th row of the real table (250 rows, 25 per genre), for quick runs."""
    path = tmp_path_factory.mktemp("data") / "small.csv"
    pd.read_csv(gtzan_table, dtype=str, keep_default_na=False).iloc[::4].to_csv(path, index=False)
    return path


def test_train_with_validation_json(small_table, tmp_path, capsys):
    out = tmp_path / "model"
    args = [
        "train",
        "--model",
        "cnn",
        "--data",
        str(small_table),
        "-o",
        str(out),
        "--epochs",
        "4",
        "--seed",
        "2",
    ]
    assert main([*args, "--validation-fraction", "0.2", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_run"] == 4 and 1 <= summary["best_epoch"] <= 4
    assert summary["validation"]["rows"] == 50 and summary["data"]["train_rows"] == 200
    model, metadata = load_model_dir(out)
    assert metadata["data"]["sha256"] == file_sha256(small_table)
    assert metadata["data"]["name"] == "small.csv"
    assert metadata["training"]["random_state"] == 2 and metadata["training"]["epochs"] == 4
    assert metadata["validation"]["accuracy"] == summary["validation"]["accuracy"]
    assert metadata["validation"]["accuracy"] == model.history_[model.best_epoch_ - 1]["val_accuracy"]
    assert len(metadata["history"]) == 4


def test_train_all_rows_table_output_and_env(small_table, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENREKIT_TABLE", str(small_table))
    out = tmp_path / "model"
    assert (
        main(["train", "--model", "cnn", "-o", str(out), "--epochs", "3", "--validation-fraction", "0"]) == 0
    )
    text = capsys.readouterr().out
    assert "epochs run:" in text and "n/a (no validation split)" in text
    model, metadata = load_model_dir(out)
    assert model.n_epochs_run_ == 3 and metadata["data"]["train_rows"] == 250
    frame = read_table(small_table)
    assert model.predict(frame).shape == (250,)


def test_train_errors(small_table, gtzan_table, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GENREKIT_TABLE", raising=False)
    assert main(["train", "-o", str(tmp_path / "m")]) == 2
    assert "--data path/to/features_30_sec.csv" in capsys.readouterr().err
    assert (
        main(["train", "--model", "cnn", "--data", str(tmp_path / "absent.csv"), "-o", str(tmp_path / "m")])
        == 2
    )
    assert "absent.csv: no such file" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--model",
                "cnn",
                "--data",
                str(small_table),
                "-o",
                str(tmp_path / "m"),
                "--validation-fraction",
                "1",
            ]
        )
        == 2
    )
    assert "--validation-fraction" in capsys.readouterr().err
    own = pd.read_csv(small_table, dtype=str).assign(label=lambda f: np.where(f.index % 2, "folk", "techno"))
    own.to_csv(tmp_path / "own.csv", index=False)
    assert (
        main(
            [
                "train",
                "--model",
                "cnn",
                "--data",
                str(tmp_path / "own.csv"),
                "-o",
                str(tmp_path / "m"),
                "--epochs",
                "1",
            ]
        )
        == 2
    )
    assert "unknown label 'techno'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    args = [
        "train",
        "--model",
        "cnn",
        "--data",
        str(tmp_path / "own.csv"),
        "-o",
        str(tmp_path / "m"),
        "--epochs",
        "1",
    ]
    assert main([*args, "--labels", "any", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["folk", "techno"]


def test_model_summary_and_info(small_table, tmp_path, capsys):
    assert main(["model", "summary", "cnn", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_params"] == sum(row["params"] for row in report["layers"])
    assert report["paper_total_params"] == [114250, 254240] and "106,058" in report["paper_note"]
    assert main(["model", "summary", "cnn"]) == 0
    assert "conv1 (Conv1d)" in capsys.readouterr().out
    out = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--model",
                "cnn",
                "--data",
                str(small_table),
                "-o",
                str(out),
                "--epochs",
                "2",
                "--format",
                "json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["model", "info", str(out), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["data"]["sha256"] == file_sha256(small_table) and info["kind"] == "paper-cnn"
    assert main(["model", "info", str(out)]) == 0
    assert "sha256" in capsys.readouterr().out
    assert main(["model", "summary", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["model_dir"] == str(out)
    assert main(["model", "info", str(tmp_path / "nothing")]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_train_a_registry_model_and_inspect_it(small_table, tmp_path, capsys):
    out = tmp_path / "logreg"
    args = [
        "train",
        "--model",
        "cnn",
        "--data",
        str(small_table),
        "-o",
        str(out),
        "--model",
        "logreg",
        "--seed",
        "1",
    ]
    assert main([*args, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "logreg" and summary["epochs_run"] is None
    assert summary["chosen"]["params"]["C"] in (0.1, 1.0, 10.0)
    model, metadata = load_model_dir(out)
    assert metadata["kind"] == "genrekit-model" and metadata["recipe"]["name"] == "logreg"
    assert metadata["recipe"]["transform"].startswith("log1p of the *_var columns")
    assert metadata["validation"]["rows"] == 25 and 0 < metadata["calibration"]["temperature"]
    frame = read_table(small_table)
    assert (model.predict(frame) == frame["label"]).mean() > 0.5
    assert main(["model", "info", str(out)]) == 0
    assert "chosen by inner CV" in capsys.readouterr().out
    assert main(["model", "summary", str(out)]) == 0  # any model: its tree of parts
    assert "logreg model" in (text := capsys.readouterr().out) and "linear" in text
    assert (
        main(
            [
                "train",
                "--model",
                "cnn",
                "--data",
                str(small_table),
                "-o",
                str(tmp_path / "x"),
                "--model",
                "xgb",
            ]
        )
        == 2
    )
    assert "unknown model 'xgb'" in capsys.readouterr().err
