"""Models trained on 3-second segments: the window length is recorded and predict cuts files into it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genrekit.cli import main
from genrekit.core.errors import ModelError, TableError
from genrekit.datasets.table import read_table, rows_window_seconds
from genrekit.extraction.extract import extract
from genrekit.prediction.model import load_model


@pytest.fixture(scope="module")
def segment_csv(gtzan_flac_dir, tmp_path_factory):
    """The 3-second segment table of the 14 GTZAN test clips (140 rows)."""
    out = tmp_path_factory.mktemp("segments") / "segments.csv"
    result = extract([gtzan_flac_dir], out=out, segment_seconds=3, jobs=2)
    assert not result.failures and len(result.table) == 140
    return out


@pytest.fixture(scope="module")
def segment_model(segment_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    args = ["train", "--data", str(segment_csv), "--model", "logreg", "--no-tune"]
    assert main([*args, "--validation-fraction", "0", "-o", str(out), "-q", "--format", "json"]) == 0
    return out


def test_the_window_length_comes_from_the_table(segment_csv, gtzan_table):
    assert rows_window_seconds(read_table(segment_csv)) == 3.0
    assert rows_window_seconds(read_table(gtzan_table)) == 30.0


def test_a_table_mixing_clips_and_segments_is_refused(segment_csv, gtzan_table):
    import pandas as pd

    mixed = pd.concat([read_table(segment_csv), read_table(gtzan_table).iloc[:3]], ignore_index=True)
    with pytest.raises(TableError, match="mixes whole clips"):
        rows_window_seconds(mixed)


def test_a_segment_model_predicts_files_by_3_second_windows(segment_model, gtzan_flac_dir, capsys):
    metadata = json.loads((segment_model / "model.json").read_text())
    assert metadata["window_seconds"] == 3.0
    model = load_model(segment_model)
    assert model.window_seconds == 3.0
    clip = next(gtzan_flac_dir.glob("jazz/*.flac"))
    prediction = model.predict_file(clip)
    lengths = np.diff(prediction.window_bounds, axis=1).ravel()
    assert len(lengths) == 10 and np.allclose(lengths[:-1], 3.0)  # the short tail joins the last window
    np.testing.assert_allclose(prediction.probabilities, prediction.window_probabilities.mean(axis=0))
    (_, batched), *_ = model.predict_files([clip], jobs=1)
    np.testing.assert_allclose(batched.window_probabilities, prediction.window_probabilities)
    assert main(["predict", str(clip), "--model", str(segment_model), "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["files"]
    assert record["best_guess"] == prediction.genre and len(record["windows"]) == 10


def test_models_without_the_field_use_30_second_windows(segment_model, tmp_path, gtzan_flac_dir):
    assert load_model().window_seconds == 30.0  # the shipped model
    copy = tmp_path / "m"
    shutil.copytree(segment_model, copy)
    metadata = json.loads((copy / "model.json").read_text())
    del metadata["window_seconds"]
    (copy / "model.json").write_text(json.dumps(metadata))
    prediction = load_model(copy).predict_file(next(gtzan_flac_dir.glob("rock/*.flac")))
    assert len(prediction.window_bounds) == 1
    metadata["window_seconds"] = "3"
    (copy / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="window_seconds"):
        load_model(copy)


def test_window_seconds_can_be_given(segment_csv, tmp_path, capsys):
    args = [
        "train",
        "--data",
        str(segment_csv),
        "--model",
        "logreg",
        "--no-tune",
        "--validation-fraction",
        "0",
    ]
    assert main([*args, "--window-seconds", "1", "-o", str(tmp_path / "a"), "-q"]) == 2
    assert "--window-seconds must be at least 3" in capsys.readouterr().err
    assert main([*args, "--window-seconds", "6", "-o", str(tmp_path / "b"), "-q"]) == 0
    assert load_model(tmp_path / "b").window_seconds == 6.0
