"""The paper's figures per protocol (curves over runs, confusion, ROC, reliability) and spectrograms."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from genrekit.cli import main
from genrekit.evaluation.document import Figure, to_html
from genrekit.evaluation.figures import (
    curve_stats,
    figure_data,
    figure_reliability,
    figure_roc,
    genre_clips,
    paper_figure_blocks,
    reliability_bins,
    roc_points,
    spectrogram_png,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history(n_epochs: int, offset: float) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2 / e + offset,
            "train_accuracy": min(1.0, 0.1 * e + offset),
            "val_loss": 2.2 / e + offset,
            "val_accuracy": 0.08 * e + offset,
        }
        for e in range(1, n_epochs + 1)
    ]


def test_curve_stats_average_the_runs_still_training():
    stats = curve_stats([_history(3, 0.0), _history(5, 0.1)])
    assert stats["epoch"] == [1, 2, 3, 4, 5] and stats["n_runs"] == [2, 2, 2, 1, 1]
    assert stats["val_accuracy"]["mean"][0] == pytest.approx((0.08 + 0.18) / 2)
    assert stats["val_accuracy"]["std"][0] == pytest.approx(0.05)
    assert stats["train_loss"]["mean"][4] == pytest.approx(2 / 5 + 0.1) and stats["train_loss"]["std"][4] == 0


def test_roc_and_reliability_numbers():
    classes = np.array(["a", "b"])
    y = np.array(["a", "a", "b", "b"])
    perfect = np.array([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.25, 0.75]])
    roc = roc_points(y, perfect, classes)
    assert roc["auc"] == {"a": 1.0, "b": 1.0, "micro": 1.0}
    assert roc["tpr"]["a"][0] == 1.0 and len(roc["fpr"]) == len(roc["tpr"]["micro"])
    bins = reliability_bins(y, perfect, classes)
    assert bins["count"] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # top probabilities .65 .75 .85 .95
    assert bins["accuracy"][6] == 1.0 and bins["confidence"][6] == pytest.approx(0.65)
    assert bins["accuracy"][0] is None
    assert bins["ece"] == pytest.approx(np.mean([0.05, 0.15, 0.35, 0.25]))
    wrong = perfect[:, ::-1]  # same confidences, every prediction wrong
    assert reliability_bins(y, wrong, classes)["ece"] == pytest.approx(np.mean([0.95, 0.85, 0.65, 0.75]))


def _fake_results(rng) -> tuple[list[dict], np.ndarray, np.ndarray]:
    classes = np.array(["blues", "jazz", "rock"])
    y = np.repeat(classes, 20)
    results = []
    for protocol, n_runs in (("paper", 2), ("cv3", 3)):
        for repeat in range(n_runs):
            test = rng.choice(len(y), 15, replace=False)
            proba = rng.dirichlet(np.ones(3), size=15)
            proba[np.arange(15), np.searchsorted(classes, y[test])] += 1.0
            proba /= proba.sum(axis=1, keepdims=True)
            results.append(
                {
                    "protocol": protocol,
                    "model": "cnn",
                    "test": test,
                    "proba": proba,
                    "history": _history(6 + repeat, 0.01 * repeat),
                    "best_epoch": 4 + repeat,
                }
            )
    return results, y, classes


def test_figure_blocks_render_and_repeat_byte_for_byte():
    results, y, classes = _fake_results(np.random.default_rng(0))
    data = figure_data(results, y, classes)
    assert list(data["protocols"]) == ["paper", "cv3"] and data["protocols"]["cv3"]["n_runs"] == 3
    pooled = {
        "labels": list(classes),
        "confusion": [[4, 1, 0], [0, 5, 1], [1, 0, 3]],
        "n_predictions": 15,
        "classification_report": {
            name: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 5}
            for name in [*classes, "macro avg"]
        },
        "roc_auc": {**{name: 0.8 for name in classes}, "macro": 0.8},
    }
    metrics = {
        "figure_data": data,
        "results": [
            {"protocol": p, "model": "cnn", "n_test": 15, "pooled": pooled} for p in ("paper", "cv3")
        ],
    }
    first, second = paper_figure_blocks(metrics), paper_figure_blocks(metrics)
    names = [block.name for block in first if isinstance(block, Figure)]
    assert names == ["learning_curves", "confusion_paper", "confusion_cv3", "roc", "reliability"]
    for a, b in zip(first, second, strict=True):
        if isinstance(a, Figure):
            assert a.png.startswith(PNG_MAGIC) and a.png == b.png  # same numbers, same bytes
    assert "Learning curves (Figs. 2 and 6)" in to_html(first)
    assert paper_figure_blocks({"results": []}) == []  # reports written before this section


def test_spectrogram_of_one_clip_per_genre(gtzan_flac_dir: Path):
    clips = genre_clips(gtzan_flac_dir)
    assert [c["genre"] for c in clips][:3] == ["blues", "classical", "country"] and len(clips) == 10
    assert Path(clips[0]["path"]).name == "blues.00000.flac"
    from PIL import Image

    png = spectrogram_png(clips[0]["path"], "blues")
    image = Image.open(io.BytesIO(png))
    assert png.startswith(PNG_MAGIC) and image.size[0] > 600 and image.size[1] > 700


def test_plot_command(cross_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "trumpet.png"
    assert main(["plot", str(cross_dir / "sorohanro_-_solo-trumpet-06.ogg"), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    bad = tmp_path / "not_audio.ogg"
    bad.write_text("hello")
    assert main(["plot", str(bad), "-o", str(tmp_path / "bad.png")]) == 2
    assert "not_audio.ogg" in capsys.readouterr().err and not (tmp_path / "bad.png").exists()


def test_report_renders_in_headless_chromium(tmp_path: Path):
    import shutil
    import subprocess

    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed (.ci/run installs Debian's chromium)")
    results, y, classes = _fake_results(np.random.default_rng(1))
    data = figure_data(results, y, classes)
    page = tmp_path / "report.html"
    page.write_text(
        to_html([Figure("roc", figure_roc(data), "ROC"), Figure("rel", figure_reliability(data), "R")])
    )
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (1400, 1100)
    drawn = (pixels.min(axis=2) < 200).mean()  # the figures' lines and bars, not a blank page
    assert 0.01 < drawn < 0.6
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 110)  # the reliability bars (#4c72b0) were drawn
    assert blue.mean() > 0.005
