"""Tagging runs: what to write into each file, writing it through the one writer, the journal, undo.

Every command that tags files (``predict --write-tags``, ``library tag`` with the
catalogue's or the learned model, ``library tag --apply``) decides file by file
with :func:`propose` and writes with :func:`execute`, so the rules are the same
everywhere:

* a file that already has a genre keeps it (``kept``) unless ``overwrite``; a
  file whose genre already names the predicted class is left alone (``same``);
* a prediction that is not confident is ``uncertain``; audio unlike any music
  the model knows, or a file the scan could not decode, is ``not music``;
  neither is written (the beets plugin follows the same rule, :func:`decide`);
* a write changes the genre, the mood (when moods are given and the file has
  none) and genrekit's private fields (:data:`~genrekit.library.tags.PRIVATE_FIELDS`),
  through :func:`genrekit.library.tags.write_fields` (atomic, verified), and is
  journalled in the catalogue (:class:`~genrekit.library.catalogue.TagJournal`)
  before the file is replaced; :func:`undo` puts the old values back.

A dry run's proposals can be saved as a plan (:func:`save_plan`) and written
later exactly as planned (:func:`load_plan`, then :func:`execute` each): a file
whose fields changed since the plan was made is not written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from genrekit.core.atomic import atomic_write_text
from genrekit.core.errors import GenrekitError
from genrekit.library.catalogue import Catalogue, TagJournal, failed_files
from genrekit.library.tags import (
    FIELDS,
    GENRE,
    MOOD,
    TEMP_MARK,
    TagError,
    read_fields,
    remove_temp_files,
    write_fields,
)
from genrekit.library.taxonomy import Taxonomy, load_taxonomy
from genrekit.prediction.model import NOT_MUSIC, UNCERTAIN

COUNTED: tuple[str, ...] = ("written", "kept", "same", "uncertain", "not music", "failed")
"""What a tagging run counts, every file in exactly one (a dry run says ``write`` for ``written``;
files behind URLs, which cannot be tagged in place, are counted as ``remote``)."""

PLAN_FORMAT = "genrekit-tag-plan"
PLAN_VERSION = 1


@dataclass(frozen=True)
class Proposal:
    """What tagging one file would do (or did).

    Attributes
    ----------
    path : str
        The file.
    action : str
        ``write`` (planned), ``written``, ``kept``, ``same``, ``uncertain``, ``not music`` or ``failed``.
    old : dict
        Every field of :data:`~genrekit.library.tags.FIELDS` as the file holds it (empty when unread).
    new : dict
        The fields a write sets (only for ``write``/``written``).
    genre : tuple of str
        The genres proposed, spelled for tags (empty for ``failed``).
    klass : str
        The predicted class (``""`` when none).
    confidence : float or None
        The model's probability of it.
    model : str
        The model id.
    reason : str
        Why it failed or was not written, for people.
    info : dict
        Extra figures for the JSON output (``familiar`` ...).
    """

    path: str
    action: str
    old: dict = field(default_factory=dict)
    new: dict = field(default_factory=dict)
    genre: tuple[str, ...] = ()
    klass: str = ""
    confidence: float | None = None
    model: str = ""
    reason: str = ""
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (``old`` also as ``existing``: the genre values now)."""
        record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        record["old"] = {k: list(v) for k, v in self.old.items()}
        record["new"] = {k: list(v) for k, v in self.new.items()}
        record["class"] = record.pop("klass")
        record["existing"] = list(self.old.get(GENRE, ()))
        record["written"] = self.action == "written"
        return {**record.pop("info"), **record}

    @classmethod
    def from_dict(cls, record: Mapping) -> Proposal:
        """Rebuild from :meth:`to_dict` output (a plan file's entry)."""
        try:
            return cls(
                path=str(record["path"]),
                action=str(record["action"]),
                old={k: tuple(map(str, v)) for k, v in record["old"].items()},
                new={k: tuple(map(str, v)) for k, v in record["new"].items()},
                genre=tuple(map(str, record["genre"])),
                klass=str(record["class"]),
                confidence=None if record["confidence"] is None else float(record["confidence"]),
                model=str(record["model"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GenrekitError(f"plan entry {record!r:.80}: malformed ({exc})") from exc


def _readable(values: Sequence[str]) -> list[str]:
    """Genre values as a person reads them (ID3v1 numbers resolved, several genres in one value split)."""
    from mutagen.id3 import TCON

    from genrekit.library.taxonomy import split_values

    return split_values(TCON(encoding=3, text=list(values)).genres if values else [])


def decide(
    existing: Sequence[str],
    klass: str,
    verdict: str = "ok",
    overwrite: bool = False,
    taxonomy: Taxonomy | None = None,
) -> str:
    """Decide, by the rule every tag writer follows, what to do with a file that has genres `existing`.

    Parameters
    ----------
    existing : sequence of str
        The genres it has now, as a person reads them (empty: none).
    klass : str
        The predicted class.
    verdict : str
        ``ok`` (confident), ``uncertain`` or ``not music``.
    overwrite : bool
        Whether a genre the file has may be replaced.
    taxonomy : Taxonomy, optional
        Maps genre values to classes (the default mapping when None).

    Returns
    -------
    str
        ``same`` (its genre already names the class), ``kept`` (it has another
        genre and `overwrite` is False), the `verdict` when not ``ok``, else ``write``.
    """
    if existing and verdict == "ok" and klass in (taxonomy or load_taxonomy(None)).classes_of(existing):
        return "same"
    if existing and not overwrite:
        return "kept"
    return "write" if verdict == "ok" else verdict


def propose(
    path: str,
    genres: Sequence[str],
    *,
    klass: str,
    model: str,
    confidence: float | None,
    verdict: str = "ok",
    scores: Mapping[str, float] | None = None,
    moods: Sequence[str] = (),
    overwrite: bool = False,
    taxonomy: Taxonomy | None = None,
    info: Mapping | None = None,
) -> Proposal:
    """Decide what tagging `path` with `genres` should do (reads its tags, writes nothing).

    Parameters
    ----------
    path : str
        The file.
    genres : sequence of str
        The genres to write, spelled for tags (see :func:`~genrekit.library.tags.tag_namer`).
    klass : str
        The predicted class (compared with the file's genre through `taxonomy`).
    model : str
        The model id, written into the private field and the journal.
    confidence : float or None
        The probability of `klass`.
    verdict : str
        ``ok`` (confident), ``uncertain`` or ``not music``: only ``ok`` is written.
    scores : mapping, optional
        Class -> probability, written into the private ``genrekit_scores`` field.
    moods : sequence of str
        Moods to write where the file has none (or with `overwrite`).
    overwrite : bool
        Replace a genre (and mood) the file already has.
    taxonomy : Taxonomy, optional
        Maps the file's genre values to classes (the default mapping when None).
    info : mapping, optional
        Extra figures kept for the output.

    Returns
    -------
    Proposal
        Its action is ``write``, ``kept``, ``same``, ``uncertain``, ``not music`` or ``failed``.
    """
    base = Proposal(
        path,
        "failed",
        genre=tuple(genres),
        klass=klass,
        confidence=confidence,
        model=model,
        info=dict(info or {}),
    )
    try:
        old = read_fields(path)
    except (TagError, OSError) as exc:
        return replace(base, reason=str(exc))
    base = replace(base, old=old)
    action = decide(_readable(old[GENRE]), klass, verdict, overwrite, taxonomy)
    if action != "write":
        reason = "has a genre; --overwrite replaces it" if action == "kept" else ""
        return replace(base, action=action, reason=reason)
    wanted: dict[str, tuple[str, ...]] = {
        GENRE: tuple(genres),
        "genrekit_genre": tuple(genres),
        "genrekit_confidence": () if confidence is None else (f"{confidence:.4f}",),
        "genrekit_model": (model,),
        "genrekit_scores": tuple(f"{name}={p:.4f}" for name, p in (scores or {}).items()),
    }
    if moods and (overwrite or not old[MOOD]):
        wanted[MOOD] = tuple(moods)
    new = {name: values for name, values in wanted.items() if old[name] != values}
    return replace(base, action="write", new=new)


def execute(proposal: Proposal, catalogue: Catalogue, run: str) -> Proposal:
    """Write a ``write`` proposal (atomic, verified, journalled in `catalogue`); return what happened.

    The file's fields are read again first: if any field to be written no longer
    holds what the proposal saw (someone tagged the file since), nothing is written.
    A written file's new size and time are recorded in the catalogue, so the next
    scan does not analyse it again (its audio did not change).

    Returns
    -------
    Proposal
        The same with action ``written``, or ``failed`` and the reason.
    """
    if proposal.action != "write":
        return proposal
    path = proposal.path
    try:
        current = read_fields(path)
        moved = [name for name in proposal.new if current[name] != proposal.old.get(name, ())]
        if moved:
            return replace(
                proposal, action="failed", reason=f"{path}: {', '.join(moved)} changed since planned"
            )
        changes = {name: (current[name], values) for name, values in proposal.new.items()}
        journal = TagJournal(catalogue)
        write_fields(
            path,
            proposal.new,
            before_replace=lambda: journal.record(run, path, changes, proposal.model, time.time()),
        )
    except (TagError, OSError) as exc:
        return replace(proposal, action="failed", reason=str(exc))
    stat = os.stat(path)
    catalogue.restat(path, stat.st_size, stat.st_mtime_ns)
    return replace(proposal, action="written")


def new_run() -> str:
    """Return the id of a new tagging run (UTC time and a random part)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def count(proposals: Iterable[Proposal]) -> dict[str, int]:
    """Return how many proposals have each action (:data:`COUNTED`, ``write`` first when planned)."""
    found = Counter(p.action for p in proposals)
    keys = (("write",) if found["write"] else ()) + COUNTED + (("remote",) if found["remote"] else ())
    return {key: found[key] for key in keys}


def summary(counts: Mapping[str, int], dry_run: bool) -> str:
    """One line for people: every file counted, what kept files need to change."""
    total = sum(counts.values())
    parts = [f"{n} {'would be written' if key == 'write' else key}" for key, n in counts.items()]
    line = f"{total} files: " + ", ".join(parts)
    if counts.get("kept"):
        line += " (kept: they have a genre; --overwrite replaces it)"
    if counts.get("remote"):
        line += " (remote: files behind URLs cannot be tagged in place)"
    return line + (" (dry run: nothing written)" if dry_run else "")


def describe(proposal: Proposal, with_path: bool = True) -> str:
    """Return ``action existing -> proposed path`` of one file, for people."""
    existing = "/".join(proposal.old.get(GENRE, ())) or "none"
    proposed = "/".join(proposal.genre) or "-"
    if proposal.action in ("uncertain", "not music"):
        proposed = f"({proposal.action}{', best guess ' + proposed if proposal.genre else ''})"
    note = f"  [{proposal.reason}]" if proposal.action == "failed" and proposal.reason else ""
    where = f"  {proposal.path}" if with_path else ""
    return f"{proposal.action:<10} {existing} -> {proposed}{where}{note}"


def save_plan(path: str | os.PathLike[str], proposals: Sequence[Proposal], settings: Mapping) -> None:
    """Write a dry run's proposals as a plan file (JSON, atomically)."""
    document = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings),
        "files": [p.to_dict() for p in proposals],
    }
    atomic_write_text(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


def load_plan(path: str | os.PathLike[str]) -> list[Proposal]:
    """Read a plan file; return its ``write`` proposals, exactly as planned.

    Raises
    ------
    GenrekitError
        If the file cannot be read or is not a genrekit tag plan.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GenrekitError(f"{path}: cannot read the plan: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise GenrekitError(f"{path}: not a genrekit tag plan (made by `library tag --dry-run --plan`)")
    if document.get("version") != PLAN_VERSION:
        raise GenrekitError(
            f"{path}: plan version {document.get('version')}; this genrekit reads {PLAN_VERSION}"
        )
    proposals = [Proposal.from_dict(record) for record in document.get("files", [])]
    for proposal in proposals:
        unknown = set(proposal.new) - set(FIELDS)
        if unknown:
            raise GenrekitError(f"{path}: {proposal.path}: unknown fields {sorted(unknown)}")
    return [p for p in proposals if p.action == "write"]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


def parse_since(text: str, now: float | None = None) -> float:
    """Return the time (seconds since the epoch) that ``--since`` names.

    Parameters
    ----------
    text : str
        An ISO 8601 date or time (``2026-12-06``, ``2026-12-06T23:10``, UTC unless
        it names a zone) or a duration back from now (``30m``, ``2h``, ``1d``).

    Raises
    ------
    GenrekitError
        If `text` is neither.
    """
    found = _DURATION.match(text.strip())
    if found:
        seconds = float(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
        return (time.time() if now is None else now) - seconds
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise GenrekitError(
            f"--since {text!r}: not an ISO date/time nor a duration like 30m, 2h, 1d"
        ) from exc
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def remove_stale_temps(catalogue: Catalogue) -> int:
    """Delete the temporary copies a killed tag writer left beside the catalogue's files; return how many.

    One listing per folder: the names ``.<file>.genrekit-<id>.tmp`` of files the catalogue knows.
    """
    from genrekit.library.remote import is_url

    folders: dict[str, set[str]] = {}
    for path, _ in catalogue.predictions():
        if not is_url(path):
            folders.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    removed = 0
    for folder, names in folders.items():
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                stem = entry.name[1:].split(TEMP_MARK)[0]
                if entry.name.startswith(".") and entry.name.endswith(".tmp") and stem in names:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
    return removed


def undo(catalogue: Catalogue, since: float | None = None) -> list[Proposal]:
    """Restore the values the journalled changes (at or after `since`) replaced, newest run first.

    Per file, every field goes back to its value before the first change selected.
    A file whose fields were changed since by someone else is ``kept`` (never
    overwritten); one that already holds the old values (a run killed before the
    rename) is ``same``. Restored entries are marked undone after the file is
    replaced, so an undo killed half-way can simply be run again.

    Returns
    -------
    list of Proposal
        One per file: ``written`` (restored), ``same``, ``kept`` or ``failed``.
    """
    journal = TagJournal(catalogue)
    remove_stale_temps(catalogue)
    by_path: dict[str, list] = {}
    for entry in journal.entries(since):
        by_path.setdefault(entry.path, []).append(entry)
    results = []
    for path, entries in by_path.items():
        target, last = {}, {}
        for entry in entries:
            target.setdefault(entry.field, entry.old)
            last[entry.field] = entry.new
        results.append(_restore(catalogue, journal, path, entries, target, last))
    return results


def _restore(catalogue, journal, path: str, entries, target: dict, last: dict) -> Proposal:
    """Put `target` back into one file if it holds what genrekit wrote (`last`) or already `target`."""
    ids = [entry.id for entry in entries]
    base = Proposal(path, "failed", old={}, new=target, model=entries[-1].model_id)
    try:
        remove_temp_files(path)
        current = read_fields(path)
    except (TagError, OSError) as exc:
        return replace(base, reason=str(exc))
    base = replace(base, old=current, genre=tuple(target.get(GENRE, ())))
    if all(current[name] == values for name, values in target.items()):
        journal.mark_undone(ids)
        return replace(base, action="same")
    if any(current[name] not in (values, last[name]) for name, values in target.items()):
        return replace(base, action="kept", reason="changed since genrekit wrote it; left as it is")
    try:
        write_fields(path, {name: values for name, values in target.items() if current[name] != values})
    except TagError as exc:
        return replace(base, reason=str(exc))
    journal.mark_undone(ids)
    stat = os.stat(path)
    catalogue.restat(path, stat.st_size, stat.st_mtime_ns)
    return replace(base, action="written")


def tag_verdict(shown: str, genre: str, familiar: bool) -> str:
    """Return what a file's verdict means for tagging: ``ok`` (write `genre`), ``uncertain`` or ``not music``.

    `shown` is the file's verdict (:meth:`~genrekit.prediction.model.FilePrediction.verdict`);
    audio unlike any music the model knows counts as not music too.
    """
    if shown == genre:
        return "ok"
    return NOT_MUSIC if shown == NOT_MUSIC or not familiar else UNCERTAIN


def catalogue_proposals(catalogue: Catalogue, namer, overwrite: bool = False) -> list[Proposal]:
    """Propose a tag for every file of the catalogue from its stored prediction.

    A stored ``uncertain`` is ``not music`` when the model found the audio unlike
    any it was trained on, ``uncertain`` otherwise; files the scan could not decode
    are ``not music`` too; files behind URLs (which cannot be tagged in place) are ``remote``.

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue.
    namer : callable
        Class -> tag spelling (:func:`~genrekit.library.tags.tag_namer`).
    overwrite : bool
        Replace genres files already have.
    """
    from genrekit.library.remote import is_url

    taxonomy = load_taxonomy(None)
    proposals = []
    for path, prediction in list(catalogue.predictions()):
        shown = prediction.genre  # the stored verdict: a genre, "uncertain" or "not music"
        klass = prediction.best_guess if shown in (UNCERTAIN, NOT_MUSIC) else shown
        info = {"probability": prediction.confidence, "familiar": prediction.familiar}
        if is_url(path):
            reason = "behind a URL: cannot be tagged in place; tag a local copy"
            proposals.append(Proposal(path, "remote", klass=klass, model=prediction.model_id, reason=reason))
            continue
        verdict = tag_verdict(shown, klass, prediction.familiar)
        proposals.append(
            propose(
                path,
                (namer(klass),),
                klass=klass,
                model=prediction.model_id,
                confidence=prediction.confidence,
                verdict=verdict,
                scores=prediction.probabilities,
                overwrite=overwrite,
                taxonomy=taxonomy,
                info=info,
            )
        )
    for path, why in failed_files(catalogue):
        proposals.append(Proposal(path, "not music", reason=f"the scan could not analyse it: {why}"))
    return proposals
