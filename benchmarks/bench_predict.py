"""Benchmark of `genrekit predict`: files per second on 1 process vs all cores, and cold start.

Usage::

    python benchmarks/bench_predict.py [--copies 2] [--jobs N] [--rounds 2]

The input is the 14 real 30-second GTZAN FLAC clips of the test data
(``GENREKIT_TEST_DATA`` or ``../shared/data`` beside the repository), copied
`--copies` times into a temporary folder, predicted with the shipped model.
Both throughputs are measured in the same run, alternating, best of `--rounds`.
The cold start is the wall time of a new process ``genrekit predict one.flac``
(median of 3), imports and model loading included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import cold_start, cpu_seconds, describe, make_inputs

import genrekit
from genrekit.decode import audio_files


def throughput(model: genrekit.GenreModel, files: list[Path], jobs: int) -> tuple[int, float, float]:
    """Return files predicted, wall seconds and CPU seconds."""
    start, cpu = time.perf_counter(), cpu_seconds()
    results = list(model.predict_files(files, jobs=jobs))
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    failed = [(path, res) for path, res in results if isinstance(res, Exception)]
    assert not failed, failed
    return len(results), elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=2, help="copies of the 14 clips (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes, parallel run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept (default 2)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    model = genrekit.load_model()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_inputs(Path(tmp), args.copies)
        files = audio_files(tmp)
        model.predict_file(clips[0])  # warm-up: imports and caches, inherited by forked workers
        runs = {1: [], args.jobs: []}
        for _ in range(args.rounds):
            for jobs in runs:
                runs[jobs].append(throughput(model, files, jobs))
        cold = cold_start(["predict", str(clips[0]), "--quiet"])
    (n1, t1, c1), (nj, tj, cj) = (min(runs[jobs], key=lambda r: r[1]) for jobs in (1, args.jobs))
    print(f"input: {n1} real 30-s GTZAN FLAC clips ({len(clips)} x {args.copies} copies), shipped model")
    print(f"jobs=1:  {n1 / t1:.2f} files/s ({t1:.2f} s), CPU {c1 / n1:.3f} s/file")
    print(f"jobs={args.jobs}:  {nj / tj:.2f} files/s ({tj:.2f} s), CPU {cj / nj:.3f} s/file")
    print(f"speed-up jobs={args.jobs} vs jobs=1: {(nj / tj) / (n1 / t1):.2f}x (ideal {args.jobs}x)")
    load_after = os.getloadavg()[0]
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after, {os.cpu_count()} cores")
    print(f"cold start `genrekit predict one.flac`: {describe(cold)}")


if __name__ == "__main__":
    main()
