"""Train a model of the registry on a feature table and save it: what ``genrekit train`` runs.

:func:`train` is the Python face of ``genrekit train``: it reads and checks the table, holds
out a stratified validation split of source clips (early stopping for the networks,
calibration for every model) or cross-validates the all-rows recipe (``cv``), fits, saves the
model folder (``model.safetensors`` + ``model.json``, and ``shift.json``, the reference of
``genrekit library check``) and returns the run's summary.

The table's features are the 57 GTZAN features or the columns of tagger embeddings (a table of
``genrekit extract --embeddings``; see :func:`genrekit.datasets.table.feature_columns`); every
recipe learns from either, and the model records its columns (``feature_names``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genrekit.core.errors import SettingsError, TableError
from genrekit.core.schema import LABEL_COLUMN

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train` fits a model (the options of ``genrekit train``).

    Attributes
    ----------
    model : str
        Registry model to train (``genrekit train --help`` lists them).
    members : tuple of str, optional
        Members of an ``ensemble``/``stacking`` model; the registry's default when None.
    tune : bool
        Run the inner hyperparameter searches (inside the training rows only).
    epochs, patience, batch_size : int
        The networks' epoch cap, early-stopping patience and mini-batch size.
    seed : int
        Seed of the split, the weights and the shuffling.
    validation_fraction : float, optional
        Share of source clips held out for early stopping and calibration; 0.1 by
        default, 0 with `cv`.
    cv : int, optional
        Train on every row and cross-validate that recipe over `cv` folds (the shipped
        model's recipe).
    window_seconds : float, optional
        Length of audio behind each row (from the table when None).
    labels : str
        Allowed labels: ``"gtzan"``, ``"any"`` or a comma list.
    jobs : int, optional
        Worker processes of the cross-validation (all cores when None).
    """

    model: str = "ensemble"
    members: tuple[str, ...] | None = None
    tune: bool = True
    epochs: int = 200
    patience: int = 20
    batch_size: int = 32
    seed: int = 0
    validation_fraction: float | None = None
    cv: int | None = None
    window_seconds: float | None = None
    labels: str = "gtzan"
    jobs: int | None = None

    def checked(self) -> TrainSettings:
        """Return the settings with defaults filled in.

        Raises
        ------
        SettingsError
            Naming the setting that is out of range.
        """
        from dataclasses import replace

        from genrekit.models.registry import ENSEMBLE_MEMBERS, recipe
        from genrekit.prediction.model import MIN_SECONDS

        recipe(self.model)  # an unknown name raises, listing the registry
        for name in ("epochs", "patience", "batch_size"):
            if getattr(self, name) < 1:
                raise SettingsError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.cv is not None and (self.cv < 2 or self.validation_fraction):
            raise SettingsError(
                "cv", "needs K >= 2 and no validation fraction (every row trains the final model)"
            )
        fraction = self.validation_fraction
        fraction = (0.0 if self.cv else 0.1) if fraction is None else fraction
        if not 0 <= fraction < 1:
            raise SettingsError("validation_fraction", f"must be in [0, 1), got {fraction}")
        seconds = self.window_seconds
        if seconds is not None and not MIN_SECONDS <= seconds < float("inf"):
            raise SettingsError("window_seconds", f"must be at least {MIN_SECONDS:g}, got {seconds}")
        return replace(self, members=self.members or ENSEMBLE_MEMBERS, validation_fraction=fraction)


Progress = Callable[..., Iterator[Any]]
"""A progress wrapper: called with an iterable (and ``total``, ``desc``, ``unit``), yields its items."""


def train(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    settings: TrainSettings | None = None,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Train a model on a feature table, save it as a model folder and return the run summary.

    Parameters
    ----------
    data : path-like
        Feature table (``.csv`` or ``.parquet``): the GTZAN schema, or embedding columns.
    output : path-like
        Model folder to write (replaced atomically).
    settings : TrainSettings, optional
        How to train; ``TrainSettings()`` when omitted.
    log : callable, optional
        Called with one line of text per stage (what is trained on how many rows).
    progress : callable, optional
        Wraps the networks' epochs in a progress display (see :data:`Progress`).

    Returns
    -------
    dict
        The summary ``genrekit train --format json`` prints: model folder, data, labels,
        validation and cross-validation figures, what the inner searches chose.

    Raises
    ------
    TableError
        If the table is unreadable, invalid, or has fewer than two labels.
    SettingsError
        If a setting is out of range.

    Examples
    --------
    >>> import genrekit
    >>> genrekit.train("features_30_sec.csv", "model/")  # doctest: +SKIP
    """
    from genrekit.datasets.table import feature_columns, file_sha256, read_table, rows_window_seconds

    settings = (settings or TrainSettings()).checked()
    frame = read_table(data, labels=settings.labels)
    if frame["label"].nunique() < 2:
        raise TableError(f"{data}: only one label ({frame['label'].iloc[0]!r}); training needs at least two")
    if settings.window_seconds is None:
        from dataclasses import replace

        settings = replace(settings, window_seconds=rows_window_seconds(frame))
    data_meta = {"name": Path(data).name, "sha256": file_sha256(data)}
    log = log or (lambda message: None)
    run = _Run(settings, Path(output), log, progress, feature_columns(frame))
    summary = run.cross_validated(frame, data_meta) if settings.cv else run.held_out(frame, data_meta)
    _store_shift_reference(Path(output), data, frame, log, run.features)
    return summary


def _store_shift_reference(
    output: Path, data: str | os.PathLike[str], frame: pd.DataFrame, log, features: tuple[str, ...]
) -> None:
    """Store the model's reference for ``genrekit library check`` beside it, or say why not."""
    from genrekit.core.schema import FEATURE_NAMES
    from genrekit.shift import ShiftError, store_reference

    if features != FEATURE_NAMES:
        log("no shift reference stored: `library check` compares the 57 GTZAN features, not embeddings")
        return

    try:
        path = store_reference(output, data, frame)
    except ShiftError as exc:
        log(f"no shift reference stored ({exc}); `library check` will need --reference")
        return
    log(f"shift reference for `genrekit library check`: {path}")


@dataclass(frozen=True)
class _Run:
    """One training run: its settings, output folder and where it reports."""

    settings: TrainSettings
    output: Path
    log: Callable[[str], None]
    progress: Progress | None
    features: tuple[str, ...]

    def held_out(self, frame: pd.DataFrame, data_meta: dict) -> dict:
        """Split `frame`, fit the model, save the model folder and return the run summary."""
        from genrekit.datasets.table import feature_matrix
        from genrekit.models.io import save_model
        from genrekit.models.registry import chosen_params, describe, make_model, recipe

        s = self.settings
        model = make_model(s.model, s.seed, epochs=s.epochs, patience=s.patience, members=s.members)
        cnn = recipe(s.model).uses_validation
        if cnn:
            model.set_params(batch_size=s.batch_size, verbose=self.progress or False)
        if s.validation_fraction > 0:
            train, val = validation_split(frame, s.validation_fraction, s.seed, data_meta["name"])
            if cnn:
                self.log(f"training on {len(train)} rows, early stopping on {len(val)} validation rows")
                columns = list(self.features)
                model.fit(train[columns], train[LABEL_COLUMN], val[columns], val[LABEL_COLUMN])
                best = model.history_[model.best_epoch_ - 1]
                validation = {"rows": len(val), "accuracy": best["val_accuracy"], "loss": best["val_loss"]}
            else:
                self.log(
                    f"training {s.model} on {len(train)} rows, calibrating on {len(val)} validation rows"
                )
                _fit_by_source(model, train)
                accuracy = float(
                    np.mean(model.predict(feature_matrix(val)) == val[LABEL_COLUMN].to_numpy(dtype=str))
                )
                validation = {"rows": len(val), "accuracy": accuracy, "loss": None}
            extra = {"calibration": _validation_calibration(model, train, val)}
        else:
            train = frame
            self.log(f"training {s.model} on all {len(train)} rows (no validation)")
            if cnn:
                model.fit(train[list(self.features)], train[LABEL_COLUMN])
            else:
                _fit_by_source(model, train)
            validation = {"rows": 0, "accuracy": None, "loss": None}
            extra = {}
        if s.model != "cnn":  # every recipe but the paper's CNN (format 1, its own fields) names itself
            extra["recipe"] = {
                **describe(s.model, s.members),
                "tuned": s.tune,
                "chosen": chosen_params(model),
            }
        validation["fraction"] = s.validation_fraction
        metadata = {
            "data": {**data_meta, "rows": len(frame), "train_rows": len(train)},
            "window_seconds": s.window_seconds,
            "validation": validation,
            "metrics": {"validation_accuracy": validation["accuracy"]},
            **extra,
        }
        save_model(model, self.output, metadata, self.features)
        return self.summary(model, metadata)

    def cross_validated(self, frame: pd.DataFrame, data_meta: dict) -> dict:
        """Cross-validate the all-rows recipe, fit it on every row, save and summarise."""
        from genrekit.core.parallel import cpu_count
        from genrekit.datasets.table import feature_matrix, source_groups
        from genrekit.models.io import save_model
        from genrekit.training.recipe import fit_final

        s = self.settings
        self.log(f"cross-validating {s.model} ({s.cv} folds), then training it on all {len(frame)} rows")
        model, recipe = fit_final(
            feature_matrix(frame),
            frame[LABEL_COLUMN].to_numpy(dtype=str),
            groups=source_groups(frame["filename"], frame[LABEL_COLUMN]),
            filenames=frame["filename"],
            n_folds=s.cv,
            seed=s.seed,
            epochs=s.epochs,
            batch_size=s.batch_size,
            on_fold=lambda fold, acc: self.log(f"fold {fold + 1}/{s.cv}: accuracy {acc:.3f}"),
            model=s.model,
            members=s.members,
            tune=s.tune,
            jobs=s.jobs or cpu_count(),
        )
        cv = recipe["cross_validation"]
        metadata = {
            "data": {**data_meta, "rows": len(frame), "train_rows": len(frame)},
            "window_seconds": s.window_seconds,
            "validation": {"rows": 0, "accuracy": None, "loss": None, "fraction": 0.0},
            "metrics": {"cv_accuracy": cv["accuracy"], "protocol": cv["protocol"]},
            **recipe,
        }
        save_model(model, self.output, metadata, self.features)
        return self.summary(model, metadata)

    def summary(self, model: Any, metadata: dict) -> dict:
        """Return the run summary printed by ``genrekit train``."""
        return {
            "model_dir": str(self.output),
            "model": self.settings.model,
            "data": metadata["data"],
            "feature_columns": len(self.features),
            "window_seconds": metadata["window_seconds"],
            "labels": [str(label) for label in model.classes_],
            "epochs_run": getattr(model, "n_epochs_run_", None),
            "best_epoch": getattr(model, "best_epoch_", None),
            "final_train_accuracy": model.history_[-1]["train_accuracy"]
            if hasattr(model, "history_")
            else None,
            "validation": metadata["validation"],
            "cross_validation": metadata.get("cross_validation"),
            "chosen": metadata.get("recipe", {}).get("chosen"),
        }


def _fit_by_source(model, train: pd.DataFrame) -> None:
    """Fit a feature-table `model` on `train`; its inner cross-validations keep each source clip together."""
    from genrekit.datasets.table import feature_matrix, source_groups
    from genrekit.selection.protocols import rows_from_sources

    X, y = feature_matrix(train), train[LABEL_COLUMN].to_numpy(dtype=str)
    with rows_from_sources(X, source_groups(train["filename"], y)):
        model.fit(X, y)


def validation_split(
    frame: pd.DataFrame, fraction: float, seed: int, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a stratified, seeded `fraction` of the table's source clips for validation.

    The rows of one source clip (its segments, its augmented copies; see
    :func:`genrekit.datasets.table.source_clip`) all go to the same side. On a table of whole clips
    this is ``train_test_split(frame, test_size=fraction, stratify=labels, random_state=seed)``.
    """
    from genrekit.datasets.table import source_groups
    from genrekit.selection.protocols import (
        Split,
        source_codes,
        source_labels,
        stratified_holdout,
        without_augmented,
    )

    y = frame[LABEL_COLUMN].to_numpy(dtype=str)
    groups = source_groups(frame["filename"], y)
    codes = source_codes(groups, len(frame))
    source_labels(y, codes, groups)
    hint = "Use a bigger table, or --validation-fraction 0 to train on every row without early stopping."
    try:
        train, val = stratified_holdout(
            y, codes, np.arange(len(frame)), fraction, seed, f"{name}, validation split", hint
        )
    except ValueError as exc:
        raise TableError(f"cannot make a stratified validation split of {name}: {exc}") from exc
    empty = np.empty(0, dtype=np.int64)
    (split,) = without_augmented([Split("validation", 0, seed, train, val, empty)], frame["filename"])
    return frame.iloc[split.train], frame.iloc[split.val]


def _validation_calibration(model, train: pd.DataFrame, val: pd.DataFrame) -> dict:
    """Calibrate probabilities and novelty on the validation rows."""
    from genrekit.datasets.table import feature_matrix
    from genrekit.models.calibrate import FeatureNovelty
    from genrekit.training.recipe import calibration, heldout_logits

    X_train, X_val = feature_matrix(train), feature_matrix(val)
    codes = np.searchsorted(model.classes_, val[LABEL_COLUMN].to_numpy(dtype=str))
    distances = FeatureNovelty.fit(X_train).distance(X_val)
    return calibration(heldout_logits(model, X_val), codes, X_train, distances)
