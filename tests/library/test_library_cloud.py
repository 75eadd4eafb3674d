"""Libraries behind s3:// URLs: a real S3 endpoint on 127.0.0.1 (moto's server), read through fsspec and s3fs.

The same files are scanned from local disk and from the bucket: the catalogues
must hold the same features, predictions and errors, row for row (only the
paths, URLs there, and the change stamps differ).
"""

import json
import subprocess
import sys
import tempfile

import pytest
from library_helpers import as_local, catalogue_rows, s3, upload

from genrekit.cli import main
from genrekit.library import scan as scan_mod
from genrekit.library.catalogue import Catalogue
from genrekit.library.scan import run_local, scan

pytestmark = pytest.mark.s3

pytest.importorskip("s3fs")


@pytest.fixture
def s3_library(s3_server, library, request) -> str:
    """The library uploaded to a prefix of its own; its URL."""
    return upload(library, request.node.name)


def test_s3_scan_equals_the_local_scan_and_a_rescan_only_lists(
    s3_library, library, local_rows, tmp_path, model, monkeypatch
):
    db = tmp_path / "s3.db"
    with Catalogue(db) as catalogue:
        report = scan(s3_library, catalogue, model, run_local(2))
    assert (report.new, report.analysed, len(report.failed)) == (8, 7, 1)
    path, reason = report.failed[0]
    assert path == f"{s3_library}/misc/bad.wav" and reason.startswith(path) and "cannot decode" in reason
    assert as_local(catalogue_rows(db), s3_library, library) == as_local(local_rows)
    monkeypatch.setattr(scan_mod, "analyse_file", lambda *a: pytest.fail("read an unchanged object"))
    with Catalogue(db) as catalogue:
        again = scan(s3_library, catalogue, model, run_local(1))
    assert (again.unchanged, again.new, again.changed, again.analysed) == (8, 0, 0, 0)


def test_changed_deleted_and_new_objects(s3_library, tmp_path, model, monkeypatch):
    db = tmp_path / "s3.db"
    with Catalogue(db) as catalogue:
        scan(s3_library, catalogue, model, run_local(2))
    fs, bucket_path = s3(), s3_library.removeprefix("s3://")
    # same size (4 s of float samples), other audio: only the listing's ETag tells
    fs.copy(f"{bucket_path}/jazz/jazz.00000.wav", f"{bucket_path}/rock/rock.00000.wav")
    fs.rm(f"{bucket_path}/disco/disco.00000.wav")
    fs.copy(f"{bucket_path}/blues/blues.00000.wav", f"{bucket_path}/blues/new.wav")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # this process's temporary copies
    with Catalogue(db) as catalogue:
        report = scan(s3_library, catalogue, model, run_local(1))
    assert (report.new, report.changed, report.gone, report.unchanged, report.analysed) == (1, 1, 1, 6, 2)
    assert list(scratch.iterdir()) == []  # every temporary copy deleted
    _, windows, _ = catalogue_rows(db)
    features = {row[0].rsplit("/", 2)[-1]: row[5] for row in windows}
    assert features["rock.00000.wav"] == features["jazz.00000.wav"] != features["copy.wav"]
    with Catalogue(db) as catalogue:
        status = {row["path"].rsplit("/", 1)[-1]: row["status"] for row in catalogue.search()}
    assert status["disco.00000.wav"] == "gone" and status["new.wav"] == "ok"


def test_cli_scan_similar_export_and_tag_of_an_s3_library(s3_library, tmp_path, capsys):
    db = tmp_path / "s3.db"
    # a fresh process: the endpoint reaches s3fs through FSSPEC_S3_ENDPOINT_URL alone
    proc = subprocess.run(
        [sys.executable, "-m", "genrekit", "scan", s3_library, "--db", str(db), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # 1: the bad object
    summary = json.loads(proc.stdout)
    assert (summary["analysed"], summary["failed"]) == (7, 1)
    rock = f"{s3_library}/rock/rock.00000.wav"
    assert main(["library", "similar", rock, "--db", str(db), "-n", "1", "--format", "json"]) == 0
    near = json.loads(capsys.readouterr().out)
    assert near["file"] == rock and near["similar"][0]["path"] == f"{s3_library}/rock/copy.wav"
    assert main(["library", "export", "--db", str(db), "-o", str(tmp_path / "table.csv")]) == 0
    assert "8 rows written" in capsys.readouterr().out  # 6 clips of one window, one of two
    assert main(["library", "tag", "--db", str(db), "--dry-run", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["counts"]["remote"] > 0 and "cannot be tagged in place" in captured.err


def test_a_missing_fsspec_backend_names_the_package(tmp_path, capsys):
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed")
    assert main(["scan", "gcs://bucket/music", "--db", str(tmp_path / "lib.db")]) == 2
    err = capsys.readouterr().err
    assert "gcs://bucket/music" in err and "pip install gcsfs" in err
