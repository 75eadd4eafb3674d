import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from genrekit.audio import decode
from genrekit.audio.decode import audio_files, ffmpeg_command, genre_from_path, load_audio
from genrekit.audio.features import MIN_SAMPLES
from genrekit.core.errors import AudioError


@pytest.fixture(scope="module")
def blues(gtzan_wav_dir):
    return gtzan_wav_dir / "blues" / "blues.00000.wav"


@pytest.fixture(scope="module")
def blues_samples(blues):
    y, sr = sf.read(blues, dtype="float32")
    assert sr == 22050
    return y


def test_wav_and_flac_decode_to_identical_samples(blues, blues_samples, gtzan_flac_dir):
    wav = load_audio(blues)
    flac = load_audio(gtzan_flac_dir / "blues" / "blues.00000.flac")
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == 661_794
    np.testing.assert_array_equal(wav, flac)
    np.testing.assert_array_equal(wav, blues_samples)


def test_stereo_44k_decodes_to_about_the_original(tmp_path, blues_samples):
    up = soxr.resample(blues_samples, 22050, 44100, quality="HQ")
    stereo = np.stack([up, 0.5 * up], axis=1)
    path = tmp_path / "stereo44.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    y = load_audio(path)
    assert len(y) == len(blues_samples)
    expected = 0.75 * blues_samples  # mean of the channels
    # compare away from the edges, where the resampling filters ramp up
    err = np.abs(y[1000:-1000] - expected[1000:-1000])
    assert err.max() < 1e-2 and np.sqrt(np.mean(err**2)) < 1e-3


def test_block_decode_equals_one_shot(tmp_path, blues_samples):
    stereo = np.stack([blues_samples, -0.25 * blues_samples], axis=1)[:300_001]
    path = tmp_path / "stereo48.flac"
    sf.write(path, stereo, 48000)
    data, sr = sf.read(path, dtype="float32")
    mono = data.mean(axis=1, dtype=np.float32)
    one_shot = soxr.resample(mono, sr, 22050, quality="HQ")
    n = int(np.ceil(len(mono) * 22050 / sr))
    for block in (1000, 4096, 1 << 16, 1 << 20):
        y = load_audio(path, block_frames=block)
        assert len(y) == n
        np.testing.assert_allclose(y, one_shot[:n], atol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # audioread, imported by librosa.load
def test_decode_matches_librosa_load(tmp_path, blues_samples):
    librosa = pytest.importorskip("librosa")
    path = tmp_path / "x.ogg"
    sf.write(path, np.stack([blues_samples, blues_samples[::-1]], 1)[:200_000], 32000)
    expected, _ = librosa.load(path, sr=22050)
    np.testing.assert_allclose(load_audio(path), expected, atol=1e-6)


def _wav_bytes(tmp_path, y, **kwargs):
    path = tmp_path / "tmp_src.wav"
    sf.write(path, y, 22050, **kwargs)
    return path.read_bytes()


def _bad_files(tmp_path, samples):
    good = _wav_bytes(tmp_path, samples[:50_000], subtype="PCM_16")
    lying = bytearray(good)
    i = lying.find(b"data")
    (size,) = struct.unpack("<I", lying[i + 4 : i + 8])
    lying[i + 4 : i + 8] = struct.pack("<I", size + 40_000)
    nan = samples[:50_000].copy()
    nan[1234] = np.nan
    inf = samples[:50_000].copy()
    inf[-1] = np.inf
    flac_path = tmp_path / "tmp_src.flac"
    sf.write(flac_path, samples[:200_000], 22050)
    flac = flac_path.read_bytes()
    files = {
        "empty.wav": (b"", "empty"),
        "truncated.wav": (good[: len(good) // 2], "truncated"),
        "text.wav": (b"this is not audio\n" * 50, "cannot decode"),
        "lying.wav": (bytes(lying), "truncated"),
        "truncated.flac": (flac[: len(flac) // 2], "truncated"),
        "nan.wav": (_wav_bytes(tmp_path, nan, subtype="FLOAT"), "NaN or Inf"),
        "inf.wav": (_wav_bytes(tmp_path, inf, subtype="DOUBLE"), "NaN or Inf"),
        "short.wav": (_wav_bytes(tmp_path, samples[: MIN_SAMPLES - 1], subtype="PCM_16"), "too short"),
    }
    out = {}
    for name, (data, reason) in files.items():
        (tmp_path / name).write_bytes(data)
        out[tmp_path / name] = reason
    return out


def test_every_bad_input_gives_audio_error_naming_the_file(tmp_path, blues_samples):
    for path, reason in _bad_files(tmp_path, blues_samples).items():
        with pytest.raises(AudioError) as info:
            load_audio(path)
        message = str(info.value)
        assert message.startswith(f"{path}: "), message
        assert reason in message, message


def test_missing_file_and_exact_minimum(tmp_path, blues_samples):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    path = tmp_path / "min.wav"
    sf.write(path, blues_samples[:MIN_SAMPLES], 22050, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), blues_samples[:MIN_SAMPLES])


def test_ffmpeg_command_decodes_to_mono_f32le_at_target_rate():
    cmd = ffmpeg_command(Path("a b/song.m4a"), sr=16000, ffmpeg="/x/ffmpeg")
    assert cmd[0] == "/x/ffmpeg"
    assert cmd[cmd.index("-i") + 1] == str(Path("a b/song.m4a"))
    assert cmd[cmd.index("-ac") + 1] == "1"
    assert cmd[cmd.index("-ar") + 1] == "16000"
    assert cmd[cmd.index("-f") + 1] == "f32le"
    assert cmd[-1] == "pipe:1" and "-nostdin" in cmd


def test_missing_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    monkeypatch.setattr(decode.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match=r"song\.m4a: cannot decode \.m4a without ffmpeg; install ffmpeg"):
        load_audio(path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_ffmpeg_decodes_m4a(tmp_path, blues_samples):
    import subprocess

    wav = tmp_path / "x.wav"
    sf.write(wav, blues_samples[:220_500], 22050)
    m4a = tmp_path / "x.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    y = load_audio(m4a)
    assert abs(len(y) - 220_500) < 4096
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(m4a.read_bytes()[:200])
    with pytest.raises(AudioError, match=r"broken\.m4a: cannot decode"):
        load_audio(broken)


def test_audio_files_expands_folders(tmp_path, gtzan_flac_dir):
    (tmp_path / "b" / "sub").mkdir(parents=True)
    (tmp_path / "b" / "sub" / "z.MP3").write_bytes(b"x")
    (tmp_path / "b" / "a.flac").write_bytes(b"x")
    (tmp_path / "b" / "notes.txt").write_text("x")
    (tmp_path / "b" / ".hidden.wav").write_bytes(b"x")
    explicit = tmp_path / "odd.bin"
    explicit.write_bytes(b"x")
    files = audio_files([tmp_path / "b", explicit, tmp_path / "b" / "a.flac"])
    assert files == [tmp_path / "b" / "a.flac", tmp_path / "b" / "sub" / "z.MP3", explicit]
    gtzan = audio_files([gtzan_flac_dir])
    assert len(gtzan) == 14 and gtzan == sorted(gtzan)
    with pytest.raises(AudioError, match=r"missing\.wav: no such file or folder"):
        audio_files([tmp_path / "missing.wav"])


def test_genre_from_path():
    assert genre_from_path("x/blues/blues.00000.wav") == "blues"
    assert genre_from_path("x/Blues/blues.00000.wav") == ""
    assert genre_from_path("song.mp3") == ""
    assert genre_from_path("x/polka/a.wav", genres=("polka",)) == "polka"


def test_long_stereo_file_decodes_in_bounded_memory(tmp_path, blues_samples):
    import tracemalloc

    up = soxr.resample(np.tile(blues_samples, 3), 22050, 44100, quality="HQ")  # 90 s at 44.1 kHz
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([up, up[::-1]], axis=1), 44100, subtype="PCM_16")
    del up
    tracemalloc.start()
    try:
        y = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(y) == 3 * len(blues_samples)
    # the mono 22,050 Hz result plus about one block, far below the 31 MB of decoded stereo float32
    assert peak < y.nbytes + 4 * 2**20, (peak, y.nbytes)


def test_broken_mp3_is_named_without_decoder_noise(tmp_path, blues_samples, capfd):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(AudioError, match=r"junk\.mp3: cannot decode: not a recognised audio format"):
        load_audio(junk)
    good = tmp_path / "good.mp3"
    sf.write(good, blues_samples[: 5 * 22050], 22050, format="MP3")
    assert len(load_audio(good)) >= 5 * 22050 - 2048
    assert capfd.readouterr().err == ""  # libsndfile's mpg123 notes do not reach the terminal
