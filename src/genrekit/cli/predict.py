"""``genrekit predict``: the genre of audio files or whole folders."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from genrekit.cli import library_check
from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    add_tagger_option,
    error,
    info,
    joined_tags,
    plural,
    positive_int,
    print_json,
    progress,
)

EPILOG = """\
examples:
  genrekit predict song.mp3                 genre of one file, shipped model
  genrekit predict ~/Music --format csv > genres.csv
  genrekit predict album/ --top-k 3 --format json
  genrekit predict album/ --write-tags --dry-run   show the genre tags it would write
  genrekit predict album/ --write-tags             fill in missing genre tags (confident only)
  genrekit predict album/ --write-tags --overwrite also replace genre tags files have
  genrekit predict recordings/ --detect-music      speech, noise, silence: "not music"
  genrekit predict album/ --tags --tagger msd,mtt --top-tags 3   genre and deep tags

A file is cut into 30-second windows like the GTZAN training clips (a tail shorter
than 15 s joins the last window; a longer one gets its own window, aligned to the end);
the file's probabilities are the mean over its windows. A model trained on a segment
table (train records its window_seconds) cuts files into windows of that length.
Files shorter than 3 s are errors. A top probability below --min-confidence, or audio
unlike any training music (by its distance from the training features), is reported
as "uncertain" and never written as a tag. --write-tags never replaces a genre a
file has unless --overwrite; every write is atomic, verified and journalled in the
catalogue --db (undo: `genrekit library tag --db DB --undo`).
With --detect-music a pretrained tagger (musicnn MTT, weights obtained with pip on
first use, as for `genrekit tags`) also decides whether each file is music at all:
speech, noise, silence and nature sounds are reported as "not music" (before
"uncertain"), never written as a tag. With --tags each file also gets the tags of
the musicnn taggers (as `genrekit tags` gives them; JSON field deep_tags), from the
same decoding of the file.

exit status: 0 all files predicted (and tagged), 1 some files failed, 2 usage error,
bad model, tagger weights not available or no audio file found.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit predict``."""
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    parser = subparsers.add_parser(
        "predict",
        help="genre of audio files or folders",
        description="Predict the genre of audio files (any length, any format genrekit can decode).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model folder from `genrekit train` (default: the shipped model)",
    )
    add_format_option(parser, ("table", "json", "csv"))
    parser.add_argument(
        "--top-k", type=positive_int, default=2, metavar="N", help="genres listed per file (default: 2)"
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"top probability below which a file is 'uncertain' (default: {DEFAULT_MIN_CONFIDENCE})",
    )
    add_jobs_option(parser)
    parser.add_argument(
        "--write-tags", action="store_true", help="write the predicted genre into each file's genre tag"
    )
    parser.add_argument("--dry-run", action="store_true", help="with --write-tags: show, write nothing")
    parser.add_argument(
        "--overwrite", action="store_true", help="with --write-tags: also replace genre tags files have"
    )
    parser.add_argument(
        "--db",
        type=Path,
        metavar="DB",
        help="with --write-tags: the catalogue whose journal records every tag change "
        "(default: $GENREKIT_JOURNAL, else journal.db in genrekit's user data folder)",
    )
    parser.add_argument(
        "--tag-names",
        default="library",
        metavar="STYLE",
        help="how tags spell genres: 'library' (Hip-Hop, Jazz; default), 'lower' (hiphop, jazz) "
        "or pairs such as 'hiphop=Rap,jazz=Jazz'",
    )
    parser.add_argument(
        "--detect-music",
        action="store_true",
        help="also decide music / not music (speech, noise, silence: 'not music'; needs the tagger weights)",
    )
    parser.add_argument(
        "--tags",
        action="store_true",
        help="also the deep tags of each file (musicnn, as `genrekit tags`; needs the tagger weights)",
    )
    add_tagger_option(parser, "with --tags: comma-separated taggers: msd, mtt (default: msd)")
    parser.add_argument(
        "--top-tags", type=positive_int, metavar="N", help="with --tags: tags per tagger (default: 5)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict, print and optionally tag; return the exit status."""
    from genrekit.audio.decode import audio_files
    from genrekit.library.tags import tag_namer
    from genrekit.prediction.model import TOP_TAGS, load_model

    args.tag_name = tag_namer(args.tag_names)  # checked before any work
    if not args.tags and (args.tagger or args.top_tags):
        error("--tagger and --top-tags go with --tags")
        return EXIT_USAGE
    taggers = (args.tagger or ("msd",)) if args.tags else ()
    args.top_tags = args.top_tags or TOP_TAGS
    model = load_model(args.model, detect_music=args.detect_music)
    model.prepare_taggers()  # a model of embeddings: its taggers' weights (or a clear error) first
    if args.detect_music:
        from genrekit.tagger.music import default_detector

        default_detector()  # weights obtained (or a clear error) before any file
    if taggers:
        load_taggers(taggers, args.quiet)  # likewise
    files = audio_files(args.paths)
    if not files:
        error("no audio files found in " + ", ".join(map(str, args.paths)))
        return EXIT_USAGE
    from genrekit.library.catalogue import model_id

    classes = tuple(str(c) for c in model.classes_)
    writer = _Writer(args, classes, _name_width(files), model_id(model.metadata))
    tagger = _Tagger(args, model.metadata) if args.write_tags else None
    failed = 0
    sample = library_check.folder_sample(args.paths)
    results = model.predict_files(files, jobs=args.jobs, tags=taggers)
    try:
        for path, result in progress(results, len(files), "predict", "file", quiet=args.quiet):
            if isinstance(result, Exception):
                error(str(result))
                writer.failed(path, result)
                failed += 1
                continue
            writer.row(result, "" if tagger is None else tagger.tag(result))
            if sample is not None:
                sample.add(result.path, result.window_features)
    finally:
        if tagger is not None:
            tagger.close()
    writer.close()
    if sample is not None:
        library_check.warn_shift(model, args.model, *sample.rows())
    info(f"predicted {len(files) - failed} of {plural(len(files), 'file')}, {failed} failed", args.quiet)
    if tagger is not None:
        info("tags: " + tagger.summary(), args.quiet)
    return EXIT_PARTIAL if failed or (tagger is not None and tagger.failed) else EXIT_OK


def load_taggers(names: tuple[str, ...], quiet: bool) -> None:
    """Build the taggers `names` here (pip fetches their weights once; workers read the cache)."""
    from genrekit.core.errors import ModelError
    from genrekit.tagger.model import default_tagger
    from genrekit.tagger.weights import is_cached

    if not all(is_cached(name) for name in names):
        info("tagger weights not in the cache yet: downloading musicnn 0.1.0 with pip (once)", quiet)
    try:
        for name in names:
            default_tagger(name)
    except ModelError as exc:
        raise ModelError(
            f"--tags: {exc} to `genrekit tags FILE --tagger {','.join(names)} --weights WHEEL` once "
            "(it fills the cache that --tags reads)"
        ) from exc


class _Tagger:
    """``--write-tags``: propose and write each file's genre through the one tag writer, journalled."""

    def __init__(self, args: argparse.Namespace, metadata: dict) -> None:
        from genrekit.library.catalogue import Catalogue, model_id
        from genrekit.library.tagging import new_run

        self.args = args
        self.model = model_id(metadata)
        self.run = new_run()
        self.done: list = []
        self.catalogue = None if args.dry_run else Catalogue(args.db or _default_journal())

    def tag(self, prediction) -> str:
        """Tag one file (or, on a dry run, say what would be done); return the note for the output."""
        from genrekit.library.tagging import describe, execute, propose, tag_verdict

        shown = prediction.verdict(self.args.min_confidence)
        verdict = tag_verdict(shown, prediction.genre, prediction.familiar)
        proposal = propose(
            str(prediction.path),
            (self.args.tag_name(prediction.genre),),
            klass=prediction.genre,
            model=self.model,
            confidence=prediction.confidence,
            verdict=verdict,
            scores=dict(zip(prediction.classes, prediction.probabilities.tolist(), strict=True)),
            overwrite=self.args.overwrite,
        )
        if self.catalogue is not None:
            proposal = execute(proposal, self.catalogue, self.run)
        self.done.append(proposal)
        if proposal.action == "failed":
            error(proposal.reason)
        return describe(proposal, with_path=False)

    @property
    def failed(self) -> int:
        """Files that could not be tagged."""
        return sum(p.action == "failed" for p in self.done)

    def summary(self) -> str:
        """Every file counted by what tagging did."""
        from genrekit.library.tagging import count, summary

        return summary(count(self.done), self.args.dry_run)

    def close(self) -> None:
        """Close the journal's catalogue."""
        if self.catalogue is not None:
            self.catalogue.close()


def _default_journal() -> Path:
    """Return the catalogue journalling ``predict --write-tags``: $GENREKIT_JOURNAL, else in user data."""
    import os

    import platformdirs

    return Path(
        os.environ.get("GENREKIT_JOURNAL") or Path(platformdirs.user_data_dir("genrekit")) / "journal.db"
    )


class _Writer:
    """Print predictions on stdout as a table, CSV (both streamed) or JSON (at the end).

    In CSV and JSON every input is a record, a failed file included (its ``error`` set, no
    genre), so a script sees every file it gave. The table (for people) lists the files that
    were predicted; its header is printed with the first of them, so that a run where every
    file failed prints no empty table (the errors are on stderr).
    """

    def __init__(
        self, args: argparse.Namespace, classes: tuple[str, ...], name_width: int = 40, model: str = ""
    ) -> None:
        self.args = args
        self.classes = classes
        self.name_width = name_width
        self.model = model
        self.records: list[dict] = []
        self.header_done = False
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
        self.fields = (*CSV_FIELDS, "deep_tags") if args.tags else CSV_FIELDS

    def _header(self) -> None:
        """Print the table's or the CSV's header once, before the first row."""
        if self.header_done:
            return
        self.header_done = True
        if self.csv is not None:
            self.csv.writerow([*self.fields, *self.classes])
        elif self.args.format == "table":
            print(f"{'file':<{self.name_width}} {'genre':<10} {'prob':>5}  others")

    def failed(self, path: Path, exc: Exception) -> None:
        """Record a file that could not be predicted (CSV and JSON; the table leaves it to stderr)."""
        record = {"file": str(path), "genre": None, "error": str(exc), "model": self.model}
        if self.csv is not None:
            self._header()
            self.csv.writerow([record.get(field, "") for field in self.fields] + [""] * len(self.classes))
        elif self.args.format == "json":
            self.records.append(record)

    def row(self, prediction, tag_note: str) -> None:
        """Output one file's prediction."""
        confident = prediction.is_confident(self.args.min_confidence)
        genre = prediction.verdict(self.args.min_confidence)
        self._header()
        if self.csv is not None:
            record = self._record(prediction, tag_note)
            record["probability"] = f"{record['probability']:.4f}"
            record["novelty"] = "" if record["novelty"] is None else f"{record['novelty']:.3f}"
            record["music"] = "" if record["music"] is None else f"{record['music']:.3f}"
            record["deep_tags"] = "; ".join(
                f"{t['tagger']}:{t['tag']}={t['probability']:.4f}" for t in record.get("deep_tags", ())
            )
            self.csv.writerow(
                [record.get(field, "") for field in self.fields]
                + [f"{p:.4f}" for p in prediction.probabilities]
            )
        elif self.args.format == "table":
            others = ", ".join(f"{g} {p:.2f}" for g, p in prediction.top(self.args.top_k)[1:])
            if not confident:
                why = "" if prediction.familiar else "unlike training music; "
                why = why if prediction.is_music else f"music {prediction.music:.2f}; "
                others = f"({why}best guess {prediction.genre}) " + others
            name = _shorten(str(prediction.path), self.name_width)
            line = f"{name:<{self.name_width}} {genre:<10} {prediction.confidence:5.2f}  {others}  {tag_note}"
            print(line.rstrip())
            for result in prediction.tags:
                print(f"  {result.tagger}  {joined_tags(result.top(self.args.top_tags))}")
        else:
            self.records.append(self._record(prediction, tag_note))

    def _record(self, prediction, tag_note: str) -> dict:
        """Return the file's record (as ``genrekit serve`` answers it), the tagging note, the model's id."""
        record = prediction.to_record(self.args.min_confidence, self.args.top_k, self.args.top_tags)
        return {**record, **({"tags": tag_note} if tag_note else {}), "model": self.model}

    def close(self) -> None:
        """Finish the output (prints the JSON document)."""
        if self.args.format == "json":
            print_json({"model": self.model, "classes": list(self.classes), "files": self.records})


CSV_FIELDS: tuple[str, ...] = (
    "file",
    "genre",
    "best_guess",
    "probability",
    "confident",
    "familiar",
    "novelty",
    "music",
    "duration",
    "tags",
    "error",
    "model",
)
"""The CSV's columns before the per-genre probabilities: the JSON's per-file fields (not windows);
with ``--tags`` a ``deep_tags`` column follows (``tagger:tag=probability`` entries joined by ``"; "``)."""


def _name_width(files: list[Path]) -> int:
    """Width of the file column: the longest path, within what the terminal leaves (at least 20)."""
    import shutil

    room = shutil.get_terminal_size((120, 24)).columns - 45  # genre, probability, two other genres
    return max(20, min(max(len(str(path)) for path in files), room))


def _shorten(text: str, width: int) -> str:
    """Keep the end of `text` (the file name) when it is wider than `width`."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]
