"""``genrekit data``: fetch the public data genrekit uses into the cache, and list what is cached."""

from __future__ import annotations

import argparse

from genrekit.cli._common import (
    EXIT_OK,
    add_format_option,
    add_quiet_option,
    info,
    print_json,
    progress_bar,
)

_EPILOG = """\
examples:
  genrekit data fetch                  download the GTZAN 30-second table (once) and verify it
  genrekit data list                   what is cached, where, and whether it is verified
  GENREKIT_DATA_DIR=/data/genrekit genrekit data fetch      another cache folder

The cache folder is the platform's user cache folder (~/.cache/genrekit on Linux) unless
GENREKIT_DATA_DIR names another. Mirrors are tried in order (GENREKIT_DATA_MIRRORS, URLs
separated by spaces, replaces them); a download is kept only when its SHA-256 matches,
so the cache never holds a partial or modified copy. `genrekit reproduce` and
`genrekit train` without --data use the cached table and fetch it when needed.

exit status: 0 done, 2 no mirror delivered a verified copy (offline?: pass --data to the
other commands instead).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit data`` with its ``fetch`` and ``list`` actions."""
    parser = subparsers.add_parser(
        "data",
        help="download the GTZAN feature table into the cache, list the cache",
        description="Fetch the public data genrekit uses (verified by SHA-256) and list the cache.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("fetch", "list"), help="fetch: download if missing; list: show")
    add_format_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fetch or list; return the exit status."""
    from genrekit.datasets.fetch import REMOTE_FILES, cache_listing, fetch, is_cached

    if args.action == "fetch":
        for remote in REMOTE_FILES.values():
            if not is_cached(remote):
                info(f"downloading {remote.filename} ({remote.size / 1e6:.1f} MB)", args.quiet)
                bar = progress_bar("download", remote.size, unit="B", quiet=args.quiet)
                fetch(remote, progressbar=bar)
    rows = cache_listing()
    if args.format == "json":
        print_json(rows)
        return EXIT_OK
    for row in rows:
        size = "" if row["size"] is None else f", {row['size']:,} bytes"
        print(f"{row['name']}: {row['status']}{size}\n  {row['path']}\n  sha256 {row['sha256']}")
    return EXIT_OK
