"""Hostile input in batch commands: a file whose features are not finite is that file's error, everywhere.

A float WAV of finite but huge samples (1e30) overflows the power spectrum, so its features are
NaN or infinite. The check sits where features are computed (:func:`genrekit.audio.features.finite_features`);
these tests drive every caller with real files: scan, predict, extract, and a real uvicorn server
(upload and live stream) on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import soundfile

from genrekit.audio.features import NonFiniteFeaturesError, clip_features, reference_features
from genrekit.cli import main
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.library.catalogue import Catalogue

HUGE = 1e30
"""A finite float32 sample whose square overflows."""


def write_huge(path: Path, seconds: float = 4.0) -> Path:
    """A float WAV of finite but huge samples (the issue's reproduction)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(
        path, np.full(round(seconds * SAMPLE_RATE), HUGE, np.float32), SAMPLE_RATE, subtype="FLOAT"
    )
    return path


@pytest.fixture
def music(tmp_path, gtzan_flac_dir) -> Path:
    """Two good 4-s clips and one huge-valued WAV in a folder."""
    root = tmp_path / "music"
    root.mkdir()
    for source in sorted(gtzan_flac_dir.rglob("*.flac"))[:2]:
        y, sr = soundfile.read(source, dtype="float32")
        soundfile.write(root / f"{source.stem}.wav", y[: 4 * sr], sr, subtype="FLOAT")
    write_huge(root / "huge.wav")
    return root


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("features", [clip_features, reference_features])
def test_non_finite_features_are_refused_where_they_are_computed(features):
    y = np.full(2 * SAMPLE_RATE, HUGE, np.float32)
    with pytest.raises(NonFiniteFeaturesError, match=r"not finite.*1e\+30"):
        features(y)


def test_scan_stores_the_good_files_and_fails_the_huge_one(music, tmp_path, capsys):
    db = tmp_path / "lib.db"
    code, out, err = _cli(capsys, "scan", str(music), "--db", str(db), "--jobs", "1", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["analysed"] == 2 and report["failed"] == 1, err
    assert report["failures"][0]["path"].endswith("huge.wav") and "not finite" in err
    with Catalogue(db, readonly=True) as catalogue:
        assert catalogue.counts()["status"] == {"ok": 2, "failed": 1}
    code, out, _ = _cli(capsys, "scan", str(music), "--db", str(db), "--retry-failed", "--format", "json")
    again = json.loads(out)
    assert code == 1 and again["retried"] == 1 and again["unchanged"] == 2 and again["failed"] == 1


def test_predict_prints_the_good_files_and_names_the_huge_one(music, capsys):
    code, out, err = _cli(capsys, "predict", str(music), "--format", "json", "--jobs", "2", "--quiet")
    assert code == 1
    records = json.loads(out)["files"]  # every input is a record; a failed one carries its error
    assert sorted(Path(r["file"]).name for r in records if not r.get("error")) == sorted(
        p.name for p in music.iterdir() if p.name != "huge.wav"
    )
    (failed,) = [r for r in records if r.get("error")]
    assert Path(failed["file"]).name == "huge.wav" and "features are not finite" in failed["error"]
    assert "huge.wav: features are not finite" in err


def test_extract_writes_no_non_finite_row(music, tmp_path, capsys):
    out_csv = tmp_path / "features.csv"
    code, _, err = _cli(capsys, "extract", str(music), "-o", str(out_csv), "--jobs", "1", "--quiet")
    assert code == 1 and "huge.wav" in err and "not finite" in err
    table = pd.read_csv(out_csv)
    assert len(table) == 2 and "huge.wav" not in set(table["filename"])
    assert np.isfinite(table.loc[:, list(FEATURE_NAMES)].to_numpy(float)).all()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    from genrekit.serve.process import ServerProcess, child_env

    with ServerProcess(["--workers", "1"], env=child_env(TMPDIR=str(tmp_path_factory.mktemp("tmp")))) as srv:
        yield srv


def test_serve_answers_422_for_huge_samples(server, tmp_path):
    from serve_client import post_file

    huge = write_huge(tmp_path / "huge.wav")
    for endpoint in ("/v1/predict", "/v1/features"):
        status, _, answer = post_file(server.url + endpoint, huge)
        assert status == 422, (endpoint, answer)
        assert "not finite" in json.dumps(answer), answer


def test_live_stream_reports_huge_samples_instead_of_going_silent(server):
    from websockets.sync.client import connect

    with connect(server.url.replace("http://", "ws://") + "/v1/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": SAMPLE_RATE, "encoding": "pcm_f32le"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(np.full(3 * SAMPLE_RATE, HUGE, "<f4").tobytes())
        message = json.loads(ws.recv(timeout=60))
    assert message["type"] == "error" and "not finite" in message["error"], message


def test_a_huge_file_copied_into_a_good_library_fails_alone(music, tmp_path, capsys):
    """The local pool (several processes) too: the good files are stored, the bad one failed."""
    shutil.copyfile(music / "huge.wav", music / "huge2.wav")
    db = tmp_path / "pool.db"
    code, out, _ = _cli(capsys, "scan", str(music), "--db", str(db), "--jobs", "2", "--format", "json")
    assert code == 1 and json.loads(out)["failed"] == 2 and json.loads(out)["analysed"] == 2


# -- worker processes never outlive the command that started them -------------------------------


@pytest.fixture(scope="module")
def long_library(tmp_path_factory, gtzan_flac_dir) -> Path:
    """Eight 30-s clips: enough work that both pool workers are busy when the command is killed."""
    root = tmp_path_factory.mktemp("long")
    for source in sorted(gtzan_flac_dir.rglob("*.flac"))[:8]:
        y, sr = soundfile.read(source, dtype="float32")
        soundfile.write(root / f"{source.stem}.wav", y, sr, subtype="FLOAT")
    return root


def _start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genrekit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _workers_of(proc: subprocess.Popen, n: int, timeout: float = 120.0) -> list[psutil.Process]:
    """Wait until the command has `n` worker processes (its children); return them."""
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        children = parent.children(recursive=True)
        if len(children) >= n:
            return children
        time.sleep(0.05)
    raise AssertionError(f"the command never had {n} workers (exit status {proc.poll()})")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (a zombie waiting to be reaped has ended)."""
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _survivors(processes: list[psutil.Process], within: float) -> list[psutil.Process]:
    """The processes still running after `within` seconds (killed then, so none outlives the test)."""
    deadline = time.monotonic() + within
    while (alive := _alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    return alive


ORPHAN_SECONDS = 10.0
"""How long workers may take to notice that their parent is gone (they need well under a second)."""

COMMANDS = {
    "scan": lambda lib, out: ["scan", str(lib), "--db", str(out / "lib.db"), "--jobs", "2"],
    "extract": lambda lib, out: ["extract", str(lib), "-o", str(out / "f.csv"), "--jobs", "2"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_workers_exit_when_the_command_is_killed(command, long_library, tmp_path):
    proc = _start_cli(*COMMANDS[command](long_library, tmp_path))
    workers = _workers_of(proc, 2)
    proc.kill()
    proc.wait(timeout=30)
    assert not _survivors(workers, ORPHAN_SECONDS), f"{command}: workers outlived a kill -9 of their parent"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_sigterm_stops_the_command_as_ctrl_c_does(command, long_library, tmp_path):
    proc = _start_cli(*COMMANDS[command](long_library, tmp_path))
    workers = _workers_of(proc, 2)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    survivors = _survivors(workers, ORPHAN_SECONDS)
    assert proc.returncode == 143 and "terminated; completed outputs are kept" in err, err
    assert "Traceback" not in err
    assert not survivors, f"{command}: workers outlived a SIGTERM of their parent"


def test_the_server_listens_on_loopback_only(server):
    from listeners import exposed, listening

    assert any(port == int(server.url.rsplit(":", 1)[1]) for *_, port in listening())
    assert exposed() == []
