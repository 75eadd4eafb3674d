"""What a newcomer tripped over: help texts, progress lines in logs, --quiet, tiny tables, .gitignore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
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
    args = ["train", "--model", "cnn", "--data", str(data), "--epochs", "3", "--validation-fraction", "0"]
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


# --- issue 17: the frictions a newcomer met on a fresh clone -------------------------------------------


def test_train_defaults_to_the_shipped_recipe_and_reproduce_keeps_the_papers_models():
    from genrekit.evaluation.reproduce import Settings
    from genrekit.prediction.model import load_model

    args = build_parser("train").parse_args(["train", "-o", "m"])
    shipped = load_model().metadata["recipe"]["name"]
    assert args.model == shipped == "ensemble"
    assert Settings().models[0] == "cnn" and "ensemble" not in Settings().models


@pytest.fixture
def album_library(gtzan_flac_dir: Path, tmp_path: Path) -> Path:
    """An ordinary library: one folder named by a genre, one by an album."""
    import shutil

    root = tmp_path / "Music"
    (root / "rock").mkdir(parents=True)
    (root / "Album One").mkdir()
    shutil.copy(next((gtzan_flac_dir / "rock").glob("*.flac")), root / "rock")
    shutil.copy(next((gtzan_flac_dir / "jazz").glob("*.flac")), root / "Album One")
    return root


def test_evaluate_takes_only_genre_folders_as_labels_and_says_so(album_library, capsys):
    import json

    assert main(["evaluate", str(album_library), "--format", "json", "--jobs", "1", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["counts"]["items"] == 1 and result["counts"]["expected_uncertain"] == 0
    assert [Path(p).parent.name for p in result["skipped_unlabelled"]] == ["Album One"]
    assert "folder names" in result["label_source"]
    assert result["training_rows"] == 1  # a GTZAN clip: the shipped model was trained on it
    args = ["evaluate", str(album_library), "--unknown-as-uncertain", "--jobs", "1", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "should be uncertain: 1" in out and "labels: folder names (a name of no genre" in out
    assert "the model was trained on 2 items of these" in out


def test_predict_json_and_csv_list_failed_files_as_records(gtzan_flac_dir, tmp_path, capsys):
    import csv
    import io
    import json

    good = next((gtzan_flac_dir / "blues").glob("*.flac"))
    bad = tmp_path / "broken.flac"
    bad.write_text("not audio")
    assert main(["predict", str(good), str(bad), "--format", "json", "-q", "--jobs", "1"]) == 1
    result = json.loads(capsys.readouterr().out)
    by_name = {Path(f["file"]).name: f for f in result["files"]}
    assert set(by_name) == {good.name, bad.name}
    assert by_name[bad.name]["genre"] is None and "broken.flac" in by_name[bad.name]["error"]
    assert "error" not in by_name[good.name] and by_name[good.name]["genre"]
    assert main(["predict", str(good), str(bad), "--format", "csv", "-q", "--jobs", "1"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(Path(r["file"]).name for r in rows) == sorted([good.name, bad.name])
    assert [r["error"] != "" for r in rows if Path(r["file"]).name == bad.name] == [True]
    assert main(["predict", str(bad), "-q"]) == 1  # every file failed: no empty table header
    assert capsys.readouterr().out == ""


def test_model_summary_without_argument_summarises_the_shipped_model(capsys):
    import json

    assert main(["model", "summary", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["recipe"] == "ensemble"
    parts = [p["part"].strip() for p in summary["parts"]]
    assert parts[0] == "voting" and "logreg: pipeline" in parts and summary["total_values"] > 0
    assert main(["model", "summary", "cnn", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 106_058


def test_one_model_id_in_model_info_predict_serve_and_the_catalogue(gtzan_flac_dir, tmp_path, capsys):
    import json
    import sqlite3

    from genrekit.prediction.model import load_model

    assert main(["model", "info", "--format", "json"]) == 0
    shipped = json.loads(capsys.readouterr().out)["id"]
    clip = next((gtzan_flac_dir / "metal").glob("*.flac"))
    assert main(["predict", str(clip), "--format", "json", "-q"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model"] == shipped and answer["files"][0]["model"] == shipped
    pytest.importorskip("fastapi")
    from genrekit.serve.app import model_info

    assert model_info(load_model())["id"] == shipped
    db = tmp_path / "library.db"
    assert main(["scan", str(clip), "--db", str(db), "--jobs", "1", "-q"]) == 0
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT DISTINCT model_id FROM predictions").fetchall() == [(shipped,)]


def test_setup_script_says_what_it_installs_and_uses_the_cpu_index_with_a_fallback():
    script = (REPO / "scripts" / "setup.sh").read_text()
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "setup.sh")], timeout=30).returncode == 0
    cpu = '"$TORCH" --index-url "$CPU_INDEX"'
    assert 'CPU_INDEX="https://download.pytorch.org/whl/cpu"' in script and cpu in script
    fallback = script.index('python -m pip install --quiet "$TORCH"\n')
    assert script.index(cpu) < fallback  # the plain index only after the CPU index failed
    assert script.count("step ") >= 5


def test_reproduce_estimates_time_left_from_the_cost_of_each_kind_of_run():
    from genrekit.cli._common import ProgressLine
    from genrekit.core.schema import GENRES
    from genrekit.evaluation.reproduce import Settings, Task, plan, run_cost

    y = np.repeat(np.array(GENRES), 20)
    names = [f"{genre}.{i:05d}.wav" for i, genre in enumerate(y)]
    tasks, _ = plan(y, names, Settings(seeds=2, folds=2), None)
    costs = [run_cost(task) for task in tasks]
    assert run_cost(Task(tasks[0].split, "cnn")) > 3 * run_cost(Task(tasks[0].split, "mlp"))
    cnn_runs = sum(task.model == "cnn" for task in tasks)
    line = ProgressLine("training", len(tasks), "run", work=sum(costs))
    line.start -= 60.0  # the CNN runs, all first, took a minute
    for cost in costs[:cnn_runs]:
        line.update(1, cost)
    text = line.line(line.start + 60.0)
    expected = 60.0 * sum(costs[cnn_runs:]) / sum(costs[:cnn_runs])
    assert f"{cnn_runs}/{len(tasks)} runs" in text
    assert f"about {round(expected)} s left" in text  # a count would say 60 s x (the rest / the CNN runs)


def test_help_texts_show_their_own_examples_and_plain_percent(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["library", "audit", "--help"])
    text = capsys.readouterr().out
    assert "genrekit library audit --db" in text
    assert "genrekit library stats" not in text and "genrekit library learn" not in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["model", "explain", "--help"])
    text = capsys.readouterr().out
    assert "95% t-interval" in text and "%%" not in text


def test_counts_are_singular_for_one(gtzan_flac_dir, capsys):
    from genrekit.cli._common import plural

    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    clip = next((gtzan_flac_dir / "pop").glob("*.flac"))
    assert main(["predict", str(clip)]) == 0
    assert "predicted 1 of 1 file, 0 failed" in capsys.readouterr().err


def test_cjk_file_names_draw_without_glyph_warnings(gtzan_flac_dir, tmp_path):
    import shutil
    import warnings

    from genrekit.evaluation.figures import spectrogram_png

    clip = tmp_path / "摇滚歌曲.flac"
    shutil.copy(next((gtzan_flac_dir / "rock").glob("*.flac")), clip)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = spectrogram_png(clip)
    assert png.startswith(b"\x89PNG")
    assert not [w for w in caught if "Glyph" in str(w.message)]


def test_api_docs_page_loads_swagger_ui_from_the_package_not_a_cdn():
    pytest.importorskip("fastapi")
    from serve_client import call

    from genrekit.serve.process import ServerProcess, child_env

    with ServerProcess(["--workers", "1"], env=child_env()) as server:
        status, _, page = call(server.url + "/docs")
        assert status == 200 and "/docs-assets/swagger-ui-bundle.js" in page
        assert "cdn" not in page.lower() and "https://" not in page
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            status, _, body = call(f"{server.url}/docs-assets/{asset}")
            assert status == 200 and len(body) > 10_000
        assert call(server.url + "/openapi.json")[0] == 200
