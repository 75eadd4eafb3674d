"""genrekit library learn / tag --model learned / audit / suggest on a small library of real audio.

The library: every GTZAN test clip and three cross-dataset clips, cut into 10-second files and
re-encoded (FLAC, Ogg Vorbis, MP3); some carry genre tags written with mutagen in several
spellings (an ID3v1 number among them), one classical piece is deliberately tagged metal, and
one file carries a genre too rare to learn. The catalogue is made by a real ``genrekit scan``
into a real SQLite file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mutagen
import pytest
import soundfile as sf

from genrekit.cli import main
from genrekit.library.learned import learned_dir
from genrekit.library.tags import TAG_NAMES, read_genres, write_fields

FORMATS = ("flac", "ogg", "mp3")
SPELLINGS = {
    "blues": ["Blues", "blues", "(0)"],  # "(0)": ID3v1 genre number 0 (written into an MP3)
    "classical": ["Classical", "classical music", "CLASSICAL"],
    "metal": ["Heavy Metal", "Metal", "metal"],
    "hiphop": ["Hip-Hop", "Rap", "hip hop"],
}
TAGGED_CLIPS = {"blues", "classical", "metal", "hiphop"}
MISLABELLED = "classical.00001.1.ogg"
RARE = "country.00000.0.flac"


def _cut(source: Path, folder: Path, stem: str, pieces: int = 3, seconds: float = 10.0) -> list[Path]:
    y, sr = sf.read(source, dtype="float32")
    out = []
    for i in range(pieces):
        part = y[int(i * seconds * sr) : int((i + 1) * seconds * sr)]
        path = folder / f"{stem}.{i}.{FORMATS[i % len(FORMATS)]}"
        sf.write(path, part, sr, format=path.suffix[1:].upper())
        out.append(path)
    return out


def _set_genre(path: Path, value: str) -> None:
    if value.startswith("("):  # an ID3v1 genre number, stored as such
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        audio.tags.setall("TCON", [mutagen.id3.TCON(encoding=3, text=[value])])
        audio.save()
    else:
        write_fields(path, {"genre": [value]})


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(capsys: pytest.CaptureFixture, action: str, db: object, *options: str) -> tuple[int, dict]:
    """Run ``genrekit library ACTION --db DB OPTIONS --format json``; return the exit status and the JSON."""
    capsys.readouterr()
    code = main(["library", action, "--db", str(db), *options, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, gtzan_flac_dir: Path, cross_dir: Path) -> dict:
    folder = tmp_path_factory.mktemp("music")
    files: dict[str, Path] = {}
    for clip in sorted(gtzan_flac_dir.rglob("*.flac")):
        for path in _cut(clip, folder, clip.stem):
            files[path.name] = path
    for name in ("glacier-bay-humpback.ogg", "198-209-0000.ogg"):  # whale song and speech, untagged
        path = _cut(cross_dir / name, folder, Path(name).stem, pieces=1)[0]
        files[path.name] = path
    tags: dict[str, str] = {}
    for name, path in files.items():
        genre = name.split(".")[0]
        if genre in TAGGED_CLIPS and name != MISLABELLED:
            index = int(name.split(".")[1]) * 3 + int(name.split(".")[2])
            spellings = [s for s in SPELLINGS[genre] if path.suffix == ".mp3" or not s.startswith("(")]
            value = spellings[index % len(spellings)]
            _set_genre(path, value)
            tags[name] = genre
    write_fields(files[MISLABELLED], {"genre": ["Metal"]})
    tags[MISLABELLED] = "metal"
    write_fields(files[RARE], {"genre": ["Polka"]})
    db = folder.parent / "library.db"
    assert main(["scan", str(folder), "--db", str(db), "--jobs", "2", "-q"]) == 0
    return {"folder": folder, "db": db, "files": files, "tags": tags}


@pytest.fixture(scope="module")
def learned(library: dict) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["library", "learn", "--db", str(library["db"]), "--min-files", "3", "--format", "json"])
    assert code == 0
    return json.loads(out.getvalue())


def test_tags_are_normalised_to_the_taxonomy(library: dict, learned: dict) -> None:
    tagged = set(library["tags"])
    assert learned["tagged"] == len(tagged) + 1  # and the polka file
    assert learned["labelled"] == len(tagged)
    counts = {genre: sum(g == genre for g in library["tags"].values()) for genre in TAGGED_CLIPS}
    assert learned["classes"] == counts
    assert learned["dropped"] == {"polka": 1}
    assert set(learned["spellings"]["blues"]) == {"Blues", "blues"}  # "(0)" is read as "Blues"
    assert set(learned["spellings"]["hiphop"]) == {"Hip-Hop", "Rap", "hip hop"}
    assert set(learned["spellings"]["metal"]) == {"Heavy Metal", "Metal", "metal"}


def test_learn_reports_grouped_cv_and_stores_the_model(library: dict, learned: dict) -> None:
    import genrekit

    assert learned["protocol"].startswith("cross-validation grouped by file, 3 folds")
    chosen = learned["options"][learned["chosen"]]
    assert chosen["files"] == learned["labelled"]
    assert set(chosen["per_genre"]) == TAGGED_CLIPS
    for row in chosen["per_genre"].values():
        assert 0 <= row["ci_low"] <= row["recall"] <= row["ci_high"] <= 1
    assert chosen["accuracy"] > 0.5  # four distinct genres, chance 0.25-0.35
    folder = learned_dir(library["db"])
    assert sorted(p.name for p in (folder / "model").iterdir()) == ["model.json", "model.safetensors"]
    model = genrekit.load_model(folder / "model")
    summary = model.metadata["learned"]
    assert summary["training_files"] == learned["labelled"]
    assert summary["taxonomy"]["source"] == "default" and summary["taxonomy"]["min_files"] == 3
    assert summary["figures"]["chosen"] == learned["chosen"]
    assert sorted(model.classes_) == sorted(TAGGED_CLIPS)
    state = json.loads((folder / "learned.json").read_text())
    assert set(state["training"]) == {str(library["files"][name]) for name in library["tags"]}


def test_audit_finds_the_mislabelled_file(library: dict, learned: dict, capsys) -> None:
    code, report = _run(capsys, "audit", str(library["db"]))
    assert code == 0
    flagged = [row["file"] for row in report["files"]]
    assert str(library["files"][MISLABELLED]) in flagged
    row = report["files"][flagged.index(str(library["files"][MISLABELLED]))]
    assert row["predicted"] == "classical" and row["tag"] == "metal"
    assert len(flagged) <= 4  # a short list, most confident first
    assert [r["probability"] for r in report["files"]] == sorted(
        (r["probability"] for r in report["files"]), reverse=True
    )


def test_suggest_lists_untagged_files_least_sure_first(library: dict, learned: dict, capsys) -> None:
    code, report = _run(capsys, "suggest", str(library["db"]), "-n", "5")
    assert code == 0 and len(report["files"]) == 5
    untagged = {
        str(p) for name, p in library["files"].items() if name not in library["tags"] and name != RARE
    }
    assert {row["file"] for row in report["files"]} <= untagged
    margins = [row["margin"] for row in report["files"]]
    assert margins == sorted(margins)


def test_tag_fills_only_untagged_confident_files(library: dict, learned: dict, capsys) -> None:
    db = str(library["db"])
    before = {name: _digest(path) for name, path in library["files"].items()}
    assert learned["warnings"] == ["fewer than 5 tagged files in metal 4, hiphop 3"]
    capsys.readouterr()
    assert main(["library", "tag", "--db", db, "--model", "learned", "--dry-run"]) == 2  # too weak
    assert "too weak to tag" in capsys.readouterr().err
    code, dry = _run(capsys, "tag", db, "--model", "learned", "--dry-run", "--force")
    assert code == 0 and {name: _digest(p) for name, p in library["files"].items()} == before
    plan = {Path(item["path"]).name: item for item in dry["files"]}
    for name in library["tags"]:  # tagged: kept, or "same" when the tag already names the prediction
        assert plan[name]["action"] in ("kept", "same")
        assert plan[name]["action"] == "kept" or plan[name]["class"] == library["tags"][name]
    assert plan[RARE]["action"] == "kept"  # tagged, even though its genre is not learned
    writes = [name for name, item in plan.items() if item["action"] == "write"]
    assert writes and dry["counts"]["uncertain"] >= 1
    for name, item in plan.items():
        if item["action"] == "write":
            assert item["probability"] >= 0.5 and item["familiar"] and name not in library["tags"]
            assert item["genre"] == [TAG_NAMES[item["class"]]]  # spelled as every writer spells it
    assert plan["glacier-bay-humpback.0.flac"]["action"] == "uncertain"  # whale song: unlike training

    code, _ = _run(capsys, "tag", db, "--model", "learned", "--force")
    assert code == 0
    for name, path in library["files"].items():
        if name in writes:
            assert read_genres(path) == tuple(plan[name]["genre"])
        else:
            assert _digest(path) == before[name], name  # tagged and uncertain files untouched
    capsys.readouterr()
    assert main(["scan", str(library["folder"]), "--db", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["analysed"] == 0  # tags written by genrekit: nothing redone

    code, again = _run(capsys, "tag", db, "--model", "learned", "--overwrite", "--force")
    replaced = {Path(i["path"]).name: i for i in again["files"] if i["action"] == "write"}
    for name, item in replaced.items():
        assert item["probability"] >= 0.5 and item["familiar"]
        assert read_genres(library["files"][name]) == tuple(item["genre"])
    if MISLABELLED in replaced:
        assert replaced[MISLABELLED]["class"] == "classical"
    assert all(name == MISLABELLED or name == RARE or name not in library["tags"] for name in replaced)


def test_catalogue_tag_keeps_existing_tags(library: dict, capsys) -> None:
    tagged = [p for name, p in library["files"].items() if name in library["tags"]]
    before = {p: _digest(p) for p in tagged}
    code, report = _run(capsys, "tag", str(library["db"]))
    assert code == 0
    assert all(_digest(p) == before[p] for p in tagged)
    actions = {item["path"]: item["action"] for item in report["files"]}
    assert all(actions[str(p)] in ("kept", "same") for p in tagged)
    assert len(actions) == sum(report["counts"].values()) == len(library["files"])  # every file counted


def test_learn_without_a_model_is_a_clear_error(tmp_path: Path, library: dict, capsys) -> None:
    copy = tmp_path / "other.db"
    for suffix in ("", "-wal"):  # the catalogue and its write-ahead log
        source = Path(str(library["db"]) + suffix)
        if source.exists():
            Path(str(copy) + suffix).write_bytes(source.read_bytes())
    assert main(["library", "audit", "--db", str(copy)]) == 2
    assert "no learned model" in capsys.readouterr().err
    assert main(["library", "learn", "--db", str(copy), "--min-files", "50"]) == 2
    assert "two genres or more" in capsys.readouterr().err


def test_read_many_files_tolerates_a_bad_one(tmp_path: Path) -> None:
    from genrekit.library.learned import read_library_genres

    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    genres, errors, own = read_library_genres([str(bad)])
    assert not genres and str(bad) in errors and not own


def test_a_two_genre_model_is_refused_and_calls_strangers_uncertain(
    tmp_path: Path, library: dict, learned: dict, capsys
) -> None:
    """Issue 19: a 2-genre model wrote `Classical (0.83)` into speech and `Blues (0.99)` into pop."""
    copy = tmp_path / "two.db"
    for suffix in ("", "-wal"):
        source = Path(str(library["db"]) + suffix)
        if source.exists():
            Path(str(copy) + suffix).write_bytes(source.read_bytes())
    mapping = tmp_path / "map.json"
    ignore = [s for genre in ("metal", "hiphop") for s in SPELLINGS[genre]] + ["Polka"]
    mapping.write_text(json.dumps({"ignore": ignore}))
    code, report = _run(capsys, "learn", copy, "--map", str(mapping), "--min-files", "3")
    assert code == 0 and sorted(report["classes"]) == ["blues", "classical"]
    assert report["warnings"] and "2 genres" in report["warnings"][0]
    for row in report["familiarity"].values():  # chosen on the grouped CV, with its counts
        assert row["files"] >= 8 and 0 <= row["own_accepted"] <= row["files"]
    assert main(["library", "tag", "--db", str(copy), "--model", "learned", "--dry-run"]) == 2
    code, dry = _run(capsys, "tag", copy, "--model", "learned", "--dry-run", "--force")
    plan = {Path(item["path"]).name: item for item in dry["files"]}
    strangers = ["198-209-0000.0.flac", "glacier-bay-humpback.0.flac"]  # speech, whale song
    strangers += [
        name for name in plan if name.startswith(("pop.", "disco.", "hiphop.", "metal.", "country."))
    ]
    strangers.append("reggae.00000.0.flac")  # passes the overall novelty check, not the blues threshold
    for name in strangers:
        assert plan[name]["action"] != "write", (name, plan[name])


def test_learn_leaves_out_the_tags_genrekit_wrote(library: dict, learned: dict, capsys) -> None:
    """Issue 19: after `library tag`, a second `learn` counted genrekit's own tags as the owner's."""
    db = str(library["db"])
    assert main(["library", "tag", "--db", db]) == 0  # the shipped model fills in untagged files
    code, again = _run(capsys, "learn", db, "--min-files", "3")
    assert code == 0
    assert again["labelled"] == learned["labelled"] and again["classes"] == learned["classes"]
    assert again["genrekit_tags"]["left_out"] > 0
    code, mixed = _run(capsys, "learn", db, "--min-files", "3", "--include-genrekit-tags")
    assert code == 0 and mixed["labelled"] > learned["labelled"]
    assert mixed["genrekit_tags"]["left_out"] == 0


def test_learn_measures_embeddings_beside_the_features_on_the_same_folds(
    library: dict, tmp_path: Path, capsys, tagger_cache: Path, musicnn_wheel: Path
) -> None:
    db = tmp_path / "library.db"
    db.write_bytes(library["db"].read_bytes())
    capsys.readouterr()
    assert main(["library", "learn", "--db", str(db), "--features", "embedding"]) == 2
    assert "no embeddings in the catalogue; run genrekit scan --tags" in capsys.readouterr().err
    scan = ["scan", str(library["folder"]), "--db", str(db), "--tags", "--tagger", "mtt", "-q"]
    assert main([*scan, "--weights", str(musicnn_wheel), "--jobs", "2"]) == 0
    options = ("--min-files", "3", "--models", "logreg", "--features", "both")
    code, report = _run(capsys, "learn", db, *options)
    sets = report["feature_sets"]
    assert code == 0 and sets["taggers"] == ["mtt"] and sets["left_out"] == 0
    assert sets["files"] == report["labelled"] and set(sets) >= {"gtzan", "embedding", "both"}
    for name in ("gtzan", "embedding", "both"):
        assert 0 <= sets[name]["ci_low"] <= sets[name]["accuracy"] <= sets[name]["ci_high"] <= 1
    # the same files and folds: the 57 features score as in the main report
    option = "logreg, own scaling, no extra rows"
    assert sets["gtzan"]["options"][option] == report["options"][option]["accuracy"]
    assert sets["protocol"] == report["protocol"]
