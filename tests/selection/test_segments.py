"""Segment-aware splitting: the rows of one source clip never sit on both sides of any split."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit, train_test_split

from genrekit.audio.augment import augmented_name
from genrekit.audio.window import segment_name
from genrekit.core.errors import GenrekitError, TableError
from genrekit.core.schema import FEATURE_NAMES
from genrekit.datasets.table import (
    feature_matrix,
    is_augmented,
    read_table,
    rows_window_seconds,
    source_clip,
    source_groups,
)
from genrekit.evaluation.document import to_markdown
from genrekit.evaluation.report import per_file_blocks
from genrekit.evaluation.reproduce import Settings, Task, plan, run_task
from genrekit.models.registry import make_model
from genrekit.selection import protocols
from genrekit.selection.metrics import file_accuracy
from genrekit.selection.protocols import (
    SourceKFold,
    cv_splits,
    filtered_splits,
    optimistic_splits,
    paper_splits,
    rows_from_sources,
    source_codes,
    source_labels,
    without_augmented,
)
from genrekit.training import recipe as recipe_module
from genrekit.training.train import validation_split

SEGMENTS = 3
SMALL_MEMBERS = ("logreg", "knn-tuned", "extratrees")


@pytest.fixture(scope="module")
def whole(gtzan_table) -> pd.DataFrame:
    return read_table(gtzan_table)


@pytest.fixture(scope="module")
def segment_table(whole) -> pd.DataFrame:
    """A segment table: 3 rows per clip of 200 real clips (20 per genre), each its clip's features x noise."""
    clips = whole.iloc[::5].reset_index(drop=True)
    rng = np.random.default_rng(0)
    parts = []
    for k in range(SEGMENTS):
        part = clips.copy()
        part["filename"] = [segment_name(name, k) for name in clips["filename"]]
        noise = rng.normal(1.0, 0.05, size=(len(part), len(FEATURE_NAMES)))
        part.loc[:, list(FEATURE_NAMES)] = part.loc[:, list(FEATURE_NAMES)].to_numpy() * noise
        parts.append(part)
    table = pd.concat(parts).sort_values("filename", kind="stable").reset_index(drop=True)
    assert len(np.unique(source_groups(table["filename"]))) == len(clips)
    return table


def _sources(table: pd.DataFrame, rows) -> set[str]:
    return set(source_groups(table["filename"].to_numpy()[np.asarray(rows)]))


def _assert_apart(table: pd.DataFrame, *parts) -> None:
    seen = [_sources(table, rows) for rows in parts]
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not seen[i] & seen[j], "a source clip sits on both sides"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("blues.00000.wav", "blues.00000.wav"),
        ("blues.00000.3.wav", "blues.00000.wav"),
        ("blues.00000.12.flac", "blues.00000.flac"),
        ("blues.00000.pitch+2.wav", "blues.00000.wav"),
        ("blues.00000.pitch-2.7.wav", "blues.00000.wav"),
        ("blues.00000.stretch1.1.wav", "blues.00000.wav"),
        ("blues.00000.noise20db.0.wav", "blues.00000.wav"),
        ("a/song.mp3", "a/song.mp3"),
        ("a/song.4.mp3", "a/song.mp3"),
        ("my song.00.wav", "my song.00.wav"),
    ],
)
def test_source_clip_names(name, source):
    assert source_clip(name) == source


def test_segment_names_lead_back_to_their_clip():
    for k in (0, 1, 9, 10, 123):
        assert source_clip(segment_name("rock.00042.wav", k)) == "rock.00042.wav"


def test_every_protocol_keeps_a_clip_together(segment_table, split_dir):
    y = segment_table["label"].to_numpy(dtype=str)
    groups = source_groups(segment_table["filename"])
    splits = paper_splits(y, [0, 1], groups) + optimistic_splits(y, [0], groups) + cv_splits(y, 5, 0, groups)
    filtered, _ = filtered_splits(segment_table["filename"], split_dir, [0])
    for split in splits + filtered:
        if split.val_is_test:  # optimistic: the test rows are its validation rows
            _assert_apart(segment_table, split.train, split.test)
        else:
            _assert_apart(segment_table, split.train, split.val, split.test)
            assert len(split.train) % SEGMENTS == len(split.val) % SEGMENTS == len(split.test) % SEGMENTS == 0
    folds = cv_splits(y, 5, 0, groups)
    assert sorted(np.concatenate([s.test for s in folds]).tolist()) == list(range(len(y)))
    # stratified over clips: 20 clips a genre, 4 per genre in each test fold
    assert {tuple(np.unique(y[s.test], return_counts=True)[1]) for s in folds} == {(SEGMENTS * 4,) * 10}


def test_trains_validation_split_keeps_a_clip_together(segment_table):
    train, val = validation_split(segment_table, 0.2, 0, "segments.csv")
    assert len(train) + len(val) == len(segment_table)
    _assert_apart(segment_table, train.index, val.index)


def test_a_clip_with_two_labels_is_refused(segment_table):
    bad = segment_table.copy()
    bad.loc[1, "label"] = "rock" if bad.loc[1, "label"] != "rock" else "pop"
    with pytest.raises(TableError, match=r"source clip .*different labels"):
        cv_splits(bad["label"].to_numpy(dtype=str), 5, 0, source_groups(bad["filename"]))


@pytest.fixture
def inner_splits(monkeypatch, segment_table):
    """Record the source clips on each side of every inner split (searches, stacking)."""
    X = feature_matrix(segment_table)
    source_of = dict(zip((row.tobytes() for row in X), source_groups(segment_table["filename"]), strict=True))
    seen: list[tuple[set, set]] = []
    original = SourceKFold.split

    def recording(self, X_inner, y, groups=None):
        names = np.array(
            [source_of[np.asarray(row, dtype=np.float64).tobytes()] for row in np.asarray(X_inner)]
        )
        for train, test in original(self, X_inner, y, groups):
            seen.append((set(names[train]), set(names[test])))
            yield train, test

    monkeypatch.setattr(SourceKFold, "split", recording)
    return seen


def _assert_inner_apart(seen):
    assert seen
    for train, test in seen:
        assert train and test and not train & test


@pytest.mark.parametrize("name", ["logreg", "stacking"])
def test_inner_searches_keep_a_clip_together(segment_table, inner_splits, monkeypatch, name):
    from genrekit.evaluation import reproduce as reproduce_module

    monkeypatch.setattr(reproduce_module, "make_recipe", functools.partial(make_model, members=SMALL_MEMBERS))
    X, y = feature_matrix(segment_table), segment_table["label"].to_numpy(dtype=str)
    groups = source_groups(segment_table["filename"])
    split = cv_splits(y, 5, 0, groups)[1]
    result = run_task(Task(split, name), X, y, np.unique(y), Settings(), groups)
    _assert_inner_apart(inner_splits)
    assert result["chosen"]
    assert result["metrics"]["n_test_files"] == len(set(groups[split.test])) == len(split.test) // SEGMENTS
    assert 0 <= result["metrics"]["file_accuracy"] <= 1


def test_the_recipe_folds_and_inner_searches_keep_a_clip_together(segment_table, inner_splits):
    X, y = feature_matrix(segment_table), segment_table["label"].to_numpy(dtype=str)
    groups = source_groups(segment_table["filename"])
    _, metadata = recipe_module.fit_final(X, y, n_folds=3, model="logreg", groups=groups)
    assert len(inner_splits) == 4 * 3  # 3 fold models + the final one, 3 inner folds each
    _assert_inner_apart(inner_splits)
    assert len(metadata["cross_validation"]["fold_accuracies"]) == 3
    assert len(metadata["cross_validation"]["file_accuracies"]) == 3


def test_file_accuracy_averages_a_clips_rows():
    classes = np.array(["jazz", "rock"])
    y = ["jazz"] * 3 + ["rock"] * 2
    sources = ["j.wav"] * 3 + ["r.wav"] * 2
    # j: one row of three right, but the mean (0.58 jazz) is right; r: both right
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.2, 0.8], [0.3, 0.7]])
    assert file_accuracy(y, proba, classes, sources) == (1.0, 2)
    # j: one row right with 0.6, the mean (0.3 jazz) is wrong
    proba[:3] = [[0.6, 0.4], [0.1, 0.9], [0.2, 0.8]]
    assert file_accuracy(y, proba, classes, sources) == (0.5, 2)


def test_the_report_shows_accuracy_per_file_only_for_segment_tables():
    summary = {"mean": 0.5, "std": 0.1, "ci_low": 0.4, "ci_high": 0.6, "n": 2}
    entry = {"protocol": "cv5", "model": "logreg", "summary": {"accuracy": summary}, "runs": []}
    assert per_file_blocks({"results": [entry]}) == []
    entry["summary"]["file_accuracy"] = {**summary, "mean": 0.7}
    entry["runs"] = [{"metrics": {"n_test_files": 40}}]
    markdown = to_markdown(per_file_blocks({"results": [entry]}))
    assert "Per file %" in markdown and "70.0" in markdown and "40" in markdown


# ---- on a table of whole clips, the splits are exactly the row-level draws of before ----


def _reference_cv(y, n_folds, seed):
    """The row-level cross-validation genrekit used before source clips (StratifiedKFold + a carve)."""
    zeros = np.zeros(len(y))
    for fold, (rest, test) in enumerate(
        StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(zeros, y)
    ):
        carve = StratifiedShuffleSplit(n_splits=1, test_size=1 / 9, random_state=seed + fold)
        train, val = next(carve.split(np.zeros(len(rest)), y[rest]))
        yield np.sort(rest[train]), np.sort(rest[val]), test


def _reference_paper(y, seed):
    rest, test = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=1 / 9, stratify=y[rest], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)


def test_whole_clip_splits_are_unchanged(whole):
    y, groups = whole["label"].to_numpy(dtype=str), source_groups(whole["filename"])
    assert len(set(groups)) == len(y) == 1000
    for split, reference in zip(cv_splits(y, 10, 0, groups), _reference_cv(y, 10, 0), strict=True):
        for got, want in zip((split.train, split.val, split.test), reference, strict=True):
            np.testing.assert_array_equal(got, want)
    for seed in range(10):
        split = paper_splits(y, [seed], groups)[0]
        for got, want in zip((split.train, split.val, split.test), _reference_paper(y, seed), strict=True):
            np.testing.assert_array_equal(got, want)
    train, val = validation_split(whole, 0.1, 0, "features_30_sec.csv")
    ref_train, ref_val = train_test_split(whole, test_size=0.1, stratify=whole["label"], random_state=0)
    assert train.index.tolist() == ref_train.index.tolist() and val.index.tolist() == ref_val.index.tolist()


def test_inner_folds_of_whole_clips_are_stratified_kfold(whole):
    X, y = feature_matrix(whole), whole["label"].to_numpy(dtype=str)
    with rows_from_sources(X, source_groups(whole["filename"])):
        got = list(SourceKFold(3).split(X, y))
        shuffled = list(SourceKFold(5, shuffle=True, random_state=2).split(X, y))
    want = list(StratifiedKFold(3).split(X, y))
    want_shuffled = list(StratifiedKFold(5, shuffle=True, random_state=2).split(X, y))
    for (a, b), (c, d) in zip(got + shuffled, want + want_shuffled, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert protocols._ROW_SOURCES.get() is None


# ---- augmented rows train only: never in a validation or test part ----

AUGMENT_TAGS = ("pitch+2", "stretch1.1")


@pytest.fixture(scope="module")
def augmented_table(segment_table) -> pd.DataFrame:
    """The segment table plus two augmented versions of every segment (features x noise)."""
    rng = np.random.default_rng(1)
    parts = [segment_table]
    for tag in AUGMENT_TAGS:
        part = segment_table.copy()
        part["filename"] = [
            segment_name(augmented_name(source_clip(name), tag), int(name.rsplit(".", 2)[1]))
            for name in segment_table["filename"]
        ]
        noise = rng.normal(1.0, 0.05, size=(len(part), len(FEATURE_NAMES)))
        part.loc[:, list(FEATURE_NAMES)] = part.loc[:, list(FEATURE_NAMES)].to_numpy() * noise
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_augmented_rows_only_train(augmented_table, split_dir):
    names = augmented_table["filename"].to_numpy(dtype=str)
    augmented = np.array([is_augmented(name) for name in names])
    assert augmented.sum() == len(AUGMENT_TAGS) * len(names) // 3
    y = augmented_table["label"].to_numpy(dtype=str)
    groups = source_groups(names)
    plain = paper_splits(y, [0], groups) + optimistic_splits(y, [0], groups) + cv_splits(y, 5, 0, groups)
    plain += filtered_splits(names, split_dir, [0])[0]
    tasks, _ = plan(y, names, Settings(seeds=1, folds=5), split_dir)
    assert {task.split.protocol for task in tasks} == {"paper", "optimistic", "cv5", "filtered"}
    for split in without_augmented(plain, names) + [task.split for task in tasks]:
        assert not augmented[split.val].any() and not augmented[split.test].any()
        assert augmented[split.train].any()
        _assert_apart(augmented_table, split.train, split.test)
    train, val = validation_split(augmented_table, 0.2, 0, "augmented.csv")
    assert not any(is_augmented(name) for name in val["filename"])
    assert any(is_augmented(name) for name in train["filename"])
    _assert_apart(augmented_table, train.index, val.index)


def test_per_file_accuracy_counts_original_rows_only(augmented_table):
    X, y = feature_matrix(augmented_table), augmented_table["label"].to_numpy(dtype=str)
    names = augmented_table["filename"].to_numpy(dtype=str)
    groups = source_groups(names)
    (split,) = without_augmented(cv_splits(y, 5, 0, groups)[:1], names)
    result = run_task(Task(split, "logreg"), X, y, np.unique(y), Settings(), groups)
    assert result["n_test"] == len(split.test) == SEGMENTS * result["metrics"]["n_test_files"]
    _, metadata = recipe_module.fit_final(
        X, y, n_folds=3, model="logreg", tune=False, groups=groups, filenames=names
    )
    originals = (~np.array([is_augmented(name) for name in names])).sum()
    assert sum(row["count"] for row in metadata["calibration"]["reliability_after"]) == originals


def test_inner_folds_refuse_rows_of_unknown_clips(segment_table):
    X, y = feature_matrix(segment_table), segment_table["label"].to_numpy(dtype=str)
    with rows_from_sources(X, source_groups(segment_table["filename"])):
        assert len(list(SourceKFold(3).split(X, y))) == 3
        with pytest.raises(GenrekitError, match=r"SourceKFold: 1 of the .* rows .* source clips are unknown"):
            list(SourceKFold(3).split(np.vstack([X[:-1], X[-1:] * 2]), y))


# ---- file names of one's own that only look like segments ----


def _user_table(whole: pd.DataFrame, names: list[str], labels: list[str], lengths: list[int]) -> pd.DataFrame:
    table = whole.iloc[: len(names)].copy().reset_index(drop=True)
    table["filename"], table["label"], table["length"] = names, labels, lengths
    return table


def test_names_that_look_like_segments_are_whole_files(whole):
    names = ["Symphony No.5.mp3", "Vol.1.flac", "Vol.2.flac", "song.mp3"]
    table = _user_table(
        whole, names, ["classical", "rock", "jazz", "pop"], [3_900_000, 4_100_000, 5_000_000, 661_794]
    )
    assert rows_window_seconds(table) == 30.0
    groups = source_groups(table["filename"], table["label"])
    assert list(groups) == ["Symphony No.mp3", "Vol.1.flac", "Vol.2.flac", "song.mp3"]
    with pytest.raises(TableError, match="different labels"):  # without the labels: one source
        source_labels(
            table["label"].to_numpy(dtype=str), source_codes(source_groups(names), 4), source_groups(names)
        )
    # a table of extract's segments: one length, named as segments; mixed with whole clips: refused
    segments = _user_table(whole, ["a.0.wav", "a.1.wav", "b.0.wav"], ["rock"] * 3, [66_149] * 3)
    assert rows_window_seconds(segments) == 3.0
    mixed = pd.concat([segments, _user_table(whole, ["c.wav"], ["pop"], [661_794])], ignore_index=True)
    with pytest.raises(TableError, match="mixes whole clips"):
        rows_window_seconds(mixed)
