"""Benchmark of `genrekit extract`: files per second on 1 process vs all cores, and cold start.

Usage::

    python benchmarks/bench_extract.py [--copies 2] [--jobs N]

The input is the 14 real 30-second GTZAN FLAC clips of the test data
(``GENREKIT_TEST_DATA`` or ``../shared/data`` beside the repository), copied
`--copies` times into a temporary folder. Both throughputs are measured in the
same run, alternating, best of `--rounds`, after one warm-up file, so their
ratio is what the benchmark reports; absolute figures depend on the machine and
its load. The cold start is the wall
time of a new process ``genrekit extract one.flac -o out.csv`` (median of 3),
imports included. CPU seconds per file (this process plus its workers) show
whether the pool adds overhead; on a shared machine, the load average says how
many cores were really free.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import cold_start, cpu_seconds, describe, make_inputs

from genrekit.extract import extract


def throughput(folder: Path, jobs: int) -> tuple[int, float, float]:
    """Return files extracted, wall seconds and CPU seconds."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = extract([folder], jobs=jobs)  # one BLAS thread per file, in-process (jobs=1) too
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert not result.failures, result.failures
    return len(result.extracted), elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=2, help="copies of the 14 clips (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes, parallel run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept (default 2)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        clips = make_inputs(folder, args.copies)
        extract([clips[0]], jobs=1)  # warm-up: imports and caches, inherited by forked workers
        runs = {1: [], args.jobs: []}
        for _ in range(args.rounds):  # alternate, keep the best: the machine may be shared
            for jobs in runs:
                runs[jobs].append(throughput(folder, jobs))
        (n1, t1, c1), (nj, tj, cj) = (min(runs[jobs], key=lambda r: r[1]) for jobs in (1, args.jobs))
        cold = cold_start(["extract", str(clips[0]), "-o", str(Path(tmp) / "cold.csv"), "--quiet"])
    rate1, ratej = n1 / t1, nj / tj
    print(f"input: {n1} real 30-s GTZAN FLAC clips ({len(clips)} x {args.copies} copies), engine fast")
    print(f"best of {args.rounds} alternating rounds each")
    print(f"jobs=1:  {n1} files in {t1:.2f} s = {rate1:.2f} files/s, CPU {c1 / n1:.3f} s/file")
    print(f"jobs={args.jobs}:  {nj} files in {tj:.2f} s = {ratej:.2f} files/s, CPU {cj / nj:.3f} s/file")
    print(f"speed-up jobs={args.jobs} vs jobs=1: {ratej / rate1:.2f}x (ideal {args.jobs}x)")
    load_after = os.getloadavg()[0]
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} cores")
    print(f"cold start `genrekit extract one.flac -o out.csv`: {describe(cold)}")


if __name__ == "__main__":
    main()
