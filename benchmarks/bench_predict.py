"""Benchmark of `genrekit predict`: files per second on 1 process vs all cores, and cold start.

Usage::

    python benchmarks/bench_predict.py [--copies 2] [--jobs N] [--rounds 2] [--compare cnn]

The input is the 14 real 30-second GTZAN FLAC clips of the test data
(``GENREKIT_TEST_DATA`` or ``../shared/data`` beside the repository), copied
`--copies` times into a temporary folder, predicted with the shipped model.
Both throughputs are measured in the same run, alternating, best of `--rounds`.
The cold start is the wall time of a new process ``genrekit predict one.flac``
(median of 3), imports and model loading included. With ``--compare MODEL``
(a model folder, or ``cnn`` for the paper's CNN that ships beside the default
model) the same measurements run for that model too, alternating with the
shipped one, and the ratios are printed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from _common import (
    add_json_option,
    cold_start,
    compare_jobs,
    describe,
    make_inputs,
    print_throughput,
    throughput_parser,
    timed,
    write_result,
)

import genrekit
from genrekit.audio.decode import audio_files


def count_predicted(model: genrekit.GenreModel, files: list[Path], jobs: int) -> int:
    """Predict `files` on `jobs` processes; return how many were predicted."""
    results = list(model.predict_files(files, jobs=jobs))
    failed = [(path, res) for path, res in results if isinstance(res, Exception)]
    assert not failed, failed
    return len(results)


def measure(model_arg: str | None, files: list[Path], clip: Path, args) -> tuple[dict, list[float]]:
    """Throughput on 1 and `args.jobs` processes and the cold start, for one model."""
    model = genrekit.load_model(model_arg)
    model.predict_file(clip)  # warm-up: imports and caches, inherited by forked workers
    best = compare_jobs(
        lambda jobs: timed(lambda: count_predicted(model, files, jobs)), args.jobs, args.rounds
    )
    extra = [] if model_arg is None else ["--model", model_arg]
    return best, cold_start(["predict", str(clip), "--quiet", *extra])


def main() -> None:
    parser = throughput_parser(__doc__)
    parser.add_argument("--compare", metavar="MODEL", help="also measure this model (folder, or 'cnn')")
    add_json_option(parser)
    args = parser.parse_args()
    load_start = [round(v, 2) for v in os.getloadavg()]
    load_before = load_start[0]
    models = [None] if args.compare is None else [None, args.compare]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_inputs(Path(tmp), args.copies)
        files = audio_files(tmp)
        for _ in range(args.rounds if args.compare else 1):  # alternate the models on a shared machine
            for model_arg in models:
                best, cold = measure(model_arg, files, clips[0], args)
                previous = results.get(model_arg)
                if previous is None or best[1][1] < previous[0][1][1]:
                    results[model_arg] = (best, cold)
    print(f"input: {len(files)} real 30-s GTZAN FLAC clips ({len(clips)} x {args.copies} copies)")
    print(f"best of {args.rounds} alternating rounds each")
    for model_arg, (best, cold) in results.items():
        print(f"\nmodel: {model_arg or 'shipped'}")
        print_throughput(best, args.jobs, load_before)
        print(f"cold start `genrekit predict one.flac`: {describe(cold)}")
    write_result(args.json, "predict", load_start, _figures(results, len(files)))
    if args.compare:
        (new, new_cold), (old, old_cold) = results[None], results[args.compare]
        for jobs in new:
            ratio = (new[jobs][0] / new[jobs][1]) / (old[jobs][0] / old[jobs][1])
            print(f"shipped / {args.compare} files/s, jobs={jobs}: {ratio:.3f}")
        cold_ratio = statistics.median(new_cold) / statistics.median(old_cold)
        print(f"shipped / {args.compare} cold start: {cold_ratio:.3f}")


def _figures(results: dict, n_files: int) -> dict:
    """The measured figures of each model, JSON-ready."""
    return {
        "files": n_files,
        "models": {
            model_arg or "shipped": {
                "files_per_second": {str(jobs): files / wall for jobs, (files, wall, _) in best.items()},
                "cpu_seconds_per_file": {str(jobs): cpu / files for jobs, (files, _, cpu) in best.items()},
                "cold_start_seconds": {"median": statistics.median(cold), "runs": cold},
            }
            for model_arg, (best, cold) in results.items()
        },
    }


if __name__ == "__main__":
    main()
