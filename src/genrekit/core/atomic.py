"""Atomic file output: a reader sees either the old file or the complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` and move it over `path` on success.

    The data is flushed and fsync'ed before the rename, so an interruption at
    any point (an exception, Ctrl-C, a kill) leaves either the previous file or
    the complete new one, never a torn file.

    Parameters
    ----------
    path : path-like
        Destination file. Its folder is created if missing.
    mode : {"w", "wb"}
        Text or binary mode.
    **open_kwargs
        Passed to :func:`open` (for example ``encoding`` or ``newline``).

    Yields
    ------
    file object
        The open temporary file to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _default_mode())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _default_mode() -> int:
    """Return the permissions of a newly created file (0o666 less the umask); mkstemp gives 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
