"""What a request must pass before any work: the token, an upload within limits, and a free slot.

Uploads stream to a temporary file in the service's own folder, named by the server
(only its extension comes from the client, and only when it is a known audio
extension); the file is deleted when the request ends, however it ends. An upload that stalls
or arrives too slowly is cut off (408); a slot is taken only once the upload is in, so clients
still sending hold none (see ``docs/guide/serve-limits.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from genrekit.audio.decode import AUDIO_EXTENSIONS, FFMPEG_EXTENSIONS

CLOSE: dict[str, str] = {"Connection": "close"}
"""Headers of an answer sent before the body was read: the connection cannot be reused."""

TOKEN_ENV = "GENREKIT_TOKEN"
"""Environment variable holding the token when ``--token`` is not given."""

CONTENT_TYPES: dict[str, str] = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/aiff": ".aiff",
    "audio/x-aiff": ".aiff",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/webm": ".webm",
}
"""Extension given to a body whose name has no known audio extension, by its Content-Type."""

_CONTAINER_MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    ".m4a": ((4, b"ftyp"),),
    ".m4b": ((4, b"ftyp"),),
    ".mp4": ((4, b"ftyp"),),
    ".aac": ((0, b"\xff\xf1"), (0, b"\xff\xf9"), (0, b"ADIF"), (0, b"ID3")),
    ".wma": ((0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),),
    ".webm": ((0, b"\x1a\x45\xdf\xa3"),),
    ".mka": ((0, b"\x1a\x45\xdf\xa3"),),
    ".mkv": ((0, b"\x1a\x45\xdf\xa3"),),
    ".ac3": ((0, b"\x0b\x77"),),
    ".amr": ((0, b"#!AMR"),),
    ".ape": ((0, b"MAC "),),
    ".wv": ((0, b"wvpk"),),
}
"""Leading bytes of the containers decoded by ffmpeg: an upload routed to ffmpeg must
start like one, so that no playlist or other text that ffmpeg would follow reaches it."""


def require_token(request: Request) -> None:
    """Check the token of a ``/v1`` call (``Authorization: Bearer TOKEN``).

    Raises
    ------
    HTTPException
        401 when the service has a token and the call does not bring it.
    """
    expected = request.app.state.service.config.token
    if expected is not None and not token_matches(request.headers.get("authorization"), None, expected):
        raise HTTPException(
            401,
            "missing or wrong token: send 'Authorization: Bearer TOKEN'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def token_matches(authorization: str | None, query_token: str | None, expected: str) -> bool:
    """Whether an ``Authorization: Bearer`` header (or, for WebSockets, ``?token=``) holds `expected`."""
    given = query_token
    if authorization is not None and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@contextlib.contextmanager
def work_slot(pool) -> Iterator[None]:
    """Hold one of the service's request slots while work runs (503 with ``Retry-After`` when none is free).

    A slot is taken only once the upload has arrived, so clients still sending (or trickling)
    their bodies hold none.

    Parameters
    ----------
    pool : WorkerPool
        The service's pool.
    """
    from genrekit.serve.pool import QueueFullError

    try:
        pool.admit()
    except QueueFullError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    try:
        yield
    finally:
        pool.release()


@dataclass(frozen=True)
class Upload:
    """An uploaded file on disk.

    Attributes
    ----------
    path : Path
        The temporary file (server-chosen name).
    name : str
        The client's name for it (its base name only), for answers and errors.
    """

    path: Path
    name: str


async def received_upload(request: Request, filename: str | None = None) -> AsyncIterator[Upload]:
    """Stream the request's audio file (multipart ``file`` field or raw body) to a temporary file.

    Parameters
    ----------
    request : Request
        The request.
    filename : str, optional
        Name of a raw body (``?filename=song.mp3``): its extension tells the decoder
        the format; the Content-Type does otherwise.

    Yields
    ------
    Upload
        The file; it is deleted when the request ends.

    Raises
    ------
    HTTPException
        413 over the size limit, 422 for an empty body, a form without a file or without its
        closing boundary, 408 when the body stalls or arrives too slowly (see
        :class:`~genrekit.serve.config.ServeConfig`), 400 when the client goes away mid-upload.
    """
    service = request.app.state.service
    limit = service.config.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            413, f"upload of {int(declared):,} bytes is over this server's limit of {limit:,}"
        )
    with _temporary(service.upload_dir) as path:
        try:
            name, size = await _receive(request, path, service.config, filename)
        except ClientDisconnect:
            raise HTTPException(400, "client disconnected during the upload") from None
        if size == 0:
            raise HTTPException(422, f"{name}: empty upload: no audio data received")
        yield Upload(_with_suffix(path, name, request.headers.get("content-type")), name)


@contextlib.contextmanager
def _temporary(folder: Path) -> Iterator[Path]:
    """Make a new empty file in `folder`, deleted (under whatever name it ends up with) on exit."""
    handle, path = tempfile.mkstemp(dir=folder, prefix="upload-")
    os.close(handle)
    try:
        yield Path(path)
    finally:
        for leftover in Path(folder).glob(Path(path).name + "*"):
            leftover.unlink(missing_ok=True)


def _with_suffix(path: Path, name: str, content_type: str | None) -> Path:
    """Rename the temporary file to carry the audio extension of `name` (or of `content_type`).

    Raises
    ------
    HTTPException
        422 when the extension routes the file to ffmpeg but it does not start like such a container.
    """
    suffix = PurePath(name).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        media = (content_type or "").split(";")[0].strip().lower()
        suffix = CONTENT_TYPES.get(media, "")
    if suffix in FFMPEG_EXTENSIONS and not _looks_like(path, suffix):
        raise HTTPException(422, f"{name}: not audio: its content is not a {suffix} container")
    if not suffix:
        return path
    target = path.with_name(path.name + suffix)
    path.rename(target)
    return target


def _looks_like(path: Path, suffix: str) -> bool:
    """Whether the file starts with the leading bytes of a `suffix` container."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    return any(
        head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_MAGIC.get(suffix, ())
    )


async def _receive(request: Request, path: Path, config, filename: str | None) -> tuple[str, int]:
    """Write the audio of `request` into `path`; return the client's name for it and its size."""
    content_type = request.headers.get("content-type", "")
    media, options = parse_options_header(content_type)
    with open(path, "wb") as out:
        if media == b"multipart/form-data":
            sink = _FormFile(out, options.get(b"boundary", b""))
            await _copy(request, sink.feed, config)
            sink.finish()
            return _base_name(sink.name or "upload"), sink.size
        received = await _copy(request, out.write, config)
        return _base_name(filename or "upload"), received


async def _copy(request: Request, write, config) -> int:
    """Pass the request body (Starlette's ``request.stream()``) to `write` chunk by chunk.

    Raises
    ------
    HTTPException
        413 as soon as the body exceeds the upload limit; 408 when no data comes for
        ``upload_timeout`` seconds, or when, past that time, the body has arrived at less than
        ``min_upload_rate`` bytes per second on average.
    """
    limit, timeout, min_rate = config.max_upload_bytes, config.upload_timeout, config.min_upload_rate
    loop = asyncio.get_running_loop()
    start = loop.time()
    chunks = aiter(request.stream())
    received = 0
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return received
        except TimeoutError:
            raise HTTPException(408, f"upload stalled: no data for {timeout:g} s", CLOSE) from None
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"upload is over this server's limit of {limit:,} bytes")
        elapsed = loop.time() - start
        if elapsed > timeout and received < min_rate * elapsed:
            rate = received / elapsed
            message = f"upload too slow: {rate:,.0f} bytes/s, this server needs at least {min_rate:,.0f}"
            raise HTTPException(408, message, CLOSE)
        write(chunk)


def _base_name(name: str) -> str:
    """Return the last component of a client-given name, without control characters (for answers and logs)."""
    base = PurePath(name.replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable())[:200] or "upload"


class _FormFile:
    """A streaming multipart/form-data parser that writes the one file field into `out`.

    Fields without a file name are ignored; a second file is refused (one file per request); a
    body that ends before the closing boundary is refused (the parser itself does not check that).
    """

    def __init__(self, out, boundary: bytes) -> None:
        if not boundary:
            raise HTTPException(422, "multipart/form-data without a boundary")
        self.out = out
        self.name: str | None = None
        self.size = 0
        self._header_field = b""
        self._header_value = b""
        self._in_file = False
        self._files = 0
        self._complete = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_part_data": self._part_data,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body."""
        try:
            self._parser.write(chunk)
        except HTTPException:
            raise
        except Exception as exc:  # python-multipart raises several parse errors; all mean a bad form
            raise HTTPException(422, f"malformed multipart/form-data body: {exc}") from None

    def finish(self) -> None:
        """Check that the form was complete and held a file."""
        if not self._complete:
            raise HTTPException(
                422, "truncated multipart/form-data body: it ends before its closing boundary"
            )
        if self._files == 0:
            raise HTTPException(422, "the form holds no file: send the audio as a file field named 'file'")

    def _end(self) -> None:
        self._complete = True

    def _part_begin(self) -> None:
        self._in_file = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        field, value = self._header_field.lower(), self._header_value
        self._header_field = self._header_value = b""
        if field != b"content-disposition":
            return
        _, options = parse_options_header(value)
        if b"filename" not in options:
            return
        self._files += 1
        if self._files > 1:
            raise HTTPException(422, "one audio file per request: the form holds more than one file")
        self.name = options[b"filename"].decode("utf-8", errors="replace")
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.out.write(data[start:end])
            self.size += end - start
