from __future__ import annotations

import json
import math

import numpy as np

from genrekit.core.jsonable import jsonable
from genrekit.evaluation.document import Figure, Heading, Paragraph, Table, to_html, to_markdown
from genrekit.evaluation.report import figure_confusion, figure_curves, format_percent, format_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_format_summary():
    summary = {"mean": 0.6612, "std": 0.0291, "ci_low": 0.64, "ci_high": 0.6821}
    assert format_summary(summary) == "66.1 ± 2.9 [64.0, 68.2]"
    assert format_summary({"mean": 0.5, "std": 0.0, "ci_low": None, "ci_high": None}) == "50.0 ± 0.0"
    assert format_summary({"mean": 0.5, "std": 0.0, "ci_low": math.nan, "ci_high": math.nan}) == "50.0 ± 0.0"
    assert format_percent(None) == "n/a"


def test_jsonable_makes_strict_json():
    value = {"a": np.float32(0.5), "b": np.arange(3), "c": (1, math.nan), 4: np.int64(2)}
    plain = jsonable(value)
    assert plain == {"a": 0.5, "b": [0, 1, 2], "c": [1, None], "4": 2}
    json.dumps(plain, allow_nan=False)


def test_renderers_share_the_blocks():
    blocks = [
        Heading("Title", 1),
        Paragraph("Careful <b>", warning=True),
        Table(["A", "B|C"], [["1", "x"], ["2", "y"]], ["", "optimistic"], caption="cap"),
        Figure("fig", PNG_MAGIC + b"data", "A figure"),
    ]
    md = to_markdown(blocks)
    assert md.startswith("# Title\n")
    assert "> **Warning:** Careful <b>" in md
    assert "| A | B\\|C |" in md and "| **2** | **y** |" in md
    assert "![A figure](figures/fig.png)" in md
    page = to_html(blocks)
    assert page.startswith("<!DOCTYPE html>") and "<title>Title</title>" in page
    assert "Careful &lt;b&gt;" in page
    assert '<tr class="optimistic"><td>2</td><td>y</td></tr>' in page
    assert "data:image/png;base64," in page and "figures/" not in page


def test_figures_are_png():
    history = [
        {
            "epoch": e,
            "train_loss": 2 / e,
            "train_accuracy": 0.1 * e,
            "val_loss": 2.2 / e,
            "val_accuracy": 0.08 * e,
        }
        for e in range(1, 6)
    ]
    assert figure_curves({"history": history, "best_epoch": 4}).startswith(PNG_MAGIC)
    pooled = {"labels": ["a", "b"], "confusion": [[3, 1], [0, 4]]}
    assert figure_confusion(pooled).startswith(PNG_MAGIC)
