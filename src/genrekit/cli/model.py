"""``genrekit model``: show a model's layers (``summary``) or its metadata (``info``)."""

from __future__ import annotations

import argparse

from genrekit.cli._common import EXIT_OK, add_format_option, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``model`` subcommand and its ``summary`` and ``info`` actions."""
    parser = subparsers.add_parser(
        "model",
        help="show a model's layers or metadata",
        description="Inspect the paper's CNN or a saved model.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    summary = actions.add_parser(
        "summary",
        help="Keras-style layer table with parameter counts, compared with the paper",
        description=(
            "Print the layer table (output shapes as (steps, channels), parameters) computed from the "
            "network itself, for MODEL_DIR or, without it, the default 57-feature, 10-genre network."
        ),
    )
    summary.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)")
    add_format_option(summary)
    summary.set_defaults(func=run_summary)
    info = actions.add_parser(
        "info",
        help="a saved model's labels, data, settings and metrics",
        description="Print a saved model's metadata: MODEL_DIR, or the shipped model without it.",
    )
    info.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)")
    add_format_option(info)
    info.set_defaults(func=run_info)


def run_summary(args: argparse.Namespace) -> int:
    """Print the layer table, the parameter totals and the paper comparison."""
    from genrekit.library.predict import PRETRAINED_DIR
    from genrekit.models.cnn import PAPER_PARAMS_NOTE, PAPER_TOTAL_PARAMS
    from genrekit.models.io import load_model_dir

    # The layer table saved with the model (model_summary at save time): no PyTorch needed here.
    rows = load_model_dir(args.model_dir or PRETRAINED_DIR)[1]["architecture"]
    total = sum(row["params"] for row in rows)
    report = {
        "model_dir": args.model_dir,
        "layers": rows,
        "total_params": total,
        "trainable_params": total,
        "paper_total_params": list(PAPER_TOTAL_PARAMS),
        "paper_note": PAPER_PARAMS_NOTE,
    }
    if args.format == "json":
        print_json(report)
        return EXIT_OK
    table = [("Layer (type)", "Output Shape", "Param #")]
    table += [(row["layer"], _shape(row["output_shape"]), f"{row['params']:,}") for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for i, line in enumerate(table):
        print(f"{line[0]:<{widths[0]}}  {line[1]:<{widths[1]}}  {line[2]:>{widths[2]}}")
        if i == 0:
            print("-" * (sum(widths) + 4))
    print(f"Total params: {total:,}\nTrainable params: {total:,}\nNon-trainable params: 0\n")
    print(PAPER_PARAMS_NOTE)
    return EXIT_OK


def _shape(shape: list) -> str:
    """Format ``[None, 55, 32]`` as ``(None, 55, 32)``."""
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


def run_info(args: argparse.Namespace) -> int:
    """Print a saved model's metadata (everything but the per-epoch history in table form)."""
    from genrekit.library.predict import PRETRAINED_DIR
    from genrekit.models.io import load_model_dir

    args.model_dir = args.model_dir or str(PRETRAINED_DIR)
    _, metadata = load_model_dir(args.model_dir)
    if args.format == "json":
        print_json(metadata)
        return EXIT_OK
    training = metadata["training"]
    data = metadata.get("data", {})
    lines = [
        ("model", args.model_dir),
        ("kind", f"{metadata['kind']} (format {metadata['format_version']})"),
        ("genrekit", metadata["genrekit_version"]),
        ("created", metadata["created"]),
        ("labels", ", ".join(metadata["labels"])),
        ("data", f"{data.get('name', '?')} ({data.get('rows', '?')} rows, sha256 {data.get('sha256', '?')})"),
        (
            "settings",
            ", ".join(f"{k}={training[k]}" for k in ("epochs", "batch_size", "learning_rate", "patience")),
        ),
        ("seed", training["random_state"]),
        ("epochs run", f"{training['n_epochs_run']} (best epoch {training['best_epoch']})"),
    ]
    lines += [(f"metric {key}", _metric(value)) for key, value in metadata.get("metrics", {}).items()]
    if "calibration" in metadata:
        calibration = metadata["calibration"]
        lines.append(
            (
                "calibration",
                f"temperature {calibration['temperature']:.2f}, "
                f"novelty threshold {calibration['novelty']['threshold']:.1f}",
            )
        )
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        print(f"{key + ':':<{width + 1}} {value}")
    return EXIT_OK


def _metric(value: object) -> object:
    """Format a summary over repeats (``mean``, ``std``, ``ci_low``, ``ci_high``, ``n``) as percent."""
    if isinstance(value, dict) and {"mean", "std", "ci_low", "ci_high", "n"} <= value.keys():
        return (
            f"{100 * value['mean']:.1f}% ± {100 * value['std']:.1f} "
            f"[95% CI {100 * value['ci_low']:.1f}, {100 * value['ci_high']:.1f}] over {value['n']}"
        )
    return value
