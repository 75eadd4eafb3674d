from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from genrekit.cli import main
from genrekit.core.schema import GENRES
from genrekit.datasets.fetch import FILTERED_SPLIT_DIR
from genrekit.evaluation.report import MODEL_TITLES, format_summary
from genrekit.evaluation.reproduce import Settings, Task, load_data, plan, reproduce, run_summaries, run_tasks
from genrekit.selection.metrics import SCALAR_METRICS


@pytest.fixture(scope="module")
def quick(gtzan_table: Path, split_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    """One quick reproduction (2 seeds, 3 folds, <= 20 epochs), sequential, plus logreg under cv3."""
    out = tmp_path_factory.mktemp("report")
    settings = Settings(
        **{**Settings.make_quick().__dict__, "extra_models": ("logreg",), "extra_protocols": ("cv",)}
    )
    return out, reproduce(gtzan_table, out, split_dir, settings)


def test_quick_run_writes_the_three_outputs(quick, gtzan_table):
    out, metrics = quick
    for name in ("report.html", "report.md", "metrics.json"):
        assert (out / name).stat().st_size > 1000
    for name in ("accuracy", "curves", "confusion", "per_genre"):
        assert (out / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    assert metrics["data"]["sha256"] == hashlib.sha256(gtzan_table.read_bytes()).hexdigest()
    assert metrics["environment"]["settings"]["quick"] is True


def test_every_protocol_and_model_is_reported(quick):
    _, metrics = quick
    assert [p["name"] for p in metrics["protocols"]] == ["paper", "cv3", "filtered", "optimistic"]
    combos = {(e["protocol"], e["model"]) for e in metrics["results"]}
    assert len(combos) == 17 and ("cv3", "logreg") in combos and ("paper", "logreg") not in combos
    for entry in metrics["results"]:
        expected_runs = 3 if entry["protocol"] == "cv3" else 2
        assert len(entry["runs"]) == expected_runs
        for name in SCALAR_METRICS:
            values = [run["metrics"][name] for run in entry["runs"]]
            assert entry["summary"][name]["mean"] == pytest.approx(np.mean(values))
        pooled = 1000 if entry["protocol"] == "cv3" else expected_runs * entry["n_test"]
        assert entry["pooled"]["n_predictions"] == pooled
    sizes = {
        e["protocol"]: (e["n_train"], e["n_val"], e["n_test"])
        for e in metrics["results"]
        if e["model"] == "cnn"
    }
    assert sizes["paper"] == (800, 100, 100)
    assert sizes["filtered"] == (443, 197, 290)
    assert sizes["optimistic"] == (900, 100, 100)
    baseline = next(e for e in metrics["results"] if e["model"] == "svm" and e["protocol"] == "paper")
    assert baseline["n_val"] == 0
    cnn = next(e for e in metrics["results"] if e["model"] == "cnn" and e["protocol"] == "paper")
    differences = [
        a["metrics"]["accuracy"] - b["metrics"]["accuracy"]
        for a, b in zip(cnn["runs"], baseline["runs"], strict=True)
    ]
    assert baseline["cnn_minus_this"]["mean"] == pytest.approx(np.mean(differences))


def test_cnn_detail_pools_every_row_once(quick):
    _, metrics = quick
    detail = metrics["cnn_detail"]
    assert detail["protocol"] == "cv3"
    assert np.asarray(detail["confusion"]).sum() == 1000
    assert np.asarray(detail["confusion"]).sum(axis=1).tolist() == [100] * 10
    assert detail["labels"] == list(GENRES)
    assert {tuple(sorted(p["pair"])) for p in detail["paper_pairs"]} == {
        ("blues", "jazz"),
        ("pop", "rock"),
        ("classical", "jazz"),
    }
    assert detail["curves"]["history"][0]["epoch"] == 1
    assert len(detail["model_summary"]) > 3


def test_markdown_numbers_match_metrics_json(quick):
    out, metrics = quick
    md = (out / "report.md").read_text()
    for section in (
        "## Headline",
        "### Learning curves",
        "### Confusion matrix",
        "### Per-genre",
        "## Environment",
    ):
        assert section in md
    lines = md.replace("**", "").splitlines()
    for entry in (e for e in metrics["results"] if e["model"] in MODEL_TITLES):
        label = (
            "OPTIMISTIC (test set used for early stopping)"
            if entry["protocol"] == "optimistic"
            else entry["protocol"]
        )
        summary = entry["summary"]
        expected = f"| {label} | {MODEL_TITLES[entry['model']]} | {format_summary(summary['accuracy'])} | "
        expected += f"{format_summary(summary['precision_macro'])} | "
        assert any(line.startswith(expected) for line in lines), expected
    assert "OPTIMISTIC" in md and "QUICK RUN" in md
    assert metrics["data"]["sha256"] in md
    macro_f1 = metrics["cnn_detail"]["classification_report"]["macro avg"]["f1"]
    macro_row = next(line for line in md.splitlines() if line.startswith("| macro avg | "))
    assert macro_row.split(" | ")[3] == f"{macro_f1:.3f}"


def test_extra_models_section(quick):
    out, metrics = quick
    md = (out / "report.md").read_text()
    logreg = next(e for e in metrics["results"] if e["model"] == "logreg")
    cnn = next(e for e in metrics["results"] if e["model"] == "cnn" and e["protocol"] == "cv3")
    row = next(line for line in md.splitlines() if line.startswith("| logreg | - | not run | "))
    assert format_summary(logreg["summary"]["accuracy"]) in row
    differences = [
        b["metrics"]["accuracy"] - a["metrics"]["accuracy"]
        for a, b in zip(cnn["runs"], logreg["runs"], strict=True)
    ]
    assert logreg["minus_cnn"]["mean"] == pytest.approx(np.mean(differences))
    assert "## Every model under every protocol" in md and "### What the inner searches chose" in md
    for run in logreg["runs"]:  # each outer fold's inner search chose one C of the grid
        assert run["chosen"]["params"]["C"] in (0.1, 1.0, 10.0)


def test_html_is_self_contained(quick):
    out, metrics = quick
    page = (out / "report.html").read_text()
    figures = sorted(path.stem for path in (out / "figures").glob("*.png"))
    per_protocol = [f"confusion_{p['name']}" for p in metrics["protocols"]]
    assert set(figures) >= {"learning_curves", "roc", "reliability", *per_protocol}
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(figures) == 11
    assert "figures/" not in page and "<script" not in page
    assert 'class="optimistic"' in page
    assert format_summary(metrics["results"][0]["summary"]["accuracy"]) in page


def test_filtered_protocol_is_skipped_without_split_dir(gtzan_table):
    _, y, filenames, _ = load_data(gtzan_table)
    tasks, notes = plan(y, filenames, Settings(seeds=1, folds=2), None)
    assert {t.split.protocol for t in tasks} == {"paper", "cv2", "optimistic"}
    assert notes and notes[0]["protocol"] == "filtered" and "skipped" in notes[0]["note"]
    assert len(tasks) == 4 * (1 + 2 + 1)


def test_parallel_runs_equal_sequential_runs(gtzan_table):
    X, y, filenames, _ = load_data(gtzan_table)
    classes = np.unique(y)
    tasks, _ = plan(y, filenames, Settings(seeds=1, folds=2), None)
    tasks = [t for t in tasks if t.split.protocol == "paper" and t.model in ("cnn", "mlp")]
    tasks.append(Task(tasks[0].split, "svm"))
    settings = Settings(seeds=1, folds=2, epochs=4, patience=2)
    sequential = run_tasks(tasks, X, y, classes, settings)
    parallel = run_tasks(tasks, X, y, classes, Settings(**{**settings.__dict__, "jobs": 2}))
    for a, b in zip(sequential, parallel, strict=True):
        assert (a["protocol"], a["model"]) == (b["protocol"], b["model"])
        np.testing.assert_array_equal(a["proba"], b["proba"])
        assert a["metrics"] == b["metrics"]


def test_cli_without_data_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("GENREKIT_TABLE", raising=False)
    assert main(["reproduce", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # the conftest's mirror is a closed local port: offline
    assert "--data path/to/features_30_sec.csv (or set GENREKIT_TABLE)" in err


def test_cli_missing_table_exits_2_naming_it(monkeypatch, tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    monkeypatch.setenv("GENREKIT_TABLE", str(missing))
    assert main(["reproduce", "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.html").exists()


def test_cli_rejects_bad_counts(gtzan_table, tmp_path, capsys):
    assert main(["reproduce", "--data", str(gtzan_table), "--out", str(tmp_path), "--folds", "1"]) == 2
    assert "--folds" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_cli_prints_the_figures(quick, monkeypatch, capsys, fmt):
    out, metrics = quick
    seen = {}

    def fake_reproduce(data, out_dir, split_dir, settings, progress, audio=None):
        seen.update(data=data, split_dir=split_dir, settings=settings, audio=audio)
        return metrics

    monkeypatch.setattr("genrekit.evaluation.reproduce.reproduce", fake_reproduce)
    argv = ["reproduce", "--data", "t.csv", "--out", str(out), "--quick", "--seeds", "3", "--jobs", "1"]
    assert main([*argv, "--format", fmt]) == 0
    assert seen["settings"] == Settings(seeds=3, folds=3, epochs=20, patience=5, jobs=1, quick=True)
    assert seen["split_dir"] == str(FILTERED_SPLIT_DIR) and seen["audio"] is None  # the shipped split
    stdout = capsys.readouterr().out
    if fmt == "json":
        printed = json.loads(stdout)
        assert printed["data_sha256"] == metrics["data"]["sha256"]
        assert [r["accuracy"] for r in printed["results"]] == [
            e["summary"]["accuracy"] for e in metrics["results"]
        ]
    else:
        for entry in metrics["results"]:
            assert format_summary(entry["summary"]["accuracy"]) in stdout


def test_file_accuracy_is_summarised_only_when_every_run_has_it():
    scalars = dict.fromkeys(SCALAR_METRICS, 0.5)
    with_files, without = {"metrics": {**scalars, "file_accuracy": 0.75}}, {"metrics": scalars}
    assert "file_accuracy" in run_summaries([with_files, with_files])
    for runs in ([with_files, without], [without, with_files]):
        summary = run_summaries(runs)
        assert "file_accuracy" not in summary and summary["accuracy"]["n"] == 2
