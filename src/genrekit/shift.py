"""Is a whole collection unlike the music a model was trained on? A collection-level shift check.

Each file of a collection can look like music on its own while the collection as a whole sits
elsewhere in feature space (another recording chain, mastering or extraction); a model then
gives confident wrong genres. This module measures that shift for a set of feature rows (a
catalogue's windows, a folder's windows, a feature table's rows) against the model's training
distribution.

The reference
    A model carries, in ``shift.json`` beside its weights, per-genre Gaussians of its training
    rows: the mean and the Cholesky factor of the (Ledoit-Wolf shrunk) covariance of each
    genre's rows, after taking the log of the ``*_var`` columns and z-scoring with the training
    table's mean and standard deviation. No training row is stored. :func:`store_reference`
    writes it from a training table.

Genre mix is not shift
    The collection's genre proportions are the mean of the model's probabilities over its rows.
    The reference sample is drawn from the per-genre Gaussians in those proportions, so a
    collection of one genre (all metal) is compared with that genre's training music, not
    with the whole ten-genre table.

The measure
    A domain classifier (logistic regression on the transformed features) tells collection
    rows from reference rows under grouped cross-validation (the windows of one file, or the
    rows of one source clip, stay in one fold). Its out-of-fold AUC is 0.5 when the two are
    alike and 1 when every collection row is told apart. The interval is a grouped bootstrap
    of the out-of-fold scores; the baseline is the AUC of the same procedure with the domain
    labels permuted between groups (the AUC that chance alone gives at this size). Beside
    it: the features whose means shift most (standardised mean difference against the
    reference mixture) and the share of files outside the training support (the model's
    per-file novelty check).

The verdict
    ``large`` when the lower end of the interval is above :data:`LARGE_AUC` and the AUC beats
    every permutation; ``moderate`` when the AUC is above :data:`MODERATE_AUC` and beats the
    permutations' 95th percentile; otherwise ``none``. The thresholds come from the
    measurements of ``benchmarks/bench_shift.py`` (see the guide, ``docs/guide/shift.md``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genrekit.core.errors import GenrekitError, ModelError
from genrekit.core.schema import FEATURE_NAMES

if TYPE_CHECKING:
    from genrekit.prediction.model import FileWindows, GenreModel

REFERENCE_FILE: str = "shift.json"
"""Name of the shift reference inside a model folder."""

REFERENCE_FORMAT: int = 1
"""Version of the layout of ``shift.json``."""

MODERATE_AUC: float = 0.75
"""AUC above which (and above the permutations' 95th percentile) a collection's shift is ``moderate``."""

LARGE_AUC: float = 0.90
"""Lower interval end above which (and the AUC above every permutation) the shift is ``large``."""

SMD_CLIP: float = 5.0
"""Per-row standardised differences are clipped to this before averaging (one odd file cannot dominate)."""

MIN_FILES: int = 8
"""Fewest files (groups) a collection needs for the measure; below it the level is ``unknown``."""

MAX_GROUPS: int = 1500
"""Largest number of files measured; a bigger collection is measured on a seeded random sample of them."""

N_FOLDS: int = 5
"""Folds of the domain classifier's grouped cross-validation."""

_LOG_FLOOR: float = 1e-3
"""Fraction of a ``*_var`` column's training median added before its log (keeps zeros finite)."""

_DIGITS: int = 7
"""Significant digits of the numbers stored in ``shift.json``."""


class ShiftError(GenrekitError):
    """The shift cannot be measured (no reference, too few rows, labels that do not fit)."""


@dataclass(frozen=True)
class ShiftReference:
    """Per-genre Gaussians of a model's training rows in a log/z-scored feature space.

    Attributes
    ----------
    labels : tuple of str
        Genres, in the model's order.
    log_offset : ndarray of shape (57,)
        For each ``*_var`` column the amount added before its log; NaN for the columns kept as they are.
    center, scale : ndarray of shape (57,)
        Mean and standard deviation of the training rows after the log step.
    means : ndarray of shape (n_genres, 57)
        Each genre's mean in the z-scored space.
    factors : ndarray of shape (n_genres, 57, 57)
        Lower Cholesky factor of each genre's shrunk covariance in that space.
    counts : ndarray of shape (n_genres,)
        Training rows per genre.
    source : dict
        What it was computed from: table name, SHA-256, rows; the model's weights SHA-256.
    """

    labels: tuple[str, ...]
    log_offset: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    means: np.ndarray
    factors: np.ndarray
    counts: np.ndarray
    source: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, X: np.ndarray, y: Sequence[str], labels: Sequence[str], source: dict | None = None):
        """Fit the per-genre Gaussians of training rows `X` labelled `y`.

        Parameters
        ----------
        X : ndarray of shape (n, 57)
            Training features.
        y : sequence of str
            Their genres; every one of `labels` needs at least two rows.
        labels : sequence of str
            The model's genres, in its order.
        source : dict, optional
            Stored as :attr:`source`.

        Raises
        ------
        ShiftError
            If a genre has fewer than two rows or a row is not finite.
        """
        from sklearn.covariance import LedoitWolf

        X = _finite_matrix(X, "training rows")
        y = np.asarray(y, dtype=str)
        is_var = np.array([name.endswith("_var") for name in FEATURE_NAMES])
        median = np.median(np.maximum(X, 0), axis=0)
        log_offset = np.where(is_var, np.maximum(median * _LOG_FLOOR, 1e-12), np.nan)
        logged = _log_columns(X, log_offset)
        center, scale = logged.mean(axis=0), logged.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Z = (logged - center) / scale
        means, factors, counts = [], [], []
        for label in labels:
            rows = Z[y == label]
            if len(rows) < 2:
                raise ShiftError(f"genre {label!r} has {len(rows)} training rows; the reference needs 2")
            covariance = LedoitWolf().fit(rows).covariance_
            means.append(rows.mean(axis=0))
            factors.append(np.linalg.cholesky(covariance + 1e-9 * np.eye(len(FEATURE_NAMES))))
            counts.append(len(rows))
        return cls(
            tuple(labels), log_offset, center, scale, np.array(means), np.array(factors),
            np.array(counts), dict(source or {}),
        )  # fmt: skip

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return rows `X` (n, 57) in the reference's space (log of the ``*_var`` columns, z-scored)."""
        return (_log_columns(np.asarray(X, dtype=np.float64), self.log_offset) - self.center) / self.scale

    def sample(self, proportions: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
        """Draw `n` rows (transformed space) from the genre Gaussians mixed in `proportions`."""
        counts = _apportion(np.asarray(proportions, dtype=np.float64), n)
        rng = np.random.default_rng(seed)
        parts = [
            self.means[g] + rng.standard_normal((k, self.means.shape[1])) @ self.factors[g].T
            for g, k in enumerate(counts)
            if k
        ]
        return np.concatenate(parts)

    def moments(self, proportions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the mean and standard deviation per feature of the mixture in `proportions`."""
        p = np.asarray(proportions, dtype=np.float64)
        variances = np.einsum("gij,gij->gi", self.factors, self.factors)
        mean = p @ self.means
        second = p @ (variances + self.means**2)
        return mean, np.sqrt(np.maximum(second - mean**2, 1e-12))

    def to_dict(self) -> dict:
        """Return the JSON-ready form of ``shift.json`` (lower triangles only, 7 significant digits)."""
        rows, cols = np.tril_indices(len(FEATURE_NAMES))
        return {
            "format_version": REFERENCE_FORMAT,
            "description": "per-genre Gaussians of the training rows for `genrekit library check`",
            "source": self.source,
            "feature_names": list(FEATURE_NAMES),
            "log_offset": [None if np.isnan(v) else _round(v) for v in self.log_offset],
            "center": [_round(v) for v in self.center],
            "scale": [_round(v) for v in self.scale],
            "genres": {
                label: {
                    "rows": int(self.counts[g]),
                    "mean": [_round(v) for v in self.means[g]],
                    "cholesky_lower": [_round(v) for v in self.factors[g][rows, cols]],
                }
                for g, label in enumerate(self.labels)
            },
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = REFERENCE_FILE) -> ShiftReference:
        """Rebuild from :meth:`to_dict` output, checking every part.

        Raises
        ------
        ModelError
            Naming `where` and the field that is missing, of the wrong size or not finite.
        """
        n = len(FEATURE_NAMES)
        try:
            if data["format_version"] != REFERENCE_FORMAT:
                raise ModelError(f"{where}: unsupported format_version {data['format_version']!r}")
            if data["feature_names"] != list(FEATURE_NAMES):
                raise ModelError(f"{where}: feature_names are not the GTZAN 57")
            offset = np.array([np.nan if v is None else v for v in data["log_offset"]], dtype=np.float64)
            center = _vector(data["center"], n, f"{where}: center")
            scale = _vector(data["scale"], n, f"{where}: scale")
            labels, means, factors, counts = [], [], [], []
            rows, cols = np.tril_indices(n)
            for label, genre in data["genres"].items():
                labels.append(label)
                means.append(_vector(genre["mean"], n, f"{where}: genres.{label}.mean"))
                lower = _vector(genre["cholesky_lower"], len(rows), f"{where}: genres.{label}.cholesky_lower")
                factor = np.zeros((n, n))
                factor[rows, cols] = lower
                factors.append(factor)
                counts.append(int(genre["rows"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{where}: missing or malformed field ({exc})") from exc
        if offset.shape != (n,) or (scale <= 0).any() or len(labels) < 2:
            raise ModelError(f"{where}: log_offset, scale or genres malformed")
        return cls(
            tuple(labels), offset, center, scale, np.array(means), np.array(factors),
            np.array(counts), dict(data.get("source", {})),
        )  # fmt: skip


@dataclass(frozen=True)
class ShiftReport:
    """The shift of a collection from a model's training distribution (see the module docstring).

    Attributes
    ----------
    level : {"none", "moderate", "large", "unknown"}
        The verdict (``unknown``: fewer than :data:`MIN_FILES` files).
    auc : float
        Out-of-fold AUC of the domain classifier (0.5: alike).
    interval : (float, float)
        95% grouped-bootstrap interval of the AUC.
    permutation : dict
        ``mean``, ``p95`` and ``max`` AUC with permuted domain labels, ``n`` permutations and
        ``p_value`` of the observed AUC.
    files, rows : int
        Files (groups) and rows measured.
    genre_mix : dict of str to float
        The collection's predicted genre proportions (the reference's mix).
    top_features : list of dict
        ``feature`` and ``smd`` (standardised mean difference), largest first.
    outside_support : float or None
        Share of files whose novelty is beyond the model's threshold (None without one).
    """

    level: str
    auc: float
    interval: tuple[float, float]
    permutation: dict
    files: int
    rows: int
    genre_mix: dict
    top_features: list
    outside_support: float | None

    @property
    def shifted(self) -> bool:
        """Whether the shift is large enough to distrust the model's genres on this collection."""
        return self.level == "large"

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (the ``--format json`` output and ``/v1/library/stats``'s ``shift``)."""
        return {
            "level": self.level,
            "shifted": self.shifted,
            "summary": self.summary(),
            "auc": _maybe(self.auc),
            "interval": [_maybe(v) for v in self.interval],
            "permutation": {k: v if k == "n" else _maybe(v) for k, v in self.permutation.items()},
            "thresholds": {"moderate_auc": MODERATE_AUC, "large_auc_lower": LARGE_AUC},
            "files": self.files,
            "rows": self.rows,
            "genre_mix": self.genre_mix,
            "top_features": self.top_features,
            "outside_support": self.outside_support,
        }

    def summary(self) -> str:
        """Return one line for people: the level, AUC with interval, the baseline, the top features."""
        if self.level == "unknown":
            return f"shift: unknown ({self.files} files; at least {MIN_FILES} are needed)"
        low, high = self.interval
        top = ", ".join(f"{f['feature']} {f['smd']:+.1f}" for f in self.top_features[:3])
        support = (
            "" if self.outside_support is None else f", {100 * self.outside_support:.0f}% outside support"
        )
        return (
            f"shift: {self.level} (domain AUC {self.auc:.2f} [{low:.2f}, {high:.2f}], chance "
            f"{self.permutation['p95']:.2f}; {self.files} files{support}; most shifted: {top})"
        )


def reference_path(model_dir: str | os.PathLike[str]) -> Path:
    """Return the path of the shift reference in the model folder `model_dir`."""
    return Path(model_dir) / REFERENCE_FILE


def load_reference(model_dir: str | os.PathLike[str], metadata: dict) -> ShiftReference:
    """Load the shift reference of the model in `model_dir` (whose ``model.json`` is `metadata`).

    Raises
    ------
    ShiftError
        If the folder has no ``shift.json`` (the message says how to make one).
    ModelError
        If it is malformed or was computed for other weights or other genres.
    """
    path = reference_path(model_dir)
    if not path.is_file():
        raise ShiftError(
            f"{model_dir}: the model has no shift reference ({REFERENCE_FILE}); "
            "pass its training table with --reference TABLE"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    reference = ShiftReference.from_dict(data, str(path))
    weights = metadata.get("weights", {}).get("sha256")
    if reference.source.get("weights_sha256") != weights:
        raise ModelError(f"{path}: computed for other weights than {model_dir}'s; compute it again")
    if list(reference.labels) != list(metadata.get("labels", [])):
        raise ModelError(f"{path}: its genres are not the model's")
    return reference


def fit_reference(table: str | os.PathLike[str], metadata: dict, frame=None) -> ShiftReference:
    """Fit the reference of a model (its ``model.json`` `metadata`) from its training table.

    Rows of other labels than the model's are left out (a table may hold more genres), and so are
    augmented rows (``extract --augment``): the reference is the music itself.

    Parameters
    ----------
    table : path-like
        The training table (named, with its SHA-256, in the reference's ``source``).
    metadata : dict
        The model's ``model.json``.
    frame : pandas.DataFrame, optional
        The table already read (:func:`genrekit.datasets.table.read_table`); read from `table` when None.

    Raises
    ------
    TableError
        If the table breaks a rule of :func:`genrekit.datasets.table.read_table`.
    ShiftError
        If a genre of the model has fewer than two rows.
    """
    from genrekit.datasets.table import feature_matrix, file_sha256, is_augmented, read_table

    frame = read_table(table, labels="any") if frame is None else frame
    labels = list(metadata["labels"])
    frame = frame[frame["label"].isin(labels) & ~frame["filename"].map(is_augmented)]
    source = {
        "table": Path(table).name,
        "table_sha256": file_sha256(table),
        "rows": len(frame),
        "weights_sha256": metadata.get("weights", {}).get("sha256"),
    }
    return ShiftReference.fit(feature_matrix(frame), frame["label"].to_numpy(), labels, source)


def store_reference(model_dir: str | os.PathLike[str], table: str | os.PathLike[str], frame=None) -> Path:
    """Compute the shift reference of the model in `model_dir` from `table` and write ``shift.json``.

    The model's own files are not touched; the reference is written atomically beside them.
    :func:`genrekit.training.train.train` calls it for every model it saves; `frame` is the table
    already read.

    Returns
    -------
    Path
        The written file.
    """
    from genrekit.core.atomic import atomic_write_text
    from genrekit.models.io import load_model_dir

    _, metadata = load_model_dir(model_dir)
    reference = fit_reference(table, metadata, frame)
    path = reference_path(model_dir)
    atomic_write_text(path, json.dumps(reference.to_dict(), separators=(",", ":")) + "\n")
    return path


def model_folder(path: str | os.PathLike[str] | None) -> Path:
    """Return the folder of the model `load_model(path)` loads (the shipped one when None)."""
    from genrekit.models.io import SHIPPED_MODELS

    if path is None:
        return SHIPPED_MODELS["shipped"]
    folder = Path(path)
    return SHIPPED_MODELS[str(path)] if not folder.exists() and str(path) in SHIPPED_MODELS else folder


def model_reference(model: GenreModel, path=None, table=None) -> ShiftReference:
    """Return the reference of `model` (loaded from `path`): fitted on `table`, or its ``shift.json``."""
    if table is not None:
        return fit_reference(table, model.metadata)
    return load_reference(model_folder(path), model.metadata)


def shift_of_rows(
    model: GenreModel, reference: ShiftReference, features: np.ndarray, groups: Sequence[str], **options
) -> ShiftReport:
    """Measure the shift of feature rows grouped by file, with `model`'s genre mix and novelty.

    Parameters
    ----------
    model : GenreModel
        The model whose training distribution `reference` describes.
    reference : ShiftReference
        From :func:`model_reference`.
    features : ndarray of shape (n, 57)
        One row per window, segment or table row.
    groups : sequence of str
        The file (or source clip) of each row.
    **options
        Passed to :func:`measure_shift`.
    """
    features = np.asarray(features, dtype=np.float64)
    groups = np.asarray(groups, dtype=str)
    if list(reference.labels) != [str(c) for c in model.classes_]:
        raise ShiftError("the shift reference's genres are not the model's")
    if features.ndim != 2 or len(groups) != len(features):
        raise ShiftError(
            f"expected (n, {len(FEATURE_NAMES)}) features with one group each, got {features.shape}"
        )
    keep = _group_sample(groups, np.random.default_rng(options.get("seed", 0)))
    keep &= np.isfinite(features).all(axis=1)
    features, groups = features[keep], groups[keep]
    proba = model.predict_proba(features) if len(features) else np.empty((0, len(reference.labels)))
    familiar = None
    if model.novelty is not None and len(features):
        _, index = np.unique(groups, return_inverse=True)
        order = np.argsort(index, kind="stable")
        distance = model.novelty.distance(features)[order]
        medians = [np.median(part) for part in np.split(distance, np.cumsum(np.bincount(index))[:-1])]
        familiar = np.asarray(medians) <= model.novelty.threshold
    return measure_shift(features, groups, proba, reference, familiar, **options)


def table_rows(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the features of a feature table and the source clip of each row (labels not needed)."""
    from genrekit.datasets.table import feature_matrix, read_table, source_groups, table_labels

    frame = read_table(path, labels=table_labels(path), require_labels=False)
    return feature_matrix(frame), source_groups(frame["filename"].tolist())


class FileSample:
    """A seeded uniform sample of at most :data:`MAX_GROUPS` files' rows, kept as they stream by.

    Reservoir sampling: memory stays bounded however many files a folder or catalogue holds.
    """

    def __init__(self, seed: int = 0, size: int = MAX_GROUPS) -> None:
        self.rng, self.size, self.seen = np.random.default_rng(seed), size, 0
        self.files: list[tuple[str, np.ndarray]] = []

    def add(self, name: object, features: np.ndarray) -> None:
        """Offer one file's rows (its windows' features)."""
        self.seen += 1
        if len(self.files) < self.size:
            self.files.append((str(name), np.asarray(features, dtype=np.float64)))
            return
        slot = int(self.rng.integers(self.seen))
        if slot < self.size:
            self.files[slot] = (str(name), np.asarray(features, dtype=np.float64))

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the kept rows and the file of each row."""
        if not self.files:
            return np.empty((0, len(FEATURE_NAMES))), np.empty(0, dtype=str)
        features = np.concatenate([rows for _, rows in self.files])
        groups = np.concatenate([np.full(len(rows), name) for name, rows in self.files])
        return features, groups


def window_rows(items: Iterable[tuple[object, FileWindows]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return the window features of ``(file, windows)`` items and the file of each window.

    `windows` is anything with a ``features`` array: a FileWindows, a catalogue's stored file.

    At most :data:`MAX_GROUPS` files are kept, a seeded uniform sample (see :class:`FileSample`).
    """
    sample = FileSample(seed)
    for name, windows in items:
        sample.add(name, windows.features)
    return sample.rows()


def folder_rows(
    paths: Sequence[str | os.PathLike[str]], window_seconds: float = 30.0, jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[GenrekitError]]:
    """Extract the window features of audio files (``genrekit predict``'s windows) on `jobs` processes.

    Returns
    -------
    features, groups : ndarray
        As :func:`window_rows`.
    failures : list of GenrekitError
        One per file that could not be decoded (the others go on).
    """
    import functools

    from genrekit.core.parallel import map_tasks
    from genrekit.prediction.model import file_windows

    cut = functools.partial(file_windows, window_seconds=window_seconds)
    sample, failures = FileSample(), []
    for path, result in map_tasks(cut, [Path(p) for p in paths], jobs, ordered=True):
        if isinstance(result, Exception):
            failures.append(
                result if isinstance(result, GenrekitError) else GenrekitError(f"{path}: {result}")
            )
        else:
            sample.add(path, result.features)
    features, groups = sample.rows()
    return features, groups, failures


def measure_shift(
    features: np.ndarray,
    groups: Sequence[str],
    proba: np.ndarray,
    reference: ShiftReference,
    familiar: np.ndarray | None = None,
    *,
    weight_by_genre: bool = True,
    n_permutations: int = 99,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> ShiftReport:
    """Measure how far the rows `features` sit from the reference's training distribution.

    Parameters
    ----------
    features : ndarray of shape (n, 57)
        The collection's feature rows (one per window, segment or table row).
    groups : sequence of str, length n
        The file each row comes from; the rows of one file stay in one fold.
    proba : ndarray of shape (n, n_genres)
        The model's genre probabilities of each row (columns in ``reference.labels`` order).
    reference : ShiftReference
        The model's training distribution.
    familiar : ndarray of bool, shape (n_files,), optional
        Per file, whether the model's novelty check finds it familiar; gives ``outside_support``.
    weight_by_genre : bool
        Draw the reference in the collection's predicted genre mix (default); False draws it
        in the training table's mix (only to measure what the weighting does).
    n_permutations, n_bootstrap : int
        Permutations of the baseline; bootstrap resamples of the interval.
    seed : int
        Seeds the reference sample, the folds, the permutations and the bootstrap.

    Returns
    -------
    ShiftReport

    Raises
    ------
    ShiftError
        If the shapes do not fit.
    """
    features = np.asarray(features, dtype=np.float64)
    groups = np.asarray(groups, dtype=str)
    proba = np.asarray(proba, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES) or len(groups) != len(features):
        raise ShiftError(
            f"expected (n, {len(FEATURE_NAMES)}) features with one group each, got {features.shape}"
        )
    if proba.shape != (len(features), len(reference.labels)):
        raise ShiftError(f"expected probabilities of shape ({len(features)}, {len(reference.labels)})")
    keep = np.isfinite(features).all(axis=1)
    features, groups, proba = features[keep], groups[keep], proba[keep]
    rng = np.random.default_rng(seed)
    chosen = _group_sample(groups, rng)
    features, groups, proba = features[chosen], groups[chosen], proba[chosen]
    n_files = len(np.unique(groups))
    mix = proba.mean(axis=0) if len(proba) else np.full(len(reference.labels), np.nan)
    if not weight_by_genre:
        mix = reference.counts / reference.counts.sum()
    outside = None if familiar is None or not len(familiar) else float(1 - np.mean(familiar))
    genre_mix = {label: _maybe(p) for label, p in zip(reference.labels, mix, strict=True)}
    if n_files < MIN_FILES:
        nan = float("nan")
        return ShiftReport("unknown", nan, (nan, nan), {}, n_files, len(features), genre_mix, [], outside)
    Z = np.clip(reference.transform(features), -1e3, 1e3)
    n_ref = int(np.clip(2 * len(Z), 400, 4000))
    R = reference.sample(mix, n_ref, seed)
    X = np.concatenate([Z, R])
    y = np.r_[np.ones(len(Z), dtype=int), np.zeros(len(R), dtype=int)]
    group_codes = np.r_[np.unique(groups, return_inverse=True)[1], n_files + np.arange(len(R))]
    fits = _FoldFits(X, _folds(y, group_codes, seed))
    scores = fits.scores(y.astype(np.float64))
    auc = _auc(y, scores)
    null = np.array([_permuted_auc(y, group_codes, fits, rng) for _ in range(n_permutations)])
    interval = _bootstrap_interval(y, scores, group_codes, n_bootstrap, rng)
    permutation = {
        "n": n_permutations,
        "mean": float(null.mean()),
        "p95": float(np.quantile(null, 0.95)),
        "max": float(null.max()),
        "p_value": float((1 + np.sum(null >= auc)) / (1 + n_permutations)),
    }
    return ShiftReport(
        _level(auc, interval, permutation), auc, interval, permutation, n_files, len(features),
        genre_mix, _top_features(Z, reference, mix), outside,
    )  # fmt: skip


def _level(auc: float, interval: tuple[float, float], permutation: dict) -> str:
    """Return the verdict of an AUC, its interval and its permutation baseline (module docstring)."""
    if interval[0] > LARGE_AUC and auc > permutation["max"]:
        return "large"
    if auc > MODERATE_AUC and auc > permutation["p95"]:
        return "moderate"
    return "none"


def _group_sample(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a mask of the rows of at most :data:`MAX_GROUPS` groups, drawn at random."""
    names = np.unique(groups)
    if len(names) <= MAX_GROUPS:
        return np.ones(len(groups), dtype=bool)
    return np.isin(groups, rng.choice(names, MAX_GROUPS, replace=False))


def _folds(y: np.ndarray, groups: np.ndarray, seed: int) -> list[np.ndarray]:
    """Return the test rows of each fold: each domain's groups dealt in a seeded random order.

    Every group lies in one fold, and each fold holds about the same share of each domain.
    """
    n_splits = min(N_FOLDS, len(np.unique(groups[y == 1])))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(groups.max() + 1, dtype=int)
    for domain in (0, 1):
        members = rng.permutation(np.unique(groups[y == domain]))
        fold_of[members] = np.arange(len(members)) % n_splits
    row_fold = fold_of[groups]
    return [np.flatnonzero(row_fold == k) for k in range(n_splits)]


class _FoldFits:
    """Least-squares domain classifiers (Fisher's discriminant direction) for fixed folds.

    A ridge regression of the domain label on the features, fitted on the other folds, scores
    each fold. The features' part of the solution does not depend on the labels, so it is
    computed once per fold and every labelling (the observed one, each permutation) costs
    only matrix products.
    """

    def __init__(self, X: np.ndarray, folds: list[np.ndarray], ridge: float = 1.0) -> None:
        self.folds, self.parts = folds, []
        for test in folds:
            train = np.ones(len(X), dtype=bool)
            train[test] = False
            center = X[train].mean(axis=0)
            A = X[train] - center
            solve = np.linalg.solve(A.T @ A + ridge * len(A) * np.eye(X.shape[1]), A.T)
            self.parts.append((train, solve, X[test] - center))

    def scores(self, y: np.ndarray) -> np.ndarray:
        """Return each row's out-of-fold domain score for the labels `y`."""
        out = np.empty(len(y))
        for test, (train, solve, held) in zip(self.folds, self.parts, strict=True):
            out[test] = held @ (solve @ (y[train] - y[train].mean()))
        return out


def _permuted_auc(y: np.ndarray, groups: np.ndarray, fits: _FoldFits, rng: np.random.Generator) -> float:
    """Return the out-of-fold AUC after shuffling the domain labels between groups."""
    names, first = np.unique(groups, return_index=True)
    permuted = rng.permutation(y[first])[np.searchsorted(names, groups)]
    if permuted.min() == permuted.max():
        return 0.5
    return _auc(permuted, fits.scores(permuted.astype(np.float64)))


def _bootstrap_interval(y, scores, groups, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """Return the 95% interval of the AUC over resamples of the groups of each domain.

    Each resample draws, within each domain, as many groups as it has, with replacement; a
    row then weighs as often as its group was drawn.
    """
    n_groups = groups.max() + 1
    draws = np.zeros((n, n_groups))
    for domain in (0, 1):
        members = np.unique(groups[y == domain])
        counts = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=n)
        draws[:, members] = counts
    order = np.argsort(scores, kind="stable")
    weights = draws[:, groups[order]]
    positive = y[order] == 1
    below = np.cumsum(np.where(positive, 0.0, weights), axis=1)
    wins = np.sum(np.where(positive, weights * below, 0.0), axis=1)
    total = weights[:, positive].sum(axis=1) * weights[:, ~positive].sum(axis=1)
    low, high = np.quantile(wins / total, [0.025, 0.975])
    return float(low), float(high)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Return the ROC AUC of `scores` for the positives of `y` (ties count half)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    values = scores[order]  # tied scores share the mean of their ranks
    starts = np.r_[0, np.flatnonzero(np.diff(values)) + 1]
    sizes = np.diff(np.r_[starts, len(values)])
    ranks[order] = np.repeat(starts + (sizes + 1) / 2, sizes)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _top_features(Z: np.ndarray, reference: ShiftReference, mix: np.ndarray, k: int = 5) -> list[dict]:
    """Return the `k` features of largest absolute standardised mean difference from the mixture."""
    mean, sd = reference.moments(mix)
    smd = np.clip((Z - mean) / sd, -SMD_CLIP, SMD_CLIP).mean(axis=0)
    order = np.argsort(-np.abs(smd), kind="stable")[:k]
    return [{"feature": FEATURE_NAMES[i], "smd": round(float(smd[i]), 3)} for i in order]


def _log_columns(X: np.ndarray, log_offset: np.ndarray) -> np.ndarray:
    """Return `X` with the log of ``max(x, 0) + offset`` in the columns whose offset is not NaN."""
    out = X.copy()
    logged = ~np.isnan(log_offset)
    out[:, logged] = np.log(np.maximum(X[:, logged], 0) + log_offset[logged])
    return out


def _apportion(proportions: np.ndarray, n: int) -> np.ndarray:
    """Split `n` draws in `proportions` (largest remainders), as integers summing to `n`."""
    p = np.clip(np.nan_to_num(proportions), 0, None)
    p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1 / len(p))
    exact = p * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def _finite_matrix(X: np.ndarray, what: str) -> np.ndarray:
    """Return `X` as float64 (n, 57), raising ShiftError naming the first non-finite row."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
        raise ShiftError(f"{what}: expected shape (n, {len(FEATURE_NAMES)}), got {X.shape}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        raise ShiftError(f"{what}: row {bad[0]} is not finite")
    return X


def _vector(values, n: int, where: str) -> np.ndarray:
    """Return `values` as n finite float64 numbers or raise ModelError naming `where`."""
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (n,) or not np.isfinite(vector).all():
        raise ModelError(f"{where}: expected {n} finite numbers")
    return vector


def _round(value: float) -> float:
    """Return `value` to :data:`_DIGITS` significant digits."""
    return float(f"{value:.{_DIGITS}g}")


def _maybe(value: float) -> float | None:
    """Return `value`, or None for NaN (JSON has no NaN)."""
    return None if value is None or np.isnan(value) else round(float(value), 4)
