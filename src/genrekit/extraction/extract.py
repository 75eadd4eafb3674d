"""Many audio files to one GTZAN feature table, or to one table of tagger embeddings.

Each file gives one row (or one row per segment with `segment_seconds`) with
the 60 :data:`~genrekit.core.schema.TABLE_COLUMNS`; with `embeddings` (``extract
--embeddings``), one row per file whose features are the file-level embedding of each musicnn
tagger named (the mean of its 3-s patch embeddings, :attr:`genrekit.tagger.TagResult.embedding`):
columns ``msd_emb_000`` ... ``msd_emb_199`` for ``msd``, then ``mtt_emb_...`` for ``mtt`` (see
:func:`genrekit.datasets.table.embedding_columns`). The other columns are the same:

``filename``
    The file's own name, e.g. ``blues.00000.flac``. genrekit keeps the real
    name, so a GTZAN clip converted to FLAC is ``blues.00000.flac`` where the
    public table says ``blues.00000.wav``: match such rows by their stem. When
    two input files share a name (``a/song.mp3`` and ``b/song.mp3``), those
    files are named by their path relative to the folder common to all inputs,
    so every ``filename`` is unique. Segment ``i`` of ``blues.00000.wav`` is
    ``blues.00000.<i>.wav`` (see :mod:`genrekit.audio.window`).
``length``
    Samples at 22,050 Hz of the clip or segment.
``label``
    The genre folder holding the file (:func:`genrekit.audio.decode.genre_from_path`),
    or empty.

Rows are in the order of the source paths (sorted), whatever order the worker
processes finish in.

Output and resume
-----------------
Each finished file's rows are committed at once, in their own transaction, to
``OUT.progress.db`` beside the output (an SQLite file, see
:class:`genrekit.extraction.checkpoint.ExtractCheckpoint`), so a checkpoint costs
the same whatever the size of the table, and a run killed at any moment
(``kill -9`` included) loses at most the files in flight. The table itself is
the final export: written atomically (:func:`genrekit.datasets.table.write_table`) at
the end, also when the run is interrupted by an exception or Ctrl-C.
``resume=True`` takes the rows of every source recorded in the progress file
(with the same settings) and extracts the other files; the source's absolute
path, not its file name, is the key, so two files with the same name in
different folders are never confused. Rows of sources that are not among the
inputs of the resumed run are kept. Failed files are not recorded, so a resumed
run retries them. Without ``resume``, the progress file is started afresh.
A run that ends with every file extracted removes ``OUT.progress.db``: the
table is then complete, and a later resume matches its rows to the inputs by
filename (one row per file; a segmented table needs its progress file).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrekit.audio.analysis import TooShortError, segment_spans, span_features
from genrekit.audio.augment import augmented_name, parse_augmentations, variants
from genrekit.audio.decode import audio_files, genre_from_path, load_audio
from genrekit.audio.window import segment_length, segment_name
from genrekit.core.errors import AudioError, GenrekitError, SettingsError, TableError
from genrekit.core.parallel import map_tasks
from genrekit.core.schema import FEATURE_NAMES, GENRES, SAMPLE_RATE, embedding_columns
from genrekit.datasets.table import table_columns, table_format, write_table
from genrekit.extraction.checkpoint import ExtractCheckpoint

ENGINES: dict[str, str] = {"fast": "clip_features", "librosa": "reference_features"}
"""Feature engines: name -> function of :mod:`genrekit.audio.features` that computes the 57 features."""

PROGRESS_SUFFIX: str = ".progress.db"
"""Appended to the output table's name to name its resume record (the checkpoint file)."""

_EXACT_CSV = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}

ProgressWrapper = Callable[[Iterable, int], Iterable]
"""``progress(iterable, total)``: wraps the stream of finished files (e.g. in a progress bar)."""


@dataclass
class ExtractResult:
    """What :func:`extract` did.

    Attributes
    ----------
    table : pandas.DataFrame
        The feature table (``TABLE_COLUMNS``, or the embedding columns), rows ordered by
        source path, resumed rows included.
    failures : list of (Path, str)
        Each file that failed and why (the reason, without the file name).
    extracted : list of Path
        Files extracted by this run.
    resumed : list of Path
        Input files whose rows were taken from the existing output (``resume``).
    out : Path or None
        The table written, if any.
    """

    table: pd.DataFrame
    failures: list[tuple[Path, str]] = field(default_factory=list)
    extracted: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)
    out: Path | None = None


def progress_path(out: str | os.PathLike[str]) -> Path:
    """Return the resume record beside the output table `out` (``OUT.progress.json``)."""
    out = Path(out)
    return out.with_name(out.name + PROGRESS_SUFFIX)


def extract_file(
    path: str | os.PathLike[str],
    segment_seconds: float | None = None,
    engine: str = "fast",
    filename: str | None = None,
    genres: Sequence[str] | None = GENRES,
    augment: Sequence[str] = (),
    embeddings: Sequence[str] = (),
) -> pd.DataFrame:
    """Compute the feature-table rows of one audio file (and of its augmented versions).

    Parameters
    ----------
    path : path-like
        The audio file (any format :func:`genrekit.audio.decode.load_audio` reads).
    segment_seconds : float, optional
        Cut the clip into segments of this many seconds (3 gives the public
        3-second table's segments of 66,149 samples) and return one row per
        segment; one row for the whole clip when None.
    engine : {"fast", "librosa"}
        ``"fast"``: :func:`genrekit.audio.features.clip_features`; ``"librosa"``: the
        plain librosa recipe, :func:`genrekit.audio.features.reference_features`.
    filename : str, optional
        Name for the ``filename`` column; the file's name when None.
    genres : sequence of str or None
        Folder names taken as labels (default: the ten GTZAN genres); None takes
        any parent folder's name (see :func:`genrekit.audio.decode.genre_from_path`).
    augment : sequence of str
        Augmentations (:data:`genrekit.audio.augment.AUGMENTATIONS`): the rows of each
        pitch-shifted, time-stretched or noise-mixed version follow the file's own rows,
        named ``<stem>.<tag><ext>`` (see :mod:`genrekit.audio.augment`).
    embeddings : sequence of str
        Tagger names (``"msd"``, ``"mtt"``): one row of their file-level embeddings instead of
        the 57 features (with neither segments nor augmentation; the weights in the cache).

    Returns
    -------
    pandas.DataFrame
        One row per clip or segment (of the file, then of each version), columns ``TABLE_COLUMNS``
        (or the embeddings' columns).

    Raises
    ------
    AudioError
        If the file cannot be decoded or is too short (for a segment, when
        segmenting); the message names the file.
    """
    features_fn = _feature_function(engine)
    y = load_audio(path, sr=SAMPLE_RATE)
    name = Path(path).name if filename is None else filename
    label = genre_from_path(path, genres)
    if embeddings:
        return _embedding_row(y, name, path, embeddings, label)
    frames = [_signal_rows(y, name, path, "", segment_seconds, features_fn, label)]
    for tag, make in variants(name, augment):
        version = augmented_name(name, tag)
        try:
            frames.append(
                _signal_rows(make(y, SAMPLE_RATE), version, path, tag, segment_seconds, features_fn, label)
            )
        except TooShortError as exc:  # a faster version of a clip just over one segment long
            warnings.warn(
                f"{exc}; skipped version {tag} ({version}), kept the file's other rows", stacklevel=2
            )
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _signal_rows(
    y: np.ndarray,
    name: str,
    path: str | os.PathLike[str],
    tag: str,
    segment_seconds: float | None,
    features_fn: Callable[..., np.ndarray],
    label: str,
) -> pd.DataFrame:
    """Rows of one signal (a file, or its `tag` version) named `name`: whole, or cut into segments."""
    where = f"{path}: {tag}: " if tag else f"{path}: "
    if segment_seconds is None:
        spans, names = [(0, len(y))], [name]
    else:
        spans = segment_spans(len(y), segment_seconds, where)
        names = [segment_name(name, i) for i in range(len(spans))]
    values = span_features(y, spans, where, features_fn, name_segments=segment_seconds is not None)
    return rows_frame(names, [end - start for start, end in spans], values, label)


_TAGGERS: dict[str, Any] = {}
"""The taggers this process has loaded, by name (each worker loads them once)."""


def load_taggers(names: Sequence[str], weights: str | os.PathLike[str] | None = None) -> list:
    """Return the :class:`~genrekit.tagger.Tagger` of each name, loaded once per process.

    Parameters
    ----------
    names : sequence of str
        Tagger names (:data:`genrekit.tagger.TAGGERS`).
    weights : path-like, optional
        A musicnn wheel, folder or checkpoint, read when the weights are not in the cache yet.

    Raises
    ------
    ModelError
        If a name is unknown or the weights cannot be obtained.
    """
    from genrekit.tagger import Tagger

    for name in names:
        if name not in _TAGGERS:
            _TAGGERS[name] = Tagger(name, weights)
    return [_TAGGERS[name] for name in names]


def embedding_names(taggers: Sequence[str]) -> tuple[str, ...]:
    """Return the feature columns of a table of the embeddings of `taggers` (in their given order)."""
    return tuple(column for name in taggers for column in embedding_columns(name))


def _embedding_row(
    y: np.ndarray, name: str, path: str | os.PathLike[str], taggers: Sequence[str], label: str
) -> pd.DataFrame:
    """Return the one row of a decoded file: each tagger's file-level embedding, side by side."""
    from genrekit.tagger import tag_signal

    if len(y) == 0:
        raise AudioError(f"{path}: no audio samples")
    results = tag_signal(y, SAMPLE_RATE, load_taggers(taggers))
    values = np.concatenate([results[tagger].embedding for tagger in taggers]).astype(np.float64)
    return rows_frame([name], [len(y)], values[None], label, embedding_names(taggers))


def extract(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    segment_seconds: float | None = None,
    jobs: int | None = None,
    resume: bool = False,
    engine: str = "fast",
    progress: ProgressWrapper | None = None,
    on_failure: Callable[[Path, str], None] | None = None,
    genres: Sequence[str] | None = GENRES,
    augment: Sequence[str] = (),
    embeddings: Sequence[str] = (),
    weights: str | os.PathLike[str] | None = None,
) -> ExtractResult:
    """Extract the feature table of many audio files, on several processes.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Audio files and folders (see :func:`genrekit.audio.decode.audio_files`).
    out : path-like, optional
        Table to write (``.csv`` or ``.parquet``), atomically, at the end (also
        on an exception or Ctrl-C); each finished file is committed meanwhile
        to ``OUT.progress.db`` (see the module docstring). Nothing is written
        when None.
    segment_seconds : float, optional
        Segment length in seconds (see :func:`extract_file`).
    jobs : int, optional
        Worker processes, one file per task; all available cores when None. With
        1, files are extracted in this process.
    resume : bool
        Keep the rows of the files recorded in ``OUT.progress.db`` and extract
        only the others. Starts afresh if neither it nor `out` exists.
        A run that ends with every file extracted removes the progress file; resuming such a
        complete table (one row per file) matches its rows to the inputs by filename.
    engine : {"fast", "librosa"}
        Feature engine (see :func:`extract_file`).
    progress : callable, optional
        ``progress(iterable, total)`` wraps the stream of finished files, e.g.
        :func:`genrekit.cli._common.progress`.
    on_failure : callable, optional
        Called as ``on_failure(path, reason)`` as soon as a file fails.
    genres : sequence of str or None
        Folder names taken as labels (see :func:`extract_file`).
    augment : sequence of str
        Augmented versions of every file to add (see :func:`extract_file`).
    embeddings : sequence of str
        Tagger names (``"msd"``, ``"mtt"``): a table of their embeddings instead of the 57
        features (see :func:`extract_file`); the weights are loaded (obtained on first use) once,
        before any file.
    weights : path-like, optional
        A musicnn wheel, folder or checkpoint for `embeddings` (offline machines).

    Returns
    -------
    ExtractResult
        The table and the failures.

    Raises
    ------
    AudioError
        If an input path does not exist.
    TableError
        If `out` has an unknown extension or cannot be written, or `resume`
        finds a segmented output without its progress file, with other columns or
        repeated filenames, or made with other settings.
    ValueError
        If `engine` is unknown or `segment_seconds` holds no sample.
    SettingsError
        If `embeddings` come with segments, augmentation or the librosa engine.
    ModelError
        If a tagger is unknown or its weights cannot be obtained.
    """
    _feature_function(engine)
    if segment_seconds is not None:
        segment_length(segment_seconds, sr=SAMPLE_RATE)
    genres = None if genres is None else list(genres)  # as the JSON settings record holds it
    augment = list(parse_augmentations(augment))
    embeddings = sorted(set(embeddings))  # the order of the table's columns, whatever the order asked
    settings = {"segment_seconds": segment_seconds, "engine": engine, "genres": genres}
    if augment:  # (a record without the key is one of a run without augmentation)
        settings["augment"] = augment
    if embeddings:  # (nor the key of embeddings: a record of the 57 features)
        _check_embedding_settings(segment_seconds, augment, engine)
        settings["embeddings"] = embeddings
    features = embedding_names(embeddings) if embeddings else FEATURE_NAMES
    if embeddings:  # here, before any worker: weights obtained once, and a failure stops the run
        load_taggers(embeddings, weights)
    out = None if out is None else Path(out)
    if out is not None:
        table_format(out)
    files = sorted(audio_files(paths), key=_source_key)
    names = unique_names(files)
    checkpoint, done = None, {}
    if out is not None:
        one_row_each = segment_seconds is None and not augment
        completed = resume and one_row_each and out.exists() and not progress_path(out).exists()
        checkpoint = _open_checkpoint(out, settings, resume and not completed)
        done = _completed_rows(out, names, genres, features) if completed else _recorded(checkpoint, features)
    result = ExtractResult(table=_concat({}, features), out=out)
    result.resumed = [path for path in files if _source_key(path) in done]
    todo = [path for path in files if _source_key(path) not in done]
    task = functools.partial(
        _task,
        segment_seconds=segment_seconds,
        engine=engine,
        genres=genres,
        augment=tuple(augment),
        embeddings=tuple(embeddings),
    )
    tasks = map_tasks(task, [(path, names[path]) for path in todo], jobs)
    if progress is not None:
        tasks = progress(tasks, len(todo))
    try:
        for (path, _), frame in tasks:
            if isinstance(frame, Exception):
                reason = _reason(path, frame)
                result.failures.append((path, reason))
                if on_failure is not None:
                    on_failure(path, reason)
                continue
            done[_source_key(path)] = frame
            result.extracted.append(path)
            if checkpoint is not None:
                _record(checkpoint, _source_key(path), frame)
    finally:
        if checkpoint is not None:
            checkpoint.close()
            if done and (result.extracted or not out.exists()):
                _write(_concat(done, features), out)
    if out is not None and not result.failures:  # complete: the table alone is the result
        progress_path(out).unlink(missing_ok=True)
    result.table = _concat(done, features)
    return result


def _check_embedding_settings(segment_seconds: float | None, augment: Sequence[str], engine: str) -> None:
    """Refuse what an embedding table does not do: segments, augmentation, another engine."""
    if segment_seconds is not None:
        raise SettingsError("segment_seconds", "does not apply to embeddings (one row per file)")
    if augment:
        raise SettingsError("augment", "does not apply to embeddings (one row per file)")
    if engine != "fast":
        raise SettingsError("engine", f"{engine!r} computes the 57 features, not embeddings")


def _completed_rows(
    out: Path, names: dict[Path, str], genres: Sequence[str] | None, features: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Read back the rows of a completed run (its record removed), matched to the inputs by filename.

    A run that extracted every file removes its progress record, so its table is complete:
    each input whose name has exactly one row counts as done; rows of files that are not
    among the inputs are dropped, as rows a record does not claim are. A row whose label
    differs from what `genres` gives its file means other label settings: refused.
    """
    table = _read_output(out)
    if list(table.columns) != list(table_columns(features)):
        kind = "GTZAN feature" if features == FEATURE_NAMES else "embedding"
        raise TableError(f"{out}: cannot resume: not the {kind} table these settings write (columns differ)")
    if table["filename"].duplicated().any():
        raise TableError(f"{out}: cannot resume: repeated filenames; rerun without --resume")
    row_of = {name: i for i, name in enumerate(table["filename"])}
    done = {}
    for path, name in names.items():
        if name not in row_of:
            continue
        row = table.iloc[[row_of[name]]].reset_index(drop=True)
        label, wanted = row["label"].iloc[0], genre_from_path(path, genres)
        if label != wanted:
            raise TableError(
                f"{out}: cannot resume: {name} is labelled {label!r}, but these label settings (genres) "
                f"give {wanted!r}; use the same --labels or rerun without --resume"
            )
        done[_source_key(path)] = row
    return done


def _read_output(out: Path) -> pd.DataFrame:
    """Read a table written by :func:`_write` back exactly (floats round-trip, empty labels kept)."""
    try:
        if table_format(out) == "csv":
            return pd.read_csv(
                out, dtype={"filename": str, "label": str}, keep_default_na=False, **_EXACT_CSV
            )
        return pd.read_parquet(out)
    except (OSError, ValueError) as exc:
        raise TableError(f"{out}: cannot resume: cannot read it ({exc})") from exc


def _feature_function(engine: str) -> Callable[..., np.ndarray]:
    """Return the features function of `engine`, or raise ValueError naming the engines."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    from genrekit.audio import features

    return getattr(features, ENGINES[engine])


def rows_frame(
    names: Sequence[str],
    lengths: Sequence[int],
    values: np.ndarray,
    label: str,
    features: Sequence[str] = FEATURE_NAMES,
) -> pd.DataFrame:
    """Build table rows from names, lengths and an (n, len(features)) array (57 features by default)."""
    frame = pd.DataFrame(
        np.asarray(values, dtype=np.float64).reshape(-1, len(features)), columns=list(features)
    )
    frame.insert(0, "filename", pd.Series(list(names), dtype=str))
    frame.insert(1, "length", pd.Series(list(lengths), dtype=np.int64))
    frame["label"] = pd.Series([label] * len(frame), dtype=str)
    return frame.loc[:, list(table_columns(features))]


def _source_key(path: Path) -> str:
    """Return the stable identity of a source file: its absolute path."""
    return str(path.resolve())


def unique_names(files: Sequence[Path]) -> dict[Path, str]:
    """Name each file for the table: its name, or its path below the common folder when names repeat."""
    counts = Counter(path.name for path in files)
    if all(count == 1 for count in counts.values()):
        return {path: path.name for path in files}
    root = Path(os.path.commonpath([path.resolve().parent for path in files]))
    return {
        path: path.name if counts[path.name] == 1 else path.resolve().relative_to(root).as_posix()
        for path in files
    }


def _task(item: tuple[Path, str], **options) -> pd.DataFrame:
    """Extract the rows of one ``(path, filename)`` item with :func:`extract_file` `options` (on a worker)."""
    path, filename = item
    return extract_file(path, filename=filename, **options)


def _reason(path: Path, exc: Exception) -> str:
    """Say why a file failed, without its name (the caller adds it)."""
    from concurrent.futures.process import BrokenProcessPool  # (multiprocessing: only when it failed)

    if isinstance(exc, GenrekitError):
        return str(exc).removeprefix(f"{path}: ")
    if isinstance(exc, BrokenProcessPool):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _concat(done: dict[str, pd.DataFrame], features: Sequence[str]) -> pd.DataFrame:
    """Return the rows of every done source, ordered by source path."""
    if not done:
        return rows_frame([], [], np.empty((0, len(features))), "", features)
    return pd.concat([done[key] for key in sorted(done)], ignore_index=True)


def _write(table: pd.DataFrame, out: Path) -> None:
    """Write the final table atomically."""
    try:
        write_table(table, out)
    except OSError as exc:
        raise TableError(f"{out}: cannot write: {exc}") from exc


def _open_checkpoint(out: Path, settings: dict, resume: bool) -> ExtractCheckpoint:
    """Open the progress file of `out` (afresh unless `resume`), refusing one made with other settings."""
    record = progress_path(out)
    if resume and out.exists() and not record.exists():
        raise TableError(f"{out}: cannot resume: {record.name} is missing; rerun without --resume")
    checkpoint = ExtractCheckpoint(record, settings, resume)
    for key in dict.fromkeys([*settings, *checkpoint.settings]):
        value = settings.get(key)
        if checkpoint.settings.get(key) != value:
            checkpoint.close()
            raise TableError(
                f"{out}: cannot resume: it was extracted with {key}={checkpoint.settings.get(key)!r}, "
                f"not {value!r}; use the same settings or rerun without --resume"
            )
    return checkpoint


def _record(checkpoint: ExtractCheckpoint, key: str, frame: pd.DataFrame) -> None:
    """Commit the rows of one finished source file."""
    label = frame["label"].iloc[0] if len(frame) else ""
    values = frame.iloc[:, 2:-1].to_numpy()  # the feature columns, between filename, length and label
    checkpoint.add(key, frame["filename"], frame["length"], label, values)


def _recorded(checkpoint: ExtractCheckpoint, features: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Read the rows of every recorded source back, exactly as they were extracted."""
    return {
        source: rows_frame(filenames, lengths, values, label, features)
        for source, filenames, lengths, label, values in checkpoint.sources()
    }
