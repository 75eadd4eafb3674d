"""``genrekit serve``: the HTTP API, the web page and the live mode."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.cli._common import EXIT_OK, EXIT_USAGE, error, positive_int

if TYPE_CHECKING:
    from genrekit.core.errors import GenrekitError

EPILOG = """\
examples:
  genrekit serve                                  http://127.0.0.1:8000, all cores, shipped model
  genrekit serve --port 9000 --workers 2 --model my_model/
  GENREKIT_TOKEN=secret genrekit serve --host 0.0.0.0    reachable from other machines
  curl -F file=@song.mp3 http://127.0.0.1:8000/v1/predict
  curl --data-binary @song.flac 'http://127.0.0.1:8000/v1/predict?filename=song.flac&top_k=3'
  genrekit serve --db library.db                 the page also shows the library of `genrekit scan`
  genrekit serve --tags                          also deep tags: POST /v1/tags, shown on the page
  curl -F file=@song.mp3 'http://127.0.0.1:8000/v1/tags?tagger=msd,mtt&top=5'

The page is at /, the API under /v1 (predict, features, model, stream; library with --db; tags
with --tags), its docs at /docs, /healthz and /readyz for probes. Binding to a host that is
not loopback-only (every address it resolves to in 127.0.0.0/8 or ::1) needs a token (--token
or $GENREKIT_TOKEN) that every /v1 call must send as 'Authorization: Bearer TOKEN'.
Each request line is logged on stderr as JSON. Needs the serve extra:
pip install 'genrekit[serve]'.

exit status: 0 stopped (Ctrl-C or SIGTERM, after finishing the requests in progress),
2 usage error (bad model, not a catalogue, no token for a public address, port in use,
tagger weights not available),
3 the catalogue (--db) is damaged (it fails SQLite's quick_check, run at start).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit serve``."""
    from genrekit.core.parallel import cpu_count

    parser = subparsers.add_parser(
        "serve",
        help="HTTP API and web page (predict, features, live mode)",
        description="Serve genre prediction over HTTP: a JSON API, a web page and a live mode.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model folder from `genrekit train` (default: the shipped model)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=cpu_count(), metavar="N",
        help=f"worker processes for the CPU work (default: the cores, {cpu_count()})",
    )  # fmt: skip
    parser.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="catalogue of `genrekit scan`: adds the library view (/v1/library, read-only)",
    )
    parser.add_argument("--token", help="secret every /v1 call must send (default: $GENREKIT_TOKEN)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=200.0, metavar="MB", help="largest upload (default: 200)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=1200.0, metavar="S", help="longest audio (default: 1200, 20 min)"
    )
    parser.add_argument(
        "--queue", type=positive_int, default=64, metavar="N",
        help="most requests in progress at once; more get 503 with Retry-After (default: 64)",
    )  # fmt: skip
    parser.add_argument(
        "--max-streams",
        type=positive_int,
        default=8,
        metavar="N",
        help="most live streams at once (default: 8)",
    )
    parser.add_argument(
        "--detect-music",
        action="store_true",
        help="predictions also decide music / not music ('not music' verdict; needs the tagger weights)",
    )
    parser.add_argument(
        "--tags",
        action="store_true",
        help="serve the musicnn tags: /v1/tags, /v1/predict?tags=, the page (needs the tagger weights)",
    )
    limits = parser.add_argument_group("slow clients (see docs/guide/serve-limits.md)")
    limits.add_argument(
        "--upload-timeout", type=positive_number, default=30.0, metavar="S",
        help="an upload silent this long, or slower than --min-upload-rate after it, gets 408 (default: 30)",
    )  # fmt: skip
    limits.add_argument(
        "--min-upload-rate", type=positive_number, default=10.0, metavar="KB/S",
        help="slowest average upload accepted, in kB/s (default: 10)",
    )  # fmt: skip
    limits.add_argument(
        "--stream-hello-timeout", type=positive_number, default=10.0, metavar="S",
        help="seconds a live stream has to send its first message (default: 10)",
    )  # fmt: skip
    limits.add_argument(
        "--stream-idle-timeout", type=positive_number, default=60.0, metavar="S",
        help="seconds a live stream may send nothing while no update runs (default: 60)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def positive_number(text: str) -> float:
    """Parse a finite number above 0 (seconds, rates)."""
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Check the settings, load the model, bind, and serve until stopped."""
    try:
        import uvicorn

        from genrekit.serve.app import create_app, model_info
        from genrekit.serve.config import ServeConfig, is_local
        from genrekit.serve.limits import TOKEN_ENV
    except ImportError as exc:
        error(f"genrekit serve needs the serve extra ({exc.name} is missing): pip install 'genrekit[serve]'")
        return EXIT_USAGE
    import genrekit

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_local(args.host) and token is None:
        error(
            f"--host {args.host} is not loopback-only (it resolves to another address, or not at all), "
            f"so it may be reachable from other machines: give a token (--token or ${TOKEN_ENV})"
        )
        return EXIT_USAGE
    if args.max_upload_mb <= 0 or args.max_seconds <= 0:
        error("--max-upload-mb and --max-seconds must be positive")
        return EXIT_USAGE
    if args.db is not None and (problem := _catalogue_problem(args.db)):
        error(f"--db: {problem}")
        return problem.exit_status  # 3 for a damaged catalogue
    model = genrekit.load_model(args.model)
    if args.detect_music:
        from genrekit.tagger.music import default_detector

        default_detector()  # weights obtained (or a clear error) before the workers start
    taggers = _taggers() if args.tags else ()
    config = ServeConfig(
        model_dir=args.model,
        workers=args.workers,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        queue=args.queue,
        max_streams=args.max_streams,
        upload_timeout=args.upload_timeout,
        min_upload_rate=args.min_upload_rate * 1000,
        stream_hello_timeout=args.stream_hello_timeout,
        stream_idle_timeout=args.stream_idle_timeout,
        token=token,
        detect_music=args.detect_music,
        taggers=taggers,
    )
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_USAGE
    info = model_info(model)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"genrekit serve: listening on http://{shown}:{port}/ (API /v1, docs /docs); model {info['id']}, "
        f"{config.workers} worker process(es){', token required' if token else ''}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    routers = []
    if args.db is not None:
        from genrekit.serve.library import library_router

        routers.append(library_router(args.db.resolve()))
    app = create_app(config, info, routers)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, log_level="warning"))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a clean shutdown
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("genrekit serve: stopped", file=sys.stderr)
    return EXIT_OK


def _taggers() -> tuple[str, ...]:
    """Return every musicnn tagger's name, their weights obtained (or a clear error) before any worker."""
    from genrekit.cli.predict import load_taggers
    from genrekit.tagger.model import TAGGERS

    names = tuple(TAGGERS)
    load_taggers(names, quiet=False)
    return names


def _catalogue_problem(db: Path) -> GenrekitError | None:
    """Return why `db` cannot be served as a catalogue (naming the file; damaged: quick_check), or None."""
    from genrekit.core.errors import GenrekitError
    from genrekit.library.catalogue import Catalogue

    try:
        Catalogue(db, readonly=True, verify=True).close()
    except GenrekitError as exc:
        return exc
    return None


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt, as Ctrl-C is: both stop the server normally."""
    raise KeyboardInterrupt


def _bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket on `host`:`port` (IPv6 when `host` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)
