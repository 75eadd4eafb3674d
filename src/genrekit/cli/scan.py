"""``genrekit scan``: bring a library catalogue (SQLite) up to date, locally or on a Dask cluster."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from genrekit.cli import library_check
from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    add_tagger_option,
    error,
    positive_int,
    print_json,
)

_EPILOG = """\
examples:
  genrekit scan ~/Music --db library.db
      analyse every audio file once; a second run only stats the unchanged files
  genrekit scan ~/Music --db library.db --segment-seconds 3
      also store the features of each 3-s segment (for `library export --segments`)
  genrekit scan ~/Music --db library.db --model my_model/
      files predicted by another model are re-classified from their stored
      features (nothing is decoded again)
  genrekit scan /shared/music --db library.db --dask tcp://scheduler:8786
      analyse on a running Dask cluster (its workers must see the same paths)
  genrekit scan ~/Music --db library.db --dask local:4
      on a local Dask cluster of 4 worker processes
  genrekit scan s3://bucket/music --db library.db --dask tcp://scheduler:8786
      a library in object storage (needs genrekit[cloud]); the workers read the
      objects themselves; FSSPEC_S3_ENDPOINT_URL=http://host:9000 for MinIO & co
  genrekit scan ~/Music --db library.db --timeout 120
      a file still running after 120 s is stopped (its process recycled) and failed
  genrekit scan ~/Music --db library.db --tags
      also store the musicnn tags and 200-d embeddings of both taggers (for
      `library similar --space embedding`, `library learn --features embedding`);
      files already scanned get them without their features being computed again
  genrekit scan ~/Music --db library.db --tags --tagger msd --detect-music
      one tagger, and the music detector: speech, noise, silence are "not music"

Per file the catalogue keeps its path, size, modification time, duration, the
57 features of each 30-s window (and of each segment when asked), the model's
prediction (genre, "uncertain" or "not music", probabilities, novelty, model id) or
the error; with --tags each tagger's file-level tag probabilities and embedding;
with --detect-music the music probability and verdict (the stored genre follows it).
The tagger weights (musicnn 0.1.0, see `genrekit tags --about`) are obtained once,
before any file, and each file is still decoded once.
New and changed files are analysed, unchanged ones only stat'ed (a URL library
only listed), vanished ones marked gone; failed files (timed-out ones included)
are retried with --retry-failed. Each file is
committed in its own transaction: a run killed at any moment loses only the
files in flight, and the next run goes on from there.
Query the catalogue with `genrekit library stats|export|tag|similar`.

exit status: 0 all files analysed, 1 some files failed or were left for the
next run, 2 usage error, no such path, or --db names an SQLite file that is not a
genrekit catalogue, 3 the catalogue is damaged (SQLite quick_check, run first) or the
disk is full, 4 the Dask cluster was lost (the scheduler stopped answering), 130
interrupted, 143 terminated (SIGTERM); committed files are always kept.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit scan``."""
    from genrekit.library.scan import DEFAULT_TIMEOUT
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    parser = subparsers.add_parser(
        "scan",
        help="audio library -> catalogue (SQLite; incremental, crash-safe, Dask scale-out)",
        description="Scan audio files and folders into a library catalogue (an SQLite file).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="audio files and folders, or URLs (s3://bucket/music: needs genrekit[cloud])",
    )
    parser.add_argument(
        "--db", required=True, type=Path, metavar="DB", help="the catalogue (created if missing)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model folder from `genrekit train` (default: the shipped model)",
    )
    parser.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="also store the features of each S-second segment (3: the public 3-second table)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"top probability below which a file is stored as 'uncertain' "
        f"(default: {DEFAULT_MIN_CONFIDENCE})",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="analyse again the files that failed before"
    )
    parser.add_argument(
        "--tags",
        action="store_true",
        help="also store the musicnn tags and embeddings of each file (the taggers of --tagger)",
    )
    add_tagger_option(
        parser, "comma-separated taggers for --tags: msd, mtt (default: msd,mtt)", ("msd", "mtt")
    )
    parser.add_argument(
        "--detect-music",
        action="store_true",
        help="also store each file's music probability; speech, noise, silence: 'not music'",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="W",
        help="musicnn 0.1.0 wheel, package folder or checkpoint for the taggers (offline use)",
    )
    add_jobs_option(parser)
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="analyse on a Dask cluster: a scheduler address (tcp://host:8786) or local:N "
        "(needs genrekit[dask])",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds one file may take on a worker before it is stopped and reported failed "
        f"(default: {DEFAULT_TIMEOUT:g}; 0: no limit; nan and inf are refused)",
    )
    parser.add_argument(
        "--batch-files", type=positive_int, default=8, metavar="N", help="files per Dask task (default: 8)"
    )
    add_format_option(parser)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary unless failures"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Scan, report failures as they happen, summarize; return the exit status."""
    from genrekit.audio.window import segment_length
    from genrekit.library.catalogue import Catalogue
    from genrekit.library.scan import run_local, scan
    from genrekit.prediction.model import load_model

    if args.segment_seconds is not None:
        try:
            segment_length(args.segment_seconds)
        except ValueError as exc:
            error(f"--segment-seconds: {exc}")
            return EXIT_USAGE
    if not math.isfinite(args.timeout) or args.timeout < 0:
        error(f"--timeout: expected finite seconds >= 0 (0: no limit), got {args.timeout:g}")
        return EXIT_USAGE
    timeout = args.timeout or None
    model = load_model(args.model)
    if args.dask:
        from genrekit.library.cluster import run_dask

        runner = run_dask(args.dask, args.segment_seconds, args.batch_files, timeout)
    else:
        runner = run_local(args.jobs, args.segment_seconds, timeout)
    from tqdm.auto import tqdm

    bar = tqdm(desc="scan", unit="file", disable=args.quiet or not sys.stderr.isatty(), dynamic_ncols=True)

    def stored(analysis) -> None:
        if analysis.error is not None:
            error(analysis.error)
        bar.update(1)

    with Catalogue(args.db, verify=True) as catalogue:
        report = scan(
            args.paths,
            catalogue,
            model,
            runner,
            segment_seconds=args.segment_seconds,
            retry_failed=args.retry_failed,
            min_confidence=args.min_confidence,
            on_stored=stored,
            taggers=args.tagger if args.tags else (),
            detect_music=args.detect_music,
            tagger_weights=args.weights,
        )
        shift = library_check.catalogue_report(catalogue, model, args.model)
    bar.close()
    for path, reason in report.lost:
        error(f"{path}: {reason} (left for the next scan)")
    status = EXIT_PARTIAL if report.failed or report.lost else EXIT_OK
    summary = {
        "db": str(args.db),
        "new": report.new,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "gone": report.gone,
        "retried": report.retried,
        "tagged": report.tagged,
        "analysed": report.analysed,
        "failed": len(report.failed),
        "lost": len(report.lost),
        "reclassified": report.reclassified,
        "failures": [{"path": path, "reason": reason} for path, reason in report.failed + report.lost],
        "exit_status": status,
        "shift": None if shift is None else shift.to_dict(),
    }
    if args.format == "json":
        print_json(summary)
    elif report.failed or report.lost or not args.quiet:
        print(
            f"{report.analysed} analysed ({report.new} new, {report.changed} changed, "
            f"{report.retried} retried), {report.tagged} tagged, "
            f"{len(report.failed)} failed, {len(report.lost)} left for the next scan; "
            f"{report.unchanged} unchanged, {report.gone} gone, {report.reclassified} re-classified; "
            f"catalogue {args.db}",
            file=sys.stdout,
        )
        if shift is not None:
            print(shift.summary(), file=sys.stdout)
    return status
