"""Learning from a library's tags: grouped CV, options, audit and suggestions, on the real GTZAN table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrekit.core.errors import GenrekitError
from genrekit.core.schema import FEATURE_NAMES
from genrekit.library import learn
from genrekit.library.learn import (
    Extra,
    LibraryClassifier,
    Windows,
    audit,
    compare_options,
    cross_validate,
    fit_learned,
    grouped_folds,
    predict_files,
    suggest,
)
from genrekit.selection.metrics import wilson_interval

GENRES = ("classical", "metal", "jazz", "hiphop")


@pytest.fixture(scope="module")
def table(gtzan_table: Path) -> pd.DataFrame:
    """40 real rows of each of four genres."""
    frame = pd.read_csv(gtzan_table)
    return pd.concat([frame[frame.label == g].head(40) for g in GENRES], ignore_index=True)


def _library(table: pd.DataFrame, windows_per_file: int = 3, seed: int = 0) -> tuple[Windows, dict[str, str]]:
    """Each table row becomes a file of a few windows (the row plus small noise)."""
    rng = np.random.default_rng(seed)
    X = table[list(FEATURE_NAMES)].to_numpy(float)
    rows = np.repeat(np.arange(len(X)), windows_per_file)
    noise = rng.normal(scale=0.02, size=(len(rows), X.shape[1])) * X.std(axis=0)
    ids = table.filename.to_numpy()[rows]
    return Windows(X[rows] + noise, ids), dict(zip(table.filename, table.label, strict=True))


def test_grouped_folds_keep_a_file_in_one_fold_and_stratify() -> None:
    groups = np.repeat(np.arange(60), np.tile([1, 2, 5], 20))
    labels = np.array(["a", "b", "c"])[groups % 3]
    fold = grouped_folds(labels, groups, n_splits=4, seed=1)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    for k in range(4):
        files = np.unique(groups[fold == k])
        assert sorted(np.bincount(files % 3)) == [5, 5, 5]


def test_no_file_on_both_sides_of_a_split(table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    windows, labels = _library(table)
    file_number = {f: i for i, f in enumerate(dict.fromkeys(windows.file_ids))}
    tagged = np.array([file_number[f] for f in windows.file_ids], dtype=float)
    windows = Windows(
        np.column_stack([tagged, windows.features]), windows.file_ids
    )  # column 0 names the file
    seen: list[tuple[set, set]] = []
    fit, proba = LibraryClassifier.fit, LibraryClassifier.predict_proba

    def record_fit(self, X, y, reference=None, extra=None):
        seen.append((set(np.asarray(X)[:, 0]), set()))
        return fit(self, X, y, reference, extra)

    def record_proba(self, X):
        seen[-1][1].update(np.asarray(X)[:, 0])
        return proba(self, X)

    monkeypatch.setattr(LibraryClassifier, "fit", record_fit)
    monkeypatch.setattr(LibraryClassifier, "predict_proba", record_proba)
    cv = cross_validate(windows, labels, model="logreg", folds=4)
    assert len(seen) == 4
    for train, test in seen:
        assert train and test and not train & test
    assert set().union(*(test for _, test in seen)) == set(file_number.values())
    assert len(cv.files) == len(labels) and cv.proba.shape == (len(labels), 4)


def test_cross_validation_figures(table: pd.DataFrame) -> None:
    windows, labels = _library(table)
    cv = cross_validate(windows, labels, model="logreg")
    figures = cv.accuracy()
    assert figures["files"] == 160
    assert 0.6 < figures["accuracy"] <= 1.0  # four well separated genres; chance is 0.25
    assert figures["ci_low"] < figures["accuracy"] < figures["ci_high"] or figures["accuracy"] == 1.0
    per_genre = cv.per_genre()
    assert set(per_genre) == set(GENRES) and all(row["files"] == 40 for row in per_genre.values())
    correct = np.sum([row["recall"] * row["files"] for row in per_genre.values()])
    assert correct == pytest.approx(figures["accuracy"] * 160)
    np.testing.assert_allclose(cv.proba.sum(axis=1), 1.0)
    confident = cv.confident(0.9)
    assert 0 < confident["coverage"] < 1 and confident["accuracy"] >= figures["accuracy"]


def test_untagged_files_only_feed_own_standardisation(table: pd.DataFrame) -> None:
    windows, labels = _library(table)
    half = dict(list(labels.items())[::2])
    cv = cross_validate(windows, half, model="logreg")
    assert set(cv.files) == set(half)
    model = fit_learned(windows, half, cv)
    np.testing.assert_allclose(model.classifier.pipeline_[0].mean_, windows.features.mean(axis=0))
    files, proba, familiar = predict_files(model, windows)
    assert list(files) == list(dict.fromkeys(windows.file_ids))
    untagged = np.array([f not in half for f in files])
    accuracy = np.mean(model.classes_[proba[untagged].argmax(axis=1)] == [labels[f] for f in files[untagged]])
    assert accuracy > 0.6 and familiar.mean() > 0.9


def test_audit_finds_a_mislabelled_file(table: pd.DataFrame) -> None:
    windows, labels = _library(table)
    wrong = table.filename[table.label == "classical"].iloc[3]
    labels[wrong] = "metal"
    cv = cross_validate(windows, labels, model="logreg")
    found = audit(cv.files, cv.labels, cv.proba, cv.classes, min_confidence=0.6)
    flagged = [row["file"] for row in found]
    assert wrong in flagged, "the mislabelled file is not flagged"
    assert len(flagged) < 0.1 * len(labels)  # a short list to check, not every file
    row = next(row for row in found if row["file"] == wrong)
    assert row["tag"] == "metal" and row["predicted"] == "classical"
    assert row["tag_probability"] < row["probability"]
    assert [r["probability"] for r in found] == sorted((r["probability"] for r in found), reverse=True)
    kept = audit(cv.files, cv.labels, cv.proba, cv.classes, {wrong: ("metal", "classical")})
    assert wrong not in [r["file"] for r in kept]


def test_suggest_ranks_the_least_sure_first() -> None:
    proba = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.34, 0.33, 0.33], [0.6, 0.3, 0.1]])
    ranked = suggest(["a", "b", "c", "d"], proba, ["x", "y", "z"], n=3)
    assert [row["file"] for row in ranked] == ["c", "b", "d"]
    assert ranked[0]["guesses"][0] == ("x", 0.34)
    assert suggest([], np.empty((0, 3)), ["x", "y", "z"]) == []


def test_compare_options_with_extra_rows(table: pd.DataFrame, gtzan_table: Path) -> None:
    windows, labels = _library(table)
    few = dict(list(labels.items())[::4])
    frame = pd.read_csv(gtzan_table)
    frame = frame[frame.label.isin(GENRES) & ~frame.filename.isin(table.filename)]
    extra = Extra(frame[list(FEATURE_NAMES)].to_numpy(float), frame.label.to_numpy(), "GTZAN rows")
    chosen, results = compare_options(windows, few, models=["logreg"], extra=extra)
    assert set(results) == {
        "logreg, own scaling, no extra rows",
        "logreg, own scaling, with GTZAN rows",
        "logreg, training scaling, with GTZAN rows",
    }
    best = max(r.accuracy()["accuracy"] for r in results.values())
    assert results[chosen["name"]].accuracy()["accuracy"] == best
    assert results["logreg, own scaling, with GTZAN rows"].options["extra"] == "GTZAN rows"
    assert all(len(r.files) == len(few) for r in results.values())  # extra rows are never tested on


def test_gbm_is_a_classifier_family(table: pd.DataFrame) -> None:
    windows, labels = _library(table, windows_per_file=1)
    cv = cross_validate(windows, labels, model="gbm", folds=3)
    assert cv.accuracy()["accuracy"] > 0.6
    with pytest.raises(GenrekitError, match="unknown model"):
        learn.make_classifier("nope")
    with pytest.raises(learn.LearnError, match="validation rows"):
        learn.make_classifier("cnn")


def test_too_few_files_is_a_clear_error(table: pd.DataFrame) -> None:
    windows, labels = _library(table)
    with pytest.raises(learn.LearnError, match="two genres"):
        cross_validate(windows, {f: "jazz" for f in list(labels)[:5]})
    with pytest.raises(learn.LearnError, match="at least two tagged files"):
        cross_validate(windows, {**dict(list(labels.items())[:5]), table.filename.iloc[-1]: "hiphop"})


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
