"""The ``genrekit`` command line: one subcommand per stage of the pipeline.

Exit status
-----------
0
    Everything asked for was done.
1
    The run finished but some inputs failed (each is named on stderr and in the summary).
2
    Usage error or invalid input: nothing, or nothing useful, was done.
3
    A catalogue is damaged (fails SQLite's integrity check) or cannot be written (disk full, I/O error).
4
    The Dask cluster was lost during a scan (its scheduler stopped answering); committed files are kept.
130
    Interrupted (Ctrl-C); outputs already written are complete and ``--resume`` continues.
143
    Terminated (SIGTERM): stopped as on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genrekit.cli._common import EXIT_USAGE, error, interrupted, stop_on_sigterm, torch_missing
from genrekit.core.errors import GenrekitError, SettingsError
from genrekit.core.version import __version__

# Subcommand modules, in the order of the pipeline; each defines ``register(subparsers)``.
_COMMANDS: tuple[str, ...] = ("extract", "train", "reproduce", "predict", "scan", "library", "model", "serve")
_COMMANDS += ("data", "evaluate", "plot", "tags")  # fetch data; judge a model; draw audio; deep tags


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered, or only `command`.

    Parameters
    ----------
    command : str, optional
        The subcommand about to run: only its module is imported, so a command starts
        without the imports of the others (``predict`` without scikit-learn, say).

    Returns
    -------
    argparse.ArgumentParser
        The ``genrekit`` parser.
    """
    parser = argparse.ArgumentParser(
        prog="genrekit",
        description=(
            "Tell the genre of music from its audio features (the GTZAN feature set).\n\n"
            "Typical flow:\n"
            "  genrekit extract music/ -o features.csv      audio -> GTZAN feature table\n"
            "  genrekit train --data features.csv -o model/  table -> model\n"
            "  genrekit predict song.mp3                     audio -> genre (shipped model)\n"
            "  genrekit scan ~/Music --db library.db         library -> catalogue (incremental)\n"
            "  genrekit reproduce --data features_30_sec.csv --out report/\n"
        ),
        epilog="Exit status: 0 done, 1 some inputs failed, 2 usage or invalid input, 3 catalogue damaged or\n"
        "disk full, 4 Dask cluster lost, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (command,) if command in _COMMANDS else _COMMANDS:
        importlib.import_module(f"genrekit.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``genrekit`` with `argv` and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        with stop_on_sigterm():
            return int(args.func(args))
    except SettingsError as exc:
        error(f"--{exc.setting.replace('_', '-')} {exc.problem}")
        return EXIT_USAGE
    except GenrekitError as exc:
        error(str(exc))
        return exc.exit_status
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise
        error(torch_missing(args.command))
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        return interrupted(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
