"""``genrekit library``: use a catalogue made by ``genrekit scan`` (stats, export, tag, similar)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    error,
    positive_int,
    print_json,
)
from genrekit.cli.library_learn import EPILOG as LEARN_EPILOG
from genrekit.cli.library_learn import add_tag_options, register_actions, run_tag_learned

_EPILOG = f"""\
examples:
  genrekit library stats --db library.db
      files, hours, files per genre, uncertain, failed, gone
  genrekit library export --db library.db -o table.csv
      the GTZAN feature table of the stored 30-s windows, ready for `genrekit train`
  genrekit library export --db library.db -o table.parquet --segments --labels any
      one row per stored segment (scan --segment-seconds 3); any folder name is a label
  genrekit library tag --db library.db --dry-run
      show the genre tags the catalogue's confident predictions would write
  genrekit library similar ~/Music/song.mp3 --db library.db -n 10
      the 10 nearest tracks in the standardised feature space (a playlist)
{LEARN_EPILOG}
Existing genre tags are never replaced unless --overwrite is given.

exit status: 0 done, 1 some files could not be tagged (or their tags read), 2 usage
error, no such catalogue or file, too few tagged files to learn.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit library`` and its actions."""
    parser = subparsers.add_parser(
        "library",
        help="use a library catalogue: stats, export, tag, similar, learn, audit, suggest",
        description="Query and use a library catalogue made by `genrekit scan`.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = _action(actions, "stats", "files, hours, per genre, uncertain, failed", run_stats)
    add_format_option(stats)
    export = _action(
        actions, "export", "the GTZAN feature table of the stored windows or segments", run_export
    )
    export.add_argument("-o", "--out", required=True, metavar="OUT", help="table, .csv or .parquet")
    export.add_argument("--segments", action="store_true", help="segment rows (scan --segment-seconds)")
    export.add_argument(
        "--labels", default="gtzan", metavar="SPEC", help="folder names taken as labels: gtzan, any or a list"
    )
    tag = _action(actions, "tag", "write the stored genres into the files' genre tags", run_tag)
    tag.add_argument("--dry-run", action="store_true", help="show the tags it would write, write nothing")
    add_tag_options(tag)
    add_format_option(tag)
    similar = _action(actions, "similar", "nearest tracks of a file (standardised features)", run_similar)
    similar.add_argument("file", metavar="FILE", help="a file (or URL) of the catalogue")
    similar.add_argument("-n", type=positive_int, default=10, metavar="N", help="how many (default: 10)")
    add_format_option(similar)
    register_actions(actions, _action)


def _action(actions, name: str, text: str, func) -> argparse.ArgumentParser:
    """Add one action with its ``--db`` option."""
    parser = actions.add_parser(
        name,
        help=text,
        description=text[0].upper() + text[1:] + ".",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", required=True, type=Path, metavar="DB", help="the catalogue (genrekit scan)")
    parser.set_defaults(func=func)
    return parser


def _open(args: argparse.Namespace):
    """Open the catalogue read for use (it must exist)."""
    from genrekit.library.catalogue import Catalogue

    return Catalogue(args.db, create=False)


def run_stats(args: argparse.Namespace) -> int:
    """Print the catalogue's counts."""
    from genrekit.library.query import stats

    with _open(args) as catalogue:
        counts = stats(catalogue)
    if args.format == "json":
        print_json(counts)
        return EXIT_OK
    print(
        f"{counts['files']} files analysed ({counts['hours']:.1f} h), {counts['uncertain']} uncertain, "
        f"{counts['failed']} failed, {counts['gone']} gone"
    )
    for genre, n in counts["genres"].items():
        print(f"  {genre:<10} {n:>8}")
    if len(counts["models"]) > 1:
        print(f"predictions from {len(counts['models'])} models; run `genrekit scan` to re-classify")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """Write the feature table of the stored windows or segments."""
    from genrekit.library.query import table
    from genrekit.table import allowed_labels, table_format, write_table

    table_format(args.out)
    with _open(args) as catalogue:
        rows = table(catalogue, segments=args.segments, genres=allowed_labels(args.labels))
    if rows.empty:
        error(f"{args.db}: no stored {'segments' if args.segments else 'windows'} to export")
        return EXIT_USAGE
    write_table(rows, args.out)
    print(f"{len(rows)} rows written to {args.out}")
    return EXIT_OK


def run_tag(args: argparse.Namespace) -> int:
    """Write (or show) the genre tag of every file with a confident genre; existing tags kept unless asked."""
    from genrekit.library.tags import TagError, read_genres, write_genre

    if args.model == "learned":
        return run_tag_learned(args)
    from genrekit.library.remote import is_url

    changes, failed, remote = [], 0, 0
    with _open(args) as catalogue:
        for path, prediction in list(catalogue.predictions()):
            if prediction.genre in ("uncertain", "not music"):  # verdicts, never written as tags
                continue
            if is_url(path):  # s3://...: the object cannot be tagged in place
                remote += 1
                continue
            try:
                if not args.overwrite and read_genres(path):
                    continue
                change = write_genre(path, prediction.genre, dry_run=args.dry_run)
            except TagError as exc:
                error(str(exc))
                failed += 1
                continue
            if change.written:  # the audio is the same: keep the file unchanged for the next scan
                stat = os.stat(path)
                catalogue.restat(path, stat.st_size, stat.st_mtime_ns)
            changes.append(
                {"path": path, "old": list(change.old), "new": change.new, "written": change.written}
            )
    if remote:
        error(f"{remote} files behind URLs skipped: their tags cannot be written in place")
    if args.format == "json":
        print_json({"dry_run": args.dry_run, "files": changes, "failed": failed, "skipped_urls": remote})
    else:
        verb = "would tag" if args.dry_run else "tagged"
        for change in changes:
            if tuple(change["old"]) != (change["new"],):
                print(f"{verb} {change['path']}: {'/'.join(change['old']) or 'none'} -> {change['new']}")
        print(f"{len(changes)} files with a confident genre, {failed} could not be tagged", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def run_similar(args: argparse.Namespace) -> int:
    """Print the nearest tracks of a file."""
    from genrekit.library.query import file_key, similar

    with _open(args) as catalogue:
        near = similar(catalogue, args.file, args.n)
    if args.format == "json":
        print_json({"file": file_key(args.file), "similar": near})
        return EXIT_OK
    for item in near:
        print(f"{item['distance']:7.3f}  {item['genre'] or '-':<10} {item['path']}")
    return EXIT_OK
