"""The reproduction report: ``report.html``, ``report.md`` (+ ``figures/*.png``) and ``metrics.json``.

The report is a pure function of the metrics dictionary that
:func:`genrekit.evaluation.reproduce.reproduce` builds (and writes as ``metrics.json``), so
every number shown can be checked against that file. The document is built
once as a list of blocks (headings, paragraphs, tables, figures) and rendered
twice, as Markdown and as HTML.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from genrekit.core.atomic import atomic_write_bytes, atomic_write_text
from genrekit.core.jsonable import jsonable
from genrekit.evaluation.document import Figure, Heading, Paragraph, Table, png, pyplot, to_html, to_markdown
from genrekit.evaluation.figures import report_table

METRIC_TITLES: dict[str, str] = {
    "accuracy": "Accuracy",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
}
"""The headline metrics (the paper's Table 1 columns) and their titles."""

MODEL_TITLES: dict[str, str] = {"cnn": "CNN (paper's)", "knn": "k-NN", "svm": "SVM", "mlp": "MLP"}


def format_percent(value: float | None, digits: int = 1) -> str:
    """Format a fraction as a percentage (``0.77`` -> ``"77.0"``); ``"n/a"`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}"


def format_summary(summary: dict) -> str:
    """Format a metric summary as ``"mean ± std [ci_low, ci_high]"`` in percent.

    Parameters
    ----------
    summary : dict
        ``mean``, ``std``, ``ci_low``, ``ci_high`` (fractions), as from
        :func:`genrekit.selection.metrics.summarize`.

    Returns
    -------
    str
        For example ``"66.1 ± 2.9 [64.0, 68.2]"``; the interval is left out
        when it is undefined (a single run).
    """
    text = f"{format_percent(summary['mean'])} ± {format_percent(summary['std'])}"
    if summary.get("ci_low") is None or math.isnan(summary["ci_low"]):
        return text
    return f"{text} [{format_percent(summary['ci_low'])}, {format_percent(summary['ci_high'])}]"


# ----------------------------------------------------------------------------------------------- figures


def figure_headline(metrics: dict) -> bytes:
    """Bar chart of mean test accuracy with 95% t-intervals per protocol and model, paper values marked."""
    plt = pyplot()
    protocols = [item["name"] for item in metrics["protocols"]]
    models = list(MODEL_TITLES)
    colors = ["#4c72b0", "#55a868", "#8172b2", "#c44e52"]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(protocols)
    for p, protocol in enumerate(protocols):
        means, lows, highs = [], [], []
        for model in models:
            summary = _entry(metrics, protocol, model)["summary"]["accuracy"]
            means.append(100 * summary["mean"])
            low = summary["ci_low"] if summary["ci_low"] is not None else summary["mean"]
            high = summary["ci_high"] if summary["ci_high"] is not None else summary["mean"]
            lows.append(100 * (summary["mean"] - low))
            highs.append(100 * (high - summary["mean"]))
        x = np.arange(len(models)) + (p - (len(protocols) - 1) / 2) * width
        label = "OPTIMISTIC (early-stopped on test)" if protocol == "optimistic" else protocol
        ax.bar(
            x,
            means,
            width * 0.92,
            yerr=[lows, highs],
            capsize=2,
            label=label,
            color=colors[p % 4],
            hatch="//" if protocol == "optimistic" else None,
            edgecolor="white",
            linewidth=0.5,
        )
    paper = [100 * metrics["paper_table1"][model]["accuracy"] for model in models]
    centres = np.arange(len(models))
    ax.hlines(
        paper,
        centres - 0.45,
        centres + 0.45,
        colors="black",
        linestyles="--",
        linewidth=1.2,
        zorder=5,
        label="paper, Table 1",
    )
    ax.set_xticks(np.arange(len(models)), [MODEL_TITLES[model] for model in models])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(30, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=5, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.set_title("Test accuracy: mean and 95% t-interval over repeats/folds")
    return png(fig)


def figure_calibration(calibration: dict, confidence: list[dict]) -> bytes:
    """Reliability diagram before and after temperature scaling, and accuracy against coverage.

    Parameters
    ----------
    calibration : dict
        A model's ``calibration`` metadata (``reliability_before`` / ``_after``,
        ``ece_before`` / ``_after``, ``temperature``).
    confidence : list of dict
        The out-of-fold confidence table (``threshold``, ``coverage``, ``accuracy``).
    """
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    for key, label in (("before", "logits as they are"), ("after", f"T = {calibration['temperature']:.2f}")):
        bins = [b for b in calibration[f"reliability_{key}"] if b["count"]]
        left.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            label=f"{label} (ECE {calibration[f'ece_{key}']:.3f})",
        )
    left.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    left.set_xlabel("mean top probability in bin")
    left.set_ylabel("accuracy in bin")
    left.set_title("Reliability (held-out rows)")
    left.legend(fontsize=8, frameon=False)
    rows = [row for row in confidence if row["accuracy"] is not None]
    right.plot([100 * r["coverage"] for r in rows], [100 * r["accuracy"] for r in rows], marker="o")
    for row in rows:
        right.annotate(f"{row['threshold']:.1f}", (100 * row["coverage"], 100 * row["accuracy"]), fontsize=7)
    right.set_xlabel("share answered confidently (%)")
    right.set_ylabel("accuracy of those (%)")
    right.set_title("Accuracy vs coverage (labels: threshold)")
    right.grid(alpha=0.3)
    return png(fig)


def figure_curves(curves: dict) -> bytes:
    """Train vs validation accuracy and loss of one CNN run, best (restored) epoch marked."""
    plt = pyplot()
    history = curves["history"]
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, key, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        scale = 100 if key == "accuracy" else 1
        ax.plot(epochs, [scale * row[f"train_{key}"] for row in history], label="train", color="#4c72b0")
        ax.plot(epochs, [scale * row[f"val_{key}"] for row in history], label="validation", color="#c44e52")
        ax.axvline(curves["best_epoch"], color="grey", linestyle="--", linewidth=0.8, label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_title(title + (" (%)" if key == "accuracy" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    return png(fig)


def figure_confusion(pooled: dict) -> bytes:
    """Confusion-matrix heatmap with genre names: counts, colour = share of the true genre's row."""
    plt = pyplot()
    labels = pooled["labels"]
    counts = np.asarray(pooled["confusion"])
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if share[i, j] > 0.55 else "black",
                )
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true genre")
    return png(fig)


def figure_per_genre(pooled: dict) -> bytes:
    """Per-genre F1 and one-vs-rest ROC-AUC bars."""
    plt = pyplot()
    labels = pooled["labels"]
    f1 = [pooled["classification_report"][name]["f1"] for name in labels]
    auc = [pooled["roc_auc"][name] for name in labels]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    ax.bar(x - 0.2, f1, 0.4, label="F1", color="#4c72b0")
    ax.bar(x + 0.2, auc, 0.4, label="ROC-AUC (one-vs-rest)", color="#dd8452")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return png(fig)


# ------------------------------------------------------------------------------------------------ blocks


def _entry(metrics: dict, protocol: str, model: str) -> dict:
    """Return the results entry of `protocol` x `model`."""
    for entry in metrics["results"]:
        if entry["protocol"] == protocol and entry["model"] == model:
            return entry
    raise KeyError(f"no results for protocol {protocol!r}, model {model!r}")


def headline_table(metrics: dict) -> Table:
    """Build the headline table: the paper's Table 1 beside ours per protocol and model (percent)."""
    header = ["Protocol", "Model", *METRIC_TITLES.values(), "Runs"]
    rows, classes = [], []
    for model in MODEL_TITLES:
        paper = metrics["paper_table1"][model]
        rows.append(
            ["paper's Table 1", MODEL_TITLES[model], *(format_percent(paper[m]) for m in METRIC_TITLES), "1"]
        )
        classes.append("paper")
    for protocol in metrics["protocols"]:
        for model in MODEL_TITLES:
            entry = _entry(metrics, protocol["name"], model)
            name = (
                "OPTIMISTIC (test set used for early stopping)"
                if protocol["optimistic"]
                else protocol["name"]
            )
            rows.append(
                [
                    name,
                    MODEL_TITLES[model],
                    *(format_summary(entry["summary"][m]) for m in METRIC_TITLES),
                    str(entry["summary"]["accuracy"]["n"]),
                ]
            )
            classes.append("optimistic" if protocol["optimistic"] else "")
    return Table(header, rows, classes, caption="Percent; ours: mean ± std [95% t-interval of the mean].")


def accuracy_table(metrics: dict) -> Table:
    """Return test accuracy only: one row per protocol (the paper's Table 1 first), one column per model.

    The compact form of :func:`headline_table`, for a README or a summary page.
    """
    models = list(dict.fromkeys(entry["model"] for entry in metrics["results"]))
    names = {"cnn": "CNN (paper's)", "knn": "k-NN", "svm": "SVM", "mlp": "MLP"}
    paper = metrics["paper_table1"]
    rows = [
        [
            "paper's Table 1 (one split)",
            *(format_percent(paper[m]["accuracy"]) if m in paper else "" for m in models),
        ]
    ]
    for protocol in metrics["protocols"]:
        rows.append(
            [
                f"`{protocol['name']}`",
                *(
                    format_summary(_entry(metrics, protocol["name"], m)["summary"]["accuracy"])
                    for m in models
                ),
            ]
        )
    return Table(["test accuracy %", *(names.get(m, m) for m in models)], rows)


def per_file_blocks(metrics: dict) -> list:
    """Accuracy per segment and per file, for a table whose rows are segments (or augmented copies).

    Empty for a table of whole clips. A file's prediction is the argmax of the mean of its
    test rows' probabilities (as ``genrekit predict`` averages a file's windows).
    """
    entries = [entry for entry in metrics["results"] if "file_accuracy" in entry["summary"]]
    if not entries:
        return []
    rows = [
        [
            entry["protocol"],
            MODEL_TITLES.get(entry["model"], entry["model"]),
            format_summary(entry["summary"]["accuracy"]),
            format_summary(entry["summary"]["file_accuracy"]),
            str(entry["runs"][0]["metrics"]["n_test_files"]),
        ]
        for entry in entries
    ]
    return [
        Heading("Accuracy per segment and per file", 3),
        Table(
            ["Protocol", "Model", "Per segment (row) %", "Per file %", "Test files (first run)"],
            rows,
            caption=(
                "The table's rows are parts of source clips (segments, augmented copies), kept on one side "
                "of every split. Per file: the argmax of the mean of a clip's test-row probabilities. "
                "Mean ± std [95% t-interval] over seeds or folds."
            ),
        ),
    ]


def paired_table(metrics: dict) -> Table:
    """Build the table of CNN minus baseline accuracy, paired run by run on the same splits (points)."""
    baselines = [model for model in MODEL_TITLES if model != "cnn"]
    rows = [
        [
            protocol["name"],
            *(format_summary(_entry(metrics, protocol["name"], m)["cnn_minus_this"]) for m in baselines),
        ]
        for protocol in metrics["protocols"]
    ]
    classes = ["optimistic" if protocol["optimistic"] else "" for protocol in metrics["protocols"]]
    header = ["Protocol", *(f"CNN minus {MODEL_TITLES[m]}" for m in baselines)]
    return Table(
        header,
        rows,
        classes,
        caption="Accuracy points: mean ± std [95% t-interval] of the paired differences.",
    )


def _extra_models(metrics: dict) -> list[str]:
    """Models of the run beyond the paper's four, in run order."""
    return list(dict.fromkeys(e["model"] for e in metrics["results"] if e["model"] not in MODEL_TITLES))


def all_models_table(metrics: dict) -> Table:
    """Accuracy of every model under every protocol, the paper's Table 1 beside it (percent)."""
    protocols = [p["name"] for p in metrics["protocols"]]
    header = ["Model", "paper's Table 1", *protocols]
    rows = []
    for model in [*MODEL_TITLES, *_extra_models(metrics)]:
        paper = metrics["paper_table1"].get(model)
        cells = [MODEL_TITLES.get(model, model), format_percent(paper["accuracy"]) if paper else "-"]
        for protocol in protocols:
            entry = next(
                (e for e in metrics["results"] if e["protocol"] == protocol and e["model"] == model), None
            )
            cells.append("not run" if entry is None else format_summary(entry["summary"]["accuracy"]))
        rows.append(cells)
    return Table(
        header,
        rows,
        caption="Test accuracy in percent; ours: mean ± std [95% t-interval] over seeds or folds.",
    )


def paired_all_table(metrics: dict) -> Table:
    """Accuracy of every model minus the paper's CNN, paired run by run on the same splits (points)."""
    protocols = [p["name"] for p in metrics["protocols"]]
    rows = []
    for model in [m for m in (*MODEL_TITLES, *_extra_models(metrics)) if m != "cnn"]:
        cells = [MODEL_TITLES.get(model, model)]
        for protocol in protocols:
            entry = next(
                (e for e in metrics["results"] if e["protocol"] == protocol and e["model"] == model), None
            )
            diff = None if entry is None else entry.get("minus_cnn")
            cells.append("-" if diff is None else format_summary(diff))
        rows.append(cells)
    return Table(
        ["Model", *(f"minus CNN, {p}" for p in protocols)],
        rows,
        caption="Accuracy points, this model minus the paper's CNN on the same splits: mean ± std "
        "[95% t-interval] of the paired differences.",
    )


def chosen_table(metrics: dict) -> Table:
    """Build the table of what each outer run's inner search chose, per model and protocol."""
    rows = []
    for entry in metrics["results"]:
        for run in entry["runs"]:
            if run.get("chosen"):
                chosen = "; ".join(
                    f"{member}: " + ", ".join(f"{k}={v}" for k, v in params.items())
                    for member, params in run["chosen"].items()
                )
                accuracy = format_percent(run["metrics"]["accuracy"])
                rows.append(
                    [
                        MODEL_TITLES.get(entry["model"], entry["model"]),
                        entry["protocol"],
                        str(run["repeat"]),
                        chosen,
                        accuracy,
                    ]
                )
    return Table(
        ["Model", "Protocol", "Fold / repeat", "Chosen by the inner search", "Test accuracy %"],
        rows,
        caption="Hyperparameters chosen by each model's inner cross-validation on the outer training rows "
        "only ('params': the model's own grid; otherwise per ensemble member).",
    )


def extra_model_blocks(metrics: dict) -> list:
    """Build the report's section on the models beyond the paper's (empty when none ran)."""
    if not _extra_models(metrics):
        return []
    blocks: list = [
        Heading("Every model under every protocol"),
        Paragraph(
            "Models beyond the paper's four come from genrekit's model registry; each one's feature "
            "transform is fitted on the training rows of each split and its hyperparameters are tuned by "
            "an inner cross-validation on those rows only (nested tuning). They train on the same rows "
            "as the baselines and ignore the validation rows, except the CNN variants, which early-stop "
            "on them like the paper's CNN."
        ),
        all_models_table(metrics),
        Heading("Paired differences against the paper's CNN", 3),
        paired_all_table(metrics),
    ]
    chosen = chosen_table(metrics)
    if chosen.rows:
        blocks += [Heading("What the inner searches chose", 3), chosen]
    return blocks


def importance_blocks(metrics: dict, top: int = 10) -> list:
    """Build the report's section on permutation importance (empty when it was not computed)."""
    importance = metrics.get("importance")
    if not importance:
        return []
    models = list(importance.values())
    titles = [f"{item['name']} ({key})" for key, item in importance.items()]
    family_names = [row["name"] for row in models[0]["families"]]
    family_rows = [
        [
            family,
            *(
                format_summary(next(r for r in item["families"] if r["name"] == family)["drop"])
                for item in models
            ),
        ]
        for family in family_names
    ]
    blocks: list = [
        Heading("Which features matter: permutation importance"),
        Paragraph(
            f"Protocol {models[0]['protocol']}: each fold's model is trained on the other folds; on the "
            f"fold's held-out rows one feature, or one family of features, is shuffled among the rows "
            f"({models[0]['repeats']} shuffles) and the accuracy drop is measured. Accuracy points, "
            "mean ± std [95% t-interval] over folds. Unshuffled accuracy: "
            + "; ".join(
                f"{t} {format_summary(item['accuracy'])}" for t, item in zip(titles, models, strict=True)
            )
            + "."
        ),
        Table(["Family", *titles], family_rows, caption="Accuracy drop when the whole family is shuffled."),
    ]
    for title, item in zip(titles, models, strict=True):
        rows = [[row["name"], format_summary(row["drop"])] for row in item["features"][:top]]
        blocks.append(
            Table(["Feature", "Drop"], rows, caption=f"{title}: the {top} most important features.")
        )
    return blocks


def findings(metrics: dict) -> list[str]:
    """Summarise what the numbers say, one sentence per protocol, all computed from `metrics`."""
    paper_cnn = metrics["paper_table1"]["cnn"]["accuracy"]
    sentences = []
    for protocol in metrics["protocols"]:
        entry = _entry(metrics, protocol["name"], "cnn")
        accuracies = [run["metrics"]["accuracy"] for run in entry["runs"]]
        reached = sum(value >= paper_cnn - 1e-9 for value in accuracies)
        name = "OPTIMISTIC" if protocol["optimistic"] else protocol["name"]
        sentences.append(
            f"{name}: CNN {format_summary(entry['summary']['accuracy'])}% over {len(accuracies)} runs of "
            f"{entry['n_test']} test tracks; single runs range {format_percent(min(accuracies))}% to "
            f"{format_percent(max(accuracies))}%, {reached} of {len(accuracies)} reach the paper's "
            f"{format_percent(paper_cnn)}%."
        )
    pairs = metrics["cnn_detail"]["paper_pairs"]
    sentences.append(
        "Pairs the paper's error analysis names, in our pooled CNN confusions: "
        + "; ".join(
            f"{' / '.join(item['pair'])} {item['total']} ("
            + ("never confused" if item["rank"] is None else f"rank {item['rank']}")
            + ")"
            for item in pairs
        )
        + "."
    )
    return sentences


def _pairs_table(detail: dict) -> Table:
    rows = [
        [f"{a} ↔ {b}", str(pair["a_as_b"]), str(pair["b_as_a"]), str(pair["total"])]
        for pair in detail["confused_pairs"]
        for a, b in [pair["pair"]]
    ]
    return Table(["Pair (a ↔ b)", "a as b", "b as a", "Total"], rows)


def _paper_pairs_table(detail: dict) -> Table:
    rows = [
        [
            " ↔ ".join(item["pair"]),
            str(item["total"]),
            "never" if item["rank"] is None else f"#{item['rank']}",
        ]
        for item in detail["paper_pairs"]
    ]
    return Table(["Pair named by the paper", "Confusions (both ways)", "Rank among all pairs"], rows)


def _per_run_table(metrics: dict) -> Table:
    rows = []
    for entry in metrics["results"]:
        if entry["model"] != "cnn":
            continue
        epochs = [run["best_epoch"] for run in entry["runs"]]
        rows.append(
            [
                entry["protocol"],
                str(entry["n_train"]),
                str(entry["n_val"]),
                str(entry["n_test"]),
                entry["early_stopping"],
                ", ".join(format_percent(run["metrics"]["accuracy"], 0) for run in entry["runs"]),
                f"{min(epochs)} to {max(epochs)}",
            ]
        )
    return Table(
        ["Protocol", "Train", "Val", "Test", "Early stopping on", "Accuracy of each run (%)", "Best epochs"],
        rows,
    )


def _model_summary_table(rows: list[dict]) -> Table:
    header = list(rows[0]) if rows else []
    return Table(header, [[str(row[key]) for key in header] for row in rows])


def _load_text(load: dict | None) -> str:
    """Return the load averages at the start and end of a run, as text (older runs did not record them)."""
    if not load or load.get("start") is None:
        return "not recorded"
    return " / ".join(", ".join(f"{value:.2f}" for value in load[when]) for when in ("start", "end"))


def environment_table(metrics: dict) -> Table:
    """Return the run's environment: data, settings, wall time, machine, load, command, date and versions."""
    env = metrics["environment"]
    settings = env["settings"]
    items = [
        ("Data", f"{metrics['data']['path']} ({metrics['data']['rows']} rows)"),
        ("Data SHA-256", metrics["data"]["sha256"]),
        ("Seeds", ", ".join(map(str, env["seeds"]))),
        (
            "Folds / epoch cap / patience",
            f"{settings['folds']} / {settings['epochs']} / {settings['patience']}",
        ),
        ("Quick settings", "yes (reduced, not for citing)" if settings["quick"] else "no"),
        ("Worker processes (torch threads each: 1)", str(env["jobs"])),
        ("Wall time", f"{env['wall_seconds']:.0f} s ({env['note']})"),
        ("CPU count", str(env["cpu_count"])),
        ("Load average (1, 5, 15 min) at start / end", _load_text(env.get("load_average"))),
        ("Command", env.get("command", "not recorded")),
        ("Date (UTC)", env["date"]),
        ("Platform", env["platform"]),
        *((name, env[name]) for name in ("python", "numpy", "torch", "scikit-learn", "librosa", "genrekit")),
    ]
    return Table(["Item", "Value"], [[name, str(value)] for name, value in items])


def build_blocks(metrics: dict) -> list:
    """Build the report as a list of :class:`Heading`, :class:`Paragraph`, :class:`Table`, :class:`Figure`.

    Parameters
    ----------
    metrics : dict
        The reproduction's metrics (the content of ``metrics.json``).

    Returns
    -------
    list
        The blocks, in reading order.
    """
    from genrekit.evaluation.figures import paper_figure_blocks

    detail = metrics["cnn_detail"]
    settings = metrics["environment"]["settings"]
    cnn = {p["name"]: _entry(metrics, p["name"], "cnn")["summary"]["accuracy"] for p in metrics["protocols"]}
    blocks: list = [Heading(metrics["title"], 1)]
    if settings["quick"]:
        blocks.append(
            Paragraph(
                "QUICK RUN: reduced seeds, folds and epochs (a smoke test); do not cite these numbers.",
                warning=True,
            )
        )
    summary_line = "; ".join(f"{name}: {format_summary(value)}" for name, value in cnn.items())
    blocks += [
        Paragraph(
            f"The paper reports 77.0% test accuracy for its 1D CNN on a single 100-track test set. "
            f"Our CNN test accuracy (%, mean ± std [95% t-interval]) by protocol — {summary_line}."
        ),
        Heading("Headline: the paper's Table 1 beside ours"),
        headline_table(metrics),
        *per_file_blocks(metrics),
        Figure(
            "accuracy",
            figure_headline(metrics),
            "Mean test accuracy with 95% t-intervals; dashed black lines: the paper's Table 1.",
        ),
        Paragraph(
            "OPTIMISTIC rows use the test rows as the early-stopping validation set (the epoch with the "
            "lowest test loss is restored), which is what the paper's equal final validation and test "
            "accuracies (77.00%) suggest. The test set then selects the model, so those numbers are "
            "biased upwards and are not an estimate of accuracy on unseen music.",
            warning=True,
        ),
        Heading("Findings"),
        *(Paragraph(text) for text in findings(metrics)),
        Heading("CNN vs baselines, paired by split", 3),
        paired_table(metrics),
        Heading("Protocols"),
        Table(
            ["Protocol", "What it is"],
            [[p["name"], p["description"]] for p in metrics["protocols"]],
            ["optimistic" if p["optimistic"] else "" for p in metrics["protocols"]],
        ),
        Paragraph(
            "Baselines (k-NN, SVM, MLP: StandardScaler + classifier) train on exactly the training rows "
            "of each split, with scaler statistics fitted on those rows only; they do not use the "
            "validation rows. Intervals are Student-t 95% intervals of the mean over repeats (paper, "
            "filtered, optimistic) or folds (cv); for the fixed filtered split they cover training "
            "randomness only."
        ),
    ]
    blocks += [
        Paragraph(f"Note ({note['protocol']}): {note['note']}", warning=True) for note in metrics["notes"]
    ]
    blocks += extra_model_blocks(metrics)
    blocks += importance_blocks(metrics)
    curves = detail["curves"]
    blocks += [
        Heading("The CNN in detail"),
        Heading("Learning curves", 3),
        Figure(
            "curves",
            figure_curves(curves),
            f"Protocol {curves['protocol']}, repeat {curves['repeat']} (seed {curves['seed']}): "
            f"{curves['n_epochs_run']} epochs run, best validation epoch {curves['best_epoch']} restored.",
        ),
        _per_run_table(metrics),
        Heading("Confusion matrix", 3),
        Paragraph(f"Pooled over {detail['pooled_over']} ({detail['n_predictions']} predictions)."),
        Figure(
            "confusion",
            figure_confusion(detail),
            f"CNN confusion matrix, protocol {detail['protocol']} "
            "(rows: true genre; colour: share of the row).",
        ),
        Heading("Per-genre classification report and ROC-AUC", 3),
        Paragraph(
            f"Protocol {detail['protocol']}, the same pooled out-of-fold predictions; ROC-AUC is "
            "one-vs-rest from the predicted probabilities."
        ),
        report_table(detail),
        Figure("per_genre", figure_per_genre(detail), "Per-genre F1 and ROC-AUC (same predictions)."),
        Heading("Most confused genre pairs vs the paper's error analysis", 3),
        _pairs_table(detail),
        _paper_pairs_table(detail),
        Heading("Example predictions", 3),
        Paragraph(
            f"Protocol {detail['examples']['protocol']}, repeat {detail['examples']['repeat']}: the most "
            "confident mistakes, then the most confident correct predictions."
        ),
        Table(
            ["File", "True", "Predicted", "Probability"],
            [
                [row["file"], row["true"], row["predicted"], f"{row['probability']:.2f}"]
                for row in detail["examples"]["rows"]
            ],
            ["" if row["correct"] else "wrong" for row in detail["examples"]["rows"]],
        ),
        Heading("Model summary", 3),
        _model_summary_table(detail["model_summary"]),
        Paragraph(detail["params_note"]),
    ]
    blocks += paper_figure_blocks(metrics)
    blocks += [Heading("Environment"), environment_table(metrics)]
    return blocks


# --------------------------------------------------------------------------------------------- renderers


def write_report(metrics: dict, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md`` with ``figures/*.png``, and ``report.html`` to `out`, atomically.

    Parameters
    ----------
    metrics : dict
        The reproduction's metrics (see :func:`genrekit.evaluation.reproduce.reproduce`).
    out : path-like
        Output folder (created).

    Returns
    -------
    dict
        ``{"json", "markdown", "html"}`` paths.
    """
    out = Path(out)
    metrics = jsonable(metrics)
    blocks = build_blocks(metrics)
    for block in blocks:
        if isinstance(block, Figure):
            atomic_write_bytes(out / "figures" / f"{block.name}.png", block.png)
    paths = {"json": out / "metrics.json", "markdown": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["json"], json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], to_markdown(blocks))
    atomic_write_text(paths["html"], to_html(blocks))
    return paths
