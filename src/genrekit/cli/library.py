"""``genrekit library``: use a catalogue made by ``genrekit scan`` (stats, export, tag, similar)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.cli import library_check
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
from genrekit.cli.library_learn import add_tag_options, plan_learned, register_actions

_EXAMPLES = f"""\
  genrekit library stats --db library.db
      files, hours, files per genre, uncertain, failed, gone
  genrekit library export --db library.db -o table.csv
      the GTZAN feature table of the stored 30-s windows, ready for `genrekit train`
  genrekit library export --db library.db -o table.parquet --segments --labels any
      one row per stored segment (scan --segment-seconds 3); any folder name is a label
  genrekit library tag --db library.db --dry-run
      every file's `existing -> proposed` genre; nothing written
  genrekit library tag --db library.db --dry-run --plan plan.json
      the same, saved as a plan; `--apply plan.json` later writes exactly that
  genrekit library tag --db library.db
      fill in the missing genre tags (atomic, verified, journalled in the catalogue)
  genrekit library tag --db library.db --undo --since 2h
      put back the tags genrekit changed in the last two hours
  genrekit library check --db library.db
      is the collection unlike the model's training music? (tag refuses then, unless --force)
  genrekit library similar ~/Music/song.mp3 --db library.db -n 10
      the 10 nearest tracks in the standardised feature space (a playlist)
  genrekit library similar ~/Music/song.mp3 --db library.db --space embedding
      nearest by cosine between musicnn embeddings (needs `genrekit scan --tags`)
{LEARN_EPILOG}"""
"""Each example: the command (its third word names the action), then what it does."""

_EXIT = """\
Existing genre tags are never replaced unless --overwrite is given. Every file is
counted: written, kept (has a genre), same, uncertain, not music, failed.

exit status: 0 done, 1 some files could not be tagged (or their tags read), 2 usage
error, no such catalogue or file, too few tagged files to learn, 3 the catalogue is
damaged or the disk full. Reading commands (stats, export, similar) open the catalogue
read-only, also in a read-only folder.
"""


def epilog(action: str | None = None) -> str:
    """Return the examples of `action` (all actions' when None), then the tag rule and exit status."""
    lines = _EXAMPLES.splitlines()
    pairs = [lines[i : i + 2] for i in range(0, len(lines), 2)]
    chosen = [pair for pair in pairs if action is None or pair[0].split()[2] == action]
    return "examples:\n" + "".join(f"{command}\n{what}\n" for command, what in chosen) + "\n" + _EXIT


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit library`` and its actions."""
    parser = subparsers.add_parser(
        "library",
        help="use a library catalogue: stats, export, tag, similar, learn, audit, suggest, check",
        description="Query and use a library catalogue made by `genrekit scan`.",
        epilog=epilog(),
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
    add_tag_options(tag)
    add_format_option(tag)
    similar = _action(
        actions, "similar", "nearest tracks of a file (standardised features or embeddings)", run_similar
    )
    similar.add_argument("file", metavar="FILE", help="a file (or URL) of the catalogue")
    similar.add_argument("-n", type=positive_int, default=10, metavar="N", help="how many (default: 10)")
    similar.add_argument(
        "--space",
        choices=("features", "embedding"),
        default="features",
        help="features: the 57 standardised features (Euclidean); embedding: the musicnn embeddings "
        "stored by `scan --tags` (cosine distance) (default: features)",
    )
    add_format_option(similar)
    register_actions(actions, _action)
    library_check.register(actions)


def _action(actions, name: str, text: str, func) -> argparse.ArgumentParser:
    """Add one action with its ``--db`` option."""
    parser = actions.add_parser(
        name,
        help=text,
        description=text[0].upper() + text[1:] + ".",
        epilog=epilog(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", required=True, type=Path, metavar="DB", help="the catalogue (genrekit scan)")
    parser.set_defaults(func=func)
    return parser


def _open(args: argparse.Namespace, write: bool = False):
    """Open the catalogue (it must exist and pass SQLite's quick check), read-only unless `write`.

    Read-only, it opens in a read-only folder too (see :mod:`genrekit.library.catalogue`).
    """
    from genrekit.library.catalogue import Catalogue

    return Catalogue(args.db, create=False, readonly=not write, verify=True)


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
    if counts["taggers"]:
        tagged = ", ".join(f"{name} {n}" for name, n in counts["taggers"].items())
        print(f"files with musicnn tags and embeddings: {tagged}")
    if counts["music_checked"]:
        print(f"music detector: {counts['not_music']} of {counts['music_checked']} files not music")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """Write the feature table of the stored windows or segments."""
    from genrekit.datasets.table import allowed_labels, table_format, write_table
    from genrekit.library.query import table

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
    """Tag files (or show, save, apply a plan, undo): existing genres kept unless ``--overwrite``."""
    from genrekit.library import tagging
    from genrekit.library.catalogue import Catalogue

    if args.undo:
        since = None if args.since is None else tagging.parse_since(args.since)
        with Catalogue(args.db, create=False) as catalogue:
            done = tagging.undo(catalogue, since)
        return _report_tags(args, done, dry_run=False, verb="undo")
    if args.apply is not None:
        planned = tagging.load_plan(args.apply)
    elif args.model == "learned":
        planned = plan_learned(args)
    else:
        from genrekit.library.tags import tag_namer

        with _open(args) as catalogue:
            if library_check.tag_refusal(catalogue, args.force or args.dry_run):
                return EXIT_USAGE
            planned = tagging.catalogue_proposals(catalogue, tag_namer(args.tag_names), args.overwrite)
    if args.dry_run or args.plan is not None:
        if args.plan is not None:
            tagging.save_plan(args.plan, planned, {"db": str(args.db), "model": args.model})
        return _report_tags(args, planned, dry_run=True)
    run = tagging.new_run()
    with Catalogue(args.db, create=False) as catalogue:
        tagging.remove_stale_temps(catalogue)
        done = [tagging.execute(proposal, catalogue, run) for proposal in planned]
    return _report_tags(args, done, dry_run=False)


def _report_tags(args: argparse.Namespace, proposals: list, dry_run: bool, verb: str = "tag") -> int:
    """Print every file's ``existing -> proposed`` (or the JSON) and the counts; return the exit status."""
    from genrekit.library.tagging import count, describe, summary

    counts = count(proposals)
    if args.format == "json":
        files = [p.to_dict() for p in proposals]
        print_json(
            {"action": verb, "dry_run": dry_run, "model": args.model, "counts": counts, "files": files}
        )
    else:
        for proposal in proposals:
            print(describe(proposal))
    for proposal in proposals:
        if proposal.action == "failed":
            error(proposal.reason)
    print(("undo: " if verb == "undo" else "") + summary(counts, dry_run), file=sys.stderr)
    return EXIT_PARTIAL if counts["failed"] else EXIT_OK


def run_similar(args: argparse.Namespace) -> int:
    """Print the nearest tracks of a file."""
    from genrekit.library.query import file_key, similar

    with _open(args) as catalogue:
        near = similar(catalogue, args.file, args.n, args.space)
    if args.format == "json":
        print_json({"file": file_key(args.file), "similar": near})
        return EXIT_OK
    for item in near:
        print(f"{item['distance']:7.3f}  {item['genre'] or '-':<10} {item['path']}")
    return EXIT_OK
