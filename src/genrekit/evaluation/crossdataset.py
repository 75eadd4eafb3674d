"""Cross-dataset evaluation: how a trained model does on labelled music that is not its training data.

The paper's section 17 asks for it. :func:`evaluate_files` predicts labelled audio files (labels
from their folder names, or from a CSV of file and label), :func:`evaluate_table` a labelled feature
table; both score the predictions with :func:`score`, and :func:`write_evaluation` writes
``evaluation.html``, ``evaluation.md`` and ``evaluation.json`` like ``genrekit reproduce`` writes
its report.

Every item gets an expected answer: one of the model's genres when its label names one (after the
mapping, ignoring case, spaces, ``-`` and ``_``: ``Hip-Hop`` is ``hiphop``), otherwise
``"uncertain"`` (speech, nature sounds, music of a genre the model does not know). The verdict is
``genrekit predict``'s (:meth:`genrekit.prediction.model.GenreModel.verdict`): the most probable
genre when it is confident and the audio is like the training music, else ``"uncertain"``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.errors import GenrekitError
from genrekit.prediction.model import UNCERTAIN

MAX_LISTED: int = 200
"""Per-item rows shown in the HTML/Markdown report (the JSON holds all)."""


@dataclass(frozen=True)
class Item:
    """One evaluated file or table row.

    Attributes
    ----------
    name : str
        File path or table ``filename``.
    label : str
        The label as given (``""`` when there is none).
    expected : str
        A model genre, or ``"uncertain"`` for audio outside the model's genres.
    probabilities : ndarray or None
        Model probabilities (None when the file failed).
    familiar : bool
        Whether the audio is like the training music (novelty check).
    verdict : str
        A genre or ``"uncertain"``, as ``genrekit predict`` says it; ``"error"`` when it failed.
    error : str
        Why the file failed (``""`` when it did not).
    """

    name: str
    label: str
    expected: str
    probabilities: np.ndarray | None
    familiar: bool
    verdict: str
    error: str = ""


def _key(label: str) -> str:
    """Compare labels ignoring case, spaces, hyphens and underscores."""
    return re.sub(r"[\s_\-]+", "", label).casefold()


def expected_answer(label: str, classes: Sequence[str], mapping: Mapping[str, str] | None = None) -> str:
    """Return the model genre `label` names (after `mapping`), or ``"uncertain"``.

    Parameters
    ----------
    label : str
        The item's label (empty: no genre of the model).
    classes : sequence of str
        The model's genres.
    mapping : mapping of str to str, optional
        Label -> model genre (or ``"uncertain"``), matched ignoring case, spaces, ``-`` and ``_``.

    Returns
    -------
    str
        One of `classes`, or ``"uncertain"``.
    """
    mapped = {_key(k): v for k, v in (mapping or {}).items()}.get(_key(label), label)
    by_key = {_key(name): str(name) for name in classes}
    return by_key.get(_key(mapped), UNCERTAIN)


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse ``"Hip-Hop=hiphop,speech=uncertain"`` into a dict.

    Raises
    ------
    GenrekitError
        If an item has no ``=``.
    """
    mapping: dict[str, str] = {}
    for part in filter(None, (item.strip() for item in (text or "").split(","))):
        if "=" not in part:
            raise GenrekitError(f"--map: {part!r} is not LABEL=GENRE")
        key, value = (side.strip() for side in part.split("=", 1))
        mapping[key] = value
    return mapping


def read_labels(path: str | os.PathLike[str], file_column: str = "file", label_column: str = "label") -> dict:
    """Read a CSV of file and label into ``{file name or relative path: label}``.

    Raises
    ------
    GenrekitError
        If the file cannot be read or lacks a column; the message names it.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in (file_column, label_column) if c not in (reader.fieldnames or [])]
            if missing:
                raise GenrekitError(
                    f"{path}: no column {', '.join(missing)} "
                    f"(columns: {', '.join(reader.fieldnames or [])}); use --file-column / --label-column"
                )
            return {row[file_column].strip(): (row[label_column] or "").strip() for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GenrekitError(f"{path}: cannot read the labels: {exc}") from exc


def label_of(path: Path, labels: Mapping[str, str] | None) -> str | None:
    """Return the label of `path`: from `labels` (by path, then by file name), else its folder's name.

    Returns None when `labels` is given but does not list the file.
    """
    if labels is None:
        return path.parent.name
    for key in (str(path), path.as_posix(), path.name):
        if key in labels:
            return labels[key]
    return None


def training_rows(model, names: Iterable[str]) -> int:
    """Count the items among `names` that are rows of the table `model` was trained on.

    Known for the GTZAN table (the shipped models were trained on all its clips): an item
    named like a GTZAN clip (``blues.00042.wav``, a segment or other extension of one) is one
    of its rows when the model's table is that table (checked by its SHA-256).

    Parameters
    ----------
    model : GenreModel
        The model evaluated.
    names : iterable of str
        The items' file names or paths.

    Returns
    -------
    int
        How many of them the model was trained on (0 when it cannot tell).
    """
    from genrekit.core.schema import GENRES
    from genrekit.datasets.fetch import GTZAN_TABLE

    if model.metadata.get("data", {}).get("sha256") != GTZAN_TABLE.sha256:
        return 0
    clip = re.compile(rf"^(?:{'|'.join(GENRES)})\.\d{{5}}\.")
    return sum(bool(clip.match(Path(name).name)) for name in names)


def folder_labels(paths: Sequence[Path], classes: Sequence[str], mapping: Mapping[str, str] | None) -> dict:
    """Label files by their folder's name where it names a genre of the model (after `mapping`).

    A folder whose name names no genre (``Album One``, ``Various``) labels nothing: most
    folders of a music library are albums or artists. A name that `mapping` sends to
    ``uncertain`` does label its files (they should then be called uncertain).

    Returns
    -------
    dict
        ``{path as str: label}`` for the labelled files only.
    """
    explicit = {_key(k) for k, v in (mapping or {}).items() if _key(v) == UNCERTAIN}
    return {
        str(path): path.parent.name
        for path in paths
        if expected_answer(path.parent.name, classes, mapping) != UNCERTAIN
        or _key(path.parent.name) in explicit
    }


def evaluate_files(
    model,
    paths: Iterable[str | os.PathLike[str]],
    labels: Mapping[str, str] | None = None,
    mapping: Mapping[str, str] | None = None,
    min_confidence: float | None = None,
    jobs: int | None = None,
    progress=None,
    unknown_as_uncertain: bool = False,
) -> dict:
    """Predict labelled audio files and score the predictions.

    Parameters
    ----------
    model : GenreModel
        From :func:`genrekit.load_model`.
    paths : iterable of path-like
        Audio files (folders expanded by the caller, e.g. :func:`genrekit.audio.decode.audio_files`).
    labels : mapping, optional
        File name (or path) -> label, as from :func:`read_labels`; files it does not list are
        skipped. Without it, a file's folder name is its label where it names a genre of the
        model (:func:`folder_labels`), or always with `unknown_as_uncertain`.
    mapping : mapping, optional
        Label -> model genre (see :func:`expected_answer`).
    min_confidence : float, optional
        The confidence threshold (default: the CLI's, 0.5).
    jobs : int, optional
        Worker processes for decoding and feature extraction.
    progress : callable, optional
        ``progress(iterable, total, desc, unit)`` wrapper over finished files.
    unknown_as_uncertain : bool
        Without `labels`: a folder name that names no genre of the model is a label too,
        meaning "should be called uncertain" (for folders such as ``speech/``).

    Returns
    -------
    dict
        See :func:`score`; ``source`` is ``"audio"``, ``label_source`` says where the labels
        came from, ``skipped_unlabelled`` lists the files without one and ``training_rows``
        counts the items the model was trained on.
    """
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    classes = [str(c) for c in model.classes_]
    paths = [Path(p) for p in paths]
    if labels is None and not unknown_as_uncertain:
        labels = folder_labels(paths, classes, mapping)
        source = "folder names that name a genre of the model (other folders are not labels)"
    elif labels is None:
        source = "folder names (a name of no genre of the model: should be called uncertain)"
    else:
        source = "the labels file"
    chosen = [(path, label_of(path, labels)) for path in paths]
    skipped = [str(path) for path, label in chosen if label is None]
    chosen = [(path, label) for path, label in chosen if label is not None]
    if not chosen:
        raise GenrekitError(
            f"no labelled audio files to evaluate (labels: {source}); name folders by genre, "
            "give --labels, or count other folder names as uncertain with --unknown-as-uncertain"
        )
    wanted = dict(chosen)
    results = model.predict_files([path for path, _ in chosen], jobs=jobs)
    if progress is not None:
        results = progress(results, len(chosen), "evaluate", "file")
    items = []
    for path, result in results:
        label = wanted[path]
        expected = expected_answer(label, classes, mapping)
        if isinstance(result, Exception):
            items.append(Item(str(path), label, expected, None, False, "error", str(result)))
            continue
        verdict = result.verdict(threshold)
        items.append(Item(str(path), label, expected, result.probabilities, result.familiar, verdict))
    return score(items, classes, threshold) | {
        "source": "audio",
        "label_source": source,
        "skipped_unlabelled": skipped,
        "training_rows": training_rows(model, [path for path, _ in chosen]),
    }


def evaluate_table(
    model,
    table: str | os.PathLike[str],
    mapping: Mapping[str, str] | None = None,
    min_confidence: float | None = None,
) -> dict:
    """Score a model on a labelled feature table (``filename``, the 57 features, ``label``).

    Returns
    -------
    dict
        See :func:`score`; ``source`` is ``"table"``.
    """
    from genrekit.datasets.table import feature_matrix, read_table, table_labels
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    classes = [str(c) for c in model.classes_]
    frame = read_table(table, labels=table_labels(table), require_labels=False)
    proba = np.asarray(model.predict_proba(frame))
    verdicts = model.verdict(frame, threshold)
    familiar = np.ones(len(frame), dtype=bool)
    if model.novelty is not None:
        familiar = model.novelty.distance(feature_matrix(frame)) <= model.novelty.threshold
    items = [
        Item(str(name), str(label), expected_answer(str(label), classes, mapping), p, bool(f), str(v))
        for name, label, p, f, v in zip(
            frame["filename"], frame["label"], proba, familiar, verdicts, strict=True
        )
    ]
    return score(items, classes, threshold) | {
        "source": "table",
        "table": str(table),
        "label_source": "the table's label column",
        "training_rows": training_rows(model, frame["filename"]),
    }


def score(items: Sequence[Item], classes: Sequence[str], min_confidence: float) -> dict:
    """Score evaluated items.

    Parameters
    ----------
    items : sequence of Item
        The evaluated files or rows.
    classes : sequence of str
        The model's genres.
    min_confidence : float
        The confidence threshold used for the verdicts.

    Returns
    -------
    dict
        ``counts`` (items, failed, in the model's genres, expected uncertain); ``best_guess``
        (accuracy of the most probable genre on items of the model's genres, and per-genre
        precision/recall/F1 of it); ``at_threshold`` (coverage: share of those items answered
        with a genre, accuracy of those answers, and the share of should-be-uncertain items
        that were called uncertain); ``confusion`` (expected answer x verdict, ``uncertain``
        included); ``confident_mistakes`` (a genre was said and it was wrong, most confident
        first); ``items`` (one row each); ``min_confidence``; ``labels_as_uncertain`` (labels
        that name no genre of the model, with counts).
    """
    from genrekit.selection.metrics import classification_table, confusion_frame

    done = [item for item in items if item.probabilities is not None]
    genre_items = [item for item in done if item.expected != UNCERTAIN]
    outside = [item for item in done if item.expected == UNCERTAIN]
    best = [_best(item, classes)[0] for item in genre_items]
    truth = [item.expected for item in genre_items]
    answered = [item for item in genre_items if item.verdict != UNCERTAIN]
    present = [c for c in classes if c in set(truth) | set(best)]
    report = classification_table(truth, best, present) if genre_items else None
    rows = [c for c in classes if c in truth] + ([UNCERTAIN] if outside else [])
    columns = [*classes, UNCERTAIN]
    confusion = confusion_frame([i.expected for i in done], [i.verdict for i in done], columns).loc[rows]
    mistakes = sorted(
        (item for item in done if item.verdict != UNCERTAIN and item.verdict != item.expected),
        key=lambda item: -float(item.probabilities.max()),
    )
    unknown: dict[str, int] = {}
    for item in outside:
        unknown[item.label or "(no label)"] = unknown.get(item.label or "(no label)", 0) + 1
    return {
        "min_confidence": min_confidence,
        "classes": list(classes),
        "counts": {
            "items": len(items),
            "failed": len(items) - len(done),
            "in_model_genres": len(genre_items),
            "expected_uncertain": len(outside),
        },
        "labels_as_uncertain": unknown,
        "best_guess": {
            "accuracy": _share(sum(b == t for b, t in zip(best, truth, strict=True)), len(truth)),
            "per_genre": None
            if report is None
            else {
                str(name): {k: (int(v) if k == "support" else float(v)) for k, v in row.items()}
                for name, row in report.iterrows()
            },
        },
        "at_threshold": {
            "coverage": _share(len(answered), len(genre_items)),
            "accuracy": _share(sum(i.verdict == i.expected for i in answered), len(answered)),
            "uncertain_when_expected": _share(sum(i.verdict == UNCERTAIN for i in outside), len(outside)),
        },
        "confusion": {
            "rows": rows,
            "columns": columns,
            "counts": confusion.to_numpy().tolist(),
        },
        "confident_mistakes": [_row(item, classes) for item in mistakes],
        "items": [_row(item, classes) for item in items],
    }


def _share(count: int, total: int) -> float | None:
    return None if total == 0 else count / total


def _best(item: Item, classes: Sequence[str]) -> tuple[str, float]:
    index = int(np.argmax(item.probabilities))
    return str(classes[index]), float(item.probabilities[index])


def _row(item: Item, classes: Sequence[str]) -> dict:
    best, probability = _best(item, classes) if item.probabilities is not None else (None, None)
    return {
        "file": item.name,
        "label": item.label,
        "expected": item.expected,
        "verdict": item.verdict,
        "best_guess": best,
        "probability": probability,
        "familiar": item.familiar,
        "correct": item.verdict == item.expected,
        **({"error": item.error} if item.error else {}),
    }


# ------------------------------------------------------------------------------------------------- report


def _percent(value: float | None) -> str:
    from genrekit.evaluation.report import format_percent

    return format_percent(value)


def evaluation_blocks(result: dict, title: str) -> list:
    """Build the evaluation report as blocks for :mod:`genrekit.evaluation.report`'s renderers."""
    from genrekit.evaluation.document import Heading, Paragraph, Table

    counts, at = result["counts"], result["at_threshold"]
    blocks: list = [
        Heading(title, 1),
        Paragraph(
            f"{counts['items']} items ({result['source']}), {counts['failed']} failed; "
            f"{counts['in_model_genres']} labelled with one of the model's genres, "
            f"{counts['expected_uncertain']} that should be called uncertain (labels naming no genre of "
            "the model: "
            + (", ".join(f"{k} {v}" for k, v in result["labels_as_uncertain"].items()) or "none")
            + f"). Labels: {result.get('label_source', 'not recorded')}."
        ),
        *(
            [
                Paragraph(
                    f"{result['training_rows']} of these items are rows of the model's own training table: "
                    "their scores measure memory, not accuracy on unseen music.",
                    warning=True,
                )
            ]
            if result.get("training_rows")
            else []
        ),
        Table(
            ["Measure", "Value (%)", "Of"],
            [
                [
                    "Accuracy of the most probable genre",
                    _percent(result["best_guess"]["accuracy"]),
                    f"{counts['in_model_genres']} items of the model's genres",
                ],
                [
                    f"Coverage at confidence {result['min_confidence']:g}",
                    _percent(at["coverage"]),
                    "items of the model's genres answered with a genre",
                ],
                ["Accuracy of those answers", _percent(at["accuracy"]), "answered items"],
                [
                    "Called uncertain when they should be",
                    _percent(at["uncertain_when_expected"]),
                    f"{counts['expected_uncertain']} items outside the model's genres",
                ],
            ],
        ),
    ]
    per_genre = result["best_guess"]["per_genre"]
    if per_genre:
        blocks += [
            Heading("Per genre (most probable genre)", 2),
            Table(
                ["Genre", "Precision", "Recall", "F1", "Support"],
                [
                    [name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])]
                    for name, r in per_genre.items()
                ],
                ["avg" if name.endswith("avg") else "" for name in per_genre],
            ),
        ]
    confusion = result["confusion"]
    blocks += [
        Heading("Confusion matrix (expected answer x verdict)", 2),
        Table(
            ["Expected \\ verdict", *confusion["columns"]],
            [
                [row, *map(str, counts_row)]
                for row, counts_row in zip(confusion["rows"], confusion["counts"], strict=True)
            ],
        ),
        Heading("Confident mistakes", 2),
        _items_table(result["confident_mistakes"], "none"),
        Heading("Every item", 2),
        _items_table(result["items"][:MAX_LISTED], "none"),
    ]
    if len(result["items"]) > MAX_LISTED:
        blocks.append(Paragraph(f"First {MAX_LISTED} of {len(result['items'])} items; the JSON lists all."))
    return blocks


def _items_table(rows: list[dict], empty: str):
    from genrekit.evaluation.document import Table

    body = [
        [
            Path(row["file"]).name,
            row["label"],
            row["expected"],
            row["verdict"],
            row["best_guess"] or "",
            "" if row["probability"] is None else f"{row['probability']:.2f}",
            "yes" if row["familiar"] else "no",
            row.get("error", ""),
        ]
        for row in rows
    ]
    header = [
        "File",
        "Label",
        "Expected",
        "Verdict",
        "Best guess",
        "Probability",
        "Like training music",
        "Error",
    ]
    return Table(
        header, body or [[empty, *[""] * (len(header) - 1)]], ["" if r["correct"] else "wrong" for r in rows]
    )


def write_evaluation(result: dict, out: str | os.PathLike[str], title: str) -> dict[str, Path]:
    """Write ``evaluation.json``, ``evaluation.md`` and ``evaluation.html`` to `out`, each atomically.

    Returns
    -------
    dict
        ``{"json", "markdown", "html"}`` paths.
    """
    import json

    from genrekit.core.atomic import atomic_write_text
    from genrekit.core.jsonable import jsonable
    from genrekit.evaluation.document import to_html, to_markdown

    out = Path(out)
    blocks = evaluation_blocks(result, title)
    paths = {
        "json": out / "evaluation.json",
        "markdown": out / "evaluation.md",
        "html": out / "evaluation.html",
    }
    atomic_write_text(paths["json"], json.dumps(jsonable(result), indent=1, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], to_markdown(blocks))
    atomic_write_text(paths["html"], to_html(blocks))
    return paths
