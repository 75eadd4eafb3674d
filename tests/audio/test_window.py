from itertools import pairwise

import pytest

from genrekit.audio.features import MIN_SAMPLES
from genrekit.audio.window import segment_length, segment_name, segments, windows
from genrekit.core.errors import AudioError

W = 661_500  # 30 s at 22,050 Hz


def test_segment_length_matches_public_3_sec_table():
    assert segment_length(3) == 66_149
    assert segment_length(3, sr=1000) == 2999
    with pytest.raises(ValueError):
        segment_length(0.00001)


@pytest.mark.parametrize("n", [661_794, 661_504, 663_300, 664_180, 661_500])
def test_gtzan_clip_gives_ten_segments_and_drops_the_tail(n):
    bounds = segments(n, 66_149)
    assert len(bounds) == 10
    assert bounds[0] == (0, 66_149)
    assert all(end - start == 66_149 for start, end in bounds)
    assert all(a[1] == b[0] for a, b in pairwise(bounds))
    assert n - bounds[-1][1] < 66_149


def test_segments_edge_cases():
    assert len(segments(660_000, 66_149)) == 9
    assert segments(66_148, 66_149) == []
    assert segments(0, 10) == []
    assert segments(25, 10) == [(0, 10), (10, 20)]
    with pytest.raises(ValueError):
        segments(10, 0)


def test_segment_name():
    assert segment_name("blues.00000.wav", 0) == "blues.00000.0.wav"
    assert segment_name("some/dir/song.mp3", 12) == "some/dir/song.12.mp3"
    assert segment_name("noext", 1) == "noext.1"


def test_gtzan_clip_is_one_window_covering_it():
    for n in (661_794, 661_504, 664_180, W):
        assert windows(n) == [(0, n)]


def test_short_clip_is_one_window_and_too_short_is_an_error():
    assert windows(5 * 22050) == [(0, 5 * 22050)]
    assert windows(MIN_SAMPLES) == [(0, MIN_SAMPLES)]
    with pytest.raises(AudioError, match="too short"):
        windows(MIN_SAMPLES - 1)


def test_short_tail_merges_long_tail_gets_end_aligned_window():
    # tail just under half a window joins the last full window
    n = 2 * W + W // 2 - 1
    assert windows(n) == [(0, W), (W, n)]
    # tail of half a window or more: its own window, aligned to the end
    n = 2 * W + W // 2
    assert windows(n) == [(0, W), (W, 2 * W), (n - W, n)]
    # exact multiple
    assert windows(3 * W) == [(0, W), (W, 2 * W), (2 * W, 3 * W)]


@pytest.mark.parametrize("n", [2048, 100_000, W - 1, W + 1, 1_000_000, 2_000_001, 26_460_000 + 12_345])
def test_windows_cover_the_clip_in_order(n):
    bounds = windows(n)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(0 <= s < e <= n for s, e in bounds)
    assert all(a[0] < b[0] and a[1] >= b[0] for a, b in pairwise(bounds))
    assert all(e - s >= W for s, e in bounds) or len(bounds) == 1
    assert all(e - s < 1.5 * W for s, e in bounds)


def test_windows_custom_window_and_sr():
    assert windows(1_500_000, window=600_000, min_samples=1) == [
        (0, 600_000),
        (600_000, 1_200_000),
        (900_000, 1_500_000),
    ]
    assert windows(100, sr=2, min_samples=1) == [(0, 60), (40, 100)]
