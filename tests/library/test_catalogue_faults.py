"""A catalogue that is not ours, damaged, on a full disk or in a read-only folder: real files, real commands.

Every case runs the real command line (in this process, or as a child where the operating
system must refuse something: a file-size limit for a full disk, a read-only folder that root
cannot bypass because the child drops ``CAP_DAC_OVERRIDE``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import soundfile

from genrekit.cli import main
from genrekit.core.errors import CatalogueError
from genrekit.library.catalogue import APPLICATION_ID, SCHEMA_VERSION, Catalogue

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


@pytest.fixture(scope="module")
def clips(tmp_path_factory, gtzan_flac_dir) -> Path:
    """Six 4-s clips in a folder."""
    root = tmp_path_factory.mktemp("clips")
    for source in sorted(gtzan_flac_dir.rglob("*.flac"))[:6]:
        y, sr = soundfile.read(source, dtype="float32")
        soundfile.write(root / f"{source.stem}.wav", y[: 4 * sr], sr, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def scanned(clips, tmp_path_factory) -> Path:
    """A catalogue of `clips` (closed: no -wal file left)."""
    db = tmp_path_factory.mktemp("db") / "lib.db"
    assert main(["scan", str(clips), "--db", str(db), "--jobs", "1", "--quiet"]) == 0
    return db


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(args: list[str], preexec=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "genrekit", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=preexec, timeout=300)


# -- item 8: never write into another program's database ----------------------------------------


def test_scan_refuses_an_sqlite_file_of_another_program(clips, tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    before = _digest(other)
    code, _, err = _cli(capsys, "scan", str(clips), "--db", str(other), "--jobs", "1")
    assert code == 2 and "other.sqlite: not a genrekit catalogue" in err and "notes" in err
    assert _digest(other) == before and not Path(f"{other}-wal").exists()


def test_a_file_with_another_application_id_is_refused(tmp_path):
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA application_id = 1234")
    with pytest.raises(CatalogueError, match="application_id 0x4d2"):
        Catalogue(db)


def test_a_catalogue_of_an_older_genrekit_is_stamped_and_still_opens(scanned, clips, tmp_path, capsys):
    old = tmp_path / "old.db"
    old.write_bytes(scanned.read_bytes())
    with contextlib.closing(sqlite3.connect(old)) as conn:  # as genrekit wrote it before the stamp
        conn.execute("PRAGMA application_id = 0")
        conn.execute("PRAGMA user_version = 0")
    code, out, _ = _cli(capsys, "library", "stats", "--db", str(old), "--format", "json")
    assert code == 0 and json.loads(out)["files"] == 6
    code, out, _ = _cli(capsys, "scan", str(clips), "--db", str(old), "--format", "json")
    assert code == 0 and json.loads(out)["unchanged"] == 6
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- item 9: a damaged catalogue or a full disk: a clear message and exit status 3 ---------------


def _damage(db: Path, page: int = 4) -> None:
    """Overwrite one page in the middle of the file with garbage (a bad sector, a torn copy)."""
    size = db.stat().st_size
    page_size = 4096
    assert size >= (page + 1) * page_size, "the catalogue is too small to damage a middle page"
    with db.open("r+b") as handle:
        handle.seek(page * page_size)
        handle.write(b"\xff" * page_size)


def test_a_damaged_catalogue_is_named_with_exit_status_3(scanned, clips, tmp_path, capsys):
    db = tmp_path / "damaged.db"
    db.write_bytes(scanned.read_bytes())
    _damage(db)
    for args in (
        ["scan", str(clips), "--db", str(db), "--jobs", "1"],
        ["library", "stats", "--db", str(db)],
        ["library", "export", "--db", str(db), "-o", str(tmp_path / "out.csv")],
        ["serve", "--db", str(db), "--port", "0"],
    ):
        code, _, err = _cli(capsys, *args)
        assert code == 3, (args, err)
        assert "damaged.db: the catalogue is damaged" in err and "Traceback" not in err, err
    assert not (tmp_path / "out.csv").exists()


def _no_room_beyond(limit: int):
    """A child's set-up: files may not grow past `limit` bytes (writes fail as on a full disk)."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def test_a_full_disk_stops_the_scan_with_exit_status_3_and_keeps_the_commits(clips, tmp_path, capsys):
    db = tmp_path / "full.db"
    result = _run(["scan", str(clips), "--db", str(db), "--jobs", "1"], _no_room_beyond(48_000))
    assert result.returncode == 3, result.stderr
    assert "full.db: cannot read or write the catalogue: the disk failed or is full" in result.stderr
    assert "Traceback" not in result.stderr
    code, out, _ = _cli(capsys, "scan", str(clips), "--db", str(db), "--format", "json", "--jobs", "1")
    report = json.loads(out)
    assert code == 0 and report["new"] + report["unchanged"] == 6 and report["unchanged"] >= 1


# -- item 15: reading a catalogue in a read-only folder ------------------------------------------


def _as_unprivileged() -> None:
    """A child's set-up: even as root, obey file permissions (drop CAP_DAC_OVERRIDE/READ_SEARCH)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


@pytest.fixture
def read_only_copy(scanned, tmp_path):
    """A copy of the catalogue in a folder made read-only (restored afterwards, for clean-up)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "lib.db"
    db.write_bytes(scanned.read_bytes())
    _require_unprivileged_children()
    folder.chmod(0o555)
    yield db
    folder.chmod(0o755)


def _require_unprivileged_children() -> None:
    """Skip the test where a child cannot be made to obey file permissions."""
    try:
        subprocess.run([sys.executable, "-c", "pass"], check=True, preexec_fn=_as_unprivileged)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"cannot run a child that obeys file permissions: {exc}")


def test_stats_and_export_read_a_catalogue_in_a_read_only_folder(read_only_copy, tmp_path):
    before = _digest(read_only_copy)
    stats = _run(["library", "stats", "--db", str(read_only_copy), "--format", "json"], _as_unprivileged)
    assert stats.returncode == 0 and json.loads(stats.stdout)["files"] == 6, stats.stderr
    out = tmp_path / "rows.csv"
    export = _run(["library", "export", "--db", str(read_only_copy), "-o", str(out)], _as_unprivileged)
    assert export.returncode == 0 and len(out.read_text().splitlines()) == 7, export.stderr
    scan = _run(["scan", str(tmp_path), "--db", str(read_only_copy)], _as_unprivileged)
    assert scan.returncode == 2 and "is read-only" in scan.stderr and "Traceback" not in scan.stderr
    assert _digest(read_only_copy) == before and sorted(p.name for p in read_only_copy.parent.iterdir()) == [
        "lib.db"
    ]


def test_pending_changes_in_a_read_only_folder_are_explained(scanned, tmp_path):
    _require_unprivileged_children()
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "lib.db"
    db.write_bytes(scanned.read_bytes())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("UPDATE files SET error = 'x' WHERE id = 1")
        conn.commit()
        wal = Path(f"{db}-wal").read_bytes()  # the change is in the -wal file only
    assert wal
    Path(f"{db}-wal").write_bytes(wal)  # the last close checkpointed and removed it: put it back
    Path(f"{db}-shm").unlink(missing_ok=True)
    folder.chmod(0o555)
    try:
        result = _run(["library", "stats", "--db", str(db)], _as_unprivileged)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2 and "lib.db-wal holds changes not yet copied" in result.stderr


def test_serve_reads_a_catalogue_in_a_read_only_folder(read_only_copy):
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "genrekit", "serve", "--port", "0", "--workers", "1", "--db"]
    proc = subprocess.Popen(
        [*command, str(read_only_copy)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=_as_unprivileged,
    )
    try:
        url = None
        for line in proc.stderr:
            if match := re.search(r"listening on (http://\S+?)/? ", line):
                url = match.group(1)
                break
        assert url is not None and url.startswith("http://127.0.0.1:"), "serve did not start"
        with urllib.request.urlopen(url + "/v1/library/stats", timeout=60) as answer:
            stats = json.load(answer)
        assert answer.status == 200 and stats["files"] == 6
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
