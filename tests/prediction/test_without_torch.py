"""Without PyTorch (simulated by a meta-path blocker in a subprocess): predict and extract work,
training commands say which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_BLOCKER = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
from genrekit.cli import main
status = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(status)
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER, *args], capture_output=True, text=True, timeout=180
    )


def test_training_commands_name_the_extra(gtzan_table: Path, tmp_path: Path):
    for command in (
        ["train", "--model", "cnn", "--data", str(gtzan_table), "-o", str(tmp_path / "m")],
        ["reproduce", "--data", str(gtzan_table), "--out", str(tmp_path / "r")],
    ):
        done = _run(*command)
        assert done.returncode == 2, done.stderr
        assert f"genrekit {command[0]} needs PyTorch" in done.stderr
        assert "pip install 'genrekit[train]'" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_predict_extract_and_model_summary_work(gtzan_flac_dir: Path, tmp_path: Path):
    clip = gtzan_flac_dir / "classical" / "classical.00000.flac"
    done = _run("predict", str(clip), "--format", "json", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["best_guess"] == "classical"
    done = _run("extract", str(clip), "-o", str(tmp_path / "f.csv"), "--jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "f.csv").is_file()
    done = _run("model", "summary", "cnn", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 106_058
    done = _run("model", "summary", "--format", "json")  # the shipped model
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recipe"] == "ensemble"


@pytest.mark.parametrize("name", ["cnn-gru", "attention"])
def test_sequence_models_predict_without_torch(gtzan_table: Path, gtzan_flac_dir: Path, tmp_path: Path, name):
    """The CNN+GRU and attention models, trained here with torch, predict in a process without it."""
    pytest.importorskip("torch")
    from genrekit.core.schema import GENRES
    from genrekit.datasets.table import feature_matrix, read_table
    from genrekit.models.io import save_model
    from genrekit.models.registry import make_model

    frame = read_table(gtzan_table).iloc[::4]
    model = make_model(name, seed=0, epochs=2).fit(feature_matrix(frame), frame["label"].to_numpy(dtype=str))
    save_model(model, tmp_path / name)
    clip = gtzan_flac_dir / "classical" / "classical.00000.flac"
    done = _run("predict", str(clip), "--model", str(tmp_path / name), "--format", "json", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["best_guess"] in (*GENRES, "uncertain")
