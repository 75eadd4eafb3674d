"""Music / not-music detector: choice and fit on development data, errors per group, held-out check.

Usage::

    python benchmarks/bench_notmusic.py [--fit] [--development-only] [--out notmusic.json]

Development data (the only data used to choose and fit anything), most of it also
transformed (see :data:`TRANSFORMS`: quieter, low-passed, band-limited, harmonic or percussive
part alone, slowed, in noise, reverberant, and all of "soft" at once), music and non-music
alike, so that no transformation tells one from the other:

* speech: espeak-ng (Debian package ``espeak-ng``), 8 voices in 6 languages, each at 3 rates and
  pitches, and a babble of 4 voices at once;
* noise: white, pink and brown, 20 s, at two levels; silence: digital zero and a -80 dBFS dither;
* environment: synthetic wind, rain and bird-like chirps at random times and pitches;
* music: the 14 GTZAN FLAC clips of the test data.

Each signal is fed to :class:`genrekit.tagger.music.MusicStream` at 22,050 Hz, as ``genrekit
predict`` decodes files (resampled to 16 kHz, MTT embeddings per 2.99-s patch). Every candidate
(ridge penalty x aggregation over patches, :data:`PENALTIES`, :data:`genrekit.tagger.music.AGGREGATES`)
is scored by leave-one-group-out validation (a group is one source with all its transformations:
a GTZAN clip, a voice with its rates, a noise colour, an environment sound) and the best one kept:
fewest errors, then lowest log loss. ``--fit`` writes the chosen candidate, refitted on all
development data, to the shipped ``src/genrekit/tagger/music.json``. Then, with the shipped
coefficients, the errors on the held-out files of ``cross_dataset/librosa_data`` (labels.csv:
LibriSpeech speech, humpback whale song, 8 music clips), which were never used for choosing.
The weights must be in the tagger cache (run ``genrekit tags`` once).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import REPO, data_root

from genrekit.audio.decode import load_audio
from genrekit.core.atomic import atomic_write_text
from genrekit.core.parallel import one_blas_thread

PENALTIES = (0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
"""Ridge penalties tried (logistic regression on standardised embeddings, one row per patch)."""

TEXTS = {
    "en": "The committee met on Tuesday to discuss the budget for next year. Several members raised "
    "concerns about the cost of the new library, while others argued that the town had waited long "
    "enough. After two hours of debate, they agreed to postpone the vote until the spring.",
    "de": "Der Ausschuss traf sich am Dienstag, um den Haushalt für das nächste Jahr zu besprechen. "
    "Mehrere Mitglieder äußerten Bedenken wegen der Kosten der neuen Bibliothek, während andere "
    "meinten, die Stadt habe lange genug gewartet.",
    "fr": "Le comité s'est réuni mardi pour discuter du budget de l'année prochaine. Plusieurs "
    "membres ont exprimé des inquiétudes sur le coût de la nouvelle bibliothèque, tandis que "
    "d'autres estimaient que la ville avait assez attendu.",
    "es": "El comité se reunió el martes para hablar del presupuesto del próximo año. Varios "
    "miembros expresaron su preocupación por el costo de la nueva biblioteca, mientras que otros "
    "dijeron que la ciudad ya había esperado bastante.",
    "it": "Il comitato si è riunito martedì per discutere il bilancio del prossimo anno. Diversi "
    "membri hanno espresso preoccupazioni sul costo della nuova biblioteca, mentre altri "
    "sostenevano che la città aveva aspettato abbastanza.",
}
VOICES = ("en+m3", "en-us+f2", "de+m1", "fr+f3", "es+m5", "it+f4", "en+croak", "en-us+klatt")
RATES_PITCHES = ((120, 20), (175, 50), (250, 80))
SR = 22050
EXCERPT_S = 10.0
"""Length of the excerpt each transformation is applied to (each starts further into its source)."""


@dataclass(frozen=True)
class Clip:
    """A development signal: its kind, the group it is left out with, the transformation applied."""

    kind: str
    group: str
    variant: str
    name: str
    signal: np.ndarray


def _butter(y: np.ndarray, band: float | tuple[float, float], btype: str) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(4, band, btype, fs=SR, output="sos"), y).astype(np.float32)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) + 1e-12


def _colored(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise of power spectrum 1/f**exponent (0 white, 1 pink, 2 brown), peak 1."""
    freq = np.arange(n // 2 + 1, dtype=np.float64)
    freq[0] = 1.0
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / freq ** (exponent / 2), n)
    return (x / np.abs(x).max()).astype(np.float32)


def _hpss(y: np.ndarray, part: int) -> np.ndarray:
    """The harmonic (0) or percussive (1) part (median-filtering HPSS, Fitzgerald 2010)."""
    import librosa

    parts = librosa.decompose.hpss(librosa.stft(y, n_fft=1024), kernel_size=15)
    return librosa.istft(parts[part], length=len(y)).astype(np.float32)


def _speed(y: np.ndarray, factor: float) -> np.ndarray:
    """Played `factor` times as fast, as a tape would (slower and lower below 1)."""
    import soxr

    return soxr.resample(y, SR, round(SR / factor), quality="HQ").astype(np.float32)


def _reverb(y: np.ndarray, rng: np.random.Generator, rt60: float = 1.5) -> np.ndarray:
    """Half dry, half convolved with exponentially decaying noise (a hall's tail)."""
    from scipy.signal import fftconvolve

    t = np.arange(round(rt60 * SR)) / SR
    wet = fftconvolve(y, rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60))[: len(y)]
    return (0.5 * y + 0.5 * wet * _rms(y) / _rms(wet)).astype(np.float32)


def _noisy(y: np.ndarray, rng: np.random.Generator, snr_db: float = 5.0) -> np.ndarray:
    noise = _colored(len(y), 1.0, rng)
    return (y + noise * _rms(y) / _rms(noise) * 10 ** (-snr_db / 20)).astype(np.float32)


def _soft(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonic part, low-passed at 2 kHz, 0.8 times as fast, 20 dB quieter."""
    return _speed(_butter(_hpss(y, 0), 2000, "lowpass"), 0.8) * np.float32(0.1)


TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "quiet": lambda y, rng: y * np.float32(10 ** (-24 / 20)),
    "lowpass": lambda y, rng: _butter(y, 1000, "lowpass"),
    "band": lambda y, rng: _butter(y, (300, 3000), "bandpass"),
    "harmonic": lambda y, rng: _hpss(y, 0),
    "percussive": lambda y, rng: _hpss(y, 1),
    "slow": lambda y, rng: _speed(y, 0.7),
    "noisy": _noisy,
    "reverb": _reverb,
    "soft": _soft,
}
"""Transformations applied alike to music and non-music excerpts (name -> function)."""


def variants(kind: str, group: str, name: str, y: np.ndarray, rng: np.random.Generator) -> Iterator[Clip]:
    """The whole signal, then each transformation of an excerpt, each starting further in."""
    yield Clip(kind, group, "original", name, y)
    n = min(len(y), round(EXCERPT_S * SR))
    for i, (variant, transform) in enumerate(TRANSFORMS.items()):
        start = i * (len(y) - n) // (len(TRANSFORMS) - 1)
        yield Clip(kind, group, variant, name, transform(y[start : start + n], rng))


def _espeak(path: Path, voice: str, rate: int, pitch: int) -> np.ndarray:
    text = TEXTS[voice.split("+")[0].split("-")[0]]
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text]
    subprocess.run(cmd, check=True, capture_output=True)
    return load_audio(path, sr=SR, min_samples=0)


def speech(folder: Path, rng: np.random.Generator) -> Iterator[Clip]:
    """Each voice at 3 rates and pitches; the middle one also transformed. Then a babble of 4 voices."""
    for voice in VOICES:
        for rate, pitch in RATES_PITCHES:
            name = f"speech_{voice}_{rate}_{pitch}"
            y = _espeak(folder / f"{name}.wav", voice, rate, pitch)
            yield from (
                variants("speech", voice, name, y, rng)
                if rate == 175
                else [Clip("speech", voice, "original", name, y)]
            )
    mix = np.zeros(round(20 * SR), np.float32)
    for i, voice in enumerate(VOICES[:4]):
        y = _espeak(folder / f"babble_{i}.wav", voice, 150 + 20 * i, 30 + 10 * i)[: len(mix)]
        start = int(rng.integers(0, SR))
        mix[start : start + len(y)] += y[: len(mix) - start]
    yield from variants("speech", "babble", "babble", mix * np.float32(0.5 / np.abs(mix).max()), rng)


def noise_and_silence(rng: np.random.Generator, seconds: float = 20.0) -> Iterator[Clip]:
    """White, pink and brown noise at peak 0.3 (transformed too) and 0.03; zero and -80 dBFS dither."""
    n = round(seconds * SR)
    for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        x = _colored(n, exponent, rng)
        yield Clip("noise", name, "original", f"{name}_0.03", x * np.float32(0.03))
        yield from variants("noise", name, f"{name}_0.3", x * np.float32(0.3), rng)
    yield Clip("silence", "zero", "original", "zero", np.zeros(n, np.float32))
    dither = (rng.standard_normal(n) * 1e-4).astype(np.float32)
    yield Clip("silence", "dither", "original", "dither", dither)


def environment(rng: np.random.Generator, seconds: float = 20.0) -> Iterator[Clip]:
    """Synthetic wind (gusting low-passed noise), rain (random drops), bird-like chirps (random glides)."""
    n = round(seconds * SR)
    gusts = np.interp(np.arange(n) / SR, np.linspace(0, seconds, 12), rng.uniform(0.2, 1.0, 12))
    wind = _butter(_colored(n, 1.0, rng), 600, "lowpass") * gusts
    rain = 0.05 * _colored(n, 1.0, rng)
    drop = np.exp(-np.arange(400) / 60)
    for start in rng.integers(0, n - len(drop), size=int(150 * seconds)):
        rain[start : start + len(drop)] += rng.standard_normal(len(drop)) * drop * rng.uniform(0.1, 1)
    rain = _butter(rain, 500, "highpass")
    chirps = 0.01 * _colored(n, 1.0, rng)
    for start in rng.integers(0, n - SR, size=int(2 * seconds)):
        t = np.arange(round(rng.uniform(0.05, 0.3) * SR)) / SR
        freq = rng.uniform(2000, 6000) + rng.uniform(-3000, 3000) * t / t[-1]
        chirps[start : start + len(t)] += np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.sin(np.pi * t / t[-1])
    for name, x in (("wind", wind), ("rain", rain), ("chirps", chirps)):
        yield from variants("environment", name, name, (0.3 * x / np.abs(x).max()).astype(np.float32), rng)


def gtzan_music(rng: np.random.Generator) -> Iterator[Clip]:
    for path in sorted((data_root() / "gtzan" / "audio").rglob("*.flac")):
        yield from variants("music", path.stem, path.stem, load_audio(path, sr=SR), rng)


def development(folder: Path) -> Iterator[Clip]:
    """Every development signal (espeak-ng writes its speech into `folder`)."""
    rng = np.random.default_rng(0)
    yield from speech(folder, rng)
    yield from noise_and_silence(rng)
    yield from environment(rng)
    yield from gtzan_music(rng)


def held_out() -> list[tuple[str, Path]]:
    folder = data_root() / "cross_dataset" / "librosa_data"
    with open(folder / "labels.csv", newline="") as handle:
        return [(row["kind"], folder / row["file"]) for row in csv.DictReader(handle)]


def analyse(detector, y: np.ndarray) -> tuple[np.ndarray, float]:
    """MTT patch embeddings and RMS level (dBFS) of a 22,050-Hz signal, as ``genrekit predict`` runs it."""
    stream = detector.stream(SR)
    stream.push(y)
    decision = stream.finish()
    return stream.embeddings, decision.level_dbfs


def fit(embeddings: list[np.ndarray], labels: list[int], penalty: float) -> tuple[np.ndarray, float]:
    """Ridge logistic regression (Newton) on standardised patch embeddings; coefficients on raw embeddings."""
    X = np.concatenate(embeddings).astype(np.float64)
    y = np.concatenate(
        [np.full(len(e), label, dtype=np.float64) for e, label in zip(embeddings, labels, strict=True)]
    )
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    A = np.c_[(X - mean) / scale, np.ones(len(X))]
    ridge = penalty * np.diag(np.r_[np.ones(X.shape[1]), 0.0])
    w = np.zeros(A.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-A @ w))
        step = np.linalg.solve((A * (p * (1 - p))[:, None]).T @ A + ridge, A.T @ (p - y) + ridge @ w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    coef = w[:-1] / scale
    return coef, float(w[-1] - coef @ mean)


@dataclass
class Analysed:
    """A development or held-out signal once through the tagger."""

    kind: str
    group: str
    variant: str
    name: str
    embeddings: np.ndarray
    level: float

    @property
    def music(self) -> int:
        return int(self.kind == "music")


def scores(
    rows: list[Analysed], coef: np.ndarray, intercept: float, aggregate: str, silence: float
) -> list[float]:
    """Music probability of each row, as :func:`genrekit.tagger.music.decide` computes it."""
    from genrekit.tagger.music import AGGREGATES

    return [
        0.0
        if r.level < silence or len(r.embeddings) == 0
        else AGGREGATES[aggregate](r.embeddings.astype(np.float64) @ coef + intercept)
        for r in rows
    ]


def leave_one_group_out(dev: list[Analysed], penalty: float, silence: float) -> dict[str, list[float]]:
    """Per aggregation: each development row's probability from a fit without its group."""
    from genrekit.tagger.music import AGGREGATES

    out: dict[str, list[float]] = {name: [0.0] * len(dev) for name in AGGREGATES}
    for group in sorted({(r.kind, r.group) for r in dev}):
        inside = [r for r in dev if (r.kind, r.group) != group and r.level >= silence]
        coef, intercept = fit([r.embeddings for r in inside], [r.music for r in inside], penalty)
        left_out = [i for i, r in enumerate(dev) if (r.kind, r.group) == group]
        for name in AGGREGATES:
            for i, p in zip(
                left_out, scores([dev[i] for i in left_out], coef, intercept, name, silence), strict=True
            ):
                out[name][i] = p
    return out


def errors(rows: list[Analysed], probs: list[float], threshold: float) -> dict:
    """Per kind: files, errors (music called not music, or the reverse) and the misjudged files."""
    out: dict = {}
    for row, p in zip(rows, probs, strict=True):
        group = out.setdefault(row.kind, {"files": 0, "errors": 0, "misjudged": []})
        group["files"] += 1
        if (p >= threshold) != bool(row.music):
            group["errors"] += 1
            group["misjudged"].append(f"{row.name} {row.variant} ({p:.3f})")
    return out


def describe(rows: list[Analysed]) -> str:
    """Files per kind, and how many of them are transformed, e.g. ``"music 140 (126 transformed)"``."""
    kinds = sorted({r.kind for r in rows})
    counts = [(k, [r.variant for r in rows if r.kind == k]) for k in kinds]
    return ", ".join(f"{k} {len(v)} ({sum(x != 'original' for x in v)} transformed)" for k, v in counts)


def log_loss(rows: list[Analysed], probs: list[float]) -> float:
    p = np.clip(np.asarray(probs), 1e-6, 1 - 1e-6)
    y = np.array([r.music for r in rows])
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose(dev: list[Analysed], threshold: float, silence: float) -> tuple[list[dict], dict]:
    """Every candidate's validation figures, and the chosen one (fewest errors, then lowest log loss)."""
    candidates = []
    for penalty in PENALTIES:
        for aggregate, probs in leave_one_group_out(dev, penalty, silence).items():
            per_kind = errors(dev, probs, threshold)
            music = [p for r, p in zip(dev, probs, strict=True) if r.music]
            other = [p for r, p in zip(dev, probs, strict=True) if not r.music and r.level >= silence]
            candidates.append(
                {
                    "penalty": penalty,
                    "aggregate": aggregate,
                    "errors": sum(k["errors"] for k in per_kind.values()),
                    "log_loss": round(log_loss(dev, probs), 4),
                    "lowest_music": round(min(music), 3),
                    "highest_not_music": round(max(other), 3),
                    "per_kind": per_kind,
                }
            )
    return candidates, min(candidates, key=lambda c: (c["errors"], c["log_loss"]))


def main() -> None:
    with one_blas_thread():  # as ``genrekit predict --jobs 1`` runs the tagger; also far faster fits here
        run()


def run() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fit", action="store_true", help="write the chosen candidate's coefficients first")
    parser.add_argument("--out", type=Path, default=Path("notmusic.json"), help="results JSON")
    parser.add_argument(
        "--development-only",
        action="store_true",
        help="choose (and fit) without looking at the held-out files",
    )
    args = parser.parse_args()
    shipped = REPO / "src" / "genrekit" / "tagger" / "music.json"
    from genrekit.tagger.music import MusicDetector

    detector = MusicDetector()
    with tempfile.TemporaryDirectory() as tmp:
        dev = [
            Analysed(c.kind, c.group, c.variant, c.name, *analyse(detector, c.signal))
            for c in development(Path(tmp))
        ]
    config = json.loads(shipped.read_text())
    threshold, silence = config["threshold"], config["silence_dbfs"]
    candidates, chosen = choose(dev, threshold, silence)
    if args.fit:
        inside = [r for r in dev if r.level >= silence]
        coef, intercept = fit([r.embeddings for r in inside], [r.music for r in inside], chosen["penalty"])
        config.update(
            coef=[float(c) for c in coef],
            intercept=intercept,
            penalty=chosen["penalty"],
            aggregate=chosen["aggregate"],
            fitted_on=f"development data of benchmarks/bench_notmusic.py: {describe(dev)}",
        )
        atomic_write_text(shipped, json.dumps(config, indent=1) + "\n")
    coef, intercept = np.asarray(config["coef"]), config["intercept"]

    test = [
        Analysed(kind, path.stem, "original", path.name, *analyse(detector, load_audio(path, sr=SR)))
        for kind, path in ([] if args.development_only else held_out())
    ]
    test_probs = scores(test, coef, intercept, config["aggregate"], silence)
    result = {
        "threshold": threshold,
        "silence_dbfs": silence,
        "development_files": len(dev),
        "development_patches": sum(len(r.embeddings) for r in dev),
        "candidates": [{k: v for k, v in c.items() if k != "per_kind"} for c in candidates],
        "chosen": {"penalty": chosen["penalty"], "aggregate": chosen["aggregate"]},
        "shipped": {"penalty": config["penalty"], "aggregate": config["aggregate"]},
        "development_leave_one_group_out": chosen["per_kind"],
        "held_out": errors(test, test_probs, threshold),
        "held_out_files": [
            {"kind": r.kind, "file": r.name, "music": round(p, 4)}
            for r, p in zip(test, test_probs, strict=True)
        ],
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for c in result["candidates"]:
        print(
            f"  penalty {c['penalty']:6g} {c['aggregate']:10s} errors {c['errors']:3d} log loss "
            f"{c['log_loss']:.4f} lowest music {c['lowest_music']:.3f} "
            f"highest other {c['highest_not_music']:.3f}"
        )
    print("chosen", result["chosen"], "shipped", result["shipped"])
    for name in ("development_leave_one_group_out", "held_out"):
        print(name)
        for group, counts in result[name].items():
            print(f"  {group:12s} {counts['errors']}/{counts['files']} errors {counts['misjudged']}")
    for row in result["held_out_files"]:
        print(f"  {row['kind']:7s} {row['music']:.3f} {row['file']}")


if __name__ == "__main__":
    main()
