"""The one tag writer of genrekit: a file's genre, mood and genrekit's own fields, with mutagen.

Every command that writes tags (``predict --write-tags``, ``library tag``, the
beets plugin's decisions) goes through this module, so they share

* one naming policy (:func:`tag_namer`: ``Hip-Hop``, ``Jazz`` by default);
* multi-valued fields written the way each format holds several values:
  ID3v2.4 ``TCON``/``TMOO`` (MP3, WAV, AIFF), repeated Vorbis comments
  ``GENRE``/``MOOD`` (FLAC, Ogg Vorbis, Opus), MP4 ``©gen`` and
  ``----:com.apple.iTunes:MOOD``, ASF ``WM/Genre``/``WM/Mood``, APEv2
  ``Genre``/``Mood`` (WavPack, Monkey's Audio, Musepack), never one joined
  ``"Rock; Pop"`` string;
* genrekit's own figures in a private namespace (:data:`PRIVATE_FIELDS`):
  ``TXXX:GENREKIT_GENRE`` in ID3, ``GENREKIT_GENRE`` in Vorbis, APEv2 and ASF,
  ``----:com.genrekit:GENRE`` in MP4, so its tags are known as its own;
* one safe way to write (:func:`write_fields`): the file is copied beside
  itself, the copy is tagged and fsync'ed, then checked (the fields read back,
  the audio payload unchanged: the audio bytes of FLAC, MP3, MP4, ASF,
  APEv2 and RIFF/AIFF files, the decoded samples of Ogg files), and only then
  renamed over the file (``os.replace``, then the folder is fsync'ed). A kill
  at any moment leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from genrekit.core.errors import GenrekitError

TAG_NAMES: dict[str, str] = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}
"""How music libraries spell the GTZAN genres in tags (the names of the ID3v1 genre list)."""

TAG_STYLES: tuple[str, ...] = ("library", "lower")
"""Named tag spellings: ``library`` (:data:`TAG_NAMES`, others title-cased), ``lower`` (as predicted)."""


def tag_namer(style: str = "library", known: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """Return the function that spells a predicted genre for a tag.

    Parameters
    ----------
    style : str
        ``"library"`` (default): ``Hip-Hop``, ``Jazz`` ... (:data:`TAG_NAMES`), and a genre of
        your own title-cased unless it has capitals already (``folk`` -> ``Folk``);
        ``"lower"``: the genre exactly as predicted (``hiphop``); or a comma list of
        ``genre=Tag`` pairs (``"hiphop=Rap,jazz=Jazz"``), the other genres spelled as ``library``.
    known : mapping, optional
        Spellings of genres :data:`TAG_NAMES` does not name (a learned model's classes
        -> the library's own spelling), used before title-casing.

    Returns
    -------
    callable
        ``genre -> tag text``.

    Raises
    ------
    GenrekitError
        If `style` is neither a named style nor ``genre=Tag`` pairs.
    """
    if style == "lower":
        return str
    custom: dict[str, str] = {}
    if style != "library":
        for part in filter(None, (item.strip() for item in style.split(","))):
            genre, sep, tag = part.partition("=")
            if not sep or not genre.strip() or not tag.strip():
                raise GenrekitError(
                    f"tag names {style!r}: {part!r} is not genre=Tag; use {' or '.join(TAG_STYLES)} or pairs"
                )
            custom[genre.strip()] = tag.strip()
    names = {**(known or {}), **TAG_NAMES, **custom}
    return lambda genre: names.get(genre, genre if genre != genre.lower() else genre.title())


class TagError(GenrekitError):
    """A file's genre tag cannot be read or written."""


def _check_local(path: str | os.PathLike[str]) -> None:
    """Raise `TagError` for a file behind a URL (``s3://...``): its tags cannot be read nor written here."""
    from genrekit.library.remote import is_url

    if is_url(path):
        raise TagError(f"{path}: a file behind a URL cannot be tagged in place; tag a local copy")


def read_genre(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Return the genre values in the tag of `path` (empty when there are none).

    Raises
    ------
    TagError
        If the file cannot be read by mutagen or has no tag format.
    """
    return read_fields(path)[GENRE]


def read_genres(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Return the genres the tag of `path` names, as a person reads them.

    Unlike :func:`read_genre` (the values as stored), ID3v1 genre numbers are
    resolved (``"(17)"`` and ``"17"`` -> ``"Rock"``, ``"(17)Rock"`` -> ``"Rock"``,
    ``"(RX)"`` -> ``"Remix"``) in every format, and the values of a multi-valued
    tag (ID3v2.4 null-separated text, repeated Vorbis comments, MP4 lists) come
    one by one. Values are stripped; empty ones are left out.

    Parameters
    ----------
    path : path-like
        An MP3, FLAC, Ogg (Vorbis, Opus), MP4/M4A, WAV or AIFF file.

    Returns
    -------
    tuple of str
        The genres in tag order, empty when the file has none.

    Raises
    ------
    TagError
        If the file cannot be read by mutagen or has no tag format.
    """
    from mutagen.id3 import TCON

    values = read_genre(path)
    genres = TCON(encoding=3, text=list(values)).genres if values else []
    return tuple(text.strip() for text in genres if text.strip())


GENRE, MOOD = "genre", "mood"
"""The shared fields genrekit writes (several values each)."""

PRIVATE_FIELDS: tuple[str, ...] = (
    "genrekit_genre",
    "genrekit_confidence",
    "genrekit_model",
    "genrekit_scores",
)
"""genrekit's own fields: the genres it wrote, its confidence, the model id, every class's probability."""

FIELDS: tuple[str, ...] = (GENRE, MOOD, *PRIVATE_FIELDS)
"""Every field :func:`read_fields` reads and :func:`write_fields` may change."""

TEMP_MARK = ".genrekit-"
"""Part of the name of the temporary copy beside a file being tagged (``.song.flac.genrekit-<id>.tmp``)."""


def _private(name: str) -> str:
    """``genrekit_confidence`` -> ``CONFIDENCE`` (the part after the namespace)."""
    return name.removeprefix("genrekit_").upper()


class _ID3Fields:
    """ID3v2.4 (MP3, WAV, AIFF): ``TCON``, ``TMOO``, ``TXXX:GENREKIT_*``."""

    frames: ClassVar[dict[str, str]] = {GENRE: "TCON", MOOD: "TMOO"}

    def get(self, tags, name: str) -> tuple[str, ...]:
        key = self.frames.get(name, f"TXXX:GENREKIT_{_private(name)}")
        return tuple(str(text) for frame in tags.getall(key) for text in frame.text)

    def set(self, tags, name: str, values: Sequence[str]) -> None:
        from mutagen import id3

        key = self.frames.get(name, f"TXXX:GENREKIT_{_private(name)}")
        tags.delall(key)
        if not values:
            return
        if name in self.frames:
            tags.add(getattr(id3, key)(encoding=3, text=list(values)))
        else:
            tags.add(id3.TXXX(encoding=3, desc=f"GENREKIT_{_private(name)}", text=list(values)))


class _KeyFields:
    """Formats whose tag is a mapping of names to lists of text (Vorbis, ASF, APEv2)."""

    def __init__(self, genre: str, mood: str, private: str) -> None:
        self.keys = {GENRE: genre, MOOD: mood}
        self.private = private

    def key(self, name: str) -> str:
        return self.keys.get(name, self.private + _private(name))

    def get(self, tags, name: str) -> tuple[str, ...]:
        key = self.key(name)
        return tuple(str(value) for value in tags[key]) if key in tags else ()

    def set(self, tags, name: str, values: Sequence[str]) -> None:
        key = self.key(name)
        if values:
            tags[key] = list(values)
        elif key in tags:
            del tags[key]


class _MP4Fields:
    """MP4/M4A: ``©gen``, ``----:com.apple.iTunes:MOOD``, ``----:com.genrekit:*`` (UTF-8)."""

    keys: ClassVar[dict[str, str]] = {GENRE: "\xa9gen", MOOD: "----:com.apple.iTunes:MOOD"}

    def key(self, name: str) -> str:
        return self.keys.get(name, f"----:com.genrekit:{_private(name)}")

    def get(self, tags, name: str) -> tuple[str, ...]:
        values = tags.get(self.key(name), [])
        return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)

    def set(self, tags, name: str, values: Sequence[str]) -> None:
        from mutagen.mp4 import MP4FreeForm

        key = self.key(name)
        if not values:
            tags.pop(key, None)
        elif key.startswith("----"):
            tags[key] = [MP4FreeForm(value.encode("utf-8")) for value in values]
        else:
            tags[key] = list(values)


def _fields_of(tags):
    """Return the field accessor for an open tag block of any format mutagen writes."""
    from mutagen.apev2 import APEv2
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(tags, ID3):
        return _ID3Fields()
    if isinstance(tags, MP4Tags):
        return _MP4Fields()
    if isinstance(tags, ASFTags):
        return _KeyFields("WM/Genre", "WM/Mood", "GENREKIT/")
    if isinstance(tags, APEv2):
        return _KeyFields("Genre", "Mood", "GENREKIT_")
    return _KeyFields("genre", "mood", "genrekit_")  # Vorbis comments (names are case-insensitive)


def _open(path: Path):
    """Open `path` with mutagen, creating an empty tag block if it has none."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as exc:
        raise TagError(f"{path}: cannot read tags: {exc}") from exc
    if audio is None:
        raise TagError(f"{path}: cannot be tagged: not an audio format with tags")
    if audio.tags is None:
        try:
            audio.add_tags()
        except (mutagen.MutagenError, NotImplementedError) as exc:
            raise TagError(f"{path}: cannot be tagged: {exc}") from exc
    return audio


def read_fields(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """Return every field of :data:`FIELDS` as the tag of `path` stores it (empty tuples when absent).

    Raises
    ------
    TagError
        If the file is behind a URL, cannot be read by mutagen or has no tag format.
    """
    _check_local(path)
    tags = _open(Path(path)).tags
    fields = _fields_of(tags)
    return {name: fields.get(tags, name) for name in FIELDS}


def genrekit_wrote(fields: Mapping[str, Sequence[str]]) -> bool:
    """Whether the genre of a file (:func:`read_fields`) is the one genrekit's private field says it wrote."""
    return bool(fields[GENRE]) and tuple(fields[GENRE]) == tuple(fields["genrekit_genre"])


# -- the audio payload: what tagging must never change --------------------------------------------


def _hash_range(handle, start: int, end: int, digest) -> None:
    handle.seek(start)
    left = end - start
    while left > 0:
        block = handle.read(min(left, 1 << 20))
        if not block:
            break
        digest.update(block)
        left -= len(block)


def _id3_size(head: bytes) -> int:
    """Length of an ID3v2 tag starting at `head` (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _flac_audio(handle, size: int) -> tuple[int, int]:
    """Byte range of the FLAC frames: after an optional ID3v2 tag and every metadata block."""
    start = _id3_size(handle.read(10))
    handle.seek(start)
    if handle.read(4) != b"fLaC":
        raise TagError("not a FLAC stream")
    position = start + 4
    while True:
        handle.seek(position)
        header = handle.read(4)
        if len(header) < 4:
            raise TagError("truncated FLAC metadata")
        position += 4 + int.from_bytes(header[1:4], "big")
        if header[0] & 0x80:
            return position, size


def _mp3_audio(handle, size: int) -> tuple[int, int]:
    """Byte range between the ID3v2 tag and a trailing ID3v1 tag."""
    start = _id3_size(handle.read(10))
    end = size
    if size >= 128:
        handle.seek(size - 128)
        if handle.read(3) == b"TAG":
            end -= 128
    return start, end


def _chunks(handle, size: int, start: int, order: str, header: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(id, data start, data end)`` of the chunks/atoms/objects from `start`."""
    position = start
    while position + header <= size:
        handle.seek(position)
        raw = handle.read(header)
        if header == 24:  # ASF object: 16-byte GUID, 64-bit little-endian size (header included)
            name, length = raw[:16], struct.unpack("<Q", raw[16:])[0]
            data, end = position + 24, position + length
        elif order == "mp4":  # MP4 atom: 32-bit big-endian size (header included), then its type
            length, name = struct.unpack(">I", raw[:4])[0], raw[4:8]
            if length == 1:
                length = struct.unpack(">Q", handle.read(8))[0]
            data, end = position + 8, position + (length or size - position)
        else:  # RIFF (little-endian) or AIFF (big-endian) chunk: id, size (data only), pad to even
            name, length = raw[:4], struct.unpack(order + "I", raw[4:8])[0]
            data, end = position + 8, position + 8 + length + (length & 1)
        if end <= position:
            raise TagError("malformed container")
        yield name, data, min(end, size)
        position = end


def _payload_ranges(path: Path) -> list[tuple[int, int]] | None:
    """Byte ranges holding the audio of `path`; None for formats checked by decoding (Ogg)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        handle.seek(0)
        skipped = _id3_size(head)
        handle.seek(skipped)
        magic = handle.read(4)
        handle.seek(0)
        if magic == b"fLaC":
            return [_flac_audio(handle, size)]
        if head[:4] in (b"RIFF", b"FORM"):
            order = "<" if head[:4] == b"RIFF" else ">"
            wanted = (b"data",) if order == "<" else (b"SSND",)
            return [(a, b) for name, a, b in _chunks(handle, size, 12, order, 8) if name in wanted]
        if head[4:8] == b"ftyp":
            return [(a, b) for name, a, b in _chunks(handle, size, 0, "mp4", 8) if name == b"mdat"]
        if head[:4] == bytes.fromhex("3026b275"):  # ASF header object GUID: the audio follows it
            first = next(_chunks(handle, size, 0, "<", 24))
            return [(first[2], size)]
        if head[:4] == b"OggS":
            return None
        return [_before_ape(handle, *_mp3_audio(handle, size))]


def _before_ape(handle, start: int, end: int) -> tuple[int, int]:
    """Cut an APEv2 tag (WavPack, Monkey's Audio, Musepack) off the end of the range."""
    if end - start < 32:
        return start, end
    handle.seek(end - 32)
    footer = handle.read(32)
    if footer[:8] != b"APETAGEX":
        return start, end
    length, _, flags = struct.unpack("<III", footer[12:24])
    return start, end - length - (32 if flags & 0x80000000 else 0)


def audio_digest(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of the audio payload of `path`: what a tag write must leave as it was.

    The bytes of the audio frames for FLAC, MP3 (and other ID3-prefixed streams),
    WAV/AIFF (``data``/``SSND``), MP4 (``mdat``), ASF (after the header object) and
    APEv2-tagged files; the decoded samples for Ogg, whose pages are renumbered
    when the comment header grows.

    Raises
    ------
    TagError
        If the file cannot be parsed or decoded.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        ranges = _payload_ranges(path)
        if ranges is None:
            import soundfile as sf

            for block in sf.blocks(str(path), blocksize=1 << 16, dtype="float32", always_2d=True):
                digest.update(block.tobytes())
        else:
            with open(path, "rb") as handle:
                for start, end in ranges:
                    _hash_range(handle, start, end, digest)
    except (OSError, RuntimeError, struct.error, StopIteration) as exc:
        raise TagError(f"{path}: cannot read its audio to check it: {exc}") from exc
    return digest.hexdigest()


# -- the writer -----------------------------------------------------------------------------------


def temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Return the temporary copies a killed writer left beside `path`."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}{TEMP_MARK}*.tmp"))


def remove_temp_files(path: str | os.PathLike[str]) -> int:
    """Delete the temporary copies a killed writer left beside `path`; return how many."""
    found = temp_files(path)
    for stale in found:
        stale.unlink(missing_ok=True)
    return len(found)


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _apply(copy: Path, values: Mapping[str, Sequence[str]]) -> None:
    """Set the fields of `values` in the file `copy` and save it (ID3 as version 2.4)."""
    import mutagen
    from mutagen.id3 import ID3

    audio = _open(copy)
    fields = _fields_of(audio.tags)
    for name, new in values.items():
        fields.set(audio.tags, name, [str(v) for v in new])
    try:
        if isinstance(audio.tags, ID3):
            audio.save(v2_version=4)
        else:
            audio.save()
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        raise TagError(f"cannot write tags: {exc}") from exc


def write_fields(
    path: str | os.PathLike[str],
    values: Mapping[str, Sequence[str]],
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Set tag fields of `path`, atomically and verified; every other tag and the audio stay as they were.

    The file is copied beside itself, the copy tagged, fsync'ed and checked (the
    fields read back as `values`, :func:`audio_digest` unchanged), then renamed
    over `path` and the folder fsync'ed. Nothing is left behind on failure.

    Parameters
    ----------
    path : path-like
        An audio file mutagen can tag (see the module docstring for formats).
    values : mapping
        Field of :data:`FIELDS` -> its new values (an empty sequence removes the field).
    before_replace : callable, optional
        Called after the checks, before the rename (the journal is written there:
        a kill after it leaves a journalled change the file may not have got).

    Raises
    ------
    TagError
        If the file cannot be tagged, or the tagged copy fails a check (the
        file is then left as it was).
    """
    _check_local(path)
    path = Path(path)
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TagError(f"{path}: unknown tag fields {sorted(unknown)}")
    expected = {name: tuple(str(v) for v in new) for name, new in values.items()}
    remove_temp_files(path)
    before = audio_digest(path)
    copy = path.parent / f".{path.name}{TEMP_MARK}{uuid.uuid4().hex[:12]}.tmp"
    try:
        shutil.copy2(path, copy)
        try:
            _apply(copy, expected)
        except TagError as exc:
            raise TagError(f"{path}: {exc}") from exc
        _fsync(copy)
        found = read_fields(copy)
        wrong = [name for name, new in expected.items() if found[name] != new]
        if wrong:
            raise TagError(f"{path}: tags read back differ in {', '.join(wrong)}; file left unchanged")
        if audio_digest(copy) != before:
            raise TagError(f"{path}: the audio would change; file left unchanged")
        if before_replace is not None:
            before_replace()
        os.replace(copy, path)
    except OSError as exc:
        raise TagError(f"{path}: cannot write tags: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()
    _fsync(path.parent, directory=True)
