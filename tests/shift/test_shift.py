"""The collection shift check (genrekit.shift, ``genrekit library check``) on real data.

Cases: GTZAN against itself across the artist-conscious split (no shift), one genre alone
(metal: genre mix is not shift), real GTZAN clips through a recording chain (a 4 kHz
low-pass, extracted by genrekit: large shift), the non-GTZAN clips (measured with an
interval); the ``library tag`` refusal and ``--force``; the JSON outputs; the stored references.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import genrekit
from genrekit.audio.augment import recording_chain
from genrekit.cli import main
from genrekit.core.errors import ModelError
from genrekit.core.schema import FEATURE_NAMES
from genrekit.datasets.table import feature_matrix, file_sha256, read_table
from genrekit.models.io import SHIPPED_MODELS
from genrekit.selection.protocols import read_split_dir
from genrekit.shift import (
    LARGE_AUC,
    MIN_FILES,
    REFERENCE_FILE,
    ShiftError,
    ShiftReference,
    load_reference,
    measure_shift,
    model_folder,
    shift_of_rows,
    store_reference,
)

CHAIN_CLIPS = 8
"""GTZAN clips of the low-passed library (the fewest files the measure accepts)."""


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model():
    return genrekit.load_model()


@pytest.fixture(scope="module")
def split_frames(gtzan_table, split_dir):
    """The GTZAN rows of the split's train+valid lists and of its test list."""
    frame = read_table(gtzan_table, labels="gtzan")
    ids = frame["filename"].str.replace(r"\.wav$", "", regex=True)
    split = read_split_dir(split_dir)
    return frame[ids.isin(split["train"] + split["valid"])], frame[ids.isin(split["test"])]


@pytest.fixture(scope="module")
def split_reference(split_frames, model):
    """A reference fitted on the train+valid rows only (the test list's artists are not in it)."""
    train, _ = split_frames
    return ShiftReference.fit(feature_matrix(train), train["label"].to_numpy(), list(model.classes_))


@pytest.fixture(scope="module")
def chain_library(tmp_path_factory, gtzan_flac_dir) -> Path:
    """Eight real GTZAN clips through a 4 kHz low-pass (a recording chain), as WAV files in genre folders."""
    root = tmp_path_factory.mktemp("chain") / "music"
    for i, clip in enumerate(sorted(gtzan_flac_dir.rglob("*.flac"))[:CHAIN_CLIPS]):
        y, sr = sf.read(clip, dtype="float32")
        (root / clip.parent.name).mkdir(parents=True, exist_ok=True)
        chained = recording_chain(y, sr, "lowpass4k", seed=(0, i))
        sf.write(root / clip.parent.name / f"{clip.stem}.wav", chained, sr)
    return root


@pytest.fixture(scope="module")
def chain_db(chain_library, tmp_path_factory) -> tuple[Path, dict]:
    """The low-passed library scanned with the shipped model; the scan's JSON summary."""
    db = tmp_path_factory.mktemp("db") / "lib.db"
    code = main(["scan", str(chain_library), "--db", str(db), "--jobs", "1", "--format", "json", "-q"])
    assert code == 0
    return db


def test_gtzan_against_itself_across_artists_is_not_shifted(split_frames, split_reference, model):
    _, test = split_frames
    report = shift_of_rows(model, split_reference, feature_matrix(test), test["filename"].to_numpy())
    assert report.level == "none" and report.files == 290
    low, high = report.interval
    assert 0.5 <= low < report.auc < high < 0.75  # measured 0.64 [0.60, 0.68]; chance ~0.53
    assert report.permutation["mean"] == pytest.approx(0.5, abs=0.05)


def test_all_metal_is_not_shifted_and_the_genre_weighting_is_why(split_frames, split_reference, model):
    _, test = split_frames
    metal = test[test["label"] == "metal"]
    X, groups = feature_matrix(metal), metal["filename"].to_numpy()
    weighted = shift_of_rows(model, split_reference, X, groups)
    unweighted = shift_of_rows(model, split_reference, X, groups, weight_by_genre=False)
    assert weighted.level == "none" and max(weighted.genre_mix, key=weighted.genre_mix.get) == "metal"
    assert unweighted.auc > weighted.auc + 0.1  # measured 0.93 drawn in the table's mix, 0.71 in metal's
    assert weighted.interval[0] < LARGE_AUC


def test_a_recording_chain_is_a_large_shift_and_scan_says_so(chain_db, capsys):
    code, out, _ = _cli(capsys, "library", "check", "--db", chain_db, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["level"] == "large" and report["shifted"]
    assert report["files"] == CHAIN_CLIPS and report["interval"][0] > LARGE_AUC
    assert report["auc"] > report["permutation"]["max"]
    assert {f["feature"] for f in report["top_features"]} & {
        "rolloff_mean", "spectral_centroid_mean", "spectral_bandwidth_mean", "spectral_bandwidth_var",
        *(f"mfcc{i}_mean" for i in range(2, 21)),
    }  # fmt: skip
    code, out, _ = _cli(capsys, "library", "check", "--db", chain_db)
    assert code == 0 and out.startswith("shift: large (domain AUC")
    code, out, _ = _cli(capsys, "library", "stats", "--db", chain_db, "--format", "json")
    assert code == 0  # stats untouched by the check


def test_scan_summary_carries_the_shift(chain_library, chain_db, capsys):
    code, out, _ = _cli(capsys, "scan", chain_library, "--db", chain_db, "--format", "json")
    summary = json.loads(out)
    assert code == 0 and summary["analysed"] == 0 and summary["shift"]["level"] == "large"
    code, out, _ = _cli(capsys, "scan", chain_library, "--db", chain_db)
    assert "shift: large" in out


def test_tag_refuses_the_shipped_models_genres_on_a_shifted_collection(chain_library, chain_db, capsys):
    mtimes = {p: p.stat().st_mtime_ns for p in chain_library.glob("*.wav")}
    code, out, err = _cli(capsys, "library", "tag", "--db", chain_db, "--format", "json")
    assert code == 2 and out == ""
    assert "refusing to tag" in err and "library learn" in err and "--force" in err and "AUC" in err
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # nothing written
    code, out, err = _cli(capsys, "library", "tag", "--db", chain_db, "--dry-run", "--format", "json")
    assert code == 0 and "warning" in err and not any(f["written"] for f in json.loads(out)["files"])
    code, out, err = _cli(capsys, "library", "tag", "--db", chain_db, "--force", "--format", "json")
    written = [f for f in json.loads(out)["files"] if f["written"]]
    assert code == 0 and written and "tagging anyway (--force)" in err


def test_predict_on_a_folder_warns_once(chain_library, capsys):
    code, out, err = _cli(capsys, "predict", chain_library, "--format", "json", "--jobs", "1", "-q")
    assert code == 0 and len(json.loads(out)["files"]) == CHAIN_CLIPS
    assert err.count("warning: shift: large") == 1 and "library check" in err


def test_cross_dataset_clips_are_measured_with_an_interval(cross_dir, capsys):
    code, out, _ = _cli(capsys, "library", "check", cross_dir, "--format", "json", "--jobs", "1")
    report = json.loads(out)
    assert code == 0 and report["files"] == 10 and report["rows"] > 10  # the long clips: several windows
    low, high = report["interval"]
    assert low <= report["auc"] <= high and report["level"] in ("none", "moderate", "large")
    assert report["outside_support"] > 0  # speech and a whale are outside the training support


def test_evaluate_on_a_table_shows_the_shift(split_frames, tmp_path, capsys):
    _, test = split_frames
    test.to_csv(tmp_path / "test.csv", index=False)
    code, out, _ = _cli(capsys, "evaluate", tmp_path / "test.csv", "--format", "json", "-q")
    shift = json.loads(out)["shift"]
    assert code == 0 and shift["level"] == "none" and shift["files"] == 290
    assert shift["summary"].startswith("shift: none (domain AUC")  # the line the table format prints


def test_few_files_are_unknown_and_json_has_no_nan(model, split_reference, gtzan_table):
    frame = read_table(gtzan_table).head(MIN_FILES - 1)
    report = shift_of_rows(model, split_reference, feature_matrix(frame), frame["filename"].to_numpy())
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert report.level == "unknown" and "unknown" in report.summary() and '"auc": null' in text


def test_bad_rows_and_shapes(model, split_reference, split_frames):
    _, test = split_frames
    X = feature_matrix(test)[:40].copy()
    X[3, 5] = np.nan  # a row that is not finite is left out, not fatal
    proba = model.predict_proba(np.nan_to_num(X))
    report = measure_shift(X, test["filename"].to_numpy()[:40], proba, split_reference, n_permutations=9)
    assert report.rows == 39 and math.isfinite(report.auc)
    with pytest.raises(ShiftError, match="expected"):
        measure_shift(X[:, :10], np.arange(40).astype(str), proba, split_reference)
    with pytest.raises(ShiftError, match="probabilities"):
        measure_shift(X, np.arange(40).astype(str), proba[:, :3], split_reference)


def test_shipped_models_carry_their_reference(gtzan_table):
    sha = file_sha256(gtzan_table)
    for name in (None, *SHIPPED_MODELS):
        loaded = genrekit.load_model(name)
        reference = load_reference(model_folder(name), loaded.metadata)
        assert reference.source["table_sha256"] == sha and reference.source["rows"] == 1000
        assert reference.counts.tolist() == [100] * 10 and reference.means.shape == (10, len(FEATURE_NAMES))
        text = (model_folder(name) / REFERENCE_FILE).read_text()
        assert "blues.00000" not in text  # statistics only, no row of the table


def test_store_reference_and_guards(tmp_path, gtzan_table, capsys):
    folder = tmp_path / "model"
    shutil.copytree(model_folder(None), folder)
    (folder / REFERENCE_FILE).unlink()
    loaded = genrekit.load_model(folder)
    with pytest.raises(ShiftError, match="--reference"):
        load_reference(folder, loaded.metadata)
    code, _, err = _cli(capsys, "library", "check", gtzan_table, "--model", folder)
    assert code == 2 and "no shift reference" in err
    path = store_reference(folder, gtzan_table)
    reference = load_reference(folder, loaded.metadata)
    again = ShiftReference.from_dict(reference.to_dict())
    np.testing.assert_allclose(again.factors, reference.factors, rtol=1e-6, atol=1e-9)
    genrekit.load_model(folder)  # the model's own files are untouched
    data = json.loads(path.read_text())
    data["source"]["weights_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="other weights"):
        load_reference(folder, loaded.metadata)
    data = json.loads(path.read_text())
    data["genres"]["rock"]["mean"][3] = "NaN"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"genres\.rock\.mean"):
        load_reference(folder, loaded.metadata)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_reference(folder, loaded.metadata)
    code, _, err = _cli(capsys, "library", "check", "--model", folder)
    assert code == 2 and "either --db DB or one PATH|TABLE" in err
    read_table(gtzan_table).iloc[::80].to_csv(tmp_path / "few.csv", index=False)  # 13 rows, 10 genres
    code, out, err = _cli(capsys, "evaluate", tmp_path / "few.csv", "--model", folder, "--format", "json")
    assert code == 0 and json.loads(out)["shift"] is None  # the evaluation stands
    assert "shift not measured" in err and "not valid JSON" in err


def test_library_stats_of_the_service_show_the_shift(chain_db):
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    from serve_client import call

    from genrekit.serve.process import ServerProcess, child_env

    with ServerProcess(["--workers", "1", "--db", str(chain_db)], env=child_env()) as server:
        status, _, first = call(server.url + "/v1/library/stats")
        status_again, _, again = call(server.url + "/v1/library/stats")
    assert status == status_again == 200, first
    assert first["files"] == CHAIN_CLIPS and first["shift"]["level"] == "large" and first["shift"]["shifted"]
    assert again["shift"] == first["shift"]  # measured once while the catalogue is unchanged


def test_train_stores_the_reference_of_the_model_it_saves(gtzan_table, split_frames, tmp_path, capsys):
    train, test = split_frames
    train = train.iloc[::2]  # 320 rows: a quick fit
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "own"
    args = ["train", "--data", tmp_path / "train.csv", "-o", out, "--model", "logreg", "--no-tune", "-q"]
    assert _cli(capsys, *args)[0] == 0
    reference = json.loads((out / REFERENCE_FILE).read_text())
    assert reference["source"]["table"] == "train.csv" and reference["source"]["rows"] == len(train)
    code, out_text, _ = _cli(
        capsys, "library", "check", tmp_path / "test.csv", "--model", out, "--format", "json"
    )
    report = json.loads(out_text)
    assert code == 0 and report["model"] == str(out) and report["level"] == "none" and report["files"] == 290


def test_evaluate_on_audio_shows_the_shift(chain_library, capsys):
    code, out, _ = _cli(capsys, "evaluate", chain_library, "--format", "json", "--jobs", "1", "-q")
    result = json.loads(out)
    assert code == 0 and result["counts"]["items"] == CHAIN_CLIPS and result["shift"]["level"] == "large"


def test_a_large_collection_is_measured_on_a_sample_of_its_files(split_reference, gtzan_table):
    frame = read_table(gtzan_table)
    X = np.concatenate([feature_matrix(frame), feature_matrix(frame)[:600] * 1.001])
    proba = np.full((len(X), 10), 0.1)  # the table's own mix
    report = measure_shift(X, np.arange(len(X)).astype(str), proba, split_reference, n_permutations=9)
    assert report.files == report.rows == 1500 and report.level == "none"
