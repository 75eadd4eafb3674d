"""A user's own genre folders: extract -> train -> predict with labels that are not GTZAN's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from genrekit.cli import main


def test_own_genre_folders_train_and_predict(gtzan_flac_dir: Path, tmp_path: Path, capsys) -> None:
    library = tmp_path / "library"
    for source, genre in (("blues", "folk"), ("classical", "chiptune")):
        (library / genre).mkdir(parents=True)
        for clip in sorted((gtzan_flac_dir / source).glob("*.flac")):
            shutil.copy(clip, library / genre)
    table = tmp_path / "mine.csv"
    assert main(["extract", str(library), "-o", str(table), "-q", "--labels", "any"]) == 0
    assert main(["extract", str(library), "-o", str(tmp_path / "gtzan.csv"), "-q"]) == 0
    assert set(pd.read_csv(tmp_path / "gtzan.csv", keep_default_na=False)["label"]) == {""}
    labels = pd.read_csv(table)["label"]
    assert sorted(labels) == ["chiptune"] * 3 + ["folk"] * 3

    model = tmp_path / "model"
    args = ["train", "--model", "cnn", "--data", str(table), "--labels", "any", "-o", str(model)]
    assert main([*args, "--validation-fraction", "0", "--epochs", "40"]) == 0
    capsys.readouterr()
    assert main(["predict", str(library), "--model", str(model), "--format", "json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)  # strict JSON: no NaN
    assert result["classes"] == ["chiptune", "folk"]
    assert all(f["novelty"] is None for f in result["files"])  # no validation rows, so no novelty statistics
    right = [f for f in result["files"] if f["best_guess"] == Path(f["file"]).parent.name]
    assert len(right) >= 5


def test_resume_refuses_other_label_settings(gtzan_flac_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.csv"
    folk = tmp_path / "folk"  # not a GTZAN genre: unlabelled by default, "folk" with --labels any
    folk.mkdir()
    shutil.copy(gtzan_flac_dir / "pop" / "pop.00000.flac", folk)
    assert main(["extract", str(folk), "-o", str(out), "-q"]) == 0  # complete: its record is removed
    assert main(["extract", str(folk), "-o", str(out), "-q", "--resume", "--labels", "any"]) == 2
    assert "genres" in capsys.readouterr().err
