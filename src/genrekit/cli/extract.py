"""``genrekit extract``: audio files and folders -> a GTZAN feature or embedding table (CSV, Parquet)."""

from __future__ import annotations

import argparse
import sys

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    add_tagger_option,
    error,
    info,
    print_json,
    progress,
)

_EPILOG = """\
examples:
  genrekit extract gtzan/genres_original -o features_30_sec.csv
      one row per file, like the public GTZAN 30-second table
  genrekit extract gtzan/genres_original -o features_3_sec.parquet --segment-seconds 3
      ten rows of 66,149 samples per 30-s clip (blues.00000.0.wav ... .9.wav)
  genrekit extract music/ -o features.csv --resume
      continue an interrupted run: files already in features.csv are skipped
  genrekit extract my_genres/ -o mine.csv --labels any
      label each file by its folder (my_genres/folk/..., my_genres/chiptune/...),
      ready for `genrekit train --data mine.csv --labels any`
  genrekit extract gtzan/genres_original -o aug.csv --segment-seconds 3 --augment pitch,noise
      also the segments of augmented versions of every clip (blues.00000.pitch+2.3.wav ...)
  genrekit extract song.mp3 -o song.csv --format json
  genrekit extract my_genres/ -o emb.csv --embeddings --labels any
      the musicnn MSD tagger's 200-d embedding of each file (msd_emb_000..199),
      ready for `genrekit train --data emb.csv --labels any --model logreg`
  genrekit extract my_genres/ -o emb2.csv --embeddings --tagger msd,mtt
      both taggers' embeddings side by side (msd_emb_*, then mtt_emb_*)

Folders are searched recursively for audio files (wav flac ogg oga opus mp3 aiff
au; m4a aac mp4 wma ... need the ffmpeg program). A file's label is the name of
the folder holding it when that is a GTZAN genre (blues/, rock/, ...), else empty;
with --labels any, whatever that folder's name is.
The filename column holds the file's real name (blues.00000.flac stays .flac);
files that share a name get their path below the common folder instead.

--augment adds rows of altered versions of each file (after its own rows): pitch
(-2 and +2 semitones, librosa.effects.pitch_shift), stretch (rates 0.9 and 1.1,
librosa.effects.time_stretch), noise (white noise at 20 dB SNR, seeded by the file
name). They are named <stem>.pitch+2<ext>, .pitch-2, .stretch0.9, .stretch1.1,
.noise20db, so every split of train/reproduce keeps them with their source clip.

Each finished file is committed at once to OUT.progress.db (SQLite), the record
--resume reads: a run killed at any moment loses only the files in flight. The
table is written atomically at the end, also on Ctrl-C; a run that extracts every
file removes OUT.progress.db (resuming a complete table matches rows by file name).

--embeddings writes, instead of the 57 features, one row per file of the file-level
embedding of each --tagger (the mean of its 3-s patch embeddings, as `genrekit tags`
computes them; weights obtained as `genrekit tags` does, or from --weights). Every
`genrekit train` model learns from such a table; a model trained on it records its
columns, and genrekit refuses to predict audio with it (predict computes the 57 features).

exit status: 0 all files extracted, 1 some files failed (each named on stderr),
2 usage error, no input files or nothing extracted, 130 interrupted.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit extract``."""
    parser = subparsers.add_parser(
        "extract",
        help="audio files -> GTZAN feature table or tagger embedding table (CSV/Parquet)",
        description=(
            "Compute the 57 GTZAN features (or, with --embeddings, pretrained tagger embeddings)\n"
            "of audio files into a table (CSV or Parquet)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files and folders")
    parser.add_argument(
        "-o", "--out", required=True, metavar="OUT", help="output table; .csv or .parquet picks the format"
    )
    parser.add_argument(
        "--segment-seconds",
        type=_segment_seconds,
        metavar="S",
        help="one row per S-second segment instead of per file (3: the public 3-second table)",
    )
    parser.add_argument(
        "--augment",
        type=_augmentations,
        default=(),
        metavar="A,B",
        help="also rows of augmented versions of each file: pitch, stretch, noise (see below)",
    )
    add_jobs_option(parser)
    parser.add_argument(
        "--resume", action="store_true", help="keep the files already in OUT and extract only the rest"
    )
    parser.add_argument(
        "--labels",
        default="gtzan",
        metavar="SPEC",
        help=(
            "which parent-folder names become the label: 'gtzan' (the ten GTZAN genres, default), "
            "'any' (every folder name: your own genre folders) or a comma list such as 'folk,chiptune'"
        ),
    )
    parser.add_argument(
        "--engine",
        choices=("fast", "librosa"),
        default="fast",
        help="fast (default) or the plain librosa recipe (slow, the reference)",
    )
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="write the musicnn tagger embeddings of each file instead of the 57 features",
    )
    add_tagger_option(parser, "with --embeddings: comma-separated taggers, msd, mtt (default: msd)")
    parser.add_argument(
        "--weights",
        metavar="W",
        help="with --embeddings: musicnn 0.1.0 wheel, package folder or checkpoint (offline use)",
    )
    add_format_option(parser)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary unless failures"
    )
    parser.set_defaults(func=run)


def _segment_seconds(text: str) -> float:
    """Parse a segment duration that holds at least one sample at 22,050 Hz."""
    from genrekit.audio.window import segment_length

    value = float(text)
    try:
        segment_length(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _augmentations(text: str) -> tuple[str, ...]:
    """Parse a comma list of augmentation names."""
    from genrekit.audio.augment import parse_augmentations

    try:
        return parse_augmentations(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    """Extract, report failures as they happen, summarize; return the exit status."""
    from genrekit.datasets.table import allowed_labels
    from genrekit.extraction.extract import extract

    if not args.embeddings and (args.tagger or args.weights):
        error(f"{'--tagger' if args.tagger else '--weights'} applies to --embeddings only")
        return EXIT_USAGE
    taggers = (args.tagger or ("msd",)) if args.embeddings else ()
    _say_if_downloading(taggers, args)
    result = extract(
        args.paths,
        out=args.out,
        segment_seconds=args.segment_seconds,
        jobs=args.jobs,
        resume=args.resume,
        engine=args.engine,
        genres=allowed_labels(args.labels),
        augment=args.augment,
        embeddings=taggers,
        weights=args.weights,
        progress=None if args.quiet else lambda items, total: progress(items, total, "extract", "file"),
        on_failure=lambda path, reason: error(f"{path}: {reason}"),
    )
    n_ok = len(result.extracted) + len(result.resumed)
    if n_ok + len(result.failures) == 0:
        error("no audio files found in " + ", ".join(args.paths))
        return EXIT_USAGE
    status = EXIT_OK if not result.failures else EXIT_PARTIAL if n_ok else EXIT_USAGE
    if args.format == "json":
        print_json(
            {
                "out": str(args.out) if len(result.table) else None,
                "extracted": len(result.extracted),
                "resumed": len(result.resumed),
                "failed": len(result.failures),
                "rows": len(result.table),
                "failures": [{"path": str(path), "reason": reason} for path, reason in result.failures],
                "exit_status": status,
            }
        )
    elif result.failures or not args.quiet:
        _summary(result, args.out)
    return status


def _say_if_downloading(taggers: tuple[str, ...], args: argparse.Namespace) -> None:
    """Say that the tagger weights are about to be downloaded, when they are not in the cache."""
    from genrekit.tagger.weights import is_cached

    if taggers and args.weights is None and not all(is_cached(name) for name in taggers):
        info("tagger weights not in the cache yet: downloading musicnn 0.1.0 with pip (once)", args.quiet)


def _summary(result, out: str) -> None:
    """Print the human summary: counts, the output, and every failure again."""
    resumed = f" ({len(result.resumed)} already done)" if result.resumed else ""
    written = f"; {len(result.table)} rows in {out}" if len(result.table) else "; nothing written"
    failed = f", {len(result.failures)} failed:" if result.failures else ""
    n_files = len(result.extracted)
    lines = [f"extracted {n_files} file{'s' * (n_files != 1)}{resumed}{written}{failed}"]
    lines += [f"  {path}: {reason}" for path, reason in result.failures]
    print("\n".join(lines), file=sys.stdout)
