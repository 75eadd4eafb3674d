"""Genre tags normalised to one taxonomy: spellings, multi-valued tags, user mapping, rare classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrekit.library.taxonomy import (
    DEFAULT_MAP,
    Taxonomy,
    TaxonomyError,
    genre_key,
    label_files,
    load_taxonomy,
)


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        (["Hip Hop", "Hip-Hop", "hiphop", "HIP_HOP", "Rap", "hip hop/rap", "Hip-Hop & Rap"], "hiphop"),
        (["R&B", "RnB", "R & B", "Rhythm and Blues", "rhythm & blues"], "rnb"),
        (["Drum & Bass", "Drum and Bass", "drum'n'bass", "DnB"], "drumandbass"),
        (["Rock", " rock ", "ROCK."], "rock"),
        (["Rock 'n' Roll", "Rock & Roll", "rock and roll"], "rocknroll"),
        (["Classical", "classical music"], "classical"),
    ],
)
def test_common_spellings_are_one_class(spellings: list[str], expected: str) -> None:
    taxonomy = Taxonomy()
    assert {taxonomy.classes_of([value]) for value in spellings} == {(expected,)}


def test_unknown_genres_keep_their_own_class_by_key() -> None:
    taxonomy = Taxonomy()
    assert taxonomy.classes_of(["Post-Rock"]) == taxonomy.classes_of(["post rock"]) == ("postrock",)
    assert taxonomy.classes_of(["Chiptune"]) == ("chiptune",)


def test_multi_valued_tags_split_and_deduplicate() -> None:
    taxonomy = Taxonomy()
    assert taxonomy.classes_of(["Hip-Hop/Rap"]) == ("hiphop",)
    assert taxonomy.classes_of(["Rock; Pop", "rock"]) == ("rock", "pop")
    assert taxonomy.classes_of(["Jazz", "Other", "Unknown"]) == ("jazz",)
    assert taxonomy.classes_of(["Other", ""]) == ()


def test_user_mapping_overrides_the_default(tmp_path: Path) -> None:
    path = tmp_path / "genres.json"
    path.write_text(json.dumps({"map": {"Hip Hop": "urban", "Trap": "urban"}, "ignore": ["Podcast"]}))
    taxonomy = load_taxonomy(path)
    assert taxonomy.classes_of(["hip-hop"]) == ("urban",)  # matched by key, any spelling
    assert taxonomy.classes_of(["TRAP"]) == ("urban",)
    assert taxonomy.classes_of(["Rap"]) == ("hiphop",)  # the default still applies to other keys
    assert taxonomy.classes_of(["Podcast"]) == ()
    assert taxonomy.to_dict()["source"] == "genres.json"


def test_user_mapping_can_turn_the_default_off(tmp_path: Path) -> None:
    path = tmp_path / "genres.json"
    path.write_text(json.dumps({"use_default_map": False}))
    assert load_taxonomy(path).classes_of(["Rap"]) == ("rap",)
    assert "rap" in DEFAULT_MAP


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not a JSON mapping file"),
        ('["a"]', "expected a JSON object"),
        ('{"maps": {}}', "unknown field"),
        ('{"map": {"a": 3}}', "'map' must be"),
        ('{"ignore": "x"}', "'ignore' must be"),
        ('{"use_default_map": "no"}', "'use_default_map' must be"),
    ],
)
def test_bad_mapping_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.json"
    path.write_text(text)
    with pytest.raises(TaxonomyError, match=rf"mine\.json.*{message}"):
        load_taxonomy(path)


def test_missing_mapping_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match=r"nowhere\.json"):
        load_taxonomy(tmp_path / "nowhere.json")


def test_label_files_drops_rare_classes_and_reports_them() -> None:
    genres = {f"hh{i}": ["Hip Hop" if i % 2 else "Rap"] for i in range(4)}
    genres |= {f"j{i}": ["Jazz"] for i in range(3)}
    genres |= {"polka": ["Polka"], "both": ["Polka", "Jazz"], "none": [], "other": ["Other"]}
    labels = label_files(genres, min_files=3)
    assert labels.counts == {"hiphop": 4, "jazz": 4}
    assert labels.dropped == {"polka": 2}
    assert labels.label["both"] == "jazz"  # its first genre is too rare: the next kept one
    assert labels.classes["both"] == ("polka", "jazz")
    assert "polka" not in labels.label and "none" not in labels.label and "other" not in labels.label
    assert labels.tagged == frozenset(genres) - {"none"}  # "Other" is a tag, though not a genre
    assert labels.spellings["hiphop"] == {"Rap": 2, "Hip Hop": 2}


def test_a_class_shadowed_by_earlier_genres_is_dropped() -> None:
    # "b" is named by 3 files but labels only one: "a" comes first in the other two.
    genres = {"x1": ["A", "B"], "x2": ["A", "B"], "y1": ["B"], **{f"a{i}": ["A"] for i in range(3)}}
    genres |= {f"c{i}": ["C"] for i in range(3)}
    labels = label_files(genres, min_files=3)
    assert labels.counts == {"a": 5, "c": 3}
    assert labels.dropped == {"b": 3}
    assert "y1" not in labels.label and labels.classes["y1"] == ("b",)


def test_genre_key() -> None:
    assert genre_key("Hip-Hop") == genre_key("hip hop") == "hiphop"
    assert genre_key("R&B") == "randb"
