"""`genrekit serve --db`: the library view's API, on a real uvicorn process over a real scanned catalogue.

The library: six GTZAN test clips (three blues, three classical), plus an exact copy of one
of them under another name (its nearest track, at distance 0). Genre tags are written with
mutagen into the six originals, and `genrekit library learn` learns from them, so that the
learned view has a taxonomy, an audit and suggestions (the copy is the untagged file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")

from serve_client import call

from genrekit.cli import main
from genrekit.library.tags import write_fields
from genrekit.serve.process import ServerProcess, child_env

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "library-token-7e2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COPY = "copy-of-blues.flac"


def build_library(folder: Path, gtzan_flac_dir: Path) -> Path:
    """Copy six clips (and one twice) into `folder`, tag the originals, scan them; return the catalogue."""
    music = folder / "music"
    music.mkdir()
    for genre in ("blues", "classical"):
        for clip in sorted((gtzan_flac_dir / genre).glob("*.flac"))[:3]:
            write_fields(shutil.copy(clip, music / clip.name), {"genre": [genre.title()]})
    shutil.copy(gtzan_flac_dir / "blues" / "blues.00000.flac", music / COPY)
    db = folder / "library.db"
    assert main(["scan", str(music), "--db", str(db), "--jobs", "2", "-q"]) == 0
    return db


@pytest.fixture(scope="module")
def library(tmp_path_factory, gtzan_flac_dir) -> Path:
    return build_library(tmp_path_factory.mktemp("library"), gtzan_flac_dir)


@pytest.fixture(scope="module")
def server(library):
    with ServerProcess(["--workers", "1", "--token", TOKEN, "--db", str(library)], env=child_env()) as srv:
        yield srv


def get(server, path: str) -> tuple[int, object]:
    status, _, answer = call(server.url + path, headers=AUTH)
    return status, answer


def test_stats_count_the_scanned_files(server):
    status, answer = get(server, "/v1/library/stats")
    assert status == 200, answer
    assert answer["catalogue"] == "library.db" and answer["files"] == 7 and answer["failed"] == 0
    assert sum(answer["genres"].values()) == 7 and answer["hours"] == pytest.approx(7 * 30 / 3600, rel=0.01)


def test_library_routes_need_the_token(server):
    for path in ("/v1/library/stats", "/v1/library/tracks", "/v1/library/map", "/v1/library/learned"):
        status, _, answer = call(server.url + path)
        assert status == 401 and "token" in answer["error"], path


def test_tracks_search_and_pages(server):
    status, answer = get(server, "/v1/library/tracks?q=classical")
    assert status == 200, answer
    assert [Path(t["path"]).name for t in answer["tracks"]] == [f"classical.0000{i}.flac" for i in range(3)]
    assert all(t["status"] == "ok" and t["duration"] == pytest.approx(30, abs=1) for t in answer["tracks"])
    every = get(server, "/v1/library/tracks")[1]["tracks"]
    page = get(server, "/v1/library/tracks?limit=2&offset=3")[1]["tracks"]
    assert len(every) == 7 and page == every[3:5]
    assert len({t["id"] for t in every}) == 7
    assert get(server, "/v1/library/tracks?q=no-such-name")[1]["tracks"] == []
    status, answer = get(server, "/v1/library/tracks?limit=0")
    assert status == 422 and "limit" in answer["error"]


def test_map_has_every_track_with_its_genre(server):
    status, answer = get(server, "/v1/library/map")
    assert status == 200, answer
    every = {t["id"]: t for t in get(server, "/v1/library/tracks")[1]["tracks"]}
    assert {p["id"] for p in answer["points"]} == set(every)
    for point in answer["points"]:
        assert point["path"] == every[point["id"]]["path"] and point["genre"] == every[point["id"]]["genre"]
    xs = [p["x"] for p in answer["points"]]
    assert max(xs) > min(xs) and 0 < sum(answer["explained_variance"]) <= 1
    by_name = {Path(p["path"]).name: (p["x"], p["y"]) for p in answer["points"]}
    assert by_name[COPY] == pytest.approx(by_name["blues.00000.flac"])  # the same features, the same place


def test_similar_finds_the_exact_copy_first(server):
    tracks = get(server, "/v1/library/tracks?q=" + COPY)[1]["tracks"]
    status, answer = get(server, f"/v1/library/tracks/{tracks[0]['id']}/similar?n=3")
    assert status == 200, answer
    near = answer["similar"]
    assert len(near) == 3 and Path(near[0]["path"]).name == "blues.00000.flac" and near[0]["distance"] == 0
    assert [n["distance"] for n in near] == sorted(n["distance"] for n in near)
    assert tracks[0]["id"] not in [n["id"] for n in near]


def test_unknown_track_and_bad_parameters(server):
    status, answer = get(server, "/v1/library/tracks/999999/similar")
    assert status == 404 and "999999" in answer["error"]
    assert get(server, "/v1/library/tracks/abc/similar")[0] == 422
    assert get(server, "/v1/library/tracks/1/similar?n=0")[0] == 422


def test_learned_view_is_404_before_learn_then_has_taxonomy_audit_and_suggestions(server, library):
    status, answer = get(server, "/v1/library/learned")
    assert status == 404 and "no learned model" in answer["error"]
    assert main(["library", "learn", "--db", str(library), "--min-files", "3", "--format", "json"]) == 0
    status, answer = get(server, "/v1/library/learned")
    assert status == 200, answer
    assert answer["classes"] == ["blues", "classical"] and answer["training_files"] == 6
    assert answer["figures"] and answer["taxonomy"]
    assert [Path(s["file"]).name for s in answer["suggestions"]] == [COPY]  # the only untagged file
    assert isinstance(answer["audit"], list) and answer["changed_since_learn"] == []


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")
def test_page_shows_the_library_searches_and_lists_similar_tracks(server):
    """After learn, headless Chromium: counts, map and legend, search, similar tracks, learned view."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")
    genres = {p["genre"] for p in get(server, "/v1/library/map")[1]["points"]}
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox", "--disable-gpu"]
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        tab = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(server.url + "/")
        tab.fill("#token", TOKEN)
        tab.click("#token-form button")
        tab.wait_for_selector("#library-learned li", timeout=30_000)
        assert tab.locator(".map .point").count() == 7
        assert "library.db: 7 files" in tab.inner_text("#library-counts")
        legend = {line.strip() for line in tab.locator(".legend li").all_inner_texts()}
        assert legend == genres  # every genre on the map is named, in text
        tab.fill("#library-q", "copy")
        tab.click("#library-search button")
        tab.wait_for_function("document.querySelectorAll('#library-tracks li').length === 1")
        tab.click("#library-tracks button")
        tab.wait_for_selector("#library-similar-list li")
        similar = tab.locator("#library-similar-list li").all_inner_texts()
        assert len(similar) == 6 and similar[0].strip().startswith("blues.00000.flac")
        assert tab.locator(".map .point.selected").count() == 1
        assert tab.text_content(".map .selected-label") == COPY
        assert "File accuracy" in tab.inner_text("#library-accuracy")
        assert COPY in tab.inner_text("#library-learned")  # the one suggestion
        shots = REPO / "test-artifacts" / "serve"
        shots.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(shots / "library.png"), full_page=True)
        browser.close()
    assert not errors, json.dumps(errors)


def test_the_server_does_not_write_the_catalogue(server, library):
    before = hashlib.sha256(library.read_bytes()).hexdigest()
    for path in ("/v1/library/stats", "/v1/library/tracks", "/v1/library/map"):
        assert get(server, path)[0] == 200
    assert hashlib.sha256(library.read_bytes()).hexdigest() == before


def test_answers_while_a_writer_holds_the_catalogue(server, library):
    """A scanner's open write transaction (WAL) does not block the read-only requests."""
    writer = sqlite3.connect(library, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE files SET status = status")
        status, answer = get(server, "/v1/library/stats")
        assert status == 200 and answer["files"] == 7
        assert get(server, "/v1/library/map")[0] == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_serve_refuses_a_file_that_is_not_a_catalogue(tmp_path, capsys):
    bogus = tmp_path / "notes.db"
    bogus.write_text("not a database\n")
    assert main(["serve", "--db", str(bogus), "--port", "0"]) == 2
    assert "notes.db" in capsys.readouterr().err
    assert main(["serve", "--db", str(tmp_path / "missing.db"), "--port", "0"]) == 2
    assert "missing.db" in capsys.readouterr().err
