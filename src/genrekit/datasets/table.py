"""Feature tables: reading, checking and writing tables with the GTZAN columns (or embeddings).

A table is ``filename``, ``length``, its feature columns and ``label``. Its features are of one
kind (:func:`~genrekit.core.schema.declared_features`): the 57 GTZAN features
(:data:`~genrekit.core.schema.FEATURE_NAMES`), or one or more embeddings, each a block of
columns ``<space>_emb_000``, ``<space>_emb_001``, ... (``genrekit extract --embeddings``
writes ``msd_emb_000`` ... ``msd_emb_199``, the musicnn MSD tagger's 200-d embedding).

Reading rules (:func:`read_table`)
----------------------------------
* The format follows the extension: ``.csv`` or ``.parquet``.
* All columns of the table's kind must be present: the 60
  :data:`~genrekit.core.schema.TABLE_COLUMNS` of a GTZAN table, or ``filename``, ``length``,
  every column of each embedding named and ``label``. Their order may differ: the result is
  reordered (GTZAN order; embeddings by space name, then dimension). Extra columns (an index
  column written by a spreadsheet, notes, ...) are **ignored** and dropped, so a
  misspelt column shows up as the missing column it should have been. A table that holds
  GTZAN features and embeddings, or an embedding column beyond its embedding's size, is refused.
* Every feature must be a finite number and ``length`` a whole, non-negative
  sample count; ``filename`` must be non-empty and unique. Column names are
  stripped of surrounding spaces and a UTF-8 byte-order mark is ignored.
* Labels, chosen by the `labels` argument:

  ``"gtzan"``
      Every label must be one of the ten :data:`~genrekit.core.schema.GENRES`.
  ``None`` or ``"any"``
      The labels in the table, whatever they are, as long as there are at least
      two of them, except that a label which is a near miss of a GTZAN genre
      (``"bluse"``, ``"Blues"``, ``"hip-hop"``) is rejected as a likely typo. A
      table that really uses such a name passes it in an explicit list.
  a sequence of names
      Every label must be in that list (no typo check: the list is the truth).

Errors name the file, the 1-based data row (and its CSV line) and the column.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genrekit.core.atomic import atomic_write, atomic_write_bytes
from genrekit.core.errors import TableError
from genrekit.core.schema import FEATURE_NAMES, GENRES, ID_COLUMNS, LABEL_COLUMN, declared_features

TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File extensions a feature table may have; the extension picks the format."""


def table_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the extension of `path`.

    Raises
    ------
    TableError
        If the extension is neither ``.csv`` nor ``.parquet``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise TableError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")
    return suffix[1:]


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `frame` to `path` atomically, as CSV or Parquet by the extension.

    CSV is written like the public GTZAN table: a header line, no index, LF line
    endings and floats with full (round-trip) precision.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write.
    path : path-like
        Destination; ``.csv`` or ``.parquet``.
    """
    if table_format(path) == "csv":
        with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())


LabelSpec = Sequence[str] | str | None
"""What :func:`read_table` accepts as `labels`: ``"gtzan"``, ``"any"``/``None`` or a list of names."""

_NEAR_MISS_CUTOFF: float = 0.8
"""Similarity (difflib ratio, case-folded) above which a label counts as a GTZAN-genre typo."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of the file at `path`.

    Parameters
    ----------
    path : path-like
        The file to hash.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    TableError
        If the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def feature_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Return the feature columns of a table, all of them present (the 57 features or embeddings).

    Raises
    ------
    TableError
        If a column of the table's kind is missing (naming it), or the table mixes kinds
        (:func:`~genrekit.core.schema.declared_features`).
    """
    names = declared_features(list(frame.columns))
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TableError(f"missing feature column {missing[0]!r} ({len(missing)} missing in all)")
    return names


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Return the feature columns of `frame` as a float64 matrix.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table holding (at least) the :data:`~genrekit.core.schema.FEATURE_NAMES` columns, or
        the columns of one or more embeddings (see :func:`feature_columns`).

    Returns
    -------
    numpy.ndarray, shape (n_rows, n_features)
        The features in ``FEATURE_NAMES`` order (57), or the embeddings' columns in order.

    Raises
    ------
    TableError
        If a feature column is missing, or the table mixes kinds of features.
    """
    return frame.loc[:, list(feature_columns(frame))].to_numpy(dtype=np.float64)


def read_table(
    path: str | os.PathLike[str], labels: LabelSpec = None, *, require_labels: bool = True
) -> pd.DataFrame:
    """Read and check a GTZAN feature table (CSV or Parquet by extension).

    See the module docstring for the rules; the first problem found raises.

    Parameters
    ----------
    path : path-like
        The table, ``.csv`` or ``.parquet``.
    labels : {None, "any", "gtzan"} or sequence of str, default=None
        Which labels are allowed: ``"gtzan"`` for the ten GTZAN genres, ``None``
        or ``"any"`` for the table's own labels (at least two, no near misses of
        a GTZAN genre), or an explicit list of allowed names.
    require_labels : bool, default=True
        If False, empty labels are allowed (a table of unlabelled clips) and kept
        as empty strings; non-empty labels are still checked.

    Returns
    -------
    pandas.DataFrame
        ``filename``, ``length``, the features, ``label`` (the 60 ``TABLE_COLUMNS`` of a GTZAN
        table), in order: ``filename`` and ``label`` as str, ``length`` as int64, the features
        as float64, a fresh RangeIndex.

    Raises
    ------
    TableError
        If the file is missing, empty, of unknown format or breaks a rule.
    """
    fmt = table_format(path)
    raw = _read_raw(path, fmt)
    try:
        names = declared_features(list(raw.columns))
    except TableError as exc:
        raise TableError(f"{path}: {exc}") from None
    columns = table_columns(names)
    missing = [name for name in columns if name not in raw.columns]
    if missing:
        raise TableError(f"{path}: missing column {missing[0]!r} ({len(missing)} of {len(columns)} missing)")
    if len(raw) == 0:
        raise TableError(f"{path}: no data rows (only a header)")
    where = _RowNamer(path, header_lines=1 if fmt == "csv" else None)
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    frame["filename"] = _text_column(raw["filename"], "filename", where, allow_empty=False)
    _check_unique(frame["filename"], where)
    frame["length"] = _length_column(raw["length"], where)
    features = {name: _number_column(raw[name], name, where) for name in names}
    frame = pd.concat([frame, pd.DataFrame(features)], axis=1)
    label = _text_column(raw[LABEL_COLUMN], LABEL_COLUMN, where, allow_empty=not require_labels)
    _check_labels(label, labels, where)
    frame[LABEL_COLUMN] = label
    return frame.loc[:, list(columns)]


def table_columns(features: Sequence[str] = FEATURE_NAMES) -> tuple[str, ...]:
    """Return the columns of a table of `features`, in order: ``filename``, ``length``, them, ``label``."""
    return (*ID_COLUMNS, *features, LABEL_COLUMN)


class _RowNamer:
    """Format ``file row N (line M), column 'c'`` for error messages."""

    def __init__(self, path: str | os.PathLike[str], header_lines: int | None) -> None:
        self.path = path
        self.header_lines = header_lines

    def __call__(self, row: int, column: str) -> str:
        line = "" if self.header_lines is None else f" (line {row + 1 + self.header_lines})"
        return f"{self.path} row {row + 1}{line}, column {column!r}"


def _read_raw(path: str | os.PathLike[str], fmt: str) -> pd.DataFrame:
    """Read `path` with every cell as text (CSV) or as stored (Parquet)."""
    if not Path(path).is_file():
        raise TableError(f"{path}: no such file")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"{path}: empty file (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read as {fmt}: {exc}") from exc
    return frame.rename(columns=lambda name: str(name).strip())


def _is_blank(value: object) -> bool:
    """Return True for None, NaN and whitespace-only strings."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text_column(column: pd.Series, name: str, where: _RowNamer, allow_empty: bool) -> pd.Series:
    """Return `column` as stripped str, raising at the first empty cell unless `allow_empty`."""
    values = []
    for row, value in enumerate(column.tolist()):
        if _is_blank(value):
            if not allow_empty:
                raise TableError(f"{where(row, name)}: empty")
            values.append("")
        else:
            values.append(str(value).strip())
    return pd.Series(values, dtype=object)


def _number_column(column: pd.Series, name: str, where: _RowNamer) -> pd.Series:
    """Return `column` as float64, raising at the first non-number or non-finite cell."""
    values = pd.to_numeric(column, errors="coerce").astype(np.float64)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell = column.iloc[row]
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            reason = "empty"
        elif isinstance(cell, str) and not _parses_as_float(cell):
            reason = f"not a number ({cell!r})"
        else:
            reason = f"not finite ({cell!r})" if isinstance(cell, str) else f"not finite ({cell})"
        raise TableError(f"{where(row, name)}: {reason}")
    return values


def _length_column(column: pd.Series, where: _RowNamer) -> pd.Series:
    """Return the ``length`` column as int64, raising at the first non-count (negative or fractional)."""
    values = _number_column(column, "length", where)
    bad = (values < 0) | (values != np.floor(values))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TableError(f"{where(row, 'length')}: not a sample count ({column.iloc[row]!r})")
    return values.astype(np.int64)


def _parses_as_float(text: str) -> bool:
    """Return True if Python reads `text` as a float (``nan`` and ``inf`` included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_unique(names: pd.Series, where: _RowNamer) -> None:
    """Raise at the first file name that repeats an earlier row's."""
    first_row: dict[str, int] = {}
    for row, name in enumerate(names.tolist()):
        if name in first_row:
            raise TableError(
                f"{where(row, ID_COLUMNS[0])}: duplicate file name {name!r}"
                f" (first in row {first_row[name] + 1})"
            )
        first_row[name] = row


def allowed_labels(labels: LabelSpec) -> tuple[str, ...] | None:
    """Return the explicit label set of a `labels` spec, or None for "the table's own labels".

    Parameters
    ----------
    labels : {None, "any", "gtzan"} or sequence of str
        As for :func:`read_table`; a comma-separated string such as
        ``"rock,jazz"`` is split.

    Returns
    -------
    tuple of str or None
        The allowed labels, or None for any labels.

    Raises
    ------
    TableError
        If an explicit list is empty or has an empty name.
    """
    if labels is None or labels == "any":
        return None
    if labels == "gtzan":
        return GENRES
    names = labels.split(",") if isinstance(labels, str) else list(labels)
    names = [name.strip() for name in names]
    if not names or any(not name for name in names):
        raise TableError(f"label list {labels!r}: empty label name")
    return tuple(names)


def _check_labels(label: pd.Series, labels: LabelSpec, where: _RowNamer) -> None:
    """Raise at the first label the `labels` rule rejects."""
    allowed = allowed_labels(labels)
    present = label[label != ""]
    if allowed is not None:
        allowed_set = set(allowed)
        for row, value in present.items():
            if value not in allowed_set:
                raise TableError(
                    f"{where(int(row), LABEL_COLUMN)}: unknown label {value!r}"
                    f"{_suggestion(value, allowed)}; allowed: {', '.join(allowed)}"
                )
        return
    for row, value in present.items():
        if value not in GENRES and _suggestion(value, GENRES):
            raise TableError(
                f"{where(int(row), LABEL_COLUMN)}: label {value!r} looks like a misspelt GTZAN genre"
                f"{_suggestion(value, GENRES)}; list the labels explicitly if it is meant"
            )
    distinct = present.unique()
    if len(present) and len(distinct) < 2:
        raise TableError(
            f"{where.path}: column {LABEL_COLUMN!r} has one label only ({distinct[0]!r}); need >= 2"
        )


def _suggestion(value: str, choices: Sequence[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for a near miss of one of `choices`, else ``""``."""
    folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(value.casefold(), list(folded), n=1, cutoff=_NEAR_MISS_CUTOFF)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


_DERIVED_NAME = re.compile(
    r"^(?P<source>.+?)"
    r"(?:\.(?P<augment>pitch[+-]\d+|stretch\d+(?:\.\d+)?|noise\d+db))?"
    r"(?:\.(?P<segment>0|[1-9]\d*))?$"
)
"""A row name's stem: the source clip's stem, an augmentation tag, a segment number (both optional)."""


def source_clip(filename: str) -> str:
    """Return the name of the source clip a table row was computed from.

    ``genrekit extract`` names the rows it derives from a clip after the clip (see
    :func:`genrekit.audio.window.segment_name` and :func:`genrekit.audio.augment.augmented_name`):

    =======================================  ===================================
    row ``filename``                         source clip
    =======================================  ===================================
    ``blues.00000.wav`` (a whole clip)       ``blues.00000.wav`` (itself)
    ``blues.00000.3.wav`` (segment 3)        ``blues.00000.wav``
    ``blues.00000.pitch+2.wav`` (augmented)  ``blues.00000.wav``
    ``blues.00000.pitch+2.3.wav``            ``blues.00000.wav``
    =======================================  ===================================

    A segment number is the last dot-separated part of the stem written without leading zeros
    (``0``, ``3``, ``12``; GTZAN's ``00000`` is an id, not a segment); an augmentation tag is
    ``pitch+N``/``pitch-N`` (semitones), ``stretchR`` (rate) or ``noiseNdb`` (SNR). Any
    folder part is kept. So a file of your own called ``song.2.mp3`` counts as segment 2 of
    ``song.mp3``: it is kept with ``song.mp3``'s other rows, which errs on the safe side
    (:func:`source_groups` given the labels splits such rows apart when their labels differ).

    Parameters
    ----------
    filename : str
        A table row's ``filename``.

    Returns
    -------
    str
        The source clip's name.

    Examples
    --------
    >>> source_clip("blues.00000.pitch-2.7.wav")
    'blues.00000.wav'
    """
    stem, ext = os.path.splitext(str(filename))
    match = _DERIVED_NAME.match(stem)
    return (match.group("source") if match else stem) + ext


def is_segment(filename: str) -> bool:
    """Whether a row name is a segment's (``blues.00000.3.wav``; see :func:`source_clip`).

    Parameters
    ----------
    filename : str
        A table row's ``filename``.

    Returns
    -------
    bool
        True when the stem ends in a segment number (``.0``, ``.3``, ``.12``).
    """
    match = _DERIVED_NAME.match(os.path.splitext(str(filename))[0])
    return bool(match and match.group("segment") is not None)


def is_augmented(filename: str) -> bool:
    """Whether a row name is an augmented version's (``blues.00000.pitch+2.wav``; see :func:`source_clip`).

    Augmented rows only ever train: the evaluation protocols and ``train``'s validation
    split leave them out of every validation and test part
    (:func:`genrekit.selection.protocols.without_augmented`).

    Parameters
    ----------
    filename : str
        A table row's ``filename``.

    Returns
    -------
    bool
        True for a pitch-shifted, time-stretched or noise-mixed row (or a segment of one).
    """
    match = _DERIVED_NAME.match(os.path.splitext(str(filename))[0])
    return bool(match and match.group("augment") is not None)


def rows_window_seconds(frame: pd.DataFrame, sr: int = 22050) -> float:
    """Return the length in seconds of the audio behind a table's rows (what a model trained on it sees).

    30 for a table of whole clips (a model trained on it predicts 30-second windows, as
    the GTZAN table's); for a table of segments (every ``filename`` a segment's, see
    :func:`is_segment`, all of one ``length``), that length in seconds, to 0.01 s (3.0 for
    ``extract --segment-seconds 3``, whose segments hold 66,149 samples). Names decide nothing
    alone: ``extract``'s segments of a table all hold the same number of samples, so rows named
    like segments whose lengths differ (``Symphony No.5.mp3`` and ``Vol.2.flac``), or a single
    such row among whole files, are whole files.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table (``filename`` and ``length`` columns).
    sr : int
        Sample rate of the ``length`` column.

    Returns
    -------
    float
        The window length in seconds.

    Raises
    ------
    TableError
        If several rows are segments of one length and others are not (say which of each).
    """
    segment = np.array([is_segment(name) for name in frame["filename"]], dtype=bool)
    lengths = np.unique(frame["length"].to_numpy()[segment])
    if len(lengths) != 1 or (segment.sum() == 1 and not segment.all()):
        return 30.0
    if not segment.all():
        whole, part = frame["filename"][~segment].iloc[0], frame["filename"][segment].iloc[0]
        raise TableError(
            f"the table mixes whole clips ({whole!r}) and segments ({part!r}); "
            "train on one kind, or give --window-seconds"
        )
    return round(float(lengths[0]) / sr, 2)


def source_groups(filenames: Sequence[str], labels: Sequence[str] | None = None) -> np.ndarray:
    """Return the source clip (:func:`source_clip`) of every row name, as an array of str.

    Parameters
    ----------
    filenames : sequence of str
        The table's ``filename`` column.
    labels : sequence of str, optional
        The table's ``label`` column. The rows ``extract`` derives from a clip (segments,
        augmented versions) always share its label, so when the rows of a name-derived source
        carry different labels, their names only look derived (``Vol.1.flac`` and ``Vol.2.flac``
        of two genres): each of those rows is then its own source.

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        The source clip of each row.
    """
    groups = np.asarray([source_clip(name) for name in filenames], dtype=str)
    if labels is None or not len(groups):
        return groups
    pairs = pd.DataFrame({"source": groups, "label": np.asarray(labels, dtype=str)})
    mixed = pairs.groupby("source")["label"].transform("nunique").to_numpy() > 1
    return np.where(mixed, np.asarray(filenames, dtype=str), groups)


def table_labels(table: str | os.PathLike[str]) -> list[str] | str:
    """Return the labels a table holds, so that :func:`read_table` accepts them all.

    For readers to whom labels are free text (a mapping, or nobody, judges them); ``"any"`` when
    the column cannot be read, so that :func:`read_table` reports the problem in its own words.
    """
    try:
        if str(table).lower().endswith(".parquet"):
            column = pd.read_parquet(table, columns=["label"])["label"]
        else:
            column = pd.read_csv(table, usecols=["label"], dtype=str, keep_default_na=False)["label"]
    except (OSError, ValueError, KeyError):
        return "any"
    return sorted({str(value).strip() for value in column.dropna()} - {""}) or "any"
