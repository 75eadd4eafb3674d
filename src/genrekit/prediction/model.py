"""Genres of audio files: decode, cut into windows, extract features, classify, average.

A clip of any length is cut into windows as long as the rows the model was trained on
(its ``window_seconds``: 30 for the GTZAN 30-second table and for models saved without
the field, 3 for a model trained on a 3-second segment table; see
:func:`genrekit.audio.window.windows`); each window is classified and the file's genre
probabilities are the mean over its windows.

A model trained on a table of tagger embeddings (``genrekit extract --embeddings``; its
``feature_names`` are ``msd_emb_000`` ...) classifies each file once: the musicnn taggers its
columns name run on the same decoded samples (:class:`genrekit.tagger.model.TagStream`, a tap of
the one analysis path), and the file-level embeddings, side by side in the model's column order,
are its one "window", spanning the file.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genrekit.audio.analysis import MIN_SECONDS
from genrekit.core.errors import GenrekitError, ModelError
from genrekit.core.parallel import map_tasks, one_blas_thread
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE, FeatureNovelty, scaled_probabilities

if TYPE_CHECKING:
    from genrekit.tagger.model import TagResult

UNCERTAIN: str = "uncertain"
"""The verdict for audio that is not confidently one of the model's genres."""

NOT_MUSIC: str = "not music"
"""The verdict for audio the music detector rejects (speech, noise, silence, nature; see
:mod:`genrekit.tagger.music`); it comes before ``"uncertain"``."""

BATCH_FILES: int = 32
"""Files whose windows go through the model together in one batch."""

TOP_TAGS: int = 5
"""Tags per tagger in a record (``predict --top-tags``, as ``genrekit tags --top``)."""


@dataclass(frozen=True)
class FileWindows:
    """The windows (30 s, or the model's window length) of one decoded file and their features.

    Attributes
    ----------
    n_samples : int
        Length of the decoded file at 22,050 Hz.
    bounds : ndarray of shape (n_windows, 2)
        Start and end sample of each window.
    features : ndarray of shape (n_windows, n_features)
        The GTZAN features of each window; for a model trained on embeddings, one row spanning
        the file: its file-level embeddings (see :func:`file_windows`).
    music : float
        Music probability of the decoded signal (:mod:`genrekit.tagger.music`); NaN when not checked.
    tags : tuple of TagResult
        The musicnn taggers' results on the same decoded signal (:class:`genrekit.tagger.model.TagStream`);
        empty when not asked.
    """

    n_samples: int
    bounds: np.ndarray
    features: np.ndarray
    music: float = float("nan")
    tags: tuple[TagResult, ...] = ()


@dataclass(frozen=True)
class FilePrediction:
    """Genre probabilities of one file, overall and per window.

    Attributes
    ----------
    path : Path
        The audio file.
    classes : tuple of str
        Genre names, in the order of the probability vectors.
    probabilities : ndarray of shape (n_classes,)
        Mean of the window probabilities.
    window_bounds : ndarray of shape (n_windows, 2)
        Start and end of each window in seconds.
    window_probabilities : ndarray of shape (n_windows, n_classes)
        Probabilities of each window.
    duration : float
        Length of the file in seconds.
    novelty : float
        Median over windows of the distance of their features from the training
        data (see :class:`genrekit.models.calibrate.FeatureNovelty`); NaN when the model
        has no novelty statistics.
    familiar : bool
        False when `novelty` lies beyond the model's novelty threshold: the audio
        is unlike the music the model was trained on, whatever its probabilities.
    window_features : ndarray of shape (n_windows, 57) or None
        The features of each window (for the collection's shift check, :mod:`genrekit.shift`).
    music : float
        Probability that the file is music (:mod:`genrekit.tagger.music`); NaN when the model
        does not check (``load_model(detect_music=False)``, the default).
    tags : tuple of TagResult
        The musicnn taggers' tags of the file (``predict_files(..., tags=("msd",))``); empty when
        not asked.
    """

    path: Path
    classes: tuple[str, ...]
    probabilities: np.ndarray
    window_bounds: np.ndarray
    window_probabilities: np.ndarray
    duration: float
    novelty: float = float("nan")
    familiar: bool = True
    window_features: np.ndarray | None = None
    music: float = float("nan")
    tags: tuple[TagResult, ...] = ()

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        """Return the `k` most probable genres as ``(genre, probability)``, most probable first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    @property
    def genre(self) -> str:
        """The most probable genre."""
        return self.top(1)[0][0]

    @property
    def confidence(self) -> float:
        """The probability of the most probable genre."""
        return float(self.probabilities.max())

    @property
    def is_music(self) -> bool:
        """False when the music detector says the file is not music (True when it was not checked)."""
        if math.isnan(self.music):
            return True
        from genrekit.tagger.music import MUSIC_THRESHOLD

        return self.music >= MUSIC_THRESHOLD

    def is_confident(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> bool:
        """Whether the top genre may be presented as the answer.

        It must reach `min_confidence`, the audio must be `familiar` and music.
        """
        return self.is_music and self.familiar and self.confidence >= min_confidence

    def verdict(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> str:
        """Return what genrekit says of the file: ``"not music"``, its genre, or ``"uncertain"``.

        Not music when the music detector says so; the genre when `is_confident`. Every command,
        the HTTP API and the catalogue show this one verdict.
        """
        if not self.is_music:
            return NOT_MUSIC
        return self.genre if self.is_confident(min_confidence) else UNCERTAIN

    def to_record(
        self, min_confidence: float = DEFAULT_MIN_CONFIDENCE, top_k: int = 2, top_tags: int = TOP_TAGS
    ) -> dict:
        """Return the prediction as a JSON-ready dict, windows included.

        The record of ``genrekit predict --format json`` (one item of its ``files``), also
        returned by ``genrekit serve``.

        Parameters
        ----------
        min_confidence : float
            Top probability below which the genre is ``"uncertain"``.
        top_k : int
            Genres listed in ``top_k``.
        top_tags : int
            Tags per tagger listed in ``deep_tags`` (when the file was tagged).

        Returns
        -------
        dict
            Plain JSON types only. A tagged file also has ``deep_tags``: each tagger's `top_tags`
            tags as ``{"tagger", "tag", "probability"}``, the entries of ``genrekit tags``.
        """
        record = {
            "file": str(self.path),
            "genre": self.verdict(min_confidence),
            "best_guess": self.genre,
            "probability": self.confidence,
            "confident": self.is_confident(min_confidence),
            "familiar": self.familiar,
            "novelty": None if math.isnan(self.novelty) else self.novelty,
            "music": None if math.isnan(self.music) else self.music,
            "duration": self.duration,
            "top_k": [{"genre": g, "probability": p} for g, p in self.top(top_k)],
            "probabilities": dict(zip(self.classes, self.probabilities.tolist(), strict=True)),
            "windows": [
                {
                    "start": float(start),
                    "end": float(end),
                    "probabilities": dict(zip(self.classes, proba.tolist(), strict=True)),
                }
                for (start, end), proba in zip(self.window_bounds, self.window_probabilities, strict=True)
            ],
        }
        if self.tags:
            from genrekit.tagger.model import tags_record

            record["deep_tags"] = tags_record(self.path, self.tags, top_tags)["tags"]
        return record


def file_windows(
    path: str | os.PathLike[str],
    window_seconds: float = 30.0,
    max_seconds: float | None = None,
    music: bool = False,
    tags: Sequence[str] = (),
    embeddings: Sequence[str] = (),
) -> FileWindows:
    """Decode `path`, cut it into windows of `window_seconds` and compute each window's features.

    The file goes through the one analysis path, :func:`genrekit.audio.analysis.analyse_file`
    (decoded block by block, memory bounded whatever the file's length).

    Parameters
    ----------
    path : path-like
        An audio file in any format :func:`genrekit.audio.decode.load_audio` reads.
    window_seconds : float
        Window length (a model's ``window_seconds``; 30 by default, the GTZAN clips'),
        ``round(window_seconds * 22050)`` samples; see :func:`genrekit.audio.window.windows`
        for the tail.
    max_seconds : float, optional
        Longest audio accepted: a longer file is refused before it is decoded (see
        :func:`genrekit.audio.decode.open_audio`).
    music : bool
        Also decide music / not music from the same decoded samples (resampled to the tagger's
        16 kHz, see :mod:`genrekit.tagger.music`): the file is decoded once, and the detector's
        tagger runs once even when `tags` names it too.
    tags : sequence of str
        Also run these musicnn taggers (``"msd"``, ``"mtt"``) on the same decoded samples
        (:class:`genrekit.tagger.model.TagStream`).
    embeddings : sequence of str
        Taggers whose file-level embeddings (the mean over their 3-s patches, as ``genrekit extract
        --embeddings`` writes them) are the features instead, concatenated in this order, as one
        window spanning the file; from the same decoding and tag stream as `tags`.

    Returns
    -------
    FileWindows
        The windows and their features.

    Raises
    ------
    TooLongError
        If the audio is longer than `max_seconds`.
    AudioError
        If the file cannot be decoded or is shorter than :data:`MIN_SECONDS`; the
        message names the file.
    """
    from genrekit.audio.analysis import analyse_file

    tags = tuple(dict.fromkeys(tags))
    wanted = tuple(dict.fromkeys((*tags, *embeddings)))
    stream = _tag_stream(wanted, music) if wanted or music else None
    analysis = analyse_file(
        path,
        window_seconds,
        min_seconds=MIN_SECONDS,
        max_seconds=max_seconds,
        tap=None if stream is None else stream.push,
    )
    results = {} if stream is None else stream.finish()
    probability = _music_probability(stream, results) if music else float("nan")
    bounds, features = analysis.windows.bounds, analysis.windows.features
    if embeddings:
        bounds = np.array([[0, analysis.n_samples]])
        features = np.concatenate([results[name].embedding for name in embeddings])[None].astype(np.float64)
    return FileWindows(analysis.n_samples, bounds, features, probability, tuple(results[n] for n in tags))


def model_taggers(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Return the musicnn taggers whose embeddings a model's columns are, in column order.

    Parameters
    ----------
    feature_names : sequence of str
        The model's ``feature_names`` (checked by :func:`genrekit.models.io.load_model_dir`).

    Returns
    -------
    tuple of str
        Empty for the 57 GTZAN features; else each embedding's tagger (``"msd"``, ``"mtt"``).

    Raises
    ------
    ModelError
        If the columns are an embedding genrekit does not compute (another space than its taggers').
    """
    if tuple(feature_names) == FEATURE_NAMES:
        return ()  # (the taggers are not even imported)
    from genrekit.tagger.model import TAGGERS

    spaces = tuple(dict.fromkeys(name.rsplit("_emb_", 1)[0] for name in feature_names))
    unknown = [space for space in spaces if space not in TAGGERS]
    if unknown:
        raise ModelError(
            f"trained on the embedding {unknown[0]!r}, which genrekit does not compute from audio "
            f"(its taggers: {', '.join(TAGGERS)})"
        )
    return spaces


def _tag_stream(names: Sequence[str], music: bool):
    """Return one tag stream at 22,050 Hz for the taggers `names`, plus the music detector's when `music`.

    One stream, so a tagger both asked for and read by the detector runs once per patch.
    """
    from genrekit.tagger.stream import tag_stream

    return tag_stream(names, music, SAMPLE_RATE)


def _music_probability(stream, results: dict) -> float:
    """Return the music probability of a finished :func:`_tag_stream` asked for the detector."""
    from genrekit.tagger.stream import music_decision

    return music_decision(stream, results).probability


class GenreModel:
    """A trained genre classifier that predicts from features, feature tables or audio files.

    Use :func:`load_model` to get one. ``predict_proba`` and ``predict`` accept
    a feature table (a :class:`pandas.DataFrame` with the model's columns: the 57 GTZAN
    features, or the embeddings of a model trained on an embedding table), an array of
    shape (n, n_columns), or audio file paths.

    Probabilities are temperature-scaled and files are checked for novelty when
    the model's metadata holds a ``calibration`` section (see :mod:`genrekit.training.recipe`).

    Parameters
    ----------
    classifier : CNNClassifier
        The fitted classifier.
    metadata : dict
        The metadata saved with the model.

    Attributes
    ----------
    classes_ : ndarray of str
        Genre names, in the order of the probability columns.
    temperature : float
        Divisor of the logits (1 without calibration).
    novelty : FeatureNovelty or None
        Distance from the training data, when the model has it.
    window_seconds : float
        Length of the rows it was trained on (metadata ``window_seconds``; 30 when absent):
        files are cut into windows of this length.
    detect_music : bool
        Whether files also go through the music detector (:mod:`genrekit.tagger.music`): a file
        it rejects gets the verdict ``"not music"``.
    feature_names : tuple of str
        The columns it was trained on, in input order: the 57 GTZAN features, or embeddings.
    taggers : tuple of str
        The musicnn taggers whose file-level embeddings are its columns (``"msd"``, ``"mtt"``), in
        column order; empty for a model of the 57 features. Such a model classifies a file once,
        as one window spanning it (see :func:`file_windows`).
    """

    def __init__(self, classifier, metadata: dict, detect_music: bool = False) -> None:
        self.classifier = classifier
        self.metadata = metadata
        self.detect_music = detect_music
        self.window_seconds = window_seconds(metadata)
        self.feature_names = tuple(metadata.get("feature_names", FEATURE_NAMES))
        self.taggers = model_taggers(self.feature_names)
        calibration = metadata.get("calibration", {})
        self.temperature = float(calibration.get("temperature", 1.0))
        novelty = calibration.get("novelty")
        self.novelty = None if novelty is None else FeatureNovelty.from_dict(novelty)

    def prepare_taggers(self) -> None:
        """Build the taggers whose embeddings the model reads, so that missing weights fail now.

        Nothing to do for a model of the 57 features. The weights come from the cache, or are
        downloaded with pip once, as for ``genrekit tags``; worker processes then read the cache.

        Raises
        ------
        ModelError
            If the weights cannot be obtained; the message says how to give them.
        """
        if not self.taggers:
            return
        from genrekit.tagger.model import default_tagger

        try:
            for name in self.taggers:
                default_tagger(name)
        except ModelError as exc:
            raise ModelError(
                f"the model reads the embeddings of tagger(s) {', '.join(self.taggers)}: {exc}; run "
                f"`genrekit tags FILE --tagger {','.join(self.taggers)} --weights WHEEL` once (it fills "
                "the cache the model reads)"
            ) from exc

    @property
    def classes_(self) -> np.ndarray:
        """Genre names, in the order of the probability columns."""
        return np.asarray(self.classifier.classes_)

    def predict_proba(self, X) -> np.ndarray:
        """Return genre probabilities, one row per table row, array row or file.

        Parameters
        ----------
        X : DataFrame, ndarray of shape (n, 57), path or sequence of paths
            Features, or audio files (each one averaged over its windows).

        Returns
        -------
        ndarray of shape (n, n_classes), or DataFrame when `X` is a DataFrame
            Probabilities; columns follow ``classes_``. For a DataFrame input, a DataFrame
            whose columns are named by genre (``classes_``) and whose index is `X`'s.

        Raises
        ------
        AudioError
            If a file cannot be decoded (use :meth:`predict_files` to skip bad files).
        """
        if isinstance(X, (str, os.PathLike)):
            X = [X]
        if _is_dataframe(X):
            import pandas as pd  # already loaded: X is a DataFrame

            proba = self._feature_proba(_feature_matrix(X, self.feature_names))
            return pd.DataFrame(proba, index=X.index, columns=pd.Index(self.classes_, name="genre"))
        if not _is_path_list(X):
            return self._feature_proba(_feature_matrix(X, self.feature_names))
        return np.stack([self.predict_file(path).probabilities for path in X])

    def _feature_proba(self, X) -> np.ndarray:
        """Return calibrated probabilities of feature rows."""
        return scaled_probabilities(self.classifier.decision_function(X), self.temperature)

    def predict(self, X) -> np.ndarray:
        """Return the most probable genre for each row or file of `X` (see :meth:`predict_proba`)."""
        return self.classes_[np.argmax(np.asarray(self.predict_proba(X)), axis=1)]

    def verdict(self, X, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> np.ndarray:
        """Return what ``genrekit predict`` says of each row or file: a genre, or ``"uncertain"``.

        A row or file is ``"uncertain"`` when its top probability is below `min_confidence`
        or its features lie farther from the training data than the model's novelty
        threshold (see :meth:`FilePrediction.is_confident`); otherwise it gets its most
        probable genre.

        Parameters
        ----------
        X : DataFrame, ndarray of shape (n, 57), path or sequence of paths
            As for :meth:`predict_proba`. A file's novelty is the median over its windows.
        min_confidence : float
            The CLI's ``--min-confidence`` (default 0.5).

        Returns
        -------
        ndarray of str, shape (n,)
            Genre names, ``"uncertain"``, or ``"not music"`` for files the music detector rejects
            (when the model has ``detect_music``).

        Raises
        ------
        AudioError
            If a file cannot be decoded (use :meth:`predict_files` to skip bad files).

        Examples
        --------
        >>> model = genrekit.load_model()  # doctest: +SKIP
        >>> model.verdict(["song.mp3", "speech.wav"])  # doctest: +SKIP
        array(['rock', 'uncertain'], dtype='<U9')
        """
        if isinstance(X, (str, os.PathLike)):
            X = [X]
        if _is_path_list(X) and not _is_dataframe(X):
            results = [self.predict_file(path) for path in X]
            proba = np.stack([result.probabilities for result in results])
            familiar = np.array([result.familiar for result in results], dtype=bool)
            not_music = np.array([not result.is_music for result in results], dtype=bool)
        else:
            features = _feature_matrix(X, self.feature_names)
            proba = self._feature_proba(features)
            familiar = np.ones(len(features), dtype=bool)
            not_music = np.zeros(len(features), dtype=bool)
            if self.novelty is not None:
                familiar = self.novelty.distance(features) <= self.novelty.threshold
        confident = familiar & (proba.max(axis=1) >= min_confidence)
        genres = self.classes_[np.argmax(proba, axis=1)].astype(object)
        genres[~confident] = UNCERTAIN
        genres[not_music] = NOT_MUSIC
        return genres.astype(str)

    def predict_file(
        self, path: str | os.PathLike[str], max_seconds: float | None = None, tags: Sequence[str] = ()
    ) -> FilePrediction:
        """Predict the genre of one audio file, with per-window detail.

        Like the command line, it computes with one BLAS thread (see
        :func:`genrekit.core.parallel.one_blas_thread`): faster on these small matrix products.

        Parameters
        ----------
        path : path-like
            The audio file.
        max_seconds : float, optional
            Longest audio accepted; a longer file is refused before it is decoded.
        tags : sequence of str
            Also tag the file with these musicnn taggers (``"msd"``, ``"mtt"``), from the same
            decoding (:attr:`FilePrediction.tags`).

        Raises
        ------
        TooLongError
            If the audio is longer than `max_seconds`.
        AudioError
            If the file cannot be decoded or is too short.
        """
        with one_blas_thread():
            windows = file_windows(
                path, self.window_seconds, max_seconds, self.detect_music, tags, self.taggers
            )
            return self._predict_windows([(Path(path), windows)])[0]

    def predict_files(
        self, paths: Iterable[str | os.PathLike[str]], jobs: int | None = None, tags: Sequence[str] = ()
    ) -> Iterator[tuple[Path, FilePrediction | GenrekitError]]:
        """Predict many files, extracting on `jobs` processes and batching the model.

        Results come in the order of `paths`, as soon as they are ready. A file
        that fails yields its error instead of a prediction; the others go on.

        Parameters
        ----------
        paths : iterable of path-like
            Audio files.
        jobs : int, optional
            Worker processes; all cores when None, in this process when 1.
        tags : sequence of str
            Also tag each file with these musicnn taggers, from the same decoding.

        Yields
        ------
        path : Path
            The file.
        result : FilePrediction or GenrekitError
            Its prediction, or why it failed.
        """
        cut = functools.partial(
            file_windows,
            window_seconds=self.window_seconds,
            music=self.detect_music,
            tags=tuple(tags),
            embeddings=self.taggers,
        )
        results = map_tasks(cut, [Path(p) for p in paths], jobs, ordered=True)
        while batch := list(islice(results, BATCH_FILES)):
            done = [(path, res) for path, res in batch if isinstance(res, FileWindows)]
            predictions = iter(self._predict_windows(done))
            for path, res in batch:
                yield path, next(predictions) if isinstance(res, FileWindows) else _as_error(path, res)

    def predict_windows(self, items: Sequence[tuple[Path, FileWindows]]) -> list[FilePrediction]:
        """Predict files from window features already computed (nothing is decoded).

        Used to re-classify a library catalogue from its stored features with a
        new model (see :mod:`genrekit.library.scan`).

        Parameters
        ----------
        items : sequence of (Path, FileWindows)
            Each file and its windows (e.g. from :func:`file_windows`, or stored).

        Returns
        -------
        list of FilePrediction
            One per item, in order; the windows of all items go through the model in one batch.

        Raises
        ------
        ModelError
            If the windows' features are not the model's columns (the 57 features stored by a
            catalogue, given to a model trained on embeddings).
        """
        for path, windows in items:
            if windows.features.shape[1:] != (len(self.feature_names),):
                raise ModelError(
                    f"{path}: {windows.features.shape[-1]} features per window, but the model was trained "
                    f"on {_columns(self.feature_names)}; classify its audio files with `genrekit predict` "
                    "(a catalogue stores the 57 GTZAN features)"
                )
        return self._predict_windows(items)

    def _predict_windows(self, items: Sequence[tuple[Path, FileWindows]]) -> list[FilePrediction]:
        """Classify the windows of several files in one batch and average per file."""
        if not items:
            return []
        features = np.concatenate([w.features for _, w in items])
        splits = np.cumsum([len(w.features) for _, w in items])[:-1]
        proba = np.split(self._feature_proba(features), splits)
        if self.novelty is None:
            distances = np.split(np.full(len(features), np.nan), splits)
        else:
            distances = np.split(self.novelty.distance(features), splits)
        classes = tuple(str(c) for c in self.classes_)
        return [
            FilePrediction(
                path=path,
                classes=classes,
                probabilities=window_proba.mean(axis=0),
                window_bounds=w.bounds / SAMPLE_RATE,
                window_probabilities=window_proba,
                duration=w.n_samples / SAMPLE_RATE,
                novelty=float(np.median(distance)),
                familiar=self.novelty is None or bool(np.median(distance) <= self.novelty.threshold),
                window_features=w.features,
                music=w.music,
                tags=w.tags,
            )
            for (path, w), window_proba, distance in zip(items, proba, distances, strict=True)
        ]


def window_seconds(metadata: dict) -> float:
    """Return the window length a saved model was trained on: its ``window_seconds``, or 30.

    Parameters
    ----------
    metadata : dict
        The model's ``model.json``.

    Returns
    -------
    float
        Seconds of audio per window (30 for models without the field).

    Raises
    ------
    ModelError
        If the field is there but not a number of seconds of at least :data:`MIN_SECONDS`.
    """
    value = metadata.get("window_seconds", 30.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"model.json: window_seconds must be a number of seconds, got {value!r}")
    if value < MIN_SECONDS:
        raise ModelError(f"model.json: window_seconds is {value}, below the {MIN_SECONDS:g} s minimum")
    return float(value)


def _as_error(path: Path, exc: Exception) -> GenrekitError:
    """Return `exc` as a GenrekitError whose message names `path`."""
    if isinstance(exc, GenrekitError):
        return exc
    return GenrekitError(f"{path}: unexpected {type(exc).__name__}: {exc}")


def _is_path_list(X) -> bool:
    """Whether `X` is a non-empty list or tuple of file paths."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], (str, os.PathLike))


def _is_dataframe(X) -> bool:
    """Whether `X` is a pandas DataFrame (without importing pandas: if it is not loaded, X is not one)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _feature_matrix(X, names: Sequence[str] = FEATURE_NAMES):
    """Return the feature columns `names` of `X` (a table, in that order, or an (n, len(names)) array)."""
    if _is_dataframe(X):
        missing = [name for name in names if name not in X.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
            raise GenrekitError(f"feature table lacks column(s): {shown}")
        X = X.loc[:, list(names)]
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise GenrekitError(f"expected features of shape (n, {len(names)}), got {X.shape}")
    return X


def _columns(names: Sequence[str]) -> str:
    """Describe a model's columns: the 57 GTZAN features, or N columns of tagger embeddings."""
    if tuple(names) == FEATURE_NAMES:
        return f"the {len(FEATURE_NAMES)} GTZAN features"
    return f"{len(names)} columns {names[0]!r} ... {names[-1]!r} (tagger embeddings)"


def predict(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    model: GenreModel | str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    tags: Sequence[str] = (),
) -> Iterator[tuple[Path, FilePrediction | GenrekitError]]:
    """Predict the genre of audio files and folders, as ``genrekit predict`` does.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Audio files and folders (folders are walked for audio files).
    model : GenreModel or path-like, optional
        A loaded model, a model folder, or a shipped model's name (see :func:`load_model`);
        the shipped model when omitted.
    jobs : int, optional
        Worker processes; all cores when None, this process when 1.
    tags : sequence of str
        Also tag each file with these musicnn taggers (``"msd"``, ``"mtt"``; ``predict --tags``),
        from the same decoding: ``result.tags``.

    Yields
    ------
    path : Path
        Each audio file, in order.
    result : FilePrediction or GenrekitError
        Its prediction (``result.verdict()`` is what genrekit says), or why it failed.

    Examples
    --------
    >>> import genrekit
    >>> for path, result in genrekit.predict(["song.mp3"]):  # doctest: +SKIP
    ...     print(path, result.verdict())
    """
    from genrekit.audio.decode import audio_files

    if not isinstance(model, GenreModel):
        model = load_model(model)
    model.prepare_taggers()
    yield from model.predict_files(audio_files(paths), jobs, tags)


def load_model(path: str | os.PathLike[str] | None = None, detect_music: bool = False) -> GenreModel:
    """Load a model saved by ``genrekit train``, or the one that ships with genrekit.

    Parameters
    ----------
    path : path-like, optional
        A model folder (``model.safetensors`` + ``model.json``), or the name of a
        shipped model: ``"shipped"`` (the default ensemble) or ``"cnn"`` (the paper's
        CNN). The shipped model when omitted.
    detect_music : bool
        Also run the music detector on files (:mod:`genrekit.tagger.music`; needs the musicnn
        weights, obtained with pip on first use as for ``genrekit tags``): speech, noise,
        silence get the verdict ``"not music"``.

    Returns
    -------
    GenreModel
        The model, ready to predict. A model trained on a table of tagger embeddings
        (``genrekit extract --embeddings``) computes them from audio with the musicnn taggers
        (:meth:`GenreModel.prepare_taggers` obtains their weights before any file).

    Raises
    ------
    ModelError
        If the folder is missing, corrupt or from an incompatible version, or its columns are
        an embedding genrekit does not compute.

    Examples
    --------
    >>> import genrekit
    >>> model = genrekit.load_model()
    >>> model.predict(["song.mp3"])  # doctest: +SKIP
    array(['rock'], dtype='<U9')
    """
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir

    folder = SHIPPED_MODELS["shipped"] if path is None else path
    classifier, metadata = load_model_dir(folder, any_features=True)
    try:
        model = GenreModel(classifier, metadata, detect_music)
    except ModelError as exc:
        raise ModelError(f"{folder}: {exc}") from None
    return model
