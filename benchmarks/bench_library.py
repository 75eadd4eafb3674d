"""Benchmark of `genrekit scan`: the local pool vs Dask, catalogue overhead, rescans, client memory.

Usage::

    python benchmarks/bench_library.py [--files 2000] [--jobs 2] [--mp3-tracks 3] [--s3]

It generates a library of ``--files`` audio files (default 2,000) in four
equal parts: hard links to 36 distinct sources cut from the 14 real GTZAN
clips of the test data and re-encoded as WAV, FLAC, Ogg Vorbis and MP3, of 5 s
to 10 min (mostly short: about 20 s on average), plus a few bad files (empty,
truncated, not audio), one in 400. Each path is decoded on its own, so a hard
link costs what a copy would, without the disk space.

Measured, each scan in a new client process (so its peak memory is its own):

* full scans of the whole library into a new catalogue with the local pool
  (``--jobs`` processes) and with Dask ``LocalCluster`` of 1 and 2
  single-threaded workers (started before the clock; the same machine, the
  same run): files per second, client CPU per file;
* the catalogue overhead per file: the time the client spends in
  ``Catalogue.put`` (one transaction per file, commit included);
* an unchanged rescan: wall time per file (walk, stat, compare, nothing else);
* the client's peak memory (max RSS) for a quarter of the library and for all
  of it, full scan and rescan: it must not grow with the library;
* for the million-track plan, the CPU time of analysing full-length MP3s
  (4-minute tracks at 44.1 kHz stereo, decode and resampling included) on one
  thread;
* with ``--s3`` (needs ``moto[s3]``, Flask and s3fs, as in the ``dev`` extra):
  the same library uploaded to moto's S3 server on 127.0.0.1 (in this
  process), a full scan of ``s3://bench/library`` with the local pool, an
  unchanged rescan (listing only), and the peak memory of copying one 160-MB
  object to a temporary file as a worker does.

The machine may be shared: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from _common import data_root

SR = 22050
FORMATS = (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III"))
LENGTHS = (5, 8, 10, 15, 20, 30, 60, 120, 600)


def _length(i: int) -> int:
    """Seconds of the i-th file: mostly 5-30 s; one in 20: 1 min, one in 100: 2 min, one in 500: 10 min."""
    if i % 500 == 0:
        return 600
    if i % 100 == 50:
        return 120
    if i % 20 == 10:
        return 60
    return (5, 8, 10, 15, 20, 30)[i % 6]


def _write(path: Path, y: np.ndarray, sr: int, subtype: str) -> None:
    """Write audio in 10-s blocks (libsndfile 1.2 can crash writing long Vorbis or MP3 in one call)."""
    channels = 1 if y.ndim == 1 else y.shape[1]
    with sf.SoundFile(path, "w", sr, channels, subtype=subtype) as handle:
        for start in range(0, len(y), 10 * sr):
            handle.write(y[start : start + 10 * sr])


def make_library(root: Path, n_files: int) -> dict:
    """Write the sources, then link them into ``root/part{0..3}/<genre>/``; return a description."""
    clips = sorted((data_root() / "gtzan" / "audio").rglob("*.flac"))
    if not clips:
        sys.exit(f"no FLAC clips under {data_root()}; set GENREKIT_TEST_DATA")
    audio = np.concatenate([sf.read(c, dtype="float32")[0] for c in clips])
    sources = root / "sources"
    sources.mkdir(parents=True)
    for k, seconds in enumerate(LENGTHS):
        start = (k * 7 * SR) % (len(audio) - SR)
        y = np.resize(np.roll(audio, -start), seconds * SR)
        for ext, subtype in FORMATS:
            _write(sources / f"{seconds}s.{ext}", y, SR, subtype)
    (sources / "empty.wav").write_bytes(b"")
    (sources / "text.mp3").write_text("not audio\n")
    flac = (sources / "30s.flac").read_bytes()
    (sources / "truncated.flac").write_bytes(flac[: len(flac) // 3])
    bad = ("empty.wav", "text.mp3", "truncated.flac")
    seconds_total, n_bad = 0, 0
    for i in range(n_files):
        part = root / "library" / f"part{i * 4 // n_files}" / clips[i % len(clips)].parent.name
        part.mkdir(parents=True, exist_ok=True)
        if i % 400 == 399:
            name, n_bad = bad[n_bad % 3], n_bad + 1
        else:
            name = f"{_length(i)}s.{FORMATS[i % 4][0]}"
            seconds_total += _length(i)
        os.link(sources / name, part / f"{i:05d}.{name}")
    return {"files": n_files, "bad": n_bad, "hours": seconds_total / 3600}


def copy_peak(url: str) -> dict:
    """Copy one object to a temporary file as a worker does; the peak RSS above the start, sampled."""
    import threading

    from genrekit.library.remote import filesystem, local_copy

    def rss_mb() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    filesystem(url)  # the backend's client, before the clock
    start, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with local_copy(url) as local:
        size = os.path.getsize(local)
    done.set()
    sampler.join()
    return {"size_mb": size / 2**20, "peak_mb": peak[0] - start}


def child(args: dict) -> dict:
    """Run one scan in this (new) process and measure it (or, for ``runner="copy"``, one object's copy)."""
    if args["runner"] == "copy":
        return copy_peak(args["root"])
    import genrekit
    from genrekit.library.catalogue import Catalogue
    from genrekit.library.scan import run_local, scan

    class TimedCatalogue(Catalogue):
        put_seconds = 0.0

        def put(self, *a, **k) -> None:
            start = time.thread_time()
            super().put(*a, **k)
            self.put_seconds += time.thread_time() - start

    model = genrekit.load_model()
    if args["runner"] == "local":
        runner = run_local(args["jobs"])
    else:
        from genrekit.library.cluster import run_dask

        runner = run_dask(args["runner"], batch_files=args["batch_files"])
    with TimedCatalogue(args["db"]) as catalogue:
        cpu, start = time.process_time(), time.perf_counter()
        report = scan(args["root"], catalogue, model, runner)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        put = catalogue.put_seconds
    stored = report.analysed + len(report.failed)
    return {
        "stored": stored,
        "analysed": report.analysed,
        "failed": len(report.failed),
        "lost": len(report.lost),
        "unchanged": report.unchanged,
        "wall_s": wall,
        "client_cpu_s": cpu,
        "put_s": put,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load": os.getloadavg()[0],
    }


def run_child(**args) -> dict:
    """Run :func:`child` in a new Python process; return its measurements."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in args.items()}),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def put_cost(db: Path, n_files: int) -> tuple[float, float]:
    """Wall and CPU ms per file of storing `n_files` two-window analyses with predictions, alone."""
    from genrekit.library.catalogue import Analysis, Catalogue, Prediction

    rng = np.random.default_rng(0)
    probabilities = {f"genre{k}": 0.1 for k in range(10)}
    with Catalogue(db) as catalogue:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n_files):
            analysis = Analysis(
                f"/music/{i:07d}.mp3",
                5_000_000,
                i,
                2 * 661_500,
                np.array([[0, 661_500], [661_500, 1_323_000]]),
                rng.normal(size=(2, 57)),
            )
            catalogue.put(analysis, Prediction("model", "rock", "rock", 0.6, 1.0, True, probabilities))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1e3 * wall / n_files, 1e3 * cpu / n_files


def mp3_cost(folder: Path, n_tracks: int) -> tuple[float, float]:
    """CPU seconds of analysing one 4-minute 44.1 kHz stereo MP3 (median of `n_tracks`) and its duration."""
    import soxr
    from threadpoolctl import threadpool_limits

    from genrekit.library.scan import analyse_file

    clips = sorted((data_root() / "gtzan" / "audio").rglob("*.flac"))
    costs = []
    for k in range(n_tracks):
        y = np.concatenate([sf.read(c, dtype="float32")[0] for c in np.roll(clips, -3 * k)[:8]])[: 240 * SR]
        y = soxr.resample(y, SR, 44100)
        path = folder / f"track{k}.mp3"
        _write(path, np.stack([y, y], axis=1), 44100, "MPEG_LAYER_III")
        with threadpool_limits(1):
            cpu = time.process_time()
            analysis = analyse_file(str(path))
            costs.append(time.process_time() - cpu)
        assert analysis.error is None, analysis.error
    return float(np.median(costs)), 240.0


def s3_library(root: Path) -> tuple[str, object]:
    """Start moto's S3 server on 127.0.0.1, point this process and its children at it, upload `root`.

    Returns the library's URL and the server (to stop).
    """
    import logging

    import fsspec
    import fsspec.config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        FSSPEC_S3_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = os.environ["FSSPEC_S3_ENDPOINT_URL"]  # here too
    fs = fsspec.filesystem("s3")
    fs.mkdir("bench")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"bench/library/{path.relative_to(root).as_posix()}")
    return "s3://bench/library", server


def s3_scans(root: Path, tmp: Path, jobs: int, n_files: int, local_rate: float) -> None:
    """Scan the library from moto's S3 server (full scan, then an unchanged rescan) and print the rows."""
    url, server = s3_library(root)
    try:
        full = run_child(runner="local", jobs=jobs, db=tmp / "s3.db", root=url)
        print(_line(f"s3:// (moto), {jobs} procs", full))
        print(f"s3:// / local disk, local pool: {full['stored'] / full['wall_s'] / local_rate:.2f}x files/s")
        again = run_child(runner="local", jobs=jobs, db=tmp / "s3.db", root=url)
        assert again["analysed"] == 0 and again["unchanged"] == n_files, again
        per_file = 1e3 * again["wall_s"] / n_files
        print(f"unchanged s3:// rescan (listing only): {per_file:.3f} ms/file (load {again['load']:.1f})")
        import fsspec

        with fsspec.open("s3://bench/big.wav", "wb") as handle:  # 160 MB: a 15-minute 44.1 kHz stereo WAV
            for _ in range(20):
                handle.write(np.random.default_rng(0).bytes(8 << 20))
        copy = run_child(runner="copy", root="s3://bench/big.wav")
        size, peak = copy["size_mb"], copy["peak_mb"]
        print(f"copy of one {size:.0f}-MB object to a temporary file: peak RSS +{peak:.0f} MB")
    finally:
        server.stop()


def _line(name: str, r: dict) -> str:
    rate = r["stored"] / r["wall_s"] if r["wall_s"] else float("nan")
    return (
        f"{name:<22} {r['stored']:>5} files in {r['wall_s']:7.1f} s = {rate:6.2f} files/s; "
        f"client CPU {1e3 * r['client_cpu_s'] / max(r['stored'], 1):5.2f} ms/file, "
        f"catalogue put {1e3 * r['put_s'] / max(r['stored'], 1):5.3f} CPU ms/file, "
        f"peak RSS {r['maxrss_mb']:5.0f} MB (load {r['load']:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000, help="library size (default 2000; at least 8)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="local pool processes")
    parser.add_argument("--batch-files", type=int, default=8, help="files per Dask task (default 8)")
    parser.add_argument("--mp3-tracks", type=int, default=3, help="full-length MP3s timed (0: skip)")
    parser.add_argument("--s3", action="store_true", help="also scan the library from moto's S3 server")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from distributed import LocalCluster

    print(f"machine: {os.cpu_count()} cores; 1-min load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        library = make_library(tmp, args.files)
        root = tmp / "library"
        print(
            f"library: {library['files']} files ({library['bad']} bad), {library['hours']:.1f} h of audio, "
            f"5 s to 10 min, WAV/FLAC/Ogg/MP3"
        )
        results = {}
        results["local"] = run_child(runner="local", jobs=args.jobs, db=tmp / "local.db", root=root)
        print(_line(f"local pool, {args.jobs} procs", results["local"]))
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
                name = f"dask{workers}"
                results[name] = run_child(
                    runner=cluster.scheduler_address,
                    batch_files=args.batch_files,
                    db=tmp / f"{name}.db",
                    root=root,
                )
            print(_line(f"Dask, {workers} worker{'s' * (workers > 1)}", results[name]))
        rates = {k: r["stored"] / r["wall_s"] for k, r in results.items()}
        print(
            f"files/s ratios: Dask 2 workers / 1 worker {rates['dask2'] / rates['dask1']:.2f}x, "
            f"Dask 2 workers / local pool {rates['dask2'] / rates['local']:.2f}x"
        )
        wall, cpu = put_cost(tmp / "put.db", args.files)
        print(
            f"catalogue alone: {args.files} files of 2 windows + prediction, one transaction each: "
            f"{wall:.3f} ms/file wall, {cpu:.3f} ms/file CPU (load {os.getloadavg()[0]:.1f})"
        )
        rescan = run_child(runner="local", jobs=args.jobs, db=tmp / "local.db", root=root)
        assert rescan["analysed"] == 0 and rescan["unchanged"] == args.files, rescan
        print(
            f"unchanged rescan: {args.files} files in {rescan['wall_s']:.3f} s = "
            f"{1e3 * rescan['wall_s'] / args.files:.3f} ms/file, peak RSS {rescan['maxrss_mb']:.0f} MB "
            f"(load {rescan['load']:.1f})"
        )
        quarter = root / "part0"
        n_quarter = sum(1 for p in quarter.rglob("*") if p.is_file())
        small = run_child(runner="local", jobs=args.jobs, db=tmp / "quarter.db", root=quarter)
        small_rescan = run_child(runner="local", jobs=args.jobs, db=tmp / "quarter.db", root=quarter)
        print(
            f"client peak RSS, full scan: {small['maxrss_mb']:.0f} MB for {n_quarter} files, "
            f"{results['local']['maxrss_mb']:.0f} MB for {args.files}; "
            f"rescan: {small_rescan['maxrss_mb']:.0f} MB "
            f"vs {rescan['maxrss_mb']:.0f} MB; rescan {1e3 * small_rescan['wall_s'] / n_quarter:.3f} ms/file "
            f"for {n_quarter} files"
        )
        if args.s3:
            s3_scans(root, tmp, args.jobs, args.files, rates["local"])
        if args.mp3_tracks:
            cpu, seconds = mp3_cost(tmp, args.mp3_tracks)
            print(
                f"full-length MP3 (4 min, 44.1 kHz stereo), one thread: {cpu:.2f} CPU s per track "
                f"= {3600 * cpu / seconds:.0f} CPU s per hour of audio (median of {args.mp3_tracks}; "
                f"load {os.getloadavg()[0]:.1f})"
            )
    print(f"1-min load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
