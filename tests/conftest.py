"""Shared fixtures: where the real test data lives.

The data is not part of the project. Tests read it from ``../shared/data`` beside
the repository, or from the folder named by ``GENREKIT_TEST_DATA``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    return Path(os.environ.get("GENREKIT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The test-data folder (``GENREKIT_TEST_DATA`` or ``../shared/data``)."""
    root = _data_root()
    if not (root / "gtzan" / "features_30_sec.csv").is_file():
        pytest.fail(f"test data not found at {root}; set GENREKIT_TEST_DATA to the shared data folder")
    return root


@pytest.fixture(scope="session")
def gtzan_table(data_root: Path) -> Path:
    """The public GTZAN 30-second feature table."""
    return data_root / "gtzan" / "features_30_sec.csv"


@pytest.fixture(scope="session")
def gtzan_flac_dir(data_root: Path) -> Path:
    """14 GTZAN clips as FLAC, in genre folders."""
    return data_root / "gtzan" / "audio"


@pytest.fixture(scope="session")
def gtzan_wav_dir(data_root: Path) -> Path:
    """The same 14 GTZAN clips as the original WAV files."""
    return data_root / "gtzan" / "audio_original"


@pytest.fixture(scope="session")
def split_dir(data_root: Path) -> Path:
    """The fault-filtered artist-conscious split (train/valid/test id lists)."""
    return data_root / "gtzan" / "split_filtered"


@pytest.fixture(scope="session")
def cross_dir(data_root: Path) -> Path:
    """Ten non-GTZAN Ogg clips with ``labels.csv``."""
    return data_root / "cross_dataset" / "librosa_data"


@pytest.fixture(autouse=True, scope="session")
def _no_download_from_the_internet(tmp_path_factory) -> None:
    """Keep every test off the real mirrors: an empty cache, and one mirror on a closed local port."""
    patch = pytest.MonkeyPatch()
    patch.setenv("GENREKIT_DATA_DIR", str(tmp_path_factory.mktemp("genrekit-cache")))
    patch.setenv("GENREKIT_DATA_MIRRORS", "http://127.0.0.1:9/features_30_sec.csv")
    yield
    patch.undo()


LISTENER_CHECK_SECONDS: float = 5.0
"""Least time between two looks at the test processes' listeners (a look costs tens of milliseconds)."""

_last_listener_check = [0.0]


@pytest.fixture(autouse=True)
def _listeners_on_loopback_only():
    """After a test, fail if this session or a process it started listens beyond loopback.

    Every server, cluster and mirror a test starts must bind 127.0.0.1 (Dask's HTTP servers
    listen on all interfaces unless told otherwise). Sampled at most every
    :data:`LISTENER_CHECK_SECONDS`, which catches every listener that lives through a module.
    """
    yield
    now = time.monotonic()
    if now - _last_listener_check[0] < LISTENER_CHECK_SECONDS:
        return
    _last_listener_check[0] = now
    from listeners import exposed

    if found := exposed():
        pytest.fail(f"listeners beyond loopback (pid, name, address, port): {found}")


S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "genrekit-test",
    "AWS_SECRET_ACCESS_KEY": "genrekit-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Credentials of the test S3 endpoint (it accepts any)."""


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 endpoint on 127.0.0.1 (moto's server, in a thread of this process).

    Yields the environment that points s3fs at it (``FSSPEC_S3_ENDPOINT_URL`` and test
    credentials), also set in this process for the session, so that subprocesses and
    Dask workers started with ``os.environ`` reach it too. Skipped without moto or s3fs.
    """
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import fsspec.config

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**S3_TEST_ENV, "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}"}
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    patch.setitem(fsspec.config.conf, "s3", {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]})
    try:
        yield env
    finally:
        patch.undo()
        server.stop()


# The library scanned by the Dask and s3:// tests: module scope, so each test module gets its own
# copy of the files and its own reference scan (the tests change files between scans).


@pytest.fixture(scope="module")
def model():
    """The shipped model."""
    import genrekit

    return genrekit.load_model()


@pytest.fixture(scope="module")
def library(tmp_path_factory, gtzan_flac_dir):
    """A small library folder of 4-s re-encodings of the GTZAN test clips (see test_library.make_library)."""
    from test_library import make_library

    return make_library(tmp_path_factory.mktemp("lib") / "music", gtzan_flac_dir, seconds=4.0)


@pytest.fixture(scope="module")
def local_rows(library, tmp_path_factory, model):
    """The catalogue rows of a scan of `library` on local disk with the local pool."""
    from test_library import catalogue_rows

    from genrekit.library.catalogue import Catalogue
    from genrekit.library.scan import run_local, scan

    db = tmp_path_factory.mktemp("local") / "local.db"
    with Catalogue(db) as catalogue:
        scan(library, catalogue, model, run_local(2))
    return catalogue_rows(db)


@pytest.fixture(scope="session")
def musicnn_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The musicnn 0.1.0 wheel: ``$GENREKIT_MUSICNN_WHEEL``, else downloaded with pip (the real path)."""
    named = os.environ.get("GENREKIT_MUSICNN_WHEEL")
    if named:
        return Path(named)
    from genrekit.tagger.weights import download_wheel

    return download_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def tagger_cache(tmp_path_factory: pytest.TempPathFactory, musicnn_wheel: Path):
    """A fresh weights cache (``GENREKIT_TAGGER_DIR``) filled from the wheel for the session."""
    cache = tmp_path_factory.mktemp("tagger-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENREKIT_TAGGER_DIR", str(cache))
        yield cache
