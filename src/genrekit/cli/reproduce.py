"""``genrekit reproduce``: run every protocol x (CNN + baselines) and write the report."""

from __future__ import annotations

import argparse
import os

from genrekit.cli._common import (
    EXIT_OK,
    add_data_option,
    add_format_option,
    add_jobs_option,
    info,
    print_json,
    progress,
    table_path,
)
from genrekit.errors import GenrekitError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``reproduce`` subcommand."""
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper (all protocols, CNN and baselines) and write the report",
        description=(
            "Train the paper's CNN and the k-NN / SVM / MLP baselines under every protocol (paper 80/10/10 "
            "over seeds, stratified k-fold CV, the fault-filtered split, and the OPTIMISTIC protocol that "
            "early-stops on the test set), then write DIR/report.html, DIR/report.md (+ figures/) and "
            "DIR/metrics.json. --models adds registry models (see `genrekit train --help`) to the paper's "
            "four, each scored on the same splits, with hyperparameters tuned inside the training rows only."
        ),
        epilog=(
            "examples:\n"
            "  genrekit reproduce --data features_30_sec.csv --out report/ --split-dir split_filtered/\n"
            "  genrekit reproduce --data features_30_sec.csv --out report/ --split-dir split_filtered/ \\\n"
            "      --models logreg,svm-tuned,gbm,ensemble --protocols cv,filtered --seeds 1"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_option(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder for the report")
    parser.add_argument(
        "--split-dir",
        metavar="DIR",
        help="folder with the fault-filtered split (train.txt, valid.txt, test.txt); without it the "
        "'filtered' protocol is skipped",
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the reproduction and print the figures; return the exit status."""
    from genrekit.evaluation.reproduce import PROTOCOL_NAMES, Settings, reproduce
    from genrekit.models.registry import parse_names
    from genrekit.parallel import cpu_count

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
    metrics = reproduce(data, args.out, args.split_dir, settings, progress)
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
        info(f"report: {os.path.join(args.out, 'report.html')} ({seconds:.0f} s)")
    return EXIT_OK
