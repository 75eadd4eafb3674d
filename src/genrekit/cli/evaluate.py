"""``genrekit evaluate``: score a trained model on labelled audio or a labelled feature table."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from genrekit.cli import library_check
from genrekit.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_format_option,
    add_jobs_option,
    add_quiet_option,
    error,
    info,
    plural,
    print_json,
    progress,
)

_EPILOG = """\
examples:
  genrekit evaluate my_music/                     labels from the folder names (rock/, jazz/, ...)
  genrekit evaluate clips/ --unknown-as-uncertain  speech/, birds/: should be called uncertain
  genrekit evaluate clips/ --labels labels.csv --label-column nearest_gtzan_genre
  genrekit evaluate clips/ --labels labels.csv --map "Hip-Hop=hiphop,R&B=uncertain"
  genrekit evaluate other_table.csv --model my_model/ --out eval/ --format json

Labels come from --labels, or from the folder names: a folder named by a genre of the model
labels its files; other folders (albums, artists) label nothing, unless --unknown-as-uncertain.
Each file's expected answer is the model genre its label names (ignoring case, spaces,
'-' and '_'; --map translates other names), or "uncertain" when the label names no genre
of the model (speech, nature, an unknown genre, an empty label). The output says where the
labels came from, and how many items are rows the model was trained on. The verdict is
`genrekit predict`'s: the most probable genre when its probability reaches
--min-confidence and the audio is like the training music, else "uncertain".

Reported: accuracy and per-genre precision/recall/F1 of the most probable genre, coverage
and accuracy at the confidence threshold, how often should-be-uncertain items were called
uncertain, the confusion matrix (expected answer x verdict) and the confident mistakes;
with --out, also DIR/evaluation.html, DIR/evaluation.md and DIR/evaluation.json.

exit status: 0 done, 1 some files could not be decoded (each named), 2 usage error or
invalid input (no labelled files, a bad table or labels file), 130 interrupted.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``genrekit evaluate``."""
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on labelled audio or a labelled feature table (cross-dataset)",
        description="Score a trained model on labelled music that is not its training data.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="audio files and folders, or one feature table"
    )
    parser.add_argument("--model", type=Path, metavar="DIR", help="model folder (default: the shipped model)")
    parser.add_argument(
        "--labels", type=Path, metavar="CSV", help="CSV of file and label (default: folder names)"
    )
    parser.add_argument("--file-column", default="file", help="file column of --labels (default: file)")
    parser.add_argument("--label-column", default="label", help="label column of --labels (default: label)")
    parser.add_argument(
        "--map", metavar="L=G,...", help="label -> model genre (or 'uncertain'), comma-separated"
    )
    parser.add_argument(
        "--unknown-as-uncertain",
        action="store_true",
        help="without --labels: a folder name of no model genre means 'should be uncertain' "
        "(default: such folders are not labels)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"top probability below which the verdict is 'uncertain' (default: {DEFAULT_MIN_CONFIDENCE})",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="write evaluation.html/.md/.json here")
    add_jobs_option(parser)
    add_format_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def _is_table(paths: list[Path]) -> bool:
    return len(paths) == 1 and paths[0].suffix.lower() in (".csv", ".parquet")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the summary and write the report; return the exit status."""
    from genrekit.audio.decode import audio_files
    from genrekit.evaluation.crossdataset import (
        evaluate_files,
        evaluate_table,
        parse_mapping,
        read_labels,
        write_evaluation,
    )
    from genrekit.prediction.model import load_model

    model = load_model(args.model)
    if not _is_table(args.paths):
        model.prepare_taggers()  # a model of embeddings: its taggers' weights (or a clear error) first
    mapping = parse_mapping(args.map)
    sample = library_check.new_sample()  # the audio files' windows, for the shift
    if _is_table(args.paths):
        result = evaluate_table(model, args.paths[0], mapping, args.min_confidence)
    else:
        labels = (
            None if args.labels is None else read_labels(args.labels, args.file_column, args.label_column)
        )
        files = audio_files(args.paths)
        if not files:
            error("no audio files found in " + ", ".join(map(str, args.paths)))
            return EXIT_USAGE
        wrap = library_check.sampling(partial(progress, quiet=args.quiet), sample)
        result = evaluate_files(
            model, files, labels, mapping, args.min_confidence, args.jobs, wrap, args.unknown_as_uncertain
        )
        for row in result["items"]:
            if "error" in row:
                error(row["error"])
    result["model"] = str(args.model or "shipped model")
    if _is_table(args.paths):
        shift = library_check.table_report(model, args.model, args.paths[0])
    else:
        shift = library_check.shift_report(model, args.model, *sample.rows())
    result["shift"] = None if shift is None else shift.to_dict()
    if args.out is not None:
        paths = write_evaluation(
            result, args.out, f"Evaluation of {result['model']} on {', '.join(map(str, args.paths))}"
        )
        info(f"report: {paths['html']}", args.quiet)
    if args.format == "json":
        print_json(result)
    else:
        _print_summary(result)
    return EXIT_PARTIAL if result["counts"]["failed"] else EXIT_OK


def _print_summary(result: dict) -> None:
    """Print the headline figures and the confident mistakes."""
    from genrekit.evaluation.report import format_percent

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{format_percent(value)}%"

    counts, at = result["counts"], result["at_threshold"]
    lines = [f"labels: {result['label_source']}"]
    if result.get("skipped_unlabelled"):
        lines.append(f"not evaluated (no label): {plural(len(result['skipped_unlabelled']), 'file')}")
    if result["training_rows"]:
        lines.append(
            f"note: the model was trained on {plural(result['training_rows'], 'item')} of these (rows of "
            "its own training table): their scores measure memory, not accuracy on unseen music"
        )
    lines += [
        f"items: {counts['items']} ({counts['failed']} failed); of the model's genres: "
        f"{counts['in_model_genres']}; should be uncertain: {counts['expected_uncertain']}",
        f"accuracy (most probable genre): {pct(result['best_guess']['accuracy'])}",
        f"at confidence {result['min_confidence']:g}: coverage {pct(at['coverage'])}, "
        f"accuracy {pct(at['accuracy'])}; called uncertain when they should be: "
        f"{pct(at['uncertain_when_expected'])}",
        f"confident mistakes: {len(result['confident_mistakes'])}",
    ]
    if result.get("shift"):
        lines.insert(1, result["shift"]["summary"])
    lines += [
        f"  {row['file']}: expected {row['expected']}, said {row['verdict']} ({row['probability']:.2f})"
        for row in result["confident_mistakes"]
    ]
    print("\n".join(lines))
