"""Live mode of `genrekit serve`: the WebSocket /v1/stream driven by a plain Python client."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'genrekit[serve]'")
from serve_client import call, files_under, post_file, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from genrekit.audio.decode import load_audio
from genrekit.core.schema import SAMPLE_RATE
from genrekit.serve.process import ServerProcess, child_env

TOKEN = "stream-token-91ab"


@pytest.fixture(scope="module")
def tmp_uploads(tmp_path_factory):
    return tmp_path_factory.mktemp("stream_tmp")


@pytest.fixture(scope="module")
def server(tmp_uploads):
    env = child_env(TMPDIR=str(tmp_uploads), GENREKIT_TOKEN=TOKEN)
    with ServerProcess(["--workers", "1", "--max-streams", "2"], env=env) as srv:
        yield srv


def ws_url(server, token: str | None = TOKEN) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream" + (f"?token={token}" if token else "")


def test_stream_in_lockstep_matches_the_file(server, gtzan_flac_dir, tmp_uploads):
    clip = sorted(gtzan_flac_dir.rglob("*.flac"))[1]
    y = load_audio(clip)
    step = 3 * SAMPLE_RATE
    updates = []
    with connect(ws_url(server), open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": SAMPLE_RATE, "encoding": "pcm_f32le", "top_k": 3}))
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready" and ready["window_seconds"] == 30 and ready["update_seconds"] == 3
        for start in range(0, 10 * step, step):  # 3 s per message, one update each: 3, 6, ..., 30 s
            ws.send(y[start : start + step].astype("<f4").tobytes())
            updates.append(json.loads(ws.recv(timeout=60)))
    assert [u["type"] for u in updates] == ["update"] * 10, updates[-1]
    assert [u["audio_seconds"] for u in updates] == pytest.approx([3.0 * k for k in range(1, 11)])
    assert [u["window_seconds"] for u in updates] == pytest.approx([3.0 * k for k in range(1, 11)])
    assert all(u["latency_ms"] > 0 and len(u["top_k"]) == 3 for u in updates)
    status, _, whole = post_file(server.url + "/v1/predict", clip, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    last = updates[-1]  # the first 30.000 s of a 30.013-s clip: the same genre and nearly the same numbers
    assert last["genre"] == whole["genre"] and last["best_guess"] == whole["best_guess"]
    expected = list(whole["probabilities"].values())
    assert list(last["probabilities"].values()) == pytest.approx(expected, abs=0.02)
    assert wait_until(lambda: not files_under(tmp_uploads))


def test_stream_s16_at_another_rate_is_resampled(server, gtzan_flac_dir):
    y = load_audio(sorted(gtzan_flac_dir.rglob("*.flac"))[2], sr=44100)[: 4 * 44100]
    with connect(ws_url(server), open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": 44100, "update_seconds": 1}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
        for chunk in np.array_split(pcm, 8):  # 0.5-s messages, sent at once
            ws.send(chunk.tobytes())
        update = json.loads(ws.recv(timeout=60))
    assert update["type"] == "update" and update["audio_seconds"] >= 3.0
    assert update["duration"] == pytest.approx(update["window_seconds"], abs=1e-3)


@pytest.mark.parametrize(
    ("first", "then", "words"),
    [
        ("not json", None, "first message"),
        (json.dumps({"sample_rate": 22050, "encoding": "mp3"}), None, "unknown encoding"),
        (json.dumps({"sample_rate": 5}), None, "sample_rate"),
        (json.dumps({"sample_rate": 22050}), b"\x01\x02\x03", "not whole"),
        (json.dumps({"sample_rate": 22050}), "text instead of audio", "binary"),
        (b'{"sample_rate": 22050}', None, "must be text"),
        ('{"sample_rate": 1e999}', None, "first message"),
        ('{"sample_rate": 22050, "top_k": 1e999}', None, "first message"),
        ('{"sample_rate": 22050, "update_seconds": NaN}', None, "update_seconds"),
    ],
)
def test_protocol_errors_close_the_stream(server, first, then, words):
    with connect(ws_url(server), open_timeout=30) as ws:
        ws.send(first)
        if then is not None:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(then)
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error" and words in error["error"], error
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd.code == 1003


def test_stream_needs_the_token(server):
    for url in (ws_url(server, None), ws_url(server, "wrong")):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=30)
        assert refused.value.response.status_code == 401
    with connect(ws_url(server), open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"


def test_too_many_streams_are_refused(server):
    assert wait_until(lambda: call(server.url + "/readyz")[2]["live_streams"] == 0)  # earlier tests' are gone
    with connect(ws_url(server), open_timeout=30), connect(ws_url(server), open_timeout=30):
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server), open_timeout=30)
        assert refused.value.response.status_code == 503


def test_server_log_is_clean(server):
    assert wait_until(lambda: any(r["method"] == "WS" and r["status"] == 101 for r in server.access_log()))
    assert not [line for line in server.log if "Traceback" in line or "never retrieved" in line]
