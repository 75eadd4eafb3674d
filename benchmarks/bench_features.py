"""Time the fast feature path against the plain librosa recipe on the 14 GTZAN FLAC clips.

Usage::

    python benchmarks/bench_features.py [--data DIR] [--runs N] [--reference-runs M]

DIR is the shared test-data folder (default: ``$GENREKIT_TEST_DATA`` or ``../shared/data`` beside the
repository). Both recipes run warm, single-threaded, in this process; each clip's time is the median
of its runs. Printed: per-clip milliseconds of each recipe, their ratio, and the largest parity
deviation of the fast path from the reference (in units of each column's standard deviation over the
table's 1,000 rows) observed in this same run, with the tempo checked for equality.
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

from genrekit.features import clip_features, reference_features  # noqa: E402
from genrekit.schema import FEATURE_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def median_ms(func, y: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    """Median wall time (ms) of `runs` calls after one warm-up call, and the result."""
    result = func(y)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func(y)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), result


def main() -> int:
    default = Path(os.environ.get("GENREKIT_TEST_DATA", REPO.parent / "shared" / "data"))
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

    print(f"{'clip':<22}{'reference ms':>14}{'fast ms':>10}{'ratio':>8}{'max dev (std)':>15}  tempo")
    rows, worst = [], np.zeros(len(FEATURE_NAMES))
    for path in paths:
        y = sf.read(path, dtype="float32")[0]
        ref_ms, ref = median_ms(reference_features, y, args.reference_runs)
        fast_ms, fast = median_ms(clip_features, y, args.runs)
        dev = np.abs(fast - ref) / scale
        worst = np.maximum(worst, dev)
        tempo = FEATURE_NAMES.index("tempo")
        same = "equal" if fast[tempo] == ref[tempo] else f"DIFFERS {fast[tempo]} vs {ref[tempo]}"
        rows.append((ref_ms, fast_ms))
        ratio = ref_ms / fast_ms
        print(f"{path.stem:<22}{ref_ms:>14.1f}{fast_ms:>10.1f}{ratio:>8.1f}{dev.max():>15.2e}  {same}")

    ref_total = sum(r for r, _ in rows)
    fast_total = sum(f for _, f in rows)
    n = len(rows)
    print(
        f"{'mean per clip':<22}{ref_total / n:>14.1f}{fast_total / n:>10.1f}{ref_total / fast_total:>8.1f}"
        f"{worst.max():>15.2e}"
    )
    print("largest deviations (std units):")
    for i in np.argsort(-worst)[:5]:
        print(f"  {FEATURE_NAMES[i]:<24}{worst[i]:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
