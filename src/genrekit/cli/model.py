"""``genrekit model``: a model's layers (``summary``), metadata (``info``) or importance (``explain``)."""

from __future__ import annotations

import argparse

from genrekit.cli._common import EXIT_OK, add_data_option, add_format_option, info, print_json, table_path


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
        help="a model's structure with parameter counts (the paper's CNN: its layer table)",
        description=(
            "Summarise MODEL_DIR, or without it the shipped model: for the paper's CNN (`cnn`) the "
            "Keras-style layer table (output shapes as (steps, channels), parameters) compared with "
            "the paper; for any other model its tree of parts (ensemble members, transforms, "
            "estimators) with the number of stored values of each."
        ),
        epilog=(
            "examples:\n"
            "  genrekit model summary              the shipped model\n"
            "  genrekit model summary cnn          the paper's CNN, beside the paper's figures\n"
            "  genrekit model summary my_model/ --format json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summary.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)")
    add_format_option(summary)
    summary.set_defaults(func=run_summary)
    details = actions.add_parser(
        "info",
        help="a saved model's labels, data, settings and metrics",
        description="Print a saved model's metadata: MODEL_DIR, or the shipped model without it.",
    )
    details.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)")
    add_format_option(details)
    details.set_defaults(func=run_info)
    explain = actions.add_parser(
        "explain",
        help="permutation importance of each feature and feature family, with intervals over folds",
        description=(
            "Retrain MODEL_DIR's recipe (the shipped model without it) on the folds of a stratified "
            "k-fold cross-validation of TABLE and, on each fold's held-out rows, shuffle one feature, or "
            "one family (chroma, rms, spectral shape, zero crossings, harmonic/percussive, tempo, MFCC), "
            "at a time: the accuracy drop, mean ± std [95% t-interval] over folds, is its importance."
        ),
        epilog=(
            "examples:\n"
            "  genrekit model explain --data features_30_sec.csv\n"
            "  genrekit model explain my_model/ --data features_30_sec.csv --folds 10 --format json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calibration = actions.add_parser(
        "calibration",
        help="a model's calibration: ECE before/after scaling, reliability, accuracy vs coverage",
        description=(
            "Print the held-out calibration evidence saved with MODEL_DIR (the shipped model without "
            "it): expected calibration error before and after temperature scaling, the reliability "
            "bins and the share of files answered confidently at each threshold with their accuracy; "
            "--plot writes the reliability diagram and the accuracy-coverage curve as a PNG."
        ),
    )
    calibration.add_argument(
        "model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)"
    )
    calibration.add_argument("--plot", metavar="FILE.png", help="write the figures to this PNG file")
    add_format_option(calibration)
    calibration.set_defaults(func=run_calibration)
    explain.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="saved model folder (optional)")
    add_data_option(explain)
    explain.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    explain.add_argument("--repeats", type=int, default=3, help="shuffles per feature and fold (default: 3)")
    explain.add_argument(
        "--seed", type=int, default=0, help="seed of folds, models and shuffles (default: 0)"
    )
    explain.add_argument("--top", type=int, default=15, help="features shown in the table (default: 15)")
    add_format_option(explain)
    explain.set_defaults(func=run_explain)


def run_summary(args: argparse.Namespace) -> int:
    """Print the layer table, the parameter totals and the paper comparison."""
    from genrekit.models.cnn import PAPER_PARAMS_NOTE, PAPER_TOTAL_PARAMS
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir

    # The layer table saved with the model (model_summary at save time): no PyTorch needed here.
    model_dir = args.model_dir or str(SHIPPED_MODELS["shipped"])
    metadata = load_model_dir(model_dir, any_features=True)[1]
    if metadata["kind"] != "paper-cnn":
        return _summarise_tree(model_dir, metadata, args.format)
    rows = metadata["architecture"]
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


def _summarise_tree(model_dir: str, metadata: dict, output: str) -> int:
    """Print a format-2 model's tree of parts (ensemble members, transforms, estimators) and sizes."""
    import math
    from pathlib import Path

    from safetensors import safe_open

    from genrekit.models.io import SHIPPED_MODELS

    folder = Path(model_dir) if Path(model_dir).exists() else SHIPPED_MODELS[model_dir]
    with safe_open(str(folder / metadata["weights"]["file"]), framework="numpy") as weights:
        sizes = {name: math.prod(weights.get_slice(name).get_shape()) for name in weights.keys()}
    members = [m["name"] for m in metadata.get("recipe", {}).get("members", [])]
    rows = list(_tree_rows(metadata["model"], sizes, members))
    recipe = metadata.get("recipe", {}).get("name", metadata["kind"])
    total = sum(values for _, values in rows)
    if output == "json":
        print_json(
            {
                "model_dir": model_dir,
                "recipe": recipe,
                "parts": [{"part": p, "values": v} for p, v in rows],
                "total_values": total,
            }
        )
        return EXIT_OK
    width = max(len(part) for part, _ in rows)
    print(f"{model_dir}: {recipe} model, {len(metadata['labels'])} genres\n")
    print(f"{'Part':<{width}}  {'Values':>10}\n" + "-" * (width + 12))
    for part, values in rows:
        print(f"{part:<{width}}  {values:>10,}")
    print(f"\nTotal stored values: {total:,}")
    return EXIT_OK


def _tree_rows(node: dict, sizes: dict[str, int], names: list[str], depth: int = 0, label: str = ""):
    """Yield ``(indented part name, number of stored values)`` for `node` and its children."""
    values = sum(sizes.get(array, 0) for array in node.get("arrays", {}).values())
    yield "  " * depth + (f"{label}: " if label else "") + node["type"], values
    children = node.get("children", [])
    for i, child in enumerate(children):
        child_label = names[i] if depth == 0 and len(names) == len(children) else ""
        yield from _tree_rows(child, sizes, names, depth + 1, child_label)


def _shape(shape: list) -> str:
    """Format ``[None, 55, 32]`` as ``(None, 55, 32)``."""
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


def run_info(args: argparse.Namespace) -> int:
    """Print a saved model's metadata (everything but the per-epoch history in table form)."""
    from genrekit.library.catalogue import model_id
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir

    args.model_dir = args.model_dir or str(SHIPPED_MODELS["shipped"])
    _, metadata = load_model_dir(args.model_dir, any_features=True)
    if args.format == "json":
        print_json({"id": model_id(metadata), **metadata})
        return EXIT_OK
    data = metadata.get("data", {})
    lines = [
        ("model", args.model_dir),
        ("id", model_id(metadata)),
        ("kind", f"{metadata['kind']} (format {metadata['format_version']})"),
        ("genrekit", metadata["genrekit_version"]),
        ("created", metadata["created"]),
        ("labels", ", ".join(metadata["labels"])),
        ("data", f"{data.get('name', '?')} ({data.get('rows', '?')} rows, sha256 {data.get('sha256', '?')})"),
    ]
    if "training" in metadata:
        training = metadata["training"]
        lines += [
            (
                "settings",
                ", ".join(
                    f"{k}={training[k]}" for k in ("epochs", "batch_size", "learning_rate", "patience")
                ),
            ),
            ("seed", training["random_state"]),
            ("epochs run", f"{training['n_epochs_run']} (best epoch {training['best_epoch']})"),
        ]
    else:
        recipe = metadata.get("recipe", {})
        lines += [
            ("recipe", f"{recipe.get('name', '?')}: {recipe.get('description', '')}"),
            ("transform", recipe.get("transform", "?")),
            ("members", ", ".join(m["name"] for m in recipe.get("members", [])) or "-"),
            ("chosen by inner CV", recipe.get("chosen") or "-"),
        ]
    lines += [(f"metric {key}", _metric(value)) for key, value in metadata.get("metrics", {}).items()]
    if "calibration" in metadata:
        calibration = metadata["calibration"]
        lines.append(
            (
                "calibration",
                f"temperature {calibration['temperature']:.2f}, "
                f"novelty threshold {calibration['novelty']['threshold']:.1f}"
                + (
                    f", ECE {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}"
                    if "ece_after" in calibration
                    else ""
                ),
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


def run_explain(args: argparse.Namespace) -> int:
    """Compute and print permutation importance for a saved model's recipe."""
    from genrekit.core.errors import GenrekitError
    from genrekit.datasets.table import feature_matrix, read_table, source_groups
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir
    from genrekit.training.importance import permutation_importance, saved_recipe

    if args.folds < 2 or args.repeats < 1:
        raise GenrekitError("--folds must be at least 2 and --repeats at least 1")
    args.model_dir = args.model_dir or str(SHIPPED_MODELS["shipped"])
    _, metadata = load_model_dir(args.model_dir)
    name, build = saved_recipe(metadata)
    frame = read_table(table_path(args), labels=",".join(metadata["labels"]))

    info(f"explaining {name}: {args.folds} folds x (fit + {args.repeats} shuffles of 64 columns/families)")
    result = permutation_importance(
        build,
        feature_matrix(frame),
        frame["label"].to_numpy(dtype=str),
        n_folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        on_fold=lambda fold: info(f"fold {fold + 1}/{args.folds} done"),
        sources=source_groups(frame["filename"], frame["label"]),
        filenames=frame["filename"],
    )
    result = {"model_dir": args.model_dir, "recipe": name, **result}
    if args.format == "json":
        print_json(result)
        return EXIT_OK
    print(f"{name} ({args.model_dir}), {result['protocol']}: accuracy {_metric(result['accuracy'])}")
    print("accuracy drop when shuffled, points: mean ± std [95% t-interval] over folds")
    for title, rows in (("family", result["families"]), ("feature", result["features"][: args.top])):
        width = max(len(row["name"]) for row in rows)
        print(f"\n{title:<{width}}  drop")
        for row in rows:
            drop = row["drop"]
            print(
                f"{row['name']:<{width}}  {100 * drop['mean']:5.1f} ± {100 * drop['std']:.1f} "
                f"[{100 * drop['ci_low']:.1f}, {100 * drop['ci_high']:.1f}]"
            )
    return EXIT_OK


def run_calibration(args: argparse.Namespace) -> int:
    """Print (and optionally plot) the calibration evidence saved with a model."""
    from genrekit.core.errors import ModelError
    from genrekit.models.io import SHIPPED_MODELS, load_model_dir

    args.model_dir = args.model_dir or str(SHIPPED_MODELS["shipped"])
    _, metadata = load_model_dir(args.model_dir)
    calibration = metadata.get("calibration", {})
    confidence = metadata.get("cross_validation", {}).get("confidence", [])
    if "ece_after" not in calibration:
        raise ModelError(f"{args.model_dir}: holds no held-out calibration evidence (train it with --cv K)")
    if args.plot:
        from genrekit.core.atomic import atomic_write_bytes
        from genrekit.evaluation.report import figure_calibration

        atomic_write_bytes(args.plot, figure_calibration(calibration, confidence))
    result = {key: calibration[key] for key in ("temperature", "ece_before", "ece_after")}
    result |= {"reliability_after": calibration["reliability_after"], "confidence": confidence}
    if args.format == "json":
        print_json(result)
        return EXIT_OK
    print(f"temperature {result['temperature']:.3f}")
    print(f"expected calibration error: {result['ece_before']:.4f} before, {result['ece_after']:.4f} after")
    print("threshold  coverage  accuracy (held-out rows)")
    for row in confidence:
        accuracy = "n/a" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        print(f"{row['threshold']:>9.1f}  {100 * row['coverage']:7.1f}%  {accuracy:>8}")
    return EXIT_OK
