"""What a new process imports for each job: a command or API call must not pull in libraries it does not use.

One table: the job (Python code run in a fresh interpreter) and the modules it must not have
imported when it ends. Heavy libraries cost start-up time (scikit-learn alone takes seconds
under load) and memory on every worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TABLES = ("sklearn", "scipy.stats", "pandas")
"""Needed only to train, to evaluate or to write tables."""

TRAINING = ("torch", "lightgbm")
"""Needed only to train."""

SIGNAL = ("librosa", "numba", "matplotlib")
"""The reference feature recipe and the report's figures."""

CLI = "from genrekit.cli import main; main({args!r})"


def _cli(*args: str) -> str:
    """Code running ``genrekit ARGS`` (``--help`` exits through SystemExit, which is fine)."""
    return f"import contextlib\nwith contextlib.suppress(SystemExit):\n    {CLI.format(args=list(args))}"


JOBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "import genrekit": ("import genrekit", ("numpy", *TABLES, *TRAINING, *SIGNAL)),
    "genrekit --help": (_cli("--help"), (*TABLES, *TRAINING, *SIGNAL)),
    "genrekit library --help": (_cli("library", "--help"), (*TABLES, *TRAINING, *SIGNAL)),
    "genrekit library learn --help": (_cli("library", "learn", "--help"), (*TABLES, *TRAINING, *SIGNAL)),
    "genrekit predict FILE": (
        _cli("predict", "{jazz}", "-q"),
        (*TABLES, *TRAINING, *SIGNAL, "tqdm", "genrekit.extraction.extract"),
    ),
    "genrekit extract FILE -o CSV": (
        _cli("extract", "{rock}", "-o", "{tmp}/one.csv", "-q"),
        ("torch", "librosa", "numba", "matplotlib", "sklearn", "scipy.stats", "multiprocessing"),
    ),
    "load and run the shipped ensemble": (
        "import numpy as np\nfrom genrekit.models.io import load_model_dir\n"
        "model, _ = load_model_dir('shipped')\nmodel.predict_proba(np.ones((3, 57)))",
        (*TABLES, *TRAINING),
    ),
    "load_model('cnn').predict_file": (
        "import genrekit\ngenrekit.load_model('cnn').predict_file({jazz!r})",
        (*TABLES, *TRAINING, *SIGNAL),
    ),
    "clip_features": (
        "import numpy as np\nfrom genrekit.audio.features import clip_features\n"
        "clip_features(np.random.default_rng(0).normal(size=50000).astype('float32'))",
        ("librosa", "numba"),
    ),
}


@pytest.mark.parametrize("job", JOBS)
def test_a_job_imports_only_what_it_uses(job: str, gtzan_flac_dir: Path, tmp_path: Path) -> None:
    template, forbidden = JOBS[job]
    clip = str(gtzan_flac_dir / "{0}" / "{0}.00000.flac")
    code = template.format(jazz=clip.format("jazz"), rock=clip.format("rock"), tmp=tmp_path)
    report = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "genrekit" in modules
    assert [name for name in forbidden if name in modules] == []
