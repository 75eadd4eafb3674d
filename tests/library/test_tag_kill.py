"""kill -9 during `genrekit library tag`: files stay decodable, audio unchanged, the journal consistent.

Issue 20 item 2: tags were rewritten in place, and a kill while a long FLAC was being
saved left it undecodable. Here a 4.5-minute FLAC (the classical clips, repeated) is
tagged by a real ``genrekit library tag`` process, killed with SIGKILL the moment a
temporary copy appears beside it (the write under way) or the file itself changes
(just after the rename), several times; after each kill the file must decode to the
same samples, hold either its old or its new tags as the journal says, and
``library tag --undo`` must put back exactly the tags it had.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

import genrekit
from genrekit.cli import main
from genrekit.library.catalogue import Catalogue, TagJournal
from genrekit.library.tags import audio_digest, read_fields, temp_files

RUNS = 4


@pytest.fixture(scope="module")
def long_library(tmp_path_factory: pytest.TempPathFactory, gtzan_flac_dir: Path) -> dict:
    folder = tmp_path_factory.mktemp("long")
    clips = [sf.read(p, dtype="int16")[0] for p in sorted((gtzan_flac_dir / "classical").glob("*.flac"))]
    samples = np.concatenate(clips * 3)  # 9 x 30 s
    path = folder / "music" / "long.flac"
    path.parent.mkdir()
    sf.write(path, samples, 22050, format="FLAC")
    audio = mutagen.File(path)
    audio["title"] = ["the owner's title"]
    audio.save()
    db = folder / "library.db"
    assert main(["scan", str(path.parent), "--db", str(db), "-q"]) == 0
    return {
        "path": path,
        "db": db,
        "samples": samples,
        "fields": read_fields(path),
        "digest": audio_digest(path),
    }


def _tag_and_kill(db: Path, path: Path, when: str) -> bool:
    """Run `library tag` and SIGKILL it when a temp copy appears (`temp`) or the file changes (`file`)."""
    env = {**os.environ, "PYTHONPATH": str(Path(genrekit.__file__).parents[1])}
    start = path.stat()
    process = subprocess.Popen(
        [sys.executable, "-m", "genrekit", "library", "tag", "--db", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    killed = False
    while process.poll() is None and time.monotonic() < deadline:
        now = path.stat()
        changed = (now.st_size, now.st_mtime_ns, now.st_ino) != (
            start.st_size,
            start.st_mtime_ns,
            start.st_ino,
        )
        if (when == "temp" and temp_files(path)) or changed:
            process.send_signal(signal.SIGKILL)
            killed = True
            break
    process.wait(timeout=60)
    return killed


def _check_consistent(library: dict) -> None:
    path = library["path"]
    info = sf.info(path)
    assert info.frames == len(library["samples"])  # decodable, whole
    np.testing.assert_array_equal(sf.read(path, dtype="int16")[0], library["samples"])
    assert audio_digest(path) == library["digest"]
    fields = read_fields(path)
    with Catalogue(library["db"], create=False) as catalogue:
        for entry in TagJournal(catalogue).entries():  # the file holds the journal's old or new value
            assert fields[entry.field] in (entry.old, entry.new), entry
    assert mutagen.File(path)["title"] == ["the owner's title"]


def test_kill_during_tag_runs_leaves_files_whole_and_undo_exact(long_library: dict) -> None:
    path, db = long_library["path"], long_library["db"]
    killed_mid_write = 0
    for run in range(RUNS):
        when = "temp" if run % 2 == 0 else "file"
        killed = _tag_and_kill(db, path, when)
        killed_mid_write += killed and when == "temp"
        _check_consistent(long_library)
        assert main(["library", "tag", "--db", str(db), "--undo"]) == 0
        assert read_fields(path) == long_library["fields"], f"run {run} ({when}): undo not exact"
        assert not temp_files(path)
        _check_consistent(long_library)
    assert killed_mid_write >= 1  # at least one kill landed while the tagged copy was being written
    assert main(["library", "tag", "--db", str(db)]) == 0  # an undisturbed run completes
    assert read_fields(path)["genre"] == ("Classical",)
    assert main(["library", "tag", "--db", str(db), "--undo"]) == 0
    assert read_fields(path) == long_library["fields"]
