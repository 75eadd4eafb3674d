"""The tagger's Python API: :class:`Tagger` and the per-file result :class:`TagResult`."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from genrekit.audio.decode import open_audio
from genrekit.core.errors import AudioError, ModelError
from genrekit.tagger.frontend import PATCH_SECONDS, SAMPLE_RATE, LogMelStream, patches
from genrekit.tagger.labels import MSD_LABELS, MTT_LABELS
from genrekit.tagger.network import PATCH_FRAMES, MusicnnNet, Outputs
from genrekit.tagger.weights import load_weights

TAGGERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "msd": ("MSD_musicnn", MSD_LABELS),
    "mtt": ("MTT_musicnn", MTT_LABELS),
}
"""Tagger name -> (musicnn model, its tags in output order)."""

BATCH_PATCHES: int = 2
"""Patches run through the network at once: bounds the work arrays (about 25 MB), and ran
fastest of 1, 2, 5 and 10 on one core (larger im2col copies fall out of the caches)."""


@dataclass(frozen=True)
class TagResult:
    """A tagger's output for one signal.

    Attributes
    ----------
    tagger : str
        ``"msd"`` or ``"mtt"``.
    labels : tuple of str
        The tags, in the columns' order.
    taggram : ndarray of shape (patches, tags), float32
        Tag probabilities per patch (patch ``i`` starts at ``i * patch_seconds``).
    embeddings : ndarray of shape (patches, 200), float32
        The penultimate layer per patch.
    """

    tagger: str
    labels: tuple[str, ...]
    taggram: np.ndarray
    embeddings: np.ndarray
    patch_seconds: float = PATCH_SECONDS

    @property
    def probabilities(self) -> np.ndarray:
        """File-level tag probabilities: the mean of the taggram over patches (as musicnn's ``top_tags``)."""
        return self.taggram.mean(axis=0)

    @property
    def embedding(self) -> np.ndarray:
        """File-level 200-d embedding: the mean of the patch embeddings."""
        return self.embeddings.mean(axis=0)

    def top(self, n: int | None = None) -> list[tuple[str, float]]:
        """Return the `n` most probable tags (all when None), most probable first, as (tag, probability)."""
        return self._ranked(self.probabilities, n)

    def patch_tops(self, n: int | None = None) -> list[tuple[float, list[tuple[str, float]]]]:
        """Return (start in seconds, its `n` most probable tags) for every patch of the taggram."""
        return [(i * self.patch_seconds, self._ranked(row, n)) for i, row in enumerate(self.taggram)]

    def _ranked(self, probs: np.ndarray, n: int | None) -> list[tuple[str, float]]:
        order = np.argsort(-probs, kind="stable")[: len(probs) if n is None else n]
        return [(self.labels[i], float(probs[i])) for i in order]


class Tagger:
    """A pretrained musicnn tagger running in NumPy.

    Parameters
    ----------
    name : {"msd", "mtt"}
        ``msd``: Million Song Dataset tags; ``mtt``: MagnaTagATune tags.
    weights : path-like, optional
        A musicnn 0.1.0 wheel, package folder or checkpoint, read when the weights are not yet in
        the cache (see :mod:`genrekit.tagger.weights`); pip downloads them otherwise.

    Examples
    --------
    >>> tagger = Tagger("msd")                                   # doctest: +SKIP
    >>> result = tagger.tag_file("song.flac")                    # doctest: +SKIP
    >>> [tag for tag, _ in result.top(3)], result.embedding.shape  # doctest: +SKIP
    (['rock', 'alternative', 'indie'], (200,))
    """

    def __init__(self, name: str = "msd", weights: str | os.PathLike[str] | None = None) -> None:
        if name not in TAGGERS:
            raise ModelError(f"unknown tagger {name!r}; choose from {', '.join(TAGGERS)}")
        model, self.labels = TAGGERS[name]
        self.name = name
        params, self.meta = load_weights(model, weights)
        self.net = MusicnnNet(params)
        if self.net.n_tags != len(self.labels):
            raise ModelError(f"{model}: {self.net.n_tags} outputs for {len(self.labels)} tags")

    def __repr__(self) -> str:
        return f"Tagger({self.name!r})"

    def run(self, batch: np.ndarray) -> Outputs:
        """Run the network on log-mel patches of shape ``(k, 187, 96)``."""
        return self.net(batch)

    def tag_signal(self, y: np.ndarray, sr: int = SAMPLE_RATE) -> TagResult:
        """Tag a mono signal (resampled to 16 kHz as ``librosa.load`` would)."""
        return tag_signal(y, sr, [self])[self.name]

    def tag_file(self, path: str | os.PathLike[str]) -> TagResult:
        """Tag an audio file, decoded and analysed block by block (bounded memory)."""
        return tag_file(path, [self])[self.name]

    def embed(self, y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Return the file-level 200-d embedding of a signal (mean over patches)."""
        return self.tag_signal(y, sr).embedding


def tags_record(
    path: str | os.PathLike[str], results: Sequence[TagResult], top: int, taggram: bool = False
) -> dict:
    """One file's tags as a JSON-ready dict (``genrekit tags --format json``, one item of ``files``).

    Parameters
    ----------
    path : path-like
        The file.
    results : sequence of TagResult
        One per tagger.
    top : int
        Tags per tagger.
    taggram : bool
        Add each tagger's `top` tags per patch.

    Returns
    -------
    dict
        ``{"file", "tags": [{"tagger", "tag", "probability"}, ...]}`` (each tagger's `top` tags,
        most probable first), plus ``"taggram": [{"tagger", "patch", "start_s", "tags": [...]}]``
        when asked.
    """
    record: dict = {"file": os.fspath(path), "tags": []}
    for result in results:
        record["tags"] += [{"tagger": result.tagger, **entry} for entry in _entries(result.top(top))]
    if taggram:
        record["taggram"] = [
            {"tagger": result.tagger, "patch": i, "start_s": round(start, 3), "tags": _entries(tags)}
            for result in results
            for i, (start, tags) in enumerate(result.patch_tops(top))
        ]
    return record


def _entries(tags: list[tuple[str, float]]) -> list[dict]:
    return [{"tag": tag, "probability": round(p, 4)} for tag, p in tags]


def _results(frame_blocks: Iterable[np.ndarray], taggers: Sequence[Tagger]) -> dict[str, TagResult]:
    """Run every tagger on the patches of the frames; collect taggrams and embeddings."""
    probs: dict[str, list[np.ndarray]] = {t.name: [] for t in taggers}
    embeds: dict[str, list[np.ndarray]] = {t.name: [] for t in taggers}
    for batch in patches(frame_blocks, BATCH_PATCHES):
        for tagger in taggers:
            out = tagger.run(batch)
            probs[tagger.name].append(out.probabilities)
            embeds[tagger.name].append(out.penultimate)
    return {
        t.name: TagResult(t.name, t.labels, np.concatenate(probs[t.name]), np.concatenate(embeds[t.name]))
        for t in taggers
        if probs[t.name]
    }


def _frames(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    stream = LogMelStream()
    for block in blocks:
        yield stream.push(block)
    yield stream.finish()


def resample(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 signal at `sr` -> 16 kHz, as ``librosa.resample`` (soxr HQ, length ``ceil``)."""
    y = np.asarray(y, dtype=np.float32)
    if sr == SAMPLE_RATE:
        return y
    import soxr

    out = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
    n = math.ceil(len(y) * SAMPLE_RATE / sr)
    return np.pad(out, (0, max(0, n - len(out))))[:n].astype(np.float32)


def tag_signal(y: np.ndarray, sr: int, taggers: Sequence[Tagger]) -> dict[str, TagResult]:
    """Tag a mono signal with several taggers sharing one front end.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Mono samples.
    sr : int
        Their sample rate.
    taggers : sequence of Tagger
        The taggers to run.

    Returns
    -------
    dict of str to TagResult
        By tagger name.

    Raises
    ------
    AudioError
        If the signal is empty, not one-dimensional or not finite.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise AudioError(f"expected a non-empty mono signal, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise AudioError("signal holds NaN or infinite samples")
    return _results(_frames([resample(y, sr)]), taggers)


def tag_file(
    path: str | os.PathLike[str], taggers: Sequence[Tagger], max_seconds: float | None = None
) -> dict[str, TagResult]:
    """Tag an audio file with several taggers sharing one decoding and front end.

    Memory stays bounded whatever the file's length: samples are decoded, turned into log-mel
    frames and run through the networks a few patches at a time.

    Parameters
    ----------
    path : path-like
        The audio file.
    taggers : sequence of Tagger
        The taggers to run.
    max_seconds : float, optional
        Longest audio accepted: a longer file is refused before it is decoded.

    Raises
    ------
    TooLongError
        If the audio is longer than `max_seconds`.
    AudioError
        If the file cannot be decoded or holds no samples (the message names the file).
    """
    with open_audio(path, sr=SAMPLE_RATE, max_seconds=max_seconds) as (n_samples, blocks):
        if n_samples == 0:
            raise AudioError(f"{path}: no audio samples")
        return _results(_frames(blocks), taggers)


class TagStream:
    """The tags of a signal fed block by block at any sample rate (bounded memory).

    A tap of the one analysis path (:func:`genrekit.audio.analysis.analyse_file`): genre
    prediction hands it the 22,050-Hz blocks it decodes, so a file is decoded once for both. The
    blocks are resampled to 16 kHz with soxr as they come; the results equal :func:`tag_signal`'s
    on the same samples (and :func:`tag_file`'s to within the second resampling, for files not
    stored at `sr`).

    Parameters
    ----------
    taggers : sequence of Tagger
        The taggers to run (one front end for all).
    sr : int
        The blocks' sample rate.
    """

    def __init__(self, taggers: Sequence[Tagger], sr: int) -> None:
        import soxr

        self._taggers = tuple(taggers)
        self._resampler = (
            None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, "float32", "HQ")
        )
        self._mel = LogMelStream()
        self._frames: list[np.ndarray] = []
        self._held = 0
        self._count = 0
        self._energy = 0.0
        self._outputs: dict[str, list[Outputs]] = {t.name: [] for t in self._taggers}

    @property
    def level_dbfs(self) -> float:
        """RMS level of the samples pushed so far, in dB re full scale (-300 for none or silence)."""
        return 10 * math.log10(max(self._energy / max(self._count, 1), 1e-30))

    def push(self, block: np.ndarray) -> None:
        """Add a block of mono samples (copied as needed: the caller may reuse its buffer)."""
        block = np.asarray(block, dtype=np.float32)
        self._count += len(block)
        self._energy += float(np.dot(block.astype(np.float64), block))
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._add(self._mel.push(block))

    def finish(self) -> dict[str, TagResult]:
        """End of signal: run the last patches and return each tagger's result, by name.

        Raises
        ------
        AudioError
            If no samples came.
        """
        if self._count == 0:
            raise AudioError("no audio samples")
        if self._resampler is not None:
            self._add(self._mel.push(self._resampler.resample_chunk(np.empty(0, np.float32), last=True)))
        self._add(self._mel.finish(), last=True)
        return {
            t.name: TagResult(
                t.name,
                t.labels,
                np.concatenate([out.probabilities for out in self._outputs[t.name]]),
                np.concatenate([out.penultimate for out in self._outputs[t.name]]),
            )
            for t in self._taggers
        }

    def _add(self, frames: np.ndarray, last: bool = False) -> None:
        """Hold `frames`; run the complete patches once a batch is in (at the end, as :func:`patches`)."""
        self._frames.append(frames)
        self._held += len(frames)
        if not last and self._held < PATCH_FRAMES * BATCH_PATCHES:
            return
        held = np.concatenate(self._frames)
        started = any(self._outputs.values())
        complete = len(held) // PATCH_FRAMES * PATCH_FRAMES
        ready = held if last and not started else held[:complete]  # a short signal fills one patch
        for batch in patches([ready], BATCH_PATCHES):
            for tagger in self._taggers:
                self._outputs[tagger.name].append(tagger.run(batch))
        self._frames, self._held = [held[complete:]], len(held) - complete


@functools.cache
def default_tagger(name: str) -> Tagger:
    """Return the tagger `name` with the cached weights, built once per process (workers reuse it).

    Raises
    ------
    ModelError
        If `name` is unknown or the weights cannot be obtained.
    """
    return Tagger(name)
