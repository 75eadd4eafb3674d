"""Tags, embeddings and the music decision in the catalogue (``scan --tags --detect-music``).

Real SQLite files, the real local process pool, the real musicnn weights (the session's
``tagger_cache`` filled from ``musicnn_wheel``, as in tests/tagger/).
"""

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from library_helpers import catalogue_rows

import genrekit
from genrekit.audio.decode import load_audio
from genrekit.cli import main
from genrekit.core.errors import CatalogueError, GenrekitError
from genrekit.library.catalogue import APPLICATION_ID, SCHEMA_VERSION, Catalogue
from genrekit.library.query import similar, stats
from genrekit.library.scan import run_local, scan
from genrekit.prediction.model import NOT_MUSIC
from genrekit.tagger import Tagger

SR = 22050
CLIPS = [("blues", "00000"), ("classical", "00000"), ("metal", "00000")]
SPEECH = "cross_dataset/librosa_data/198-209-0000.ogg"


@pytest.fixture(scope="module")
def model():
    return genrekit.load_model()


@pytest.fixture(scope="module")
def weights(tagger_cache: Path, musicnn_wheel: Path) -> Path:
    """The wheel the scans read their weights from, into the session's cache."""
    return musicnn_wheel


@pytest.fixture
def library(tmp_path: Path, gtzan_flac_dir: Path, data_root: Path) -> Path:
    """Three 8-s GTZAN excerpts in genre folders, a LibriSpeech clip and a file that is not audio."""
    root = tmp_path / "music"
    for genre, ident in CLIPS:
        y, sr = sf.read(gtzan_flac_dir / genre / f"{genre}.{ident}.flac", dtype="float32")
        (root / genre).mkdir(parents=True)
        sf.write(root / genre / f"{genre}.{ident}.wav", y[: 8 * sr], sr, subtype="FLOAT")
    (root / "spoken").mkdir()
    shutil.copyfile(data_root / SPEECH, root / "spoken" / "speech.ogg")
    (root / "bad.wav").write_bytes(b"RIFF not really audio")
    return root


def _tables(db: Path) -> tuple[dict, dict]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tags = {
            (Path(path).name, tagger): (json.loads(proba), np.frombuffer(blob, "<f4"))
            for path, tagger, proba, blob in conn.execute(
                "SELECT f.path, t.tagger, t.probabilities, t.embedding FROM tags t "
                "JOIN files f ON f.id = t.file_id"
            )
        }
        music = {
            Path(path).name: (probability, bool(verdict))
            for path, probability, verdict in conn.execute(
                "SELECT f.path, m.probability, m.is_music FROM music m JOIN files f ON f.id = m.file_id"
            )
        }
    return tags, music


def test_scan_tags_later_adds_tags_without_recomputing_features(library, tmp_path, model, weights):
    db = tmp_path / "lib.db"
    with Catalogue(db) as catalogue:
        first = scan(library, catalogue, model, run_local(2))
        assert (first.analysed, len(first.failed)) == (4, 1) and _tables(db) == ({}, {})
        before = catalogue_rows(db)
        tagged = scan(
            library,
            catalogue,
            model,
            run_local(2),
            taggers=("msd", "mtt"),
            detect_music=True,
            tagger_weights=weights,
        )
        assert (tagged.tagged, tagged.analysed, tagged.unchanged, len(tagged.failed)) == (4, 0, 1, 0)
        after = catalogue_rows(db)
        assert after[:2] == before[:2]  # files and window features untouched: only the tags were computed
        tags, music = _tables(db)
        names = [f"{g}.{i}.wav" for g, i in CLIPS] + ["speech.ogg"]
        assert sorted(tags) == sorted((name, t) for name in names for t in ("msd", "mtt"))
        # the stored values are the tagger's on the decoded signal (streamed vs whole-signal resampling)
        path = library / "classical" / "classical.00000.wav"
        direct = Tagger("mtt").tag_signal(load_audio(path), SR)
        proba, embedding = tags[("classical.00000.wav", "mtt")]
        np.testing.assert_allclose(list(proba.values()), direct.probabilities, atol=2e-3)
        np.testing.assert_allclose(embedding, direct.embedding, atol=2e-2)
        assert list(proba) == list(direct.labels)
        assert "classical" in [tag for tag, _ in direct.top(3)]
        # the speech clip is not music, and its stored verdict says so; the music keeps its genre
        assert music["speech.ogg"][1] is False and all(music[f"{g}.{i}.wav"][1] for g, i in CLIPS)
        verdicts = {Path(p).name: prediction.genre for p, prediction in catalogue.predictions()}
        assert verdicts["speech.ogg"] == NOT_MUSIC and NOT_MUSIC not in [
            verdicts[f"{g}.{i}.wav"] for g, i in CLIPS
        ]
        assert tagged.reclassified == 4  # the files given a music decision were predicted again
        again = scan(library, catalogue, model, run_local(2), taggers=("msd", "mtt"), detect_music=True)
        assert (again.unchanged, again.tagged, again.analysed) == (5, 0, 0)
        counts = stats(catalogue)
        assert counts["taggers"] == {"msd": 4, "mtt": 4} and counts["not_music"] == 1


def test_a_changed_file_is_analysed_and_tagged_in_one_pass_and_a_failure_stays_the_files(
    library, tmp_path, model, weights
):
    db = tmp_path / "lib.db"
    with Catalogue(db) as catalogue:
        scan(library, catalogue, model, run_local(2), taggers=("msd",), tagger_weights=weights)
        metal = library / "metal" / "metal.00000.wav"
        y, sr = sf.read(metal, dtype="float32")
        sf.write(metal, y[: 5 * sr], sr, subtype="FLOAT")  # changed
        blues = library / "blues" / "blues.00000.wav"  # now garbage, with the same size and time
        stat = blues.stat()
        blues.write_bytes(b"\xff" * stat.st_size)
        os.utime(blues, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        before = catalogue_rows(db)
        report = scan(library, catalogue, model, run_local(2), taggers=("msd", "mtt"))
        # the changed file analysed with both taggers; the others only get the tagger they lacked
        assert (report.changed, report.analysed, report.tagged) == (1, 1, 3)
        assert [path for path, _ in report.failed] == [str(blues.resolve())]
        assert report.failed[0][1].startswith(str(blues.resolve()))
        tags, music = _tables(db)
        assert len(tags) == 7 and music == {} and ("blues.00000.wav", "mtt") not in tags
        assert len(catalogue.embeddings(["mtt", "msd"])[0]) == 3
        after = catalogue_rows(db)
        stored = [
            [row for table in rows for row in table if "blues.00000" in row[0]] for rows in (before, after)
        ]
        assert stored[0] == stored[1]  # its features and prediction kept, still ok


def _old_catalogue(db: Path, source: Path) -> None:
    """Write `db` as genrekit 1 did (its DDL, version 1), holding the files of the catalogue `source`."""
    old_ddl = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'gone')),
        n_samples INTEGER, segment_seconds REAL, error TEXT);
    CREATE TABLE windows (file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        kind INTEGER NOT NULL, idx INTEGER NOT NULL, start_sample INTEGER NOT NULL,
        end_sample INTEGER NOT NULL, features BLOB NOT NULL, PRIMARY KEY (file_id, kind, idx)) WITHOUT ROWID;
    CREATE TABLE predictions (file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL, genre TEXT NOT NULL, best_guess TEXT NOT NULL, confidence REAL NOT NULL,
        novelty REAL, familiar INTEGER NOT NULL, probabilities TEXT NOT NULL);
    CREATE INDEX predictions_model ON predictions(model_id);
    INSERT INTO meta VALUES ('format', 'genrekit-catalogue'), ('version', '1');
    """
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(old_ddl)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute("ATTACH DATABASE ? AS new", (str(source),))
        for table in ("files", "windows", "predictions"):
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM new.{table}")
        conn.commit()


def test_a_version_1_catalogue_is_read_as_it_is_and_upgraded_by_a_writer(
    library, tmp_path, model, capsys, weights
):
    source = tmp_path / "source.db"
    with Catalogue(source) as catalogue:
        scan(library, catalogue, model, run_local(1))
    old = tmp_path / "old.db"
    _old_catalogue(old, source)
    rows = catalogue_rows(old)
    before = old.read_bytes()
    with Catalogue(old, readonly=True) as catalogue:  # a reader: no tags, nothing written
        assert catalogue.version == 1 and stats(catalogue)["files"] == 4
        assert catalogue.embeddings(["msd"])[2].shape == (0, 200)
        with pytest.raises(GenrekitError, match="run genrekit scan --tags"):
            similar(catalogue, library / "bad.wav", space="embedding")
    assert old.read_bytes() == before
    scan_args = ["scan", str(library), "--db", str(old), "--tags", "--tagger", "mtt", "--jobs", "2"]
    code = main([*scan_args, "--weights", str(weights), "--format", "json"])
    assert code == 0  # bad.wav failed before: not retried, so no failure in this scan
    summary = json.loads(capsys.readouterr().out)
    assert (summary["tagged"], summary["analysed"], summary["unchanged"]) == (4, 0, 1)
    assert catalogue_rows(old)[:2] == rows[:2]  # the old rows kept
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0] == "2"
        assert conn.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 4


def test_a_catalogue_of_a_newer_genrekit_is_refused_untouched(tmp_path):
    db = tmp_path / "new.db"
    Catalogue(db).close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'version'")
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(
            CatalogueError, match=r"version 3; this genrekit reads version 2 .*newer genrekit"
        ):
            Catalogue(db, readonly=readonly)
    assert db.read_bytes() == before


def test_similar_in_the_embedding_space(library, tmp_path, model, weights, capsys):
    db = tmp_path / "lib.db"
    with Catalogue(db) as catalogue:
        scan(library, catalogue, model, run_local(2))
        with pytest.raises(GenrekitError, match=r"no embeddings.*run genrekit scan --tags"):
            similar(catalogue, library / "blues" / "blues.00000.wav", space="embedding")
        scan(library, catalogue, model, run_local(2), taggers=("msd", "mtt"), tagger_weights=weights)
    blues = str(library / "blues" / "blues.00000.wav")
    code = main(["library", "similar", blues, "--db", str(db), "--space", "embedding", "--format", "json"])
    near = json.loads(capsys.readouterr().out)["similar"]
    assert code == 0 and len(near) == 3  # the other analysed files (bad.wav failed)
    # the mean over the taggers of the cosine distance between the stored embeddings
    tags, _ = _tables(db)

    def cosine(a: str, b: str, tagger: str) -> float:
        x, y = tags[(a, tagger)][1], tags[(b, tagger)][1]
        return 1 - float(x @ y) / float(np.linalg.norm(x) * np.linalg.norm(y))

    expected = {
        name: (cosine("blues.00000.wav", name, "msd") + cosine("blues.00000.wav", name, "mtt")) / 2
        for name in ("classical.00000.wav", "metal.00000.wav", "speech.ogg")
    }
    assert [Path(item["path"]).name for item in near] == sorted(expected, key=expected.get)
    for item in near:
        assert item["distance"] == pytest.approx(expected[Path(item["path"]).name], abs=1e-6)
