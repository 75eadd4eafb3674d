"""Embeddings against the 57 features on the 14 GTZAN test clips: leave-one-out, same recipes, same clips.

Four tables of the same 14 real 30-s clips (``gtzan/audio/<genre>/*.flac``), written by
``genrekit extract``: the 57 GTZAN features, and with ``--embeddings`` the musicnn MSD tagger's
200-d embedding, the MTT tagger's, and both (400 columns). Labels are the genre folders.

Protocol: leave one clip out, fit the recipe on the other 13 (untuned, as
:func:`genrekit.models.registry.make_model` builds it with ``tune=False``; each pipeline
starts with the registry's feature transform fitted on the 13), predict the one left out; 14
fits per recipe and table. Eight of the ten genres have one clip only, so a left-out clip of
those genres has no example of its genre in training and is always wrong: only the six blues and
classical clips (three each) can be right. Both counts are printed: of 14 and of those 6.

This is a smoke-level comparison on 14 clips, not an accuracy estimate: one clip more or less
changes a count by one. A user measures it on their own labelled folders with the commands in
the guide (``extract`` both tables, then ``train --cv K`` on each with the same ``--model``).

Run: ``python benchmarks/bench_embeddings.py [--jobs 2]`` (needs the musicnn weights: the
cache, or ``--weights WHEEL``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _common import data_root

from genrekit.datasets.table import feature_matrix, read_table
from genrekit.extraction.extract import extract
from genrekit.models.registry import make_model

RECIPES = ("knn", "logreg", "extratrees")
TABLES = {
    "57 GTZAN features": (),
    "msd embedding": ("msd",),
    "mtt embedding": ("mtt",),
    "msd+mtt": ("msd", "mtt"),
}


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def leave_one_out(X: np.ndarray, y: np.ndarray, recipe: str) -> np.ndarray:
    """Return the prediction of each row by the recipe fitted on all the other rows."""
    predictions = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (convergence warnings on 13 rows)
            model = make_model(recipe, seed=0, tune=False).fit(X[keep], y[keep])
        predictions.append(model.predict(X[i : i + 1])[0])
    return np.asarray(predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--weights", help="musicnn 0.1.0 wheel, when the weights are not in the cache")
    args = parser.parse_args()
    clips = data_root() / "gtzan" / "audio"
    print(f"clips: {clips} ({len(list(clips.rglob('*.flac')))} files); {_uptime()}")
    with tempfile.TemporaryDirectory() as folder:
        for name, taggers in TABLES.items():
            out = Path(folder) / f"{'-'.join(taggers) or 'gtzan'}.csv"
            extract(clips, out, jobs=args.jobs, embeddings=taggers, weights=args.weights)
            frame = read_table(out)
            X, y = feature_matrix(frame), frame["label"].to_numpy(dtype=str)
            seen = np.isin(y, ["blues", "classical"])  # the only genres with more than one clip
            for recipe in RECIPES:
                right = leave_one_out(X, y, recipe) == y
                print(
                    f"{name:<18} {X.shape[1]:>3} columns  {recipe:<10}  "
                    f"right {right.sum():>2}/14, of blues+classical {right[seen].sum()}/6"
                )
    print(f"done; {_uptime()}")


if __name__ == "__main__":
    main()
