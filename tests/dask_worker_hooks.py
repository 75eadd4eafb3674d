"""Test-only preload for the ``dask worker`` processes the tests start (``--preload``); never used otherwise.

It wraps genrekit's per-file analysis on the worker: every file takes at least
``GENREKIT_TEST_SLOW`` seconds (so that a test can kill a process mid-scan),
a file whose name contains ``CRASH`` makes the worker process exit at once,
as a decoder crash would, and one whose name contains ``HANG`` never ends (a
decoder stuck in a loop), until the timeout stops it.
"""

import os
import time

from genrekit.library import scan

_analyse_file = getattr(scan, "_test_unhooked", scan.analyse_file)  # the worker may import this twice
scan._test_unhooked = _analyse_file


def _hooked(path, *args):
    if "CRASH" in os.path.basename(path):
        os._exit(70)
    if "HANG" in os.path.basename(path):
        with open(f"{path}.pid", "w") as handle:  # for the test: which process hangs
            handle.write(str(os.getpid()))
        time.sleep(3600)
    time.sleep(float(os.environ.get("GENREKIT_TEST_SLOW", "0")))
    return _analyse_file(path, *args)


scan.analyse_file = _hooked
