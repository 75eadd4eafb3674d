"""``genrekit predict``: the genre of audio files or whole folders."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    error,
    info,
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
  genrekit predict album/ --write-tags             write them (confident predictions only)
  genrekit predict recordings/ --detect-music      speech, noise, silence: "not music"

A file is cut into 30-second windows like the GTZAN training clips (a tail shorter
than 15 s joins the last window; a longer one gets its own window, aligned to the end);
the file's probabilities are the mean over its windows. A model trained on a segment
table (train records its window_seconds) cuts files into windows of that length.
Files shorter than 3 s are errors. A top probability below --min-confidence, or audio
unlike any training music (by its distance from the training features), is reported
as "uncertain" and never written as a tag. With --detect-music a pretrained tagger
(musicnn MTT, weights obtained with pip on first use, as for `genrekit tags`) also
decides whether each file is music at all: speech, noise, silence and nature sounds
are reported as "not music" (before "uncertain"), never written as a tag.

exit status: 0 all files predicted (and tagged), 1 some files failed, 2 usage error,
bad model or no audio file found.
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict, print and optionally tag; return the exit status."""
    from genrekit.audio.decode import audio_files
    from genrekit.library.predict import load_model
    from genrekit.library.tags import tag_namer

    args.tag_name = tag_namer(args.tag_names)  # checked before any work
    model = load_model(args.model, detect_music=args.detect_music)
    if args.detect_music:
        from genrekit.tagger.music import default_detector

        default_detector()  # weights obtained (or a clear error) before any file
    files = audio_files(args.paths)
    if not files:
        error("no audio files found in " + ", ".join(map(str, args.paths)))
        return EXIT_USAGE
    writer = _Writer(args, tuple(str(c) for c in model.classes_), _name_width(files))
    failed = untagged = 0
    results = model.predict_files(files, jobs=args.jobs)
    for _path, result in progress(results, len(files), "predict", "file", quiet=args.quiet):
        if isinstance(result, Exception):
            error(str(result))
            failed += 1
            continue
        tag_note, tagged = _tag(result, args) if args.write_tags else ("", True)
        untagged += not tagged
        writer.row(result, tag_note)
    writer.close()
    summary = f"predicted {len(files) - failed} of {len(files)} files, {failed} failed"
    info(summary + (f"; {untagged} could not be tagged" if untagged else ""), args.quiet)
    return EXIT_PARTIAL if failed or untagged else EXIT_OK


def _tag(prediction, args: argparse.Namespace) -> tuple[str, bool]:
    """Write (or, on a dry run, describe) the genre tag of one file.

    Returns
    -------
    note : str
        What was done, for the output.
    ok : bool
        False when the file could not be tagged (the error is printed).
    """
    from genrekit.library.tags import TagError, write_genre

    if not prediction.is_confident(args.min_confidence):
        return f"not tagged: {prediction.verdict(args.min_confidence)}", True
    try:
        change = write_genre(prediction.path, args.tag_name(prediction.genre), dry_run=args.dry_run)
    except TagError as exc:
        error(str(exc))
        return "tag failed", False
    if change.old == (change.new,):
        return "tag unchanged", True
    old = "/".join(change.old) or "none"
    return f"{'would tag' if args.dry_run else 'tagged'} {old} -> {change.new}", True


class _Writer:
    """Print predictions on stdout as a table, CSV (both streamed) or JSON (at the end)."""

    def __init__(self, args: argparse.Namespace, classes: tuple[str, ...], name_width: int = 40) -> None:
        self.args = args
        self.classes = classes
        self.name_width = name_width
        self.records: list[dict] = []
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
        if self.csv is not None:
            self.csv.writerow([*CSV_FIELDS, *classes])
        elif args.format == "table":
            print(f"{'file':<{name_width}} {'genre':<10} {'prob':>5}  others")

    def row(self, prediction, tag_note: str) -> None:
        """Output one file's prediction."""
        confident = prediction.is_confident(self.args.min_confidence)
        genre = prediction.verdict(self.args.min_confidence)
        if self.csv is not None:
            record = prediction_record(prediction, self.args.min_confidence, self.args.top_k, tag_note)
            record["probability"] = f"{record['probability']:.4f}"
            record["novelty"] = "" if record["novelty"] is None else f"{record['novelty']:.3f}"
            record["music"] = "" if record["music"] is None else f"{record['music']:.3f}"
            self.csv.writerow(
                [record.get(field, "") for field in CSV_FIELDS]
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
        else:
            record = prediction_record(prediction, self.args.min_confidence, self.args.top_k, tag_note)
            self.records.append(record)

    def close(self) -> None:
        """Finish the output (prints the JSON document)."""
        if self.args.format == "json":
            print_json({"classes": list(self.classes), "files": self.records})


def prediction_record(prediction, min_confidence: float, top_k: int, tag_note: str = "") -> dict:
    """One file's prediction as a JSON-ready dict, windows included.

    The record of ``genrekit predict --format json`` (one item of its ``files``), also
    returned by ``genrekit serve``.

    Parameters
    ----------
    prediction : FilePrediction
        The file's prediction.
    min_confidence : float
        Top probability below which the genre is ``"uncertain"``.
    top_k : int
        Genres listed in ``top_k``.
    tag_note : str
        What ``--write-tags`` did, if anything.

    Returns
    -------
    dict
        Plain JSON types only.
    """
    return {
        "file": str(prediction.path),
        "genre": prediction.verdict(min_confidence),
        "best_guess": prediction.genre,
        "probability": prediction.confidence,
        "confident": prediction.is_confident(min_confidence),
        "familiar": prediction.familiar,
        "novelty": None if math.isnan(prediction.novelty) else prediction.novelty,
        "music": None if math.isnan(prediction.music) else prediction.music,
        "duration": prediction.duration,
        "top_k": [{"genre": g, "probability": p} for g, p in prediction.top(top_k)],
        "probabilities": dict(zip(prediction.classes, prediction.probabilities.tolist(), strict=True)),
        "windows": [
            {
                "start": float(start),
                "end": float(end),
                "probabilities": dict(zip(prediction.classes, proba.tolist(), strict=True)),
            }
            for (start, end), proba in zip(
                prediction.window_bounds, prediction.window_probabilities, strict=True
            )
        ],
        **({"tags": tag_note} if tag_note else {}),
    }


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
)
"""The CSV's columns before the per-genre probabilities: the JSON's per-file fields (not windows)."""


def _name_width(files: list[Path]) -> int:
    """Width of the file column: the longest path, within what the terminal leaves (at least 20)."""
    import shutil

    room = shutil.get_terminal_size((120, 24)).columns - 45  # genre, probability, two other genres
    return max(20, min(max(len(str(path)) for path in files), room))


def _shorten(text: str, width: int) -> str:
    """Keep the end of `text` (the file name) when it is wider than `width`."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]
