"""`genrekit serve`: every endpoint and error of the HTTP API, on a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")

from serve_client import call, files_under, form, partial_upload, post_file, read_response, wait_until

from genrekit.audio.decode import load_audio
from genrekit.audio.features import clip_features
from genrekit.cli import main
from genrekit.core.schema import FEATURE_NAMES, SAMPLE_RATE
from genrekit.serve.config import is_local
from genrekit.serve.process import ServerProcess, child_env

MAX_MB = 3
MAX_SECONDS = 40
TOKEN = "test-token-5d1c"


@pytest.fixture(scope="module")
def tmp_uploads(tmp_path_factory):
    """The server's TMPDIR: every temporary upload must appear, and vanish, here."""
    return tmp_path_factory.mktemp("serve_tmp")


@pytest.fixture(scope="module")
def server(tmp_uploads):
    args = ["--workers", "1", "--max-upload-mb", str(MAX_MB), "--max-seconds", str(MAX_SECONDS)]
    with ServerProcess(args, env=child_env(TMPDIR=str(tmp_uploads))) as srv:
        yield srv
    assert srv.proc.returncode == 0 and srv.log[-1] == "genrekit serve: stopped"
    assert not list(tmp_uploads.iterdir()), "the upload folder outlived the server"


@pytest.fixture(scope="module")
def guarded():
    """A server with a token and room for one request in progress."""
    with ServerProcess(["--workers", "1", "--queue", "1", "--token", TOKEN], env=child_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def clip(gtzan_flac_dir):
    return sorted(gtzan_flac_dir.rglob("*.flac"))[0]


@pytest.fixture(scope="module")
def wav_bytes(clip):
    """The clip as 16-bit WAV bytes."""
    buffer = io.BytesIO()
    soundfile.write(buffer, load_audio(clip), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def no_uploads_left(tmp_uploads) -> bool:
    return wait_until(lambda: not files_under(tmp_uploads), timeout=10)


def test_health_ready_page_and_docs(server):
    assert call(server.url + "/healthz")[:3:2] == (200, {"status": "ok"})
    status, _, ready = call(server.url + "/readyz")
    assert status == 200 and ready["status"] == "ready" and ready["workers"] == 1
    assert ready["requests_in_progress"] == 0 and ready["queue_limit"] == 64
    status, headers, page = call(server.url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and "genrekit" in page
    assert call(server.url + "/docs")[0] == 200
    schema = call(server.url + "/openapi.json")[2]
    assert {"/v1/predict", "/v1/features", "/v1/model"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]


def test_predict_matches_cli_json(server, clip, capsys, tmp_uploads):
    status, _, answer = post_file(server.url + "/v1/predict?top_k=3", clip)
    assert status == 200, answer
    assert main(["predict", str(clip), "--format", "json", "--top-k", "3", "--jobs", "1", "--quiet"]) == 0
    expected = json.loads(capsys.readouterr().out)["files"][0]
    assert set(answer) == set(expected) | {"model"}
    assert answer["file"] == clip.name and answer["model"] == call(server.url + "/v1/model")[2]["id"]
    for key in ("genre", "best_guess", "confident", "familiar", "top_k"):
        assert answer[key] == expected[key], key
    for key in ("probability", "novelty", "duration"):
        assert answer[key] == pytest.approx(expected[key]), key
    assert answer["probabilities"] == pytest.approx(expected["probabilities"])
    assert [w["probabilities"] for w in answer["windows"]] == [
        pytest.approx(w["probabilities"]) for w in expected["windows"]
    ]
    assert no_uploads_left(tmp_uploads)


def test_predict_raw_body_and_options(server, wav_bytes):
    url = server.url + "/v1/predict?filename=song.wav&top_k=1&min_confidence=0.999"
    status, _, answer = call(url, "POST", wav_bytes, {"Content-Type": "application/octet-stream"})
    assert status == 200, answer
    assert answer["file"] == "song.wav" and len(answer["top_k"]) == 1
    assert answer["genre"] == "uncertain" and answer["confident"] is False
    assert answer["best_guess"] == answer["top_k"][0]["genre"]
    assert math.isclose(sum(answer["probabilities"].values()), 1.0, rel_tol=1e-6)
    by_type = call(server.url + "/v1/predict", "POST", wav_bytes, {"Content-Type": "audio/wav"})
    assert by_type[0] == 200 and by_type[2]["probabilities"] == pytest.approx(answer["probabilities"])


def test_features_whole_and_segments(server, clip):
    status, _, answer = post_file(server.url + "/v1/features?segment_seconds=3", clip)
    assert status == 200, answer
    y = load_audio(clip)
    assert answer["samples"] == len(y) and list(answer["features"]) == list(FEATURE_NAMES)
    assert list(answer["features"].values()) == pytest.approx(clip_features(y).tolist())
    assert len(answer["segments"]) == 10
    third = answer["segments"][3]
    start, end = round(third["start"] * SAMPLE_RATE), round(third["end"] * SAMPLE_RATE)
    assert end - start == 66149
    assert list(third["features"].values()) == pytest.approx(clip_features(y[start:end]).tolist())
    assert "segments" not in post_file(server.url + "/v1/features", clip)[2]


def test_model_metadata(server):
    import genrekit
    from genrekit.library.catalogue import model_id

    model = genrekit.load_model()
    status, _, info = call(server.url + "/v1/model")
    assert status == 200
    assert info["classes"] == list(model.classes_)
    assert info["table"]["sha256"] == model.metadata["data"]["sha256"]
    assert info["metrics"] == model.metadata["metrics"]
    assert info["id"] == model_id(model.metadata)  # the id of the catalogue and `genrekit model info`
    assert info["weights_sha256"] == model.metadata["weights"]["sha256"]
    assert info["server_version"] == genrekit.__version__


def test_tags_are_off_without_serve_tags(server, clip, wav_bytes):
    assert call(server.url + "/v1/model")[2]["taggers"] == []
    sock = partial_upload(server.url + "/v1/tags?filename=a.wav", len(wav_bytes), wav_bytes[:1000])
    try:
        reply = read_response(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 404") and b"genrekit serve --tags" in reply  # before the upload
    status, _, answer = post_file(server.url + "/v1/predict?tags=msd", clip)
    assert status == 422 and answer["error"].startswith("invalid request: tags: tags are off"), answer


def _assert_error(answer, status: int, expected: int, *words: str) -> None:
    assert status == expected, answer
    assert set(answer) == {"error"}, answer
    assert "Traceback" not in answer["error"]
    for word in words:
        assert word in answer["error"], answer


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("notes.txt", b"these are not the samples you are looking for\n" * 20, ["notes.txt", "decode"]),
        ("fake.m4a", b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", ["fake.m4a", "not audio"]),
        ("tiny.wav", None, ["tiny.wav", "short"]),
    ],
)
def test_bad_audio_is_422(server, tmp_uploads, name, data, words):
    if data is None:  # 1 s of audio: decodable, too short to classify
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, format="WAV")
        data = buffer.getvalue()
    body, headers = form(name, data)
    status, _, answer = call(server.url + "/v1/predict", "POST", body, headers)
    _assert_error(answer, status, 422, *words)
    assert no_uploads_left(tmp_uploads)


def test_truncated_and_empty_are_422(server, wav_bytes, tmp_uploads):
    body, headers = form("cut.wav", wav_bytes[: len(wav_bytes) // 3])
    status, _, answer = call(server.url + "/v1/predict", "POST", body, headers)
    _assert_error(answer, status, 422, "cut.wav")
    status, _, answer = call(server.url + "/v1/features?filename=void.flac", "POST", b"")
    _assert_error(answer, status, 422, "void.flac", "empty")
    body, headers = form("open.wav", wav_bytes)
    body = body[: body.rindex(b"\r\n--")]  # the file, then no closing boundary
    status, _, answer = call(server.url + "/v1/predict", "POST", body, headers)
    _assert_error(answer, status, 422, "closing boundary")
    body, headers = form("x", b"", field="other")
    body = body.replace(b'; filename="x"', b"")  # a form field, no file
    status, _, answer = call(server.url + "/v1/predict", "POST", body, headers)
    _assert_error(answer, status, 422, "no file")
    assert no_uploads_left(tmp_uploads)


def test_bad_parameters_are_422(server, clip):
    queries = ("top_k=0", "top_k=many", "min_confidence=2", "segment_seconds=-1", "segment_seconds=1e-5")
    for query in (*queries, "segment_seconds=4e-5", "segment_seconds=1e-300", "segment_seconds=nan"):
        endpoint = "/v1/features" if "segment" in query else "/v1/predict"
        status, _, answer = post_file(f"{server.url}{endpoint}?{query}", clip)
        _assert_error(answer, status, 422, query.split("=")[0])


def test_limits_are_413(server, wav_bytes, tmp_uploads):
    big = b"\0" * (MAX_MB * 1_000_000 + 1)
    status, _, answer = call(server.url + "/v1/predict?filename=big.wav", "POST", big)
    _assert_error(answer, status, 413, "limit")

    def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(MAX_MB * 4 + 1):
            yield b"\0" * 250_000

    status, _, answer = call(server.url + "/v1/predict?filename=big.wav", "POST", chunked())
    _assert_error(answer, status, 413, "limit")
    y = np.tile(soundfile.read(io.BytesIO(wav_bytes), dtype="int16")[0], 2)[: (MAX_SECONDS + 5) * SAMPLE_RATE]
    assert len(y) / SAMPLE_RATE > MAX_SECONDS  # 45 s, 2 MB: within the size limit, over the duration limit
    buffer = io.BytesIO()
    soundfile.write(buffer, y, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    status, _, answer = call(server.url + "/v1/predict?filename=long.wav", "POST", buffer.getvalue())
    _assert_error(answer, status, 413, "long.wav", f"{MAX_SECONDS} s")
    assert no_uploads_left(tmp_uploads)


def test_disconnect_mid_upload_leaves_no_file(server, wav_bytes, tmp_uploads):
    sock = partial_upload(server.url + "/v1/predict?filename=gone.wav", len(wav_bytes), wav_bytes[:400_000])
    assert wait_until(lambda: len(files_under(tmp_uploads)) == 1)  # the upload is on disk meanwhile
    sock.close()
    assert no_uploads_left(tmp_uploads)
    assert call(server.url + "/healthz")[0] == 200


def test_slow_upload_does_not_block_others(server, clip, wav_bytes):
    sock = partial_upload(server.url + "/v1/predict?filename=slow.wav", len(wav_bytes), wav_bytes[:1000])
    try:
        status, _, answer = post_file(server.url + "/v1/predict", clip)
        assert status == 200 and answer["file"] == clip.name
        sock.sendall(wav_bytes[1000:])
        reply = sock.recv(65536).decode()
        assert reply.startswith("HTTP/1.1 200"), reply[:200]
    finally:
        sock.close()


def test_access_log_has_one_line_per_request(server):
    call(server.url + "/healthz?probe=1")
    assert wait_until(lambda: any(r["path"] == "/healthz" for r in server.access_log()))
    records = server.access_log()
    assert all({"method", "path", "status", "bytes", "ms"} <= set(r) for r in records)
    statuses = {(r["path"], r["status"]) for r in records}
    assert ("/v1/predict", 200) in statuses and ("/v1/predict", 422) in statuses
    assert ("/v1/predict", 413) in statuses and ("/healthz", 200) in statuses
    assert not any("Traceback" in line for line in server.log)


def test_token_required_on_api_calls(guarded, clip):
    assert call(guarded.url + "/healthz")[0] == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, response_headers, answer = call(guarded.url + "/v1/model", headers=headers)
        _assert_error(answer, status, 401, "token")
        assert response_headers["www-authenticate"] == "Bearer"
    assert post_file(guarded.url + "/v1/predict", clip)[0] == 401
    assert call(guarded.url + "/v1/model", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    status, _, answer = post_file(guarded.url + "/v1/predict", clip, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and answer["file"] == clip.name


def test_uploads_still_arriving_hold_no_slot(guarded, clip, wav_bytes):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = guarded.url + "/v1/predict?filename=hold.wav"
    socks = [partial_upload(url, len(wav_bytes), wav_bytes[:1000], auth) for _ in range(3)]
    try:  # three uploads under way, one slot: it is still free for a request whose upload is in
        status, _, answer = post_file(guarded.url + "/v1/predict", clip, auth)
        assert status == 200 and answer["file"] == clip.name
        assert call(guarded.url + "/readyz")[2]["requests_in_progress"] == 0
    finally:
        for sock in socks:
            sock.close()


def test_full_queue_is_503_with_retry_after(guarded, clip, wav_bytes):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    y = np.tile(soundfile.read(io.BytesIO(wav_bytes), dtype="int16")[0], 20)  # 10 min: seconds of work
    buffer = io.BytesIO()
    soundfile.write(buffer, y, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    url = guarded.url + "/v1/predict?filename=long.wav"
    with ThreadPoolExecutor(1) as background:
        first = background.submit(call, url, "POST", buffer.getvalue(), auth)
        assert wait_until(lambda: call(guarded.url + "/readyz")[2]["requests_in_progress"] == 1, timeout=30)
        status, headers, answer = post_file(guarded.url + "/v1/predict", clip, auth)
        _assert_error(answer, status, 503, "busy")
        assert int(headers["retry-after"]) >= 1
        assert first.result()[0] == 200
    assert post_file(guarded.url + "/v1/predict", clip, auth)[0] == 200


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
def test_a_killed_worker_is_replaced(server, clip):
    workers = [pid for pid in child_pids(server.proc.pid) if b"spawn_main" in cmdline(pid)]
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    status, _, answer = post_file(server.url + "/v1/predict", clip)
    assert status == 200 and answer["file"] == clip.name
    assert call(server.url + "/readyz")[0] == 200


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "curl -F file=@song.mp3" in out and "--max-upload-mb" in out and "GENREKIT_TOKEN" in out


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1.invalid"])
def test_public_address_needs_a_token(monkeypatch, capsys, host):
    monkeypatch.delenv("GENREKIT_TOKEN", raising=False)
    assert main(["serve", "--host", host, "--port", "0"]) == 2
    assert "token" in capsys.readouterr().err


def test_local_means_every_address_is_loopback():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_local(host), host
    for host in ("0.0.0.0", "::", "127.0.0.1.invalid", "127.example.invalid", "192.0.2.1"):
        assert not is_local(host), host  # a name is resolved, never judged by its spelling


def test_bad_model_or_busy_port_is_a_usage_error(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path), "--port", "0"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
