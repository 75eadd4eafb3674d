"""The paper's figures, per protocol, for the reproduction report; spectrograms of audio clips.

The paper shows one training run: loss and accuracy over epochs (its Figs. 2 and 6), a
classification report (Fig. 3), a confusion matrix (Fig. 7) and spectrograms of four genres
(Figs. 9-12). The reproduction has many runs per protocol, so :func:`figure_data` condenses
them into what these figures need, as plain JSON-ready numbers stored in ``metrics.json``
(``figure_data``):

* learning curves: the mean and standard deviation over runs of each per-epoch value;
* ROC curves: true-positive rates of each genre (one-vs-rest) and their micro average on a
  fixed grid of false-positive rates, from the pooled test probabilities;
* reliability: accuracy and mean top probability in ten confidence bins, and the expected
  calibration error.

:func:`paper_figure_blocks` turns them (and the per-protocol confusion matrices already in
the results) into report blocks. :func:`spectrogram_png` draws the mel spectrogram, its
harmonic/percussive split and the chromagram of one clip; ``genrekit plot`` and
``genrekit reproduce --audio DIR`` use it.

Every figure is a pure function of these numbers (and of the audio), drawn by matplotlib's
Agg backend, whose PNG output holds no date: the same seed gives the same numbers and so
byte-identical PNG files on the same machine and library versions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrekit.core.schema import GENRES, SAMPLE_RATE
from genrekit.evaluation.document import Table

CURVE_KEYS: tuple[str, ...] = ("train_accuracy", "val_accuracy", "train_loss", "val_loss")
"""Per-epoch values of a CNN run's history that the learning curves show."""

ROC_GRID: np.ndarray = np.linspace(0.0, 1.0, 101)
"""False-positive rates at which the ROC curves are stored."""

N_BINS: int = 10
"""Confidence bins of the reliability diagram."""

SPECTROGRAM_SECONDS: float = 30.0
"""Length of audio a spectrogram figure shows (the start of the file)."""


# ------------------------------------------------------------------------------------------------- numbers


def curve_stats(histories: Sequence[Sequence[dict]]) -> dict:
    """Mean and standard deviation over runs of each per-epoch value.

    Runs stop at different epochs (early stopping); at each epoch the statistics cover the
    runs still training then, and ``n_runs`` says how many those are.

    Parameters
    ----------
    histories : sequence of sequence of dict
        One CNN history per run (rows with ``epoch`` and :data:`CURVE_KEYS`).

    Returns
    -------
    dict
        ``epoch`` (list), ``n_runs`` (list), and for each key of :data:`CURVE_KEYS`
        ``{"mean": [...], "std": [...]}`` (None where no run has the value).
    """
    longest = max(len(history) for history in histories)
    stats: dict = {"epoch": list(range(1, longest + 1)), "n_runs": []}
    for key in CURVE_KEYS:
        stats[key] = {"mean": [], "std": []}
    for epoch in range(longest):
        rows = [history[epoch] for history in histories if len(history) > epoch]
        stats["n_runs"].append(len(rows))
        for key in CURVE_KEYS:
            values = [row[key] for row in rows if row.get(key) is not None]
            stats[key]["mean"].append(float(np.mean(values)) if values else None)
            stats[key]["std"].append(float(np.std(values)) if values else None)
    return stats


def roc_points(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict:
    """One-vs-rest ROC curves of every class and their micro average, on :data:`ROC_GRID`.

    Parameters
    ----------
    y_true : ndarray of str
        True labels.
    proba : ndarray of shape (n, n_classes)
        Predicted probabilities, columns in the order of `classes`.
    classes : sequence of str
        Class names.

    Returns
    -------
    dict
        ``fpr`` (the grid), ``tpr`` (class -> list, plus ``"micro"``) and ``auc``
        (class -> area under the exact curve, plus ``"micro"``).
    """
    from sklearn.metrics import auc, roc_curve

    onehot = np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]
    columns = {str(name): (onehot[:, i], proba[:, i]) for i, name in enumerate(classes)}
    columns["micro"] = (onehot.ravel(), np.asarray(proba).ravel())
    tpr, areas = {}, {}
    for name, (truth, score) in columns.items():
        if truth.all() or not truth.any():
            continue
        fpr_exact, tpr_exact, _ = roc_curve(truth, score)
        tpr[name] = np.interp(ROC_GRID, fpr_exact, tpr_exact).round(4).tolist()
        areas[name] = float(auc(fpr_exact, tpr_exact))
    return {"fpr": ROC_GRID.round(4).tolist(), "tpr": tpr, "auc": areas}


def reliability_bins(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy against confidence (the top probability) in :data:`N_BINS` equal-width bins.

    Returns
    -------
    dict
        ``edges`` (bin edges), ``count``, ``confidence`` (mean top probability) and
        ``accuracy`` per bin (None for empty bins), and ``ece``, the expected calibration
        error (count-weighted mean of ``|accuracy - confidence|``).
    """
    proba = np.asarray(proba)
    confidence = proba.max(axis=1)
    correct = np.asarray(classes)[proba.argmax(axis=1)] == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, N_BINS - 1)
    count, mean_conf, accuracy = [], [], []
    ece = 0.0
    for b in range(N_BINS):
        mask = index == b
        count.append(int(mask.sum()))
        if not mask.any():
            mean_conf.append(None)
            accuracy.append(None)
            continue
        mean_conf.append(float(confidence[mask].mean()))
        accuracy.append(float(correct[mask].mean()))
        ece += mask.sum() / len(confidence) * abs(accuracy[-1] - mean_conf[-1])
    return {
        "edges": edges.round(4).tolist(),
        "count": count,
        "confidence": mean_conf,
        "accuracy": accuracy,
        "ece": float(ece),
    }


def figure_data(results: list[dict], y: np.ndarray, classes: np.ndarray, model: str = "cnn") -> dict:
    """Condense the runs of `model` into the numbers of the per-protocol figures.

    Parameters
    ----------
    results : list of dict
        Run results of :func:`genrekit.evaluation.reproduce.run_task` (with ``test``,
        ``proba`` and, for the CNN, ``history``).
    y : ndarray of str
        Labels of all table rows.
    classes : ndarray of str
        Class order of the probability columns.
    model : str
        Which model's runs (the CNN's: the only one with learning curves).

    Returns
    -------
    dict
        ``model`` and ``protocols``: protocol -> ``n_runs``, ``best_epochs``, ``curves``
        (:func:`curve_stats`), ``roc`` (:func:`roc_points`) and ``reliability``
        (:func:`reliability_bins`), in the order the protocols ran.
    """
    protocols: dict[str, dict] = {}
    for protocol in dict.fromkeys(run["protocol"] for run in results):
        runs = [run for run in results if run["protocol"] == protocol and run["model"] == model]
        if not runs:
            continue
        rows = np.concatenate([run["test"] for run in runs])
        proba = np.concatenate([run["proba"] for run in runs])
        entry = {"n_runs": len(runs), "roc": roc_points(y[rows], proba, classes)}
        entry["reliability"] = reliability_bins(y[rows], proba, classes)
        if all("history" in run for run in runs):
            entry["curves"] = curve_stats([run["history"] for run in runs])
            entry["best_epochs"] = [int(run["best_epoch"]) for run in runs]
        protocols[protocol] = entry
    return {"model": model, "protocols": protocols}


# ------------------------------------------------------------------------------------------------ figures


def _plt():
    from genrekit.evaluation.document import pyplot

    return pyplot()


def _png(fig, palette: bool = False) -> bytes:
    """Render `fig` as PNG; `palette`: as 256 colours (a third of the size for noisy images)."""
    from genrekit.evaluation.document import png as render

    data = render(fig)
    if not palette:
        return data
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def figure_learning_curves(data: dict) -> bytes:
    """Accuracy and loss over epochs per protocol: mean over runs (line) with a ±1 std band.

    Curves end where fewer than half of a protocol's runs are still training; the dotted
    line marks the median best (restored) epoch.
    """
    plt = _plt()
    protocols = [(name, item) for name, item in data["protocols"].items() if "curves" in item]
    fig, axes = plt.subplots(len(protocols), 2, figsize=(8.5, 2.3 * len(protocols)), squeeze=False)
    for row, (name, item) in enumerate(protocols):
        curves = item["curves"]
        keep = [i for i, n in enumerate(curves["n_runs"]) if n >= max(1, item["n_runs"] / 2)]
        epochs = np.asarray(curves["epoch"])[keep]
        for ax, kind, scale in ((axes[row, 0], "accuracy", 100), (axes[row, 1], "loss", 1)):
            for split, color in (("train", "#4c72b0"), ("val", "#c44e52")):
                stats = curves[f"{split}_{kind}"]
                mean = np.asarray([stats["mean"][i] for i in keep], dtype=float) * scale
                std = np.asarray([stats["std"][i] for i in keep], dtype=float) * scale
                label = "train" if split == "train" else "validation (test rows if OPTIMISTIC)"
                ax.plot(epochs, mean, color=color, linewidth=1.2, label=label)
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            ax.axvline(np.median(item["best_epochs"]), color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{name}: {kind}{' (%)' if kind == 'accuracy' else ''}, {item['n_runs']} runs")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("mean ± std")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(frameon=False, fontsize=7.5, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def figure_confusion_pair(pooled: dict, title: str) -> bytes:
    """Two confusion matrices side by side: counts, and each true genre's row as shares."""
    plt = _plt()
    labels = pooled["labels"]
    counts = np.asarray(pooled["confusion"])
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, values, name in ((axes[0], counts, "counts"), (axes[1], share, "normalised by true genre")):
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    text = str(values[i, j]) if values is counts else f"{values[i, j]:.2f}".lstrip("0")
                    color = "white" if share[i, j] > 0.55 else "black"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=color)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7.5)
        ax.set_yticks(range(len(labels)), labels, fontsize=7.5)
        ax.set_xlabel("predicted genre")
        ax.set_ylabel("true genre")
        ax.set_title(f"{title}: {name}")
        ax.spines[:].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def figure_roc(data: dict) -> bytes:
    """ROC curves per protocol: each genre one-vs-rest, and the micro average (thick black)."""
    plt = _plt()
    protocols = list(data["protocols"].items())
    fig, axes = plt.subplots(1, len(protocols), figsize=(3.2 * len(protocols), 3.5), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, item) in zip(axes[0], protocols, strict=True):
        roc = item["roc"]
        for k, (label, tpr) in enumerate(item for item in roc["tpr"].items() if item[0] != "micro"):
            ax.plot(
                roc["fpr"], tpr, color=cmap(k % 10), linewidth=0.9, label=f"{label} {roc['auc'][label]:.2f}"
            )
        if "micro" in roc["tpr"]:
            micro = f"micro {roc['auc']['micro']:.2f}"
            ax.plot(roc["fpr"], roc["tpr"]["micro"], color="black", linewidth=2, label=micro)
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"{name} ({item['n_runs']} runs pooled)")
        ax.set_xlabel("false-positive rate")
        ax.set_aspect("equal")
        ax.legend(fontsize=5.8, frameon=False, loc="lower right", title="AUC", title_fontsize=6)
    axes[0, 0].set_ylabel("true-positive rate")
    fig.tight_layout()
    return _png(fig)


def figure_reliability(data: dict) -> bytes:
    """Reliability diagram per protocol: accuracy in each confidence bin against the diagonal."""
    plt = _plt()
    protocols = list(data["protocols"].items())
    fig, axes = plt.subplots(
        2, len(protocols), figsize=(3.2 * len(protocols), 4.4), squeeze=False, height_ratios=[3, 1]
    )
    for col, (name, item) in enumerate(protocols):
        rel = item["reliability"]
        edges = np.asarray(rel["edges"])
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        accuracy = np.asarray([np.nan if a is None else a for a in rel["accuracy"]])
        ax = axes[0, col]
        ax.bar(centres, accuracy, width * 0.9, color="#4c72b0", label="accuracy in bin")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect calibration")
        confidence = np.asarray([np.nan if c is None else c for c in rel["confidence"]])
        ax.plot(centres, confidence, "o", color="#c44e52", markersize=3, label="mean top probability in bin")
        ax.set_title(f"{name}: ECE {rel['ece']:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        axes[1, col].bar(centres, rel["count"], width * 0.9, color="#8c8c8c")
        axes[1, col].set_xlim(0, 1)
        axes[1, col].set_xlabel("top probability")
    axes[0, 0].set_ylabel("accuracy")
    axes[1, 0].set_ylabel("predictions")
    axes[0, 0].legend(fontsize=6.5, frameon=False, loc="upper left")
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------------------------------- spectrograms


def spectrogram_png(path: str | os.PathLike[str], title: str | None = None) -> bytes:
    """Draw the mel spectrogram, harmonic and percussive parts, and chromagram of an audio file.

    The first :data:`SPECTROGRAM_SECONDS` seconds are shown, decoded to mono at 22,050 Hz like
    every input of genrekit; time in seconds, frequency in Hz (mel-spaced axis), the chromagram
    by pitch class. The harmonic/percussive split is librosa's median-filtering HPSS (the
    source of the features ``harmony`` and ``perceptr``), with genrekit's fast median filter.

    Parameters
    ----------
    path : path-like
        Any audio file :func:`genrekit.audio.decode.load_audio` reads.
    title : str, optional
        Figure title (default: the file name).

    Returns
    -------
    bytes
        The PNG.

    Raises
    ------
    AudioError
        If the file cannot be decoded; the message names it.
    """
    import librosa

    from genrekit.audio.decode import load_audio

    y = load_audio(path, sr=SAMPLE_RATE)[: round(SPECTROGRAM_SECONDS * SAMPLE_RATE)]
    stft = librosa.stft(y)
    harmonic, percussive = _hpss(stft)
    panels = [("mel spectrogram", stft), ("harmonic part", harmonic), ("percussive part", percussive)]
    mels = [librosa.feature.melspectrogram(S=np.abs(part) ** 2, sr=SAMPLE_RATE) for _, part in panels]
    ref = max(float(mels[0].max()), 1e-20)  # 0 dB: the loudest mel bin of the whole clip
    extent = (0.0, len(y) / SAMPLE_RATE, 0.0, float(mels[0].shape[0]))
    plt = _plt()
    fig, axes = plt.subplots(4, 1, figsize=(8, 9.5), sharex=True)
    for ax, (name, _), mel in zip(axes, panels, mels, strict=False):
        db = librosa.power_to_db(mel, ref=ref, top_db=None)
        image = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=-80, vmax=0)
        _mel_hz_ticks(ax, mel.shape[0])
        ax.set_title(name)
        ax.set_ylabel("frequency (Hz)")
    fig.colorbar(image, ax=list(axes[:3]), format="%+.0f dB", fraction=0.03, pad=0.02)
    chroma = librosa.feature.chroma_stft(S=np.abs(stft) ** 2, sr=SAMPLE_RATE)
    image = axes[3].imshow(
        chroma, origin="lower", aspect="auto", extent=(*extent[:2], -0.5, 11.5), cmap="magma"
    )
    axes[3].set_yticks(
        range(12), ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"], fontsize=7
    )
    axes[3].set_title("chromagram")
    axes[3].set_ylabel("pitch class")
    axes[3].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[3], fraction=0.03, pad=0.02, label="energy / frame max")
    fig.suptitle(drawable(title or Path(path).name))
    return _png(fig, palette=True)


def drawable(text: str) -> str:
    """Return `text` with each character that matplotlib's font cannot draw replaced by ``?``.

    File names may be in any script; drawing a character the font lacks prints a glyph
    warning (naming genrekit's source) and an empty box. Characters the font has are kept,
    so ``摇滚.flac`` becomes ``??.flac`` with the default font and stays whole with a font
    that covers Chinese (``matplotlib.rcParams["font.family"]``).
    """
    from matplotlib.font_manager import FontProperties, findfont, get_font

    font = get_font(findfont(FontProperties()))
    return "".join(c if c.isspace() or font.get_char_index(ord(c)) else "?" for c in text)


def _mel_hz_ticks(ax, n_mels: int) -> None:
    """Label a mel-bin axis (``imshow`` extent 0..n_mels) in Hz."""
    import librosa

    edges = librosa.mel_frequencies(n_mels + 2, fmax=SAMPLE_RATE / 2)  # librosa's mel filter centres
    hz = [0, 500, 1000, 2000, 4000, 8000]
    ax.set_yticks(np.interp(hz, edges[1:-1], np.arange(n_mels) + 0.5), [str(v) for v in hz])


def _hpss(stft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a complex STFT (frequency x time) like ``librosa.decompose.hpss`` (kernel 31, soft masks).

    The median filters are genrekit's exact C running median
    (:func:`genrekit.audio.features.running_median`), much faster than SciPy's.
    """
    import librosa

    from genrekit.audio.features import running_median

    mag = np.abs(stft).astype(np.float32)
    harm = running_median(mag, 31, axis=1)  # across time: sustained tones
    perc = running_median(mag, 31, axis=0)  # across frequency: broadband hits
    mask_h = librosa.util.softmask(harm, perc, power=2, split_zeros=False)
    mask_p = librosa.util.softmask(perc, harm, power=2, split_zeros=False)
    return stft * mask_h, stft * mask_p


def genre_clips(audio_dir: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Pick one clip per genre folder of `audio_dir` (the first file by name).

    Parameters
    ----------
    audio_dir : path-like
        A folder of genre folders (``blues/``, ``hiphop/``, ...), searched recursively.

    Returns
    -------
    list of dict
        ``{"genre", "path"}``, GTZAN genres first in their usual order, then others by name.

    Raises
    ------
    GenrekitError
        If `audio_dir` holds no audio file.
    """
    from genrekit.audio.decode import audio_files
    from genrekit.core.errors import GenrekitError

    root = Path(audio_dir)
    files = sorted(audio_files([root]))
    if not files:
        raise GenrekitError(f"{root}: no audio files for the spectrogram figures")
    picked: dict[str, Path] = {}
    for path in files:
        genre = path.parent.name if path.parent != root else path.name.split(".")[0]
        picked.setdefault(genre, path)
    order = sorted(picked, key=lambda g: (GENRES.index(g) if g in GENRES else len(GENRES), g))
    return [{"genre": genre, "path": str(picked[genre])} for genre in order]


# ------------------------------------------------------------------------------------------------- blocks


def paper_figure_blocks(metrics: dict) -> list:
    """Report blocks with the paper's figures per protocol (and spectrograms when clips are given).

    Parameters
    ----------
    metrics : dict
        The reproduction's metrics; uses ``figure_data`` (when present), ``results``
        (per-protocol confusion matrices and classification reports) and ``spectrograms``
        (when present: ``{"genre", "path"}`` clips).

    Returns
    -------
    list
        Report blocks (see :mod:`genrekit.evaluation.report`); empty without ``figure_data``.
    """
    from genrekit.evaluation.document import Figure, Heading, Paragraph

    data = metrics.get("figure_data")
    if not data:
        return []
    blocks: list = [
        Heading("The paper's figures, per protocol"),
        Paragraph(
            "Where each of the paper's figures is: loss and accuracy over epochs (Figs. 2 and 6) and the "
            "confusion matrix (Fig. 7) below, for every protocol and over all runs instead of one; "
            "classification report (Fig. 3) below per protocol and above for the pooled cross-validation; "
            "model summary (Fig. 4) and example predictions (Fig. 8) in 'The CNN in detail'; test accuracy "
            "(Fig. 5) in the headline table; spectrograms (Figs. 9-12) at the end when the run was given "
            "audio clips (--audio). ROC curves and the reliability diagram are the paper's 'advanced "
            "metrics' (section 16)."
        ),
        Heading("Learning curves (Figs. 2 and 6)", 3),
        Figure(
            "learning_curves",
            figure_learning_curves(data),
            "CNN accuracy and loss per epoch: mean over the protocol's runs, band ±1 std; curves end where "
            "fewer than half of the runs still train (early stopping); dotted: median best epoch.",
        ),
        Heading("Confusion matrices (Fig. 7), per protocol", 3),
    ]
    for protocol in data["protocols"]:
        entry = next(
            e for e in metrics["results"] if e["protocol"] == protocol and e["model"] == data["model"]
        )
        blocks.append(
            Figure(
                f"confusion_{protocol}",
                figure_confusion_pair(entry["pooled"], protocol),
                f"CNN, protocol {protocol}: test predictions of its {data['protocols'][protocol]['n_runs']} "
                f"runs pooled ({entry['pooled']['n_predictions']} predictions); left: counts, right: shares "
                "of each true genre.",
            )
        )
    blocks.append(Heading("Classification reports (Fig. 3), per protocol", 3))
    for protocol in data["protocols"]:
        entry = next(
            e for e in metrics["results"] if e["protocol"] == protocol and e["model"] == data["model"]
        )
        n_runs = data["protocols"][protocol]["n_runs"]
        blocks += [
            Paragraph(f"Protocol {protocol}: CNN, the pooled test predictions of its {n_runs} runs."),
            report_table(entry["pooled"]),
        ]
    blocks += [
        Heading("ROC curves", 3),
        Figure(
            "roc",
            figure_roc(data),
            "One-vs-rest ROC curve of each genre from the CNN's pooled test probabilities, per protocol; "
            "legend: area under each curve; black: micro average over all genres.",
        ),
        Heading("Reliability of the probabilities", 3),
        Figure(
            "reliability",
            figure_reliability(data),
            "Top: accuracy of the CNN's predictions grouped by their top probability (bars) against "
            "perfect calibration (dashed); ECE: expected calibration error. Bottom: predictions per bin. "
            "These are the CNN's raw softmax probabilities (the shipped model is temperature-scaled).",
        ),
    ]
    blocks += spectrogram_blocks(metrics.get("spectrograms") or [])
    return blocks


def spectrogram_blocks(clips: list[dict]) -> list:
    """Report blocks with one spectrogram figure per ``{"genre", "path"}`` clip (Figs. 9-12)."""
    from genrekit.evaluation.document import Figure, Heading

    if not clips:
        return []
    blocks: list = [Heading("Spectrograms per genre (Figs. 9-12)", 3)]
    for clip in clips:
        name = Path(clip["path"]).name
        blocks.append(
            Figure(
                f"spectrogram_{clip['genre']}",
                spectrogram_png(clip["path"], f"{clip['genre']}: {name}"),
                f"{clip['genre'].upper()}: {name}, first {SPECTROGRAM_SECONDS:.0f} s: mel spectrogram, its "
                "harmonic and percussive parts (HPSS), chromagram.",
            )
        )
    return blocks


def report_table(pooled: dict) -> Table:
    """Per-genre precision / recall / F1 / support, plus ROC-AUC."""
    rows = []
    for name, row in pooled["classification_report"].items():
        auc = pooled["roc_auc"].get(name, pooled["roc_auc"]["macro"] if name == "macro avg" else None)
        rows.append(
            [
                name,
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1']:.3f}",
                str(row["support"]),
                "" if auc is None else f"{auc:.3f}",
            ]
        )
    classes = ["avg" if name.endswith("avg") else "" for name in pooled["classification_report"]]
    return Table(["Genre", "Precision", "Recall", "F1", "Support", "ROC-AUC (OvR)"], rows, classes)
