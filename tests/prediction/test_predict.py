"""Prediction with the shipped model: real clips, output formats, windows, tags, errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import genrekit
from genrekit.cli import main
from genrekit.core.errors import ModelError
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.library.tags import TAG_NAMES, read_genre
from genrekit.models.io import SHIPPED_MODELS


@pytest.fixture(scope="module")
def model() -> genrekit.GenreModel:
    return genrekit.load_model()


def _run_json(capsys, *args: str) -> tuple[int, dict, str]:
    status = main(["predict", *args, "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


@pytest.fixture(scope="module")
def gtzan_predictions(gtzan_flac_dir: Path) -> dict:
    """`genrekit predict` over the 14 GTZAN FLAC clips, as JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "genrekit", "predict", str(gtzan_flac_dir), "--format", "json", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_shipped_model_names_the_gtzan_clips(gtzan_predictions: dict) -> None:
    files = gtzan_predictions["files"]
    assert len(files) == 14
    right = [f for f in files if f["genre"] == Path(f["file"]).parent.name]
    assert len(right) >= 13, [(Path(f["file"]).name, f["genre"], f["best_guess"]) for f in files]


def test_one_window_per_gtzan_clip_covering_it(gtzan_predictions: dict) -> None:
    for record in gtzan_predictions["files"]:
        assert len(record["windows"]) == 1
        assert record["windows"][0]["start"] == 0.0
        assert record["windows"][0]["end"] == pytest.approx(record["duration"])
        assert record["duration"] == pytest.approx(30.0, abs=0.2)


def test_classical_clips_outside_gtzan_come_out_classical(cross_dir: Path, capsys) -> None:
    labels = pd.read_csv(cross_dir / "labels.csv")
    classical = [cross_dir / name for name in labels.loc[labels.nearest_gtzan_genre == "classical", "file"]]
    assert len(classical) == 2
    status, result, _ = _run_json(capsys, *map(str, classical))
    assert status == 0
    assert [f["best_guess"] for f in result["files"]] == ["classical", "classical"]
    assert all(f["top_k"][0]["genre"] == "classical" for f in result["files"])


def test_long_file_is_cut_into_30_s_windows_and_averaged(cross_dir: Path, model) -> None:
    path = cross_dir / "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg"
    prediction = model.predict_file(path)
    # 119.88 s: three full windows; the 29.88 s tail gets a fourth window aligned to the end.
    end = prediction.duration
    np.testing.assert_allclose(prediction.window_bounds, [[0, 30], [30, 60], [60, 90], [end - 30, end]])
    np.testing.assert_allclose(prediction.probabilities, prediction.window_probabilities.mean(axis=0))
    np.testing.assert_allclose(prediction.window_probabilities.sum(axis=1), 1.0)


def test_short_file_is_one_window_and_too_short_is_an_error(cross_dir: Path, tmp_path: Path, capsys) -> None:
    short = cross_dir / "sorohanro_-_solo-trumpet-06.ogg"
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.zeros(1000, dtype=np.float32) + 0.1, SAMPLE_RATE)
    two_seconds = tmp_path / "two_seconds.wav"
    sf.write(two_seconds, sf.read(short, frames=2 * SAMPLE_RATE)[0], SAMPLE_RATE)
    status, result, err = _run_json(capsys, str(short), str(tiny), str(two_seconds))
    assert status == 1
    done = [f for f in result["files"] if "error" not in f]  # every input is a record, failures too
    assert [Path(f["file"]).name for f in done] == [short.name]
    failed = sorted(Path(f["file"]).name for f in result["files"] if "error" in f)
    assert failed == ["tiny.wav", "two_seconds.wav"]
    windows = done[0]["windows"]
    assert len(windows) == 1 and windows[0]["end"] == pytest.approx(5.3, abs=0.1)
    assert "tiny.wav" in err and "two_seconds.wav" in err and err.count("too short") == 2


def test_bad_file_in_a_batch_is_reported_and_skipped(gtzan_flac_dir: Path, tmp_path: Path, capsys) -> None:
    shutil.copy(gtzan_flac_dir / "metal" / "metal.00000.flac", tmp_path)
    (tmp_path / "broken.flac").write_bytes(b"fLaC not really")
    status = main(["predict", str(tmp_path), "--jobs", "2"])
    captured = capsys.readouterr()
    assert status == 1
    assert "broken.flac" in captured.err
    assert "metal.00000.flac" in captured.out and "metal" in captured.out.split("metal.00000.flac")[1]


def test_csv_and_table_formats(gtzan_flac_dir: Path, model, capsys) -> None:
    path = gtzan_flac_dir / "pop" / "pop.00000.flac"
    assert main(["predict", str(path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1
    proba = np.array([float(rows[0][g]) for g in model.classes_])
    np.testing.assert_allclose(proba, model.predict_file(path).probabilities, atol=1e-4)
    assert main(["predict", str(path), "--top-k", "3"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[1] == rows[0]["genre"] and line.count(",") == 1  # top genre + 2 others


def test_csv_has_the_json_fields_and_the_table_uses_the_terminal_width(
    gtzan_flac_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    deep = tmp_path / ("long_folder_name_" * 4) / "pop.00000.flac"
    deep.parent.mkdir()
    shutil.copy(gtzan_flac_dir / "pop" / "pop.00000.flac", deep)
    _, result, _ = _run_json(capsys, str(deep))
    record = result["files"][0]
    assert main(["predict", str(deep), "--format", "csv"]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    scalars = [key for key, value in record.items() if not isinstance(value, (list, dict))]
    assert set(scalars) <= set(row)  # best_guess, novelty, duration ... as in the JSON
    assert row["best_guess"] == record["best_guess"] and float(row["novelty"]) == pytest.approx(
        record["novelty"], abs=1e-3
    )
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["predict", str(deep)]) == 0
    assert str(deep) in capsys.readouterr().out  # the whole path: the terminal is wide enough
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["predict", str(deep)]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("…") and line.split()[0].endswith("pop.00000.flac") and len(line.split()[0]) == 35


def test_low_confidence_is_reported_as_uncertain(gtzan_flac_dir: Path, capsys) -> None:
    path = str(gtzan_flac_dir / "rock" / "rock.00000.flac")
    _, strict, _ = _run_json(capsys, path, "--min-confidence", "1.0")
    assert strict["files"][0]["genre"] == "uncertain" and not strict["files"][0]["confident"]
    _, lax, _ = _run_json(capsys, path, "--min-confidence", "0.0")
    assert lax["files"][0]["genre"] == lax["files"][0]["best_guess"]


def test_whale_song_is_unlike_training_music(cross_dir: Path, model) -> None:
    prediction = model.predict_file(cross_dir / "glacier-bay-humpback.ogg")
    assert not prediction.familiar
    assert not prediction.is_confident(0.0)


@pytest.fixture(autouse=True)
def _journal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """--write-tags journals into a catalogue of the test, never the user's."""
    monkeypatch.setenv("GENREKIT_JOURNAL", str(tmp_path_factory.mktemp("journal") / "journal.db"))


def test_write_tags_on_copies(gtzan_flac_dir: Path, tmp_path: Path, capsys) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for genre in ("classical", "country"):
            shutil.copy(gtzan_flac_dir / genre / f"{genre}.00000.flac", tmp_path / folder)
    first = tmp_path / "a"
    before = {p: p.read_bytes() for p in first.iterdir()}
    _, dry, _ = _run_json(capsys, str(first), "--write-tags", "--dry-run", "--min-confidence", "0")
    assert {p: p.read_bytes() for p in first.iterdir()} == before
    assert all(f["tags"].startswith("write") and "none -> " in f["tags"] for f in dry["files"])
    status, done, _ = _run_json(capsys, str(first), "--write-tags", "--min-confidence", "0")
    assert status == 0 and all(f["tags"].split()[:3] == ["written", "none", "->"] for f in done["files"])
    for record in done["files"]:
        assert read_genre(record["file"]) == (TAG_NAMES[record["genre"]],)  # Classical, Country
    status, lower, _ = _run_json(
        capsys, str(tmp_path / "b"), "--write-tags", "--min-confidence", "0", "--tag-names", "lower"
    )
    assert status == 0
    for record in lower["files"]:
        assert read_genre(record["file"]) == (record["genre"],)


def test_write_tags_keeps_a_users_genre_unless_overwrite(
    gtzan_flac_dir: Path, tmp_path: Path, capsys
) -> None:
    """Issue 19: `predict --write-tags` replaced existing genres (`tagged Blues -> Metal`) without a flag."""
    from genrekit.library.tags import read_fields, write_fields

    path = Path(shutil.copy(gtzan_flac_dir / "metal" / "metal.00000.flac", tmp_path))
    write_fields(path, {"genre": ["Blues"]})  # the owner's (wrong) genre
    before = path.read_bytes()
    db = tmp_path / "journal.db"
    status, kept, _ = _run_json(capsys, str(path), "--write-tags", "--db", str(db), "--min-confidence", "0")
    assert status == 0 and kept["files"][0]["tags"].startswith("kept")
    assert path.read_bytes() == before
    args = ("--write-tags", "--db", str(db), "--min-confidence", "0", "--overwrite")
    status, replaced, _ = _run_json(capsys, str(path), *args)
    assert status == 0 and replaced["files"][0]["tags"].split() == ["written", "Blues", "->", "Metal"]
    fields = read_fields(path)
    assert fields["genre"] == ("Metal",) and fields["genrekit_genre"] == ("Metal",)
    assert fields["genrekit_model"] and float(fields["genrekit_confidence"][0]) > 0.5
    assert main(["library", "tag", "--db", str(db), "--undo"]) == 0  # the journal restores the owner's tag
    assert read_fields(path)["genre"] == ("Blues",) and not read_fields(path)["genrekit_genre"]


def test_untaggable_file_is_reported_and_the_others_tagged(
    gtzan_flac_dir: Path, tmp_path: Path, capsys
) -> None:
    shutil.copy(gtzan_flac_dir / "pop" / "pop.00000.flac", tmp_path)
    y, sr = sf.read(gtzan_flac_dir / "metal" / "metal.00000.flac")
    sf.write(tmp_path / "metal.au", y, sr)  # Sun AU: decodable, but no tag format
    status, result, err = _run_json(capsys, str(tmp_path), "--write-tags", "--min-confidence", "0")
    assert status == 1
    notes = {Path(f["file"]).name: f["tags"] for f in result["files"]}
    assert notes["metal.au"].startswith("failed") and notes["pop.00000.flac"].startswith("written")
    assert "metal.au" in err and "cannot be tagged" in err


def test_python_api_over_tables_arrays_and_files(gtzan_table: Path, gtzan_flac_dir: Path, model) -> None:
    table = pd.read_csv(gtzan_table).iloc[::100]
    from_table = model.predict_proba(table)
    from_array = model.predict_proba(table[list(FEATURE_NAMES)].to_numpy())
    np.testing.assert_array_equal(from_table, from_array)
    assert from_table.shape == (10, len(model.classes_))
    assert (model.predict(table) == table["label"].to_numpy()).mean() >= 0.9  # training rows
    files = [gtzan_flac_dir / "jazz" / "jazz.00000.flac", gtzan_flac_dir / "metal" / "metal.00000.flac"]
    np.testing.assert_allclose(
        model.predict_proba(files), [model.predict_file(f).probabilities for f in files]
    )


def test_shipped_model_metadata_states_its_recipe(model, capsys) -> None:
    assert main(["model", "info"]) == 0
    shown = capsys.readouterr().out
    cv = model.metadata["cross_validation"]["accuracy"]
    assert f"metric cv_accuracy: {100 * cv['mean']:.1f}%" in shown and "metric protocol:    cv10" in shown
    meta = model.metadata
    assert meta["data"]["rows"] == 1000 and meta["data"]["train_rows"] == 1000
    assert meta["cross_validation"]["protocol"] == "cv10"
    assert len(meta["cross_validation"]["fold_accuracies"]) == 10
    assert 0.5 < meta["cross_validation"]["accuracy"]["mean"] < 1.0
    assert model.temperature > 0 and model.novelty is not None


def test_model_round_trip_and_bad_model_dirs(tmp_path: Path, gtzan_flac_dir: Path, model, capsys) -> None:
    copy = tmp_path / "model"
    shutil.copytree(SHIPPED_MODELS["shipped"], copy)
    again = genrekit.load_model(copy)
    path = gtzan_flac_dir / "jazz" / "jazz.00000.flac"
    np.testing.assert_array_equal(
        again.predict_file(path).probabilities, model.predict_file(path).probabilities
    )
    (copy / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ModelError):
        genrekit.load_model(copy)
    for bad in (copy, tmp_path / "missing"):
        assert main(["predict", str(path), "--model", str(bad)]) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and "Traceback" not in err
