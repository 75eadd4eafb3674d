"""A library's own genre tags, normalised to one taxonomy of classes to learn from.

Genre tags are written by many programs in many spellings: "Hip Hop", "Hip-Hop",
"hiphop" and "Rap" mean one genre to most people, "R&B" and "Rhythm and Blues"
another. :class:`Taxonomy` maps every tag value to a class:

1. the value is reduced to a *key*: lower case, ``&`` read as "and", every
   character that is not a letter or a digit dropped (``"Hip-Hop"`` -> ``hiphop``,
   ``"Drum & Bass"`` -> ``drumandbass``, ``"R&B"`` -> ``randb``);
2. the user's mapping file, when given, is looked up first, then the default
   mapping :data:`DEFAULT_MAP`; a key in neither is its own class (named by the
   key), so a library's own genres ("chiptune", "Post-Rock") are learned as they are;
3. keys in :data:`DEFAULT_IGNORED` (and the user's ``ignore`` list) are not genres
   ("Other", "Unknown", "Genre") and give no class.

A tag may hold several genres (several values, or one value with ``;``, ``,``,
``/`` or ``|`` between genres): a file's *label* is the class of its first genre
that is kept (players show the first one), and all its classes are remembered so
that a file tagged "Rock; Pop" is not called mislabelled when the model says pop.
Classes with fewer than `min_files` files are reported and left out (too few to
learn or to judge).

The user's mapping file is JSON (read with the standard library on every Python
genrekit supports)::

    {
      "map": {"Trap": "hiphop", "Hip Hop": "urban", "Britpop": "rock"},
      "ignore": ["Podcast", "Audiobook"],
      "use_default_map": true
    }

``map`` sends a spelling (compared by its key, so ``"Hip Hop"`` also covers
``"hip-hop"``) to a class name of your choosing; ``ignore`` lists values that are
not genres; ``use_default_map: false`` turns :data:`DEFAULT_MAP` off. Every
field is optional.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genrekit.core.errors import GenrekitError

DEFAULT_MIN_FILES: int = 5
"""Fewest tagged files a class needs to be learned (fewer: reported and left out)."""

_SEPARATORS = re.compile("[;,/|\x00]")

_DEFAULT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "alternative": ("alternative", "alt", "altrock", "alternativerock"),
    "ambient": ("ambient",),
    "blues": ("blues",),
    "classical": ("classical", "classicalmusic", "klassik", "classique"),
    "country": ("country", "countrymusic", "countryandwestern", "countrywestern"),
    "disco": ("disco",),
    "drumandbass": ("drumandbass", "drumnbass", "drumbass", "dnb", "dandb"),
    "electronic": ("electronic", "electronica", "electronicmusic"),
    "folk": ("folk", "folkmusic"),
    "funk": ("funk",),
    "hiphop": ("hiphop", "rap", "hiphoprap", "raphiphop", "hiphopandrap"),
    "house": ("house",),
    "jazz": ("jazz",),
    "latin": ("latin", "latino", "latinmusic"),
    "metal": ("metal", "heavymetal"),
    "pop": ("pop", "popmusic"),
    "punk": ("punk", "punkrock"),
    "reggae": ("reggae",),
    "rnb": ("rnb", "randb", "rb", "rhythmandblues", "rhythmnblues", "contemporaryrandb"),
    "rock": ("rock", "rockmusic"),
    "rocknroll": ("rocknroll", "rockandroll", "rockroll", "rocknrol"),
    "soul": ("soul",),
    "soundtrack": ("soundtrack", "ost", "originalsoundtrack", "filmscore", "filmmusic"),
    "techno": ("techno",),
    "world": ("world", "worldmusic"),
}

DEFAULT_MAP: dict[str, str] = {
    spelling: name for name, spellings in _DEFAULT_SPELLINGS.items() for spelling in spellings
}
"""Key of a common spelling -> its class. Spellings only: subgenres keep their own class."""

DEFAULT_IGNORED: frozenset[str] = frozenset(
    {
        *("", "other", "others", "unknown", "genre", "misc", "miscellaneous", "none", "na", "various"),
        *("undefined", "remix", "cover"),
    }
)
"""Keys of tag values that name no genre."""


class TaxonomyError(GenrekitError):
    """A mapping file that cannot be used."""


def genre_key(value: str) -> str:
    """Return the key a tag value is compared by: lower case, ``&`` as "and", letters and digits only.

    Examples
    --------
    >>> genre_key("Hip-Hop"), genre_key("Drum & Bass"), genre_key(" R&B ")
    ('hiphop', 'drumandbass', 'randb')
    """
    return "".join(ch for ch in value.casefold().replace("&", "and") if ch.isalnum())


def split_values(values: Iterable[str]) -> list[str]:
    """Return the single genres of tag `values`, splitting on ``;``, ``,``, ``/`` and ``|``."""
    return [part.strip() for value in values for part in _SEPARATORS.split(value) if part.strip()]


@dataclass(frozen=True)
class Taxonomy:
    """How tag values become classes (see the module docstring).

    Parameters
    ----------
    mapping : dict
        Key -> class name, looked up before the default mapping.
    ignored : frozenset of str
        Keys that name no genre, in addition to :data:`DEFAULT_IGNORED`.
    use_default_map : bool
        Whether :data:`DEFAULT_MAP` applies after `mapping`.
    source : str
        Where the user's part came from (a file name, or ``"default"``).
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    use_default_map: bool = True
    source: str = "default"

    def class_of(self, value: str) -> str | None:
        """Return the class of one genre value, or None when it names no genre."""
        key = genre_key(value)
        if key in self.mapping:
            return self.mapping[key]
        if key in self.ignored or key in DEFAULT_IGNORED:
            return None
        if self.use_default_map and key in DEFAULT_MAP:
            return DEFAULT_MAP[key]
        return key

    def classes_of(self, values: Iterable[str]) -> tuple[str, ...]:
        """Return the distinct classes of a file's tag `values`, in tag order."""
        found = (self.class_of(value) for value in split_values(values))
        return tuple(dict.fromkeys(name for name in found if name is not None))

    def to_dict(self) -> dict:
        """Return a JSON-ready description (stored with a learned model)."""
        return {
            "source": self.source,
            "map": dict(sorted(self.mapping.items())),
            "ignore": sorted(self.ignored),
            "use_default_map": self.use_default_map,
        }


def taxonomy_from_dict(data: Mapping) -> Taxonomy:
    """Rebuild a taxonomy from :meth:`Taxonomy.to_dict` output (as stored with a learned model)."""
    return Taxonomy(
        mapping=dict(data.get("map", {})),
        ignored=frozenset(data.get("ignore", ())),
        use_default_map=bool(data.get("use_default_map", True)),
        source=str(data.get("source", "default")),
    )


def load_taxonomy(path: str | os.PathLike[str] | None = None) -> Taxonomy:
    """Read a user mapping file (JSON, see the module docstring); the default taxonomy when None.

    Raises
    ------
    TaxonomyError
        If the file cannot be read, is not JSON, or a field has the wrong type; the
        message names the file and the field.
    """
    if path is None:
        return Taxonomy()
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read mapping file: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{path}: not a JSON mapping file: {exc}") from exc
    if not isinstance(document, dict):
        raise TaxonomyError(f"{path}: expected a JSON object with 'map', 'ignore', 'use_default_map'")
    unknown = sorted(set(document) - {"map", "ignore", "use_default_map"})
    if unknown:
        expected = "expected map, ignore, use_default_map"
        raise TaxonomyError(f"{path}: unknown field(s) {', '.join(unknown)}; {expected}")
    mapping = document.get("map", {})
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v.strip() for v in mapping.values()):
        raise TaxonomyError(f"{path}: 'map' must be an object of spelling -> non-empty class name")
    ignore = document.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(v, str) for v in ignore):
        raise TaxonomyError(f"{path}: 'ignore' must be a list of strings")
    use_default = document.get("use_default_map", True)
    if not isinstance(use_default, bool):
        raise TaxonomyError(f"{path}: 'use_default_map' must be true or false")
    return Taxonomy(
        mapping={genre_key(k): v.strip() for k, v in mapping.items()},
        ignored=frozenset(genre_key(v) for v in ignore),
        use_default_map=use_default,
        source=path.name,
    )


@dataclass(frozen=True)
class Labels:
    """The training labels a library's tags give, and what was left out.

    Attributes
    ----------
    label : dict
        File id -> its class (the first of its kept classes), for files that have one.
    classes : dict
        File id -> every class its tags name (kept or not), for every tagged file.
    tagged : frozenset
        Ids of files whose genre tag holds any value (a file with only an ignored
        or a too-rare genre is tagged but has no label).
    counts : dict
        Kept class -> number of files it labels, most files first.
    dropped : dict
        Class -> number of files, for classes with fewer than `min_files` files.
    spellings : dict
        Class -> {tag value as written: files}, to show which spellings were merged.
    min_files : int
        The threshold used.
    """

    label: dict[str, str]
    classes: dict[str, tuple[str, ...]]
    tagged: frozenset[str]
    counts: dict[str, int]
    dropped: dict[str, int]
    spellings: dict[str, dict[str, int]]
    min_files: int

    @property
    def kept(self) -> tuple[str, ...]:
        """The classes learned, sorted by name."""
        return tuple(sorted(self.counts))


def label_files(
    genres: Mapping[str, Sequence[str]], taxonomy: Taxonomy | None = None, min_files: int = DEFAULT_MIN_FILES
) -> Labels:
    """Normalise the genre tags of many files to training labels.

    Parameters
    ----------
    genres : mapping
        File id -> the genre values of its tag (empty when untagged), as
        :func:`genrekit.library.tags.read_genres` returns them.
    taxonomy : Taxonomy, optional
        The mapping (default: :class:`Taxonomy` with the default mapping only).
    min_files : int
        Fewest files a class needs; rarer classes are reported in ``dropped``.

    Returns
    -------
    Labels
        The labels and the report of what was merged and dropped.
    """
    taxonomy = taxonomy or Taxonomy()
    classes = {}
    spellings: dict[str, Counter] = {}
    for file_id, values in genres.items():
        singles = split_values(values)
        if not singles:
            continue
        classes[file_id] = taxonomy.classes_of(singles)
        for value in dict.fromkeys(singles):
            name = taxonomy.class_of(value)
            if name is not None:
                spellings.setdefault(name, Counter())[value] += 1
    files_per_class = Counter(name for names in classes.values() for name in names)
    label, rare = _first_kept(classes, min_files)
    return Labels(
        label=label,
        classes=classes,
        tagged=frozenset(file_id for file_id, values in genres.items() if split_values(values)),
        counts=dict(Counter(label.values()).most_common()),
        dropped={name: files_per_class[name] for name in sorted(rare)},
        spellings={name: dict(counter.most_common()) for name, counter in sorted(spellings.items())},
        min_files=min_files,
    )


def _first_kept(classes: Mapping[str, Sequence[str]], min_files: int) -> tuple[dict[str, str], set[str]]:
    """Label each file by its first class that is not rare; return the labels and the rare classes.

    A class is rare when fewer than `min_files` files name it, or when it would
    label fewer than `min_files` files because their earlier genres take them;
    those are dropped one count at a time (fewest labels first), since dropping
    one can hand its files to the next genre of each file.
    """
    named = Counter(name for names in classes.values() for name in names)
    rare = {name for name, n in named.items() if n < min_files}
    while True:
        label = {}
        for file_id, names in classes.items():
            usable = [name for name in names if name not in rare]
            if usable:
                label[file_id] = usable[0]
        counts = Counter(label.values())
        unlabelling = set(named) - rare - set(counts)
        fewest = min(counts.values(), default=min_files)
        if fewest >= min_files and not unlabelling:
            return label, rare
        rare |= unlabelling | {name for name, n in counts.items() if n == fewest and n < min_files}
