"""``genrekit tags``: tags, taggrams and moods of audio files from pretrained musicnn taggers."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_quiet_option,
    add_tagger_option,
    error,
    info,
    joined_tags,
    positive_int,
    print_json,
    progress,
)

EPILOG = """\
examples:
  genrekit tags song.mp3                        top 5 Million Song Dataset tags
  genrekit tags album/ --tagger msd,mtt --top 10
  genrekit tags song.flac --taggram             tags per 3-s patch as well
  genrekit tags ~/Music --format json > tags.json
  genrekit tags song.mp3 --weights musicnn-0.1.0-py3-none-any.whl   offline machine
  genrekit tags --about                         models, licence, training data

Taggers: msd (Million Song Dataset / Last.fm tags: genres, moods, eras) and mtt
(MagnaTagATune tags: genres, instruments, voice, tempo). A file is cut into 2.99-s
patches (the models' input); its tags are the mean over patches. Files under 3 s are
repeated to fill one patch.

The weights (musicnn 0.1.0, ISC licence) are not shipped: the first run downloads
them with `python -m pip download musicnn==0.1.0 --no-deps` (your pip settings apply)
or reads the wheel/folder/checkpoint given with --weights, checks their SHA-256 and
keeps a converted copy in the user cache ($GENREKIT_TAGGER_DIR overrides the folder).

exit status: 0 all files tagged, 1 some files failed, 2 usage error, weights not
available or no audio file found.
"""

CSV_FIELDS: tuple[str, ...] = ("file", "tagger", "patch", "start_s", "rank", "tag", "probability", "error")
"""Columns of ``--format csv``: one row per tag (file level: empty patch), or per failed file."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit tags``."""
    parser = subparsers.add_parser(
        "tags",
        help="music tags (genres, moods, instruments) from pretrained deep taggers",
        description="Tag audio files with pretrained musicnn taggers (NumPy; no TensorFlow).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="audio files or folders")
    add_format_option(parser, ("table", "json", "csv"))
    parser.add_argument(
        "--top", type=positive_int, default=5, metavar="N", help="tags per tagger (default: 5)"
    )
    add_tagger_option(parser, "comma-separated taggers: msd, mtt (default: msd)", ("msd",))
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="W",
        help="musicnn 0.1.0 wheel, package folder or checkpoint (offline use)",
    )
    parser.add_argument("--taggram", action="store_true", help="also give the top tags of every 3-s patch")
    parser.add_argument(
        "--about", action="store_true", help="print the models' origin and licence, then exit"
    )
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tag the files and print the result; return the exit status."""
    from genrekit.audio.decode import audio_files
    from genrekit.tagger import ABOUT, Tagger, tag_file
    from genrekit.tagger.weights import is_cached

    if args.about:
        print(ABOUT, end="")
        return EXIT_OK
    if not args.paths:
        error("no PATH given (see genrekit tags --help)")
        return EXIT_USAGE
    files = audio_files(args.paths)
    if not files:
        error("no audio files found in " + ", ".join(map(str, args.paths)))
        return EXIT_USAGE
    if args.weights is None and not all(is_cached(name) for name in args.tagger):
        info("tagger weights not in the cache yet: downloading musicnn 0.1.0 with pip (once)", args.quiet)
    taggers = [Tagger(name, args.weights) for name in args.tagger]
    writer = _Writer(args)
    failed = 0
    for path in progress(files, len(files), "tags", "file", quiet=args.quiet):
        try:
            results = tag_file(path, taggers)
        except (OSError, ValueError) as exc:  # AudioError is a ValueError
            error(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            writer.failed(path, str(exc))
            failed += 1
            continue
        writer.row(path, [results[t.name] for t in taggers])
    writer.close()
    info(f"tagged {len(files) - failed} of {len(files)} files, {failed} failed", args.quiet)
    return EXIT_PARTIAL if failed else EXIT_OK


class _Writer:
    """Print tags on stdout as a table, CSV (both streamed) or JSON (at the end)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.records: list[dict] = []
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
        if self.csv is not None:
            self.csv.writerow(CSV_FIELDS)

    def row(self, path: Path, results: list) -> None:
        """Output one file's tags."""
        from genrekit.tagger import tags_record

        top, taggram = self.args.top, self.args.taggram
        if self.args.format == "json":
            self.records.append(tags_record(path, results, top, taggram))
        elif self.csv is not None:
            for result in results:
                for rank, (tag, p) in enumerate(result.top(top), 1):
                    self.csv.writerow([path, result.tagger, "", "", rank, tag, f"{p:.4f}", ""])
                for i, (start, tags) in enumerate(result.patch_tops(top) if taggram else []):
                    for rank, (tag, p) in enumerate(tags, 1):
                        self.csv.writerow([path, result.tagger, i, f"{start:.3f}", rank, tag, f"{p:.4f}", ""])
        else:
            print(path)
            for result in results:
                print(f"  {result.tagger}  {joined_tags(result.top(top))}")
                for start, tags in result.patch_tops(top) if taggram else []:
                    print(f"    {_clock(start)}  {joined_tags(tags)}")

    def failed(self, path: Path, message: str) -> None:
        """Output a file that could not be tagged (JSON and CSV keep it as a record)."""
        if self.args.format == "json":
            self.records.append({"file": str(path), "error": message})
        elif self.csv is not None:
            self.csv.writerow([path, "", "", "", "", "", "", message])

    def close(self) -> None:
        """Finish the output (prints the JSON document)."""
        if self.args.format == "json":
            from genrekit.tagger import TAGGERS

            taggers = [
                {"name": n, "model": TAGGERS[n][0], "labels": list(TAGGERS[n][1])} for n in self.args.tagger
            ]
            print_json({"taggers": taggers, "files": self.records})


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:05.2f}"
