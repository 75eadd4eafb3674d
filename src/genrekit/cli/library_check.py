"""``genrekit library check``: whether a collection is unlike the music the model was trained on.

Also the one-line shift notes of ``library tag`` (its refusal), ``predict``, ``scan`` and
``evaluate``; the measure itself is :mod:`genrekit.shift`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    error,
    print_json,
)

EPILOG = """\
examples:
  genrekit library check --db library.db
      the catalogue's stored windows against the shipped model's training music
  genrekit library check ~/Music/new-box-set
      a folder (its files are cut into 30-s windows and extracted first)
  genrekit library check features.csv --format json
      the rows of a feature table
  genrekit library check --db library.db --model my-model/ --reference train.csv
      a model of your own, with the table it was trained on

How: a classifier tries to tell the collection's rows from rows drawn from the model's
training distribution (per-genre Gaussians stored beside the shipped models, drawn in the
collection's predicted genre mix, so a collection of one genre is not shift by itself).
Its cross-validated AUC is 0.5 for alike music and 1 when every file is told apart; the
interval is a bootstrap over files, "chance" the AUC with shuffled labels. Levels: large
when the interval's lower end is above 0.90 (library tag then refuses the shipped model's
genres without --force), moderate above 0.75, none otherwise; unknown below 8 files.

exit status: 0 measured, 1 some files could not be read (the rest were measured), 2 usage
error, no such catalogue, folder or table, or a model without a shift reference.
"""


def register(actions) -> None:
    """Add ``check`` to the ``genrekit library`` actions (``--db`` optional: a PATH or TABLE instead)."""
    check = actions.add_parser(
        "check",
        help="is a collection unlike the model's training music (shift: AUC with interval)",
        description="Measure how far a catalogue, folder or table sits from the model's training music.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "source",
        nargs="?",
        type=Path,
        metavar="PATH|TABLE",
        help="audio files' folder (or one file), or a feature table (.csv, .parquet)",
    )
    check.add_argument("--db", type=Path, metavar="DB", help="the catalogue (genrekit scan) instead of PATH")
    check.add_argument("--model", type=Path, metavar="DIR", help="model folder (default: the shipped model)")
    check.add_argument("--reference", type=Path, metavar="TABLE", help="the model's training table")
    check.add_argument("--seed", type=int, default=0, help="seed of the reference draw and resampling")
    add_jobs_option(check)
    add_format_option(check)
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Measure the shift of the catalogue, folder or table and print it."""
    from genrekit.prediction.model import load_model
    from genrekit.shift import folder_rows, model_reference, shift_of_rows, table_rows

    if (args.db is None) == (args.source is None):
        error("library check: give either --db DB or one PATH|TABLE")
        return EXIT_USAGE
    model = load_model(args.model)
    reference = model_reference(model, args.model, args.reference)
    failures = []
    if args.db is not None:
        from genrekit.library.catalogue import Catalogue
        from genrekit.library.check import catalogue_rows

        with Catalogue(args.db, create=False, readonly=True) as catalogue:
            features, groups = catalogue_rows(catalogue)
    elif args.source.suffix.lower() in (".csv", ".parquet"):
        features, groups = table_rows(args.source)
    else:
        from genrekit.audio.decode import audio_files

        files = audio_files([args.source])
        if not files:
            error(f"no audio files found in {args.source}")
            return EXIT_USAGE
        features, groups, failures = folder_rows(files, model.window_seconds, args.jobs)
        for failure in failures:
            error(str(failure))
    report = shift_of_rows(model, reference, features, groups, seed=args.seed)
    if args.format == "json":
        print_json(
            {"source": str(args.db or args.source), "model": str(args.model or "shipped"), **report.to_dict()}
        )
    else:
        print(report.summary())
        print(f"genre mix (predicted): {_mix(report.genre_mix)}")
    return EXIT_PARTIAL if failures else EXIT_OK


def _mix(genre_mix: dict) -> str:
    """Return the largest shares of a genre mix, ``metal 81%, rock 12%``."""
    shares = sorted(genre_mix.items(), key=lambda item: -item[1])
    return ", ".join(f"{genre} {100 * share:.0f}%" for genre, share in shares if share >= 0.05)


def tag_refusal(catalogue, force: bool) -> bool:
    """Whether ``library tag`` must stop: the shipped model's genres on a largely shifted collection.

    Prints why (and what to do instead) when it refuses, a warning when `force` overrides.
    """
    from genrekit.library.check import FORCE_HINT, shipped_model_shift

    report = shipped_model_shift(catalogue)
    if report is None or not report.shifted:
        return False
    if force:
        error(f"warning: {report.summary()}; tagging anyway (--force)")
        return False
    error(
        f"refusing to tag: this collection is unlike the shipped model's training music; {report.summary()}"
    )
    error(FORCE_HINT)
    return True


def shift_report(model, model_path, features, groups):
    """Return the ShiftReport of rows for ``predict``/``scan``/``evaluate``, or None when not measurable.

    A model without a shift reference, or a collection of fewer files than the measure needs,
    gives None: these commands then say nothing about shift. A damaged reference is reported on
    stderr and gives None too.
    """
    from genrekit.core.errors import ModelError
    from genrekit.shift import MIN_FILES, ShiftError, model_reference, shift_of_rows

    if len(set(groups)) < MIN_FILES:
        return None
    try:
        return shift_of_rows(model, model_reference(model, model_path), features, groups)
    except ShiftError:
        return None
    except ModelError as exc:  # a damaged shift.json: say so, but the command's own work stands
        error(f"shift not measured: {exc}")
        return None


def catalogue_report(catalogue, model, model_path):
    """Return the ShiftReport of a catalogue's stored windows (``scan``'s summary), or None."""
    from genrekit.library.check import catalogue_rows

    return shift_report(model, model_path, *catalogue_rows(catalogue))


def table_report(model, model_path, table):
    """Return the ShiftReport of a feature table's rows (``evaluate TABLE``'s summary), or None."""
    from genrekit.shift import table_rows

    return shift_report(model, model_path, *table_rows(table))


def new_sample():
    """Return an empty :class:`genrekit.shift.FileSample` (files' windows kept for the shift)."""
    from genrekit.shift import FileSample

    return FileSample()


def folder_sample(paths):
    """Return a new FileSample when `paths` name a folder (``predict`` then warns), else None."""
    return new_sample() if any(Path(path).is_dir() for path in paths) else None


def sampling(wrap, sample):
    """Return `wrap` (a progress wrapper of ``(path, result)`` pairs) also adding the windows to `sample`."""

    def wrapped(results, *args, **kwargs):
        for path, result in wrap(results, *args, **kwargs):
            if getattr(result, "window_features", None) is not None:
                sample.add(path, result.window_features)
            yield path, result

    return wrapped


def warn_shift(model, model_path, features, groups) -> None:
    """Print, once, a warning on stderr when the collection is shifted (``predict`` on a folder)."""
    report = shift_report(model, model_path, features, groups)
    if report is not None and report.level in ("moderate", "large"):
        print(
            f"genrekit: warning: {report.summary()}; genres of this collection may be wrong "
            "(see `genrekit library check`)",
            file=sys.stderr,
        )
