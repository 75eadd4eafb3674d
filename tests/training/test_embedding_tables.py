"""Tables of embedding columns: their reading rules, every kind of recipe trained on one, the saved record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrekit.cli import main
from genrekit.core.errors import ModelError, TableError
from genrekit.core.schema import FEATURE_NAMES, embedding_columns
from genrekit.datasets.table import feature_matrix, read_table, write_table
from genrekit.models.io import load_model_dir
from genrekit.training.train import TrainSettings, train

GENRES = ("folk", "punk", "soul")


def embedding_table(
    rows_per_genre: int = 20, spaces: tuple[str, ...] = ("msd",), seed: int = 0
) -> pd.DataFrame:
    """A table of made-up embeddings whose genres lie apart (each genre its own mean)."""
    rng = np.random.default_rng(seed)
    columns = [name for space in spaces for name in embedding_columns(space)]
    centres = rng.normal(0, 1, (len(GENRES), len(columns)))
    labels = np.repeat(GENRES, rows_per_genre)
    values = centres[np.repeat(np.arange(len(GENRES)), rows_per_genre)] + rng.normal(
        0, 1.5, (len(labels), len(columns))
    )
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "filename", [f"{label}/{i:03d}.mp3" for i, label in enumerate(labels)])
    frame.insert(1, "length", 661500)
    frame["label"] = labels
    return frame


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("emb") / "emb.csv"
    write_table(embedding_table(), path)
    return path


def test_read_orders_the_columns_of_each_embedding(tmp_path):
    frame = embedding_table(4, ("mtt", "msd"))
    shuffled = frame[["label", *frame.columns[:-1][::-1]]]
    path = tmp_path / "t.parquet"
    write_table(shuffled.assign(note="x"), path)
    read = read_table(path, labels="any")
    expected = ["filename", "length", *embedding_columns("msd"), *embedding_columns("mtt"), "label"]
    assert list(read.columns) == expected  # by space name, then dimension; "note" dropped
    np.testing.assert_array_equal(feature_matrix(read), frame[expected[2:-1]].to_numpy())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="msd_emb_137"), r"missing column 'msd_emb_137' \(1 of 203 missing\)"),
        (
            lambda f: f.assign(msd_emb_200=0.0),
            r"column 'msd_emb_200' lies beyond the 200 columns of embedding 'msd'",
        ),
        (
            lambda f: f.assign(tempo=120.0),
            r"column 'msd_emb_000' is an embedding \('msd'\) but column 'tempo' a GTZAN",
        ),
        (
            lambda f: f.assign(msd_emb_005="x"),
            r"row 1 \(line 2\), column 'msd_emb_005': not a number \('x'\)",
        ),
    ],
)
def test_a_table_that_misses_mixes_or_breaks_columns_is_refused_naming_the_column(change, message, tmp_path):
    path = tmp_path / "bad.csv"
    write_table(change(embedding_table(2)), path)
    with pytest.raises(TableError, match=message):
        read_table(path, labels="any")


def test_an_embedding_of_another_tool_is_as_wide_as_its_highest_column(tmp_path):
    frame = (
        embedding_table(2)
        .iloc[:, :2]
        .join(pd.DataFrame(np.ones((6, 16)), columns=embedding_columns("vgg", 16)))
    )
    path = tmp_path / "vgg.csv"
    write_table(frame.assign(label=embedding_table(2)["label"]), path)
    assert feature_matrix(read_table(path, labels="any")).shape == (6, 16)
    write_table(frame.drop(columns="vgg_emb_007").assign(label="folk"), path)
    with pytest.raises(TableError, match="missing column 'vgg_emb_007'"):
        read_table(path, labels="any", require_labels=False)


@pytest.mark.parametrize("model", ["logreg", "knn-tuned", "svm-tuned", "extratrees", "gbm", "cnn"])
def test_every_kind_of_recipe_learns_an_embedding_table_and_records_its_columns(model, table, tmp_path):
    if model == "cnn":
        pytest.importorskip("torch")
    settings = TrainSettings(model=model, labels="any", tune=False, epochs=30, patience=30, jobs=1)
    summary = train(table, tmp_path / "m", settings)
    assert summary["feature_columns"] == 200 and summary["labels"] == list(GENRES)
    classifier, metadata = load_model_dir(tmp_path / "m", any_features=True)
    assert metadata["feature_names"] == list(embedding_columns("msd"))
    frame = read_table(table, labels="any")
    accuracy = np.mean(classifier.predict(frame) == frame["label"].to_numpy())
    assert accuracy > 0.8, accuracy  # genres 1.5 sd of noise apart on 200 dims: well above 1/3
    assert not (tmp_path / "m" / "shift.json").exists()  # the shift check reads the 57 features


def test_cross_validated_recipe_on_an_embedding_table(table, tmp_path, capsys):
    args = ["train", "--data", str(table), "--labels", "any", "--model", "logreg", "--cv", "3", "--no-tune"]
    assert main([*args, "-o", str(tmp_path / "m"), "--format", "json", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["cross_validation"]["accuracy"]["mean"] > 0.8
    assert "no shift reference stored: `library check` compares the 57 GTZAN features" in captured.err


def test_model_json_feature_names_are_checked(table, tmp_path):
    settings = TrainSettings(model="logreg", labels="any", tune=False, jobs=1)
    train(table, tmp_path / "m", settings)
    path = tmp_path / "m" / "model.json"
    document = json.loads(path.read_text())
    for names, message in [
        (
            document["feature_names"][:5] + document["feature_names"][6:],
            r"feature_names\[5\] is 'msd_emb_006', expected 'msd_emb_005'",
        ),
        (["tempo", *document["feature_names"]], "is an embedding .* but column 'tempo' a GTZAN feature"),
        (document["feature_names"][:-1], r"feature_names\[199\] is None, expected 'msd_emb_199'"),
    ]:
        path.write_text(json.dumps({**document, "feature_names": names}))
        with pytest.raises(ModelError, match=message):
            load_model_dir(tmp_path / "m", any_features=True)
    path.write_text(json.dumps({**document, "feature_names": list(FEATURE_NAMES)}))
    with pytest.raises(ModelError, match=r"the model tree does not fit its arrays|shape"):
        load_model_dir(tmp_path / "m")


def test_evaluate_scores_an_embedding_table_with_its_model(table, tmp_path, capsys):
    train(table, tmp_path / "m", TrainSettings(model="logreg", labels="any", tune=False, jobs=1))
    assert main(["evaluate", str(table), "--model", str(tmp_path / "m"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_guess"]["accuracy"] > 0.8
