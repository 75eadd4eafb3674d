"""Reading and writing a file's own genre tag (ID3, Vorbis comment, MP4) with mutagen."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def tag_namer(style: str = "library") -> Callable[[str], str]:
    """Return the function that spells a predicted genre for a tag.

    Parameters
    ----------
    style : str
        ``"library"`` (default): ``Hip-Hop``, ``Jazz`` ... (:data:`TAG_NAMES`), and a genre of
        your own title-cased unless it has capitals already (``folk`` -> ``Folk``);
        ``"lower"``: the genre exactly as predicted (``hiphop``); or a comma list of
        ``genre=Tag`` pairs (``"hiphop=Rap,jazz=Jazz"``), the other genres spelled as ``library``.

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
    names = {**TAG_NAMES, **custom}
    return lambda genre: names.get(genre, genre if genre != genre.lower() else genre.title())


class TagError(GenrekitError):
    """A file's genre tag cannot be read or written."""


@dataclass(frozen=True)
class TagChange:
    """What tagging one file did (or, in a dry run, would do).

    Attributes
    ----------
    path : Path
        The audio file.
    old : tuple of str
        The genre values the file held before (empty when it had none).
    new : str
        The genre written.
    written : bool
        False for a dry run or when the tag already held exactly `new`.
    """

    path: Path
    old: tuple[str, ...]
    new: str
    written: bool


def _open(path: Path):
    """Open `path` with mutagen's easy interface, creating an empty tag block if it has none."""
    import mutagen

    try:
        audio = mutagen.File(path, easy=True)
    except mutagen.MutagenError as exc:
        raise TagError(f"{path}: cannot read tags: {exc}") from exc
    if audio is None:
        raise TagError(f"{path}: cannot be tagged: not a format with genre tags (ID3, Vorbis comment, MP4)")
    if audio.tags is None:
        try:
            audio.add_tags()
        except (mutagen.MutagenError, NotImplementedError) as exc:
            raise TagError(f"{path}: cannot be tagged: {exc}") from exc
    return audio


def _check_local(path: str | os.PathLike[str]) -> None:
    """Raise `TagError` for a file behind a URL (``s3://...``): its tags cannot be read nor written here."""
    from genrekit.library.remote import is_url

    if is_url(path):
        raise TagError(f"{path}: a file behind a URL cannot be tagged in place; tag a local copy")


def _is_raw_id3(tags) -> bool:
    """Whether `tags` is a raw ID3 block (WAV, AIFF) rather than a key/value interface."""
    from mutagen.id3 import ID3

    return isinstance(tags, ID3)


def read_genre(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Return the genre values in the tag of `path` (empty when there are none).

    Raises
    ------
    TagError
        If the file cannot be read by mutagen or has no tag format.
    """
    _check_local(path)
    return _genre_values(_open(Path(path)).tags)


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


def _genre_values(tags) -> tuple[str, ...]:
    """Return the genre values held by an open tag block."""
    if _is_raw_id3(tags):
        return tuple(str(text) for frame in tags.getall("TCON") for text in frame.text)
    return tuple(tags.get("genre", ()))


def write_genre(path: str | os.PathLike[str], genre: str, dry_run: bool = False) -> TagChange:
    """Set the genre tag of `path` to `genre`, leaving audio data and every other tag as they were.

    Parameters
    ----------
    path : path-like
        An MP3, FLAC, Ogg (Vorbis, Opus), MP4/M4A, WAV or AIFF file.
    genre : str
        The genre to write.
    dry_run : bool
        If True, report what would change and write nothing.

    Returns
    -------
    TagChange
        The old and new values and whether the file was written.

    Raises
    ------
    TagError
        If the file cannot be tagged (unknown format, unreadable or read-only file).
    """
    import mutagen

    _check_local(path)
    path = Path(path)
    audio = _open(path)
    old = _genre_values(audio.tags)
    if dry_run or old == (genre,):
        return TagChange(path, old, genre, written=False)
    if _is_raw_id3(audio.tags):
        from mutagen.id3 import TCON

        audio.tags.setall("TCON", [TCON(encoding=3, text=[genre])])
    else:
        audio.tags["genre"] = [genre]
    try:
        audio.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise TagError(f"{path}: cannot write tag: {exc}") from exc
    return TagChange(path, old, genre, written=True)
