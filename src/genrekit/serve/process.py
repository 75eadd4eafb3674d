"""Running ``genrekit serve`` in a child process, for tests, benchmarks and scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

_LISTENING = re.compile(r"listening on (http://\S+?)/? ")


class ServerProcess:
    """``genrekit serve --port 0 ARGS`` in a child process, ready once ``/readyz`` answers 200.

    Use it as a context manager; on exit the server gets SIGTERM (SIGKILL after
    `stop_timeout` seconds). Its stderr (the access log) is collected in :attr:`log`.

    Parameters
    ----------
    args : sequence of str
        More ``genrekit serve`` options (``--workers 1``, ``--token T``, ...).
    env : dict, optional
        Environment of the child (default: this process's).
    ready_timeout : float
        Seconds to wait for the server to be ready.
    stop_timeout : float
        Seconds to wait for it to stop.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT``.
    log : list of str
        The child's stderr lines so far.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        ready_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.args = list(args)
        self.env = env
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.url = ""
        self.log: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._found = threading.Event()

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "genrekit", "serve", "--port", "0", *self.args]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=self.env,
        )  # fmt: skip
        threading.Thread(target=self._read_stderr, daemon=True).start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._found.set()
        self._found.set()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        if not self._found.wait(self.ready_timeout) or not self.url:
            raise RuntimeError("genrekit serve did not start:\n" + "\n".join(self.log))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("genrekit serve exited:\n" + "\n".join(self.log))
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"genrekit serve not ready after {self.ready_timeout:g} s:\n" + "\n".join(self.log)
        )

    def access_log(self) -> list[dict]:
        """Return the access-log records so far (the JSON lines of the log)."""
        records = []
        for line in list(self.log):
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL); return its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def child_env(**overrides: str) -> dict[str, str]:
    """Return this process's environment with `overrides` (e.g. ``TMPDIR``, ``GENREKIT_TOKEN``)."""
    env = dict(os.environ)
    env.pop("GENREKIT_TOKEN", None)
    env.update(overrides)
    return env
