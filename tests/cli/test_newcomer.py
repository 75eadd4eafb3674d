"""What a newcomer tripped over: help texts, progress lines in logs, --quiet, tiny tables, .gitignore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from genrekit.cli import build_parser, main
from genrekit.cli._common import ProgressLine

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command", ["data", "extract", "train", "reproduce", "predict", "evaluate", "plot", "model"]
)
def test_help_teaches_with_examples_and_short_lines(command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100
    if command != "model":
        assert "examples:" in text and "exit status" in text


def test_progress_line_says_what_how_far_and_time_left():
    lines = []

    class _Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    bar = ProgressLine("extract", total=4, unit="file", interval=0.0, stream=_Stream())
    bar.start -= 10  # as if 10 s had passed
    bar.update(1)
    bar.close()
    text = "".join(lines)
    assert "extract: 1/4 files (25%), 10 s elapsed, about 30 s left" in text
    assert "extract: 1/4 files (25%)" in text.splitlines()[-1] and text.rstrip().endswith("done")


@pytest.fixture
def tiny_table(gtzan_table: Path, tmp_path: Path) -> Path:
    table = pd.read_csv(gtzan_table)
    small = pd.concat([table.groupby("label").head(1), table.groupby("label").nth(1).head(4)])
    path = tmp_path / "tiny.csv"
    small.to_csv(path, index=False)
    assert len(small) == 14
    return path


def test_table_too_small_to_split_is_said_in_genrekits_words(tiny_table, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_table), "-o", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tiny.csv, validation split: 14 rows of 10 genres are too few" in err
    assert "--validation-fraction 0" in err and "least populated" not in err
    assert main(["reproduce", "--data", str(tiny_table), "--out", str(tmp_path / "r"), "--quick", "-q"]) == 2
    err = capsys.readouterr().err
    assert "protocol paper (test split): 14 rows of 10 genres are too few" in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_train_prints_progress_lines_in_logs_and_quiet_silences_them(
    gtzan_table, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr("genrekit.cli._common.PROGRESS_INTERVAL", 0.0)
    table = pd.read_csv(gtzan_table).groupby("label").head(20)
    data = tmp_path / "t.csv"
    table.to_csv(data, index=False)
    args = ["train", "--data", str(data), "--epochs", "3", "--validation-fraction", "0"]
    assert main([*args, "-o", str(tmp_path / "m1")]) == 0
    err = capsys.readouterr().err
    assert "training: 1/3 epochs (33%)" in err and "left" in err
    assert main([*args, "-o", str(tmp_path / "m2"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_report_folder_is_ignored_by_git():
    done = subprocess.run(
        ["git", "check-ignore", "-q", "report/report.html"], cwd=REPO, capture_output=True, timeout=30
    )
    if done.returncode == 128:
        pytest.skip("not a git checkout")
    assert done.returncode == 0


def test_python_verdict_and_named_probability_columns(gtzan_table, cross_dir):
    import numpy as np

    import genrekit

    model = genrekit.load_model()
    table = pd.read_csv(gtzan_table).iloc[::100].set_index("filename")
    proba = model.predict_proba(table)
    assert isinstance(proba, pd.DataFrame)
    assert list(proba.columns) == list(model.classes_) and list(proba.index) == list(table.index)
    assert isinstance(model.predict_proba(table.to_numpy()[:, 1:-1].astype(float)), np.ndarray)
    verdicts = model.verdict(table)
    confident = proba.max(axis=1).to_numpy() >= 0.5
    assert (verdicts[confident] == proba.idxmax(axis=1).to_numpy()[confident]).all()
    assert (verdicts[~confident] == "uncertain").all()
    whale = cross_dir / "glacier-bay-humpback.ogg"
    assert model.verdict([whale]).tolist() == ["uncertain"]  # unlike any training music
    assert model.verdict(whale, min_confidence=0.0).tolist() == ["uncertain"]
