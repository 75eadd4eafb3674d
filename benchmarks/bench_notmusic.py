"""Music / not-music detector: fit on development data, error counts per group, held-out check.

Usage::

    python benchmarks/bench_notmusic.py [--fit] [--out notmusic.json]

Development data (the only data used to choose and fit anything):

* speech: espeak-ng (Debian package ``espeak-ng``), 8 voices in 6 languages, each at 3 rates and
  pitches (24 files, 7-22 s);
* noise: white, pink and brown, 20 s, at two levels (6 files); silence: digital zero and a
  -80 dBFS dither (2 files);
* music: the 14 GTZAN FLAC clips of the test data.

Each file is decoded at 22,050 Hz as ``genrekit predict`` decodes it and fed to
:class:`genrekit.tagger.music.MusicStream` (resampled to 16 kHz, MTT embeddings per 2.99-s patch).
Reported: leave-one-group-out errors on the development data (a speech group is one voice with
its 3 rates; every other file is its own group), with the regression refitted without the group;
then, with the shipped coefficients (``src/genrekit/tagger/music.json``), the errors on the
held-out files of ``cross_dataset/librosa_data`` (labels.csv: LibriSpeech speech, humpback whale
song, 8 music clips), which were never used for choosing. ``--fit`` refits the shipped
coefficients on all development data first (ridge penalty :data:`PENALTY`, threshold 0.5).
The weights must be in the tagger cache (run ``genrekit tags`` once).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _common import REPO, data_root

from genrekit.audio.decode import load_audio
from genrekit.core.atomic import atomic_write_text

PENALTY = 100.0
"""Ridge penalty of the logistic regression on standardised embeddings (the largest of 1, 10, 100,
all without leave-one-group-out error on the development data: the most regularised)."""

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


def speech(folder: Path) -> list[tuple[str, str, Path]]:
    """Synthesise the espeak-ng speech; return (group, voice, path)."""
    out = []
    for voice in VOICES:
        text = TEXTS[voice.split("+")[0].split("-")[0]]
        for rate, pitch in RATES_PITCHES:
            path = folder / f"speech_{voice}_{rate}_{pitch}.wav"
            cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text]
            subprocess.run(cmd, check=True, capture_output=True)
            out.append(("speech", voice, path))
    return out


def noise_and_silence(folder: Path, seconds: float = 20.0) -> list[tuple[str, str, Path]]:
    """White, pink and brown noise at two levels, digital silence and a -80 dBFS dither."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    n = round(seconds * SR)
    freq = np.arange(n // 2 + 1, dtype=np.float64)
    freq[0] = 1.0
    out = []
    for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / freq ** (exponent / 2), n)
        for level in (0.3, 0.03):
            path = folder / f"noise_{name}_{level}.wav"
            sf.write(path, (x / np.abs(x).max() * level).astype(np.float32), SR)
            out.append(("noise", path.stem, path))
    for name, signal in (("zero", np.zeros(n)), ("dither", rng.standard_normal(n) * 1e-4)):
        path = folder / f"silence_{name}.wav"
        sf.write(path, signal.astype(np.float32), SR)
        out.append(("silence", path.stem, path))
    return out


def gtzan_music() -> list[tuple[str, str, Path]]:
    return [("music", p.stem, p) for p in sorted((data_root() / "gtzan" / "audio").rglob("*.flac"))]


def held_out() -> list[tuple[str, str, Path]]:
    folder = data_root() / "cross_dataset" / "librosa_data"
    with open(folder / "labels.csv", newline="") as handle:
        return [(row["kind"], row["file"], folder / row["file"]) for row in csv.DictReader(handle)]


def analyse(detector, path: Path) -> tuple[np.ndarray, float]:
    """MTT patch embeddings and RMS level of a file decoded as ``genrekit predict`` decodes it."""
    stream = detector.stream(SR)
    stream.push(load_audio(path, sr=SR, min_samples=0))
    decision = stream.finish()
    return stream.embeddings, decision.level_dbfs


def fit(
    embeddings: list[np.ndarray], labels: list[int], penalty: float = PENALTY
) -> tuple[np.ndarray, float]:
    """Ridge logistic regression (Newton) on standardised patch embeddings; coefficients on raw embeddings."""
    X = np.concatenate(embeddings).astype(np.float64)
    y = np.concatenate(
        [np.full(len(e), label, dtype=np.float64) for e, label in zip(embeddings, labels, strict=True)]
    )
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    A = np.c_[(X - mean) / scale, np.ones(len(X))]
    ridge = penalty * np.diag(np.r_[np.ones(X.shape[1]), 0.0])
    w = np.zeros(A.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-A @ w))
        step = np.linalg.solve((A * (p * (1 - p))[:, None]).T @ A + ridge, A.T @ (p - y) + ridge @ w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    coef = w[:-1] / scale
    return coef, float(w[-1] - coef @ mean)


def probability(
    embeddings: np.ndarray, level: float, coef: np.ndarray, intercept: float, silence: float
) -> float:
    if level < silence or len(embeddings) == 0:
        return 0.0
    return float((1.0 / (1.0 + np.exp(-(embeddings @ coef + intercept)))).mean())


def errors(rows: list[dict]) -> dict:
    """Per group: files, errors (music called not music, or the reverse) and the misjudged files."""
    out: dict = {}
    for row in rows:
        group = out.setdefault(row["group"], {"files": 0, "errors": 0, "misjudged": []})
        group["files"] += 1
        if row["is_music"] != (row["group"] == "music"):
            group["errors"] += 1
            group["misjudged"].append(f"{row['file']} ({row['music']:.3f})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fit", action="store_true", help="refit the shipped coefficients first")
    parser.add_argument("--out", type=Path, default=Path("notmusic.json"), help="results JSON")
    args = parser.parse_args()
    shipped = REPO / "src" / "genrekit" / "tagger" / "music.json"
    from genrekit.tagger.music import MusicDetector

    detector = MusicDetector()
    with tempfile.TemporaryDirectory() as tmp:
        dev = speech(Path(tmp)) + noise_and_silence(Path(tmp)) + gtzan_music()
        dev_data = [(group, key, path, *analyse(detector, path)) for group, key, path in dev]
    config = json.loads(shipped.read_text())
    if args.fit:
        coef, intercept = fit([d[3] for d in dev_data], [int(d[0] == "music") for d in dev_data])
        config.update(coef=[float(c) for c in coef], intercept=intercept, penalty=PENALTY)
        atomic_write_text(shipped, json.dumps(config, indent=1) + "\n")
    threshold, silence = config["threshold"], config["silence_dbfs"]
    coef, intercept = np.asarray(config["coef"]), config["intercept"]

    cv_rows = []
    for left_out in sorted({d[1] if d[0] == "speech" else d[2].name for d in dev_data}):
        inside = [d for d in dev_data if (d[1] if d[0] == "speech" else d[2].name) != left_out]
        outside = [d for d in dev_data if d not in inside]
        c, b = fit([d[3] for d in inside], [int(d[0] == "music") for d in inside])
        for group, _, path, emb, level in outside:
            p = probability(emb, level, c, b, silence)
            cv_rows.append({"group": group, "file": path.name, "music": p, "is_music": p >= threshold})
    test_rows = []
    for group, _, path in held_out():
        emb, level = analyse(detector, path)
        p = probability(emb, level, coef, intercept, silence)
        test_rows.append({"group": group, "file": path.name, "music": p, "is_music": p >= threshold})
    result = {
        "threshold": threshold,
        "silence_dbfs": silence,
        "penalty": PENALTY,
        "development_leave_one_group_out": errors(cv_rows),
        "held_out": errors(test_rows),
        "held_out_files": [
            {k: (round(v, 4) if k == "music" else v) for k, v in r.items()} for r in test_rows
        ],
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for name in ("development_leave_one_group_out", "held_out"):
        print(name)
        for group, counts in result[name].items():
            print(f"  {group:8s} {counts['errors']}/{counts['files']} errors {counts['misjudged']}")


if __name__ == "__main__":
    main()
