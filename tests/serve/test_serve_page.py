"""The page of `genrekit serve` in headless Chromium (Debian's `chromium`, driven by Playwright).

Screenshots of each state go to ``test-artifacts/serve/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")

from serve_client import call, post_file, wait_until  # noqa: E402

from genrekit.audio.decode import load_audio  # noqa: E402
from genrekit.core.schema import SAMPLE_RATE  # noqa: E402
from genrekit.serve.process import ServerProcess, child_env  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "serve"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; .ci/run does)"
    ),
]
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
LIVE_CLIP = ("classical", "classical.00000.flac")


@pytest.fixture(scope="module")
def server():
    with ServerProcess(["--workers", "1", "--stream-idle-timeout", "2"], env=child_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def live_wav(gtzan_flac_dir, tmp_path_factory):
    """The live test's clip as a WAV file, for Chromium's fake microphone."""
    path = tmp_path_factory.mktemp("live") / "clip.wav"
    soundfile.write(path, load_audio(gtzan_flac_dir.joinpath(*LIVE_CLIP)), SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(live_wav):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        args = [*BROWSER_ARGS, f"--use-file-for-fake-audio-capture={live_wav}"]
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request):
    phone = "phone_sized" in request.node.name
    viewport = {"width": 390, "height": 844} if phone else {"width": 1000, "height": 900}
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.grant_permissions(["microphone"], origin=server.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(server.url + "/")
    tab.wait_for_function("document.getElementById('model-line').textContent.startsWith('Model ')")
    yield tab
    context.close()
    assert not errors, errors


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_page_loads_offline_with_the_model(page, server):
    line = page.inner_text("#model-line")
    assert call(server.url + "/v1/model")[2]["id"] in line and "10 genres" in line
    sources = page.eval_on_selector_all("script[src], link[href]", "els => els.map(e => e.src || e.href)")
    assert sources and all(s.startswith(server.url) for s in sources)  # nothing from elsewhere
    page.wait_for_load_state("networkidle")
    assert call(server.url + "/v1/library/stats")[0] == 404  # no --db: no library view
    assert page.locator("#library").is_hidden()
    shot(page, "empty")


def test_upload_shows_genre_bars_and_timeline(page, server, gtzan_flac_dir, tmp_path):
    clip = gtzan_flac_dir / "metal" / "metal.00000.flac"
    parts = [load_audio(gtzan_flac_dir / g / f"{g}.00000.flac") for g in ("classical", "metal", "hiphop")]
    long_file = tmp_path / "medley.wav"
    soundfile.write(long_file, np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
    page.set_input_files("#files", [str(clip), str(long_file)])
    page.wait_for_selector("#cards article[data-state=done] >> nth=1", timeout=60_000)
    cards = {c.locator("h3").inner_text(): c for c in page.locator("#cards article").all()}
    for path in (clip, long_file):
        expected = post_file(server.url + "/v1/predict", path)[2]
        card = cards[path.name]
        verdict = card.locator(".verdict").inner_text()
        shown = expected["best_guess"] if expected["genre"] == "uncertain" else expected["genre"]
        assert shown in verdict and (("Uncertain" in verdict) == (expected["genre"] == "uncertain"))
        bars = card.locator(".bars li").all()
        assert len(bars) == 10 and f"{shown} (top)" in bars[0].inner_text()
        assert f"{100 * expected['probability']:.1f}%" in bars[0].inner_text()
    spans = cards[long_file.name].locator(".timeline span").all_inner_texts()
    expected = post_file(server.url + "/v1/predict", long_file)[2]
    assert spans == [max(w["probabilities"], key=w["probabilities"].get) for w in expected["windows"]]
    assert len(spans) == 3
    assert cards[clip.name].locator(".timeline").count() == 0
    shot(page, "result")


def test_progress_is_shown_while_a_file_is_on_its_way(page, gtzan_flac_dir):
    held = []

    def hold(route):  # keep the request waiting until the page has been looked at
        held.append(route)

    page.route("**/v1/predict*", hold)
    page.set_input_files("#files", str(gtzan_flac_dir / "jazz" / "jazz.00000.flac"))
    page.wait_for_function("document.querySelector('#cards article progress') !== null")
    assert re.match(r"Uploading…|Analysing…", page.inner_text("#cards .status"))
    assert page.get_attribute("#cards article", "data-state") in ("uploading", "analysing")
    shot(page, "progress")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)  # lets Playwright call the route handler
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_selector("#cards article[data-state=done]", timeout=60_000)
    assert page.locator("#cards progress").count() == 0


def test_bad_file_dropped_gets_an_error_card(page):
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["not audio at all\\n".repeat(50)], "notes.txt", { type: "text/plain" }));
            return data;
        }"""
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    card = page.locator("#cards article.error")
    card.wait_for(timeout=30_000)
    text = card.locator(".verdict").inner_text()
    assert text.startswith("Error: notes.txt") and "decode" in text
    assert card.get_attribute("data-state") == "error"
    shot(page, "error")


def test_phone_sized_screen_without_colour(page, gtzan_flac_dir):
    page.set_input_files("#files", str(gtzan_flac_dir / "blues" / "blues.00000.flac"))
    page.wait_for_selector("#cards article[data-state=done]", timeout=60_000)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page wider than a phone screen: {width}"
    page.emulate_media(forced_colors="active")  # no author colours: the text must carry everything
    verdict = page.inner_text("#cards .verdict")
    assert re.match(r"(Genre: \w+|Uncertain — best guess \w+) \(\d+\.\d%\)", verdict), verdict
    assert "(top)" in page.inner_text("#cards .bars li >> nth=0")
    page.evaluate("document.documentElement.style.filter = 'grayscale(1)'")
    shot(page, "phone-grey")


def test_live_mode_with_the_fake_microphone(page, server):
    page.click("#live-mic")
    page.wait_for_function("Number(document.getElementById('live').dataset.updates || 0) >= 2", timeout=6e4)
    live = page.inner_text("#live")
    assert re.search(r"latency \d+ ms on the server, \d+ ms round trip", live), live
    assert re.search(r"\d+:\d\d: \w+", page.inner_text("#live .history")), live
    genre = page.get_attribute("#live", "data-genre")
    assert genre == LIVE_CLIP[0], live  # the fake microphone plays the classical clip
    shot(page, "live")
    page.click("#live-stop")
    assert page.is_disabled("#live-stop")
    assert wait_until(lambda: any(r["method"] == "WS" and r["status"] == 101 for r in server.access_log()))


def test_live_mode_playing_a_file(page, server, gtzan_flac_dir, tmp_path):
    clip = tmp_path / "rock.wav"
    y = load_audio(gtzan_flac_dir / "rock" / "rock.00000.flac")[: 5 * SAMPLE_RATE]
    buffer = io.BytesIO()
    soundfile.write(buffer, y, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    clip.write_bytes(buffer.getvalue())
    streams = sum(r["method"] == "WS" for r in server.access_log())
    page.set_input_files("#live-file", str(clip))
    page.wait_for_function("Number(document.getElementById('live').dataset.updates || 0) >= 1", timeout=60e3)
    assert "Live: rock.wav" in page.inner_text("#live h3")
    assert re.search(r"latency \d+ ms", page.inner_text("#live"))
    page.wait_for_function("document.querySelector('#live h3').textContent.includes('(ended)')", timeout=60e3)
    # the file has ended, the page sends nothing: the server closes the idle stream, the verdict stays
    assert wait_until(lambda: sum(r["method"] == "WS" for r in server.access_log()) > streams, timeout=30)
    verdict = page.inner_text("#live .status")
    assert "Error" not in verdict and "closed" not in verdict, verdict


def test_token_is_asked_for_and_used(browser, gtzan_flac_dir):
    with ServerProcess(["--workers", "1", "--token", "page-token-7e"], env=child_env()) as guarded:
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(guarded.url + "/")
        tab.wait_for_selector("#token-box:not([hidden])")
        assert "needs a token" in tab.inner_text("#model-line")
        tab.fill("#token", "page-token-7e")
        tab.click("#token-form button")
        tab.wait_for_function("document.getElementById('model-line').textContent.startsWith('Model ')")
        assert tab.is_hidden("#token-box")
        tab.set_input_files("#files", str(gtzan_flac_dir / "pop" / "pop.00000.flac"))
        tab.wait_for_selector("#cards article[data-state=done]", timeout=60_000)
        context.close()
        def api_statuses():
            log = guarded.access_log()
            return [r["status"] for r in log if r["path"].startswith("/v1/") and "/library/" not in r["path"]]

        wait_until(lambda: len(api_statuses()) >= 3)
        assert api_statuses() == [401, 200, 200]  # model (no token), model, predict
        library = [r["status"] for r in guarded.access_log() if r["path"] == "/v1/library/stats"]
        assert library == [404]  # asked with the token, once; no --db
