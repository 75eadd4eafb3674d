"""``genrekit train``: fit a registry model (the shipped recipe by default) on a feature table and save it."""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING

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
from genrekit.models.registry import ENSEMBLE_MEMBERS, RECIPES, parse_names, recipe

SHIPPED_COMMAND: str = (
    "genrekit train --data features_30_sec.csv --model ensemble --no-tune --cv 10 \\\n"
    "      -o src/genrekit/models/pretrained"
)
"""How the shipped model is rebuilt."""

DEFAULT_MODEL: str = "ensemble"
"""What ``train`` fits without --model: the shipped recipe (``reproduce`` keeps the paper's models)."""

if TYPE_CHECKING:
    pass


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (the shipped recipe by default) on a feature table",
        description=(
            "Train a model of the registry (--model; default: ensemble, the shipped model's recipe;\n"
            "cnn: the paper's 1D CNN) on a GTZAN feature table and save it as a model folder\n"
            "(model.safetensors + model.json, no pickle).\n"
            "A stratified, seeded validation split calibrates the probabilities (and drives the\n"
            "CNN's early stopping, best weights restored); with --validation-fraction 0 all rows\n"
            "train (the CNN for exactly --epochs epochs). With --cv K all rows train the final model\n"
            "and K-fold cross-validation of that same recipe (tuning inside each fold's training\n"
            "rows) states its accuracy and calibrates the probabilities (the shipped model's recipe).\n"
            "The ensemble needs LightGBM, the CNNs PyTorch: pip install 'genrekit[train]'.\n\n"
            "models:\n" + "\n".join(f"  {name:<12} {RECIPES[name].description}" for name in RECIPES)
        ),
        epilog=(
            "examples:\n"
            "  genrekit train -o model/                      the GTZAN table from the cache\n"
            "  genrekit train --data features_30_sec.csv -o model/\n"
            "  genrekit train --data my_library.csv --labels any -o my_model/\n"
            "  genrekit train --data features_30_sec.csv --model cnn -o cnn_model/      the paper's CNN\n"
            "  genrekit train --data features_30_sec.csv --model svm-tuned -o svm_model/\n"
            "  genrekit train --data features_30_sec.csv --model ensemble --members svm-tuned,logreg -o e/\n"
            "  # the shipped model:\n"
            f"  {SHIPPED_COMMAND}\n"
            "\n"
            "Progress: a bar on a terminal, otherwise a line every few seconds; --quiet silences both.\n"
            "\n"
            "exit status: 0 model saved, 2 usage error or invalid input (bad table, a table too\n"
            "small to split, no table and no network, PyTorch missing for a CNN), 130 interrupted."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_option(parser)
    parser.add_argument("-o", "--output", metavar="MODEL_DIR", required=True, help="model folder to write")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME",
        help=f"registry model to train (default: {DEFAULT_MODEL}, the shipped recipe; list above)",
    )
    parser.add_argument(
        "--members",
        metavar="A,B,...",
        help=f"members of --model ensemble/stacking (default: {','.join(ENSEMBLE_MEMBERS)})",
    )
    parser.add_argument(
        "--no-tune",
        dest="tune",
        action="store_false",
        help="skip the inner hyperparameter searches: every recipe's (and member's) default settings",
    )
    parser.add_argument("--epochs", type=int, default=200, help="maximum epochs (default: 200)")
    parser.add_argument(
        "--patience", type=int, default=20, help="early-stopping patience in epochs (default: 20)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of split, weights and shuffling (default: 0)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        help="share of rows held out for early stopping, stratified (default: 0.1, or 0 with --cv)",
    )
    parser.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="train on all rows for --epochs epochs and cross-validate that recipe over K folds",
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        metavar="S",
        help=(
            "length of the audio behind each row, recorded in the model: predict cuts files into "
            "windows of S seconds (default: 30 for whole clips, the segments' length for a table "
            "made with extract --segment-seconds)"
        ),
    )
    parser.add_argument(
        "--labels",
        default="gtzan",
        help=(
            "allowed labels: 'gtzan' (the ten GTZAN genres, default), 'any' (the table's own, "
            "at least two, near misses of GTZAN genres rejected) or a comma list such as 'rock,jazz,folk'"
        ),
    )
    add_jobs_option(parser)
    add_format_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, save and summarise; return the exit status."""
    from genrekit.training.train import TrainSettings, train

    if recipe(args.model).requires == "torch":
        require_torch("train")
    settings = TrainSettings(
        model=args.model,
        members=tuple(parse_names(args.members)) if args.members else None,
        tune=args.tune,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        cv=args.cv,
        window_seconds=args.window_seconds,
        labels=args.labels,
        jobs=args.jobs,
    )
    summary = train(
        table_path(args),
        args.output,
        settings,
        log=partial(info, quiet=args.quiet),
        progress=partial(progress, quiet=args.quiet),
    )
    if args.format == "json":
        print_json(summary)
    else:
        _print_summary(summary)
    return EXIT_OK


def _print_summary(summary: dict) -> None:
    """Print the run summary as aligned ``key: value`` lines."""
    validation = summary["validation"]
    accuracy = validation["accuracy"]
    rows = [
        ("model", summary["model_dir"]),
        (
            "data",
            f"{summary['data']['name']} ({summary['data']['rows']} rows, sha256 {summary['data']['sha256']})",
        ),
        ("labels", ", ".join(summary["labels"])),
        ("window", f"{summary['window_seconds']:g} s (predict cuts files into windows of this length)"),
        ("recipe", summary["model"]),
    ]
    if summary["epochs_run"] is not None:
        rows += [
            ("epochs run", summary["epochs_run"]),
            ("best epoch", summary["best_epoch"]),
            ("train accuracy", f"{summary['final_train_accuracy']:.4f} (last epoch, training mode)"),
        ]
    if summary["chosen"]:
        rows.append(("chosen by inner CV", summary["chosen"]))
    rows += [
        (
            "validation accuracy",
            "n/a (no validation split)"
            if accuracy is None
            else f"{accuracy:.4f} ({validation['rows']} rows)",
        ),
    ]
    if summary["cross_validation"]:
        cv = summary["cross_validation"]["accuracy"]
        rows.append(
            (
                f"{summary['cross_validation']['protocol']} accuracy",
                f"{cv['mean']:.4f} ± {cv['std']:.4f} (95% CI {cv['ci_low']:.4f}-{cv['ci_high']:.4f})",
            )
        )
        per_file = summary["cross_validation"].get("file_accuracy")
        if per_file:
            rows.append(
                (
                    f"{summary['cross_validation']['protocol']} accuracy per file",
                    f"{per_file['mean']:.4f} ± {per_file['std']:.4f} "
                    f"(95% CI {per_file['ci_low']:.4f}-{per_file['ci_high']:.4f})",
                )
            )
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
