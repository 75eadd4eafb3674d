"""genrekit.datasets.fetch: downloads from mirrors served by a real HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from genrekit.cli import main
from genrekit.core.errors import DataError
from genrekit.datasets import fetch as data


class _Handler(http.server.BaseHTTPRequestHandler):
    """/good/NAME: the table; /corrupt/NAME: one byte changed; /cut/NAME: half, then the connection drops;
    anything else: HTTP 404."""

    payload: bytes = b""
    hits: list[str] = []  # noqa: RUF012 (shared on purpose: the test reads it)

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        kind = self.path.split("/")[1]
        body = self.payload
        if kind == "corrupt":
            body = body[:100] + bytes([body[100] ^ 1]) + body[101:]
        if kind not in ("good", "corrupt", "cut"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server(gtzan_table: Path):
    _Handler.payload = gtzan_table.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _reset_hits():
    _Handler.hits.clear()


def _closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on (a dead mirror)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/features_30_sec.csv"


def test_known_checksum_is_the_shared_copy(gtzan_table: Path):
    assert hashlib.sha256(gtzan_table.read_bytes()).hexdigest() == data.GTZAN_TABLE.sha256
    assert gtzan_table.stat().st_size == data.GTZAN_TABLE.size
    assert len(data.GTZAN_TABLE.urls) >= 2
    assert all(url.startswith("https://") for url in data.GTZAN_TABLE.urls)


def test_good_download_is_cached_and_reused(server: str, tmp_path: Path, gtzan_table: Path):
    path = data.fetch(directory=tmp_path, urls=[f"{server}/good/features_30_sec.csv"], timeout=5)
    assert path == tmp_path / "features_30_sec.csv"
    assert path.read_bytes() == gtzan_table.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features_30_sec.csv"]
    data.fetch(directory=tmp_path, urls=[f"{server}/good/features_30_sec.csv"], timeout=5)
    assert len(_Handler.hits) == 1  # the verified copy is not downloaded again
    assert data.cache_listing(tmp_path)[0]["status"] == "verified"


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_cached(server: str, tmp_path: Path):
    with pytest.raises(DataError, match="SHA-256") as info:
        data.fetch(directory=tmp_path, urls=[f"{server}/corrupt/features_30_sec.csv"], timeout=5)
    assert "/corrupt/features_30_sec.csv" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_dead_mirror_then_good_one(server: str, tmp_path: Path):
    urls = [_closed_port_url(), f"{server}/missing/features_30_sec.csv", f"{server}/good/features_30_sec.csv"]
    path = data.fetch(directory=tmp_path, urls=urls, timeout=5)
    assert data.is_cached(directory=tmp_path) and path.is_file()
    assert _Handler.hits == ["/missing/features_30_sec.csv", "/good/features_30_sec.csv"]


def test_interrupted_download_leaves_nothing(server: str, tmp_path: Path):
    with pytest.raises(DataError) as info:
        data.fetch(directory=tmp_path, urls=[f"{server}/cut/features_30_sec.csv"], timeout=5)
    assert "/cut/" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_modified_copy_in_cache_is_replaced(server: str, tmp_path: Path):
    (tmp_path / "features_30_sec.csv").write_text("filename,label\n")
    assert data.cache_listing(tmp_path)[0]["status"] == "modified"
    data.fetch(directory=tmp_path, urls=[f"{server}/good/features_30_sec.csv"], timeout=5)
    assert data.is_cached(directory=tmp_path)


def test_cli_fetch_and_list_with_progress_lines(server: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(data.MIRRORS_ENV, f"{server}/good/features_30_sec.csv")
    monkeypatch.setattr("genrekit.cli._common.PROGRESS_INTERVAL", 0.0)
    assert main(["data", "list", "--format", "json"]) == 0
    assert '"status": "missing"' in capsys.readouterr().out
    assert main(["data", "fetch"]) == 0
    captured = capsys.readouterr()
    assert "verified" in captured.out and str(tmp_path) in captured.out
    assert "download:" in captured.err  # progress lines when stderr is not a terminal


def test_train_without_data_offline_says_how_to_pass_data(tmp_path: Path):
    env = {
        **os.environ,
        data.CACHE_ENV: str(tmp_path / "cache"),
        data.MIRRORS_ENV: _closed_port_url(),
    }
    env.pop("GENREKIT_TABLE", None)
    done = subprocess.run(
        [sys.executable, "-m", "genrekit", "train", "-o", str(tmp_path / "m")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--data path/to/features_30_sec.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cache" / "features_30_sec.csv").exists()


def test_reproduce_without_data_uses_the_cache_and_the_shipped_split(
    server: str, tmp_path: Path, monkeypatch
):
    from genrekit.cli.reproduce import register

    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(data.MIRRORS_ENV, f"{server}/good/features_30_sec.csv")
    monkeypatch.delenv("GENREKIT_TABLE", raising=False)
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["reproduce", "--out", str(tmp_path / "r")])
    from genrekit.cli._common import table_path

    assert Path(table_path(args)) == tmp_path / "features_30_sec.csv"
    assert Path(args.split_dir) == data.FILTERED_SPLIT_DIR


def test_shipped_split_equals_the_published_lists(split_dir: Path):
    from genrekit.selection.protocols import read_split_dir

    shipped, published = read_split_dir(data.FILTERED_SPLIT_DIR), read_split_dir(split_dir)
    assert shipped == published
    assert [len(shipped[k]) for k in ("train", "valid", "test")] == [443, 197, 290]
    assert "Kereliuk" in (data.FILTERED_SPLIT_DIR / "SOURCE.md").read_text()


def test_terminal_progress_bar_works_with_pooch(server: str, tmp_path: Path, monkeypatch):
    import io

    from genrekit.cli._common import progress_bar

    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress_bar("download", data.GTZAN_TABLE.size, unit="B")
    data.fetch(directory=tmp_path, urls=[f"{server}/good/features_30_sec.csv"], progressbar=bar, timeout=5)
    assert data.is_cached(directory=tmp_path)
    assert "download" in terminal.getvalue() and "100%" in terminal.getvalue()
