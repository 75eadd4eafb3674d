"""Settings of a running service."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE


@dataclass(frozen=True)
class ServeConfig:
    """What ``genrekit serve`` was asked for.

    Attributes
    ----------
    model_dir : Path or None
        Model folder; the shipped model when None.
    workers : int
        Worker processes doing the CPU work (decoding, features, the model).
    max_upload_mb : float
        Largest request body accepted, in MB (10**6 bytes); larger ones get 413.
    max_seconds : float
        Longest audio accepted, in seconds; longer files get 413.
    queue : int
        Most prediction or feature requests at work at once (waiting for a worker or
        running, once their upload has arrived); one more gets 503 with ``Retry-After``.
    max_streams : int
        Most live-mode WebSocket connections at once.
    upload_timeout : float
        Seconds an upload may go without sending data; also the time after which its
        average rate is checked against `min_upload_rate`. Either failure gets 408.
    min_upload_rate : float
        Slowest average upload accepted, in bytes per second.
    stream_hello_timeout : float
        Seconds a live-mode client has to send its first message once connected.
    stream_idle_timeout : float
        Seconds a live-mode client may stay silent (no audio) while no update is running.
    token : str or None
        Secret every ``/v1`` call must present; None accepts calls without one.
    min_confidence : float
        Default of ``?min_confidence=``.
    detect_music : bool
        Whether predictions also run the music detector (verdict ``"not music"``).
    taggers : tuple of str
        The musicnn taggers the workers hold (``serve --tags``: ``msd`` and ``mtt``), run by
        ``/v1/tags`` and ``/v1/predict?tags=``; empty: tags are off.
    """

    model_dir: Path | None = None
    workers: int = 1
    max_upload_mb: float = 200.0
    max_seconds: float = 1200.0
    queue: int = 64
    max_streams: int = 8
    upload_timeout: float = 30.0
    min_upload_rate: float = 10_000.0
    stream_hello_timeout: float = 10.0
    stream_idle_timeout: float = 60.0
    token: str | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    detect_music: bool = False
    taggers: tuple[str, ...] = ()

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return round(self.max_upload_mb * 1_000_000)


def is_local(host: str) -> bool:
    """Whether `host` reaches only this machine: every address it resolves to is a loopback address.

    A name is resolved (``localhost`` is local because it resolves to ``127.0.0.1`` and ``::1``);
    its spelling alone decides nothing: ``127.0.0.1.example.com`` may point anywhere. A name that
    does not resolve is not local.

    Parameters
    ----------
    host : str
        An address or host name, as given to ``--host``.

    Returns
    -------
    bool
        True when `host` resolves and all its addresses are in ``127.0.0.0/8`` or are ``::1``.
    """
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0].split("%")[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
