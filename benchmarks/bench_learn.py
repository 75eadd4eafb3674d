"""Learning a library's own genres: accuracy against the share of files tagged, and time to learn.

The simulated library is the GTZAN feature table's rows of the fault-filtered artist split's
``valid`` and ``test`` ids (487 files, artists never in ``train``); the "GTZAN-trained model" sees
only the ``train`` ids' rows, so it never saw a library file or a library artist. For each
fraction (10%, 20%, 50%) and seed, that share of the library's files is tagged (stratified by
genre), the rest is predicted:

- ``learned``: trained on the tagged library files only (the library z-scored by its own
  statistics over all its files, which uses no label);
- ``GTZAN``: trained on the GTZAN ``train`` rows only, with training-row standardisation, and
  with each collection z-scored by its own statistics (the library's from all its files);
- ``combined``: the GTZAN ``train`` rows plus the tagged library files, both standardisations.

Accuracy is counted on the untagged files; mean over seeds with a 95% t-interval. The shipped
model is not used: it was trained on all 1,000 GTZAN rows, library rows included.

Time to learn: a synthetic library of 10,000 tagged files built from the 1,000 real rows: each file
is a real row (drawn with replacement) plus file-level Gaussian noise (0.1 of each feature's
standard deviation), cut into 1 to 8 windows (uniform), each window adding its own noise (0.05
std); its genre is the row's. Timed: the grouped 5-fold cross-validation and the final fit, as
``genrekit library learn`` runs them for one option.

Embeddings against features (``--feature-sets``): the real clips of the test data, whole files
(the 14 GTZAN clips in their genre folders and the Ogg clips of ``cross_dataset`` whose
``labels.csv`` names a GTZAN genre), scanned into a catalogue with ``scan --tags`` (both taggers),
then measured as ``genrekit library learn --features both`` does
(:func:`genrekit.library.learn.compare_feature_sets`: the 57 features, the embeddings, both; same
files, same grouped folds). Genres with fewer than two files are left out. On so few files the
figures say almost nothing; a user measures their own library with ``genrekit scan --tags`` and
``genrekit library learn --features both``.

Run: ``python benchmarks/bench_learn.py [--seeds 10] [--model gbm|logreg] [--files 10000]``, or
``python benchmarks/bench_learn.py --feature-sets [--model logreg]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import data_root
from sklearn.model_selection import StratifiedShuffleSplit

from genrekit.core.schema import FEATURE_NAMES
from genrekit.library.learn import Extra, LibraryClassifier, Windows, cross_validate, fit_learned
from genrekit.selection.metrics import summarize
from genrekit.selection.protocols import filtered_split

FRACTIONS = (0.1, 0.2, 0.5)


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _accuracy(clf: LibraryClassifier, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(clf.predict(X) == y))


def _settings(gtzan: Extra) -> dict:
    """Name -> (own_scaling, extra rows, uses library labels)."""
    return {
        "learned": (True, None, True),
        "GTZAN, training scaling": (False, gtzan, False),
        "GTZAN, own scaling": (True, gtzan, False),
        "combined, training scaling": (False, gtzan, True),
        "combined, own scaling": (True, gtzan, True),
    }


def curve(table: pd.DataFrame, split_dir: str, seeds: int, model: str) -> dict:
    """Accuracy on the untagged library files for each setting, fraction and seed."""
    split, _ = filtered_split(table.filename.tolist(), split_dir)
    X = table[list(FEATURE_NAMES)].to_numpy(float)
    y = table.label.to_numpy()
    gtzan = Extra(X[split.train], y[split.train], "GTZAN train rows")
    library = np.concatenate([split.val, split.test])
    XL, yL = X[library], y[library]
    results: dict = {}
    gtzan_only: dict = {}  # fitted once per seed: they see no library label
    for fraction in FRACTIONS:
        for seed in range(seeds):
            cut = StratifiedShuffleSplit(n_splits=1, train_size=fraction, random_state=seed)
            tagged, rest = next(cut.split(XL, yL))
            for name, (own, extra, uses_tags) in _settings(gtzan).items():
                rows = tagged if uses_tags else tagged[:0]
                if uses_tags or (name, seed) not in gtzan_only:
                    clf = LibraryClassifier(model, own, seed).fit(XL[rows], yL[rows], XL, extra)
                    gtzan_only[name, seed] = clf
                clf = clf if uses_tags else gtzan_only[name, seed]
                results.setdefault(name, {}).setdefault(fraction, []).append(
                    _accuracy(clf, XL[rest], yL[rest])
                )
    return {"library_files": len(library), "gtzan_rows": len(split.train), "accuracy": results}


def synthetic_library(table: pd.DataFrame, files: int, seed: int = 0) -> tuple[Windows, dict[str, str]]:
    """The synthetic library described in the module docstring."""
    rng = np.random.default_rng(seed)
    X = table[list(FEATURE_NAMES)].to_numpy(float)
    std = X.std(axis=0)
    source = rng.integers(0, len(X), files)
    per_file = rng.integers(1, 9, files)
    centre = X[source] + rng.normal(scale=0.1, size=(files, X.shape[1])) * std
    owner = np.repeat(np.arange(files), per_file)
    features = centre[owner] + rng.normal(scale=0.05, size=(len(owner), X.shape[1])) * std
    ids = np.array([f"file{i:05d}" for i in range(files)])
    return Windows(features, ids[owner]), dict(zip(ids, table.label.to_numpy()[source], strict=True))


def time_learning(table: pd.DataFrame, files: int, model: str) -> dict:
    """Wall and CPU seconds of grouped 5-fold CV plus the final fit on a synthetic library."""
    windows, labels = synthetic_library(table, files)
    start, cpu = time.perf_counter(), time.process_time()
    cv = cross_validate(windows, labels, model=model)
    cv_wall = time.perf_counter() - start
    fit_learned(windows, labels, cv)
    return {
        "files": files,
        "windows": len(windows.file_ids),
        "cv_seconds": cv_wall,
        "total_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "cv_accuracy": cv.accuracy()["accuracy"],
    }


def feature_sets(model: str, seed: int = 0) -> dict:
    """Scan the labelled test clips with tags into a catalogue; compare the feature sets (see above)."""
    import shutil
    import tempfile
    from collections import Counter

    from genrekit.audio.decode import genre_from_path
    from genrekit.library.catalogue import Catalogue
    from genrekit.library.learn import compare_feature_sets
    from genrekit.library.learned import library_embeddings, library_windows
    from genrekit.library.scan import run_local, scan
    from genrekit.prediction.model import load_model

    root = data_root()
    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        for clip in sorted((root / "gtzan" / "audio").rglob("*.flac")):
            (music / clip.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, music / clip.parent.name / clip.name)
        cross = root / "cross_dataset" / "librosa_data"
        for row in pd.read_csv(cross / "labels.csv").itertuples():
            if row.kind == "music" and isinstance(row.nearest_gtzan_genre, str):
                (music / row.nearest_gtzan_genre).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cross / row.file, music / row.nearest_gtzan_genre / row.file)
        with Catalogue(Path(tmp) / "library.db") as catalogue:
            report = scan(music, catalogue, load_model(), run_local(2), taggers=("msd", "mtt"))
            windows, (embeddings, taggers) = library_windows(catalogue), library_embeddings(catalogue)
    folder = {path: genre_from_path(path, None) for path in embeddings}
    counts = Counter(folder.values())
    labels = {path: genre for path, genre in folder.items() if counts[genre] >= 2}
    sets = compare_feature_sets(windows, embeddings, labels, models=(model,), seed=seed)
    return {"scanned": report.analysed, "taggers": taggers, "classes": dict(Counter(labels.values())), **sets}


def _print_feature_sets(result: dict) -> None:
    print(
        f"{result['scanned']} files scanned; {result['files']} labelled in {len(result['classes'])} genres "
        f"{result['classes']}; {result['protocol']}; embeddings of {', '.join(result['taggers'])}"
    )
    print("| features | accuracy per file | 95% Wilson interval | best option |")
    print("|---|---|---|---|")
    for name in ("gtzan", "embedding", "both"):
        row = result[name]
        low, high = 100 * row["ci_low"], 100 * row["ci_high"]
        print(f"| {name} | {100 * row['accuracy']:.1f}% | [{low:.1f}, {high:.1f}] | {row['chosen']} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="repeats per fraction (default 10)")
    parser.add_argument("--model", default="gbm", help="registry recipe (default gbm)")
    parser.add_argument("--files", type=int, default=10_000, help="files of the timed library (0: skip)")
    parser.add_argument(
        "--feature-sets", action="store_true", help="only compare features, embeddings, both (see above)"
    )
    args = parser.parse_args()
    if args.feature_sets:
        print(f"before: {_uptime()}")
        _print_feature_sets(feature_sets(args.model))
        print(f"after: {_uptime()}")
        return
    root = data_root() / "gtzan"
    table = pd.read_csv(root / "features_30_sec.csv")
    print(f"before: {_uptime()}")
    start = time.perf_counter()
    result = curve(table, str(root / "split_filtered"), args.seeds, args.model)
    print(
        f"simulated library: {result['library_files']} files (filtered valid+test); "
        f"GTZAN model: {result['gtzan_rows']} train rows; model {args.model}; {args.seeds} seeds; "
        f"{time.perf_counter() - start:.0f} s"
    )
    print("accuracy on the untagged files, % mean [95% t-interval over seeds]")
    print("| model | " + " | ".join(f"{f:.0%} tagged" for f in FRACTIONS) + " |")
    print("|---|" + "---|" * len(FRACTIONS))
    for name, by_fraction in result["accuracy"].items():
        cells = []
        for fraction in FRACTIONS:
            s = summarize(by_fraction[fraction])
            cells.append(f"{100 * s['mean']:.1f} [{100 * s['ci_low']:.1f}, {100 * s['ci_high']:.1f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"after curve: {_uptime()}")
    if args.files:
        timing = time_learning(table, args.files, args.model)
        print(
            f"learn on {timing['files']:,} tagged files ({timing['windows']:,} windows), model {args.model}: "
            f"grouped 5-fold CV {timing['cv_seconds']:.1f} s, CV + final fit {timing['total_seconds']:.1f} s "
            f"wall, {timing['cpu_seconds']:.1f} s CPU (CV accuracy {100 * timing['cv_accuracy']:.1f}%)"
        )
        print(f"after timing: {_uptime()}")


if __name__ == "__main__":
    main()
