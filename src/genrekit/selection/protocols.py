"""Evaluation protocols: how the rows of a feature table are split to train and judge a model.

Every protocol yields :class:`Split` objects (train / validation / test row indices
plus the repeat or fold number and the seed that drew them), deterministic from
their seeds. Every reported number names the protocol that produced it.

``paper``
    Stratified 80/10/10 train/validation/test, redrawn for each seed. The paper
    writes "88%" for the training share, a typo for 80% (80 + 10 + 10 = 100).
``cv<k>``
    Stratified k-fold cross-validation (``cv10`` by default); the validation set
    for early stopping is carved, stratified, out of each training fold (1/9 of
    it, so train/validation/test are about 80/10/10 for k = 10).
``filtered``
    The fault-filtered, artist-conscious split of Kereliuk, Sturm & Larsen (2015)
    (train 443 / valid 197 / test 290 ids). The split is fixed: repeating it with
    several seeds measures training randomness only.
``optimistic``
    The paper's probable protocol, reported separately: the same splits as
    ``paper``, the model trained on the train + validation rows (90%) and early
    stopping (best epoch restored) decided on the *test* rows. The test set then
    chooses the model, so its accuracy is biased upwards.

Baselines run on the same splits with the same scaler handling (statistics fitted
on the training rows only); they do not use the validation rows.

Source clips
    Every protocol splits *source clips*, not rows: the rows derived from one clip
    (its 3-second segments, its augmented copies; see :func:`genrekit.datasets.table.source_clip`)
    always land on the same side of every split, and the inner cross-validation of a
    tuned model (:class:`SourceKFold`) keeps them together too. The draws are made over
    the clips, in the order they first appear in the table, stratified by their labels;
    on a table of whole clips (one row per clip) that is exactly the row-level draw, so
    the splits of the 30-second table are the same as without grouping.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
    train_test_split,
)
from sklearn.utils.multiclass import type_of_target

from genrekit.core.errors import GenrekitError, TableError
from genrekit.datasets.table import is_augmented, source_clip

PAPER = "paper"
FILTERED = "filtered"
OPTIMISTIC = "optimistic"

SPLIT_FILES: tuple[str, ...] = ("train.txt", "valid.txt", "test.txt")
"""The id lists of a split folder (one GTZAN id such as ``blues.00012`` a line)."""


@dataclass(frozen=True)
class Split:
    """One train / validation / test partition of the table's rows.

    Attributes
    ----------
    protocol : str
        Name of the protocol that drew it (``"paper"``, ``"cv10"``, ...).
    repeat : int
        Repeat (seed) number or fold number within the protocol, from 0.
    seed : int
        Seed of the split and of the model trained on it.
    train, val, test : numpy.ndarray
        Row indices (int64, sorted). `val` holds the rows used for early
        stopping; for ``optimistic`` it is the test set itself.
    """

    protocol: str
    repeat: int
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def val_is_test(self) -> bool:
        """Whether early stopping looks at the test rows (the optimistic protocol)."""
        return bool(np.array_equal(self.val, self.test))


def cv_name(n_folds: int) -> str:
    """Return the protocol name of `n_folds`-fold cross-validation (``"cv10"`` for 10)."""
    return f"cv{n_folds}"


def describe_protocol(name: str) -> str:
    """Return a one-sentence description of protocol `name` for reports.

    Parameters
    ----------
    name : str
        ``"paper"``, ``"filtered"``, ``"optimistic"`` or ``"cv<k>"``.

    Returns
    -------
    str
        The description.
    """
    if name == PAPER:
        return (
            "Stratified 80/10/10 train/validation/test split (the paper's '88%' is a typo) redrawn for each "
            "seed; early stopping on the validation rows; mean, std and 95% t-interval over the seeds."
        )
    if name == FILTERED:
        return (
            "Fixed fault-filtered artist-conscious split (Kereliuk, Sturm & Larsen 2015; train 443 / "
            "valid 197 / test 290); one run per seed, so the interval covers training randomness only."
        )
    if name == OPTIMISTIC:
        return (
            "OPTIMISTIC (the paper's probable protocol): the paper splits, trained on train + validation "
            "(90%) with early stopping on the TEST rows' loss (best epoch restored), so the test set picks "
            "the epoch; biased upwards."
        )
    if name.startswith("cv") and name[2:].isdigit():
        k = int(name[2:])
        return (
            f"Stratified {k}-fold cross-validation; early stopping on a stratified 1/9 of each training "
            f"fold; mean, std and 95% t-interval over the {k} folds."
        )
    raise GenrekitError(f"unknown protocol {name!r}")


_BIGGER = "Use a bigger table (the GTZAN table has 100 rows per genre) or fewer --folds."


def _sorted(indices: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(indices, dtype=np.int64))


def check_stratifiable(
    y: Sequence[str] | np.ndarray, held_out: float, what: str, hint: str = "", unit: str = "rows"
) -> None:
    """Raise a TableError, in genrekit's words, if `y` is too small to split holding out `held_out`.

    A stratified split keeps every genre's share on both sides, so every genre needs at least
    two rows and each side at least one row per genre (the rule scikit-learn enforces).

    Parameters
    ----------
    y : array-like of str
        The labels.
    held_out : float
        The share of rows held out (validation or test), as ``test_size``.
    what : str
        What is being split, for the message (``"features.csv, validation split"``).
    hint : str
        What the user can do instead, appended to the message.
    unit : str
        What `y` counts, for the message: ``"rows"``, or ``"source clips"`` (one label per clip).

    Raises
    ------
    TableError
        If the split is impossible; the message gives the counts that are short.
    """
    labels, counts = np.unique(np.asarray(y, dtype=str), return_counts=True)
    n, k = int(counts.sum()), len(labels)
    n_held = math.ceil(held_out * n)
    problems = []
    few = labels[counts < 2]
    if len(few):
        problems.append(
            f"every genre needs at least 2 {unit}, and {', '.join(few)} "
            f"{'has' if len(few) == 1 else 'have'} 1"
        )
    if n_held < k:
        problems.append(f"the {held_out:.0%} held out is {n_held} {unit}, fewer than the {k} genres")
    if n - n_held < k:
        problems.append(f"the {unit} left to train on are {n - n_held}, fewer than the {k} genres")
    if problems:
        raise TableError(
            f"{what}: {n} {unit} of {k} genres are too few for a stratified split: "
            + "; ".join(problems)
            + (f". {hint}" if hint else "")
        )


Groups = Sequence[str] | np.ndarray | None
"""The source clip of each row (:func:`genrekit.datasets.table.source_groups`); None: every row is its own."""


def source_codes(groups: Groups, n_rows: int) -> np.ndarray:
    """Return the source clip number of each row, clips numbered by first appearance.

    Parameters
    ----------
    groups : sequence of str or None
        The source clip of each row; None numbers every row as its own clip (``0 .. n-1``).
    n_rows : int
        Number of rows.

    Returns
    -------
    numpy.ndarray of int64, shape (n_rows,)
    """
    if groups is None:
        return np.arange(n_rows, dtype=np.int64)
    groups = np.asarray(groups, dtype=str)
    if len(groups) != n_rows:
        raise GenrekitError(f"groups: {len(groups)} source names for {n_rows} rows")
    return pd.factorize(groups)[0].astype(np.int64)


def source_labels(y: np.ndarray, codes: np.ndarray, groups: Groups) -> np.ndarray:
    """Return the label of each source clip (by :func:`source_codes` number); refuse mixed clips.

    Parameters
    ----------
    y : numpy.ndarray of str, shape (n,)
        Labels of the rows.
    codes : numpy.ndarray of int, shape (n,)
        Source clip number of each row (:func:`source_codes`).
    groups : sequence of str or None
        Source clip name of each row, for the error message (None: row numbers).

    Returns
    -------
    numpy.ndarray of str, shape (n_clips,)
        The label of clip ``i`` at position ``i``.

    Raises
    ------
    TableError
        If the rows of one clip carry different labels (naming the clip and both labels).
    """
    labels = np.empty(codes.max() + 1 if len(codes) else 0, dtype=y.dtype)
    labels[codes] = y
    mixed = np.flatnonzero(labels[codes] != y)
    if len(mixed):
        row = mixed[0]
        name = row if groups is None else str(np.asarray(groups)[row])
        raise TableError(
            f"source clip {name}: its rows carry different labels "
            f"({str(labels[codes[row]])!r} and {str(y[row])!r}); "
            "rows of one clip (segments, augmented copies) must share its label"
        )
    return labels


def counted_in(codes: np.ndarray) -> str:
    """Return what a split of rows of clips `codes` counts, for messages.

    Parameters
    ----------
    codes : numpy.ndarray of int
        Source clip number of each row (:func:`source_codes`).

    Returns
    -------
    str
        ``"rows"`` when every row is its own clip, else ``"source clips"``.
    """
    return "rows" if len(np.unique(codes)) == len(codes) else "source clips"


def _rows_of(codes: np.ndarray, rows: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Return the `rows` whose clip is in `sources`: clip by clip in the order of `sources`."""
    rank = np.full(codes.max() + 1, -1, dtype=np.int64)
    rank[sources] = np.arange(len(sources))
    order = rank[codes[rows]]
    kept = order >= 0
    return rows[kept][np.argsort(order[kept], kind="stable")]


def split_sources(
    y: np.ndarray, codes: np.ndarray, rows: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` in two by source clip, stratified by the clips' labels.

    The clips of `rows` are drawn in the order they first appear in `rows` with
    :func:`sklearn.model_selection.train_test_split`; each side gets all the rows of its clips.
    When every row is its own clip this returns exactly ``train_test_split(rows, ...)``.

    Parameters
    ----------
    y : numpy.ndarray of str
        Labels of every table row.
    codes : numpy.ndarray of int
        Source clip of every table row (:func:`source_codes`).
    rows : numpy.ndarray of int
        The rows to split.
    test_size : float
        Share of the clips held out.
    seed : int
        Seed of the draw.

    Returns
    -------
    kept, held_out : numpy.ndarray of int
        Row indices, clip by clip in the order drawn.
    """
    rows = np.asarray(rows, dtype=np.int64)
    sources = pd.unique(codes[rows])
    labels = source_labels(y, codes, None)[sources]
    kept, held = train_test_split(sources, test_size=test_size, stratify=labels, random_state=seed)
    return _rows_of(codes, rows, kept), _rows_of(codes, rows, held)


def stratified_holdout(
    y: np.ndarray, codes: np.ndarray, rows: np.ndarray, held_out: float, seed: int, what: str, hint: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check that `rows` can be split stratified by clip (:func:`check_stratifiable`), then split them.

    Parameters
    ----------
    y : numpy.ndarray of str
        Labels of every table row.
    codes : numpy.ndarray of int
        Source clip of every table row (:func:`source_codes`).
    rows : numpy.ndarray of int
        The rows to split.
    held_out : float
        Share of the clips held out.
    seed : int
        Seed of the draw.
    what, hint : str
        What is split and what the user can do instead, for the error message.

    Returns
    -------
    kept, held_out : numpy.ndarray of int
        Row indices (see :func:`split_sources`).

    Raises
    ------
    TableError
        If the clips of `rows` are too few for the split.
    """
    labels = source_labels(y, codes, None)[pd.unique(codes[rows])]
    check_stratifiable(labels, held_out, what, hint, counted_in(codes))
    return split_sources(y, codes, rows, held_out, seed)


def paper_split(y: Sequence[str] | np.ndarray, seed: int, repeat: int = 0, groups: Groups = None) -> Split:
    """Draw one stratified 80/10/10 train/validation/test split (of source clips).

    Parameters
    ----------
    y : array-like of str, shape (n,)
        The labels, for stratification.
    seed : int
        Seed of the draw.
    repeat : int
        Repeat number recorded in the split.
    groups : sequence of str, optional
        Source clip of each row (see the module docstring); None: every row its own.

    Returns
    -------
    Split
        Protocol ``"paper"``: 10% test, then 1/9 of the rest (10% of all) validation.
    """
    y = np.asarray(y)
    codes = source_codes(groups, len(y))
    source_labels(y, codes, groups)
    rest, test = stratified_holdout(
        y, codes, np.arange(len(y)), 0.1, seed, "protocol paper (test split)", _BIGGER
    )
    train, val = stratified_holdout(y, codes, rest, 1 / 9, seed, "protocol paper (validation split)", _BIGGER)
    return Split(PAPER, repeat, seed, _sorted(train), _sorted(val), _sorted(test))


def paper_splits(y: Sequence[str] | np.ndarray, seeds: Sequence[int], groups: Groups = None) -> list[Split]:
    """Return one :func:`paper_split` per seed (repeat ``i`` uses ``seeds[i]``)."""
    return [paper_split(y, seed, repeat, groups) for repeat, seed in enumerate(seeds)]


def optimistic_splits(
    y: Sequence[str] | np.ndarray, seeds: Sequence[int], groups: Groups = None
) -> list[Split]:
    """Return the ``optimistic`` splits: the paper splits with the test rows as validation.

    The training rows are the paper split's train + validation rows (90%), and
    the validation rows (for early stopping) are the test rows.

    Parameters
    ----------
    y : array-like of str, shape (n,)
        The labels.
    seeds : sequence of int
        One split per seed, the same draws as :func:`paper_splits`.
    groups : sequence of str, optional
        Source clip of each row.

    Returns
    -------
    list of Split
    """
    splits = []
    for split in paper_splits(y, seeds, groups):
        train = _sorted(np.concatenate([split.train, split.val]))
        splits.append(Split(OPTIMISTIC, split.repeat, split.seed, train, split.test, split.test))
    return splits


def cv_splits(
    y: Sequence[str] | np.ndarray, n_folds: int = 10, seed: int = 0, groups: Groups = None
) -> list[Split]:
    """Return stratified `n_folds`-fold cross-validation splits of source clips, with validation sets.

    Parameters
    ----------
    y : array-like of str, shape (n,)
        The labels.
    n_folds : int
        Number of folds (at least 2).
    seed : int
        Seed of the fold assignment; fold ``k`` carves its validation set and
        trains its model with seed ``seed + k``.
    groups : sequence of str, optional
        Source clip of each row: the folds are drawn over the clips
        (scikit-learn's ``StratifiedKFold`` on the clips, stratified by their labels).

    Returns
    -------
    list of Split
        One per fold; the test sets partition the rows. The validation set is a
        stratified 1/9 of the training fold's clips.
    """
    if n_folds < 2:
        raise GenrekitError(f"folds: need at least 2, got {n_folds}")
    y = np.asarray(y)
    codes = source_codes(groups, len(y))
    source_y = source_labels(y, codes, groups)
    labels, counts = np.unique(source_y.astype(str), return_counts=True)
    if counts.min() < n_folds:
        short = ", ".join(labels[counts < n_folds])
        raise TableError(
            f"protocol {cv_name(n_folds)}: {n_folds}-fold cross-validation needs at least {n_folds} "
            f"{counted_in(codes)} of "
            f"every genre, and {short} {'has' if (counts < n_folds).sum() == 1 else 'have'} fewer "
            f"(fewest: {counts.min()}). {_BIGGER}"
        )
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    all_rows = np.arange(len(y))
    splits = []
    for fold, (rest_sources, test_sources) in enumerate(folds.split(np.zeros(len(source_y)), source_y)):
        rest = np.sort(_rows_of(codes, all_rows, rest_sources))
        test = _rows_of(codes, all_rows, test_sources)
        rest_clips = pd.unique(codes[rest])
        what = f"protocol {cv_name(n_folds)} (validation split)"
        check_stratifiable(source_y[rest_clips], 1 / 9, what, _BIGGER, counted_in(codes))
        carve = StratifiedShuffleSplit(n_splits=1, test_size=1 / 9, random_state=seed + fold)
        train_pos, val_pos = next(carve.split(np.zeros(len(rest_clips)), source_y[rest_clips]))
        splits.append(
            Split(
                cv_name(n_folds),
                fold,
                seed + fold,
                _sorted(_rows_of(codes, rest, rest_clips[train_pos])),
                _sorted(_rows_of(codes, rest, rest_clips[val_pos])),
                _sorted(test),
            )
        )
    return splits


def cv_fit_splits(
    y: Sequence[str] | np.ndarray,
    n_folds: int,
    seed: int,
    groups: Groups = None,
    filenames: Sequence[str] | None = None,
) -> list[Split]:
    """Return :func:`cv_splits` for models fitted without early stopping: train on train + validation.

    Parameters
    ----------
    y : array-like of str, shape (n,)
        The labels.
    n_folds : int
        Number of folds.
    seed : int
        Seed of the folds.
    groups : sequence of str, optional
        Source clip of each row.
    filenames : sequence of str, optional
        The table's ``filename`` column: augmented rows train but are left out of the test
        parts (:func:`without_augmented`).

    Returns
    -------
    list of Split
        One per fold: ``train`` the fold's training then validation rows, ``val`` empty.
    """
    splits = [
        replace(split, train=np.concatenate([split.train, split.val]), val=split.val[:0])
        for split in cv_splits(y, n_folds, seed, groups)
    ]
    return splits if filenames is None else without_augmented(splits, filenames)


def read_split_dir(split_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read the id lists ``train.txt``, ``valid.txt`` and ``test.txt`` of a split folder.

    Parameters
    ----------
    split_dir : path-like
        Folder holding the three files, one id (``blues.00012``) a line.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}`` in file order.

    Raises
    ------
    GenrekitError
        If a file is missing, an id repeats, or the lists overlap.
    """
    split_dir = Path(split_dir)
    lists: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for name in SPLIT_FILES:
        path = split_dir / name
        if not path.is_file():
            raise GenrekitError(f"{path}: split file not found")
        ids = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            item = Path(line.strip()).name
            if not item:
                continue
            item = item[:-4] if item.endswith((".wav", ".WAV", ".au")) else item
            if item in seen:
                raise GenrekitError(f"{path} line {line_no}: id {item!r} already listed in {seen[item]}")
            seen[item] = name
            ids.append(item)
        lists[name.removesuffix(".txt")] = ids
    return lists


def table_ids(filenames: Sequence[str]) -> list[str]:
    """Return the GTZAN id of each table ``filename``: its source clip's stem (``blues.00012``).

    A segment or augmented row (``blues.00012.3.wav``) gets its source clip's id, so it
    sits on the side of the split its clip is listed on.
    """
    return [Path(source_clip(str(name))).stem for name in filenames]


def filtered_split(filenames: Sequence[str], split_dir: str | os.PathLike[str]) -> tuple[Split, list[str]]:
    """Match the ids of a split folder to table rows by their source clip's stem.

    Every row of a clip (the clip itself, its segments, its augmented copies) goes to the
    part its id is listed in; rows of unlisted clips are left out.

    Parameters
    ----------
    filenames : sequence of str
        The table's ``filename`` column (``blues.00012.wav``).
    split_dir : path-like
        Folder with ``train.txt``, ``valid.txt``, ``test.txt``.

    Returns
    -------
    split : Split
        Protocol ``"filtered"``, repeat 0, seed 0.
    unmatched : list of str
        Listed ids with no table row (left out of the split).

    Raises
    ------
    GenrekitError
        If a part of the split matches no table row.
    """
    lists = read_split_dir(split_dir)
    position: dict[str, list[int]] = {}
    for row, item in enumerate(table_ids(filenames)):
        position.setdefault(item, []).append(row)
    parts: dict[str, np.ndarray] = {}
    unmatched: list[str] = []
    for part, ids in lists.items():
        rows = [row for item in ids for row in position.get(item, [])]
        unmatched.extend(item for item in ids if item not in position)
        if not rows:
            raise GenrekitError(f"{Path(split_dir) / (part + '.txt')}: no id matches a table filename")
        parts[part] = _sorted(np.array(rows))
    return Split(FILTERED, 0, 0, parts["train"], parts["valid"], parts["test"]), unmatched


def filtered_splits(
    filenames: Sequence[str], split_dir: str | os.PathLike[str], seeds: Sequence[int]
) -> tuple[list[Split], list[str]]:
    """Return the fixed filtered split once per seed (training randomness only) and unmatched ids."""
    split, unmatched = filtered_split(filenames, split_dir)
    splits = [
        Split(FILTERED, repeat, seed, split.train, split.val, split.test) for repeat, seed in enumerate(seeds)
    ]
    return splits, unmatched


def without_augmented(splits: Sequence[Split], filenames: Sequence[str]) -> list[Split]:
    """Drop augmented rows (:func:`genrekit.datasets.table.is_augmented`) from the validation and test parts.

    Augmented rows (pitch-shifted, time-stretched, noise-mixed copies of a clip) are for training
    only: their clip's side of a split keeps them for training, but no score (test) and no early
    stopping or calibration (validation) ever sees altered audio. Without augmented rows the
    splits are returned unchanged.

    Parameters
    ----------
    splits : sequence of Split
        Splits of the table's rows.
    filenames : sequence of str
        The table's ``filename`` column.

    Returns
    -------
    list of Split
        The same splits, with the augmented rows left out of ``val`` and ``test``.
    """
    augmented = np.array([is_augmented(name) for name in filenames], dtype=bool)
    if not augmented.any():
        return list(splits)
    return [
        replace(split, val=split.val[~augmented[split.val]], test=split.test[~augmented[split.test]])
        for split in splits
    ]


def fit_on_split(
    model: Any, X: np.ndarray, y: np.ndarray, split: Split, uses_validation: bool, groups: Groups = None
) -> Any:
    """Fit `model` on the training rows of `split`, with early stopping data when it takes it.

    Parameters
    ----------
    model : estimator
        A classifier with ``fit``; when `uses_validation`, ``fit(X, y, X_val, y_val)``.
    X : numpy.ndarray, shape (n, n_features)
        All rows.
    y : numpy.ndarray of str, shape (n,)
        All labels.
    split : Split
        Which rows to train and validate on.
    uses_validation : bool
        Pass the validation rows to ``fit`` (the CNN's early stopping); baselines
        ignore them.
    groups : sequence of str, optional
        Source clip of every row: the model's inner cross-validations keep a clip's rows
        together (:func:`rows_from_sources`).

    Returns
    -------
    estimator
        The fitted `model`.
    """
    if uses_validation and len(split.val):
        return model.fit(X[split.train], y[split.train], X[split.val], y[split.val])
    with rows_from_sources(X[split.train], None if groups is None else np.asarray(groups)[split.train]):
        return model.fit(X[split.train], y[split.train])


_ROW_SOURCES: contextvars.ContextVar[dict[bytes, int] | None] = contextvars.ContextVar(
    "row_sources", default=None
)
"""Inside :func:`rows_from_sources`: the source clip number of each row to fit, by its bytes."""


@contextlib.contextmanager
def rows_from_sources(X: np.ndarray, groups: Groups) -> Iterator[None]:
    """Let the inner cross-validations of the fits in this block keep each source clip's rows together.

    Inside the block, :class:`SourceKFold` finds the source clip of each row it is asked to
    split by the row's feature values (the bytes of its float64 features, as the model
    receives them), so it works at any depth of nesting (a search inside an ensemble's
    member) without passing the clips through scikit-learn. With `groups` None, or when
    every row is its own clip, it does nothing.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, n_features)
        The rows about to be fitted on.
    groups : sequence of str or None
        Their source clips.
    """
    codes = source_codes(groups, len(X))
    if groups is None or len(np.unique(codes)) == len(codes):
        yield
        return
    rows = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    token = _ROW_SOURCES.set({row.tobytes(): int(code) for row, code in zip(rows, codes, strict=True)})
    try:
        yield
    finally:
        _ROW_SOURCES.reset(token)


class SourceKFold:
    """Stratified k-fold for inner cross-validation that keeps each source clip's rows in one fold.

    Outside :func:`rows_from_sources` (or when every row is its own clip) it is exactly
    ``StratifiedKFold(n_splits, shuffle=shuffle, random_state=random_state)``, the splitter a
    ``GridSearchCV(cv=n_splits)`` uses, so 30-second tables are split as before. Inside it,
    when rows share clips, it is ``StratifiedGroupKFold`` over the clips. Targets that are
    not class labels get ``KFold`` / ``GroupKFold``, as scikit-learn's ``check_cv`` gives (so
    the estimator checks of ``tests/test_registry.py`` get scikit-learn's own errors).

    Parameters
    ----------
    n_splits : int
        Number of folds.
    shuffle : bool
        Shuffle before splitting.
    random_state : int or None
        Seed of the shuffle.
    """

    def __init__(self, n_splits: int = 3, shuffle: bool = False, random_state: int | None = None) -> None:
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: object = None, y: object = None, groups: object = None) -> int:
        """Return the number of folds.

        Parameters
        ----------
        X, y, groups : object
            Ignored (scikit-learn's splitter interface).

        Returns
        -------
        int
            `n_splits`.
        """
        return self.n_splits

    def split(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions of each fold (see the class docstring).

        Parameters
        ----------
        X : numpy.ndarray, shape (n, n_features)
            The rows to split (their source clips are looked up by their bytes).
        y : numpy.ndarray, shape (n,)
            Their targets: class labels are stratified on, other targets are not.
        groups : numpy.ndarray, optional
            Source clip of each row; None: looked up (:func:`rows_from_sources`).

        Yields
        ------
        train, test : numpy.ndarray of int
            Row positions of one fold.
        """
        if groups is None:
            groups = self._sources(X)
        options = {"shuffle": self.shuffle, "random_state": self.random_state if self.shuffle else None}
        stratify = y is not None and type_of_target(y, input_name="y") in ("binary", "multiclass")
        n = self.n_splits
        if groups is not None:
            splitter = StratifiedGroupKFold(n, **options) if stratify else GroupKFold(n)
            yield from splitter.split(X, y, groups)
        else:
            splitter = StratifiedKFold(n, **options) if stratify else KFold(n, **options)
            yield from splitter.split(X, y)

    @staticmethod
    def _sources(X) -> np.ndarray | None:
        """Return the clips of the rows of `X` known to :func:`rows_from_sources`.

        None outside that block, or when every row of `X` is its own clip.

        Raises
        ------
        GenrekitError
            Inside the block, if some rows of `X` are not among the rows it was given (say, an
            estimator transformed them before its search): splitting them row by row could put
            segments of one clip on both sides, so this refuses instead.
        """
        known = _ROW_SOURCES.get()
        if known is None:
            return None
        rows = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        codes = [known.get(row.tobytes()) for row in rows]
        unknown = [row for row, code in enumerate(codes) if code is None]
        if unknown:
            raise GenrekitError(
                f"SourceKFold: {len(unknown)} of the {len(rows)} rows to split (first: row {unknown[0]}) "
                "are not rows of the fit's table, so their source clips are unknown; give the inner "
                "search the table's own feature rows (no transform before it), or pass groups"
            )
        if len(set(codes)) == len(codes):
            return None
        return np.asarray(codes)

    def __repr__(self) -> str:
        return f"SourceKFold({self.n_splits}, shuffle={self.shuffle}, random_state={self.random_state})"
