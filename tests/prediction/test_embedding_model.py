"""A model trained on a table of tagger embeddings predicts and evaluates audio files.

The table comes from ``genrekit extract --embeddings`` on 6-s excerpts of six real GTZAN clips (two
tagger patches each, to keep the networks' work small); the model is a logistic regression trained
on it. The taggers' weights come from the musicnn wheel into the session's cache (``tagger_cache``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

import genrekit
from genrekit.audio.decode import load_audio
from genrekit.cli import main
from genrekit.core.errors import ModelError
from genrekit.core.schema import SAMPLE_RATE, embedding_columns
from genrekit.datasets.table import read_table
from genrekit.prediction.model import FileWindows, model_taggers
from genrekit.tagger.model import Tagger, default_tagger

EMBEDDING_ATOL = 1e-6
"""Embedding values of predict (tag stream fed by the analysis tap) against the extract table's
(float32 values; equal to the bit when measured, the margin is for other BLAS builds)."""

PROBABILITY_ATOL = 1e-6
"""predict's probabilities against the model's on the extract table's row of the same file."""

COLUMNS = embedding_columns("msd") + embedding_columns("mtt")


@pytest.fixture(scope="module")
def taggers(tagger_cache: Path, musicnn_wheel: Path) -> None:
    """Both taggers' weights read from the wheel into the session's cache."""
    Tagger("msd", musicnn_wheel), Tagger("mtt", musicnn_wheel)
    default_tagger.cache_clear()  # the taggers of predict read the session cache


@pytest.fixture(scope="module")
def clips(gtzan_flac_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6-s excerpts of three blues and three classical clips, in genre folders."""
    root = tmp_path_factory.mktemp("emb-clips")
    for genre in ("blues", "classical"):
        (root / genre).mkdir()
        for i in range(3):
            y = load_audio(gtzan_flac_dir / genre / f"{genre}.0000{i}.flac")[
                5 * SAMPLE_RATE : 11 * SAMPLE_RATE
            ]
            soundfile.write(root / genre / f"{genre}.0000{i}.wav", y, SAMPLE_RATE, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def trained(taggers, clips: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The embedding table of the clips (both taggers) and a logistic regression trained on it."""
    out = tmp_path_factory.mktemp("emb-model")
    table, model_dir = out / "emb.csv", out / "model"
    extract = ["extract", str(clips), "-o", str(table), "--embeddings", "--tagger", "mtt,msd", "--jobs", "1"]
    assert main(extract) == 0
    train = ["train", "--data", str(table), "--model", "logreg", "--no-tune", "--validation-fraction", "0"]
    assert main([*train, "-o", str(model_dir), "--format", "json"]) == 0
    return table, model_dir


def _predict(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, dict, str]:
    status = main(["predict", *args, "-q", "--jobs", "1", "--format", "json"])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else {}, err


def test_predict_gives_the_model_s_probabilities_on_the_extract_row_of_each_file(trained, clips) -> None:
    table, model_dir = trained
    model = genrekit.load_model(model_dir)
    assert model.taggers == ("msd", "mtt") and model.feature_names == COLUMNS
    frame = read_table(table).set_index("filename")
    expected = model.predict_proba(frame)  # the table's columns, by name, in the model's order
    results = dict(genrekit.predict(clips, model, jobs=1))
    assert len(results) == 6
    for path, result in results.items():
        assert not isinstance(result, Exception), result
        np.testing.assert_allclose(
            result.window_features[0], frame.loc[path.name, list(COLUMNS)], rtol=0, atol=EMBEDDING_ATOL
        )
        np.testing.assert_allclose(
            result.probabilities, expected.loc[path.name], rtol=0, atol=PROBABILITY_ATOL
        )
        np.testing.assert_allclose(result.window_bounds, [[0.0, result.duration]])  # one window: the file
        assert result.genre == path.parent.name  # the rows it was trained on
    one = clips / "blues" / "blues.00000.wav"
    np.testing.assert_array_equal(model.predict_file(one).probabilities, results[one].probabilities)


def test_cli_records_tags_and_a_bad_file_stay_per_file(trained, clips, tmp_path, capsys) -> None:
    _, model_dir = trained
    batch = tmp_path / "batch"
    shutil.copytree(clips / "classical", batch)
    (batch / "broken.wav").write_bytes(b"RIFF not really a wave file")
    options = ["--model", str(model_dir), "--tags", "--tagger", "mtt", "--detect-music"]
    status, answer, err = _predict(capsys, str(batch), *options)
    assert status == 1 and "broken.wav" in err
    records = {Path(r["file"]).name: r for r in answer["files"]}
    assert records["broken.wav"]["genre"] is None and "broken.wav" in records["broken.wav"]["error"]
    model = genrekit.load_model(model_dir)
    for name in ("classical.00000.wav", "classical.00001.wav", "classical.00002.wav"):
        record = records[name]
        assert record["genre"] == "classical" and len(record["windows"]) == 1
        assert {tag["tagger"] for tag in record["deep_tags"]} == {"mtt"}  # the asked tags, not the model's
        assert record["music"] > 0.5  # the music detector ran on the same decoding
        alone = model.predict_file(batch / name).probabilities
        np.testing.assert_allclose(list(record["probabilities"].values()), alone, rtol=0, atol=1e-12)


def test_evaluate_a_folder_with_an_embedding_model(trained, clips, capsys) -> None:
    _, model_dir = trained
    status = main(
        ["evaluate", str(clips), "--model", str(model_dir), "--format", "json", "-q", "--jobs", "1"]
    )
    result = json.loads(capsys.readouterr().out)
    assert status == 0
    assert result["counts"]["items"] == 6 and result["counts"]["failed"] == 0
    assert result["best_guess"]["accuracy"] == 1.0  # the files of its own training rows
    assert result["shift"] is None  # these models store no shift reference


def test_evaluate_the_extract_table_with_its_model(trained, capsys) -> None:
    table, model_dir = trained
    assert main(["evaluate", str(table), "--model", str(model_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_guess"]["accuracy"] == 1.0


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_missing_weights_exit_2_before_any_file(
    command, trained, clips, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GENREKIT_TAGGER_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds nothing: no network needed to fail
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    default_tagger.cache_clear()
    try:
        status = main([command, str(clips), "--model", str(trained[1]), "-q", "--jobs", "1"])
    finally:
        default_tagger.cache_clear()
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert "the model reads the embeddings of tagger(s) msd, mtt" in err and "--weights" in err


def test_scan_refuses_the_model_its_catalogue_cannot_feed(trained, clips, tmp_path, capsys) -> None:
    model = genrekit.load_model(trained[1])
    windows = FileWindows(66150, np.array([[0, 66150]]), np.zeros((1, 57)))
    with pytest.raises(
        ModelError, match=r"x\.flac: 57 features per window, but the model was trained on 400"
    ):
        model.predict_windows([(Path("x.flac"), windows)])  # the catalogue's stored windows
    db = tmp_path / "s.db"
    assert (
        main(["scan", str(clips / "blues"), "--db", str(db), "--model", str(trained[1]), "-q", "--jobs", "1"])
        == 2
    )
    assert "trained on 400 columns 'msd_emb_000' ... 'mtt_emb_199'" in capsys.readouterr().err


def test_serve_answers_the_predict_record_of_the_model(trained, clips) -> None:
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    from serve_client import post_file

    from genrekit.serve.process import ServerProcess, child_env

    clip = clips / "blues" / "blues.00001.wav"
    with ServerProcess(["--workers", "1", "--model", str(trained[1])], env=child_env()) as server:
        status, _, answer = post_file(server.url + "/v1/predict", clip)
    assert status == 200, answer
    expected = genrekit.load_model(trained[1]).predict_file(clip).to_record()
    assert answer["genre"] == expected["genre"] == "blues" and len(answer["windows"]) == 1
    assert answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-12)


def test_an_embedding_genrekit_does_not_compute_is_refused() -> None:
    assert model_taggers(genrekit.load_model().feature_names) == ()
    with pytest.raises(ModelError, match="embedding 'clap', which genrekit does not compute"):
        model_taggers(embedding_columns("clap", 4))
