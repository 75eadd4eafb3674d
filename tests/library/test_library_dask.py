"""Scans on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

The workers load the test-only preload ``dask_worker_hooks.py``: each file takes
at least 0.4 s (so processes can be killed mid-scan), a file named ``CRASH``
kills its worker and one named ``HANG`` never ends. Every process is started
here and torn down at the end.
"""

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from library_helpers import as_local, catalogue_rows, upload

from genrekit.library.catalogue import Catalogue
from genrekit.library.cluster import run_dask
from genrekit.library.scan import TimedOut, Todo, run_local, scan

pytestmark = pytest.mark.cluster

distributed = pytest.importorskip("distributed")

HOOKS = Path(__file__).parents[1] / "dask_worker_hooks.py"
SLOW = "0.4"


def _start(args, env, log):
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dask")), *args],  # the venv's `dask scheduler|worker`
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the nanny's worker goes down with it
    )


def _s3_env(request) -> dict:
    """The test S3 endpoint's environment, or nothing when moto or s3fs is missing."""
    try:
        return request.getfixturevalue("s3_server")
    except pytest.skip.Exception:
        return {}


LOOPBACK = ["--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
"""Every listener on 127.0.0.1: Dask's HTTP server (health, metrics) listens even without a dashboard,
on all interfaces unless told otherwise; the worker's nanny listens on --host."""


@contextlib.contextmanager
def dask_cluster(folder: Path, env: dict, workers: int = 2):
    """Start ``dask scheduler`` and `workers` single-threaded ``dask worker`` processes on 127.0.0.1.

    Yields the scheduler address and the scheduler's process; everything is torn down at the end.
    """
    scheduler_file = folder / "scheduler.json"
    common = [*LOOPBACK, "--scheduler-file", str(scheduler_file)]
    log = open(folder / "dask.log", "w")
    procs = [_start(["scheduler", "--port", "0", *common], env, log)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = ["worker", "--nthreads", "1", "--preload", str(HOOKS), *common]
        procs += [_start([*worker, "--name", f"w{i}"], env, log) for i in range(workers)]
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
            address = client.scheduler.address
        yield address, procs[0]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        log.close()


def _env(request) -> dict:
    """The Dask processes' environment: allowed-failures 1, slow files, the test S3 endpoint."""
    return {
        **os.environ,
        **_s3_env(request),
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "GENREKIT_TEST_SLOW": SLOW,
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request, tagger_cache):
    """A scheduler (allowed-failures 1) and two single-threaded workers; yields the scheduler address.

    The workers reach the test S3 endpoint and the session's tagger weights cache through their
    environment, as real ones would.
    """
    with dask_cluster(tmp_path_factory.mktemp("dask"), _env(request)) as (address, _):
        yield address


def _cli_scan(library, db, address, *extra):
    args = [
        "scan",
        str(library),
        "--db",
        str(db),
        "--dask",
        address,
        "--batch-files",
        "1",
        "--format",
        "json",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "genrekit", *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _committed(db) -> int:
    """Files committed to the catalogue so far, read as another process would."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _wait_for_commits(db, proc, n: int = 1) -> None:
    deadline = time.monotonic() + 120
    while _committed(db) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the scan ended before it could be interrupted"


def test_dask_scan_equals_local_scan_row_for_row(cluster, library, local_rows, tmp_path, model):
    db = tmp_path / "dask.db"
    with Catalogue(db) as catalogue:
        report = scan(library, catalogue, model, run_dask(cluster, batch_files=3))
    assert report.analysed == 7 and len(report.failed) == 1 and not report.lost
    assert catalogue_rows(db) == local_rows


def test_dask_scan_tags_equal_a_local_scan(cluster, library, tmp_path, model, musicnn_wheel):
    stored = {}
    for name, runner in (("local", run_local(2)), ("dask", run_dask(cluster, batch_files=3))):
        with Catalogue(tmp_path / f"{name}.db") as catalogue:
            report = scan(
                library,
                catalogue,
                model,
                runner,
                taggers=("mtt",),
                detect_music=True,
                tagger_weights=musicnn_wheel,
            )
            assert report.analysed == 7 and len(report.failed) == 1 and not report.lost
            _, paths, matrix = catalogue.embeddings(["mtt"])
            stored[name] = (paths, matrix, [p.genre for _, p in catalogue.predictions()])
    assert stored["dask"][0] == stored["local"][0] and len(stored["dask"][0]) == 7
    np.testing.assert_allclose(stored["dask"][1], stored["local"][1], rtol=1e-5, atol=1e-6)
    assert stored["dask"][2] == stored["local"][2]


def test_worker_killed_mid_scan_loses_and_duplicates_nothing(cluster, library, local_rows, tmp_path):
    db = tmp_path / "dask.db"
    proc = _cli_scan(library, db, cluster)
    try:
        _wait_for_commits(db, proc)
        with distributed.Client(cluster, timeout=30) as client:
            pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # kill -9 one worker process mid-scan
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
    summary = json.loads(stdout)
    assert proc.returncode == 1, stderr  # 1: the bad file
    assert (summary["analysed"], summary["failed"], summary["lost"]) == (7, 1, 0)
    assert catalogue_rows(db) == local_rows


def test_client_killed_mid_scan_then_rerun(cluster, library, local_rows, tmp_path):
    db = tmp_path / "dask.db"
    proc = _cli_scan(library, db, cluster)
    try:
        _wait_for_commits(db, proc, 2)
    finally:
        proc.kill()  # kill -9 the client, the catalogue's writer
        proc.communicate(timeout=60)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        half = conn.execute(
            "SELECT COUNT(*) FROM files f WHERE f.status = 'ok' AND (NOT EXISTS "
            "(SELECT 1 FROM windows w WHERE w.file_id = f.id) OR NOT EXISTS "
            "(SELECT 1 FROM predictions p WHERE p.file_id = f.id))"
        ).fetchone()[0]
    committed = _committed(db)
    assert half == 0 and 2 <= committed < 8
    proc = _cli_scan(library, db, cluster)
    stdout, stderr = proc.communicate(timeout=180)
    summary = json.loads(stdout)
    assert proc.returncode == 1, stderr
    assert (summary["unchanged"], summary["new"]) == (committed, 8 - committed)  # committed work kept
    assert catalogue_rows(db) == local_rows


def test_changes_between_dask_scans_match_a_local_rescan(cluster, library, tmp_path, model):
    copy = tmp_path / "music"
    shutil.copytree(library, copy)
    dask_db, local_db = tmp_path / "dask.db", tmp_path / "local.db"
    for db in (dask_db, local_db):
        with Catalogue(db) as catalogue:
            scan(copy, catalogue, model, run_local(2))
    shutil.copyfile(copy / "jazz" / "jazz.00000.wav", copy / "blues" / "blues.00000.wav")  # changed
    (copy / "disco" / "disco.00000.wav").unlink()  # deleted
    shutil.copyfile(copy / "rock" / "rock.00000.wav", copy / "rock" / "new.wav")  # new
    with Catalogue(dask_db) as catalogue:
        report = scan(copy, catalogue, model, run_dask(cluster, batch_files=2))
    assert (report.new, report.changed, report.gone, report.unchanged, report.analysed) == (1, 1, 1, 6, 2)
    with Catalogue(local_db) as catalogue:
        scan(copy, catalogue, model, run_local(2))
    assert catalogue_rows(dask_db) == catalogue_rows(local_db)


def test_a_file_that_crashes_its_workers_is_reported_failed(cluster, library, tmp_path):
    # After the split, a or b may be queued beside CRASH on a worker (Dask counts the death against
    # every task the worker held) as it dies, up to allowed-failures + 1 times; without the trial
    # alone on the cluster they were stored as failed in about one run in two.
    folder = tmp_path / "crash"
    folder.mkdir()
    for name in ("a.wav", "CRASH.wav", "b.wav"):
        shutil.copyfile(library / "rock" / "rock.00000.wav", folder / name)
    with distributed.Client(cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=120)  # an earlier test's killed worker may be restarting
    db = tmp_path / "dask.db"
    proc = _cli_scan(folder, db, cluster, "--batch-files", "3")
    stdout, stderr = proc.communicate(timeout=300)
    summary = json.loads(stdout)
    assert proc.returncode == 1, stderr
    assert (summary["analysed"], summary["failed"], summary["lost"]) == (2, 1, 0)
    (failure,) = summary["failures"]
    assert failure["path"].endswith("CRASH.wav") and "died repeatedly" in failure["reason"]
    with Catalogue(db) as catalogue:
        assert [row["status"] for row in catalogue.search()] == ["failed", "ok", "ok"]


def test_a_hung_file_times_out_and_its_worker_is_restarted(cluster, library, tmp_path):
    folder = tmp_path / "hang"
    folder.mkdir()
    for name in ("HANG.wav", "a.wav", "b.wav"):  # one batch, the hung file first
        shutil.copyfile(library / "rock" / "rock.00000.wav", folder / name)
    with distributed.Client(cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=120)  # an earlier test's crashed worker may be restarting
        before = set(client.run(os.getpid).values())
    db = tmp_path / "dask.db"
    proc = _cli_scan(folder, db, cluster, "--batch-files", "3", "--timeout", "10")
    stdout, stderr = proc.communicate(timeout=300)
    summary = json.loads(stdout)
    assert proc.returncode == 1, stderr
    assert (summary["analysed"], summary["failed"], summary["lost"]) == (2, 1, 0)
    (failure,) = summary["failures"]
    assert failure["path"].endswith("HANG.wav") and failure["reason"].endswith("timed out after 10 s")
    with distributed.Client(cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=120)
        after = set(client.run(os.getpid).values())
    hung = int((folder / "HANG.wav.pid").read_text())
    assert hung in before and hung not in after and len(before - after) == 1
    with pytest.raises(ProcessLookupError):  # the worker that ran it was restarted: its process is gone
        os.kill(hung, 0)


def test_a_hung_workers_restart_does_not_wait_for_the_consumer(cluster, library, tmp_path):
    hang = tmp_path / "HANG.wav"
    shutil.copyfile(library / "rock" / "rock.00000.wav", hang)
    with distributed.Client(cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=120)  # an earlier test's worker may be restarting
    results = run_dask(cluster, batch_files=1, timeout=2)(iter([Todo(str(hang), 1, 1)]))
    (first,) = next(results)  # the consumer takes the timed-out file, then stops
    results.close()
    assert isinstance(first, TimedOut) and first.worker
    with pytest.raises(ProcessLookupError):  # its worker was restarted before the result was handed on
        os.kill(int((tmp_path / "HANG.wav.pid").read_text()), 0)


def test_dask_scan_of_an_s3_library_equals_the_local_disk_scan(
    cluster, s3_server, library, local_rows, tmp_path, model
):
    url = upload(library, "dask")
    db = tmp_path / "s3.db"
    with Catalogue(db) as catalogue:
        report = scan(url, catalogue, model, run_dask(cluster, batch_files=3))
    assert (report.analysed, len(report.failed), len(report.lost)) == (7, 1, 0)
    assert as_local(catalogue_rows(db), url, library) == as_local(local_rows)
    with Catalogue(db) as catalogue:  # unchanged: only listed, nothing sent to the workers
        again = scan(url, catalogue, model, run_dask(cluster, batch_files=3))
    assert (again.unchanged, again.analysed) == (8, 0)


def test_a_dead_scheduler_stops_the_scan_with_exit_status_4(library, local_rows, tmp_path, request, model):
    """kill -9 of the scheduler mid-scan: the client stops (it used to wait forever), committed files kept."""
    folder = tmp_path / "dask"
    folder.mkdir()
    with dask_cluster(folder, _env(request), workers=1) as (address, scheduler):
        db = tmp_path / "dask.db"
        proc = _cli_scan(library, db, address)
        try:
            _wait_for_commits(db, proc)
            os.killpg(scheduler.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=120)  # a hang fails here
        finally:
            proc.kill()
    assert proc.returncode == 4, stderr
    assert "lost the Dask scheduler" in stderr and "Traceback" not in stderr
    committed = _committed(db)
    assert 1 <= committed < 8
    with Catalogue(db) as catalogue:  # the next scan goes on from what was committed
        report = scan(library, catalogue, model, run_local(1))
    assert report.unchanged == committed and catalogue_rows(db) == local_rows


def test_every_listener_of_the_cluster_is_on_loopback(cluster):
    """The scheduler, the nannies and the workers: their TCP and HTTP listeners, all on 127.0.0.1."""
    from listeners import exposed, listening

    found = listening()
    assert len({pid for pid, *_ in found}) >= 5, found  # scheduler, 2 nannies, 2 workers
    assert exposed() == []
