import io
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from genrekit.audio import decode
from genrekit.audio.decode import (
    TooLongError,
    audio_files,
    ffmpeg_command,
    genre_from_path,
    load_audio,
    open_audio,
)
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


def _ffmpeg_mp3(source: Path, target: Path, *options: str) -> Path:
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *options, str(target)], check=True)
    return target


@pytest.mark.parametrize("rate", [22050, 44100])
def test_mp3_decodes_block_by_block_as_in_one_read(tmp_path, blues, rate):
    # libsndfile's MPEG-2 decoder (22,050 Hz and below) returned other samples when a read ended
    # inside a frame; reads in whole frames give the one-shot read's samples (float32 rounding).
    path = _ffmpeg_mp3(blues, tmp_path / "song.mp3", "-ar", str(rate))
    whole, _ = sf.read(path, dtype="float32")
    expected = soxr.resample(whole, rate, 22050, quality="HQ") if rate != 22050 else whole
    for block in (1000, 1 << 16):
        np.testing.assert_allclose(load_audio(path, block_frames=block)[: len(expected)], expected, atol=1e-6)


def test_mp3_without_xing_header_decodes_and_a_cut_one_is_truncated(tmp_path, blues):
    # Without a Xing/LAME header libsndfile estimates the length from the size and bit rate (here
    # longer than what decodes): the estimate may fall short by 10% at most; the end is silence.
    plain = _ffmpeg_mp3(blues, tmp_path / "plain.mp3", "-write_xing", "0")
    whole, _ = sf.read(plain, dtype="float32")
    y = load_audio(plain)
    assert len(y) >= len(whole)
    np.testing.assert_allclose(y[: len(whole)], whole, atol=1e-6)
    assert not y[len(whole) :].any()
    headed = _ffmpeg_mp3(blues, tmp_path / "headed.mp3")  # its header counts the frames exactly
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(headed.read_bytes()[: headed.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated: header declares"):
        load_audio(cut)


def long_aac(folder: Path, copies: int = 120) -> Path:
    """A raw AAC (ADTS) stream of about `copies` x 10 s: one short encoding repeated, each ADTS frame
    standing alone (encoding 20 minutes would take longer than the tests)."""
    import subprocess

    short = folder / "short.aac"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", "10"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *tone, "-c:a", "aac", "-b:a", "8k", str(short)], check=True
    )
    path = folder / "long.aac"
    path.write_bytes(short.read_bytes() * copies)
    return path


def traced_peak(fn) -> int:
    """Run `fn` and return the peak of Python-allocated memory meanwhile (bytes)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_file_declared_at_1_hz_is_refused_at_once(tmp_path):
    path = tmp_path / "one_hz.wav"  # 10 kB, 5,000 s at 1 Hz: 110 million samples at 22,050 Hz
    sf.write(path, np.zeros(5000, np.int16), 1, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"one_hz\.wav: sample rate 1 Hz is below 4000 Hz"):
        load_audio(path)


def test_a_header_declaring_2_to_the_36_frames_is_an_audio_error(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(5 * 22050, np.int16), 22050, format="FLAC")
    data = bytearray(buffer.getvalue())
    fields = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate, channels, bits, then 36 bits of frames
    data[18:26] = (fields | (1 << 36) - 1).to_bytes(8, "big")
    path = tmp_path / "liar.flac"
    path.write_bytes(data)
    assert sf.info(path).frames == 2**36 - 1
    with pytest.raises(AudioError, match=r"liar\.flac: "):  # not MemoryError (256 GiB): this file's error
        load_audio(path)


def test_upsampling_keeps_blocks_block_sized(tmp_path, blues_samples):
    path = tmp_path / "low.wav"  # 30 s at 4 kHz: one 65,536-frame read would resample to 361,267 samples
    sf.write(path, soxr.resample(blues_samples, 22050, 4000), 4000, subtype="FLOAT")
    with open_audio(path) as (n_samples, blocks):
        sizes, y = zip(*((len(b), b.copy()) for b in blocks), strict=True)
    assert sum(sizes) == n_samples and max(sizes) <= 1.1 * decode.BLOCK_FRAMES, max(sizes)
    np.testing.assert_allclose(np.concatenate(y), load_audio(path, block_frames=1 << 20), atol=1e-6)


def test_max_seconds_refuses_a_long_file_from_its_header(tmp_path, blues_samples):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(blues_samples, 2), 22050)
    with pytest.raises(TooLongError, match=r"long\.wav: 60\.0 s of audio, longer than the limit of 40 s"):
        load_audio(path, max_seconds=40)
    assert len(load_audio(path, max_seconds=60.1)) == 2 * len(blues_samples)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
@pytest.mark.parametrize("probe", [True, False], ids=["ffprobe", "no-ffprobe"])
def test_a_long_ffmpeg_file_is_decoded_no_further_than_the_limit(tmp_path, monkeypatch, probe):
    path = long_aac(tmp_path)  # 20 min: 106 MB decoded
    if probe:
        assert decode.probe_seconds(path) == pytest.approx(1200, rel=0.1)
    else:  # only decoding tells the length (no ffprobe, or a header that lies)
        monkeypatch.setattr(decode, "probe_seconds", lambda path: None)

    def refused() -> None:
        with pytest.raises(TooLongError, match=r"long\.aac: .*longer than the limit of 20 s"):
            load_audio(path, max_seconds=20)

    # at most the 21 s ffmpeg decodes (x2: the buffer's growth) and one 1-MB read, not 106 MB
    assert traced_peak(refused) < 2 * 21 * 22050 * 4 + 2**20
