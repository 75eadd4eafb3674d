"""Shared fixtures: where the real test data lives.

The data is not part of the project. Tests read it from ``../shared/data`` beside
the repository, or from the folder named by ``GENREKIT_TEST_DATA``.
"""

from __future__ import annotations

import os
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
