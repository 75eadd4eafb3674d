import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
import soundfile as sf

from genrekit.cli import main
from genrekit.core.schema import FEATURE_NAMES, TABLE_COLUMNS
from genrekit.extraction.extract import progress_path

_MAIN = "import sys; from genrekit.cli import main; sys.exit(main())"


def _cli(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-c", _MAIN, "extract", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _read(path):
    return pd.read_csv(path, dtype={"label": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def gtzan_run(gtzan_flac_dir, tmp_path_factory):
    """One `genrekit extract` over the 14 FLAC clips on 2 processes."""
    out = tmp_path_factory.mktemp("cli") / "features.csv"
    proc = _cli(gtzan_flac_dir, "-o", out, "--jobs", "2", "--format", "json")
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, json.loads(stdout), stderr, out


def test_gtzan_flacs_match_the_public_table(gtzan_run, gtzan_table):
    status, summary, stderr, out = gtzan_run
    assert status == 0, stderr
    assert summary["extracted"] == 14 and summary["failed"] == 0 and summary["out"] == str(out)
    rows = _read(out)
    assert list(rows.columns) == list(TABLE_COLUMNS) and len(rows) == 14
    assert rows["filename"].tolist() == sorted(rows["filename"])  # genre folders, then ids
    table = pd.read_csv(gtzan_table)
    table.index = table["filename"].str.removesuffix(".wav")
    expected = table.loc[rows["filename"].str.removesuffix(".flac")]
    assert rows["length"].tolist() == expected["length"].tolist()
    assert rows["label"].tolist() == expected["label"].tolist()
    std = table[list(FEATURE_NAMES)].std()
    for column in ("chroma_stft_mean", "rms_mean", "rolloff_mean", "zero_crossing_rate_mean", "mfcc2_mean"):
        diff = (rows[column].to_numpy() - expected[column].to_numpy()) / std[column]
        assert abs(diff).max() < 0.02, column


def test_kill_then_resume_gives_the_one_shot_table(gtzan_run, gtzan_flac_dir, tmp_path):
    _, _, _, one_shot = gtzan_run
    src = tmp_path / "in"
    for genre in ("blues", "classical"):  # 6 clips, copies of the real files
        shutil.copytree(gtzan_flac_dir / genre, src / genre)
    out = tmp_path / "t.csv"
    proc = _cli(src, "-o", out, "--jobs", "1")
    deadline = time.monotonic() + 120
    while not _committed(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()  # kill -9: no handler runs, no table is written
    proc.communicate(timeout=60)
    partial = _committed(out)  # committed files only, never a torn one
    assert 1 <= len(partial) < 6 and not out.exists()
    with sqlite3.connect(progress_path(out)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    proc = _cli(src, "-o", out, "--jobs", "2", "--resume", "--format", "json")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["resumed"] == len(partial) and summary["extracted"] == 6 - len(partial)
    pd.testing.assert_frame_equal(_read(out), _read(one_shot).iloc[:6])


def _committed(out):
    """The filenames committed to the progress file of `out` (empty while it does not exist)."""
    if not progress_path(out).exists():
        return []
    try:
        with sqlite3.connect(progress_path(out)) as conn:
            rows = conn.execute("SELECT filenames FROM sources").fetchall()
        return [name for (names,) in rows for name in json.loads(names)]
    except sqlite3.OperationalError:  # its tables are being created
        return []


@pytest.fixture
def mixed(tmp_path, gtzan_flac_dir):
    """Two good 4-s excerpts and two broken files in a genre folder."""
    folder = tmp_path / "in" / "jazz"
    folder.mkdir(parents=True)
    y, sr = sf.read(gtzan_flac_dir / "jazz" / "jazz.00000.flac", dtype="float32")
    sf.write(folder / "a.flac", y[: 4 * sr], sr)
    sf.write(folder / "c.wav", y[4 * sr : 8 * sr], sr)
    (folder / "b.wav").write_text("plain text, not audio\n" * 20)
    (folder / "d.flac").write_bytes((folder / "a.flac").read_bytes()[:5000])
    return tmp_path / "in"


def test_broken_files_are_named_and_the_rest_extracted(mixed, tmp_path, capsys):
    out = tmp_path / "o.parquet"
    status = main(["extract", str(mixed), "-o", str(out), "--jobs", "2"])
    captured = capsys.readouterr()
    assert status == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("genrekit: error: ")]
    assert len(errors) == 2
    assert any("b.wav: cannot decode" in line for line in errors)
    assert any("d.flac: truncated" in line for line in errors)
    assert "extracted 2 files; 2 rows in" in captured.out and "2 failed:" in captured.out
    assert "b.wav" in captured.out and "d.flac" in captured.out
    table = pd.read_parquet(out)
    assert table["filename"].tolist() == ["a.flac", "c.wav"]
    assert table["label"].tolist() == ["jazz", "jazz"]


def test_json_summary_and_segments(mixed, tmp_path, capsys):
    out = tmp_path / "seg.csv"
    status = main(
        ["extract", str(mixed), "-o", str(out), "--segment-seconds", "1", "--jobs", "1", "--format", "json"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert status == 1
    assert summary["extracted"] == 2 and summary["failed"] == 2 and summary["rows"] == 8
    assert {f["path"].rsplit(os.sep, 1)[-1] for f in summary["failures"]} == {"b.wav", "d.flac"}
    table = _read(out)
    assert table["filename"].tolist() == [f"a.{i}.flac" for i in range(4)] + [f"c.{i}.wav" for i in range(4)]
    assert (table["length"] == 22_049).all()


def test_usage_errors_exit_2(tmp_path, mixed, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["extract", str(tmp_path / "empty"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "no audio files found" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "nope.wav: no such file or folder" in capsys.readouterr().err
    assert main(["extract", str(mixed), "-o", str(tmp_path / "o.xlsx")]) == 2
    assert "unknown table format" in capsys.readouterr().err
    only_bad = mixed / "jazz" / "b.wav"
    assert main(["extract", str(only_bad), "-o", str(tmp_path / "o.csv"), "--quiet"]) == 2
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "o.csv").exists()
    for bad in (["--jobs", "0"], ["--segment-seconds", "0"], ["--segment-seconds", "x"]):
        with pytest.raises(SystemExit) as info:
            main(["extract", str(mixed), "-o", str(tmp_path / "o.csv"), *bad])
        assert info.value.code == 2


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--segment-seconds 3" in text and "--resume" in text
