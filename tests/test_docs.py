"""The documentation site builds, offline, with warnings as errors, and its generated pages are real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="needs the docs extra: pip install 'genrekit[docs]'")
pytest.importorskip("myst_parser", reason="needs the docs extra: pip install 'genrekit[docs]'")

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def _sphinx(source: Path, out: Path) -> subprocess.CompletedProcess:
    """Run ``sphinx-build -W`` (warnings are errors) on `source` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(DOCS / "_ext")])}
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-j",
        "2",  # both cores of a CI machine: 63 s instead of 77 s here
        "-b",
        "html",
        str(source),
        str(out),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _sphinx(DOCS, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out


@pytest.mark.slow
def test_site_builds_with_every_reference_and_results_page(site):
    for page in ("install", "quickstart", "architecture", "development", "changelog"):
        assert (site / f"{page}.html").is_file(), page
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    for command in ("extract", "train", "reproduce", "predict", "scan", "library", "serve", "evaluate"):
        assert f"genrekit {command}" in cli, command
    http = (site / "reference" / "http.html").read_text(encoding="utf-8")
    assert "POST /v1/predict" in http and "GET /v1/library/stats" in http
    api = (site / "reference" / "generated" / "genrekit.html").read_text(encoding="utf-8")
    assert "load_model" in api and "GenreModel" in api


@pytest.mark.slow
def test_results_page_renders_the_committed_run_not_retyped_figures(site):
    from genrekit.evaluation.report import format_summary

    metrics = json.loads((DOCS / "results" / "reproduce-default.json").read_text(encoding="utf-8"))
    env = metrics["environment"]
    assert env["command"].startswith("genrekit reproduce") and env["load_average"]["start"]
    page = (site / "results" / "reproduction.html").read_text(encoding="utf-8")
    cnn = [e for e in metrics["results"] if e["model"] == "cnn"]
    assert len(cnn) >= 3
    for entry in cnn:  # each CNN figure of the run, formatted as the report formats it
        assert format_summary(entry["summary"]["accuracy"]) in page, entry["protocol"]
    assert env["date"] in page and env["command"] in page


def test_a_warning_fails_the_build(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text('extensions = ["myst_parser", "genrekit_docs"]\n')
    (source / "index.md").write_text("# Page\n\n```{genrekit-results} absent.json\n```\n")
    done = _sphinx(source, tmp_path / "out")
    assert done.returncode != 0 and "absent.json" in done.stderr


def readme_results_table(metrics: dict) -> str:
    """The README's results table: the report's accuracy table of the committed run, as Markdown."""
    from genrekit.evaluation.report import accuracy_table, to_markdown

    return to_markdown([accuracy_table(metrics)]).strip()


def test_readme_is_short_and_its_results_table_is_the_committed_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    metrics = json.loads((DOCS / "results" / "reproduce-default.json").read_text(encoding="utf-8"))
    assert readme_results_table(metrics) in readme
    assert readme.index("scripts/reproduce.sh") < readme.index("genrekit predict")  # both commands first
