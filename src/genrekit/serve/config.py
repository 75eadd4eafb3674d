"""Settings of a running service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

LOCAL_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})
"""Addresses reachable only from this machine: binding to anything else needs a token."""


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
        Most prediction or feature requests in progress at once (uploading,
        waiting for a worker or running); one more gets 503 with ``Retry-After``.
    max_streams : int
        Most live-mode WebSocket connections at once.
    token : str or None
        Secret every ``/v1`` call must present; None accepts calls without one.
    min_confidence : float
        Default of ``?min_confidence=``.
    detect_music : bool
        Whether predictions also run the music detector (verdict ``"not music"``).
    """

    model_dir: Path | None = None
    workers: int = 1
    max_upload_mb: float = 200.0
    max_seconds: float = 1200.0
    queue: int = 64
    max_streams: int = 8
    token: str | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    detect_music: bool = False

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return round(self.max_upload_mb * 1_000_000)


def is_local(host: str) -> bool:
    """Whether `host` is a loopback address (``127.0.0.0/8``, ``::1`` or ``localhost``)."""
    return host in LOCAL_HOSTS or host.startswith("127.")
