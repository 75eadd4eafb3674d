"""Load benchmark of `genrekit serve` on 127.0.0.1: throughput, latency, errors, live-mode latency.

Usage::

    python benchmarks/bench_serve.py [--clients 32] [--seconds 60] [--max-requests 20000]
                                     [--workers N] [--idle-requests 20] [--live-updates 10]

In one run, on this machine only (the server listens on 127.0.0.1 and every request goes there):

1. ``genrekit predict``'s files/s on the same clips (``GenreModel.predict_files`` on `--workers`
   processes, the 14 real 30-s GTZAN FLAC clips copied 4 times), the baseline, measured once
   before the server starts and once after it stops (the ratio uses their mean);
2. a server (``genrekit serve --workers N``) started in a child process;
3. one-request latency on the idle server: `--idle-requests` sequential POSTs of one 30-s clip
   (one request occupies one worker, so one core), next to ``predict_file`` of the same clip in
   the benchmark's own process (one BLAS thread): the difference is what the service adds;
4. the load: `--clients` threads, each POSTing the 30-s clips (raw body, keep-alive) in turn
   for `--seconds` or until `--max-requests` in all; requests/s, p50/p95/p99 latency, errors
   (any answer but 200, or a failed connection), and the ratio of the service's files/s to the
   baseline's;
5. live mode: `--live-updates` updates over /v1/stream, 3 s of audio per message, each message
   waiting for its update; the server's update latency and the client's round trip.

The load generator runs on the same cores as the server: on a small machine it takes part
of the CPU the server could use. Load averages are printed before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from _common import make_inputs

import genrekit
from genrekit.audio.decode import audio_files, load_audio
from genrekit.core.parallel import cpu_count
from genrekit.core.schema import SAMPLE_RATE
from genrekit.serve.process import ServerProcess, child_env


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def baseline_rate(model: genrekit.GenreModel, files: list[Path], jobs: int) -> float:
    """Files/s of `genrekit predict` (``predict_files`` on `jobs` processes) over `files`."""
    start = time.perf_counter()
    results = list(model.predict_files(files, jobs=jobs))
    elapsed = time.perf_counter() - start
    assert not [r for _, r in results if isinstance(r, Exception)]
    return len(results) / elapsed


class Client:
    """A keep-alive HTTP connection that POSTs clips to /v1/predict."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def post(self, name: str, data: bytes) -> tuple[int, float]:
        """POST one clip; return (status, seconds)."""
        start = time.perf_counter()
        try:
            self.conn.request(
                "POST", f"/v1/predict?filename={name}", body=data,
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            answer = self.conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            status = 0
        return status, time.perf_counter() - start


def inprocess_latency(model: genrekit.GenreModel, clip: Path, repeats: int) -> list[float]:
    """Seconds of ``GenreModel.predict_file`` on `clip` in this process, one BLAS thread (no HTTP)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model.predict_file(clip)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict_file(clip)
            times.append(time.perf_counter() - start)
    return times


def idle_latency(url: str, clip: tuple[str, bytes], requests: int) -> list[float]:
    """Seconds of `requests` sequential POSTs of one clip (after 3 warm-up requests)."""
    client = Client(url)
    for _ in range(3):
        client.post(*clip)
    times = []
    for _ in range(requests):
        status, seconds = client.post(*clip)
        assert status == 200, status
        times.append(seconds)
    return times


def load(url: str, clips: list[tuple[str, bytes]], clients: int, seconds: float, max_requests: int) -> dict:
    """Run `clients` threads posting `clips` for `seconds` or `max_requests`; return the figures."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[int] = []
    issued = [0]
    start = time.perf_counter()
    deadline = start + seconds

    def worker(index: int) -> None:
        client = Client(url)
        turn = index
        while time.perf_counter() < deadline:
            with lock:
                if issued[0] >= max_requests:
                    return
                issued[0] += 1
            status, took = client.post(*clips[turn % len(clips)])
            turn += 1
            with lock:
                (latencies if status == 200 else errors).append(took if status == 200 else status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"ok": len(latencies), "errors": errors, "elapsed": elapsed, "latencies": latencies}


def live_latency(url: str, clip: Path, updates: int) -> tuple[list[float], list[float]]:
    """Server-side update latency and client round trip (ms) of `updates` lockstep live updates."""
    from websockets.sync.client import connect

    y = load_audio(clip)
    step = 3 * SAMPLE_RATE
    server, round_trip = [], []
    with connect(url.replace("http://", "ws://") + "/v1/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": SAMPLE_RATE, "encoding": "pcm_f32le"}))
        json.loads(ws.recv(timeout=30))
        for k in range(updates):
            chunk = y[(k * step) % (len(y) - step) :][:step]
            start = time.perf_counter()
            ws.send(chunk.astype("<f4").tobytes())
            update = json.loads(ws.recv(timeout=60))
            round_trip.append((time.perf_counter() - start) * 1000)
            assert update["type"] == "update", update
            server.append(update["latency_ms"])
    return server, round_trip


def ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms, "
        f"p99 {percentile(values, 99):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    parser.add_argument("--max-requests", type=int, default=20000, help="bound on load requests")
    parser.add_argument("--workers", type=int, default=cpu_count(), help="server worker processes")
    parser.add_argument("--idle-requests", type=int, default=20, help="sequential requests, idle server")
    parser.add_argument("--live-updates", type=int, default=10, help="live-mode updates measured")
    args = parser.parse_args()
    load_before = os.getloadavg()
    model = genrekit.load_model()
    with tempfile.TemporaryDirectory() as tmp:
        originals = make_inputs(Path(tmp), 4)
        files = audio_files(tmp)
        model.predict_file(files[0])  # warm-up
        before = baseline_rate(model, files, args.workers)
        clips = [(p.name, p.read_bytes()) for p in originals]
        queue = str(max(64, 2 * args.clients))
        with ServerProcess(["--workers", str(args.workers), "--queue", queue], env=child_env()) as server:
            idle = idle_latency(server.url, clips[0], args.idle_requests)
            direct = inprocess_latency(model, originals[0], args.idle_requests)
            result = load(server.url, clips, args.clients, args.seconds, args.max_requests)
            live_server, live_trip = live_latency(server.url, originals[0], args.live_updates)
        after = baseline_rate(
            model, files, args.workers
        )  # the baseline brackets the load: the machine may drift
    base = (before + after) / 2
    rate = result["ok"] / result["elapsed"]
    load_after = os.getloadavg()
    print(f"machine: {cpu_count()} cores; server --workers {args.workers}; 30-s GTZAN FLAC clips")
    print(
        f"baseline `genrekit predict` (predict_files, {len(files)} files, jobs={args.workers}): "
        f"{before:.2f} files/s before the load, {after:.2f} after, mean {base:.2f}"
    )
    print(
        f"idle server, one 30-s clip per request, {args.idle_requests} sequential: "
        f"{ms([t * 1000 for t in idle])}; the same clip's predict_file in-process, no HTTP: "
        f"{ms([t * 1000 for t in direct])}"
    )
    print(
        f"load: {args.clients} clients for {result['elapsed']:.1f} s: {result['ok']} ok, "
        f"{len(result['errors'])} errors {sorted(set(result['errors']))}; {rate:.2f} requests/s; "
        f"latency {ms([t * 1000 for t in result['latencies']])}"
    )
    print(f"service files/s / predict files/s: {rate / base:.2f} (goal >= 0.85)")
    print(
        f"live mode, {args.live_updates} updates (3 s of audio each, window up to 30 s): "
        f"server {ms(live_server)}; round trip {ms(live_trip)}"
    )
    print(
        "load average (1/5/15 min): before "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.2f}" for x in load_after)
    )
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
