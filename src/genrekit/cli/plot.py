"""``genrekit plot``: the spectrogram figure of an audio file (mel, harmonic/percussive, chromagram)."""

from __future__ import annotations

import argparse
from pathlib import Path

from genrekit.cli._common import EXIT_OK, info

_EPILOG = """\
examples:
  genrekit plot song.mp3 -o song.png
  genrekit plot blues.00000.wav -o blues.png --title "BLUES"

The figure shows the first 30 s of the file, decoded to mono at 22,050 Hz as genrekit
reads every input: the mel spectrogram, its harmonic and percussive parts (the HPSS
behind the features harmony and perceptr) and the chromagram, time in seconds and
frequency in Hz. `genrekit reproduce --audio DIR` puts one per genre into its report.

exit status: 0 figure written, 2 usage error or a file that cannot be decoded.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit plot``."""
    parser = subparsers.add_parser(
        "plot",
        help="spectrogram figure of an audio file (PNG)",
        description="Draw the mel spectrogram, harmonic/percussive split and chromagram of an audio file.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="audio file (any format genrekit decodes)")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT.png", help="PNG to write")
    parser.add_argument("--title", help="figure title (default: the file name)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no status line on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw and write the figure atomically; return the exit status."""
    from genrekit.core.atomic import atomic_write_bytes
    from genrekit.evaluation.figures import spectrogram_png

    atomic_write_bytes(args.out, spectrogram_png(args.file, args.title))
    info(f"wrote {args.out}", args.quiet)
    return EXIT_OK
