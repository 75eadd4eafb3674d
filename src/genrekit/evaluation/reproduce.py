"""Reproduce the paper: every protocol x (the CNN and three baselines), then the report.

:func:`reproduce` reads and checks the table, plans one run per (split, model),
trains them (in parallel worker processes when ``jobs > 1``: one torch thread
each, results identical to a sequential run because every run is seeded),
aggregates the scores with :mod:`genrekit.selection.metrics` and writes the report with
:mod:`genrekit.evaluation.report`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import multiprocessing
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genrekit.core.errors import GenrekitError
from genrekit.core.parallel import init_worker
from genrekit.core.schema import LABEL_COLUMN
from genrekit.core.version import __version__
from genrekit.datasets.table import source_groups
from genrekit.models.registry import PAPER_MODELS, chosen_params, recipe
from genrekit.models.registry import make_model as make_recipe
from genrekit.selection.metrics import (
    SCALAR_METRICS,
    classification_table,
    confused_pairs,
    confusion_frame,
    example_predictions,
    file_accuracy,
    predicted_labels,
    roc_auc_per_class,
    score_run,
    summarize,
)
from genrekit.selection.protocols import (
    FILTERED,
    OPTIMISTIC,
    PAPER,
    Groups,
    Split,
    cv_name,
    cv_splits,
    describe_protocol,
    filtered_splits,
    fit_on_split,
    optimistic_splits,
    paper_splits,
    without_augmented,
)

MODELS: tuple[str, ...] = PAPER_MODELS
"""The models of the paper's Table 1: the proposed CNN, then the baselines (always run)."""

RUN_KEYS: tuple[str, ...] = ("repeat", "seed", "metrics", "fit_seconds", "chosen")
"""What ``metrics.json`` keeps of each run (``chosen``: the inner searches' choices, tuned models only)."""

RUN_COST: dict[str, float] = {"cnn": 1.0, "knn": 0.001, "svm": 0.05, "mlp": 0.11}
"""The cost of one run of each paper model, relative to one CNN run: the mean ``fit_seconds`` of
each in the default reproduction (``docs/results/reproduce-default.json``: CNN 87.6 s, k-NN 0.1 s,
SVM 4.2 s, MLP 9.5 s on a loaded 2-core machine), so that the time left is estimated from the kinds
of run still to come, not from their number (the 40 CNN runs come first)."""

NEURAL_RUN_COST: float = 1.0
"""The relative cost assumed for a network of the registry not in :data:`RUN_COST` (trained by PyTorch)."""

OTHER_RUN_COST: float = 0.1
"""The relative cost assumed for any other registry model not in :data:`RUN_COST`."""

PROTOCOL_NAMES: tuple[str, ...] = (PAPER, "cv", FILTERED, OPTIMISTIC)
"""Protocol names accepted by ``Settings.extra_protocols`` (``cv`` is ``cv<folds>``)."""


PAPER_TITLE = "Reproduction of 'A Novel CNN Architecture for Music Genre Classification from Audio Features'"

PAPER_TABLE1: dict[str, dict[str, float]] = {
    "knn": {"accuracy": 0.605, "precision_macro": 0.582, "recall_macro": 0.591, "f1_macro": 0.586},
    "svm": {"accuracy": 0.683, "precision_macro": 0.667, "recall_macro": 0.672, "f1_macro": 0.669},
    "mlp": {"accuracy": 0.712, "precision_macro": 0.701, "recall_macro": 0.705, "f1_macro": 0.703},
    "cnn": {"accuracy": 0.770, "precision_macro": 0.758, "recall_macro": 0.763, "f1_macro": 0.760},
}
"""The paper's Table 1 (one 100-track test set; its protocol is not stated)."""

PAPER_ERROR_PAIRS: tuple[tuple[str, str], ...] = (("blues", "jazz"), ("pop", "rock"), ("classical", "jazz"))
"""The confusions named in the paper's error analysis (section 9)."""


@dataclass(frozen=True)
class Settings:
    """How much to run.

    Attributes
    ----------
    seeds : int
        Repeats of the ``paper``, ``optimistic`` and ``filtered`` protocols (seeds 0..seeds-1).
    folds : int
        Folds of the cross-validation protocol.
    epochs : int
        The CNN's epoch cap (the paper: 200).
    patience : int
        Epochs without validation improvement before the CNN stops.
    jobs : int
        Worker processes (1: run in this process).
    quick : bool
        Whether these are the reduced ``--quick`` settings (recorded in the report).
    extra_models : tuple of str
        Registry models run besides the paper's four (:data:`MODELS`).
    extra_protocols : tuple of str
        Protocols the extra models run under (names of :data:`PROTOCOL_NAMES`);
        the paper's four always run under every protocol.
    explain : bool
        Also compute the permutation importance of the paper's CNN and of the
        shipped model's recipe over ``folds`` folds (:func:`explain`).
    """

    seeds: int = 10
    folds: int = 10
    epochs: int = 200
    patience: int = 20
    jobs: int = 1
    quick: bool = False
    extra_models: tuple[str, ...] = ()
    extra_protocols: tuple[str, ...] = PROTOCOL_NAMES
    explain: bool = False

    @property
    def models(self) -> tuple[str, ...]:
        """Every model of the run: the paper's four, then the extra ones."""
        return (*MODELS, *(name for name in self.extra_models if name not in MODELS))

    def runs_under(self, model: str, protocol: str) -> bool:
        """Whether `model` runs under `protocol` (``cv10`` matches ``cv``)."""
        short = "cv" if protocol.startswith("cv") and protocol[2:].isdigit() else protocol
        return model in MODELS or short in self.extra_protocols

    @classmethod
    def make_quick(cls, jobs: int = 1) -> Settings:
        """Return the ``--quick`` settings: 2 seeds, 3 folds, at most 20 epochs (patience 5)."""
        return cls(seeds=2, folds=3, epochs=20, patience=5, jobs=jobs, quick=True)


@dataclass(frozen=True)
class Task:
    """One training run: a model on a split."""

    split: Split
    model: str


def make_model(name: str, seed: int, settings: Settings):
    """Return a fresh unfitted registry model `name` seeded with `seed` (the CNNs: epoch cap, patience)."""
    return make_recipe(name, seed, epochs=settings.epochs, patience=settings.patience)


def plan(
    y: np.ndarray, filenames: np.ndarray, settings: Settings, split_dir: str | os.PathLike[str] | None
) -> tuple[list[Task], list[dict[str, str]]]:
    """Plan every run of the reproduction.

    Parameters
    ----------
    y : numpy.ndarray of str
        Labels of the table rows.
    filenames : numpy.ndarray of str
        The table's ``filename`` column (to match the filtered split).
    settings : Settings
        Seeds, folds, ...
    split_dir : path-like, optional
        Folder of the filtered split; without it that protocol is skipped.

    Returns
    -------
    tasks : list of Task
        CNN runs first (the longest), then baselines, protocol by protocol, then
        the extra models under their protocols.
    notes : list of dict
        ``{"protocol", "note"}`` for skipped protocols and unmatched split ids.
    """
    seeds = list(range(settings.seeds))
    if not seeds:
        raise GenrekitError("seeds: need at least 1")
    notes: list[dict[str, str]] = []
    groups = source_groups(filenames, y)
    splits = paper_splits(y, seeds, groups) + cv_splits(y, settings.folds, seed=0, groups=groups)
    if split_dir is None:
        notes.append({"protocol": "filtered", "note": "skipped: no --split-dir given (see the README)"})
    else:
        filtered, unmatched = filtered_splits(filenames, split_dir, seeds)
        splits += filtered
        if unmatched:
            notes.append(
                {
                    "protocol": "filtered",
                    "note": f"{len(unmatched)} listed ids have no table row: "
                    + ", ".join(unmatched[:10])
                    + (" ..." if len(unmatched) > 10 else ""),
                }
            )
    splits = without_augmented(splits + optimistic_splits(y, seeds, groups), filenames)
    tasks = [
        Task(split, model)
        for model in settings.models
        for split in splits
        if settings.runs_under(model, split.protocol)
    ]
    return tasks, notes


def run_task(
    task: Task, X: np.ndarray, y: np.ndarray, classes: np.ndarray, settings: Settings, groups: Groups = None
) -> dict:
    """Train one model on one split and score it on the split's test rows.

    Parameters
    ----------
    task : Task
        The split and model.
    X : numpy.ndarray, shape (n, 57)
        All features.
    y : numpy.ndarray of str, shape (n,)
        All labels.
    classes : numpy.ndarray of str
        The classes, in the order of the returned probability columns.
    settings : Settings
        Epoch cap and patience of the CNN.
    groups : sequence of str, optional
        Source clip of every row (the model's inner cross-validations keep a clip together).

    Returns
    -------
    dict
        ``protocol, model, repeat, seed, n_train, n_val, n_test, early_stopping,
        metrics, fit_seconds, test, proba`` and, for the CNN, ``history,
        best_epoch, n_epochs_run``.
    """
    split = task.split
    uses_validation = recipe(task.model).uses_validation
    model = make_model(task.model, split.seed, settings)
    start = time.perf_counter()
    fit_on_split(model, X, y, split, uses_validation, groups)
    fit_seconds = time.perf_counter() - start
    raw = np.asarray(model.predict_proba(X[split.test]), dtype=float)
    proba = raw[:, [list(model.classes_).index(name) for name in classes]]
    if not uses_validation:
        stopping = "none (this model does not use the validation rows)"
    else:
        stopping = "test rows (OPTIMISTIC)" if split.val_is_test else "validation rows"
    result = {
        "protocol": split.protocol,
        "model": task.model,
        "repeat": split.repeat,
        "seed": split.seed,
        "n_train": len(split.train),
        "n_val": len(split.val) if uses_validation else 0,
        "n_test": len(split.test),
        "early_stopping": stopping,
        "metrics": score_run(y[split.test], proba, classes)
        | _per_file(y, proba, classes, groups, split.test),
        "fit_seconds": fit_seconds,
        "test": split.test,
        "proba": proba,
    }
    chosen = chosen_params(model)
    if chosen:
        result["chosen"] = chosen
    if uses_validation:
        result["history"] = model.history_
        result["best_epoch"] = int(model.best_epoch_)
        result["n_epochs_run"] = int(model.n_epochs_run_)
    return result


def _per_file(
    y: np.ndarray, proba: np.ndarray, classes: np.ndarray, groups: Groups, test: np.ndarray
) -> dict:
    """``file_accuracy`` and ``n_test_files`` of a run whose test rows share source clips (else nothing)."""
    if groups is None:
        return {}
    sources = np.asarray(groups, dtype=str)[test]
    if len(np.unique(sources)) == len(sources):
        return {}
    accuracy, n_files = file_accuracy(y[test], proba, classes, sources)
    return {"file_accuracy": accuracy, "n_test_files": n_files}


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """Run the block with one torch thread and one BLAS/OpenMP thread, then restore the settings.

    One thread per run keeps the parallel workers from oversubscribing the CPU and
    makes a run's arithmetic the same whether it runs in a worker or in this process.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


_WORKER: dict[str, object] = {}


def _init_worker(
    X: np.ndarray, y: np.ndarray, classes: np.ndarray, settings: Settings, groups: Groups
) -> None:
    limits = _single_threaded()
    limits.__enter__()  # for the worker's whole life
    _WORKER.update(X=X, y=y, classes=classes, settings=settings, groups=groups, limits=limits)


def _worker_run(task: Task) -> dict:
    worker = _WORKER
    return run_task(task, worker["X"], worker["y"], worker["classes"], worker["settings"], worker["groups"])


def run_cost(task: Task) -> float:
    """Return the expected cost of `task` relative to one run of the paper's CNN (:data:`RUN_COST`)."""
    if task.model in RUN_COST:
        return RUN_COST[task.model]
    return NEURAL_RUN_COST if recipe(task.model).requires == "torch" else OTHER_RUN_COST


def run_tasks(
    tasks: list[Task],
    X: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    settings: Settings,
    progress: Callable[..., Iterable] | None = None,
    groups: Groups = None,
) -> list[dict]:
    """Run `tasks` (in ``settings.jobs`` processes, one torch thread each) and return results in task order.

    Parameters
    ----------
    tasks : list of Task
        The runs.
    X, y, classes, settings, groups
        As for :func:`run_task`.
    progress : callable, optional
        ``progress(iterable, total=, desc=, unit=, cost=, work=)`` wrapper shown while runs
        complete (for example :func:`genrekit.cli._common.progress`); ``cost(item)`` is the
        expected cost of the run behind an item (:func:`run_cost`), ``work`` that of them all.

    Returns
    -------
    list of dict
        One :func:`run_task` result per task, in the order of `tasks`.
    """
    wrap = progress or (lambda iterable, **_: iterable)
    costs = [run_cost(task) for task in tasks]
    shown = {"total": len(tasks), "desc": "training", "unit": "run", "work": sum(costs)}
    if settings.jobs <= 1:
        with _single_threaded():
            return [
                run_task(task, X, y, classes, settings, groups)
                for task in wrap(tasks, cost=run_cost, **shown)
            ]
    results: list[dict | None] = [None] * len(tasks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=settings.jobs,
        mp_context=context,
        initializer=init_worker,
        initargs=(_init_worker, X, y, classes, settings, groups),
    ) as pool:
        futures = {pool.submit(_worker_run, task): index for index, task in enumerate(tasks)}
        try:
            for future in wrap(as_completed(futures), cost=lambda done: costs[futures[done]], **shown):
                results[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results  # type: ignore[return-value]


def _pooled(runs: list[dict], y: np.ndarray, classes: np.ndarray) -> dict:
    """Confusion matrix, per-class report, ROC-AUC and confused pairs of the pooled test predictions."""
    rows = np.concatenate([run["test"] for run in runs])
    proba = np.concatenate([run["proba"] for run in runs])
    y_true = y[rows]
    y_pred = predicted_labels(proba, classes)
    confusion = confusion_frame(y_true, y_pred, classes)
    report = classification_table(y_true, y_pred, classes)
    auc = roc_auc_per_class(y_true, proba, classes)
    return {
        "n_predictions": len(rows),
        "labels": [str(name) for name in classes],
        "confusion": confusion.to_numpy().tolist(),
        "classification_report": {
            str(name): {key: (int(value) if key == "support" else float(value)) for key, value in row.items()}
            for name, row in report.iterrows()
        },
        "roc_auc": {**auc, "macro": float(np.nanmean(list(auc.values())))},
        "confused_pairs": [{**pair, "pair": list(pair["pair"])} for pair in confused_pairs(confusion)],
    }


def run_summaries(runs: list[dict]) -> dict[str, dict]:
    """Summarise each metric over `runs` (:func:`summarize`); ``file_accuracy`` only if every run has it.

    Parameters
    ----------
    runs : list of dict
        :func:`run_task` results of one protocol and model.

    Returns
    -------
    dict
        Metric name -> summary, for :data:`SCALAR_METRICS` and ``file_accuracy``.
    """
    return {
        name: summarize([run["metrics"][name] for run in runs])
        for name in (*SCALAR_METRICS, "file_accuracy")
        if all(name in run["metrics"] for run in runs)
    }


def aggregate(
    results: list[dict], y: np.ndarray, filenames: np.ndarray, classes: np.ndarray, settings: Settings
) -> dict:
    """Summarise run results per protocol and model, and pick the CNN details for the report.

    Parameters
    ----------
    results : list of dict
        :func:`run_task` results.
    y, filenames, classes
        Labels and file names of the table rows, and the class order.
    settings : Settings
        The settings of the runs.

    Returns
    -------
    dict
        ``protocols`` (names and descriptions, in order), ``results`` (one entry per
        protocol and model: metric summaries over runs, each run's scores, pooled
        details; for a baseline also ``cnn_minus_this``, the CNN's accuracy minus
        the baseline's summarised over the paired runs on the same splits) and
        ``cnn_detail`` (pooled ``cv`` confusion, report, ROC-AUC, confused pairs vs
        the paper's, learning curves and example predictions of the first
        ``paper`` run).
    """
    protocols = list(dict.fromkeys(run["protocol"] for run in results))
    entries = []
    for protocol in protocols:
        cnn_runs: list[dict] = []
        for model in settings.models:
            runs = [run for run in results if run["protocol"] == protocol and run["model"] == model]
            if not runs:
                continue
            entry = {
                "protocol": protocol,
                "model": model,
                "early_stopping": runs[0]["early_stopping"],
                "n_train": runs[0]["n_train"],
                "n_val": runs[0]["n_val"],
                "n_test": runs[0]["n_test"],
                "summary": run_summaries(runs),
                "runs": [
                    {key: run[key] for key in RUN_KEYS if key in run}
                    | (
                        {"best_epoch": run["best_epoch"], "n_epochs_run": run["n_epochs_run"]}
                        if "best_epoch" in run
                        else {}
                    )
                    for run in runs
                ],
                "pooled": _pooled(runs, y, classes),
            }
            if model == "cnn":
                cnn_runs = runs
            elif cnn_runs:
                pairs = list(zip(cnn_runs, runs, strict=True))
                entry["cnn_minus_this"] = summarize(
                    [a["metrics"]["accuracy"] - b["metrics"]["accuracy"] for a, b in pairs]
                )
                entry["minus_cnn"] = summarize(
                    [b["metrics"]["accuracy"] - a["metrics"]["accuracy"] for a, b in pairs]
                )
            entries.append(entry)
    cv = cv_name(settings.folds)
    cv_cnn = next(entry for entry in entries if entry["protocol"] == cv and entry["model"] == "cnn")
    first = next(run for run in results if run["protocol"] == PAPER and run["model"] == "cnn")
    observed = {tuple(sorted(pair["pair"])): pair["total"] for pair in _all_pairs(cv_cnn["pooled"])}
    detail = {
        "protocol": cv,
        "pooled_over": f"the out-of-fold test predictions of the {settings.folds} {cv} folds "
        "(every table row tested exactly once)",
        **cv_cnn["pooled"],
        "paper_pairs": [
            {
                "pair": list(pair),
                "total": observed.get(tuple(sorted(pair)), 0),
                "rank": _rank(cv_cnn["pooled"], pair),
            }
            for pair in PAPER_ERROR_PAIRS
        ],
        "curves": {
            "protocol": PAPER,
            "repeat": first["repeat"],
            "seed": first["seed"],
            "best_epoch": first["best_epoch"],
            "n_epochs_run": first["n_epochs_run"],
            "history": first["history"],
        },
        "examples": {
            "protocol": PAPER,
            "repeat": first["repeat"],
            "seed": first["seed"],
            "rows": example_predictions(filenames[first["test"]], y[first["test"]], first["proba"], classes),
        },
    }
    return {
        "protocols": [
            {"name": name, "description": describe_protocol(name), "optimistic": name == OPTIMISTIC}
            for name in protocols
        ],
        "results": entries,
        "cnn_detail": detail,
    }


def _all_pairs(pooled: dict) -> list[dict]:
    """Every confused pair (both directions counted) of a pooled confusion matrix."""
    labels = pooled["labels"]
    import pandas as pd

    frame = pd.DataFrame(pooled["confusion"], index=labels, columns=labels)
    return confused_pairs(frame, top=len(labels) ** 2)


def _rank(pooled: dict, pair: tuple[str, str]) -> int | None:
    """1-based rank of `pair` among the most confused pairs (None when never confused)."""
    for rank, item in enumerate(_all_pairs(pooled), start=1):
        if sorted(item["pair"]) == sorted(pair):
            return rank
    return None


def environment(settings: Settings) -> dict:
    """Package versions, CPU count, date and settings of this run."""
    import librosa
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "librosa": librosa.__version__,
        "genrekit": __version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "seeds": list(range(settings.seeds)),
    }


def machine_load() -> list[float] | None:
    """Return the 1-, 5- and 15-minute load averages of the machine, or None where there are none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):  # Windows
        return None


def command_line() -> str:
    """Return the command line of this process, program name first (``genrekit reproduce --data ...``)."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def explain(
    X: np.ndarray,
    y: np.ndarray,
    settings: Settings,
    groups: Groups = None,
    filenames: Sequence[str] | None = None,
) -> dict:
    """Permutation importance of the paper's CNN and of the shipped model's recipe (``cv<folds>``).

    The CNN trains as the shipped CNN did (a fixed epoch count, here ``settings.epochs``,
    no early stopping); the shipped recipe is read from the shipped model's metadata.

    Returns
    -------
    dict
        ``{"cnn": ..., "shipped": ...}``, each as
        :func:`genrekit.training.importance.permutation_importance` returns it,
        plus the recipe ``name``.
    """
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir
    from genrekit.training.importance import permutation_importance, saved_recipe

    result = {}
    for key in ("cnn", "shipped"):
        _, metadata = load_model_dir(SHIPPED_MODELS[key])
        if metadata["kind"] == "paper-cnn":
            training = {key: value for key, value in metadata["training"].items() if key != "best_epoch"}
            metadata = {**metadata, "training": {**training, "epochs": settings.epochs}}
        name, build = saved_recipe(metadata)
        importance = permutation_importance(
            build, X, y, n_folds=settings.folds, repeats=2, sources=groups, filenames=filenames
        )
        result[key] = {"name": name, **importance}
    return result


def load_data(data: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Read and check the labelled feature table.

    Returns
    -------
    X : numpy.ndarray, shape (n, 57)
    y : numpy.ndarray of str
    filenames : numpy.ndarray of str
    info : dict
        ``path``, ``sha256``, ``rows``.

    Raises
    ------
    TableError
        If the table is missing, invalid, or has unlabelled rows (see
        :func:`genrekit.datasets.table.read_table`).
    """
    from genrekit.datasets.table import feature_matrix, file_sha256, read_table

    path = Path(data)
    frame = read_table(path)
    labels = frame[LABEL_COLUMN]
    info = {"path": str(path), "sha256": file_sha256(path), "rows": len(frame)}
    return (
        feature_matrix(frame),
        labels.astype(str).to_numpy(),
        frame["filename"].astype(str).to_numpy(),
        info,
    )


def reproduce(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    progress: Callable[..., Iterable] | None = None,
    audio: str | os.PathLike[str] | None = None,
) -> dict:
    """Run the whole reproduction and write ``report.html``, ``report.md`` and ``metrics.json`` to `out`.

    Parameters
    ----------
    data : path-like
        The GTZAN feature table (CSV or Parquet).
    out : path-like
        Output folder (created).
    split_dir : path-like, optional
        Folder of the filtered split (``train.txt``, ``valid.txt``, ``test.txt``);
        without it the ``filtered`` protocol is skipped with a note.
    settings : Settings, optional
        Defaults: 10 seeds, 10 folds, 200 epochs, patience 20, one process.
    progress : callable, optional
        Progress wrapper (see :func:`run_tasks`).
    audio : path-like, optional
        A folder of genre folders: one clip of each gets a spectrogram figure in the report
        (see :func:`genrekit.evaluation.figures.genre_clips`).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from genrekit.core.jsonable import jsonable
    from genrekit.evaluation.figures import figure_data, genre_clips
    from genrekit.evaluation.report import write_report

    settings = settings or Settings()
    clips = [] if audio is None else genre_clips(audio)  # checked before the long runs
    start = time.perf_counter()
    load_before = machine_load()
    X, y, filenames, data_info = load_data(data)
    classes = np.unique(y)
    tasks, notes = plan(y, filenames, settings, split_dir)
    results = run_tasks(tasks, X, y, classes, settings, progress, source_groups(filenames, y))
    metrics = {
        "title": PAPER_TITLE,
        "data": data_info,
        "paper_table1": PAPER_TABLE1,
        "notes": notes,
        **aggregate(results, y, filenames, classes, settings),
        "figure_data": figure_data(results, y, classes),
        "spectrograms": clips,
    }
    from genrekit.models.cnn import PAPER_PARAMS_NOTE, model_summary

    metrics["cnn_detail"]["model_summary"] = model_summary(X.shape[1], len(classes))
    metrics["cnn_detail"]["params_note"] = PAPER_PARAMS_NOTE
    if settings.explain:
        metrics["importance"] = explain(X, y, settings, source_groups(filenames, y), filenames)
    metrics["environment"] = environment(settings) | {
        "jobs": settings.jobs,
        "data_sha256": data_info["sha256"],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "note": "reading, training and aggregation; the CPUs may have been shared with other processes",
        "command": command_line(),
        "load_average": {"start": load_before, "end": machine_load()},
    }
    metrics = jsonable(metrics)
    write_report(metrics, out)
    return metrics
