"""Long files: streamed windows, bounded memory, one BLAS thread."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from genrekit.audio.decode import load_audio, open_audio
from genrekit.audio.features import clip_features
from genrekit.audio.window import stream_windows, windows
from genrekit.core.errors import AudioError
from genrekit.core.schema import SAMPLE_RATE
from genrekit.prediction.model import MIN_SECONDS, file_windows


def test_stream_windows_equal_slices_of_the_whole_signal() -> None:
    y = np.random.default_rng(0).standard_normal(2_000_003).astype(np.float32)
    spans = windows(len(y), window=600_000, min_samples=1)  # a long tail: an end-aligned window
    for block in (777, 65_536, 3_000_000):
        buffer = np.empty(block, dtype=np.float32)

        def blocks(block=block, buffer=buffer):
            for start in range(0, len(y), block):  # reused buffer, as the decoder does
                n = len(y[start : start + block])
                buffer[:n] = y[start : start + block]
                yield buffer[:n]

        got = [(s, e, w.copy()) for s, e, w in stream_windows(blocks(), spans)]
        assert [(s, e) for s, e, _ in got] == spans
        for s, e, w in got:
            np.testing.assert_array_equal(w, y[s:e])
    with pytest.raises(AudioError, match="before window"):
        list(stream_windows([y[:1000]], [(0, 2000)]))


def test_streamed_file_windows_equal_windows_of_the_decoded_file(cross_dir: Path, tmp_path: Path) -> None:
    # 44.1 kHz stereo Ogg (resampled, mixed) with a 29.88-s tail: an end-aligned fourth window
    source = cross_dir / "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg"
    y = load_audio(source)
    spans = windows(len(y), min_samples=round(MIN_SECONDS * SAMPLE_RATE))
    got = file_windows(source)
    assert got.bounds.tolist() == [list(span) for span in spans] and len(spans) == 4
    np.testing.assert_array_equal(got.features, np.stack([clip_features(y[s:e]) for s, e in spans]))


def test_open_audio_blocks_are_load_audio(tmp_path: Path, gtzan_flac_dir: Path) -> None:
    clip = sf.read(gtzan_flac_dir / "disco" / "disco.00000.flac", dtype="float32")[0][:300_000]
    up = soxr.resample(clip, SAMPLE_RATE, 48_000, quality="HQ")
    path = tmp_path / "three.wav"
    sf.write(path, np.stack([up, 0.5 * up, -up], axis=1), 48_000, subtype="FLOAT")
    with open_audio(path, block_frames=5000) as (n_samples, blocks):
        streamed = np.concatenate([block.copy() for block in blocks])
    assert n_samples == len(streamed)
    np.testing.assert_array_equal(streamed, load_audio(path, block_frames=5000))


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        file_windows(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_prediction_does_not_grow_with_the_length(tmp_path: Path, gtzan_wav_dir: Path) -> None:
    clip = sf.read(gtzan_wav_dir / "metal" / "metal.00000.wav", dtype="float32")[0]
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, np.tile(clip, 2)[: 60 * SAMPLE_RATE], SAMPLE_RATE, subtype="FLOAT")  # 2 windows
    sf.write(long, np.tile(clip, 7)[: 210 * SAMPLE_RATE], SAMPLE_RATE, subtype="FLOAT")  # 7 windows
    file_windows(short)  # warm caches (filter banks, windows)
    grown = _peak_bytes(long) - _peak_bytes(short)
    # the whole long signal would add 150 s x 22,050 x 4 bytes = 13 MB; streamed, nothing grows
    assert grown < 2**20, grown


def test_python_api_predicts_with_one_blas_thread(gtzan_flac_dir: Path, monkeypatch) -> None:
    from threadpoolctl import threadpool_info

    import genrekit
    from genrekit.audio import analysis

    seen = []

    def spy(y, sr=SAMPLE_RATE):
        seen.extend(pool["num_threads"] for pool in threadpool_info())
        return clip_features(y, sr)

    monkeypatch.setattr(analysis, "clip_features", spy)
    genrekit.load_model().predict_file(gtzan_flac_dir / "pop" / "pop.00000.flac")
    assert seen and set(seen) == {1}
