"""Helpers shared by the benchmark scripts (inputs from the test data, CPU time, cold starts)."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN = "import sys; from genrekit.cli import main; sys.exit(main())"


def data_root() -> Path:
    return Path(os.environ.get("GENREKIT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def make_inputs(folder: Path, copies: int) -> list[Path]:
    """Copy the 14 real 30-s GTZAN FLAC clips `copies` times into `folder`; return the originals."""
    clips = sorted((data_root() / "gtzan" / "audio").rglob("*.flac"))
    if not clips:
        sys.exit(f"no FLAC clips under {data_root()}; set GENREKIT_TEST_DATA")
    for i in range(copies):
        for clip in clips:
            target = folder / f"copy{i}" / clip.parent.name / clip.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, target)
    return clips


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cold_start(args: list[str], repeats: int = 3) -> list[float]:
    """Wall seconds of `repeats` new processes running ``genrekit ARGS`` (imports included)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", MAIN, *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def describe(times: list[float]) -> str:
    """``median X s (runs: a, b, c)``."""
    return f"median {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})"


def throughput_parser(doc: str) -> argparse.ArgumentParser:
    """Arguments of the throughput benchmarks: --copies, --jobs, --rounds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=2, help="copies of the 14 clips (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes, parallel run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept (default 2)")
    return parser


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--json OUT``: the figures as JSON, with date, machine, load and command (docs/results/)."""
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to this JSON file")


def write_result(path: Path | None, benchmark: str, load_start: list[float], figures: dict) -> None:
    """Write `figures` of `benchmark` to `path` (if given) with the run's date, machine, load and command."""
    if path is None:
        return
    import datetime
    import json
    import platform
    import shlex

    result = {
        "benchmark": benchmark,
        "command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
        "figures": figures,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def timed(work: Callable[[], int]) -> tuple[int, float, float]:
    """Run `work` (which returns how many files it did); return files, wall and CPU seconds."""
    start, cpu = time.perf_counter(), cpu_seconds()
    files = work()
    return files, time.perf_counter() - start, cpu_seconds() - cpu


def compare_jobs(
    run: Callable[[int], tuple[int, float, float]], jobs: int, rounds: int
) -> dict[int, tuple[int, float, float]]:
    """Time ``run(1)`` and ``run(jobs)`` alternately `rounds` times; keep each one's fastest round."""
    runs: dict[int, list] = {1: [], jobs: []}
    for _ in range(rounds):  # alternate, keep the best: the machine may be shared
        for n in runs:
            runs[n].append(run(n))
    return {n: min(results, key=lambda r: r[1]) for n, results in runs.items()}


def print_throughput(best: dict[int, tuple[int, float, float]], jobs: int, load_before: float) -> None:
    """Print files/s and CPU per file for 1 and `jobs` processes, the speed-up and the load."""
    rates = {n: files / wall for n, (files, wall, _) in best.items()}
    for n, (files, wall, cpu) in best.items():
        print(
            f"jobs={n}:  {files} files in {wall:.2f} s = {rates[n]:.2f} files/s, CPU {cpu / files:.3f} s/file"
        )
    print(f"speed-up jobs={jobs} vs jobs=1: {rates[jobs] / rates[1]:.2f}x (ideal {jobs}x)")
    load_after = os.getloadavg()[0]
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} cores")
