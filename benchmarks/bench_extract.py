"""Benchmark of `genrekit extract`: files per second on 1 process vs all cores, and cold start.

Usage::

    python benchmarks/bench_extract.py [--copies 2] [--jobs N] [--rounds 2]

The input is the 14 real 30-second GTZAN FLAC clips of the test data
(``GENREKIT_TEST_DATA`` or ``../shared/data`` beside the repository), copied
`--copies` times into a temporary folder. Both throughputs are measured in the
same run, alternating, best of `--rounds`, after one warm-up file, so their
ratio is what the benchmark reports; absolute figures depend on the machine and
its load. The cold start is the wall time of a new process
``genrekit extract one.flac -o out.csv`` (median of 3), imports included. CPU
seconds per file (this process plus its workers) show whether the pool adds
overhead; on a shared machine, the load average says how many cores were
really free.
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

from genrekit.extraction.extract import extract


def count_extracted(folder: Path, jobs: int) -> int:
    """Extract every file of `folder` on `jobs` processes; return how many were extracted."""
    result = extract([folder], jobs=jobs)  # one BLAS thread per file, in-process (jobs=1) too
    assert not result.failures, result.failures
    return len(result.extracted)


def main() -> None:
    args = throughput_parser(__doc__).parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        clips = make_inputs(folder, args.copies)
        extract([clips[0]], jobs=1)  # warm-up: imports and caches, inherited by forked workers
        best = compare_jobs(lambda jobs: timed(lambda: count_extracted(folder, jobs)), args.jobs, args.rounds)
        cold = cold_start(["extract", str(clips[0]), "-o", str(Path(tmp) / "cold.csv"), "--quiet"])
    print(
        f"input: {len(clips) * args.copies} real 30-s GTZAN FLAC clips ({len(clips)} x {args.copies} copies)"
    )
    print(f"engine fast, best of {args.rounds} alternating rounds each")
    print_throughput(best, args.jobs, load_before)
    print(f"cold start `genrekit extract one.flac -o out.csv`: {describe(cold)}")


if __name__ == "__main__":
    main()
