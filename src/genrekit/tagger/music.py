"""Music or not: speech, noise, silence and nature sounds never get a genre.

The decision is a logistic regression on the 200-d embedding of the MTT tagger (musicnn's
penultimate layer, :class:`genrekit.tagger.Tagger` ``"mtt"``), applied to every 2.99-s patch; a
file's music probability aggregates its patches (:data:`AGGREGATES`, the one named in the
coefficients' file). Silence (an RMS level below :data:`SILENCE_DBFS`) is not music whatever the
network says. The regression's coefficients (:data:`COEFFICIENTS_PATH`), its penalty and the
aggregation were chosen and fitted by ``benchmarks/bench_notmusic.py --fit`` on development data
only: espeak-ng speech (8 voices in 6 languages, 3 rates and pitches, a babble), noise, silence,
synthetic wind, rain and chirps, and the 14 GTZAN clips of the test data as music, each also
transformed (quieter, filtered, harmonic or percussive part, slowed, in noise, reverberant). See
``docs/guide/not-music.md`` for how it was chosen and its measured errors.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.errors import AudioError, ModelError
from genrekit.tagger.model import Tagger, TagStream, default_tagger

NOT_MUSIC: str = "not music"
"""The verdict for audio that is not music (distinct from ``"uncertain"``)."""

COEFFICIENTS_PATH: Path = Path(__file__).with_name("music.json")
"""The fitted detector: ``{"tagger", "coef" (200), "intercept", "aggregate", "threshold", "silence_dbfs",
...}``."""


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda logits: float(_sigmoid(logits).mean()),
    "median": lambda logits: float(np.median(_sigmoid(logits))),
    "mean_logit": lambda logits: float(_sigmoid(logits.mean())),
    "share": lambda logits: float((logits >= 0).mean()),
}
"""How a file's patches make its music probability, from their logits: the mean or the median of
their probabilities, the probability of their mean logit, or the share of patches called music."""


@functools.cache
def _coefficients() -> dict:
    try:
        data = json.loads(COEFFICIENTS_PATH.read_text())
        data["coef"] = np.asarray(data["coef"], dtype=np.float64)
        data["aggregate"] = AGGREGATES[data["aggregate"]]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{COEFFICIENTS_PATH.name}: cannot read the music detector: {exc}") from exc
    return data


MUSIC_THRESHOLD: float = float(_coefficients()["threshold"])
"""A file whose music probability is below this is "not music"."""

SILENCE_DBFS: float = float(_coefficients()["silence_dbfs"])
"""RMS level (dB re full scale) below which a file is silence, hence not music."""


@dataclass(frozen=True)
class MusicDecision:
    """Whether a signal is music.

    Attributes
    ----------
    probability : float
        The patches' music probabilities aggregated (:data:`AGGREGATES`; 0 for silence).
    level_dbfs : float
        RMS level of the whole signal in dB re full scale.
    """

    probability: float
    level_dbfs: float

    @property
    def is_music(self) -> bool:
        """False when the signal is silence or its music probability is below :data:`MUSIC_THRESHOLD`."""
        return self.probability >= MUSIC_THRESHOLD


def patch_music_probabilities(embeddings: np.ndarray) -> np.ndarray:
    """Music probability of each patch from its MTT embedding, shape ``(patches, 200)`` -> ``(patches,)``."""
    return _sigmoid(_logits(embeddings))


def _logits(embeddings: np.ndarray) -> np.ndarray:
    coef = _coefficients()
    return np.asarray(embeddings, dtype=np.float64) @ coef["coef"] + coef["intercept"]


def decide(embeddings: np.ndarray, level_dbfs: float) -> MusicDecision:
    """Decide for a signal from its MTT patch embeddings and its RMS level."""
    if level_dbfs < SILENCE_DBFS or len(embeddings) == 0:
        return MusicDecision(0.0, level_dbfs)
    return MusicDecision(_coefficients()["aggregate"](_logits(embeddings)), level_dbfs)


class MusicDetector:
    """Decides music / not music with the MTT tagger (weights obtained as for ``genrekit tags``).

    Parameters
    ----------
    weights : path-like, optional
        As for :class:`genrekit.tagger.Tagger`.

    Examples
    --------
    >>> detector = MusicDetector()                                   # doctest: +SKIP
    >>> detector.signal(y, 22050).is_music                           # doctest: +SKIP
    False
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        name = _coefficients()["tagger"]
        self.tagger = default_tagger(name) if weights is None else Tagger(name, weights)

    def stream(self, sr: int) -> MusicStream:
        """Return a :class:`MusicStream` for blocks of samples at `sr`."""
        return MusicStream(self.tagger, sr)

    def signal(self, y: np.ndarray, sr: int) -> MusicDecision:
        """Decide for a whole mono signal at `sr`."""
        stream = self.stream(sr)
        stream.push(y)
        return stream.finish()


class MusicStream:
    """The music decision of a signal fed block by block (bounded memory).

    Parameters
    ----------
    tagger : Tagger
        The MTT tagger.
    sr : int
        The blocks' sample rate (resampled to 16 kHz with soxr as they come).

    Attributes
    ----------
    embeddings : ndarray of shape (patches, 200)
        The MTT patch embeddings, once :meth:`finish` has run.
    """

    def __init__(self, tagger: Tagger, sr: int) -> None:
        self._name = tagger.name
        self._stream = TagStream([tagger], sr)

    def push(self, block: np.ndarray) -> None:
        """Add a block of mono samples."""
        block = np.asarray(block, dtype=np.float32)
        if not np.isfinite(block).all():
            raise AudioError("signal holds NaN or infinite samples")
        self._stream.push(block)

    def finish(self) -> MusicDecision:
        """End of signal: run the last patches and return the decision.

        Raises
        ------
        AudioError
            If no samples came.
        """
        self.embeddings = self._stream.finish()[self._name].embeddings
        return decide(self.embeddings, self._stream.level_dbfs)


@functools.cache
def default_detector() -> MusicDetector:
    """Return the detector with the cached weights, built once per process (workers reuse it)."""
    return MusicDetector()


__all__ = [
    "AGGREGATES",
    "MUSIC_THRESHOLD",
    "NOT_MUSIC",
    "SILENCE_DBFS",
    "MusicDecision",
    "MusicDetector",
    "MusicStream",
    "decide",
    "default_detector",
    "patch_music_probabilities",
]
