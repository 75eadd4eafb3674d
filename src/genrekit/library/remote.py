"""Libraries behind fsspec URLs (``s3://bucket/music``, ``gcs://...``, ``file:///...``): list, stamp, copy.

Requires the optional extra ``genrekit[cloud]`` (fsspec, and s3fs for ``s3://``);
any other fsspec protocol works once its backend is installed (``gcsfs`` for
``gcs://``, ``adlfs`` for ``az://`` ...). Credentials and endpoints come from
the backend's usual configuration: for S3, the ``AWS_*`` environment variables
or ``~/.aws``, and fsspec's own settings, such as the environment variable
``FSSPEC_S3_ENDPOINT_URL=http://host:9000`` for an S3-compatible store (MinIO,
Ceph); workers need the same environment.

A library behind a URL is listed folder by folder (one listing request per
folder, so memory holds one folder's entries at a time), in the order of the
URLs as strings, the order of the catalogue's index. What a listing says about
an object (modification time, ETag, version, generation) is folded into one
*change stamp*, stored in the catalogue's ``mtime_ns`` column: a rescan
compares size and stamp and so only lists an unchanged library. A worker
copies one object at a time to a temporary file, :data:`COPY_BLOCK` bytes at a
time (so memory does not grow with the file), and deletes it once analysed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from genrekit.audio.decode import AUDIO_EXTENSIONS
from genrekit.core.errors import AudioError, GenrekitError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_CHANGE_FIELDS: tuple[str, ...] = (
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "ETag",
    "etag",
    "VersionId",
    "version_id",
    "generation",
    "md5Hash",
)
"""Fields of an fsspec listing that change when an object is rewritten (those present make the stamp)."""

COPY_BLOCK: int = 8 << 20
"""Bytes read at a time (one ranged request each) when copying an object: the copy's memory."""

_scratch: str | None = None


class BackendError(GenrekitError):
    """URLs of a protocol cannot be read here: fsspec or the protocol's backend is not installed."""


def is_url(path: object) -> bool:
    """Whether `path` is a URL (``protocol://...``) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """Return the fsspec filesystem of `url`, listing caches off, and the path on it.

    Parameters
    ----------
    url : str
        A URL (``s3://bucket/music/a.mp3``).

    Returns
    -------
    fs : fsspec.AbstractFileSystem
        The filesystem of the URL's protocol.
    path : str
        The path on `fs` (the URL without its protocol, as the backend spells it).

    Raises
    ------
    BackendError
        If fsspec or the backend of the URL's protocol is not installed (the
        message names the package to install), or the protocol is unknown.
    """
    try:
        import fsspec
    except ImportError:
        raise BackendError(f"{url}: URLs need fsspec: pip install 'genrekit[cloud]'") from None
    try:
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        found = re.search(r"install (\S+)", str(exc), re.IGNORECASE)
        package = found.group(1) if found else f"the fsspec backend of {protocol}://"
        raise BackendError(
            f"{url}: reading {protocol}:// URLs needs {package}: pip install {package}"
        ) from None
    except ValueError as exc:
        raise BackendError(f"{url}: {exc}") from None


def root_url(url: str) -> str:
    """Return `url` in the catalogue's form (the backend's own spelling, no trailing slash).

    Raises
    ------
    AudioError
        If nothing exists at `url`.
    BackendError
        If its backend is not installed.
    """
    fs, path = filesystem(url)
    try:
        exists = fs.exists(path)
    except Exception as exc:  # the backend's own errors: credentials, endpoint, network
        raise AudioError(f"{url}: cannot list: {exc}") from exc
    if not exists:
        raise AudioError(f"{url}: no such file or folder")
    return fs.unstrip_protocol(path).rstrip("/")


def change_stamp(info: dict) -> int:
    """Fold what a listing says about an object's version into one 63-bit integer (0 when it says nothing).

    Parameters
    ----------
    info : dict
        One entry of an fsspec listing (``fs.ls(path, detail=True)``).

    Returns
    -------
    int
        Equal for two listings of the same object version; different (but for a
        2**-63 chance) once the object was rewritten.
    """
    fields = [(key, str(info[key])) for key in _CHANGE_FIELDS if info.get(key) is not None]
    if not fields:
        return 0
    digest = hashlib.sha256(json.dumps(fields).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def walk_url(url: str) -> Iterator[tuple[str, int, int]]:
    """Yield ``(url, size, stamp)`` of the audio objects at or below `url`, ordered by URL.

    As :func:`genrekit.library.scan.walk` does for local folders: hidden names
    (``.name``) are skipped, a folder's entries are sorted with folders as
    ``name/``, and an object named as `url` itself is taken whatever its extension.
    """
    fs, path = filesystem(url)
    try:
        if fs.isdir(path):
            yield from _walk_folder(fs, path)
        else:
            info = fs.info(path)
            yield fs.unstrip_protocol(path), int(info.get("size") or 0), change_stamp(info)
    except Exception as exc:  # the backend's own errors (network, credentials): the scan stops, nothing gone
        raise AudioError(f"{url}: cannot list: {exc}") from exc


def _walk_folder(fs: AbstractFileSystem, path: str) -> Iterator[tuple[str, int, int]]:
    """List one folder and descend into its subfolders, in the order of the URLs as strings.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
        The folder's filesystem.
    path : str
        The folder's path on `fs`.

    Yields
    ------
    tuple of (str, int, int)
        ``(url, size, stamp)`` of each audio object (see :func:`change_stamp`).
    """
    listed = []
    for info in fs.ls(path, detail=True):
        name = PurePosixPath(info["name"].rstrip("/")).name
        if not name or name.startswith(".") or info["name"].rstrip("/") == path.rstrip("/"):
            continue
        if info.get("type") == "directory":
            if not info.get("islink"):  # file://: links to folders are not followed, as on disk
                listed.append((name + "/", info))
        elif PurePosixPath(name).suffix.lower() in AUDIO_EXTENSIONS:
            listed.append((name, info))
    for key, info in sorted(listed, key=lambda pair: pair[0]):
        if key.endswith("/"):
            yield from _walk_folder(fs, info["name"].rstrip("/"))
        else:
            yield fs.unstrip_protocol(info["name"]), int(info.get("size") or 0), change_stamp(info)


def set_scratch(folder: str | None) -> None:
    """Copy objects into `folder` in this process (default: the system's temporary folder).

    A runner gives its workers a folder of its own and removes it at the end, so
    that the copy of a worker killed mid-file (a timeout) does not outlive the scan.
    """
    global _scratch
    _scratch = folder


@contextlib.contextmanager
def local_copy(url: str) -> Iterator[str]:
    """Copy the object at `url` to a temporary file (same extension), yield its path, then delete it.

    Raises
    ------
    AudioError
        If the object cannot be read (the message names the URL).
    BackendError
        If the URL's backend is not installed.
    """
    fs, path = filesystem(url)
    handle, local = tempfile.mkstemp(suffix=PurePosixPath(path).suffix, prefix="genrekit-", dir=_scratch)
    os.close(handle)
    try:
        try:
            with fs.open(path, "rb", block_size=COPY_BLOCK, cache_type="none") as source:
                with open(local, "wb") as target:
                    shutil.copyfileobj(source, target, COPY_BLOCK)
        except Exception as exc:  # the backend's own errors: missing object, credentials, network
            raise AudioError(f"{url}: cannot read: {exc}") from exc
        yield local
    finally:
        with contextlib.suppress(OSError):
            os.unlink(local)
