"""`genrekit serve --tags`: POST /v1/tags, /v1/predict?tags= and the page's tags, on one real server.

One uvicorn process on 127.0.0.1 (with a token, so the page test also passes the token box) serves
every test here; the taggers' weights come from the musicnn wheel into the session's cache, which
the server inherits (``GENREKIT_TAGGER_DIR``). The clips are 6-s excerpts (two tagger patches).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")

from serve_client import call, files_under, form, post_file, wait_until

from genrekit.audio.decode import load_audio
from genrekit.core.schema import SAMPLE_RATE
from genrekit.serve.process import ServerProcess, child_env
from genrekit.tagger.model import Tagger, tag_file, tags_record

TOKEN = "tags-3f9b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_SECONDS = 20
ATOL = 1e-4
"""Tag probabilities of /v1/predict?tags= against /v1/tags (one more resampling; both rounded to 4 digits)."""

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "serve"


@pytest.fixture(scope="module")
def taggers(tagger_cache: Path, musicnn_wheel: Path) -> list[Tagger]:
    """Both taggers, their weights read from the wheel into the session's cache (the server's too)."""
    return [Tagger("msd", musicnn_wheel), Tagger("mtt", musicnn_wheel)]


@pytest.fixture(scope="module")
def tmp_uploads(tmp_path_factory):
    return tmp_path_factory.mktemp("tags_tmp")


@pytest.fixture(scope="module")
def server(taggers, tmp_uploads):
    args = ["--workers", "1", "--tags", "--token", TOKEN, "--max-seconds", str(MAX_SECONDS)]
    with ServerProcess(args, env=child_env(TMPDIR=str(tmp_uploads))) as srv:
        yield srv
    assert srv.proc.returncode == 0 and not [line for line in srv.log if "Traceback" in line]


@pytest.fixture(scope="module")
def excerpt(gtzan_flac_dir, tmp_path_factory) -> Path:
    """Seconds 5 to 11 of GTZAN's jazz.00000 as a WAV file."""
    y = load_audio(gtzan_flac_dir / "jazz" / "jazz.00000.flac")[5 * SAMPLE_RATE : 11 * SAMPLE_RATE]
    path = tmp_path_factory.mktemp("tags_clips") / "jazz-excerpt.wav"
    soundfile.write(path, y, SAMPLE_RATE, subtype="PCM_16")
    return path


def test_tags_answer_the_record_of_genrekit_tags(server, taggers, excerpt):
    status, _, answer = post_file(server.url + "/v1/tags?tagger=mtt,msd&top=3", excerpt, AUTH)
    assert status == 200, answer
    results = tag_file(excerpt, taggers)
    assert answer == tags_record(excerpt.name, [results["mtt"], results["msd"]], 3)  # in the asked order
    assert "jazz" in [t["tag"] for t in answer["tags"] if t["tagger"] == "msd"]
    default = post_file(server.url + "/v1/tags", excerpt, AUTH)[2]
    assert [t["tagger"] for t in default["tags"]] == ["msd"] * 5  # msd, top 5: as `genrekit tags`


def test_predict_with_tags_from_the_same_upload(server, excerpt):
    assert call(server.url + "/v1/model", headers=AUTH)[2]["taggers"] == ["msd", "mtt"]
    status, _, answer = post_file(server.url + "/v1/predict?tags=msd&top_tags=2", excerpt, AUTH)
    assert status == 200, answer
    tags = post_file(server.url + "/v1/tags?top=2", excerpt, AUTH)[2]["tags"]
    assert [t["tag"] for t in answer["deep_tags"]] == [t["tag"] for t in tags]
    assert answer["deep_tags"][0]["probability"] == pytest.approx(tags[0]["probability"], abs=ATOL)
    assert "deep_tags" not in post_file(server.url + "/v1/predict", excerpt, AUTH)[2]
    schema = call(server.url + "/openapi.json")[2]
    answer_schema = schema["paths"]["/v1/tags"]["post"]["responses"]["200"]["content"]["application/json"]
    assert answer_schema["schema"]["$ref"].endswith("/TagsAnswer")


def test_bad_requests_get_4xx_naming_them_and_the_service_lives(server, gtzan_flac_dir, tmp_uploads, excerpt):
    body, headers = form("notes.wav", b"RIFF\x00\x00\x00\x00WAVE not really audio" * 10)
    status, _, answer = call(server.url + "/v1/tags", "POST", body, {**headers, **AUTH})
    assert status == 422 and "notes.wav" in answer["error"] and str(tmp_uploads) not in answer["error"]
    empty = io.BytesIO()
    soundfile.write(empty, np.zeros(0, np.float32), SAMPLE_RATE, format="WAV")
    body, headers = form("empty.wav", empty.getvalue())
    status, _, answer = call(server.url + "/v1/tags", "POST", body, {**headers, **AUTH})
    assert status == 422 and "empty.wav" in answer["error"], answer
    status, _, answer = post_file(server.url + "/v1/tags", gtzan_flac_dir / "rock" / "rock.00000.flac", AUTH)
    assert status == 413 and "rock.00000.flac" in answer["error"], answer
    assert f"limit of {MAX_SECONDS} s" in answer["error"]  # refused before decoding (30 s > 20 s)
    bad_queries = [("tagger=msd,nope", "tagger: unknown tagger nope"), ("top=0", "top"), ("top=x", "top")]
    for query, word in bad_queries:
        status, _, answer = post_file(server.url + f"/v1/tags?{query}", excerpt, AUTH)
        assert status == 422 and word in answer["error"], answer
    status, _, answer = post_file(server.url + "/v1/predict?tags=mtt,vgg", excerpt, AUTH)
    assert status == 422 and "tags: unknown tagger vgg" in answer["error"]
    assert post_file(server.url + "/v1/tags", excerpt)[0] == 401  # the token guards /v1/tags too
    assert call(server.url + "/readyz")[0] == 200  # still serving
    assert post_file(server.url + "/v1/tags", excerpt, AUTH)[0] == 200
    assert wait_until(lambda: not files_under(tmp_uploads), timeout=10)


@pytest.mark.browser
def test_page_shows_the_tags_under_the_verdict(server, excerpt):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run does)")
    expected = post_file(server.url + "/v1/tags?tagger=msd,mtt&top=5", excerpt, AUTH)[2]["tags"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_function("document.getElementById('model-line').textContent.startsWith('Model ')")
        page.set_input_files("#files", str(excerpt))
        page.wait_for_selector("#cards article[data-state=done]", timeout=60_000)
        after_verdict = page.eval_on_selector("#cards .verdict", "e => e.nextElementSibling.className")
        titles = page.locator("#cards .tags dt").all_inner_texts()
        lines = page.locator("#cards .tags dd").all_inner_texts()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tags.png"), full_page=True)
        browser.close()
    assert not errors, errors
    assert after_verdict == "tags"
    assert titles == ["Tags (Million Song Dataset)", "Tags (MagnaTagATune)"]
    for tagger, line in zip(("msd", "mtt"), lines, strict=True):
        top = next(t for t in expected if t["tagger"] == tagger)
        assert line.startswith(f"{top['tag']} ") and len(line.split(", ")) == 5
