"""``genrekit extract`` (placeholder until the stage lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser("extract", help="(not yet available)")
    parser.set_defaults(func=lambda args: 2)
