"""``genrekit train``: fit a registry model (the shipped recipe by default) on a feature table and save it."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    add_data_option,
    add_format_option,
    add_jobs_option,
    add_quiet_option,
    error,
    info,
    print_json,
    progress,
    require_torch,
    table_path,
)
from genrekit.errors import TableError
from genrekit.models.registry import ENSEMBLE_MEMBERS, RECIPES, parse_names, recipe
from genrekit.schema import LABEL_COLUMN

SHIPPED_COMMAND: str = (
    "genrekit train --data features_30_sec.csv --model ensemble --no-tune --cv 10 \\\n"
    "      -o src/genrekit/models/pretrained"
)
"""How the shipped model is rebuilt."""

DEFAULT_MODEL: str = "ensemble"
"""What ``train`` fits without --model: the shipped recipe (``reproduce`` keeps the paper's models)."""

if TYPE_CHECKING:
    import pandas as pd


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
    from genrekit.library.predict import MIN_SECONDS
    from genrekit.table import file_sha256, read_table, rows_window_seconds

    if recipe(args.model).requires == "torch":
        require_torch("train")
    data = table_path(args)
    args.members = tuple(parse_names(args.members)) if args.members else ENSEMBLE_MEMBERS
    for name in ("epochs", "patience", "batch_size"):
        if getattr(args, name) < 1:
            error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
            return EXIT_USAGE
    if args.cv is not None and (args.cv < 2 or args.validation_fraction):
        error("--cv needs K >= 2 and no --validation-fraction (every row trains the final model)")
        return EXIT_USAGE
    if args.validation_fraction is None:
        args.validation_fraction = 0.0 if args.cv else 0.1
    if not 0 <= args.validation_fraction < 1:
        error(f"--validation-fraction must be in [0, 1), got {args.validation_fraction}")
        return EXIT_USAGE
    frame = read_table(data, labels=args.labels)
    if frame["label"].nunique() < 2:
        raise TableError(f"{data}: only one label ({frame['label'].iloc[0]!r}); training needs at least two")
    if args.window_seconds is None:
        args.window_seconds = rows_window_seconds(frame)
    elif not MIN_SECONDS <= args.window_seconds < float("inf"):
        error(f"--window-seconds must be at least {MIN_SECONDS:g}, got {args.window_seconds}")
        return EXIT_USAGE
    summary = _fit_and_save(frame, args, data_meta={"name": Path(data).name, "sha256": file_sha256(data)})
    if args.format == "json":
        print_json(summary)
    else:
        _print_summary(summary)
    return EXIT_OK


def _fit_and_save(frame: pd.DataFrame, args: argparse.Namespace, data_meta: dict) -> dict:
    """Split `frame`, fit the model, save the model folder and return the run summary."""
    from genrekit.models.io import save_model
    from genrekit.models.registry import chosen_params, describe, make_model
    from genrekit.table import feature_matrix

    if args.cv:
        return _fit_recipe_and_save(frame, args, data_meta)
    model = make_model(
        args.model, args.seed, epochs=args.epochs, patience=args.patience, members=args.members
    )
    cnn = recipe(args.model).uses_validation
    if cnn:
        model.set_params(batch_size=args.batch_size, verbose=partial(progress, quiet=args.quiet))
    if args.validation_fraction > 0:
        train, val = _validation_split(frame, args.validation_fraction, args.seed, data_meta["name"])
        if cnn:
            info(f"training on {len(train)} rows, early stopping on {len(val)} validation rows", args.quiet)
            model.fit(train, train[LABEL_COLUMN], val, val[LABEL_COLUMN])
            best = model.history_[model.best_epoch_ - 1]
            validation = {"rows": len(val), "accuracy": best["val_accuracy"], "loss": best["val_loss"]}
        else:
            info(
                f"training {args.model} on {len(train)} rows, calibrating on {len(val)} validation rows",
                args.quiet,
            )
            _fit_by_source(model, train)
            accuracy = float(
                np.mean(model.predict(feature_matrix(val)) == val[LABEL_COLUMN].to_numpy(dtype=str))
            )
            validation = {"rows": len(val), "accuracy": accuracy, "loss": None}
        extra = {"calibration": _validation_calibration(model, train, val)}
    else:
        train = frame
        info(f"training {args.model} on all {len(train)} rows (no validation)", args.quiet)
        if cnn:
            model.fit(train, train[LABEL_COLUMN])
        else:
            _fit_by_source(model, train)
        validation = {"rows": 0, "accuracy": None, "loss": None}
        extra = {}
    if args.model != "cnn":  # every recipe but the paper's CNN (format 1, its own fields) names itself
        extra["recipe"] = {
            **describe(args.model, args.members),
            "tuned": args.tune,
            "chosen": chosen_params(model),
        }
    validation["fraction"] = args.validation_fraction
    metadata = {
        "data": {**data_meta, "rows": len(frame), "train_rows": len(train)},
        "window_seconds": args.window_seconds,
        "validation": validation,
        "metrics": {"validation_accuracy": validation["accuracy"]},
        **extra,
    }
    save_model(model, args.output, metadata)
    return _summary(model, args, metadata)


def _fit_by_source(model, train: pd.DataFrame) -> None:
    """Fit a feature-table `model` on `train`; its inner cross-validations keep each source clip together."""
    from genrekit.evaluation.protocols import rows_from_sources
    from genrekit.table import feature_matrix, source_groups

    X, y = feature_matrix(train), train[LABEL_COLUMN].to_numpy(dtype=str)
    with rows_from_sources(X, source_groups(train["filename"], y)):
        model.fit(X, y)


def _validation_split(
    frame: pd.DataFrame, fraction: float, seed: int, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a stratified, seeded `fraction` of the table's source clips for validation.

    The rows of one source clip (its segments, its augmented copies; see
    :func:`genrekit.table.source_clip`) all go to the same side. On a table of whole clips
    this is ``train_test_split(frame, test_size=fraction, stratify=labels, random_state=seed)``.
    """
    from genrekit.evaluation.protocols import (
        Split,
        source_codes,
        source_labels,
        stratified_holdout,
        without_augmented,
    )
    from genrekit.table import source_groups

    y = frame[LABEL_COLUMN].to_numpy(dtype=str)
    groups = source_groups(frame["filename"], y)
    codes = source_codes(groups, len(frame))
    source_labels(y, codes, groups)
    hint = "Use a bigger table, or --validation-fraction 0 to train on every row without early stopping."
    try:
        train, val = stratified_holdout(
            y, codes, np.arange(len(frame)), fraction, seed, f"{name}, validation split", hint
        )
    except ValueError as exc:
        raise TableError(f"cannot make a stratified validation split of {name}: {exc}") from exc
    empty = np.empty(0, dtype=np.int64)
    (split,) = without_augmented([Split("validation", 0, seed, train, val, empty)], frame["filename"])
    return frame.iloc[split.train], frame.iloc[split.val]


def _validation_calibration(model, train: pd.DataFrame, val: pd.DataFrame) -> dict:
    """Calibrate probabilities and novelty on the validation rows."""
    from genrekit.models.calibrate import FeatureNovelty
    from genrekit.models.recipe import calibration, heldout_logits
    from genrekit.table import feature_matrix

    X_train, X_val = feature_matrix(train), feature_matrix(val)
    codes = np.searchsorted(model.classes_, val[LABEL_COLUMN].to_numpy(dtype=str))
    distances = FeatureNovelty.fit(X_train).distance(X_val)
    return calibration(heldout_logits(model, X_val), codes, X_train, distances)


def _fit_recipe_and_save(frame: pd.DataFrame, args: argparse.Namespace, data_meta: dict) -> dict:
    """Cross-validate the all-rows recipe, fit it on every row, save and summarise."""
    from genrekit.models.io import save_model
    from genrekit.models.recipe import fit_final
    from genrekit.parallel import cpu_count
    from genrekit.table import feature_matrix, source_groups

    info(
        f"cross-validating {args.model} ({args.cv} folds), then training it on all {len(frame)} rows",
        args.quiet,
    )
    model, recipe = fit_final(
        feature_matrix(frame),
        frame[LABEL_COLUMN].to_numpy(dtype=str),
        groups=source_groups(frame["filename"], frame[LABEL_COLUMN]),
        filenames=frame["filename"],
        n_folds=args.cv,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        on_fold=lambda fold, acc: info(f"fold {fold + 1}/{args.cv}: accuracy {acc:.3f}", args.quiet),
        model=args.model,
        members=args.members,
        tune=args.tune,
        jobs=args.jobs or cpu_count(),
    )
    cv = recipe["cross_validation"]
    metadata = {
        "data": {**data_meta, "rows": len(frame), "train_rows": len(frame)},
        "window_seconds": args.window_seconds,
        "validation": {"rows": 0, "accuracy": None, "loss": None, "fraction": 0.0},
        "metrics": {"cv_accuracy": cv["accuracy"], "protocol": cv["protocol"]},
        **recipe,
    }
    save_model(model, args.output, metadata)
    return _summary(model, args, metadata)


def _summary(model, args: argparse.Namespace, metadata: dict) -> dict:
    """Return the run summary printed by ``genrekit train``."""
    validation = metadata["validation"]
    return {
        "model_dir": str(args.output),
        "model": args.model,
        "data": metadata["data"],
        "window_seconds": metadata["window_seconds"],
        "labels": [str(label) for label in model.classes_],
        "epochs_run": getattr(model, "n_epochs_run_", None),
        "best_epoch": getattr(model, "best_epoch_", None),
        "final_train_accuracy": model.history_[-1]["train_accuracy"] if hasattr(model, "history_") else None,
        "validation": validation,
        "cross_validation": metadata.get("cross_validation"),
        "chosen": metadata.get("recipe", {}).get("chosen"),
    }


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
