"""What ``extract --augment pitch,stretch,noise`` changes, on the only audio the test data holds.

The audio: the 14 GTZAN clips of the test data (blues and classical 3 each, the other eight
genres 1 each), cut into 3-second segments (``extract --segment-seconds 3``: 10 per clip), with
and without the rows of their five augmented versions (pitch -2/+2 semitones, stretch 0.9/1.1,
noise at 20 dB SNR: 60 rows per clip). Augmented rows only ever train; every score is on
original (unaltered) audio.

``loco`` (leave one clip out)
    For each blues and classical clip (the only genres with more than one clip, so the only
    clips a model trained without them can get right): train on every row of the 13 other
    clips, augmented rows included or not, and score the held-out clip's 10 original segments.
    Pooled: 60 segments of 6 files; per file: the argmax of the mean of its 10 segments'
    probabilities.
``cross``
    Train on all 14 clips; predict the 5 non-GTZAN clips whose ``labels.csv`` names a GTZAN
    genre (2 classical, jazz, country, hip-hop; informal labels), each cut into 3-s windows as
    ``genrekit predict`` cuts files for a 3-s model, per window and per file.

Models: registry recipes with their default settings (``--no-tune``; too few clips for an
inner search), seeds 0..``--seeds``-1 where the recipe has one. So few clips can show
whether augmentation breaks something or helps on clips very like the training ones; they
cannot estimate the effect on GTZAN (each of 8 genres is learnt from one clip).

Run: ``python benchmarks/bench_augment.py [--models logreg,extratrees] [--seeds 3] [--out aug.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_root

from genrekit.datasets.table import feature_matrix, source_groups
from genrekit.extraction.extract import extract
from genrekit.models.registry import make_model, parse_names
from genrekit.prediction.model import file_windows
from genrekit.selection.metrics import file_accuracy, summarize

AUGMENTED = re.compile(r"\.(?:pitch[+-]\d+|stretch[\d.]+|noise\d+db)\.\d+\.\w+$")


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _fit(name: str, seed: int, table: pd.DataFrame):
    model = make_model(name, seed, tune=False)
    return model.fit(feature_matrix(table), table["label"].to_numpy(dtype=str))


def loco(table: pd.DataFrame, name: str, seed: int, augmented: bool) -> dict:
    """Leave each blues/classical clip out; score its original segments."""
    sources = source_groups(table["filename"])
    original = ~table["filename"].str.contains(AUGMENTED)
    held_out = [s for s in np.unique(sources) if s.split(".")[0] in ("blues", "classical")]
    y_test, proba, test_sources = [], [], []
    for clip in held_out:
        train = table[(sources != clip) & (augmented | original)]
        test = table[(sources == clip) & original]
        model = _fit(name, seed, train)  # the 13 other clips hold all ten genres: same classes each time
        classes = np.asarray(model.classes_)
        proba.append(model.predict_proba(feature_matrix(test)))
        y_test += test["label"].tolist()
        test_sources += [clip] * len(test)
    proba = np.concatenate(proba)
    y_test = np.asarray(y_test)
    per_file, n_files = file_accuracy(y_test, proba, classes, test_sources)
    return {
        "segments": len(y_test),
        "files": n_files,
        "segment_accuracy": float(np.mean(classes[proba.argmax(axis=1)] == y_test)),
        "file_accuracy": per_file,
    }


def cross(table: pd.DataFrame, windows: dict, labels: dict, name: str, seed: int, augmented: bool) -> dict:
    """Train on all 14 clips; predict the labelled non-GTZAN clips by 3-s windows."""
    original = ~table["filename"].str.contains(AUGMENTED)
    model = _fit(name, seed, table[augmented | original])
    classes = np.asarray(model.classes_)
    right_windows, files = [], {}
    for clip, features in windows.items():
        proba = model.predict_proba(features)
        right_windows += list(classes[proba.argmax(axis=1)] == labels[clip])
        files[clip] = str(classes[proba.mean(axis=0).argmax()])
    return {
        "windows": len(right_windows),
        "window_accuracy": float(np.mean(right_windows)),
        "file_accuracy": float(np.mean([files[c] == labels[c] for c in files])),
        "files": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="logreg,extratrees")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = data_root()
    print(f"start: {_uptime()}", flush=True)
    start = time.perf_counter()
    table = extract(
        [root / "gtzan" / "audio"], segment_seconds=3, augment=("pitch", "stretch", "noise"), jobs=args.jobs
    ).table
    extract_seconds = time.perf_counter() - start
    cross_dir = root / "cross_dataset" / "librosa_data"
    listed = pd.read_csv(cross_dir / "labels.csv", keep_default_na=False)
    listed = listed[listed["nearest_gtzan_genre"] != ""]
    labels = dict(zip(listed["file"], listed["nearest_gtzan_genre"], strict=True))
    windows = {clip: file_windows(cross_dir / clip, 3.0).features for clip in labels}
    print(f"extracted {len(table)} rows in {extract_seconds:.0f} s: {_uptime()}", flush=True)
    results = []
    for name in parse_names(args.models):
        seeds = range(args.seeds) if name in ("extratrees", "gbm", "mlp-tuned") else range(1)
        for augmented in (False, True):
            runs_loco = [loco(table, name, seed, augmented) for seed in seeds]
            runs_cross = [cross(table, windows, labels, name, seed, augmented) for seed in seeds]
            row = {"model": name, "augmented": augmented, "seeds": len(seeds)}
            for key in ("segment_accuracy", "file_accuracy"):
                row[f"loco_{key}"] = summarize([run[key] for run in runs_loco])
            for key in ("window_accuracy", "file_accuracy"):
                row[f"cross_{key}"] = summarize([run[key] for run in runs_cross])
            row["cross_files_seed0"] = runs_cross[0]["files"]
            results.append(row)
            print(
                f"{name:<11} augmented={augmented!s:<5} "
                f"loco: segments {row['loco_segment_accuracy']['mean']:.3f}"
                f" files {row['loco_file_accuracy']['mean']:.3f} | cross: windows "
                f"{row['cross_window_accuracy']['mean']:.3f} files {row['cross_file_accuracy']['mean']:.3f}"
                f"  {runs_cross[0]['files']}",
                flush=True,
            )
    summary = {
        "rows": len(table),
        "extract_seconds": round(extract_seconds, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "load_at_end": _uptime(),
        "results": results,
    }
    print(f"done in {summary['wall_seconds']} s: {_uptime()}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
