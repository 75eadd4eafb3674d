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

import os
import tempfile
from pathlib import Path

from _common import (
    cold_start,
    compare_jobs,
    describe,
    make_inputs,
    print_throughput,
    throughput_parser,
    timed,
)

import genrekit
from genrekit.audio.decode import audio_files


def count_predicted(model: genrekit.GenreModel, files: list[Path], jobs: int) -> int:
    """Predict `files` on `jobs` processes; return how many were predicted."""
    results = list(model.predict_files(files, jobs=jobs))
    failed = [(path, res) for path, res in results if isinstance(res, Exception)]
    assert not failed, failed
    return len(results)


def main() -> None:
    args = throughput_parser(__doc__).parse_args()
    load_before = os.getloadavg()[0]
    model = genrekit.load_model()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_inputs(Path(tmp), args.copies)
        files = audio_files(tmp)
        model.predict_file(clips[0])  # warm-up: imports and caches, inherited by forked workers
        best = compare_jobs(
            lambda jobs: timed(lambda: count_predicted(model, files, jobs)), args.jobs, args.rounds
        )
        cold = cold_start(["predict", str(clips[0]), "--quiet"])
    print(
        f"input: {len(files)} real 30-s GTZAN FLAC clips ({len(clips)} x {args.copies} copies), shipped model"
    )
    print(f"best of {args.rounds} alternating rounds each")
    print_throughput(best, args.jobs, load_before)
    print(f"cold start `genrekit predict one.flac`: {describe(cold)}")


if __name__ == "__main__":
    main()
