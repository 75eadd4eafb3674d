"""Scanning a music library into a catalogue: incremental, crash-safe, local or on a Dask cluster.

A scan walks the given files and folders and compares them with the
catalogue (:mod:`genrekit.library.catalogue`) in one ordered pass (a merge of
the sorted walk with the catalogue's rows, so memory stays flat whatever the
size of the library):

* a file the catalogue does not hold, or holds as ``gone``, is analysed;
* a file whose size or modification time changed is analysed again;
* a file that is unchanged is only stat'ed (a failed one is retried with
  ``retry_failed``; one stored without segments is analysed again when
  segments are asked for);
* a file the catalogue holds below a scanned folder but that is no longer
  there is marked ``gone``.

Analysing a file (:func:`analyse_file`, on a worker) decodes it once and
computes the features of its 30-s windows (:func:`genrekit.library.predict.file_windows`)
and, when asked, of its segments. The client, the only writer of the
catalogue, classifies the windows with the current model and stores each file
in its own transaction. Files whose stored prediction comes from another
model (see :func:`genrekit.library.catalogue.model_id`) are re-classified from
their stored features first, without decoding anything.

Workers are either local processes (:func:`run_local`) or Dask distributed
workers (:func:`genrekit.library.cluster.run_dask`); both are *runners*:
functions from an iterator of :class:`Todo` to an iterator of lists of
:class:`~genrekit.library.catalogue.Analysis` or :class:`Lost`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from threadpoolctl import threadpool_limits

from genrekit.audio.decode import AUDIO_EXTENSIONS
from genrekit.errors import AudioError, GenrekitError
from genrekit.library.catalogue import PAGE, Analysis, Catalogue, Entry, Prediction, model_id
from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE
from genrekit.parallel import _init_worker, cpu_count


@dataclass(frozen=True)
class Todo:
    """A file to analyse, with its size and modification time as the walk saw them."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Lost:
    """A file whose analysis was lost for a reason that is not the file's (a broken pool, a lost cluster).

    Nothing is stored for it, so the next scan analyses it again.
    """

    path: str
    reason: str


Runner = Callable[[Iterator[Todo]], Iterator[list["Analysis | Lost"]]]
"""Analyses files somewhere and yields the results in lists (a list per finished batch)."""


@dataclass
class ScanReport:
    """What a scan did.

    Attributes
    ----------
    new, changed, unchanged, gone, retried : int
        Files by what the walk found (``retried``: unchanged files that had failed).
    analysed : int
        Files analysed and stored with their features and prediction.
    failed : list of (str, str)
        Files that failed in this scan (stored as failed) and why.
    lost : list of (str, str)
        Files whose analysis was lost (not stored; the next scan retries them) and why.
    reclassified : int
        Stored files re-classified from their features with the current model.
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    retried: int = 0
    analysed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    reclassified: int = 0


def analyse_file(path: str, segment_seconds: float | None = None) -> Analysis:
    """Decode one file and compute the features of its windows (and segments); never raises.

    Parameters
    ----------
    path : str
        The audio file.
    segment_seconds : float, optional
        Also compute the features of consecutive segments of this length (3: the
        public 3-second table's segments).

    Returns
    -------
    Analysis
        The features, or the error (naming the file) when it cannot be analysed.
    """
    from genrekit.library.extract import extract_file
    from genrekit.library.predict import file_windows

    try:
        stat = os.stat(path)
    except OSError as exc:
        return Analysis(path, -1, -1, error=f"{path}: cannot read: {exc.strerror or exc}")
    try:
        windows = file_windows(path)
        segments = None if segment_seconds is None else extract_file(path, segment_seconds=segment_seconds)
    except Exception as exc:  # one bad file, whatever its fault, must not stop the scan
        message = str(exc) if isinstance(exc, GenrekitError) else f"{path}: unexpected {exc!r}"
        return Analysis(path, stat.st_size, stat.st_mtime_ns, error=message)
    if segments is not None:
        from genrekit.schema import FEATURE_NAMES

        ends = segments["length"].cumsum().to_numpy()
        segment_bounds = list(zip(ends - segments["length"].to_numpy(), ends, strict=True))
        segment_features = segments.loc[:, list(FEATURE_NAMES)].to_numpy(float)
    else:
        segment_bounds = segment_features = None
    return Analysis(
        path,
        stat.st_size,
        stat.st_mtime_ns,
        windows.n_samples,
        windows.bounds,
        windows.features,
        segment_seconds,
        None if segment_bounds is None else _as_bounds(segment_bounds),
        segment_features,
    )


def _as_bounds(pairs: Sequence[tuple[int, int]]):
    """``(start, end)`` pairs as an int64 array of shape (n, 2)."""
    import numpy as np

    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def analyse_batch(paths: Sequence[str], segment_seconds: float | None = None) -> list[Analysis]:
    """Analyse several files in turn with one BLAS thread (a task of a Dask worker)."""
    with threadpool_limits(1):
        return [analyse_file(path, segment_seconds) for path in paths]


def run_local(jobs: int | None = None, segment_seconds: float | None = None) -> Runner:
    """Return a runner that analyses files on `jobs` local processes (all cores when None).

    At most a few files per process are submitted ahead, so memory does not grow
    with the library. A process that dies breaks the pool: the files in flight
    are reported :class:`Lost`, and the scan stops early (the next one goes on).
    """
    jobs = jobs or cpu_count()

    def run(todo: Iterator[Todo]) -> Iterator[list[Analysis | Lost]]:
        if jobs == 1:
            with threadpool_limits(1):
                for item in todo:
                    yield [analyse_file(item.path, segment_seconds)]
            return
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker)
        pending: dict[Future, str] = {}
        try:
            for item in islice(todo, 4 * jobs):
                pending[pool.submit(analyse_file, item.path, segment_seconds)] = item.path
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    path = pending.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # the pool broke: a worker died (out of memory, killed)
                        yield [Lost(path, f"worker process died ({type(exc).__name__}: {exc})")]
                        yield [Lost(p, "worker pool broken") for p in pending.values()]
                        return
                    yield [result]
                    for item in islice(todo, 1):
                        pending[pool.submit(analyse_file, item.path, segment_seconds)] = item.path
        finally:  # also on Ctrl-C: drop what has not started
            pool.shutdown(wait=True, cancel_futures=True)

    return run


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Yield the audio files at or below `root` with their stat, in the order of their path strings.

    Hidden files and folders (``.name``) are skipped and symbolic links to folders
    are not followed, like :func:`genrekit.audio.decode.audio_files`; a file
    named as `root` is taken whatever its extension. Each folder is read once and
    its entries sorted so that the whole stream is ordered like the paths as
    strings (a folder ``a`` sorts as ``a/``), the order of the catalogue's index.
    """
    if not root.is_dir():
        yield str(root), root.stat()
        return
    with os.scandir(root) as entries:
        listed = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                listed.append((entry.name + os.sep, entry))
            elif os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS and entry.is_file():
                listed.append((entry.name, entry))
    for key, entry in sorted(listed, key=lambda pair: pair[0]):
        if key.endswith(os.sep):
            yield from walk(Path(entry.path))
        else:
            yield entry.path, entry.stat()


def plan(
    catalogue: Catalogue,
    roots: Iterable[Path],
    report: ScanReport,
    segment_seconds: float | None = None,
    retry_failed: bool = False,
) -> Iterator[Todo]:
    """Yield the files to analyse under `roots` and mark the vanished ones gone (counting in `report`)."""
    for root in roots:
        gone: list[int] = []
        for found, entry in _merge(walk(root), catalogue.entries(str(root))):
            if found is None:
                if entry.status != "gone":
                    gone.append(entry.id)
                if len(gone) >= PAGE:
                    catalogue.mark_gone(gone)
                    report.gone, gone = report.gone + len(gone), []
                continue
            path, stat = found
            if not path.isascii() and not _is_utf8(path):
                report.failed.append((ascii(path), f"{path!a}: the name is not valid UTF-8; rename it"))
                continue
            todo = Todo(path, stat.st_size, stat.st_mtime_ns)
            kind = _what_changed(entry, todo, segment_seconds, retry_failed)
            if kind == "unchanged":
                report.unchanged += 1
                continue
            setattr(report, kind, getattr(report, kind) + 1)
            yield todo
        catalogue.mark_gone(gone)
        report.gone += len(gone)


def _is_utf8(path: str) -> bool:
    """Whether a path decoded by the OS (undecodable bytes as surrogates) is valid UTF-8 (SQLite's text)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _merge(
    found: Iterator[tuple[str, os.stat_result]], stored: Iterator[Entry]
) -> Iterator[tuple[tuple[str, os.stat_result] | None, Entry | None]]:
    """Pair two streams ordered by path: ``(found, entry)``, either None when the other has no match."""
    item, entry = next(found, None), next(stored, None)
    while item is not None or entry is not None:
        if entry is None or (item is not None and item[0] < entry.path):
            yield item, None
            item = next(found, None)
        elif item is None or entry.path < item[0]:
            yield None, entry
            entry = next(stored, None)
        else:
            yield item, entry
            item, entry = next(found, None), next(stored, None)


def _what_changed(entry: Entry | None, todo: Todo, segment_seconds: float | None, retry_failed: bool) -> str:
    """Classify a file on disk against its catalogue entry: new, changed, retried or unchanged."""
    if entry is None or entry.status == "gone":
        return "new"
    if (entry.size, entry.mtime_ns) != (todo.size, todo.mtime_ns):
        return "changed"
    if entry.status == "failed":
        return "retried" if retry_failed else "unchanged"
    if segment_seconds is not None and entry.segment_seconds != segment_seconds:
        return "changed"
    return "unchanged"


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    catalogue: Catalogue,
    model,
    runner: Runner | None = None,
    segment_seconds: float | None = None,
    retry_failed: bool = False,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    on_stored: Callable[[Analysis], None] | None = None,
) -> ScanReport:
    """Bring the catalogue up to date with the files under `paths` and with `model`.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Audio files and folders (folders recursively).
    catalogue : Catalogue
        The catalogue to update (this process is its only writer).
    model : GenreModel
        The current model (:func:`genrekit.load_model`).
    runner : callable, optional
        Where files are analysed: :func:`run_local` (the default, all cores) or
        :func:`genrekit.library.cluster.run_dask`.
    segment_seconds : float, optional
        Also store the features of segments of this length (3: the public
        3-second table), and analyse again the files stored without them.
    retry_failed : bool
        Analyse again the unchanged files that failed before.
    min_confidence : float
        Top probability below which a file's genre is stored as ``uncertain``
        (as is a file whose audio is unlike the training music).
    on_stored : callable, optional
        Called with each analysis once it is committed (e.g. a progress bar).

    Returns
    -------
    ScanReport
        What was found and done.

    Raises
    ------
    AudioError
        If a path does not exist.
    GenrekitError
        If `model` was trained on windows other than 30 s (the catalogue stores 30-s windows).
    """
    window = getattr(model, "window_seconds", 30.0)
    if window != 30.0:
        raise GenrekitError(
            f"this model was trained on {window:g}-second rows, and the catalogue classifies the 30-second "
            "windows it stores; predict such a model's files with `genrekit predict`"
        )
    roots = _roots(paths)
    runner = runner or run_local(segment_seconds=segment_seconds)
    report = ScanReport()
    current = model_id(model.metadata)
    report.reclassified = reclassify(catalogue, model, min_confidence)
    for results in runner(plan(catalogue, roots, report, segment_seconds, retry_failed)):
        analyses = [r for r in results if isinstance(r, Analysis)]
        report.lost += [(r.path, r.reason) for r in results if isinstance(r, Lost)]
        predictions = _predictions(model, current, analyses, min_confidence)
        for analysis in analyses:
            catalogue.put(analysis, predictions.get(analysis.path))
            if analysis.error is None:
                report.analysed += 1
            else:
                report.failed.append((analysis.path, analysis.error))
            if on_stored is not None:
                on_stored(analysis)
    return report


def reclassify(catalogue: Catalogue, model, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> int:
    """Re-classify, from their stored window features, the files whose prediction is not `model`'s.

    Returns
    -------
    int
        How many files were re-classified.
    """
    from genrekit.library.predict import FileWindows

    current, total, cut = model_id(model.metadata), 0, min_confidence
    last = 0
    while batch := catalogue.stale(current, last):
        last = batch[-1].id
        catalogue.put_predictions(
            (f.id, _predict(model, current, f.path, FileWindows(f.n_samples, f.bounds, f.features), cut))
            for f in batch
        )
        total += len(batch)
    return total


def _predictions(
    model, current: str, analyses: Sequence[Analysis], min_confidence: float
) -> dict[str, Prediction]:
    """Classify the windows of each successful analysis; path -> prediction."""
    from genrekit.library.predict import FileWindows

    return {
        item.path: _predict(
            model, current, item.path, FileWindows(item.n_samples, item.bounds, item.features), min_confidence
        )
        for item in analyses
        if item.error is None
    }


def _predict(model, current: str, path: str, windows, min_confidence: float) -> Prediction:
    """Classify one file's windows, alone and on one thread, so the result never depends on batching."""
    with threadpool_limits(1):
        (file_prediction,) = model.predict_windows([(Path(path), windows)])
    return _prediction(file_prediction, current, min_confidence)


def _prediction(file_prediction, current: str, min_confidence: float) -> Prediction:
    """Return a FilePrediction as the catalogue stores it (``uncertain`` when not confident)."""
    best = file_prediction.genre
    return Prediction(
        model_id=current,
        genre=best if file_prediction.is_confident(min_confidence) else "uncertain",
        best_guess=best,
        confidence=file_prediction.confidence,
        novelty=file_prediction.novelty,
        familiar=file_prediction.familiar,
        probabilities=dict(
            zip(file_prediction.classes, map(float, file_prediction.probabilities), strict=True)
        ),
    )


def _roots(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Absolute, existing, sorted roots, leaving out those inside another root."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    roots = []
    for path in map(Path, paths):
        if not path.exists():
            raise AudioError(f"{path}: no such file or folder")
        roots.append(path.resolve())
    roots.sort()
    return [root for i, root in enumerate(roots) if not any(root.is_relative_to(r) for r in roots[:i])]
