"""The collection shift measure (``genrekit library check``) on the cases its thresholds come from.

Cases (each one a collection measured against a model's training distribution):

``split-test``
    GTZAN against itself: the reference is fitted on the rows of the fault-filtered,
    artist-conscious split's train and valid lists only (640 rows); the collection is the test
    list's 290 rows, other artists. No recording shift: what in-domain music scores.
``genre-<g>``
    One genre alone (the test list's rows of genre g) against the same reference,
    with the reference drawn in the collection's predicted genre mix (as ``library check``
    does); ``genre-metal-unweighted`` draws it in the training table's mix instead, to show
    what the weighting removes.
``clips-clean``, ``clips-<chain>``
    The 14 GTZAN clips of the test data extracted by genrekit, as they are and through each
    recording chain of :data:`genrekit.audio.augment.RECORDING_CHAINS` (gain, low-pass,
    added noise, other sample rates), against the shipped model's reference (``shift.json``).
``cross-dataset``
    The 10 non-GTZAN clips (librosa's example audio), cut into ``predict``'s 30-s windows
    grouped by file, against the shipped reference.

The model's probabilities give the genre mix; the shipped model (or ``--model cnn``).
Run: ``python benchmarks/bench_shift.py [--model cnn] [--out shift.json]`` (a few minutes on 2 cores;
the clips are decoded and extracted once per chain).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _common import data_root

from genrekit.audio.augment import RECORDING_CHAINS, recording_chain
from genrekit.audio.decode import load_audio
from genrekit.audio.features import clip_features
from genrekit.core.schema import SAMPLE_RATE
from genrekit.datasets.table import feature_matrix, read_table
from genrekit.prediction.model import load_model
from genrekit.selection.protocols import read_split_dir
from genrekit.shift import ShiftReference, folder_rows, model_reference, shift_of_rows


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _record(name: str, report, seconds: float, note: str) -> dict:
    print(f"{name:<24} {report.summary()}  ({seconds:.1f} s)", flush=True)
    return {"case": name, "note": note, "seconds": round(seconds, 2), **report.to_dict()}


def split_cases(model, table: Path, split_dir: Path) -> list[dict]:
    """GTZAN held-out artists, and single-genre collections, against a train-split reference."""
    frame = read_table(table, labels="gtzan")
    ids = frame["filename"].str.replace(r"\.wav$", "", regex=True)
    split = read_split_dir(split_dir)
    train = frame[ids.isin(split["train"] + split["valid"])]
    labels = [str(c) for c in model.classes_]
    reference = ShiftReference.fit(feature_matrix(train), train["label"].to_numpy(), labels)
    held = frame[ids.isin(split["test"])]
    cases = [("split-test", held, {})]
    cases += [(f"genre-{g}", held[held["label"] == g], {}) for g in labels]
    cases.append(("genre-metal-unweighted", held[held["label"] == "metal"], {"weight_by_genre": False}))
    out = []
    for name, rows, options in cases:
        start = time.perf_counter()
        report = shift_of_rows(model, reference, feature_matrix(rows), rows["filename"].to_numpy(), **options)
        note = f"{len(rows)} test-list rows vs a reference fitted on the {len(train)} train+valid rows"
        out.append(_record(name, report, time.perf_counter() - start, note))
    return out


def clip_cases(model, reference, clips: list[Path]) -> list[dict]:
    """The 14 clips, clean and through each recording chain, against the shipped reference."""
    signals = {clip: load_audio(clip, sr=SAMPLE_RATE) for clip in clips}
    out = []
    for chain in ("clean", *RECORDING_CHAINS):
        start = time.perf_counter()
        rows = []
        for i, y in enumerate(signals.values()):
            signal = y if chain == "clean" else recording_chain(y, SAMPLE_RATE, chain, seed=(0, i))
            rows.append(clip_features(signal, sr=SAMPLE_RATE))
        report = shift_of_rows(model, reference, np.stack(rows), [c.stem for c in clips])
        note = f"{len(clips)} GTZAN clips ({chain}), genrekit extraction, shipped reference"
        out.append(_record(f"clips-{chain}", report, time.perf_counter() - start, note))
    return out


def cross_case(model, reference, clips: list[Path]) -> dict:
    """The non-GTZAN clips, in 30-s windows grouped by file."""
    start = time.perf_counter()
    features, groups, failures = folder_rows(clips, model.window_seconds, jobs=1)
    report = shift_of_rows(model, reference, features, groups)
    note = f"{len(clips) - len(failures)} non-GTZAN clips, {len(features)} windows, shipped reference"
    return _record("cross-dataset", report, time.perf_counter() - start, note)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="model folder or shipped name (default: the shipped model)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    root = data_root()
    model = load_model(args.model)
    reference = model_reference(model, args.model)
    load_before = _uptime()
    results = split_cases(model, root / "gtzan" / "features_30_sec.csv", root / "gtzan" / "split_filtered")
    results += clip_cases(model, reference, sorted((root / "gtzan" / "audio").rglob("*.flac")))
    results.append(cross_case(model, reference, sorted((root / "cross_dataset").rglob("*.ogg"))))
    document = {
        "command": "python benchmarks/bench_shift.py" + (f" --model {args.model}" if args.model else ""),
        "model": args.model or "shipped",
        "load_before": load_before,
        "load_after": _uptime(),
        "results": results,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
