"""Snapshot what genrekit computes, to prove that a refactor changed nothing.

``snapshot`` runs the installed ``genrekit`` command on real audio and a feature table and stores
every number it prints or writes: the shipped models' predictions (full float precision, every
window), the extracted features (whole files and 3-s segments), a catalogue scan's export, and a
short reproduction's metrics. ``compare`` says which parts of two snapshots differ; it exits 1 if
any does. Nothing is rounded: "the same" means bit-identical.

Usage::

    python scripts/behaviour_snapshot.py snapshot --data ../shared/data --cnn DIR --out before.json
    # ... refactor ...
    python scripts/behaviour_snapshot.py snapshot --data ../shared/data --cnn DIR --out after.json
    python scripts/behaviour_snapshot.py compare before.json after.json

``--cnn`` names the folder of the shipped paper's CNN (it moved during the refactor).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _genrekit(*args: str) -> str:
    """Run ``genrekit ARGS``; return its stdout (exit with its stderr on failure)."""
    done = subprocess.run([sys.executable, "-m", "genrekit", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"genrekit {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _audio(data: Path) -> list[str]:
    """Return the 14 GTZAN FLAC clips and the 10 non-GTZAN Ogg clips, in a fixed order."""
    clips = sorted((data / "gtzan" / "audio").glob("*/*.flac"))
    clips += sorted((data / "cross_dataset" / "librosa_data").glob("*.ogg"))
    return [str(path) for path in clips]


def _predictions(clips: list[str], model: list[str]) -> list[dict]:
    """Every file's full prediction record (probabilities of every window)."""
    out = _genrekit("predict", *clips, *model, "--format", "json", "--top-k", "10", "--jobs", "1", "-q")
    return json.loads(out)["files"]


def _table(path: Path) -> str:
    """Return a written CSV table as text (its floats are written at full precision)."""
    return path.read_text(encoding="utf-8")


def snapshot(data: Path, cnn: Path, out: Path) -> None:
    """Compute the snapshot and write it to `out` as JSON."""
    clips = _audio(data)
    flacs = [c for c in clips if c.endswith(".flac")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _genrekit("extract", *flacs, "-o", str(work / "whole.csv"), "--jobs", "1", "-q")
        segments = ["--segment-seconds", "3"]
        _genrekit("extract", *flacs[:3], "-o", str(work / "seg.csv"), *segments, "--jobs", "1", "-q")
        library = str(work / "lib.db")
        _genrekit("scan", str(data / "gtzan" / "audio"), "--db", library, "--jobs", "1", "-q", *segments)
        _genrekit("library", "export", "--db", library, "-o", str(work / "export.csv"))
        table = data / "gtzan" / "features_30_sec.csv"
        split = data / "gtzan" / "split_filtered"
        _genrekit("reproduce", "--data", str(table), "--split-dir", str(split), "--out", str(work / "r"),
                  "--quick", "--jobs", "2", "-q")
        metrics = json.loads((work / "r" / "metrics.json").read_text(encoding="utf-8"))
        result = {
            "predict_shipped": _predictions(clips, []),
            "predict_cnn": _predictions(clips, ["--model", str(cnn)]),
            "extract_whole": _table(work / "whole.csv"),
            "extract_segments": _table(work / "seg.csv"),
            "scan_export": _table(work / "export.csv").replace(str(data), "DATA"),
            "reproduce_quick": _without_run_details(metrics),
        }
    out.write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")


def _without_run_details(metrics: dict) -> dict:
    """Drop what differs between two runs of the same code (times, dates, versions, paths)."""
    volatile = {"environment", "wall_seconds", "fit_seconds", "seconds", "created", "date", "command"}
    if isinstance(metrics, dict):
        return {k: _without_run_details(v) for k, v in metrics.items() if k not in volatile}
    if isinstance(metrics, list):
        return [_without_run_details(v) for v in metrics]
    return metrics


def compare(before: Path, after: Path) -> int:
    """Print which parts differ; return 1 if any does, else 0."""
    a = json.loads(before.read_text(encoding="utf-8"))
    b = json.loads(after.read_text(encoding="utf-8"))
    differing = [key for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    for key in sorted(set(a) | set(b)):
        print(f"{key:20s} {'DIFFERS' if key in differing else 'identical'}")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``snapshot`` or ``compare``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    actions = parser.add_subparsers(dest="action", required=True)
    take = actions.add_parser("snapshot", help="compute a snapshot")
    take.add_argument("--data", type=Path, default=Path("../shared/data"), help="the test data folder")
    take.add_argument("--cnn", type=Path, required=True, help="the shipped CNN's model folder")
    take.add_argument("--out", type=Path, required=True, help="the JSON snapshot to write")
    check = actions.add_parser("compare", help="compare two snapshots")
    check.add_argument("before", type=Path)
    check.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.action == "snapshot":
        snapshot(args.data.resolve(), args.cnn.resolve(), args.out)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
