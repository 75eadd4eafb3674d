"""The music / not-music detector (genrekit.tagger.music) and the "not music" verdict.

The detector runs the MTT tagger, whose weights come from the musicnn wheel as in test_tagger.py
(pip download, or ``GENREKIT_MUSICNN_WHEEL`` offline). Speech is synthesised with espeak-ng in
voices, texts and rates that the detector was not fitted on; the LibriSpeech and humpback clips
were held out of the fit (benchmarks/bench_notmusic.py).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genrekit.audio.decode import load_audio
from genrekit.core.errors import ModelError
from genrekit.prediction.model import NOT_MUSIC, UNCERTAIN, FilePrediction, load_model
from genrekit.tagger import music as detector_module
from genrekit.tagger.music import AGGREGATES, MUSIC_THRESHOLD, MusicDetector, default_detector

SR = 22050
SPEECH = "cross_dataset/librosa_data/198-209-0000.ogg"
WHALE = "cross_dataset/librosa_data/glacier-bay-humpback.ogg"


@pytest.fixture(scope="module")
def detector(tagger_cache: Path, musicnn_wheel: Path) -> MusicDetector:
    """The detector, its weights read from the wheel into the session's cache."""
    return MusicDetector(musicnn_wheel)


def _espeak(tmp_path: Path, voice: str, rate: int, pitch: int, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng) to synthesise speech")
    path = tmp_path / f"{voice}.wav"
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


@pytest.mark.parametrize(
    ("voice", "rate", "pitch", "text"),
    [
        (
            "en-gb+m7",
            150,
            40,
            "Please remember to switch off the lights before you leave the office tonight.",
        ),
        ("pt+f1", 200, 65, "O comboio das oito partiu atrasado por causa da chuva e do nevoeiro."),
        ("nl+m2", 170, 30, "De bakker op de hoek verkoopt elke ochtend vers brood en appeltaart."),
    ],
)
def test_synthesised_speech_is_not_music(
    detector: MusicDetector, tmp_path: Path, voice: str, rate: int, pitch: int, text: str
) -> None:
    path = _espeak(tmp_path, voice, rate, pitch, text)
    decision = detector.signal(load_audio(path, min_samples=0), SR)
    assert not decision.is_music, decision


def test_noise_and_silence_are_not_music(detector: MusicDetector) -> None:
    rng = np.random.default_rng(7)
    white = (rng.standard_normal(10 * SR) * 0.1).astype(np.float32)
    brown = np.cumsum(rng.standard_normal(10 * SR))
    brown = (0.2 * (brown - brown.mean()) / np.abs(brown - brown.mean()).max()).astype(np.float32)
    for noise in (white, brown):
        assert not detector.signal(noise, SR).is_music
    silence = detector.signal(np.zeros(5 * SR, dtype=np.float32), SR)
    assert silence.probability == 0.0 and not silence.is_music and silence.level_dbfs < -200


@pytest.mark.parametrize("clip", [SPEECH, WHALE], ids=["librispeech", "humpback"])
def test_held_out_speech_and_whale_are_not_music(detector: MusicDetector, data_root: Path, clip: str) -> None:
    decision = detector.signal(load_audio(data_root / clip), SR)
    assert not decision.is_music, decision


def _held_out_music(data_root: Path) -> list[Path]:
    folder = data_root / "cross_dataset" / "librosa_data"
    labels = (folder / "labels.csv").read_text().splitlines()[1:]
    return [folder / line.split(",")[0] for line in labels if line.split(",")[1] == "music"]


def test_every_music_clip_keeps_its_genre(
    detector: MusicDetector, data_root: Path, gtzan_flac_dir: Path
) -> None:
    """Through the prediction path (decoded once, the 22,050-Hz signal resampled for the tagger):
    the 14 GTZAN clips (development data) and the 8 held-out music clips, soft solo waltz included."""
    clips = sorted(gtzan_flac_dir.rglob("*.flac")) + _held_out_music(data_root)
    assert len(clips) == 22
    model = load_model(detect_music=True)
    results = dict(model.predict_files(clips, jobs=2))
    music = {path.name: getattr(result, "music", result) for path, result in results.items()}
    for path, result in results.items():
        assert isinstance(result, FilePrediction), result
        assert result.music >= MUSIC_THRESHOLD and result.verdict() != NOT_MUSIC, (path.name, music)


def test_stream_in_blocks_equals_whole_signal(detector: MusicDetector, gtzan_flac_dir: Path) -> None:
    y = load_audio(gtzan_flac_dir / "jazz" / "jazz.00000.flac")[: 10 * SR]
    stream = detector.stream(SR)
    for start in range(0, len(y), 4096):
        stream.push(y[start : start + 4096])
    assert stream.finish().probability == pytest.approx(detector.signal(y, SR).probability, abs=1e-5)
    short = detector.signal(y[: SR // 2], SR)  # under one patch: repeated to fill it, still decided
    assert 0.0 <= short.probability <= 1.0


def test_aggregates_and_a_bad_detector_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logits = np.array([-4.0, 1.0, 2.0])  # one clear non-music patch among music ones
    assert AGGREGATES["mean_logit"](logits) == pytest.approx(1 / (1 + math.exp(1 / 3)))
    assert AGGREGATES["share"](logits) == pytest.approx(2 / 3)
    assert AGGREGATES["median"](logits) == pytest.approx(1 / (1 + math.exp(-1)))
    bad = tmp_path / "music.json"
    shipped = json.loads(detector_module.COEFFICIENTS_PATH.read_text())
    bad.write_text(json.dumps({**shipped, "aggregate": "max"}))
    monkeypatch.setattr(detector_module, "COEFFICIENTS_PATH", bad)
    detector_module._coefficients.cache_clear()
    try:
        with pytest.raises(ModelError, match=r"music\.json: cannot read the music detector: 'max'"):
            detector_module.decide(np.zeros((1, 200)), -20.0)
    finally:
        detector_module._coefficients.cache_clear()


def _prediction(music: float, top: float = 0.9) -> FilePrediction:
    probabilities = np.array([top, 1.0 - top])
    return FilePrediction(
        Path("x.wav"),
        ("rock", "jazz"),
        probabilities,
        np.array([[0.0, 30.0]]),
        probabilities[None],
        30.0,
        music=music,
    )


def test_verdict_not_music_comes_before_uncertain() -> None:
    assert _prediction(0.1).verdict() == NOT_MUSIC
    assert not _prediction(0.1).is_confident()
    assert _prediction(0.1, top=0.55).verdict(min_confidence=0.9) == NOT_MUSIC
    assert _prediction(0.9, top=0.55).verdict(min_confidence=0.9) == UNCERTAIN
    assert _prediction(0.9).verdict() == "rock"
    assert _prediction(float("nan")).verdict() == "rock"  # not checked: as before


def test_catalogue_stores_not_music() -> None:
    from genrekit.library.scan import _prediction as stored

    assert stored(_prediction(0.1), "model", 0.5).genre == NOT_MUSIC
    assert stored(_prediction(0.9), "model", 0.5).genre == "rock"


def test_cli_predict_says_not_music_and_never_tags_it(
    detector: MusicDetector,
    data_root: Path,
    gtzan_flac_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from genrekit.cli import main

    speech = tmp_path / "speech.ogg"
    shutil.copyfile(data_root / SPEECH, speech)
    music = gtzan_flac_dir / "metal" / "metal.00000.flac"
    default_detector.cache_clear()  # the CLI's detector reads the session cache

    assert (
        main(["predict", str(speech), str(music), "--detect-music", "--format", "json", "-q", "--jobs", "1"])
        == 0
    )
    records = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)["files"]}
    assert records["speech.ogg"]["genre"] == NOT_MUSIC and records["speech.ogg"]["music"] < MUSIC_THRESHOLD
    assert records["metal.00000.flac"]["genre"] != NOT_MUSIC and records["metal.00000.flac"]["music"] > 0.5

    before = speech.read_bytes()
    assert main(["predict", str(speech), "--detect-music", "--write-tags", "-q", "--jobs", "1"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert NOT_MUSIC in line and "(not music" in line  # the tag writer leaves it untagged
    assert speech.read_bytes() == before

    assert main(["predict", str(speech), "--detect-music", "--format", "csv", "-q", "--jobs", "1"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    fields = dict(zip(header.split(","), row.split(","), strict=True))
    assert fields["genre"] == NOT_MUSIC and float(fields["music"]) < MUSIC_THRESHOLD

    assert main(["predict", str(speech), "--format", "json", "-q", "--jobs", "1"]) == 0  # not asked: no check
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert record["music"] is None and record["genre"] != NOT_MUSIC and not math.isnan(record["probability"])


def test_http_predict_answers_not_music(
    detector: MusicDetector, data_root: Path, gtzan_flac_dir: Path
) -> None:
    """A real ``genrekit serve --detect-music`` on 127.0.0.1: the answer is predict's record."""
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    from serve_client import post_file

    from genrekit.serve.process import ServerProcess, child_env

    with ServerProcess(["--workers", "1", "--detect-music"], env=child_env()) as server:
        status, _, speech = post_file(server.url + "/v1/predict", data_root / SPEECH)
        assert status == 200 and speech["genre"] == NOT_MUSIC and speech["music"] < MUSIC_THRESHOLD
        status, _, music = post_file(
            server.url + "/v1/predict", gtzan_flac_dir / "metal" / "metal.00000.flac"
        )
        assert status == 200 and music["genre"] != NOT_MUSIC and music["music"] >= MUSIC_THRESHOLD


def test_page_shows_not_music(detector: MusicDetector, data_root: Path) -> None:
    """The page of ``genrekit serve --detect-music`` in headless Chromium, as test_serve_page.py drives it."""
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run does)")
    from genrekit.serve.process import ServerProcess, child_env

    with ServerProcess(["--workers", "1", "--detect-music"], env=child_env()) as server:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/")
            page.set_input_files("#files", [str(data_root / SPEECH)])
            page.wait_for_selector("#cards article[data-state=done]", timeout=60_000)
            verdict = page.locator("#cards .verdict").inner_text()
            browser.close()
    assert verdict.startswith("Not music (music probability ") and verdict.endswith("%)"), verdict
    assert float(verdict.split()[-1].strip("()%")) < 100 * MUSIC_THRESHOLD and not errors
