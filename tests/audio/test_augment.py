"""``extract --augment``: pitch-shifted, time-stretched and noise-mixed rows, named after their clip."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from genrekit.audio.augment import add_noise, parse_augmentations
from genrekit.audio.decode import load_audio
from genrekit.cli import main
from genrekit.core.errors import AudioError, TableError
from genrekit.datasets.table import read_table, source_groups
from genrekit.extraction.extract import extract, extract_file, progress_path

SECONDS = 7


@pytest.fixture(scope="module")
def short_clips(gtzan_flac_dir, tmp_path_factory):
    """7-second excerpts of two GTZAN clips, in their genre folders."""
    root = tmp_path_factory.mktemp("short")
    for genre in ("jazz", "metal"):
        y = load_audio(gtzan_flac_dir / genre / f"{genre}.00000.flac")
        (root / genre).mkdir()
        sf.write(root / genre / f"{genre}.00000.wav", y[: SECONDS * 22050], 22050)
    return root


def test_augmented_rows_are_named_after_their_clip(short_clips, tmp_path):
    out = tmp_path / "aug.csv"
    args = ["extract", str(short_clips), "-o", str(out), "--segment-seconds", "3", "-q", "--jobs", "1"]
    assert main([*args, "--augment", "noise,stretch,pitch"]) == 0
    table = read_table(out)
    jazz = table[table["label"] == "jazz"]
    # 7 s: 2 segments; 0.9 x speed: 7.8 s, 2 segments; 1.1 x: 6.4 s, 2 segments
    assert jazz["filename"].tolist() == [
        f"jazz.00000.{tag}{i}.wav"
        for tag in ("", "pitch-2.", "pitch+2.", "stretch0.9.", "stretch1.1.", "noise20db.")
        for i in range(2)
    ]
    assert set(source_groups(table["filename"])) == {"jazz.00000.wav", "metal.00000.wav"}
    features = jazz.iloc[:, 2:-1].to_numpy()
    assert len({row.tobytes() for row in features}) == len(features)  # every version is different audio
    again = extract([short_clips / "jazz"], segment_seconds=3, augment=("noise",), jobs=1).table
    noise = jazz[jazz["filename"].str.contains("noise")].iloc[:, 2:-1].to_numpy()
    np.testing.assert_array_equal(again.iloc[2:, 2:-1].to_numpy(), noise)  # seeded by the name


def test_noise_is_added_at_the_asked_snr():
    y = np.sin(np.linspace(0, 2000, 100_000)).astype(np.float32)
    noisy = add_noise(y, 20.0, (0, 1))
    snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((noisy - y).astype(float) ** 2))
    assert abs(snr - 20.0) < 0.1
    np.testing.assert_array_equal(noisy, add_noise(y, 20.0, (0, 1)))


def test_bad_augmentation_names_and_settings_are_refused(short_clips, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["extract", str(short_clips), "-o", str(tmp_path / "x.csv"), "--augment", "reverb"])
    assert exit_info.value.code == 2
    assert "unknown augmentation 'reverb'" in capsys.readouterr().err
    assert parse_augmentations("stretch, pitch") == ("pitch", "stretch")
    (short_clips / "jazz" / "broken.wav").write_bytes(b"not audio")
    try:
        out = tmp_path / "partial.csv"
        result = extract([short_clips / "jazz"], out=out, augment=("noise",), jobs=1)
        assert len(result.failures) == 1 and progress_path(out).exists()
        with pytest.raises(TableError, match="augment"):
            extract([short_clips / "jazz"], out=out, resume=True, jobs=1)
    finally:
        (short_clips / "jazz" / "broken.wav").unlink()


def test_a_version_too_short_for_a_segment_is_skipped_alone(gtzan_flac_dir, tmp_path):
    y = load_audio(gtzan_flac_dir / "jazz" / "jazz.00000.flac")
    (tmp_path / "jazz").mkdir()
    path = tmp_path / "jazz" / "jazz.00000.wav"
    sf.write(path, y[: int(3.2 * 22050)], 22050)  # 1.1 x speed: 2.9 s, shorter than one 3-s segment
    with pytest.warns(
        UserWarning, match=r"jazz\.00000\.wav: stretch1\.1: too short.*skipped version stretch1\.1"
    ):
        table = extract_file(path, segment_seconds=3, augment=("stretch",))
    assert table["filename"].tolist() == ["jazz.00000.0.wav", "jazz.00000.stretch0.9.0.wav"]
    with pytest.raises(AudioError, match="too short"):  # the file itself too short: still an error
        extract_file(path, segment_seconds=4, augment=("stretch",))
