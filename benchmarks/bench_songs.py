"""Full-length songs end to end: per-stage time, songs per second, plain librosa, memory, cold start.

Usage::

    python benchmarks/bench_songs.py [--songs 2] [--formats mp3,flac,ogg,m4a] [--repeats 3]
                                     [--librosa-songs 1] [--jobs N] [--memory-minutes 20]

Songs are built from the real test clips (``GENREKIT_TEST_DATA`` or ``../shared/data`` beside the
repository) in a temporary folder that is deleted at the end: song ``i`` is the 14 GTZAN 30-s clips,
rotated by ``i``, concatenated to 4, 3, 5, 6, 3.5 or 4.5 minutes (song 0 is the 4-minute song of the
goal), resampled to 44.1 kHz with soxr and made stereo (the right channel 0.8 times the left, 7 ms
later), then written as MP3, FLAC (16 bit) and Ogg Vorbis with libsndfile and, when the ``ffmpeg``
program exists, as M4A (AAC). Every song is written in every format.

Printed, for each file (one core, one BLAS thread, warm, median CPU seconds of `--repeats` runs;
CPU rather than wall time, which on a shared machine counts other processes' time too):

- ``decode``: decoding and mixing to mono at the file's own rate (``open_audio(path, sr=native)``);
- ``resample``: the extra time of decoding to 22,050 Hz (soxr HQ, streamed), i.e. ``load - decode``;
- ``features``: the 57 features of each 30-s window (``clip_features``);
- ``model``: calibrated probabilities and novelty of the windows;
- ``total``: ``GenreModel.predict_file`` (the real streamed path, everything included), with its
  wall time beside it.

Then songs per second over all the files with ``predict_files`` on one process and on `--jobs`
processes (wall, alternating rounds, best of 2); the warm in-process prediction time of a 30-s
clip with the Python API's one BLAS thread against the default thread count; the plain librosa
path on the first `--librosa-songs` files (``librosa.load(sr=22050)``, then the plain recipe,
``reference_features``, per window, then the same model): its speed ratio, its features' largest
deviation from the fast path (in standard deviations of the GTZAN table's columns) and its genre;
the peak memory (maximum resident set) of new processes running ``genrekit predict`` on the
4-minute FLAC and on a `--memory-minutes` FLAC (0 skips it), and ``genrekit extract`` of the
latter; the cold start (wall and CPU seconds of a new process) of ``genrekit predict
one_30s_clip.flac`` and ``genrekit extract one_30s_clip.flac -o out.csv`` next to the floor (a new
interpreter importing NumPy and SciPy's FFT), to the import of the model class and to a new
process decoding one clip and computing its features (all that predict does but the model); and
the load average before and after. On a shared machine, compare only figures of the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from _common import MAIN, compare_jobs, data_root, timed
from threadpoolctl import threadpool_info

import genrekit
from genrekit.audio.decode import load_audio, open_audio
from genrekit.audio.features import clip_features
from genrekit.audio.window import windows
from genrekit.core.parallel import cpu_count, one_blas_thread
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.prediction.model import MIN_SECONDS, file_windows

SONG_SECONDS = (240, 180, 300, 360, 210, 270)
"""Lengths of the generated songs, in turn (3 to 6 minutes; the first is the goal's 4 minutes)."""

SONG_RATE = 44_100
FORMATS = {"mp3": ("MP3", None), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
"""libsndfile format and subtype of each generated extension (m4a goes through ffmpeg)."""


# ----------------------------------------------------------------------------------------------
# Inputs


def gtzan_clips() -> list[Path]:
    clips = sorted((data_root() / "gtzan" / "audio").rglob("*.flac"))
    if not clips:
        sys.exit(f"no FLAC clips under {data_root()}; set GENREKIT_TEST_DATA")
    return clips


def song_samples(clips: list[Path], index: int, seconds: float) -> np.ndarray:
    """Stereo float32 at 44.1 kHz, `seconds` long, from the clips rotated by `index`."""
    need = round(seconds * SAMPLE_RATE)
    parts, have, k = [], 0, index
    while have < need:
        y = sf.read(clips[k % len(clips)], dtype="float32")[0]
        parts.append(y)
        have, k = have + len(y), k + 1
    up = soxr.resample(np.concatenate(parts)[:need], SAMPLE_RATE, SONG_RATE, quality="HQ")
    delay = round(0.007 * SONG_RATE)
    right = np.concatenate((np.zeros(delay, np.float32), 0.8 * up[:-delay]))
    return np.clip(np.stack([up, right], axis=1), -1.0, 1.0).astype(np.float32)


def write_song(stereo: np.ndarray, path: Path) -> None:
    """Write `stereo` as `path` (format from its extension), block by block (libsndfile's Vorbis
    encoder crashes on very large single writes)."""
    fmt, subtype = FORMATS[path.suffix[1:]]
    with sf.SoundFile(path, "w", SONG_RATE, stereo.shape[1], format=fmt, subtype=subtype) as out:
        for start in range(0, len(stereo), 1 << 16):
            out.write(stereo[start : start + (1 << 16)])


def make_songs(folder: Path, n_songs: int, formats: list[str]) -> list[Path]:
    """Write `n_songs` songs in each of `formats` into `folder`; return the files, song by song."""
    clips, files = gtzan_clips(), []
    ffmpeg = shutil.which("ffmpeg")
    for i in range(n_songs):
        stereo = song_samples(clips, i, SONG_SECONDS[i % len(SONG_SECONDS)])
        minutes = len(stereo) / SONG_RATE / 60
        lossless = folder / f"song{i}_{minutes:g}min.flac"
        write_song(stereo, lossless)
        for ext in formats:
            path = lossless.with_suffix(f".{ext}")
            if ext == "m4a":
                if ffmpeg is None:
                    continue
                subprocess.run(
                    [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(lossless), "-c:a", "aac", str(path)],
                    check=True,
                )
            elif ext != "flac":
                write_song(stereo, path)
            files.append(path)
    return files


# ----------------------------------------------------------------------------------------------
# Stage timings


def cpu_median(work: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median CPU and wall seconds of `repeats` calls of `work`, and its last result."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        result = work()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall), result


def consume(path: Path, sr: int) -> int:
    """Decode `path` at `sr` block by block, keeping nothing; return the sample count."""
    with open_audio(path, sr) as (n_samples, blocks):
        for _ in blocks:
            pass
    return n_samples


def window_features(y: np.ndarray) -> np.ndarray:
    """Features of the 30-s windows of `y`, as prediction cuts them."""
    spans = windows(len(y), min_samples=round(MIN_SECONDS * SAMPLE_RATE))
    return np.stack([clip_features(y[start:end]) for start, end in spans])


def stage_times(model: genrekit.GenreModel, path: Path, repeats: int) -> dict[str, float]:
    """CPU seconds of each stage of one file (see the module docstring)."""
    native = sf.info(path).samplerate if path.suffix != ".m4a" else SAMPLE_RATE
    with one_blas_thread():
        decode, _, _ = cpu_median(lambda: consume(path, native), repeats)
        load, _, y = cpu_median(lambda: load_audio(path), repeats)
        features, _, x = cpu_median(lambda: window_features(y), repeats)
        modelling, _, _ = cpu_median(
            lambda: (model.predict_proba(x), model.novelty and model.novelty.distance(x)), repeats
        )
    total, wall, prediction = cpu_median(lambda: model.predict_file(path), repeats)
    return {
        "decode": decode,
        "resample": max(load - decode, 0.0),
        "features": features,
        "model": modelling,
        "total": total,
        "wall": wall,
        "minutes": len(y) / SAMPLE_RATE / 60,
        "windows": len(x),
        "genre": prediction.genre,
    }


def print_stages(model: genrekit.GenreModel, files: list[Path], repeats: int) -> dict[Path, dict]:
    print(f"\nper file, CPU seconds (median of {repeats}; one core, one BLAS thread, warm):")
    print(
        f"{'file':<22}{'min':>5}{'win':>4}{'decode':>8}{'resamp':>8}{'feat':>7}{'model':>7}"
        f"{'total':>7}{'wall':>7}{'s/min':>7}  genre"
    )
    out = {}
    for path in files:
        t = out[path] = stage_times(model, path, repeats)
        print(
            f"{path.name:<22}{t['minutes']:>5.1f}{t['windows']:>4}{t['decode']:>8.3f}{t['resample']:>8.3f}"
            f"{t['features']:>7.3f}{t['model']:>7.3f}{t['total']:>7.3f}{t['wall']:>7.3f}"
            f"{t['total'] / t['minutes']:>7.3f}  {t['genre']}"
        )
    return out


# ----------------------------------------------------------------------------------------------
# Plain librosa


def librosa_path(model: genrekit.GenreModel, path: Path) -> tuple[float, np.ndarray, str]:
    """CPU seconds, window features and genre of the plain librosa path on one file."""
    import librosa

    from genrekit.audio.features import reference_features

    with one_blas_thread():
        start = time.process_time()
        y, _ = librosa.load(path, sr=SAMPLE_RATE)
        spans = windows(len(y), min_samples=round(MIN_SECONDS * SAMPLE_RATE))
        x = np.stack([reference_features(y[s:e]) for s, e in spans])
        genre = model.classes_[model.predict_proba(x).mean(axis=0).argmax()]
        return time.process_time() - start, x, str(genre)


def print_librosa(model: genrekit.GenreModel, files: list[Path], stages: dict[Path, dict]) -> None:
    import pandas as pd

    table = pd.read_csv(data_root() / "gtzan" / "features_30_sec.csv")
    scale = table[list(FEATURE_NAMES)].to_numpy().std(axis=0)
    if not files:
        return
    from genrekit.audio.features import reference_features

    reference_features(load_audio(files[0])[: round(30 * SAMPLE_RATE)])  # warm-up: numba compiles
    print("\nplain librosa path (librosa.load + reference_features per window + the same model), CPU s:")
    ratios = []
    for path in files:
        seconds, x, genre = librosa_path(model, path)
        fast = window_features(load_audio(path))
        dev = float(np.max(np.abs(fast - x) / scale))
        tempo = FEATURE_NAMES.index("tempo")
        ratio = seconds / stages[path]["total"]
        ratios.append(ratio)
        print(
            f"{path.name:<22} librosa {seconds:7.2f} s, genrekit {stages[path]['total']:.3f} s: "
            f"{ratio:5.1f}x; max feature deviation {dev:.1e} std, tempo "
            f"{'equal' if np.array_equal(fast[:, tempo], x[:, tempo]) else 'DIFFERS'}, genre {genre} "
            f"(genrekit {stages[path]['genre']})"
        )
    if ratios:
        print(f"median speed-up over plain librosa: {statistics.median(ratios):.1f}x")


# ----------------------------------------------------------------------------------------------
# Throughput, memory, cold start


def songs_per_second(model: genrekit.GenreModel, files: list[Path], jobs: int) -> None:
    def run(n: int) -> tuple[int, float, float]:
        def work() -> int:
            results = list(model.predict_files(files, jobs=n))
            assert not [r for _, r in results if isinstance(r, Exception)], results
            return len(results)

        return timed(work)

    best = compare_jobs(run, jobs, rounds=2)
    print(f"\nsongs per second, {len(files)} files, predict_files (wall, best of 2 alternating rounds):")
    for n, (count, wall, cpu) in best.items():
        print(f"  jobs={n}: {count / wall:.2f} songs/s ({wall:.2f} s wall, CPU {cpu / count:.3f} s/song)")
    if jobs in best and 1 in best and jobs != 1:
        print(f"  speed-up jobs={jobs} vs 1: {best[1][1] / best[jobs][1]:.2f}x")


def print_api_threads(model: genrekit.GenreModel, repeats: int) -> None:
    """Warm in-process ``predict_file`` per 30-s clip: one BLAS thread (the API's policy) vs the default."""
    clips = gtzan_clips()
    default = max((pool["num_threads"] for pool in threadpool_info()), default=1)

    def default_threads(path: Path) -> object:  # predict_file's work without its thread limit
        return model._predict_windows([(path, file_windows(path))])

    times: dict[str, list[float]] = {"one BLAS thread (predict_file)": [], f"default ({default})": []}
    for _ in range(repeats):
        for clip in clips:  # interleaved, so that changes in load hit both alike
            for name, run in zip(times, (model.predict_file, default_threads), strict=True):
                start = time.perf_counter()
                run(clip)
                times[name].append(time.perf_counter() - start)
    print(
        f"\nwarm in-process prediction of a 30-s clip, wall ms (median over {len(clips)} clips x {repeats}):"
    )
    for name, values in times.items():
        print(f"  {name}: {1e3 * statistics.median(values):.0f} ms")


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory (MB) of a new process running ``genrekit ARGS``.

    Read from ``VmHWM`` in ``/proc/self/status`` at its end: the high-water mark of the process's own
    memory (``ru_maxrss`` would also count the pages of this process that the child held between
    its fork and its exec).
    """
    code = (
        f"{MAIN.replace('sys.exit(main())', 'status = main()')}; "
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0]; "
        "print(hwm, file=sys.stderr); "
        "sys.exit(status)"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1].split()[1]) / 1024


def print_memory(folder: Path, four_minutes: Path | None, minutes: float) -> None:
    print("\npeak memory (max resident set of a new process, MB):")
    if four_minutes is not None:
        print(f"  predict {four_minutes.name}: {peak_rss_mb(['predict', str(four_minutes), '-q']):.0f}")
    if minutes <= 0:
        return
    long = folder / f"long_{minutes:g}min.flac"
    clips = gtzan_clips()
    with sf.SoundFile(long, "w", SONG_RATE, 2, format="FLAC", subtype="PCM_16") as out:
        for i in range(int(np.ceil(minutes / 4))):
            out.write(song_samples(clips, i, min(240.0, minutes * 60 - 240 * i)))
    print(f"  predict {long.name}: {peak_rss_mb(['predict', str(long), '-q']):.0f}")
    extract = peak_rss_mb(["extract", str(long), "-o", str(folder / "long.csv"), "-q"])
    print(f"  extract {long.name} -o long.csv: {extract:.0f}")


def new_process(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a new process ``python ARGS``.

    On a busy machine the CPU time is the steadier figure: the wall time also counts the time the
    process waited for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def print_cold_start(folder: Path, repeats: int) -> None:
    clip = gtzan_clips()[0]
    runs = {
        "python -c 'import numpy, scipy.fft' (floor)": ["-c", "import numpy, scipy.fft"],
        "python -c 'import genrekit.models.io' (model class)": ["-c", "import genrekit.models.io"],
        "python -c 'file_windows(one.flac)' (predict less model)": [
            "-c",
            f"from genrekit.prediction.model import file_windows; file_windows({str(clip)!r})",
        ],
        "genrekit predict one.flac": ["-c", MAIN, "predict", str(clip), "-q"],
        "genrekit extract one.flac -o one.csv": [
            "-c",
            MAIN,
            "extract",
            str(clip),
            "-o",
            str(folder / "1.csv"),
            "-q",
        ],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(repeats):  # interleaved, so that changes in load hit all alike
        for name, args in runs.items():
            times[name].append(new_process(args))
    print(f"\ncold start, new process ({clip.name}), median of {repeats}: wall s, CPU s")
    for name, values in times.items():
        wall, cpu = (statistics.median(v) for v in zip(*values, strict=True))
        print(f"  {name:<52} {wall:5.2f} {cpu:5.2f}")


def load_line() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--songs", type=int, default=2, help="songs, each in every format (default 2)")
    parser.add_argument("--formats", default="mp3,flac,ogg,m4a", help="extensions (m4a needs ffmpeg)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage (median; default 3)")
    parser.add_argument("--librosa-songs", type=int, default=1, help="files also run with plain librosa")
    parser.add_argument("--jobs", type=int, default=cpu_count(), help="processes of the parallel run")
    parser.add_argument(
        "--memory-minutes", type=float, default=20, help="long file for peak memory (0: skip)"
    )
    parser.add_argument("--skip", default="", help="comma list of parts to skip: throughput,memory,cold")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"before: {load_line()}")
    model = genrekit.load_model()
    with tempfile.TemporaryDirectory(prefix="genrekit-songs-") as tmp:
        folder = Path(tmp)
        formats = [f for f in args.formats.split(",") if f]
        files = make_songs(folder, args.songs, formats)
        if "m4a" in formats and shutil.which("ffmpeg") is None:
            print("m4a: skipped (no ffmpeg program)")
        model.predict_file(files[0])  # warm-up: imports, caches
        stages = print_stages(model, files, args.repeats)
        print_librosa(model, files[: args.librosa_songs], stages)
        if "throughput" not in skip:
            songs_per_second(model, files, args.jobs)
            print_api_threads(model, args.repeats)
        if "memory" not in skip:
            four = next((f for f in files if f.suffix == ".flac"), None)
            print_memory(folder, four, args.memory_minutes)
        if "cold" not in skip:
            print_cold_start(folder, max(args.repeats, 3))
    print(f"\nafter: {load_line()}")


if __name__ == "__main__":
    main()
