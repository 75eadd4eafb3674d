"""Benchmark of the musicnn port: CPU time of tags + embeddings for a 30-s clip on one core.

Usage::

    python benchmarks/bench_tagger.py [--repeats 5] [--clip PATH]

Everything runs on one thread (threadpoolctl limits BLAS) and is timed with
``time.process_time`` (CPU time of this process), median of `--repeats`. Measured in the same run:

* the goal: ``Tagger.tag_signal`` (log-mel front end, network, tags and embeddings) of a decoded
  30-s clip (default: the GTZAN rock.00000 clip of the test data) for ``msd``, ``mtt`` and both
  (one front end for both); decoding is timed apart;
* baseline 1, the matrix-product bound: the network's largest product (timbral block 1, 2 patches)
  scaled to its total multiply-adds, i.e. the time the network needs at this core's float32 BLAS
  speed with no other overhead;
* baseline 2: genrekit's GTZAN feature extraction (``clip_features``) of the same clip, what
  ``genrekit predict`` computes per clip;
* a profile of one patch pair through the network's stages.

The weights must be in the cache (run ``genrekit tags`` once, or set ``GENREKIT_TAGGER_DIR``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from _common import data_root
from threadpoolctl import threadpool_limits

from genrekit.audio.decode import load_audio
from genrekit.tagger import Tagger, tag_signal
from genrekit.tagger.frontend import log_mel

GOAL_MS = 60.0


def cpu_ms(work: Callable[[], object], repeats: int) -> float:
    """Median CPU milliseconds of `work` over `repeats` runs (after one warm-up run)."""
    work()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def macs_per_patch(tagger: Tagger) -> dict[str, int]:
    """Multiply-adds of each stage for one 187-frame patch (from the kernel shapes).

    The temporal kernels count at their own lengths (128, 64, 32), not as the zero-padded
    128-tap product the port runs them in: the bound is that of the model, not of the port.
    """
    net, t = tagger.net, 187
    out = {}
    for i, conv in enumerate(net.timbral):
        width = conv.weights.shape[0] // conv.taps
        out[f"timbral{i}"] = t * (96 - width + 1) * conv.weights.size
    out["temporal"] = t * 96 * sum(conv.weights.size for conv in net.temporal)
    out["midend"] = t * sum(conv.weights.size for conv in net.midend)
    return out


def profile(tagger: Tagger, repeats: int) -> list[tuple[str, float]]:
    """CPU ms per 30-s clip (10 patches) of each stage, measured on 2 patches."""
    net = tagger.net
    x = np.random.default_rng(0).random((2, 187, 96), dtype=np.float32) * 4
    front = np.concatenate([net._timbral(x, c) for c in net.timbral] + net._temporal(x), axis=2)
    features = net._midend(front)
    y = np.random.default_rng(1).standard_normal(16000 * 30).astype(np.float32) * 0.1
    stages = [
        ("log-mel (30 s)", lambda: log_mel(y), 1),
        ("timbral 7x38", lambda: net._timbral(x, net.timbral[0]), 5),
        ("timbral 7x67", lambda: net._timbral(x, net.timbral[1]), 5),
        ("temporal 128/64/32", lambda: net._temporal(x), 5),
        ("mid end", lambda: net._midend(front), 5),
        ("back end", lambda: net._backend(features), 5),
    ]
    return [(name, cpu_ms(work, repeats) * scale) for name, work, scale in stages]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clip", default=str(data_root() / "gtzan" / "audio" / "rock" / "rock.00000.flac"))
    args = parser.parse_args()
    taggers = {name: Tagger(name) for name in ("msd", "mtt")}
    with threadpool_limits(1):
        decode = cpu_ms(lambda: load_audio(args.clip, sr=16000), args.repeats)
        y = load_audio(args.clip, sr=16000)
        seconds = len(y) / 16000
        rows = {name: cpu_ms(lambda t=t: t.tag_signal(y, 16000), args.repeats) for name, t in taggers.items()}
        rows["msd+mtt"] = cpu_ms(lambda: tag_signal(y, 16000, list(taggers.values())), args.repeats)

        net = taggers["msd"].net
        x = np.random.default_rng(0).random((2, 187, 96), dtype=np.float32)
        cols = np.ascontiguousarray(
            np.lib.stride_tricks.sliding_window_view(
                np.pad(x, ((0, 0), (3, 3), (0, 0))), (7, 38), axis=(1, 2)
            )
        ).reshape(-1, 7 * 38)
        gemm = cpu_ms(lambda: cols @ net.timbral[0].signed, args.repeats)
        macs = macs_per_patch(taggers["msd"])
        patches = int(seconds // 2.992)
        bound = gemm * sum(macs.values()) * patches / (2 * macs["timbral0"])
        gflops = 2 * 2 * macs["timbral0"] / gemm / 1e6

        from genrekit.audio.features import clip_features

        y22 = load_audio(args.clip)
        features = cpu_ms(lambda: clip_features(y22), args.repeats)
        stages = profile(taggers["msd"], args.repeats)

    print(f"clip: {args.clip} ({seconds:.1f} s, {patches} patches)")
    print(f"one thread, CPU time (time.process_time), median of {args.repeats}")
    print(f"decode to 16 kHz: {decode:.1f} ms (not counted below)")
    for name, ms in rows.items():
        verdict = "met" if ms <= GOAL_MS else "NOT met"
        n_taggers = name.count("+") + 1
        print(f"tags + embeddings, {name:8s}: {ms:7.1f} ms  (goal {GOAL_MS:.0f} ms per tagger: {verdict}; "
              f"{ms / (n_taggers * bound):.2f} x the matrix-product bound)")  # fmt: skip
    print(f"baseline 1, matrix-product bound: {bound:.1f} ms for {sum(macs.values()) * patches / 1e9:.1f} G "
          f"multiply-adds at {gflops:.0f} GFLOP/s (this core's sgemm on the timbral product)")  # fmt: skip
    print(f"baseline 2, GTZAN features (clip_features) of the same clip: {features:.1f} ms "
          f"(msd tagger / features = {rows['msd'] / features:.2f})")  # fmt: skip
    print("profile, msd, per 30-s clip:")
    for name, ms in stages:
        print(f"  {name:20s} {ms:7.1f} ms")
    print("multiply-adds per patch: " + ", ".join(f"{k} {v / 1e6:.0f} M" for k, v in macs.items()))


if __name__ == "__main__":
    main()
