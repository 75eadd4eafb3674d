from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrekit.core.errors import GenrekitError
from genrekit.core.schema import GENRES
from genrekit.selection.protocols import (
    cv_splits,
    describe_protocol,
    filtered_split,
    filtered_splits,
    optimistic_splits,
    paper_splits,
    read_split_dir,
    table_ids,
)


@pytest.fixture(scope="module")
def table(gtzan_table: Path) -> pd.DataFrame:
    return pd.read_csv(gtzan_table)


@pytest.fixture(scope="module")
def labels(table: pd.DataFrame) -> np.ndarray:
    return table["label"].to_numpy()


def _assert_partition(split, n_rows: int, cover: bool) -> None:
    parts = [split.train, split.val, split.test]
    for part in parts:
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0), "sorted, no repeats"
    assert not set(split.train) & set(split.val)
    assert not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)
    if cover:
        assert len(split.train) + len(split.val) + len(split.test) == n_rows


def test_paper_splits_are_stratified_80_10_10(labels):
    splits = paper_splits(labels, range(3))
    assert [s.repeat for s in splits] == [0, 1, 2]
    assert [s.seed for s in splits] == [0, 1, 2]
    for split in splits:
        assert split.protocol == "paper"
        assert (len(split.train), len(split.val), len(split.test)) == (800, 100, 100)
        _assert_partition(split, len(labels), cover=True)
        assert Counter(labels[split.test]) == dict.fromkeys(GENRES, 10)
        assert Counter(labels[split.val]) == dict.fromkeys(GENRES, 10)
        assert not split.val_is_test


def test_paper_splits_are_deterministic_by_seed(labels):
    first, second = paper_splits(labels, [0, 1]), paper_splits(labels, [0, 1])
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.test, b.test)
        np.testing.assert_array_equal(a.val, b.val)
    assert not np.array_equal(first[0].test, first[1].test)


def test_optimistic_splits_early_stop_on_the_test_rows(labels):
    paper = paper_splits(labels, [3])[0]
    optimistic = optimistic_splits(labels, [3])[0]
    assert optimistic.protocol == "optimistic"
    assert optimistic.val_is_test
    np.testing.assert_array_equal(optimistic.test, paper.test)
    np.testing.assert_array_equal(optimistic.train, np.sort(np.concatenate([paper.train, paper.val])))
    assert len(optimistic.train) == 900


def test_cv_splits_partition_the_rows(labels):
    splits = cv_splits(labels, n_folds=10, seed=0)
    assert len(splits) == 10
    assert {s.protocol for s in splits} == {"cv10"}
    tested = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(np.sort(tested), np.arange(len(labels)))
    for fold, split in enumerate(splits):
        assert split.repeat == fold
        assert split.seed == fold
        assert len(split.test) == 100
        assert len(split.val) == 100 and len(split.train) == 800
        _assert_partition(split, len(labels), cover=True)
        assert Counter(labels[split.test]) == dict.fromkeys(GENRES, 10)
        assert set(Counter(labels[split.val]).values()) <= {9, 10, 11}
    again = cv_splits(labels, n_folds=10, seed=0)
    for a, b in zip(splits, again, strict=True):
        np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(cv_splits(labels, 10, seed=1)[0].test, splits[0].test)


def test_cv_needs_two_folds(labels):
    with pytest.raises(GenrekitError, match="folds"):
        cv_splits(labels, n_folds=1)


def test_filtered_split_matches_930_rows_by_stem(table, split_dir):
    split, unmatched = filtered_split(table["filename"], split_dir)
    assert unmatched == []
    assert (len(split.train), len(split.val), len(split.test)) == (443, 197, 290)
    _assert_partition(split, len(table), cover=False)
    assert len(split.train) + len(split.val) + len(split.test) == 930
    lists = read_split_dir(split_dir)
    ids = np.array(table_ids(table["filename"]))
    assert set(ids[split.test]) == set(lists["test"])
    assert set(ids[split.train]) == set(lists["train"])
    assert "jazz.00054" in set(ids[split.train])
    assert Counter(table["label"].to_numpy()[split.test])["blues"] == 31


def test_filtered_splits_repeat_the_fixed_split_per_seed(table, split_dir):
    splits, _ = filtered_splits(table["filename"], split_dir, [0, 1, 2])
    assert [s.seed for s in splits] == [0, 1, 2]
    for split in splits[1:]:
        np.testing.assert_array_equal(split.test, splits[0].test)


def test_filtered_split_reports_unmatched_ids(table, split_dir):
    kept = table[table["filename"] != "jazz.00054.wav"]["filename"]
    split, unmatched = filtered_split(kept, split_dir)
    assert unmatched == ["jazz.00054"]
    assert len(split.train) == 442


def test_split_dir_errors_name_the_file(tmp_path):
    with pytest.raises(GenrekitError, match=r"train\.txt: split file not found"):
        read_split_dir(tmp_path)
    (tmp_path / "train.txt").write_text("blues.00001\nblues.00002\n")
    (tmp_path / "valid.txt").write_text("blues.00003\n")
    (tmp_path / "test.txt").write_text("rock.00001\nblues.00002\n")
    with pytest.raises(
        GenrekitError, match=r"test\.txt line 2: id 'blues.00002' already listed in train\.txt"
    ):
        read_split_dir(tmp_path)


def test_describe_protocol():
    assert "10-fold" in describe_protocol("cv10")
    assert "OPTIMISTIC" in describe_protocol("optimistic")
    with pytest.raises(GenrekitError, match="unknown protocol"):
        describe_protocol("holdout")
