"""``genrekit reproduce``: run every protocol x (CNN + baselines) and write the report."""

from __future__ import annotations

import argparse
import os
from functools import partial

from genrekit.cli._common import (
    EXIT_OK,
    add_data_option,
    add_format_option,
    add_jobs_option,
    add_quiet_option,
    info,
    print_json,
    progress,
    require_torch,
    table_path,
)
from genrekit.core.errors import GenrekitError
from genrekit.datasets.fetch import FILTERED_SPLIT_DIR

_EPILOG = """\
examples:
  genrekit reproduce --out report/
      the GTZAN table from the cache (downloaded once), all protocols, 10 seeds
  genrekit reproduce --data features_30_sec.csv --out report/
      a local copy of the table (offline)
  genrekit reproduce --out report/ --quick
      smoke test: 2 seeds, 3 folds, at most 20 epochs (numbers not for citing)
  genrekit reproduce --out report/ --audio gtzan/genres_original
      also a spectrogram figure per genre from one clip of each genre folder
  genrekit reproduce --out report/ --format json > summary.json

Progress: a bar on a terminal, otherwise a line every few seconds; --quiet silences both.

exit status: 0 report written, 2 usage error or invalid input (bad table, no
table and no network), 130 interrupted.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``reproduce`` subcommand."""
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper (all protocols, CNN and baselines) and write the report",
        description=(
            "Train the paper's CNN and the k-NN / SVM / MLP baselines under every protocol\n"
            "(paper 80/10/10 over seeds, stratified k-fold CV, the fault-filtered split, and the\n"
            "OPTIMISTIC protocol that early-stops on the test set), then write DIR/report.html,\n"
            "DIR/report.md (+ figures/) and DIR/metrics.json. --models adds registry models (see\n"
            "`genrekit train --help`) to the paper's four, each scored on the same splits, with\n"
            "hyperparameters tuned inside the training rows only."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_option(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder for the report")
    parser.add_argument(
        "--split-dir",
        metavar="DIR",
        default=str(FILTERED_SPLIT_DIR),
        help="folder with the split of the 'filtered' protocol (train.txt, valid.txt, test.txt; "
        "default: the fault-filtered split shipped with genrekit)",
    )
    parser.add_argument(
        "--audio",
        metavar="DIR",
        help="folder of genre folders (e.g. GTZAN's genres_original): a spectrogram figure of one clip "
        "per genre in the report",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="repeats of the seeded protocols (default 10)"
    )
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 10)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke-test settings: 2 seeds, 3 folds, at most 20 epochs (numbers not for citing)",
    )
    parser.add_argument(
        "--models",
        metavar="A,B,...",
        help="registry models to run besides the paper's CNN, k-NN, SVM and MLP (always run)",
    )
    parser.add_argument(
        "--protocols",
        metavar="P,Q,...",
        help="protocols the --models run under: paper, cv, filtered, optimistic (default: all); "
        "the paper's four models always run under all",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add permutation importance per feature and feature family of the paper's CNN and of the "
        "shipped model's recipe, over the cross-validation folds",
    )
    add_jobs_option(parser)
    add_format_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the reproduction and print the figures; return the exit status."""
    from genrekit.core.parallel import cpu_count
    from genrekit.evaluation.reproduce import PROTOCOL_NAMES, Settings, reproduce
    from genrekit.models.registry import parse_names

    require_torch("reproduce")
    data = table_path(args)
    jobs = args.jobs or cpu_count()
    settings = Settings.make_quick(jobs) if args.quick else Settings(jobs=jobs)
    changes = {key: getattr(args, key) for key in ("seeds", "folds") if getattr(args, key) is not None}
    if changes.get("seeds", 1) < 1 or changes.get("folds", 2) < 2:
        raise GenrekitError("--seeds must be at least 1 and --folds at least 2")
    if args.explain:
        changes["explain"] = True
    if args.models:
        changes["extra_models"] = tuple(parse_names(args.models))
    if args.protocols:
        protocols = tuple(name.strip() for name in args.protocols.split(",") if name.strip())
        unknown = [name for name in protocols if name not in PROTOCOL_NAMES]
        if unknown or not protocols:
            raise GenrekitError(
                f"--protocols: unknown {unknown or [args.protocols]}; choose from {', '.join(PROTOCOL_NAMES)}"
            )
        changes["extra_protocols"] = protocols
    settings = Settings(**{**settings.__dict__, **changes})
    wrap = partial(progress, quiet=args.quiet)
    metrics = reproduce(data, args.out, args.split_dir, settings, wrap, args.audio)
    if args.format == "json":
        print_json(
            {
                "data_sha256": metrics["data"]["sha256"],
                "wall_seconds": metrics["environment"]["wall_seconds"],
                "results": [
                    {
                        "protocol": entry["protocol"],
                        "model": entry["model"],
                        "accuracy": entry["summary"]["accuracy"],
                    }
                    for entry in metrics["results"]
                ],
                "report": os.path.join(args.out, "report.html"),
            }
        )
    else:
        from genrekit.evaluation.report import MODEL_TITLES, format_summary

        print(f"{'protocol':<12} {'model':<14} accuracy % (mean ± std [95% t-interval])")
        for entry in metrics["results"]:
            print(
                f"{entry['protocol']:<12} {MODEL_TITLES.get(entry['model'], entry['model']):<14} "
                f"{format_summary(entry['summary']['accuracy'])}"
            )
        seconds = metrics["environment"]["wall_seconds"]
        info(f"report: {os.path.join(args.out, 'report.html')} ({seconds:.0f} s)", args.quiet)
    return EXIT_OK
