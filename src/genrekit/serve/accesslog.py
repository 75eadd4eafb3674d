"""One structured (JSON) log line per request: method, path, status, bytes, milliseconds."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = logging.getLogger("genrekit.serve.access")


class AccessLog:
    """ASGI middleware that logs every HTTP request and WebSocket connection when it ends.

    The line is a JSON object: ``time``, ``client``, ``method`` (``WS`` for a WebSocket),
    ``path`` (without the query string, which may hold a token), ``status``, ``bytes``
    (response body, or WebSocket messages sent), ``bytes_in`` (request body, or messages
    received) and ``ms`` (wall time). A request whose client went away before an answer
    is logged with status 499; one that failed with an unhandled exception before any answer
    is logged with status 500, the answer Starlette's outermost middleware then sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then log its line."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        record = {"status": 499, "bytes": 0, "bytes_in": 0}

        async def counting_receive() -> Message:
            message = await receive()
            record["bytes_in"] += len(
                message.get("body") or message.get("bytes") or message.get("text") or b""
            )
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                record["status"] = message["status"]
            elif kind == "websocket.accept":
                record["status"] = 101
            elif kind == "websocket.close" and record["status"] == 499:
                record["status"] = 403
            elif kind == "websocket.http.response.start":
                record["status"] = message["status"]
            record["bytes"] += len(message.get("body") or message.get("bytes") or message.get("text") or b"")
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:
            if record["status"] == 499:
                record["status"] = 500
            raise
        finally:
            LOGGER.info(
                json.dumps(
                    {
                        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                        "client": (scope.get("client") or ("-",))[0],
                        "method": scope.get("method", "WS"),
                        "path": scope["path"],
                        **record,
                        "ms": round((time.perf_counter() - start) * 1000, 1),
                    }
                )
            )
