"""Helpers shared by the benchmark scripts (inputs from the test data, CPU time, cold starts)."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
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
