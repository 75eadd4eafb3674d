r"""Data that genrekit fetches itself: the GTZAN 30-second feature table, and the shipped split.

genrekit ships no third-party data. :func:`fetch` downloads the public GTZAN feature table
``features_30_sec.csv`` into a cache folder the first time it is needed, from public mirrors
tried in order, and keeps it only once its SHA-256 matches: a download goes to a temporary file
beside the cache (removed on any failure) and is renamed into place after the check, so the cache
never holds a partial or unverified file (the downloading is :mod:`pooch`'s).

The cache folder follows the platform's conventions (``~/.cache/genrekit`` on Linux,
``~/Library/Caches/genrekit`` on macOS, ``%LOCALAPPDATA%\\genrekit\\Cache`` on Windows, from
:mod:`platformdirs`); the environment variable ``GENREKIT_DATA_DIR`` overrides it, and
``GENREKIT_DATA_MIRRORS`` (URLs separated by spaces) replaces the list of mirrors, for example
with a copy on your own server.

The fault-filtered artist-conscious split (ids only, with its source and citation in
``SOURCE.md``) ships inside the package in :data:`FILTERED_SPLIT_DIR`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrekit.core.errors import DataError

CACHE_ENV = "GENREKIT_DATA_DIR"
"""Environment variable naming the cache folder (default: the platform's user cache folder)."""

MIRRORS_ENV = "GENREKIT_DATA_MIRRORS"
"""Environment variable with URLs (separated by spaces) that replace the built-in mirrors."""

FILTERED_SPLIT_DIR: Path = Path(__file__).parent / "split_filtered"
"""The fault-filtered artist-conscious GTZAN split (Kereliuk, Sturm & Larsen 2015), ids only.

``train.txt``, ``valid.txt``, ``test.txt`` (443 / 197 / 290 ids); ``SOURCE.md`` gives the source
(``coreyker/dnn-mgr``, the same ids as torchaudio's ``datasets/gtzan.py``) and the citation.
"""

TIMEOUT_SECONDS: float = 30.0
"""Seconds a mirror may stay silent (connecting or between two chunks) before the next is tried."""


@dataclass(frozen=True)
class RemoteFile:
    """A public file genrekit can download, with what identifies it.

    Attributes
    ----------
    name : str
        Short name used by ``genrekit data``.
    filename : str
        Its name in the cache folder.
    sha256 : str
        The SHA-256 of the one true copy (hex).
    size : int
        Its size in bytes.
    urls : tuple of str
        Mirrors, tried in order.
    description : str
        What it is and where it comes from.
    """

    name: str
    filename: str
    sha256: str
    size: int
    urls: tuple[str, ...]
    description: str


GTZAN_TABLE = RemoteFile(
    name="gtzan-features-30s",
    filename="features_30_sec.csv",
    sha256="e5fe20f4e2f61d1aa3e07b17ffdea6b565970b3a1811746bd31f182a401fc3bc",
    size=1_107_270,
    urls=(
        "https://raw.githubusercontent.com/WASN-Data/MLDeploy/"
        "0a9e1afd965a87559b1839e74aeb31132da1be37/data/features_30_sec.csv",
        "https://raw.githubusercontent.com/parnia-alipour/project/"
        "f2ca6c8104119064f133688bc1ac42df53288b41/features_30_sec.csv",
    ),
    description=(
        "GTZAN 30-second feature table (1,000 rows, 60 columns) of the Kaggle dataset 'GTZAN Dataset - "
        "Music Genre Classification' (andradaolteanu), Data/features_30_sec.csv; mirrored byte for byte "
        "in public GitHub repositories at fixed commits"
    ),
)
"""The table the paper and ``genrekit reproduce`` use."""

REMOTE_FILES: dict[str, RemoteFile] = {GTZAN_TABLE.name: GTZAN_TABLE}
"""Every file ``genrekit data fetch`` knows, by name."""


def cache_dir() -> Path:
    """Return the cache folder: ``$GENREKIT_DATA_DIR``, else the platform's user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("genrekit")


def mirrors(remote: RemoteFile = GTZAN_TABLE) -> tuple[str, ...]:
    """Return the URLs to try for `remote`: ``$GENREKIT_DATA_MIRRORS`` when set, else its own."""
    override = os.environ.get(MIRRORS_ENV, "").split()
    return tuple(override) or remote.urls


def cached_path(remote: RemoteFile = GTZAN_TABLE, directory: str | os.PathLike[str] | None = None) -> Path:
    """Return where `remote` lives in the cache (whether or not it is there)."""
    return Path(directory or cache_dir()) / remote.filename


def is_cached(remote: RemoteFile = GTZAN_TABLE, directory: str | os.PathLike[str] | None = None) -> bool:
    """Whether the cache holds `remote` with the right SHA-256."""
    from genrekit.datasets.table import file_sha256

    path = cached_path(remote, directory)
    return path.is_file() and file_sha256(path) == remote.sha256


def fetch(
    remote: RemoteFile = GTZAN_TABLE,
    directory: str | os.PathLike[str] | None = None,
    urls: Sequence[str] | None = None,
    progressbar: Any = False,
    timeout: float = TIMEOUT_SECONDS,
) -> Path:
    """Return the path of `remote` in the cache, downloading and verifying it first if needed.

    Parameters
    ----------
    remote : RemoteFile
        What to fetch (default: the GTZAN 30-second feature table).
    directory : path-like, optional
        Cache folder (default: :func:`cache_dir`).
    urls : sequence of str, optional
        Mirrors to try in order (default: :func:`mirrors`).
    progressbar : bool or tqdm-like object
        Passed to :class:`pooch.HTTPDownloader`: True for a tqdm bar, or an object with
        ``total``, ``update``, ``reset`` and ``close`` (see :class:`genrekit.cli._common.ProgressLine`).
    timeout : float
        Seconds a mirror may stay silent before it counts as failed.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    DataError
        If no mirror delivered a copy with the right SHA-256; the message lists what each
        mirror did. Nothing is left in the cache then.
    """
    import pooch
    import requests

    target = cached_path(remote, directory)
    if is_cached(remote, directory):
        return target
    target.unlink(missing_ok=True)  # a stale or modified copy is not kept
    pooch.get_logger().setLevel(logging.WARNING)  # genrekit says what it downloads itself
    failures = []
    for url in urls or mirrors(remote):
        downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout)
        try:
            path = pooch.retrieve(
                url,
                known_hash=f"sha256:{remote.sha256}",
                fname=remote.filename,
                path=target.parent,
                downloader=downloader,
            )
        except ValueError:  # pooch's hash check: the temporary file is already gone
            failures.append(f"{url}: the download's SHA-256 is not {remote.sha256} (a modified copy)")
        except (requests.RequestException, OSError) as exc:
            failures.append(f"{url}: {_reason(exc, timeout)}")
        else:
            return Path(path)
    raise DataError(
        f"could not download {remote.filename}; every mirror failed:\n  "
        + "\n  ".join(failures)
        + "\nnothing was written to the cache "
        + str(target.parent)
    )


def _reason(exc: Exception, timeout: float) -> str:
    """Say in a few words why a download failed."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke during the download"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (offline, or the host is unreachable)"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:200]


def table_or_fetch(progressbar: Any = False, log=None) -> Path:
    """Return the cached GTZAN table, downloading it first when the cache lacks it.

    Parameters
    ----------
    progressbar : bool or tqdm-like object
        Download progress (see :func:`fetch`).
    log : callable, optional
        Called with one status line before a download.

    Raises
    ------
    DataError
        If the table is not cached and cannot be downloaded; the message says how to pass
        a local copy with ``--data``.
    """
    if is_cached():
        return cached_path()
    if log is not None:
        log(f"downloading the GTZAN feature table into {cache_dir()} (once; about 1.1 MB)")
    try:
        return fetch(progressbar=progressbar)
    except DataError as exc:
        raise DataError(
            f"{exc}\nno --data given and the GTZAN feature table is not cached. Offline? Pass a local "
            "copy: --data path/to/features_30_sec.csv (or set GENREKIT_TABLE); see the README, "
            "'Where the data comes from'."
        ) from exc


def cache_listing(directory: str | os.PathLike[str] | None = None) -> list[dict]:
    """Describe every known remote file and its state in the cache.

    Returns
    -------
    list of dict
        ``name``, ``path``, ``status`` (``"verified"``, ``"modified"`` or ``"missing"``),
        ``size`` (bytes on disk or None), ``sha256`` (expected) and ``description``.
    """
    from genrekit.datasets.table import file_sha256

    rows = []
    for remote in REMOTE_FILES.values():
        path = cached_path(remote, directory)
        present = path.is_file()
        status = "missing"
        if present:
            status = "verified" if file_sha256(path) == remote.sha256 else "modified"
        rows.append(
            {
                "name": remote.name,
                "path": str(path),
                "status": status,
                "size": path.stat().st_size if present else None,
                "sha256": remote.sha256,
                "description": remote.description,
            }
        )
    return rows
