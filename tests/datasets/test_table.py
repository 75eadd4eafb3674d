"""Tests for reading and checking feature tables (genrekit.datasets.table)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from genrekit.core.errors import TableError
from genrekit.core.schema import FEATURE_NAMES, GENRES, TABLE_COLUMNS
from genrekit.datasets.table import allowed_labels, feature_matrix, file_sha256, read_table, write_table


@pytest.fixture(scope="module")
def raw(gtzan_table) -> pd.DataFrame:
    """The real table with every cell as text, for making broken copies."""
    return pd.read_csv(gtzan_table, dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, tmp_path, name: str = "t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_real_table_loads(gtzan_table):
    frame = read_table(gtzan_table, labels="gtzan")
    assert frame.shape == (1000, 60)
    assert tuple(frame.columns) == TABLE_COLUMNS
    assert frame["label"].value_counts().to_dict() == {genre: 100 for genre in GENRES}
    assert frame["length"].dtype == np.int64
    # Values are read exactly as Python reads them (float32 reprs round-trip).
    assert frame.loc[0, "chroma_stft_mean"] == 0.35008811950683594
    assert read_table(gtzan_table).equals(frame)


def test_feature_matrix_and_sha(gtzan_table):
    frame = read_table(gtzan_table)
    matrix = feature_matrix(frame)
    assert matrix.shape == (1000, 57) and matrix.dtype == np.float64
    assert matrix[0, FEATURE_NAMES.index("tempo")] == frame.loc[0, "tempo"]
    digest = file_sha256(gtzan_table)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    with pytest.raises(TableError, match="missing feature column 'tempo'"):
        feature_matrix(frame.drop(columns="tempo"))


def test_column_order_extra_columns_and_parquet(raw, tmp_path):
    shuffled = raw[list(reversed(raw.columns))].copy()
    shuffled.insert(3, "notes", "x")
    frame = read_table(_write(shuffled, tmp_path))
    assert tuple(frame.columns) == TABLE_COLUMNS
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "t.csv").read_bytes())
    assert read_table(tmp_path / "bom.csv").equals(frame)
    write_table(frame, tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet").equals(frame)
    frame.loc[6, "rolloff_var"] = np.inf
    write_table(frame, tmp_path / "inf.parquet")
    with pytest.raises(TableError, match=r"inf\.parquet row 7, column 'rolloff_var': not finite \(inf\)"):
        read_table(tmp_path / "inf.parquet")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="tempo"), r"missing column 'tempo'"),
        (
            lambda f: f.assign(tempo=f["tempo"].where(f.index != 11, "abc")),
            r"row 12 \(line 13\), column 'tempo': not a number \('abc'\)",
        ),
        (
            lambda f: f.assign(rms_var=f["rms_var"].where(f.index != 4, "nan")),
            r"row 5 \(line 6\), column 'rms_var': not finite",
        ),
        (
            lambda f: f.assign(mfcc3_mean=f["mfcc3_mean"].where(f.index != 0, "inf")),
            r"row 1 \(line 2\), column 'mfcc3_mean': not finite",
        ),
        (
            lambda f: f.assign(length=f["length"].where(f.index != 7, "")),
            r"row 8 \(line 9\), column 'length': empty",
        ),
        (
            lambda f: f.assign(filename=f["filename"].where(f.index != 9, f.loc[2, "filename"])),
            r"row 10 \(line 11\), column 'filename': duplicate file name 'blues\.00002\.wav'"
            r" \(first in row 3\)",
        ),
        (
            lambda f: f.assign(label=f["label"].where(f.index != 20, "bluse")),
            r"row 21 \(line 22\), column 'label': .*'bluse'.*did you mean 'blues'",
        ),
        (
            lambda f: f.assign(label=f["label"].where(f.index != 30, "")),
            r"row 31 \(line 32\), column 'label': empty",
        ),
        (lambda f: f.iloc[:0], r"no data rows"),
        (
            lambda f: f.assign(length=f["length"].where(f.index != 3, "12.5")),
            r"row 4 \(line 5\), column 'length': not a sample count",
        ),
    ],
    ids=[
        "missing-column",
        "text",
        "nan",
        "inf",
        "empty-cell",
        "duplicate",
        "typo-label",
        "empty-label",
        "header-only",
        "fractional-length",
    ],
)
def test_broken_tables(raw, tmp_path, edit, message):
    path = _write(edit(raw.copy()), tmp_path)
    with pytest.raises(TableError, match=message) as info:
        read_table(path)
    assert str(path) in str(info.value)


def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match="empty file"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(TableError, match=r"unknown table format '\.xlsx'"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(TableError, match="cannot read as parquet"):
        read_table(tmp_path / "bad.parquet")


def test_label_rules(raw, tmp_path):
    own = raw.iloc[:200].copy()
    own["label"] = np.where(np.arange(200) % 2, "techno", "folk")
    path = _write(own, tmp_path)
    # Own genres pass with "any"/None and with an explicit list, not with "gtzan".
    assert set(read_table(path)["label"]) == {"techno", "folk"}
    assert set(read_table(path, labels="any")["label"]) == {"techno", "folk"}
    assert len(read_table(path, labels=["folk", "techno", "dub"])) == 200
    with pytest.raises(TableError, match=r"row 1 \(line 2\), column 'label': unknown label 'folk'"):
        read_table(path, labels="gtzan")
    with pytest.raises(TableError, match=r"row 2 \(line 3\), column 'label': unknown label 'techno'"):
        read_table(path, labels="folk,dub")
    # A near miss of a GTZAN genre is caught by default but allowed when listed explicitly.
    own.loc[5, "label"] = "Hip-Hop"
    path = _write(own, tmp_path)
    with pytest.raises(TableError, match=r"row 6 .*'Hip-Hop' looks like a misspelt GTZAN genre.*'hiphop'"):
        read_table(path)
    assert "Hip-Hop" in set(read_table(path, labels=["folk", "techno", "Hip-Hop"])["label"])
    # One label only is not a classification table.
    own["label"] = "folk"
    with pytest.raises(TableError, match="one label only"):
        read_table(_write(own, tmp_path))


def test_unlabelled_table(raw, tmp_path):
    path = _write(raw.iloc[:3].assign(label=""), tmp_path)
    with pytest.raises(TableError, match="column 'label': empty"):
        read_table(path)
    assert list(read_table(path, require_labels=False)["label"]) == ["", "", ""]


def test_allowed_labels():
    assert allowed_labels("gtzan") == GENRES
    assert allowed_labels(None) is None and allowed_labels("any") is None
    assert allowed_labels(" rock, jazz ") == ("rock", "jazz")
    with pytest.raises(TableError, match="empty label name"):
        allowed_labels("rock,,jazz")
