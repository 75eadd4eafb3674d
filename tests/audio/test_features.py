"""Parity of the fast and reference feature recipes with librosa and the GTZAN table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage
import soundfile as sf

from genrekit.audio import features
from genrekit.audio.features import MIN_SAMPLES, clip_features, reference_features
from genrekit.core.errors import AudioError
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE

TOLERANCE = 0.02  # absolute difference / column std over the table's 1,000 rows
TEMPO = FEATURE_NAMES.index("tempo")


@pytest.fixture(scope="module")
def table(gtzan_table: Path) -> pd.DataFrame:
    return pd.read_csv(gtzan_table).set_index("filename")


@pytest.fixture(scope="module")
def scale(table: pd.DataFrame) -> np.ndarray:
    return table[list(FEATURE_NAMES)].to_numpy().std(axis=0)


@pytest.fixture(scope="module")
def flacs(gtzan_flac_dir: Path) -> dict[str, np.ndarray]:
    paths = sorted(gtzan_flac_dir.glob("*/*.flac"))
    assert len(paths) == 14
    return {p.stem: sf.read(p, dtype="float32")[0] for p in paths}


def overlap_add(frames: np.ndarray, hop_length: int = 512) -> np.ndarray:
    """Reference overlap-add: rows of length n_fft (a multiple of hop_length) spaced by hop_length."""
    n, width = frames.shape
    k = width // hop_length
    parts = frames.reshape(n, k, hop_length)
    out = np.zeros((n + k - 1, hop_length), dtype=frames.dtype)
    for j in range(k):
        out[j : j + n] += parts[:, j]
    return out.ravel()


def deviation(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / scale


def assert_parity(got: np.ndarray, want: np.ndarray, scale: np.ndarray, tol: float = TOLERANCE) -> None:
    assert got.shape == (len(FEATURE_NAMES),)
    assert got[TEMPO] == want[TEMPO]
    dev = deviation(got, want, scale)
    worst = int(np.argmax(dev))
    assert dev[worst] <= tol, f"{FEATURE_NAMES[worst]}: {got[worst]} vs {want[worst]} ({dev[worst]:.4g} std)"


# ---- against the published table -------------------------------------------------------------


def test_clip_features_match_table(flacs, table, scale):
    for stem, y in flacs.items():
        want = table.loc[f"{stem}.wav", list(FEATURE_NAMES)].to_numpy(dtype=float)
        assert_parity(clip_features(y), want, scale)


@pytest.mark.parametrize("stem", ["blues.00000", "reggae.00000"])
def test_reference_features_match_table(flacs, table, scale, stem):
    want = table.loc[f"{stem}.wav", list(FEATURE_NAMES)].to_numpy(dtype=float)
    assert_parity(reference_features(flacs[stem]), want, scale)


# ---- fast vs reference on audio not in the table ---------------------------------------------


def _cross(cross_dir: Path, name: str) -> np.ndarray:
    y, sr = sf.read(cross_dir / name, dtype="float32")
    assert sr == SAMPLE_RATE and y.ndim == 1
    return y


def _variants(flacs: dict[str, np.ndarray], cross_dir: Path) -> dict[str, np.ndarray]:
    import soxr

    y = flacs["jazz.00000"]
    up = soxr.resample(flacs["disco.00000"], SAMPLE_RATE, 2 * SAMPLE_RATE)
    stereo = np.stack([flacs["blues.00001"], flacs["blues.00002"][: flacs["blues.00001"].size]], axis=1)
    return {
        "trumpet (5.3 s ogg)": _cross(cross_dir, "sorohanro_-_solo-trumpet-06.ogg"),
        "vibe ace (61 s ogg, two blocks)": _cross(cross_dir, "Kevin_MacLeod_-_Vibe_Ace.ogg"),
        "gain x0.3": (0.3 * y).astype(np.float32),
        "44.1 kHz round trip": soxr.resample(up, 2 * SAMPLE_RATE, SAMPLE_RATE).astype(np.float32),
        "stereo mixed to mono": stereo.mean(axis=1).astype(np.float32),
    }


def test_clip_features_match_reference_off_table(flacs, cross_dir, scale):
    for name, y in _variants(flacs, cross_dir).items():
        got, want = clip_features(y), reference_features(y)
        try:
            assert_parity(got, want, scale)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_blocks_equal_whole_signal(flacs, scale):
    y = np.concatenate([flacs[s] for s in ("blues.00000", "metal.00000", "classical.00001", "pop.00000")])
    y = y[: 180 * SAMPLE_RATE + 1234]  # about 3 minutes, not a multiple of the hop
    whole = clip_features(y, block_frames=10**6)
    for block_frames in (700, 1500):
        assert_parity(clip_features(y, block_frames=block_frames), whole, scale, tol=1e-4)


# ---- building blocks -------------------------------------------------------------------------


def test_running_median_equals_scipy_median_filter(flacs):
    spec = np.abs(features.stft_frames(flacs["country.00000"], 0, 400)).T  # (bins, frames), float32
    for size in [(1, 31), (31, 1)]:
        want = scipy.ndimage.median_filter(spec, size=size, mode="reflect")
        got = features.running_median(spec, 31, axis=0 if size[0] == 31 else 1)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for n in (5, 6, 9, 16, 31, 40):  # tiny inputs: reflection repeats beyond the array
        small = spec[:n, :n]
        np.testing.assert_array_equal(
            features.running_median(small, 31, axis=1),
            scipy.ndimage.median_filter(small, size=(1, 31), mode="reflect"),
        )


def test_running_median_ties_and_strides():
    # Few distinct values (ties everywhere), lane counts around the kernel's block of 16, strided
    # views, negative values: still exactly SciPy's median.
    rng = np.random.default_rng(3)
    for shape in [(200, 17), (33, 48), (64, 1)]:
        x = (np.round(rng.normal(size=shape) * 2) / 2).astype(np.float32)
        for axis in (0, 1):
            size = [1, 1]
            size[axis] = 31
            want = scipy.ndimage.median_filter(x, size=size, mode="reflect")
            np.testing.assert_array_equal(features.running_median(x, 31, axis=axis), want)
            np.testing.assert_array_equal(features.running_median(np.asfortranarray(x), 31, axis=axis), want)
    cube = rng.normal(size=(5, 40, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        features.running_median(cube, 7, axis=1),
        scipy.ndimage.median_filter(cube, size=(1, 7, 1), mode="reflect"),
    )
    with pytest.raises(TypeError, match="float32"):
        features.running_median(x.astype(np.float64), 31)


def test_soft_mask_equals_numpy():
    from genrekit.audio import _hpss

    rng = np.random.default_rng(4)
    harm = rng.random((50, 1025)).astype(np.float32)
    perc = rng.random((50, 1025)).astype(np.float32)
    harm[::7] = 0
    perc[::7, ::2] = 0
    spec = (rng.normal(size=harm.shape) + 1j * rng.normal(size=harm.shape)).astype(np.complex64)
    spec[0, 0] = 0  # a bin where both medians vanish and so does the spectrum
    h2 = np.square(harm)
    den = np.square(perc) + h2
    want = spec * np.where(den == 0, np.float32(0), h2 / np.where(den == 0, np.float32(1), den))
    got = np.empty_like(spec)
    vanished = _hpss.soft_mask(spec, harm, perc, got)
    np.testing.assert_array_equal(got, want)
    assert vanished == np.count_nonzero((den == 0) & (spec != 0)) > 0


def test_overlap_add_equals_numpy():
    from genrekit.audio import _hpss

    rng = np.random.default_rng(5)
    for count, offset, length in [(40, 1024, 19000), (5, 0, 4096), (1, 1024, 10), (3, 300, 1500)]:
        frames = rng.normal(size=(count, 2048)).astype(np.float32)
        scale = features._inverse_window_sumsquare(count)
        want = (overlap_add(frames * features._hann32()) * scale)[offset : offset + length]
        got = np.empty(length, np.float32)
        _hpss.overlap_add(frames, features._hann32(), scale, 512, offset, got)
        np.testing.assert_array_equal(got, want)


def test_stft_and_filterbanks_match_librosa(flacs):
    import librosa
    import scipy.fft
    import scipy.signal

    y = flacs["hiphop.00000"][: 10 * SAMPLE_RATE + 77]
    want = librosa.stft(y).T
    got = features.stft_frames(y, 0, features.n_frames(y.size))
    np.testing.assert_array_equal(got, want)
    for n in (344, 2048):
        np.testing.assert_array_equal(features.hann_window(n), scipy.signal.get_window("hann", n))
    np.testing.assert_allclose(
        features.mel_filterbank(), librosa.filters.mel(sr=SAMPLE_RATE, n_fft=2048), rtol=1e-5, atol=1e-9
    )
    for tuning in (0.0, -0.13, 0.27):
        np.testing.assert_allclose(
            features.chroma_filterbank(tuning),
            librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=2048, tuning=tuning),
            rtol=1e-5,
            atol=1e-8,
        )
    x = np.random.default_rng(0).normal(size=(7, 128))
    np.testing.assert_allclose(
        x @ features._dct_matrix().T, scipy.fft.dct(x, type=2, norm="ortho", axis=1)[:, :20], atol=1e-12
    )
    assert features.estimate_tuning(
        *features._piptrack_candidates(np.abs(got) ** 2, SAMPLE_RATE, 2048)
    ) == librosa.estimate_tuning(S=np.abs(want.T) ** 2, sr=SAMPLE_RATE, bins_per_octave=12)


def test_onset_and_tempo_match_librosa(flacs):
    import librosa

    y = flacs["disco.00000"][: 20 * SAMPLE_RATE]
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE))
    env = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, aggregate=np.median)
    np.testing.assert_allclose(features.onset_strength(mel_db.T), env, rtol=0, atol=1e-5)
    want = librosa.feature.tempo(onset_envelope=env, sr=SAMPLE_RATE)[0]
    assert features.tempo_from_onsets(env) == want
    assert features.tempo_from_onsets(np.zeros_like(env)) == 0.0
    np.testing.assert_allclose(
        features.mean_tempogram(env, 344, chunk=100), features.mean_tempogram(env, 344), rtol=1e-12
    )


def test_window_sumsquare_equals_overlap_added_windows():
    window_sq = np.square(features.hann_window())
    for count in (1, 3, 4, 5, 40):
        want = overlap_add(np.tile(window_sq, (count, 1)))
        np.testing.assert_allclose(features._window_sumsquare(count), want, rtol=1e-6, atol=0)


# ---- input checking --------------------------------------------------------------------------


@pytest.mark.parametrize("func", [clip_features, reference_features])
@pytest.mark.parametrize(
    ("signal", "sr", "message"),
    [
        (np.zeros(1000, np.float32), SAMPLE_RATE, f"too short: 1000 samples, need at least {MIN_SAMPLES}"),
        (np.full(5000, np.nan, np.float32), SAMPLE_RATE, "contains NaN or Inf samples"),
        (np.zeros(5000, np.float32), 44100, "sr must be 22050"),
        (np.zeros((5000, 2), np.float32), SAMPLE_RATE, "mono"),
        (np.zeros(5000, np.int16), SAMPLE_RATE, "floating point"),
    ],
)
def test_unusable_input_raises(func, signal, sr, message):
    with pytest.raises(AudioError, match=message):
        func(signal, sr)


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning from empty frequency set")
def test_edge_cases_match_reference(flacs, scale):
    rng = np.random.default_rng(1)
    cases = {
        "MIN_SAMPLES of noise": rng.normal(scale=0.1, size=MIN_SAMPLES),
        "silence": np.zeros(3 * SAMPLE_RATE),
        "float64 music": flacs["rock.00000"][: 4 * SAMPLE_RATE].astype(np.float64),
        "pure 440 Hz tone": 0.5 * np.sin(2 * np.pi * 440 * np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE),
    }
    for name, y in cases.items():
        got, want = clip_features(y), reference_features(y)
        assert np.all(np.isfinite(got)), name
        assert_parity(got, want, scale)


def test_hpss_scale_invariant_through_float32_underflow(flacs):
    # At 1e-25 the squared medians underflow in float32; librosa's masks rescale first, and so must ours.
    y = flacs["jazz.00000"][: 5 * SAMPLE_RATE]
    loud = clip_features(y)
    for scale_factor in (1e-20, 1e-25):
        quiet = clip_features((y * scale_factor).astype(np.float32))
        for i in range(12, 16):  # harmony / perceptr mean and var
            power = 1 if i % 2 == 0 else 2
            np.testing.assert_allclose(quiet[i] / scale_factor**power, loud[i], rtol=1e-5)
