import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrekit.audio.features import clip_features
from genrekit.core.errors import AudioError, TableError
from genrekit.core.schema import FEATURE_NAMES, TABLE_COLUMNS
from genrekit.extraction import extract as extract_mod
from genrekit.extraction.extract import extract, extract_file, progress_path

EXCERPT = 5 * 22050  # 5-s excerpts keep these tests quick


@pytest.fixture(scope="module")
def excerpts(tmp_path_factory, gtzan_flac_dir):
    """Five-second excerpts of five real GTZAN clips, in genre folders, plus one unlabelled."""
    root = tmp_path_factory.mktemp("excerpts")
    for genre, ident, start in [
        ("blues", "00001", 0),
        ("classical", "00000", 100_000),
        ("disco", "00000", 200_000),
        ("rock", "00000", 300_000),
    ]:
        y, sr = sf.read(gtzan_flac_dir / genre / f"{genre}.{ident}.flac", dtype="float32")
        (root / genre).mkdir()
        sf.write(root / genre / f"{genre}.{ident}.wav", y[start : start + EXCERPT], sr, subtype="FLOAT")
    (root / "misc").mkdir()
    sf.write(root / "misc" / "song.flac", y[:EXCERPT], sr)
    return root


def test_extract_file_one_row(gtzan_flac_dir, gtzan_table):
    path = gtzan_flac_dir / "disco" / "disco.00000.flac"
    rows = extract_file(path)
    assert list(rows.columns) == list(TABLE_COLUMNS)
    assert rows["filename"].tolist() == ["disco.00000.flac"]
    assert rows["label"].tolist() == ["disco"]
    table = pd.read_csv(gtzan_table).set_index("filename")
    expected = table.loc["disco.00000.wav"]
    assert rows["length"].iloc[0] == expected["length"] == 664_180
    std = table[list(FEATURE_NAMES)].std()
    for column in ("rms_mean", "spectral_centroid_mean", "mfcc1_mean", "mfcc5_var"):
        assert abs(rows[column].iloc[0] - expected[column]) < 0.02 * std[column], column


def test_segments_named_like_the_3_sec_table(gtzan_flac_dir):
    path = gtzan_flac_dir / "blues" / "blues.00000.flac"
    rows = extract_file(path, segment_seconds=3)
    assert rows["filename"].tolist() == [f"blues.00000.{i}.flac" for i in range(10)]
    assert (rows["length"] == 66_149).all()
    assert (rows["label"] == "blues").all()
    y, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(
        rows.loc[7, list(FEATURE_NAMES)].to_numpy(float), clip_features(y[7 * 66_149 : 8 * 66_149]), rtol=1e-9
    )


def test_too_short_for_a_segment_names_the_file(excerpts):
    path = excerpts / "misc" / "song.flac"
    with pytest.raises(AudioError, match=r"song\.flac: too short for one 10 s segment"):
        extract_file(path, segment_seconds=10)
    with pytest.raises(ValueError, match="unknown engine"):
        extract_file(path, engine="turbo")


def test_extract_in_order_with_labels_and_csv_parquet_agree(excerpts, tmp_path):
    csv = extract(excerpts, out=tmp_path / "t.csv", jobs=1)
    parquet = extract(excerpts, out=tmp_path / "t.parquet", jobs=2)
    names = ["blues.00001.wav", "classical.00000.wav", "disco.00000.wav", "song.flac", "rock.00000.wav"]
    assert csv.table["filename"].tolist() == names  # sorted by source path: misc/ before rock/
    assert csv.table["label"].tolist() == ["blues", "classical", "disco", "", "rock"]
    assert (csv.table["length"] == EXCERPT).all() and not csv.failures
    pd.testing.assert_frame_equal(csv.table, parquet.table)
    back_csv = pd.read_csv(tmp_path / "t.csv", dtype={"label": str}, keep_default_na=False)
    pd.testing.assert_frame_equal(back_csv, csv.table)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), csv.table)


def test_same_name_in_two_folders_stays_unique(tmp_path, excerpts):
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "x.flac").write_bytes((excerpts / "misc" / "song.flac").read_bytes())
    result = extract([tmp_path / "in"], jobs=1)
    assert result.table["filename"].tolist() == ["a/x.flac", "b/x.flac"]


def test_one_broken_file_never_stops_the_batch(tmp_path, excerpts):
    (tmp_path / "blues").mkdir()
    good = excerpts / "blues" / "blues.00001.wav"
    (tmp_path / "blues" / "a.wav").write_bytes(good.read_bytes())
    (tmp_path / "blues" / "b.wav").write_bytes(b"not audio at all" * 100)
    (tmp_path / "blues" / "c.wav").write_bytes(good.read_bytes()[:-20_000])
    (tmp_path / "blues" / "d.wav").write_bytes(good.read_bytes())
    seen = []
    result = extract([tmp_path], out=tmp_path / "o.csv", jobs=2, on_failure=lambda p, r: seen.append(p.name))
    assert result.table["filename"].tolist() == ["a.wav", "d.wav"]
    assert sorted(seen) == ["b.wav", "c.wav"]
    reasons = dict((p.name, r) for p, r in result.failures)
    assert "cannot decode" in reasons["b.wav"] and "truncated" in reasons["c.wav"]
    assert len(pd.read_csv(tmp_path / "o.csv")) == 2


class _Interrupt:
    """A progress wrapper that presses Ctrl-C after `after` files."""

    def __init__(self, after):
        self.after = after

    def __call__(self, items, total):
        for i, item in enumerate(items):
            if i == self.after:
                raise KeyboardInterrupt
            yield item


def _interrupt_at_end(items, total):
    """A progress wrapper that presses Ctrl-C once every file is done."""
    yield from items
    raise KeyboardInterrupt


def test_interrupted_run_keeps_rows_and_resume_completes_it(excerpts, tmp_path, monkeypatch):
    calls = []
    real = extract_mod.extract_file

    def counting(path, *args, **kwargs):
        calls.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(extract_mod, "extract_file", counting)
    out = tmp_path / "t.parquet"
    with pytest.raises(KeyboardInterrupt):
        extract(excerpts, out=out, jobs=1, progress=_Interrupt(after=2))
    partial = pd.read_parquet(out)
    assert partial["filename"].tolist() == ["blues.00001.wav", "classical.00000.wav"]
    assert _recorded(out) == [["blues.00001.wav"], ["classical.00000.wav"]]

    calls.clear()
    resumed = extract(excerpts, out=out, jobs=1, resume=True)
    assert sorted(calls) == ["disco.00000.wav", "rock.00000.wav", "song.flac"]  # done files not recomputed
    assert len(resumed.resumed) == 2 and len(resumed.extracted) == 3

    calls.clear()
    one_shot = extract(excerpts, out=tmp_path / "one.parquet", jobs=1)
    assert len(calls) == 5
    pd.testing.assert_frame_equal(resumed.table, one_shot.table)
    pd.testing.assert_frame_equal(pd.read_parquet(out), one_shot.table)

    calls.clear()
    again = extract(excerpts, out=out, jobs=1, resume=True)
    assert calls == [] and len(again.resumed) == 5
    pd.testing.assert_frame_equal(pd.read_parquet(out), one_shot.table)


def _recorded(out):
    """The filenames of each source committed to the progress file, read as another process would."""
    with sqlite3.connect(progress_path(out)) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT filenames FROM sources ORDER BY source")]


def test_each_file_is_committed_at_once_and_the_table_written_at_the_end(excerpts, tmp_path):
    out = tmp_path / "t.csv"
    seen = []

    def watch(items, total):
        for item in items:
            yield item
            seen.append((len(_recorded(out)), out.exists()))

    extract(excerpts, out=out, jobs=1, progress=watch)
    assert seen == [(1, False), (2, False), (3, False), (4, False), (5, False)]
    assert len(pd.read_csv(out)) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_recomputes_only_sources_not_committed(excerpts, tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    full = extract(excerpts, jobs=1).table
    with pytest.raises(KeyboardInterrupt):  # every file committed, then interrupted: the record stays
        extract(excerpts, out=out, jobs=1, progress=_interrupt_at_end)
    with sqlite3.connect(progress_path(out)) as conn:  # as if killed before this file was committed
        conn.execute("DELETE FROM sources WHERE filenames LIKE '%disco.00000.wav%'")
    out.unlink()  # and before the table was written
    calls = []
    real = extract_mod.extract_file
    monkeypatch.setattr(
        extract_mod, "extract_file", lambda p, *a, **k: calls.append(p.name) or real(p, *a, **k)
    )
    result = extract(excerpts, out=out, jobs=1, resume=True)
    assert calls == ["disco.00000.wav"]
    pd.testing.assert_frame_equal(result.table, full)
    pd.testing.assert_frame_equal(_read(out), full)
    calls.clear()
    fresh = extract(excerpts, out=out, jobs=1)  # without --resume: starts afresh
    assert len(calls) == 5 and not progress_path(out).exists()  # complete: the record is removed
    pd.testing.assert_frame_equal(fresh.table, full)


def _read(path):
    return pd.read_csv(path, dtype={"label": str}, keep_default_na=False)


def test_resume_refuses_unusable_output(excerpts, tmp_path):
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        extract([excerpts], out=out, jobs=1, progress=_Interrupt(after=2))
    assert progress_path(out).exists()  # an interrupted run keeps its record
    with pytest.raises(TableError, match="segment_seconds"):
        extract([excerpts], out=out, jobs=1, resume=True, segment_seconds=3)
    complete = tmp_path / "c.csv"
    extract([excerpts / "misc"], out=complete, jobs=1)
    assert not progress_path(complete).exists()  # removed by the completed run
    table = _read(complete)
    pd.concat([table, table]).to_csv(complete, index=False)
    with pytest.raises(TableError, match="repeated filenames"):
        extract([excerpts / "misc"], out=complete, jobs=1, resume=True)
    segmented = tmp_path / "s.csv"
    extract([excerpts / "misc"], out=segmented, jobs=1, segment_seconds=3)
    with pytest.raises(TableError, match=r"progress\.db is missing"):
        extract([excerpts / "misc"], out=segmented, jobs=1, resume=True, segment_seconds=3)
    with pytest.raises(TableError, match="unknown table format"):
        extract([excerpts / "misc"], out=tmp_path / "t.xlsx")


def test_librosa_engine_is_the_reference_recipe(excerpts):
    from genrekit.audio.features import reference_features

    path = excerpts / "rock" / "rock.00000.wav"
    rows = extract_file(path, engine="librosa")
    y, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(rows.loc[0, list(FEATURE_NAMES)].to_numpy(float), reference_features(y))
