"""``genrekit extract --embeddings``: real clips, the real musicnn weights, train on the table, resume."""

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrekit.cli import main
from genrekit.core.errors import ModelError
from genrekit.core.schema import embedding_columns
from genrekit.datasets.table import feature_columns, read_table, table_columns
from genrekit.extraction.extract import progress_path

_MAIN = "import sys; from genrekit.cli import main; sys.exit(main())"
_COLUMNS = table_columns(embedding_columns("msd") + embedding_columns("mtt"))


@pytest.fixture(scope="module")
def clips(gtzan_flac_dir, tmp_path_factory) -> Path:
    """Six real clips of two genres, and a text file posing as audio in one of their folders."""
    root = tmp_path_factory.mktemp("emb-in")
    for genre in ("blues", "classical"):
        shutil.copytree(gtzan_flac_dir / genre, root / genre)
    (root / "blues" / "blues.broken.wav").write_text("plain text, not audio\n" * 20)
    return root


@pytest.fixture(scope="module")
def emb_run(clips, tagger_cache, musicnn_wheel, tmp_path_factory):
    """One `genrekit extract --embeddings --tagger mtt,msd` over the clips, on 2 processes."""
    out = tmp_path_factory.mktemp("emb-out") / "emb.csv"
    args = ["extract", clips, "-o", out, "--embeddings", "--tagger", "mtt,msd", "--weights", musicnn_wheel]
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, *map(str, args), "--jobs", "2", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr, out


def test_one_row_per_file_of_both_embeddings_and_the_bad_file_named(emb_run, clips):
    status, summary, stderr, out = emb_run
    assert status == 1  # one file failed, the others are in the table
    assert summary["extracted"] == 6 and summary["failed"] == 1
    (failure,) = summary["failures"]
    assert failure["path"].endswith("blues.broken.wav") and "cannot decode" in failure["reason"]
    assert "blues.broken.wav: cannot decode" in stderr
    table = pd.read_csv(out, dtype={"label": str}, keep_default_na=False)
    assert tuple(table.columns) == _COLUMNS  # msd first, whatever order --tagger named them in
    names = [f"{genre}.0000{i}.flac" for genre in ("blues", "classical") for i in range(3)]
    assert table["filename"].tolist() == names
    assert table["label"].tolist() == ["blues"] * 3 + ["classical"] * 3
    assert table["length"].tolist() == [661794] * 6  # as the GTZAN table's
    frame = read_table(out)
    assert feature_columns(frame) == _COLUMNS[2:-1]


def test_each_row_is_its_file_s_embedding_as_tags_computes_it(emb_run, clips):
    from genrekit.extraction.extract import load_taggers
    from genrekit.tagger import tag_file

    table = pd.read_csv(emb_run[3])
    results = tag_file(clips / "classical" / "classical.00001.flac", load_taggers(["msd", "mtt"]))
    for name in ("msd", "mtt"):  # decoded at 22,050 Hz, then resampled: as `tags` (16 kHz) to float32
        stored = table.loc[4, list(embedding_columns(name))].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(stored, results[name].embedding, atol=1e-5)
    msd = table.filter(like="msd_emb_").to_numpy()
    assert np.abs(msd[0] - msd[4]).max() > 0.1  # a blues and a classical clip differ


def test_train_learns_the_table_and_records_its_columns(emb_run, clips, tmp_path, capsys):
    from genrekit.models.io import load_model_dir
    from genrekit.prediction.model import load_model

    out, model_dir = emb_run[3], tmp_path / "m"
    args = ["train", "--data", str(out), "--model", "logreg", "--no-tune", "--validation-fraction", "0"]
    assert main([*args, "-o", str(model_dir), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["feature_columns"] == 400 and summary["labels"] == ["blues", "classical"]
    assert json.loads((model_dir / "model.json").read_text())["feature_names"] == list(_COLUMNS[2:-1])
    classifier, _ = load_model_dir(model_dir, any_features=True)
    frame = read_table(out)
    assert classifier.predict(frame.iloc[:, ::-1]).tolist() == frame["label"].tolist()  # columns by name

    with pytest.raises(ModelError, match=r"trained on 400 columns 'msd_emb_000' \.\.\. 'mtt_emb_199'"):
        load_model_dir(model_dir)  # the commands that read the 57 features (model explain, ...)
    assert load_model(model_dir).taggers == ("msd", "mtt")  # predict computes the embeddings
    assert main(["model", "info", str(model_dir)]) == 0
    assert "emb.csv (6 rows" in capsys.readouterr().out


def test_kill_then_resume_gives_the_one_shot_table(emb_run, clips, tmp_path, capsys):
    src = tmp_path / "in"
    for genre in ("blues", "classical"):
        (src / genre).mkdir(parents=True)
        for clip in sorted((clips / genre).glob("*.flac"))[:2]:
            shutil.copy(clip, src / genre)
    out = tmp_path / "t.csv"
    args = ["extract", str(src), "-o", str(out), "--embeddings", "--tagger", "msd,mtt", "--jobs", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, *args, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not _committed(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()  # kill -9: no handler runs, no table is written
    proc.communicate(timeout=60)
    partial = _committed(out)
    assert 1 <= len(partial) < 4 and not out.exists()

    again = ["extract", str(src), "-o", str(out), "--embeddings", "--resume", "--jobs", "2"]
    assert main([*again, "--tagger", "msd"]) == 2  # other taggers than the interrupted run's
    assert "extracted with embeddings=['msd', 'mtt'], not ['msd']" in capsys.readouterr().err
    assert main([*again, "--tagger", "msd,mtt", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["resumed"] == len(partial) and summary["extracted"] == 4 - len(partial)
    one_shot = pd.read_csv(emb_run[3]).iloc[[0, 1, 3, 4]].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_csv(out), one_shot, check_exact=False, rtol=1e-6)
    assert not progress_path(out).exists()


def _committed(out: Path) -> list[str]:
    """The filenames committed to the progress file of `out` (empty while it does not exist)."""
    if not progress_path(out).exists():
        return []
    try:
        with sqlite3.connect(progress_path(out)) as conn:
            rows = conn.execute("SELECT filenames FROM sources").fetchall()
        return [name for (names,) in rows for name in json.loads(names)]
    except sqlite3.OperationalError:  # its tables are being created
        return []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--embeddings", "--segment-seconds", "3"], "--segment-seconds does not apply to embeddings"),
        (["--embeddings", "--augment", "noise"], "--augment does not apply to embeddings"),
        (["--embeddings", "--engine", "librosa"], "'librosa' computes the 57 features"),
        (["--tagger", "mtt"], "--tagger applies to --embeddings only"),
    ],
)
def test_settings_embeddings_do_not_take_exit_2(extra, message, clips, tmp_path, capsys):
    assert main(["extract", str(clips / "classical"), "-o", str(tmp_path / "x.csv"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
