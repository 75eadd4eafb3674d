"""genrekit evaluate: the shipped model on non-GTZAN clips (labels.csv), on genre folders, on a table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrekit.cli import main
from genrekit.core.errors import GenrekitError
from genrekit.core.schema import GENRES
from genrekit.evaluation.crossdataset import expected_answer, parse_mapping, read_labels


@pytest.fixture(scope="module")
def cross_eval(cross_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval")
    args = [
        "evaluate", str(cross_dir), "--labels", str(cross_dir / "labels.csv"),
        "--label-column", "nearest_gtzan_genre", "--out", str(out), "--jobs", "2", "--quiet",
    ]  # fmt: skip
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([*args, "--format", "json"]) == 0
    return out, json.loads(stdout.getvalue())


def test_labels_csv_speech_and_nature_should_be_uncertain(cross_eval, cross_dir: Path):
    out, result = cross_eval
    kinds = pd.read_csv(cross_dir / "labels.csv").set_index("file")
    assert result["counts"] == {"items": 10, "failed": 0, "in_model_genres": 5, "expected_uncertain": 5}
    rows = {Path(row["file"]).name: row for row in result["items"]}
    for name, kind in kinds["kind"].items():
        genre = kinds.loc[name, "nearest_gtzan_genre"]
        assert rows[name]["expected"] == ("uncertain" if kind != "music" or pd.isna(genre) else genre)
    assert rows["198-209-0000.ogg"]["expected"] == "uncertain"  # speech
    assert rows["glacier-bay-humpback.ogg"]["expected"] == "uncertain"  # nature
    assert (
        rows["glacier-bay-humpback.ogg"]["verdict"] == "uncertain"
        and not rows["glacier-bay-humpback.ogg"]["familiar"]
    )
    for name in ("evaluation.html", "evaluation.md", "evaluation.json"):
        assert (out / name).stat().st_size > 500
    assert json.loads((out / "evaluation.json").read_text())["counts"] == result["counts"]


def test_figures_agree_with_the_items(cross_eval):
    _, result = cross_eval
    items = result["items"]
    in_genres = [r for r in items if r["expected"] != "uncertain"]
    outside = [r for r in items if r["expected"] == "uncertain"]
    answered = [r for r in in_genres if r["verdict"] != "uncertain"]
    assert result["best_guess"]["accuracy"] == pytest.approx(
        np.mean([r["best_guess"] == r["expected"] for r in in_genres])
    )
    assert result["at_threshold"]["coverage"] == pytest.approx(len(answered) / len(in_genres))
    assert result["at_threshold"]["uncertain_when_expected"] == pytest.approx(
        np.mean([r["verdict"] == "uncertain" for r in outside])
    )
    assert np.asarray(result["confusion"]["counts"]).sum() == 10
    mistakes = result["confident_mistakes"]
    assert all(m["verdict"] not in ("uncertain", m["expected"]) for m in mistakes)
    assert [m["probability"] for m in mistakes] == sorted((m["probability"] for m in mistakes), reverse=True)
    assert len(mistakes) == sum(r["verdict"] not in ("uncertain", r["expected"]) for r in items)
    assert result["best_guess"]["per_genre"]["classical"]["support"] == 2


def test_genre_folders_and_the_terminal_summary(gtzan_flac_dir: Path, tmp_path: Path, capsys):
    import shutil

    folder = tmp_path / "classical"
    shutil.copytree(gtzan_flac_dir / "classical", folder)
    (folder / "broken.flac").write_text("not audio")
    assert main(["evaluate", str(folder), "--jobs", "1", "--quiet"]) == 1  # one bad file: the rest go on
    captured = capsys.readouterr()
    assert "items: 4 (1 failed); of the model's genres: 3" in captured.out
    assert "accuracy (most probable genre): 100.0%" in captured.out  # training clips of the shipped model
    assert "called uncertain when they should be: n/a" in captured.out
    assert "broken.flac" in captured.err


def test_feature_table_with_users_capitalisation(gtzan_table: Path, tmp_path: Path, capsys):
    frame = pd.read_csv(gtzan_table).iloc[::50].reset_index(drop=True)
    frame["label"] = frame["label"].str.capitalize().replace({"Hiphop": "Hip-Hop", "Rock": "Punk"})
    table = tmp_path / "mine.csv"
    frame.to_csv(table, index=False)
    assert main(["evaluate", str(table), "--format", "json", "--map", "punk=rock"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "table" and result["counts"]["in_model_genres"] == 20
    assert {row["expected"] for row in result["items"]} == set(GENRES)


def test_mapping_and_label_errors(tmp_path: Path):
    assert expected_answer("Hip-Hop", GENRES) == "hiphop"
    assert expected_answer("JAZZ ", GENRES) == "jazz"
    assert expected_answer("speech", GENRES) == "uncertain"
    assert expected_answer("", GENRES) == "uncertain"
    assert expected_answer("Blues Rock", GENRES, parse_mapping("blues rock=blues")) == "blues"
    with pytest.raises(GenrekitError, match="LABEL=GENRE"):
        parse_mapping("rock")
    bad = tmp_path / "labels.csv"
    bad.write_text("path,genre\na.ogg,rock\n")
    with pytest.raises(GenrekitError, match="no column file, label"):
        read_labels(bad)
