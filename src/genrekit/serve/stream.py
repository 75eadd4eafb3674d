"""Live mode: audio sent in chunks over a WebSocket, the rolling genre of the last 30 s sent back.

Protocol of ``/v1/stream`` (usable by any client, not only the page):

1. The client opens the WebSocket (with a token: ``?token=TOKEN`` or an
   ``Authorization: Bearer`` header) and sends one text message, JSON:
   ``{"sample_rate": 22050, "encoding": "pcm_s16le"}``; ``encoding`` is
   ``pcm_s16le`` (default) or ``pcm_f32le``; optional ``update_seconds`` (1 to 30,
   default 3), ``min_confidence``, ``top_k``.
2. The server answers ``{"type": "ready", "window_seconds": 30, "update_seconds": ...}``.
3. The client sends binary messages of mono PCM samples in that encoding.
4. Once 3 s of audio have arrived, and then every ``update_seconds`` of audio, the
   server classifies the last 30 s (as a file upload would be) and sends
   ``{"type": "update", "audio_seconds", "window_seconds", "latency_ms", ...}`` plus
   the fields of a ``/v1/predict`` answer. ``audio_seconds`` is how much audio had
   arrived when the update was due; ``latency_ms`` is the time from then to the
   update being sent. One update runs at a time per connection; audio arriving
   meanwhile is included in the next one.
5. A bad message gets ``{"type": "error", "error": ...}`` and the connection closes
   (code 1003 for bad data, 1008 for a bad token, 1013 when the server has too many streams).
6. A client that sends no first message within ``stream_hello_timeout`` seconds, or no audio
   for ``stream_idle_timeout`` seconds while no update is running, gets such an error message
   and the connection closes with code 1008 (see :class:`~genrekit.serve.config.ServeConfig`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from genrekit.audio.window import WINDOW_SECONDS
from genrekit.core.errors import GenrekitError
from genrekit.serve import work
from genrekit.serve.limits import token_matches
from genrekit.serve.pool import WorkerDiedError

router = APIRouter()

ENCODINGS: dict[str, tuple[str, float]] = {"pcm_s16le": ("<i2", 32768.0), "pcm_f32le": ("<f4", 1.0)}
"""Sample encodings: NumPy dtype and the divisor that maps them to [-1, 1]."""

FIRST_UPDATE_SECONDS = 3.0
"""Audio needed before the first update: the shortest clip genrekit classifies (one 3-s table segment)."""

MAX_MESSAGE_SECONDS = 10.0
"""Longest audio one binary message may hold."""


GONE = (WebSocketDisconnect, RuntimeError, OSError)
"""What sending raises once the client has gone (Starlette, the ASGI server)."""


class StreamError(ValueError):
    """A client broke the protocol; the message says how.

    Parameters
    ----------
    message : str
        What went wrong, sent to the client.
    code : int
        The WebSocket close code: 1003 (bad data) or 1008 (the server's time limits).
    """

    def __init__(self, message: str, code: int = 1003) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Settings:
    """What the client's first message asked for."""

    sample_rate: int
    dtype: str
    scale: float
    update_seconds: float
    min_confidence: float
    top_k: int


@dataclass
class LiveBuffer:
    """The last `window_seconds` of a stream, and when the next update is due.

    Attributes
    ----------
    settings : Settings
        The stream's settings.
    samples : ndarray of float32
        At most 30 s of the latest audio.
    received : int
        Samples received since the stream began.
    due : int
        Received-sample count at which the next update is due.
    due_since : float or None
        When the pending update became due (``time.perf_counter()``), None if none is.
    last_activity : float
        When audio last came in or an update (or error) last went out (``time.perf_counter()``):
        the client's silence is counted from then.
    """

    settings: Settings
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    received: int = 0
    due: int = 0
    due_since: float | None = None
    last_activity: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.due = round(FIRST_UPDATE_SECONDS * self.settings.sample_rate)

    def add(self, data: bytes) -> None:
        """Append one binary message of samples; note when an update falls due."""
        s = self.settings
        if len(data) % np.dtype(s.dtype).itemsize:
            raise StreamError(f"a binary message of {len(data)} bytes is not whole {s.dtype} samples")
        chunk = np.frombuffer(data, dtype=s.dtype).astype(np.float32) / s.scale
        if len(chunk) > MAX_MESSAGE_SECONDS * s.sample_rate:
            raise StreamError(f"a binary message holds more than {MAX_MESSAGE_SECONDS:g} s of audio")
        if not np.all(np.isfinite(chunk)):
            raise StreamError("NaN or Inf sample in a binary message")
        keep = round(WINDOW_SECONDS * s.sample_rate)
        self.samples = np.concatenate([self.samples, chunk])[-keep:]
        self.received += len(chunk)
        if self.received >= self.due and self.due_since is None:
            self.due_since = time.perf_counter()

    def take(self) -> tuple[np.ndarray, int, float]:
        """Return the window to classify, the received count and when it fell due; schedule the next."""
        due_since, self.due_since = self.due_since, None
        self.due = self.received + round(self.settings.update_seconds * self.settings.sample_rate)
        return self.samples.copy(), self.received, due_since


def parse_settings(text: str, default_min_confidence: float) -> Settings:
    """Read the client's first message.

    Raises
    ------
    StreamError
        If it is not the JSON object described in the module docstring.
    """
    try:
        hello = json.loads(text)
        encoding = str(hello.get("encoding", "pcm_s16le"))
        rate = int(hello["sample_rate"])
        update = float(hello.get("update_seconds", 3.0))
        min_confidence = float(hello.get("min_confidence", default_min_confidence))
        top_k = int(hello.get("top_k", 2))
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise StreamError(
            f'the first message must be JSON like {{"sample_rate": 22050, "encoding": "pcm_s16le"}} ({exc})'
        ) from None
    if encoding not in ENCODINGS:
        raise StreamError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if not 8000 <= rate <= 192_000:
        raise StreamError(f"sample_rate must be 8000 to 192000 Hz, got {rate}")
    if not 1 <= update <= WINDOW_SECONDS:
        raise StreamError(f"update_seconds must be 1 to {WINDOW_SECONDS:g}, got {update}")
    if not 0 <= min_confidence <= 1 or not 1 <= top_k <= 100:
        raise StreamError("min_confidence must be 0 to 1 and top_k 1 to 100")
    dtype, scale = ENCODINGS[encoding]
    return Settings(rate, dtype, scale, update, min_confidence, top_k)


@router.websocket("/v1/stream")
async def live(websocket: WebSocket) -> None:
    """Serve the live mode (see the module docstring)."""
    service = websocket.app.state.service
    token = service.config.token
    if token is not None and not token_matches(
        websocket.headers.get("authorization"), websocket.query_params.get("token"), token
    ):
        await _deny(websocket, 401, "missing or wrong token: connect with ?token=TOKEN", 1008)
        return
    if service.streams >= service.config.max_streams:
        await _deny(websocket, 503, "too many live streams on this server; try again later", 1013)
        return
    service.streams += 1
    try:
        await websocket.accept()
        await _serve_stream(websocket, service)
    except WebSocketDisconnect:
        pass
    except StreamError as exc:
        with contextlib.suppress(*GONE):
            await websocket.send_json({"type": "error", "error": str(exc)})
            await websocket.close(code=exc.code, reason=str(exc)[:120])
    finally:
        service.streams -= 1


async def _deny(websocket: WebSocket, status: int, message: str, code: int) -> None:
    """Refuse a connection: an HTTP answer where the server supports it, else a close code."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"error": message}, status_code=status))
    else:
        await websocket.close(code=code, reason=message)


async def _serve_stream(websocket: WebSocket, service) -> None:
    """Read the settings, then audio; classify in the background as updates fall due."""
    config = service.config
    try:
        hello = await _receive(websocket, config.stream_hello_timeout)
    except TimeoutError:
        raise StreamError(f"no first message within {config.stream_hello_timeout:g} s", 1008) from None
    if hello is None:
        return
    if hello.get("text") is None:
        raise StreamError('the first message must be text: JSON like {"sample_rate": 22050}')
    settings = parse_settings(hello["text"], config.min_confidence)
    buffer = LiveBuffer(settings)
    await websocket.send_json(
        {
            "type": "ready",
            "window_seconds": WINDOW_SECONDS,
            "update_seconds": settings.update_seconds,
            "sample_rate": settings.sample_rate,
            "model": service.model["id"],
        }
    )
    updating: asyncio.Task | None = None
    try:
        while True:
            message = await _next_audio(websocket, buffer, updating, config.stream_idle_timeout)
            if message is None:
                return
            buffer.add(message["bytes"])
            buffer.last_activity = time.perf_counter()
            if buffer.due_since is not None and (updating is None or updating.done()):
                updating = asyncio.create_task(_updates(websocket, service, buffer))
    finally:
        if updating is not None:
            updating.cancel()


async def _next_audio(
    websocket: WebSocket, buffer: LiveBuffer, updating: asyncio.Task | None, idle: float
) -> dict | None:
    """Return the client's next binary message, or None when it has gone.

    The client may stay silent while an update runs (it may be waiting for it), and for `idle`
    seconds after its last message or the last update, whichever came later.

    Raises
    ------
    StreamError
        For a text message (code 1003), or after `idle` seconds of silence (code 1008).
    """
    while True:
        busy = updating is not None and not updating.done()
        wait = idle if busy else idle - (time.perf_counter() - buffer.last_activity)
        try:
            message = await _receive(websocket, wait)
            break
        except TimeoutError:
            if not busy:
                raise StreamError(f"no audio for {idle:g} s", 1008) from None
    if message is not None and message.get("bytes") is None:
        raise StreamError("after the first message, send audio as binary messages")
    return message


async def _receive(websocket: WebSocket, timeout: float) -> dict | None:
    """Return the client's next message within `timeout` seconds, or None when it has gone.

    Raises
    ------
    TimeoutError
        When nothing came in time.
    """
    message = await asyncio.wait_for(websocket.receive(), max(timeout, 0.0))
    return None if message["type"] == "websocket.disconnect" else message


async def _updates(websocket: WebSocket, service, buffer: LiveBuffer) -> None:
    """Send updates while they are due (one at a time for this connection)."""
    s = buffer.settings
    while buffer.due_since is not None:
        samples, received, due_since = buffer.take()
        try:
            record = await service.pool.run(
                work.live_task, samples, s.sample_rate, str(service.upload_dir), s.min_confidence, s.top_k
            )
        except (GenrekitError, WorkerDiedError) as exc:
            message = {"type": "error", "error": str(exc), "audio_seconds": received / s.sample_rate}
        else:
            message = {
                "type": "update",
                "audio_seconds": received / s.sample_rate,
                "window_seconds": len(samples) / s.sample_rate,
                "latency_ms": round((time.perf_counter() - due_since) * 1000, 1),
                **record,
                "model": service.model["id"],
            }
        try:
            await websocket.send_json(message)
        except GONE:
            return
        buffer.last_activity = time.perf_counter()
