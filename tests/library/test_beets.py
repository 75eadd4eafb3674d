"""The beets plugin, driven through the real ``beet`` command on a real beets library in a temporary folder.

The 14 GTZAN clips are imported as they are (``beet import -A``, files not moved), plus
one copy whose owner tagged it "Rap"; then ``beet genrekit`` runs in pretend mode, for
real, and again; the library database (SQLite) and the files are read after each run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import genrekit
from genrekit.library.tags import TAG_NAMES, read_genres, write_fields

pytest.importorskip("beets")

BEET = Path(sys.executable).parent / "beet"


def _config(folder: Path, auto: bool) -> Path:
    beetsdir = folder / "beetsdir"
    beetsdir.mkdir()
    (beetsdir / "config.yaml").write_text(
        f"directory: {folder / 'music'}\n"
        f"library: {beetsdir / 'library.db'}\n"
        "plugins: [genrekit]\n"
        "import:\n  copy: no\n  write: yes\n  quiet: yes\n  log: null\n"
        f"genrekit:\n  workers: 2\n  auto: {'yes' if auto else 'no'}\n"
    )
    return beetsdir


def _beet(beetsdir: Path, *args: str) -> str:
    source = str(Path(genrekit.__file__).parents[1])  # src/, where beetsplug/genrekit.py lives
    env = {**os.environ, "BEETSDIR": str(beetsdir), "HOME": str(beetsdir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    done = subprocess.run([str(BEET), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _state(beetsdir: Path) -> tuple[dict, dict]:
    """The items' genres and genrekit attributes from the database, and a digest of every file."""
    with sqlite3.connect(beetsdir / "library.db") as conn:
        items = {row[0]: os.fsdecode(row[1]) for row in conn.execute("SELECT id, path FROM items")}
        genres = {items[i]: g for i, g in conn.execute("SELECT id, genres FROM items")}
        flex: dict[str, dict] = {path: {} for path in items.values()}
        for entity, key, value in conn.execute("SELECT entity_id, key, value FROM item_attributes"):
            if key.startswith("genrekit_"):
                flex[items[entity]][key] = value
    files = {path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in items.values()}
    return {path: (genres[path], flex[path]) for path in items.values()}, files


@pytest.fixture(scope="module")
def beets_library(tmp_path_factory: pytest.TempPathFactory, gtzan_flac_dir: Path) -> dict:
    folder = tmp_path_factory.mktemp("beets")
    clips = folder / "clips"
    clips.mkdir()
    for clip in sorted(gtzan_flac_dir.rglob("*.flac")):
        shutil.copy(clip, clips)
    owned = Path(shutil.copy(gtzan_flac_dir / "pop" / "pop.00000.flac", clips / "owned.flac"))
    write_fields(owned, {"genre": ["Rap"]})  # the owner's genre: never replaced without --force
    beetsdir = _config(folder, auto=False)
    _beet(beetsdir, "import", "-A", str(clips))
    return {"beetsdir": beetsdir, "owned": str(owned)}


def test_pretend_changes_nothing_then_genres_are_set_once(beets_library: dict) -> None:
    beetsdir = beets_library["beetsdir"]
    before = _state(beetsdir)
    assert len(before[0]) == 15 and before[0][beets_library["owned"]][0] == "Rap"
    out = _beet(beetsdir, "genrekit", "--pretend")
    assert "would be written" in out and "none -> Blues" in out
    assert _state(beetsdir) == before

    _beet(beetsdir, "genrekit")
    items, files = _state(beetsdir)
    right = 0
    for path, (genres, flex) in items.items():
        if path == beets_library["owned"]:
            assert genres == "Rap" and not flex  # kept, not even judged
            assert files[path] == before[1][path]
            continue
        truth = TAG_NAMES[Path(path).name.split(".")[0]]
        assert set(flex) == {"genrekit_genre", "genrekit_confidence", "genrekit_model"}
        right += genres == truth
        if genres:  # written to the file by beets (import.write), as one value
            assert read_genres(path) == (genres,)
    assert right >= 13, f"{right} of 14 right"

    again = _beet(beetsdir, "genrekit")
    assert _state(beetsdir) == (items, files)  # a second run changes nothing
    assert "14 already judged" in again


def test_auto_runs_on_import(tmp_path: Path, gtzan_flac_dir: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for genre in ("classical", "metal"):
        shutil.copy(gtzan_flac_dir / genre / f"{genre}.00000.flac", clips)
    beetsdir = _config(tmp_path, auto=True)
    _beet(beetsdir, "import", "-A", str(clips))
    items, _ = _state(beetsdir)
    assert sorted(genres for genres, _ in items.values()) == ["Classical", "Metal"]
