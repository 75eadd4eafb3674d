"""``genrekit library learn|audit|suggest`` and ``tag --model learned``: learning from the library's tags."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from genrekit.cli._common import EXIT_OK, EXIT_PARTIAL, add_format_option, error, positive_int, print_json

EPILOG = """\
  genrekit library learn --db library.db
      learn the library's own genres from the files it has tagged (grouped CV per genre)
  genrekit library learn --db library.db --map genres.json --with-table features_30_sec.csv
      your own spellings -> classes; measure whether adding GTZAN's rows helps
  genrekit library learn --db library.db --features both
      also measure the musicnn embeddings (scan --tags) and both feature sets, same folds
  genrekit library tag --db library.db --model learned --dry-run
      the untagged files the learned model would tag (confident and like its genre only)
  genrekit library audit --db library.db
      tagged files whose tag the learned model confidently contradicts (likely mislabelled)
  genrekit library suggest --db library.db -n 20
      the untagged files whose labels would help the learned model most
"""

MapFn = Callable[[argparse._SubParsersAction, str, str, Callable], argparse.ArgumentParser]


def _confidence(text: str) -> float:
    """Parse a probability threshold in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def register_actions(actions: argparse._SubParsersAction, action: MapFn) -> None:
    """Add ``learn``, ``audit`` and ``suggest`` to ``genrekit library`` (`action` adds one with ``--db``)."""
    from genrekit.library.learn_defaults import DEFAULT_AUDIT_CONFIDENCE, DEFAULT_FOLDS, DEFAULT_MODELS
    from genrekit.library.taxonomy import DEFAULT_MIN_FILES

    learn = action(actions, "learn", "learn the library's genres from its own genre tags", run_learn)
    learn.add_argument(
        "--map", metavar="FILE", help="JSON mapping of your spellings to classes (see README: taxonomy)"
    )
    learn.add_argument(
        "--min-files",
        type=positive_int,
        default=DEFAULT_MIN_FILES,
        metavar="N",
        help=f"fewest tagged files a genre needs to be learned (default: {DEFAULT_MIN_FILES})",
    )
    learn.add_argument(
        "--with-table",
        metavar="TABLE",
        help="a labelled feature table (e.g. GTZAN's features_30_sec.csv): measure with and without its rows",
    )
    learn.add_argument(
        "--models",
        metavar="A,B",
        help=f"registry recipes to measure, the best is kept (default: {','.join(DEFAULT_MODELS)}; "
        "gbm when LightGBM is installed)",
    )
    learn.add_argument(
        "--folds", type=positive_int, default=DEFAULT_FOLDS, metavar="K", help="CV folds (default: 5)"
    )
    learn.add_argument("--seed", type=int, default=0, help="seed of the folds and the model (default: 0)")
    learn.add_argument(
        "--features",
        choices=("gtzan", "embedding", "both"),
        default="gtzan",
        help="gtzan: the 57 features (default); embedding: also measure the musicnn embeddings stored "
        "by `scan --tags`; both: also the two side by side (same files and folds; the stored model "
        "uses the 57 features)",
    )
    learn.add_argument(
        "--include-genrekit-tags",
        action="store_true",
        help="also learn from genre tags genrekit wrote itself (left out by default)",
    )
    add_format_option(learn)
    audit = action(actions, "audit", "tagged files whose tag the learned model contradicts", run_audit)
    audit.add_argument(
        "--min-confidence",
        type=_confidence,
        default=DEFAULT_AUDIT_CONFIDENCE,
        metavar="P",
        help=f"out-of-fold probability of the other genre (default: {DEFAULT_AUDIT_CONFIDENCE})",
    )
    audit.add_argument("-n", type=positive_int, default=50, metavar="N", help="at most N files (default: 50)")
    add_format_option(audit)
    suggest = action(actions, "suggest", "untagged files whose labels would help the model most", run_suggest)
    suggest.add_argument("-n", type=positive_int, default=20, metavar="N", help="how many (default: 20)")
    add_format_option(suggest)


def add_tag_options(tag: argparse.ArgumentParser) -> None:
    """Add the options of ``genrekit library tag``: model, overwrite, dry run, plans, undo, spelling."""
    from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

    tag.add_argument(
        "--dry-run", action="store_true", help="print `existing -> proposed` per file, write nothing"
    )
    tag.add_argument(
        "--plan", metavar="FILE", help="save the dry run's proposals as a plan (JSON); writes no tag"
    )
    tag.add_argument("--apply", metavar="FILE", help="write exactly what a saved plan proposes")
    tag.add_argument("--undo", action="store_true", help="put back the tags genrekit changed (its journal)")
    tag.add_argument("--since", metavar="WHEN", help="with --undo: changes since a time (ISO) or 30m, 2h, 1d")
    tag.add_argument(
        "--tag-names",
        default="library",
        metavar="STYLE",
        help="how tags spell genres: 'library' (Hip-Hop, Jazz; default), 'lower' or pairs 'hiphop=Rap'",
    )
    tag.add_argument(
        "--force",
        action="store_true",
        help="tag even with a learned model `learn` warned is too weak, or a shifted collection (check)",
    )

    tag.add_argument(
        "--model",
        choices=("catalogue", "learned"),
        default="catalogue",
        help="the catalogue's stored predictions (default) or the model `library learn` stored",
    )
    tag.add_argument("--overwrite", action="store_true", help="also replace genre tags files already have")
    tag.add_argument(
        "--min-confidence",
        type=_confidence,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"learned model: tag files predicted at least this sure (default: {DEFAULT_MIN_CONFIDENCE})",
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_learn(report: dict) -> None:
    """Print the learn report for people."""
    print(
        f"{report['files']} files, {report['tagged']} tagged, {report['labelled']} labelled in "
        f"{len(report['classes'])} genres (min {report['min_files']} files each)"
    )
    for name, n in report["dropped"].items():
        print(f"  left out: {name} ({n} files, fewer than {report['min_files']})")
    own = report["genrekit_tags"]
    if own["left_out"]:
        print(f"  left out: {own['left_out']} files whose genre genrekit wrote (--include-genrekit-tags)")
    for warning in report["warnings"]:
        error(f"warning: {warning}; `library tag --model learned` needs --force")
    for path, why in report["unreadable"].items():
        error(f"{path}: tag not read: {why}")
    print(f"{report['protocol']}; models {', '.join(report['models'])}")
    for name, why in report["models_left_out"].items():
        print(f"  not measured: {name} ({why})")
    width = max(len(name) for name in report["options"])
    for name, figures in report["options"].items():
        mark = "*" if name == report["chosen"] else " "
        low, high = figures["ci_low"], figures["ci_high"]
        print(f" {mark} {name:<{width}} {_percent(figures['accuracy'])} [{_percent(low)}, {_percent(high)}]")
    chosen = report["options"][report["chosen"]]
    print(f"chosen (*): {report['chosen']}: {report['why']}")
    print(f"{'genre':<14} {'files':>6}  recall [95% interval]   precision   spellings merged")
    for name, row in chosen["per_genre"].items():
        spellings = ", ".join(report["spellings"].get(name, {}))
        print(
            f"{name:<14} {row['files']:>6}  {_percent(row['recall']):>6} [{_percent(row['ci_low'])}, "
            f"{_percent(row['ci_high'])}]   {_percent(row['precision']):>6}   {spellings}"
        )
    confident = chosen["confident"]
    print(
        f"at confidence {confident['min_confidence']}: {_percent(confident['coverage'])} of files answered, "
        f"{_percent(confident['accuracy'])} of them right (out of fold)"
    )
    print(
        f"{'genre':<14} familiarity threshold (grouped CV): own held-out files within, other genres' within"
    )
    for name, row in report["familiarity"].items():
        print(
            f"{name:<14} {row['threshold']:8.2f}  {row['own_accepted']} of {row['files']}, "
            f"{row['other_accepted']} of {row['other_files']}"
        )
    if report.get("feature_sets"):
        _print_feature_sets(report["feature_sets"])
    print(f"model stored in {report['folder']}")


def _print_feature_sets(sets: dict) -> None:
    """Print the accuracy of each feature set measured side by side."""
    print(
        f"feature sets on the same {sets['files']} files and folds ({sets['protocol']}; embeddings of "
        f"{', '.join(sets['taggers'])}; {sets['left_out']} labelled files without an embedding left out):"
    )
    for name in ("gtzan", "embedding", "both"):
        if name in sets:
            row = sets[name]
            print(
                f"  {name:<10} {_percent(row['accuracy'])} [{_percent(row['ci_low'])}, "
                f"{_percent(row['ci_high'])}]  best option: {row['chosen']}"
            )


def run_learn(args: argparse.Namespace) -> int:
    """Learn from the tags and store the model beside the catalogue."""
    from genrekit.library.learned import learn_library
    from genrekit.library.taxonomy import load_taxonomy
    from genrekit.models.registry import parse_names

    run = learn_library(
        args.db,
        load_taxonomy(args.map),
        min_files=args.min_files,
        models=None if args.models is None else parse_names(args.models),
        extra_table=args.with_table,
        folds=args.folds,
        seed=args.seed,
        include_own=args.include_genrekit_tags,
        features=args.features,
    )
    if args.format == "json":
        print_json(run.report)
    else:
        _print_learn(run.report)
    return EXIT_PARTIAL if run.report["unreadable"] else EXIT_OK


def plan_learned(args: argparse.Namespace) -> list:
    """Propose tags from the learned model (refused when ``learn`` warned it is weak, unless ``--force``)."""
    from genrekit.library.learned import fill_plan, view_library

    view = view_library(args.db)
    view.learned.check_usable(args.force)
    return fill_plan(view, args.min_confidence, args.overwrite, args.tag_names)


def run_audit(args: argparse.Namespace) -> int:
    """List tagged files the learned model contradicts, most confident first."""
    from genrekit.library.learned import audit_library, view_library

    view = view_library(args.db)
    found, changed = audit_library(view, args.min_confidence)
    found = found[: args.n]
    if args.format == "json":
        print_json({"min_confidence": args.min_confidence, "files": found, "changed_since_learn": changed})
        return EXIT_OK
    for row in found:
        tag = "/".join(row["tag_values"])
        print(
            f"{row['probability']:.2f} {row['predicted_as']:<12} (tag {tag}, {row['tag_probability']:.2f})  "
            f"{row['file']}"
        )
    print(
        f"{len(found)} tagged files contradicted at probability >= {args.min_confidence} (out of fold); "
        f"{len(changed)} re-tagged since learn (not judged; run learn again)",
        file=sys.stderr,
    )
    return EXIT_OK


def run_suggest(args: argparse.Namespace) -> int:
    """List the untagged files whose labels would help the learned model most."""
    from genrekit.library.learned import suggest_library, view_library

    view = view_library(args.db)
    found = suggest_library(view, args.n)
    if args.format == "json":
        print_json({"files": found})
        return EXIT_OK
    for row in found:
        guesses = " or ".join(f"{view.learned.display(name)} {p:.2f}" for name, p in row["guesses"])
        print(f"margin {row['margin']:.2f}  {guesses:<32} {row['file']}")
    print(f"{len(found)} of {int(view.untagged().sum())} untagged files, least sure first", file=sys.stderr)
    return EXIT_OK
