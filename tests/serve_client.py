"""HTTP helpers of the serve tests (standard library only; traffic to 127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout=60):
    """Send one request; return (status, headers, parsed JSON or text)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        data = answer.read()
        kind = answer.getheader("content-type", "")
        payload = json.loads(data) if kind.startswith("application/json") else data.decode(errors="replace")
        return answer.status, dict(answer.getheaders()), payload
    finally:
        conn.close()


def form(filename: str, data: bytes, field: str = "file") -> tuple[bytes, dict]:
    """A multipart/form-data body holding one file; returns (body, headers)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_file(url: str, path: Path, headers: dict | None = None):
    """POST `path` as a multipart upload."""
    body, form_headers = form(path.name, path.read_bytes())
    return call(url, "POST", body, {**form_headers, **(headers or {})})


def partial_upload(url: str, declared: int, sent: bytes, headers: dict | None = None) -> socket.socket:
    """Start a raw upload of `declared` bytes on a new connection, sending only `sent`; return the socket."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n{extra}\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response from `sock`: its head and the body its Content-Length announces (30 s at most).

    A response may arrive in several TCP segments (the head first): one ``recv`` is not enough.
    """
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while match and len(body) < int(match.group(1)) and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def files_under(folder: Path) -> list[Path]:
    """Every file (not folder) below `folder`."""
    return [p for p in folder.rglob("*") if p.is_file()]


def wait_until(condition, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants now (Linux: read from /proc)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        with contextlib.suppress(OSError):
            pending += [int(p) for p in children.read_text().split()]
    return tree


def peak_rss_mb(pids: list[int]) -> float:
    """The sum of the peak resident memory (VmHWM) of `pids`, in MiB: a bound on their joint peak."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
