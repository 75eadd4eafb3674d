"""Genre tags: written into copies of real files, nothing else in the file touched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from genrekit.library.tags import TagError, audio_digest, read_fields, read_genre, read_genres, write_fields


def _samples(path: Path) -> np.ndarray:
    if path.suffix in (".m4a", ".wma", ".wv"):
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"], capture_output=True, check=True
        ).stdout
        return np.frombuffer(raw, dtype=np.int16)
    return sf.read(path, dtype="int16")[0]


@pytest.fixture
def tagged_copies(tmp_path: Path, gtzan_flac_dir: Path, gtzan_wav_dir: Path, cross_dir: Path) -> list[Path]:
    """One file per tag family, copied or converted from real clips, each with a title tag."""
    flac = shutil.copy(gtzan_flac_dir / "jazz" / "jazz.00000.flac", tmp_path)
    wav = shutil.copy(gtzan_wav_dir / "pop" / "pop.00000.wav", tmp_path)
    ogg = shutil.copy(cross_dir / "sorohanro_-_solo-trumpet-06.ogg", tmp_path)
    y, sr = sf.read(flac)
    mp3 = tmp_path / "jazz.mp3"
    sf.write(mp3, y[: sr * 5], sr, format="MP3")
    files = [Path(p) for p in (flac, wav, ogg, mp3)]
    if shutil.which("ffmpeg"):  # MP4, ASF (WMA), APEv2 (WavPack) and Opus need an encoder
        for suffix in ("m4a", "wma", "wv", "opus"):
            out = tmp_path / f"jazz.{suffix}"
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp3), str(out)], check=True)
            files.append(out)
    for path in files:
        audio = mutagen.File(path, easy=True)
        if audio.tags is None:
            audio.add_tags()
        if isinstance(audio.tags, mutagen.id3.ID3):
            audio.tags.add(mutagen.id3.TIT2(encoding=3, text=["a title"]))
        elif path.suffix in (".wma", ".wv"):
            audio.tags["Title"] = ["a title"]
        else:
            audio.tags["title"] = ["a title"]
        audio.save()
    return files


def _title(path: Path) -> str:
    tags = mutagen.File(path, easy=True).tags
    if isinstance(tags, mutagen.id3.ID3):
        return str(tags.getall("TIT2")[0].text[0])
    key = {".wma": "Title", ".wv": "Title"}.get(path.suffix, "title")
    return str(tags[key][0])


def test_write_fields_sets_only_those_fields(tagged_copies: list[Path]) -> None:
    for path in tagged_copies:
        before = _samples(path)
        write_fields(path, {"genre": ["Jazz", "Swing"], "mood": ["Calm"], "genrekit_confidence": ["0.9000"]})
        assert read_genre(path) == ("Jazz", "Swing"), path  # several values, never "Jazz; Swing"
        fields = read_fields(path)
        assert fields["mood"] == ("Calm",) and fields["genrekit_confidence"] == ("0.9000",), path
        assert _title(path) == "a title", path
        np.testing.assert_array_equal(_samples(path), before, err_msg=str(path))
        assert not list(path.parent.glob(".*.tmp")), path  # no temporary copy left


def test_rewrite_replaces_old_value(tagged_copies: list[Path]) -> None:
    path = tagged_copies[0]
    write_fields(path, {"genre": ["Blues"]})
    write_fields(path, {"genre": ["Jazz"]})
    assert read_genre(path) == ("Jazz",)
    write_fields(path, {"genre": []})
    assert read_genre(path) == ()


def test_untaggable_file_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    with pytest.raises(TagError, match=r"notes\.txt"):
        write_fields(text, {"genre": ["Rock"]})


def test_tag_names_follow_music_libraries_and_are_configurable():
    from genrekit.core.errors import GenrekitError
    from genrekit.library.tags import tag_namer

    library = tag_namer()
    assert [library(g) for g in ("hiphop", "jazz", "folk", "R&B")] == ["Hip-Hop", "Jazz", "Folk", "R&B"]
    assert tag_namer("lower")("hiphop") == "hiphop"
    custom = tag_namer("hiphop=Rap, jazz=Jazz & Swing")
    assert [custom(g) for g in ("hiphop", "jazz", "rock")] == ["Rap", "Jazz & Swing", "Rock"]
    with pytest.raises(GenrekitError, match="genre=Tag"):
        tag_namer("Title")


def test_read_genres_resolves_id3v1_numbers(tagged_copies: list[Path]) -> None:
    id3_files = [p for p in tagged_copies if p.suffix in (".mp3", ".wav")]
    assert len(id3_files) == 2
    for path in id3_files:
        audio = mutagen.File(path)
        audio.tags.setall("TCON", [mutagen.id3.TCON(encoding=3, text=["(17)"])])
        audio.save()
        assert read_genres(path) == ("Rock",), path


def test_read_genres_multi_valued(tagged_copies: list[Path]) -> None:
    for path in tagged_copies:
        audio = mutagen.File(path)
        if isinstance(audio.tags, mutagen.id3.ID3):
            audio.tags.setall("TCON", [mutagen.id3.TCON(encoding=3, text=["Hip-Hop", "(17)"])])
        elif path.suffix == ".m4a":
            audio.tags["\xa9gen"] = ["Hip-Hop", "Rock"]
        elif path.suffix in (".wma", ".wv"):
            audio.tags["WM/Genre" if path.suffix == ".wma" else "Genre"] = ["Hip-Hop", " Rock "]
        else:
            audio.tags["genre"] = ["Hip-Hop", " Rock "]
        audio.save()
        assert read_genres(path) == ("Hip-Hop", "Rock"), path


def test_read_genres_of_untagged_file(tagged_copies: list[Path]) -> None:
    assert read_genres(tagged_copies[0]) == ()


def _raw_genres(path: Path) -> list:
    """The genre as each format stores it, read with mutagen's raw interface."""
    tags = mutagen.File(path).tags
    if isinstance(tags, mutagen.id3.ID3):
        return [list(frame.text) for frame in tags.getall("TCON")]  # one TCON frame, values inside
    if path.suffix == ".m4a":
        return list(tags["\xa9gen"])
    if path.suffix == ".wma":
        return [str(value) for value in tags["WM/Genre"]]
    if path.suffix == ".wv":
        return list(tags["Genre"])  # APEv2: one item, values separated by NUL
    return list(tags["genre"])  # Vorbis: repeated GENRE comments


def test_several_genres_in_each_formats_own_way(tagged_copies: list[Path]) -> None:
    """Issue 19: several genres are separate values, never one joined "Rock; Pop" string."""
    for path in tagged_copies:
        write_fields(path, {"genre": ["Rock", "Pop"], "genrekit_genre": ["Rock", "Pop"]})
        raw = _raw_genres(path)
        id3 = isinstance(mutagen.File(path).tags, mutagen.id3.ID3)
        assert raw == ([["Rock", "Pop"]] if id3 else ["Rock", "Pop"]), (path, raw)
        assert read_fields(path)["genrekit_genre"] == ("Rock", "Pop"), path
        if id3:
            assert mutagen.File(path).tags.getall("TXXX:GENREKIT_GENRE"), path  # the private namespace
        if path.suffix == ".m4a":
            assert "----:com.genrekit:GENRE" in mutagen.File(path).tags, path


def test_audio_digest_sees_a_changed_sample(tagged_copies: list[Path]) -> None:
    for path in tagged_copies:
        if path.suffix in (".ogg", ".opus"):  # checked by decoding: change a sample through the codec
            continue
        before = audio_digest(path)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one byte in the middle of the audio
        path.write_bytes(bytes(data))
        assert audio_digest(path) != before, path


def test_a_write_that_would_change_the_audio_is_refused(
    tagged_copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from genrekit.library import tags

    apply = tags._apply

    def corrupting(copy: Path, values) -> None:  # a tag library that damages the stream
        apply(copy, values)
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))

    monkeypatch.setattr(tags, "_apply", corrupting)
    path = tagged_copies[0]
    before = path.read_bytes()
    with pytest.raises(TagError, match="audio would change"):
        write_fields(path, {"genre": ["Jazz"]})
    assert path.read_bytes() == before and not list(path.parent.glob(".*.tmp"))
