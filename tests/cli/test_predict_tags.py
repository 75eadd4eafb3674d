"""``genrekit predict --tags``: each file's deep tags (musicnn) from the same decoding as its genre.

The taggers' weights come from the musicnn wheel into the session's cache (``tagger_cache``), as
in tests/tagger. The clips are 6-s excerpts of GTZAN clips (two tagger patches) to keep the
networks' work small.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from genrekit.audio.decode import load_audio
from genrekit.cli import main
from genrekit.core.schema import SAMPLE_RATE
from genrekit.tagger.model import Tagger, default_tagger, tag_file, tags_record

ATOL = 1e-4
"""Tag probabilities of predict --tags against genrekit tags' path (rounded to 4 digits in both)."""


@pytest.fixture(scope="module")
def taggers(tagger_cache: Path, musicnn_wheel: Path) -> list[Tagger]:
    """Both taggers, their weights read from the wheel into the session's cache."""
    found = [Tagger("msd", musicnn_wheel), Tagger("mtt", musicnn_wheel)]
    default_tagger.cache_clear()  # the CLI's taggers read the session cache
    return found


@pytest.fixture(scope="module")
def clips(gtzan_flac_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """6-s excerpts of a jazz and a metal clip, and a file that is not audio."""
    folder = tmp_path_factory.mktemp("clips")
    found = {}
    for genre in ("jazz", "metal"):
        y = load_audio(gtzan_flac_dir / genre / f"{genre}.00000.flac")[5 * SAMPLE_RATE : 11 * SAMPLE_RATE]
        found[genre] = folder / f"{genre}.wav"
        soundfile.write(found[genre], y, SAMPLE_RATE, subtype="PCM_16")
    found["broken"] = folder / "broken.wav"
    found["broken"].write_bytes(b"RIFF not really a wave file")
    return found


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    status = main(["predict", *args, "-q", "--jobs", "1"])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_records_carry_the_tags_of_genrekit_tags(taggers, clips, capsys) -> None:
    files = [str(clips["jazz"]), str(clips["broken"]), str(clips["metal"])]
    options = ["--tags", "--tagger", "msd,mtt", "--top-tags", "3", "--detect-music", "--format", "json"]
    status, out, _ = _run(capsys, *files, *options)
    assert status == 1  # the broken file failed; the others were predicted and tagged
    records = {Path(r["file"]).name: r for r in json.loads(out)["files"]}
    assert "error" in records["broken.wav"] and "deep_tags" not in records["broken.wav"]
    for name in ("jazz", "metal"):
        record = records[f"{name}.wav"]
        expected = tags_record(clips[name], list(tag_file(clips[name], taggers).values()), 3)["tags"]
        got = record["deep_tags"]
        assert [(t["tagger"], t["tag"]) for t in got] == [(t["tagger"], t["tag"]) for t in expected]
        pairs = zip(got, expected, strict=True)
        assert all(abs(a["probability"] - b["probability"]) <= ATOL for a, b in pairs)
        assert record["music"] is not None and record["genre"] != "not music"  # detector and tags together
    assert "jazz" in [t["tag"] for t in records["jazz.wav"]["deep_tags"] if t["tagger"] == "msd"]
    metal = [t["tag"] for t in records["metal.wav"]["deep_tags"] if t["tagger"] == "msd"]
    assert {"metal", "heavy metal", "rock", "hard rock"} & set(metal)


def test_table_and_csv_show_the_tags(taggers, clips, capsys) -> None:
    status, out, _ = _run(capsys, str(clips["jazz"]), "--tags", "--top-tags", "2")
    assert status == 0
    row, tags = out.splitlines()[1:3]
    assert row.split()[0].endswith("jazz.wav")  # the tags line follows its file's row
    assert tags.startswith("  msd  ") and len(tags.split(",")) == 2

    status, out, _ = _run(capsys, str(clips["jazz"]), "--tags", "--top-tags", "2", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    entries = rows[0]["deep_tags"].split("; ")
    assert status == 0 and len(entries) == 2 and all(e.startswith("msd:") and "=" in e for e in entries)
    assert float(entries[0].split("=")[1]) >= float(entries[1].split("=")[1])


def test_without_tags_nothing_changes(clips, capsys) -> None:
    status, out, _ = _run(capsys, str(clips["jazz"]), "--format", "csv")
    assert status == 0 and "deep_tags" not in out.splitlines()[0]
    status, out, _ = _run(capsys, str(clips["jazz"]), "--format", "json")
    assert status == 0 and "deep_tags" not in json.loads(out)["files"][0]
    code = (
        "import sys\nfrom genrekit.cli import main\n"
        f"main(['predict', {str(clips['jazz'])!r}, '-q', '--jobs', '1'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('genrekit.tagger')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_missing_weights_exit_2_before_any_file(clips, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GENREKIT_TAGGER_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds nothing: no network needed to fail
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    default_tagger.cache_clear()
    try:
        status, out, err = _run(capsys, str(clips["jazz"]), "--tags", "--format", "csv")
    finally:
        default_tagger.cache_clear()
    assert status == 2 and out == ""
    assert "could not download the tagger weights" in err and "--weights" in err and "--tags" in err


def test_tagger_options_need_tags(clips, capsys) -> None:
    status, out, err = _run(capsys, str(clips["jazz"]), "--tagger", "mtt")
    assert status == 2 and out == "" and "go with --tags" in err
    with pytest.raises(SystemExit):
        main(["predict", str(clips["jazz"]), "--tags", "--tagger", "nope"])
    assert "unknown tagger nope" in capsys.readouterr().err
