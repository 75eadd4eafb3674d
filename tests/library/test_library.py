"""The library catalogue (a real SQLite file): scan, incremental rescans, re-classification, queries, CLI."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from library_helpers import as_local, catalogue_rows
from threadpoolctl import threadpool_limits

import genrekit
from genrekit.cli import main
from genrekit.core.errors import CatalogueError
from genrekit.extraction.extract import extract
from genrekit.library import scan as scan_mod
from genrekit.library.catalogue import Analysis, Catalogue, model_id
from genrekit.library.query import file_key, projection, similar, stats, table, tracks
from genrekit.library.scan import run_local, scan, scratch_folder
from genrekit.prediction.model import file_windows

SR = 22050
CLIPS = [("blues", "00000"), ("classical", "00000"), ("disco", "00000"), ("jazz", "00000"), ("rock", "00000")]


def make_library(root: Path, flac_dir: Path, seconds: float = 7.0) -> Path:
    """Cut `seconds` of five real GTZAN clips into genre folders, plus a copy, a long file and a bad file."""
    for genre, ident in CLIPS:
        y, sr = sf.read(flac_dir / genre / f"{genre}.{ident}.flac", dtype="float32")
        (root / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / genre / f"{genre}.{ident}.wav", y[: int(seconds * sr)], sr, subtype="FLOAT")
    shutil.copyfile(root / "rock" / "rock.00000.wav", root / "rock" / "copy.wav")
    (root / "misc").mkdir(exist_ok=True)
    y, sr = sf.read(flac_dir / "jazz" / "jazz.00000.flac", dtype="float32")
    sf.write(root / "misc" / "long.flac", np.concatenate([y, y[: 20 * sr]]), sr)  # 50 s: two windows
    (root / "misc" / "bad.wav").write_bytes(b"RIFF not really audio")
    return root


@pytest.fixture(scope="module")
def model():
    return genrekit.load_model()


@pytest.fixture
def library(tmp_path, gtzan_flac_dir) -> Path:
    return make_library(tmp_path / "music", gtzan_flac_dir)


def test_scan_stores_features_predictions_and_errors(library, tmp_path, model):
    with Catalogue(tmp_path / "lib.db") as catalogue:
        report = scan(library, catalogue, model, run_local(2, 3.0), segment_seconds=3.0)
    assert (report.new, report.analysed, len(report.failed)) == (8, 7, 1)
    path, reason = report.failed[0]
    assert path.endswith("bad.wav") and reason.startswith(path) and "cannot decode" in reason
    files, windows, predictions = catalogue_rows(tmp_path / "lib.db")
    assert [Path(f[0]).name for f in files if f[3] == "ok"][:2] == ["blues.00000.wav", "classical.00000.wav"]
    long = str((library / "misc" / "long.flac").resolve())
    with threadpool_limits(1):  # as on the workers
        expected = file_windows(long)
    stored = [w for w in windows if w[0] == long]
    assert [w[3:5] for w in stored if w[1] == 0] == [tuple(b) for b in expected.bounds.tolist()]
    np.testing.assert_array_equal(
        np.stack([np.frombuffer(w[5]) for w in stored if w[1] == 0]), expected.features
    )  # exactly the features of a fresh decode
    assert len([w for w in stored if w[1] == 1]) == 50 * SR // 66149  # 3-s segments
    row = next(p for p in predictions if p[0] == long)
    with threadpool_limits(1):
        direct = model.predict_file(long)
    assert row[1] == model_id(model.metadata) and row[3] == direct.genre
    np.testing.assert_array_equal(list(json.loads(row[7]).values()), direct.probabilities)
    assert row[2] == (direct.genre if direct.is_confident() else "uncertain")
    bad = next(f for f in files if f[0].endswith("bad.wav"))
    assert bad[3] == "failed" and "cannot decode" in bad[6] and bad[4] is None


def test_rescan_stats_unchanged_files_and_follows_changes(
    library, tmp_path, model, monkeypatch, gtzan_flac_dir
):
    db = tmp_path / "lib.db"
    calls = []
    real = scan_mod.analyse_file
    monkeypatch.setattr(scan_mod, "analyse_file", lambda p, *a: calls.append(Path(p).name) or real(p, *a))
    with Catalogue(db) as catalogue:
        scan(library, catalogue, model, run_local(1))
        calls.clear()
        again = scan(library, catalogue, model, run_local(1))
        assert calls == [] and again.unchanged == 8 and again.analysed == 0  # only stat'ed
        sf.write(library / "blues" / "blues.00000.wav", np.zeros(4 * SR, np.float32) + 0.1, SR)  # changed
        (library / "disco" / "disco.00000.wav").unlink()  # deleted
        shutil.copyfile(library / "jazz" / "jazz.00000.wav", library / "jazz" / "new.wav")  # new
        report = scan(library, catalogue, model, run_local(1))
        assert sorted(calls) == ["blues.00000.wav", "new.wav"]
        assert (report.new, report.changed, report.gone, report.unchanged) == (1, 1, 1, 6)
        counts = stats(catalogue)
        assert (counts["files"], counts["failed"], counts["gone"]) == (7, 1, 1)
        calls.clear()
        retried = scan(library, catalogue, model, run_local(1), retry_failed=True)
        assert calls == ["bad.wav"] and retried.retried == 1
        odd = os.fsencode(library / "misc") + b"/caf\xe9.wav"  # a Latin-1 name: not UTF-8
        shutil.copyfile(library / "rock" / "copy.wav", odd)
        report = scan(library, catalogue, model, run_local(1))
        (reason,) = [reason for _, reason in report.failed]
        assert "caf\\udce9.wav" in reason and "not valid UTF-8" in reason and report.analysed == 0
        os.unlink(odd)
    files = {Path(f[0]).name: f for f in catalogue_rows(db)[0]}
    assert files["blues.00000.wav"][4] == 4 * SR and files["disco.00000.wav"][3] == "gone"
    # one folder of a library: files elsewhere are not marked gone
    with Catalogue(db) as catalogue:
        assert scan(library / "rock", catalogue, model, run_local(1)).gone == 0


def test_new_model_reclassifies_from_stored_features_without_decoding(library, tmp_path, model, monkeypatch):
    db = tmp_path / "lib.db"
    with Catalogue(db) as catalogue:
        scan(library, catalogue, model, run_local(1))
    other_dir = tmp_path / "other_model"
    from genrekit.models.io import SHIPPED_MODELS

    shutil.copytree(SHIPPED_MODELS["shipped"], other_dir)
    meta = json.loads((other_dir / "model.json").read_text())
    meta["calibration"]["temperature"] = 1.0  # another model: sharper probabilities
    (other_dir / "model.json").write_text(json.dumps(meta))
    other = genrekit.load_model(other_dir)
    assert model_id(other.metadata) != model_id(model.metadata)
    monkeypatch.setattr(scan_mod, "analyse_file", lambda *a: pytest.fail("decoded a file"))
    with Catalogue(db) as catalogue:
        report = scan(library, catalogue, other, run_local(1))
        assert report.reclassified == 7 and report.analysed == 0
        assert stats(catalogue)["models"] == {model_id(other.metadata): 7}
    long = str((library / "misc" / "long.flac").resolve())
    row = next(p for p in catalogue_rows(db)[2] if p[0] == long)
    monkeypatch.undo()
    with threadpool_limits(1):
        np.testing.assert_array_equal(
            list(json.loads(row[7]).values()), other.predict_file(long).probabilities
        )


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    db = tmp_path / "lib.db"
    with Catalogue(db) as catalogue:
        broken = Analysis(
            "/music/a.wav", 10, 1, 100, np.array([[0, 50], [50, 100]]), np.zeros((1, 57))
        )  # two windows, one row of features: fails after the file row was written
        with pytest.raises(ValueError):
            catalogue.put(broken)
        assert stats(catalogue)["files"] == 0 and catalogue.search() == []


def test_catalogue_refuses_other_files_and_versions(tmp_path):
    with pytest.raises(CatalogueError, match="no such catalogue"):
        Catalogue(tmp_path / "missing.db", create=False)
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(CatalogueError, match=r"text\.db"):
        Catalogue(tmp_path / "text.db")
    Catalogue(tmp_path / "lib.db").close()
    with sqlite3.connect(tmp_path / "lib.db") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    with pytest.raises(CatalogueError, match="version 99"):
        Catalogue(tmp_path / "lib.db")


def test_queries_are_json_ready_and_export_equals_extract(library, tmp_path, model):
    with Catalogue(tmp_path / "lib.db") as catalogue:
        scan(library, catalogue, model, run_local(2, 3.0), segment_seconds=3.0)
        counts = stats(catalogue)
        listed = tracks(catalogue, "rock")
        genre = listed[0]["genre"]
        by_genre = tracks(catalogue, genre=genre)
        near = similar(catalogue, library / "rock" / "rock.00000.wav", n=3)
        points = projection(catalogue)
        windows, segments = table(catalogue), table(catalogue, segments=True)
        with pytest.raises(genrekit.core.errors.GenrekitError, match=r"bad\.wav: not an analysed file"):
            similar(catalogue, library / "misc" / "bad.wav")
    for answer in (counts, listed, near, points):
        json.dumps(answer, allow_nan=False)
    assert counts["files"] == 7 and sum(counts["genres"].values()) == 7
    assert counts["hours"] == pytest.approx((6 * 7 + 50) / 3600, rel=1e-3)
    assert [Path(t["path"]).name for t in listed] == ["copy.wav", "rock.00000.wav"]
    assert listed[0]["duration"] == pytest.approx(7.0, abs=1e-3)
    assert by_genre and all(t["genre"] == genre for t in by_genre)
    assert Path(near[0]["path"]).name == "copy.wav" and near[0]["distance"] == 0.0  # its exact copy
    assert near[1]["distance"] > 0 and len(near) == 3
    assert len(points["points"]) == 7 and 0 < sum(points["explained_variance"]) <= 1
    # the stored windows of one-window files are extract's rows; segments are extract's segments
    one_window = extract([p for p in sorted(library.rglob("*.wav")) if p.name != "bad.wav"], jobs=1).table
    pd.testing.assert_frame_equal(windows[windows["length"] < 30 * SR].reset_index(drop=True), one_window)
    assert windows[windows["filename"].str.startswith("long.")]["filename"].tolist() == [
        "long.0.flac",
        "long.1.flac",
    ]
    extracted = extract(library, jobs=1, segment_seconds=3.0).table
    pd.testing.assert_frame_equal(segments, extracted)


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_scan_library_commands(library, tmp_path, capsys):
    db = tmp_path / "lib.db"
    code, out, err = _cli(capsys, "scan", library, "--db", db, "--jobs", "1", "--format", "json")
    summary = json.loads(out)
    assert code == 1 and summary["analysed"] == 7 and summary["failed"] == 1 and "bad.wav" in err
    code, out, _ = _cli(capsys, "library", "stats", "--db", db, "--format", "json")
    assert code == 0 and json.loads(out)["files"] == 7
    code, out, _ = _cli(capsys, "library", "similar", library / "rock" / "copy.wav", "--db", db, "-n", "2")
    assert code == 0 and "rock.00000.wav" in out.splitlines()[0]
    code, out, _ = _cli(capsys, "library", "export", "--db", db, "-o", tmp_path / "t.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "t.csv")) == 8  # 6 one-window files + 2 windows
    code, out, _ = _cli(capsys, "library", "export", "--db", db, "-o", tmp_path / "s.csv", "--segments")
    assert code == 2  # scanned without segments
    code, out, _ = _cli(capsys, "library", "tag", "--db", db, "--dry-run", "--format", "json")
    dry = json.loads(out)
    assert code == 0 and dry["files"] and not any(f["written"] for f in dry["files"])
    mtimes = {p: p.stat().st_mtime_ns for p in library.rglob("*.wav")}
    code, out, _ = _cli(capsys, "library", "tag", "--db", db, "--format", "json")
    tagged = [f for f in json.loads(out)["files"] if f["written"]]
    assert code == 0 and tagged and any(p.stat().st_mtime_ns != mtimes[p] for p in mtimes)
    code, out, _ = _cli(capsys, "scan", library, "--db", db, "--format", "json")
    assert json.loads(out)["analysed"] == 0  # tags written by genrekit do not make files "changed"
    code, _, err = _cli(capsys, "library", "stats", "--db", tmp_path / "none.db")
    assert code == 2 and "no such catalogue" in err
    code, _, err = _cli(capsys, "scan", tmp_path / "nothing", "--db", db)
    assert code == 2 and "no such file or folder" in err
    code, _, err = _cli(capsys, "scan", library, "--db", db, "--dask", "local:0")
    assert code == 2 and "expected local:N" in err
    with pytest.raises(SystemExit):
        main(["library", "--help"])
    assert "genrekit library similar" in capsys.readouterr().out
    assert os.access(db, os.R_OK)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_cli_scan_refuses_a_timeout_that_is_not_finite_seconds(value, tmp_path, capsys):
    code, _, err = _cli(capsys, "scan", tmp_path, "--db", tmp_path / "lib.db", f"--timeout={value}")
    assert code == 2 and "--timeout: expected finite seconds >= 0" in err
    assert not (tmp_path / "lib.db").exists()


def test_dask_without_distributed_names_the_extra(library, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    code, _, err = _cli(capsys, "scan", library, "--db", tmp_path / "lib.db", "--dask", "local:1")
    assert code == 2
    assert "pip install 'genrekit[dask]'" in err


def test_local_timeouts_and_crashes_fail_the_file_and_recycle_the_process(
    library, tmp_path, model, monkeypatch
):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("CRASH.wav", "HANG.wav", "a.wav"):
        shutil.copyfile(library / "rock" / "rock.00000.wav", folder / name)
    pids, real = tmp_path / "pids", scan_mod.analyse_file
    pids.mkdir()

    def hooked(path, *args):  # runs in the (forked) worker processes
        (pids / Path(path).name).write_text(str(os.getpid()))
        if "CRASH" in path:
            os._exit(70)  # a decoder crash
        if "HANG" in path:
            time.sleep(3600)  # a decoder stuck in a loop
        return real(path, *args)

    monkeypatch.setattr(scan_mod, "analyse_file", hooked)
    with Catalogue(tmp_path / "lib.db") as catalogue:
        report = scan(folder, catalogue, model, run_local(2, timeout=5))
    assert report.analysed == 1 and not report.lost
    failed = dict(report.failed)
    assert failed[str(folder.resolve() / "HANG.wav")].endswith("HANG.wav: timed out after 5 s")
    assert "died repeatedly" in failed[str(folder.resolve() / "CRASH.wav")]
    with pytest.raises(ProcessLookupError):  # the hung process was killed
        os.kill(int((pids / "HANG.wav").read_text()), 0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_exception_in_a_local_worker_is_the_files_result_not_a_crash(jobs, tmp_path, model, monkeypatch):
    folder = tmp_path / "music"
    folder.mkdir()
    for name in ("BACKEND.wav", "BUG.wav", "bad.wav"):
        (folder / name).write_bytes(b"RIFF not really audio")
    real = scan_mod.analyse_file

    def hooked(path, *args):  # runs in the (forked) worker processes when jobs > 1
        if "BACKEND" in path:
            raise scan_mod.remote.BackendError(f"{path}: reading xy:// URLs needs xyfs: pip install xyfs")
        if "BUG" in path:
            raise KeyError("a bug")
        return real(path, *args)

    monkeypatch.setattr(scan_mod, "analyse_file", hooked)
    with Catalogue(tmp_path / "lib.db") as catalogue:
        report = scan(folder, catalogue, model, run_local(jobs))
        stored = {entry.path for entry in catalogue.entries(str(folder.resolve()))}
    backend, bug = (str(folder.resolve() / name) for name in ("BACKEND.wav", "BUG.wav"))
    assert report.lost == [(backend, f"{backend}: reading xy:// URLs needs xyfs: pip install xyfs")]
    failed = dict(report.failed)
    assert failed[bug] == f"{bug}: analysis failed: KeyError: 'a bug'"
    assert len(failed) == 2 and "died repeatedly" not in " ".join(failed.values())
    assert backend not in stored and bug in stored  # the lost file is left for the next scan


def test_a_file_url_library_equals_the_local_scan(library, tmp_path, model):
    pytest.importorskip("fsspec")
    local_db, url_db = tmp_path / "local.db", tmp_path / "url.db"
    url = library.resolve().as_uri()  # file:///...: read through fsspec, as s3:// is
    for db, root in ((local_db, library), (url_db, url)):
        with Catalogue(db) as catalogue:
            report = scan(root, catalogue, model, run_local(2))
        assert (report.analysed, len(report.failed)) == (7, 1)
    assert as_local(catalogue_rows(url_db), url, library) == as_local(catalogue_rows(local_db))
    with Catalogue(url_db) as catalogue:
        assert scan(url, catalogue, model, run_local(1)).unchanged == 8
        alias = "local://" + url.removeprefix("file://") + "/rock/copy.wav"  # another spelling of file://
        assert similar(catalogue, alias, n=1)[0]["path"] == f"{url}/rock/rock.00000.wav"
    assert file_key(alias) == f"{url}/rock/copy.wav"


def test_a_batch_analysed_outside_a_dask_worker(tmp_path, monkeypatch):
    hung = threading.Event()  # set at the end, so that the hung thread ends with the test
    monkeypatch.setattr(scan_mod, "analyse_file", lambda path, *args: hung.wait(60))
    monkeypatch.setattr(scan_mod.remote, "_scratch", "unchanged")
    items = [scan_mod.Todo(str(tmp_path / name), 1, 2) for name in ("HANG.wav", "b.wav")]
    (result,) = scan_mod.analyse_batch(items, timeout=0.1)
    assert result == scan_mod.timed_out(items[0], 0.1) and result.worker == ""
    hung.set()
    assert scan_mod.remote._scratch == "unchanged"


def test_the_scratch_folder_of_a_killed_scan_is_removed_by_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now names no process
    stale = tmp_path / f"genrekit-scan-{dead.pid}-abc"
    stale.mkdir()
    (stale / "genrekit-x.wav").write_bytes(b"half a copy")
    young = tmp_path / f"genrekit-scan-{dead.pid}-ghi"  # its pid may be another namespace's live scan
    young.mkdir()
    running = tmp_path / f"genrekit-scan-{os.getpid()}-def"  # a scan still running: kept
    running.mkdir()
    unrelated = tmp_path / "genrekit-scan-notes"
    unrelated.mkdir()
    hour_ago = time.time() - scan_mod.SCRATCH_STALE_SECONDS - 60
    for old in (stale, running, unrelated):
        os.utime(old, (hour_ago, hour_ago))
    os.utime(young, (hour_ago + 120, hour_ago + 120))  # a minute younger than the limit
    new = Path(scratch_folder())
    assert not stale.exists()
    assert young.exists() and running.exists() and unrelated.exists()
    assert new.parent == tmp_path and new.name.startswith(f"genrekit-scan-{os.getpid()}-")
