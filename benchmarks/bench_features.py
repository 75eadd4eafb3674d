"""Time the fast feature path against the plain librosa recipe on the 14 GTZAN FLAC clips.

Usage::

    python benchmarks/bench_features.py [--data DIR] [--runs N] [--reference-runs M]

DIR is the shared test-data folder (default: ``$GENREKIT_TEST_DATA`` or ``../shared/data`` beside the
repository). Both recipes run warm, single-threaded, in this process, their runs interleaved so that
changes in machine load hit both alike; each clip's time is the median of its runs. Printed: per-clip
wall milliseconds of each recipe, their ratio, the ratio of CPU times (less sensitive to other
processes on a shared machine), and the largest parity deviation of the fast path from the reference
(in units of each column's standard deviation over the table's 1,000 rows) observed in this same run,
with the tempo checked for equality.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from _common import data_root  # noqa: E402

from genrekit.audio.features import clip_features, reference_features  # noqa: E402
from genrekit.core.schema import FEATURE_NAMES  # noqa: E402


def timed(func, y: np.ndarray) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    func(y)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_pair(y: np.ndarray, runs: int, reference_runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU ms of each recipe; runs interleaved so load changes hit both alike."""
    samples: dict[str, list[tuple[float, float]]] = {"reference": [], "fast": []}
    for i in range(runs):
        if i < reference_runs:
            samples["reference"].append(timed(reference_features, y))
        samples["fast"].append(timed(clip_features, y))
    return {
        name: (1e3 * statistics.median(w for w, _ in got), 1e3 * statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


def main() -> int:
    default = data_root()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default, help="test-data folder (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of the fast path per clip")
    parser.add_argument("--reference-runs", type=int, default=3, help="timed runs of the reference per clip")
    args = parser.parse_args()

    import pandas as pd

    table = pd.read_csv(args.data / "gtzan" / "features_30_sec.csv")
    scale = table[list(FEATURE_NAMES)].to_numpy().std(axis=0)
    paths = sorted((args.data / "gtzan" / "audio").glob("*/*.flac"))
    if not paths:
        parser.error(f"no FLAC clips under {args.data / 'gtzan' / 'audio'}")

    header = f"{'clip':<18}{'ref ms':>9}{'fast ms':>9}{'ratio':>7}{'cpu ratio':>10}{'max dev':>10}  tempo"
    print(header)
    tempo = FEATURE_NAMES.index("tempo")
    totals = np.zeros(4)  # reference wall, fast wall, reference cpu, fast cpu
    worst = np.zeros(len(FEATURE_NAMES))
    for path in paths:
        y = sf.read(path, dtype="float32")[0]
        ref, fast = reference_features(y), clip_features(y)  # warm-up, and the parity of this run
        dev = np.abs(fast - ref) / scale
        worst = np.maximum(worst, dev)
        same = "equal" if fast[tempo] == ref[tempo] else f"DIFFERS {fast[tempo]} vs {ref[tempo]}"
        t = time_pair(y, max(args.runs, args.reference_runs), args.reference_runs)
        (ref_wall, ref_cpu), (fast_wall, fast_cpu) = t["reference"], t["fast"]
        totals += (ref_wall, fast_wall, ref_cpu, fast_cpu)
        print(
            f"{path.stem:<18}{ref_wall:>9.1f}{fast_wall:>9.1f}{ref_wall / fast_wall:>7.1f}"
            f"{ref_cpu / fast_cpu:>10.1f}{dev.max():>10.2e}  {same}"
        )
    n = len(paths)
    print(
        f"{'mean per clip':<18}{totals[0] / n:>9.1f}{totals[1] / n:>9.1f}{totals[0] / totals[1]:>7.1f}"
        f"{totals[2] / totals[3]:>10.1f}{worst.max():>10.2e}"
    )
    print("max dev: largest |fast - reference| / column std over the table, this run")
    print("largest deviations (std units):")
    for i in np.argsort(-worst)[:5]:
        print(f"  {FEATURE_NAMES[i]:<24}{worst[i]:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
