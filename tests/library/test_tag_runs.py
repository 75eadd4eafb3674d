"""`genrekit library tag` on a real catalogue: one spelling, exact plans, undo, every file counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.library.tags import read_fields, write_fields

CLIPS = ("hiphop", "reggae", "classical", "jazz")


@pytest.fixture
def catalogue(tmp_path: Path, gtzan_flac_dir: Path) -> dict:
    music = tmp_path / "music"
    music.mkdir()
    files = {g: Path(shutil.copy(gtzan_flac_dir / g / f"{g}.00000.flac", music)) for g in CLIPS}
    write_fields(files["jazz"], {"genre": ["Swing"]})  # the owner's genre
    db = tmp_path / "library.db"
    assert main(["scan", str(music), "--db", str(db), "-q"]) == 0
    return {"db": str(db), "files": files}


def _tag(capsys: pytest.CaptureFixture, db: str, *options: str) -> tuple[int, dict, str]:
    capsys.readouterr()
    code = main(["library", "tag", "--db", db, *options, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_one_spelling_and_private_fields(catalogue: dict, capsys) -> None:
    """Issue 19: `library tag` wrote `hiphop`, `reggae` where `predict` wrote `Hip-Hop`, `Reggae`."""
    code, report, err = _tag(capsys, catalogue["db"])
    assert code == 0
    files = catalogue["files"]
    assert read_fields(files["hiphop"])["genre"] == ("Hip-Hop",)
    assert read_fields(files["reggae"])["genre"] == ("Reggae",)
    fields = read_fields(files["classical"])
    assert fields["genre"] == fields["genrekit_genre"] == ("Classical",)
    assert any(value.startswith("classical=") for value in fields["genrekit_scores"])
    assert read_fields(files["jazz"])["genre"] == ("Swing",)  # kept
    assert report["counts"]["written"] + report["counts"]["uncertain"] == 3
    assert report["counts"]["kept"] == 1 and sum(report["counts"].values()) == 4
    assert "4 files:" in err and "1 kept" in err


def test_dry_run_plan_and_apply_exactly(catalogue: dict, tmp_path: Path, capsys) -> None:
    db, files = catalogue["db"], catalogue["files"]
    before = {g: p.read_bytes() for g, p in files.items()}
    capsys.readouterr()
    plan = tmp_path / "plan.json"
    assert main(["library", "tag", "--db", db, "--dry-run", "--plan", str(plan), "--overwrite"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all(" -> " in line for line in out)  # `existing -> proposed` per file
    assert any(line.split()[:4] == ["write", "Swing", "->", "Jazz"] for line in out)
    assert {g: p.read_bytes() for g, p in files.items()} == before
    planned = {Path(f["path"]).name: f for f in json.loads(plan.read_text())["files"]}
    write_fields(files["hiphop"], {"genre": ["Rap"]})  # the owner tags a file after the plan was made
    code, report, err = _tag(capsys, db, "--apply", str(plan))
    assert code == 1 and "changed since planned" in err
    done = {Path(f["path"]).name: f["action"] for f in report["files"]}
    assert done["hiphop.00000.flac"] == "failed" and read_fields(files["hiphop"])["genre"] == ("Rap",)
    for name, entry in planned.items():
        if entry["action"] == "write" and name != "hiphop.00000.flac":
            assert done[name] == "written"
            fields = read_fields(files[name.split(".")[0]])
            assert all(fields[k] == tuple(v) for k, v in entry["new"].items())  # exactly the plan


def test_undo_since_restores_exactly(catalogue: dict, capsys) -> None:
    db, files = catalogue["db"], catalogue["files"]
    before = {g: read_fields(p) for g, p in files.items()}
    assert _tag(capsys, db, "--overwrite")[0] == 0
    assert read_fields(files["jazz"])["genre"] != ("Swing",)
    code, report, _ = _tag(capsys, db, "--undo", "--since", "2099-01-01")  # nothing that recent
    assert code == 0 and report["files"] == []
    code, report, _ = _tag(capsys, db, "--undo", "--since", "1h")
    assert code == 0 and report["counts"]["written"] >= 1
    assert {g: read_fields(p) for g, p in files.items()} == before
    code, report, _ = _tag(capsys, db, "--undo")  # already undone: nothing left
    assert code == 0 and report["files"] == []
