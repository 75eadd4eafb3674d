"""A library's learned model, stored beside its catalogue, and the steps ``genrekit library`` runs with it.

For a catalogue ``library.db``, ``genrekit library learn`` writes the folder
``library.learned/``:

``model/``
    A genrekit model folder (``model.json`` + ``model.safetensors``, no pickle;
    see :mod:`genrekit.models.io`): the library's own standardisation and the
    classifier, its calibration (temperature and novelty threshold from the
    grouped cross-validation), and in ``model.json`` the field ``learned``: the
    taxonomy, the classes, how many training files (and the SHA-256 of their
    sorted paths), the option chosen and every figure measured. It predicts like
    any model: ``genrekit predict song.mp3 --model library.learned/model``.
``learned.json``
    What the other actions need: the training files with their label, the
    out-of-fold probabilities of each (for ``library audit``), the spelling
    written for each class (the library's most common one), and the SHA-256 of
    the model's weights, checked on loading so the two never disagree.

Both are written atomically (the model folder is renamed into place, then
``learned.json`` is); a run interrupted between the two leaves a ``learned.json``
whose checksum no longer matches, and loading says to run ``learn`` again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.atomic import atomic_write_text
from genrekit.core.errors import GenrekitError
from genrekit.core.jsonable import jsonable
from genrekit.core.schema import FEATURE_NAMES
from genrekit.library.catalogue import WINDOW, Catalogue, TagJournal
from genrekit.library.learn import (
    DEFAULT_FOLDS,
    FEATURE_SETS,
    ClassFamiliarity,
    CVResult,
    Extra,
    LearnedModel,
    LearnError,
    Windows,
    audit,
    class_familiarity,
    compare_feature_sets,
    compare_options,
    default_models,
    fit_learned,
    predict_files,
    suggest,
)
from genrekit.library.tagging import Proposal, propose
from genrekit.library.tags import GENRE, TagError, genrekit_wrote, read_fields, read_genres
from genrekit.library.taxonomy import (
    DEFAULT_MIN_FILES,
    Labels,
    Taxonomy,
    label_files,
    split_values,
    taxonomy_from_dict,
)
from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

FORMAT = "genrekit-learned"
VERSION = 1
MODEL_FOLDER = "model"
STATE_FILE = "learned.json"

MIN_GENRES: int = 3
"""Fewest genres a learned model needs to tag files without ``--force``."""

MIN_FILES_TO_TAG: int = 5
"""Fewest tagged files every genre of a learned model needs to tag files without ``--force``."""


class LearnedStateError(GenrekitError):
    """No learned model beside the catalogue, or one that does not match its state file."""


def learned_dir(db: str | os.PathLike[str]) -> Path:
    """Return the learned model's folder of the catalogue `db` (``library.db`` -> ``library.learned``)."""
    return Path(db).with_suffix(".learned")


def library_windows(catalogue: Catalogue) -> Windows:
    """Return the stored 30-s windows of every analysed file of `catalogue` (file ids are paths).

    Raises
    ------
    GenrekitError
        If the catalogue holds no analysed file.
    """
    features, ids = [], []
    for stored in catalogue.stored(WINDOW):
        features.append(stored.features)
        ids.extend([stored.path] * len(stored.features))
    if not features:
        raise GenrekitError(f"{catalogue.path}: no analysed file in the catalogue; run `genrekit scan`")
    return Windows(np.concatenate(features), np.asarray(ids, dtype=object))


def library_embeddings(catalogue: Catalogue) -> tuple[dict[str, np.ndarray], list[str]]:
    """Return, per analysed file, its stored embeddings side by side (every stored tagger), and the taggers.

    Raises
    ------
    GenrekitError
        If the catalogue holds no embeddings (it was scanned without ``--tags``).
    """
    taggers, _, paths, matrix = catalogue.stored_embeddings()
    return dict(zip(paths, matrix, strict=True)), taggers


def read_library_genres(
    paths: Iterable[str], written: dict[str, tuple[str, ...]] | None = None
) -> tuple[dict[str, tuple[str, ...]], dict[str, str], set[str]]:
    """Read the genre tags of many files; one unreadable file does not stop the others.

    Parameters
    ----------
    paths : iterable of str
        The files.
    written : dict, optional
        File -> the genre values genrekit's journal says it wrote last (:meth:`TagJournal.written`).

    Returns
    -------
    genres : dict
        Path -> its genres (empty when untagged), for every readable file.
    errors : dict
        Path -> why its tag could not be read.
    own : set of str
        The files whose genre genrekit wrote (its journal or its private field says so).
    """
    genres, errors, own = {}, {}, set()
    written = written or {}
    for path in paths:
        try:
            fields = read_fields(path)
            genres[path] = read_genres(path)
        except (TagError, OSError) as exc:
            errors[path] = str(exc)
            continue
        if genrekit_wrote(fields) or (fields[GENRE] and written.get(path) == fields[GENRE]):
            own.add(path)
    return genres, errors, own


def display_names(labels: Labels) -> dict[str, str]:
    """Return, per kept class, the spelling the library uses most for it (what ``tag`` writes)."""
    return {name: next(iter(labels.spellings.get(name, {name: 0}))) for name in labels.kept}


def _sha256_of(items: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(items)).encode("utf-8")).hexdigest()


def save_learned(
    db: str | os.PathLike[str],
    model: LearnedModel,
    cv: CVResult,
    labels: Labels,
    taxonomy: Taxonomy,
    figures: dict,
    familiarity: ClassFamiliarity,
    warnings: Sequence[str] = (),
) -> Path:
    """Store the learned model and its state beside the catalogue `db`; return the folder.

    Parameters
    ----------
    db : path-like
        The catalogue.
    model : LearnedModel
        The model fitted on every tagged file.
    cv : CVResult
        The chosen option's cross-validation (out-of-fold probabilities for the audit).
    labels : Labels
        The training labels and what was merged and dropped.
    taxonomy : Taxonomy
        The mapping used.
    figures : dict
        The learn report (every option's figures, the choice and its reason).
    familiarity : ClassFamiliarity
        Each class's familiarity threshold (open set).
    warnings : sequence of str
        Why the model is too weak to tag files without ``--force`` (too few genres or files).
    """
    folder = learned_dir(db)
    training = {str(f): str(label) for f, label in zip(cv.files, cv.labels, strict=True)}
    summary = {
        "catalogue": Path(db).name,
        "taxonomy": {**taxonomy.to_dict(), "min_files": labels.min_files},
        "classes": list(model.classes_),
        "display": display_names(labels),
        "training_files": len(training),
        "training_files_sha256": _sha256_of(training),
        "figures": figures,
    }
    model.save(folder / MODEL_FOLDER, {"learned": summary})
    document = json.loads((folder / MODEL_FOLDER / "model.json").read_text(encoding="utf-8"))
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_sha256": document["weights"]["sha256"],
        "classes": list(cv.classes),
        "display": summary["display"],
        "training": training,
        "tag_classes": {f: list(labels.classes[f]) for f in training},
        "out_of_fold": {str(f): [float(p) for p in row] for f, row in zip(cv.files, cv.proba, strict=True)},
        "familiarity": jsonable(familiarity.to_dict()),
        "warnings": list(warnings),
    }
    atomic_write_text(folder / STATE_FILE, json.dumps(state, allow_nan=False) + "\n")
    return folder


@dataclass(frozen=True)
class Learned:
    """A stored learned model, loaded.

    Attributes
    ----------
    model : GenreModel
        The model (NumPy prediction, calibrated, with novelty).
    summary : dict
        The ``learned`` field of its ``model.json``.
    state : dict
        ``learned.json``.
    """

    model: object
    summary: dict
    state: dict

    def display(self, name: str) -> str:
        """Return the library's own spelling of class `name` (the most common one when learned)."""
        return self.state["display"].get(name, name)

    def familiarity(self) -> ClassFamiliarity | None:
        """Return the per-class familiarity thresholds (None for a model learned before they existed)."""
        data = self.state.get("familiarity")
        return None if data is None else ClassFamiliarity.from_dict(data)

    def check_usable(self, force: bool = False) -> None:
        """Refuse to tag with a model learned from too few genres or files, unless `force`.

        Raises
        ------
        LearnError
            If ``learn`` warned about the model and `force` is False.
        """
        warnings = self.state.get("warnings", [])
        if warnings and not force:
            raise LearnError(
                "the learned model is too weak to tag files: "
                + "; ".join(warnings)
                + ". Tag more files and learn again, or pass --force"
            )

    def out_of_fold(self) -> Iterator[tuple[str, str, tuple[str, ...], np.ndarray]]:
        """Yield ``(file, label at learn time, classes of its tag then, out-of-fold probabilities)``."""
        for path, label in self.state["training"].items():
            yield (
                path,
                label,
                tuple(self.state["tag_classes"][path]),
                np.asarray(self.state["out_of_fold"][path]),
            )


def load_learned(db: str | os.PathLike[str]) -> Learned:
    """Load the learned model stored beside the catalogue `db`.

    Raises
    ------
    LearnedStateError
        If there is none, or its state file does not match its model.
    """
    from genrekit.prediction.model import load_model

    folder = learned_dir(db)
    path = folder / STATE_FILE
    if not path.is_file():
        raise LearnedStateError(f"{folder}: no learned model; run `genrekit library learn --db {db}` first")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LearnedStateError(f"{path}: cannot read: {exc}") from exc
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise LearnedStateError(f"{path}: not a genrekit learned-model state of version {VERSION}")
    model = load_model(folder / MODEL_FOLDER)
    if model.metadata.get("weights", {}).get("sha256") != state.get("model_sha256"):
        raise LearnedStateError(
            f"{folder}: the model and {STATE_FILE} do not match (an interrupted learn?); run learn again"
        )
    return Learned(model, model.metadata.get("learned", {}), state)


def extra_rows(path: str | os.PathLike[str], taxonomy: Taxonomy, classes: Iterable[str]) -> Extra:
    """Read a labelled feature table (e.g. GTZAN's) as extra rows, labels mapped through `taxonomy`.

    Only rows whose class is one of the library's `classes` are kept.

    Raises
    ------
    GenrekitError
        If the table breaks a rule, or none of its labels is a class of the library.
    """
    from genrekit.datasets.table import read_table

    frame = read_table(path, labels="any")
    mapped = np.asarray([taxonomy.class_of(label) or "" for label in frame.label], dtype=object)
    keep = np.isin(mapped, list(classes))
    if not keep.any():
        raise GenrekitError(f"{path}: none of its labels maps to a genre of the library")
    features = frame.loc[keep, list(FEATURE_NAMES)].to_numpy(np.float64)
    return Extra(features, mapped[keep].astype(str), f"{Path(path).name} rows")


@dataclass(frozen=True)
class LearnRun:
    """What ``genrekit library learn`` did.

    Attributes
    ----------
    report : dict
        Files, tag reading errors, the taxonomy report, every option's figures and the choice.
    folder : Path
        Where the learned model was stored.
    """

    report: dict
    folder: Path


def learn_library(
    db: str | os.PathLike[str],
    taxonomy: Taxonomy,
    *,
    min_files: int = DEFAULT_MIN_FILES,
    models: Sequence[str] | None = None,
    extra_table: str | os.PathLike[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    include_own: bool = False,
    features: str = "gtzan",
) -> LearnRun:
    """Learn the library's genres from its own tags and store the model beside the catalogue.

    Reads the tags of every analysed file, normalises them (:func:`label_files`),
    cross-validates every option by file (:func:`compare_options`; `models`: the
    registry recipes to measure, :func:`default_models` when None), fits the best
    on every tagged file and stores it (:func:`save_learned`). Genre tags genrekit
    wrote itself (its journal in the catalogue, or its private field) are left
    out unless `include_own`: a model must not learn from its own guesses.
    Each class's familiarity threshold is chosen on the same folds
    (:func:`~genrekit.library.learn.class_familiarity`).

    With `features` ``embedding`` or ``both``, the report's ``feature_sets`` also gives the
    grouped cross-validation of the 57 features, of the musicnn embeddings that ``scan --tags``
    stored (and of both side by side) on the same files and folds
    (:func:`~genrekit.library.learn.compare_feature_sets`). The stored model is learned from
    the 57 features either way: a genrekit model folder holds 57-feature models.

    Raises
    ------
    GenrekitError
        If the catalogue cannot be read, or too few files are tagged to learn.
    """
    left_out: dict[str, str] = {}
    if features not in FEATURE_SETS:
        raise LearnError(f"unknown feature set {features!r}; choose from {', '.join(FEATURE_SETS)}")
    if models is None:
        models, left_out = default_models()
    with Catalogue(db, create=False) as catalogue:
        windows = library_windows(catalogue)
        written = TagJournal(catalogue).written()
        embeddings, taggers = library_embeddings(catalogue) if features != "gtzan" else ({}, [])
    paths = list(dict.fromkeys(windows.file_ids))
    genres, errors, own = read_library_genres(paths, written)
    if not include_own:
        genres.update(dict.fromkeys(own, ()))
    labels = label_files(genres, taxonomy, min_files)
    if len(labels.counts) < 2:
        raise LearnError(
            f"{db}: {len(labels.label)} files carry a genre with at least {min_files} files "
            f"({len(labels.counts)} genre(s)); learning needs two genres or more (see --min-files)"
        )
    extra = None if extra_table is None else extra_rows(extra_table, taxonomy, labels.kept)
    chosen, results = compare_options(
        windows, labels.label, models=models, extra=extra, folds=folds, seed=seed
    )
    cv = results[chosen["name"]]
    figures = jsonable(
        {
            "protocol": f"cross-validation grouped by file, {cv.options['folds']} folds, seed {seed}",
            "chosen": chosen["name"],
            "why": "the highest out-of-fold file accuracy of the options measured on the same folds",
            "options": {name: result.to_dict(min_confidence) for name, result in results.items()},
        }
    )
    sets = None
    if features != "gtzan":
        measured = ("gtzan", "embedding", "both") if features == "both" else ("gtzan", "embedding")
        sets = compare_feature_sets(
            windows,
            embeddings,
            labels.label,
            sets=measured,
            models=models,
            folds=folds,
            seed=seed,
            min_confidence=min_confidence,
        )
        sets["taggers"] = taggers
    learned = fit_learned(windows, labels.label, cv, extra)
    familiarity = class_familiarity(windows, labels.label, cv)
    warnings = weak_model_warnings(labels.counts)
    folder = save_learned(db, learned, cv, labels, taxonomy, figures, familiarity, warnings)
    report = jsonable(
        {
            "catalogue": str(db),
            "files": len(paths),
            "tagged": len(labels.tagged),
            "labelled": len(labels.label),
            "unreadable": errors,
            "genrekit_tags": {"left_out": 0 if include_own else len(own), "found": len(own)},
            "familiarity": familiarity.report,
            "warnings": warnings,
            "taxonomy": taxonomy.to_dict(),
            "classes": labels.counts,
            "dropped": labels.dropped,
            "min_files": min_files,
            "spellings": labels.spellings,
            "models": list(models),
            "models_left_out": left_out,
            "extra_rows": None if extra is None else {"name": extra.name, "rows": len(extra.labels)},
            **figures,
            "feature_sets": sets,
            "folder": str(folder),
        }
    )
    return LearnRun(report, folder)


def weak_model_warnings(counts: dict[str, int]) -> list[str]:
    """Why a model learned from `counts` (class -> tagged files) is too weak to tag with (empty: fine)."""
    warnings = []
    if len(counts) < MIN_GENRES:
        warnings.append(f"{len(counts)} genres learned (fewer than {MIN_GENRES})")
    few = {name: n for name, n in counts.items() if n < MIN_FILES_TO_TAG}
    if few:
        listed = ", ".join(f"{name} {n}" for name, n in few.items())
        warnings.append(f"fewer than {MIN_FILES_TO_TAG} tagged files in {listed}")
    return warnings


@dataclass(frozen=True)
class LibraryView:
    """The learned model's view of the catalogue now: current tags and predictions of every file.

    Attributes
    ----------
    learned : Learned
        The stored model and state.
    files : ndarray of str
        Every analysed file of the catalogue.
    proba : ndarray of shape (n_files, n_classes)
        The learned model's probabilities (mean over windows, calibrated).
    familiar : ndarray of bool
        Whether each file is like the training files (novelty check).
    genres : dict
        File -> its current genre values (files whose tag cannot be read are absent).
    errors : dict
        File -> why its tag could not be read.
    taxonomy : Taxonomy
        The learned model's taxonomy.
    """

    learned: Learned
    files: np.ndarray
    proba: np.ndarray
    familiar: np.ndarray
    genres: dict[str, tuple[str, ...]]
    errors: dict[str, str]
    taxonomy: Taxonomy

    @property
    def classes(self) -> list[str]:
        """Class names, in the order of the probability columns."""
        return [str(name) for name in self.learned.model.classes_]

    def untagged(self) -> np.ndarray:
        """Return a mask of the readable files whose genre tag holds no value."""
        return np.array([f in self.genres and not split_values(self.genres[f]) for f in self.files])


def view_library(db: str | os.PathLike[str]) -> LibraryView:
    """Load the learned model, predict every analysed file from its stored windows, read the current tags."""
    learned = load_learned(db)
    with Catalogue(db, readonly=True) as catalogue:
        windows = library_windows(catalogue)
    files, proba, familiar = predict_files(learned.model, windows)
    familiarity = learned.familiarity()
    if familiarity is not None:
        predicted = np.asarray(learned.model.classes_)[np.argmax(proba, axis=1)]
        familiar = familiar & familiarity.familiar(windows, predicted)
    genres, errors, _ = read_library_genres(files)
    taxonomy = taxonomy_from_dict(learned.summary.get("taxonomy", {}))
    return LibraryView(learned, files, proba, familiar, genres, errors, taxonomy)


def fill_plan(
    view: LibraryView, min_confidence: float, overwrite: bool = False, style: str = "library"
) -> list[Proposal]:
    """Decide, file by file, which genre tag the learned model would write (:func:`.tagging.propose`).

    A file is written only when the model is confident (top probability at
    least `min_confidence`) and the file is like the training files of the
    genre predicted (familiar); otherwise it is ``uncertain``. A file that
    already has a genre tag is kept unless `overwrite`; even then a file whose
    tag already names the predicted class is left as it is (``same``). Files
    whose tags cannot be read are ``failed``.

    Parameters
    ----------
    view : LibraryView
        The learned model's view of the catalogue.
    min_confidence : float
        Top probability from which a file is written.
    overwrite : bool
        Replace genres files already have.
    style : str
        The tag spelling (:func:`~genrekit.library.tags.tag_namer`); classes
        :data:`~genrekit.library.tags.TAG_NAMES` does not name are spelled as the library does.
    """
    from genrekit.library.catalogue import model_id
    from genrekit.library.tags import tag_namer

    namer = tag_namer(style, known=view.learned.state["display"])
    model = model_id(view.learned.model.metadata)
    classes = view.classes
    plan = [Proposal(path, "failed", model=model, reason=why) for path, why in view.errors.items()]
    for i, path in enumerate(view.files):
        if path not in view.genres:
            continue
        best = int(np.argmax(view.proba[i]))
        confident = bool(view.familiar[i]) and view.proba[i, best] >= min_confidence
        info = {"probability": float(view.proba[i, best]), "familiar": bool(view.familiar[i])}
        plan.append(
            propose(
                str(path),
                (namer(classes[best]),),
                klass=classes[best],
                model=model,
                confidence=float(view.proba[i, best]),
                verdict="ok" if confident else "uncertain",
                scores=dict(zip(classes, map(float, view.proba[i]), strict=True)),
                overwrite=overwrite,
                taxonomy=view.taxonomy,
                info=info,
            )
        )
    return plan


def audit_library(view: LibraryView, min_confidence: float) -> tuple[list[dict], list[str]]:
    """List the tagged files whose tag the out-of-fold model contradicts (see :func:`.learn.audit`).

    Only files whose tag still names the classes it named when the model was
    learned are judged; the others were re-tagged since (or cannot be read).

    Returns
    -------
    found : list of dict
        The contradicted files, most confident first.
    changed : list of str
        Training files whose tag changed since ``learn`` (or cannot be read now).
    """
    files, labels, rows, classes_of, changed = [], [], [], {}, []
    for path, label, then, proba in view.learned.out_of_fold():
        now = view.taxonomy.classes_of(view.genres[path]) if path in view.genres else None
        if now != then:
            changed.append(path)
            continue
        files.append(path)
        labels.append(label)
        rows.append(proba)
        classes_of[path] = then
    classes = view.learned.state["classes"]
    proba = np.asarray(rows).reshape(-1, len(classes))
    found = audit(files, labels, proba, classes, classes_of, min_confidence)
    for row in found:
        row["tag_values"] = list(view.genres[row["file"]])
        row["predicted_as"] = view.learned.display(row["predicted"])
    return found, changed


def suggest_library(view: LibraryView, n: int) -> list[dict]:
    """Return the `n` untagged files whose labels would help the model most (see :func:`.learn.suggest`)."""
    mask = view.untagged()
    found = suggest(view.files[mask], view.proba[mask], view.classes, n)
    familiar = dict(zip(view.files[mask], view.familiar[mask], strict=True))
    for row in found:
        row["familiar"] = bool(familiar[row["file"]])
    return found
