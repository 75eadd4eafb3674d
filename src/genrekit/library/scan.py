"""Scanning a music library into a catalogue: incremental, crash-safe, local or on a Dask cluster.

A scan walks the given files and folders and compares them with the
catalogue (:mod:`genrekit.library.catalogue`) in one ordered pass (a merge of
the sorted walk with the catalogue's rows, so memory stays flat whatever the
size of the library):

* a file the catalogue does not hold, or holds as ``gone``, is analysed;
* a file whose size or modification time changed is analysed again (for a
  URL, ``s3://...``: its size or change stamp, see :mod:`genrekit.library.remote`);
* a file that is unchanged is only stat'ed, a URL only listed (a failed one is retried with
  ``retry_failed``; one stored without segments is analysed again when
  segments are asked for; one stored without the tags or music decision asked for
  is decoded again for them alone, its features kept);
* a file the catalogue holds below a scanned folder but that is no longer
  there is marked ``gone``.

Analysing a file (:func:`analyse_file`, on a worker) decodes it once and
computes the features of its 30-s windows (:func:`genrekit.prediction.model.file_windows`)
and, when asked, of its segments, its musicnn tags and embeddings and its music decision
(:class:`genrekit.tagger.model.TagStream`, fed from the same decoding pass). The client,
the only writer of the catalogue, classifies the windows with the current model and stores each file
in its own transaction. Files whose stored prediction comes from another
model (see :func:`genrekit.library.catalogue.model_id`) are re-classified from
their stored features first, without decoding anything.

Workers are either local processes (:func:`run_local`) or Dask distributed
workers (:func:`genrekit.library.cluster.run_dask`); both are *runners*:
functions from an iterator of :class:`Todo` to an iterator of lists of
:class:`~genrekit.library.catalogue.Analysis` or :class:`Lost`. With a
timeout, a file that runs longer is stored as failed (:class:`TimedOut`) and
the process that ran it recycled.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path

from threadpoolctl import threadpool_limits

from genrekit.audio.decode import AUDIO_EXTENSIONS
from genrekit.core.errors import AudioError, GenrekitError
from genrekit.core.parallel import cpu_count, init_worker
from genrekit.library import remote
from genrekit.library.catalogue import (
    PAGE,
    Analysis,
    Catalogue,
    Entry,
    FileTags,
    MusicCheck,
    Prediction,
    model_id,
)
from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

DEFAULT_TIMEOUT: float = 600.0
"""Seconds one file may take on a worker (``scan --timeout``) before it is stopped and reported failed."""


@dataclass(frozen=True)
class Todo:
    """A file to analyse, with its size and modification time (a URL's change stamp) as the walk saw them.

    Attributes
    ----------
    taggers : tuple of str
        The musicnn taggers to run on it (``scan --tags``).
    music : bool
        Also run the music detector (``scan --detect-music``).
    tags_only : bool
        Compute only the tags and music decision (an unchanged file whose features are stored).
    """

    path: str
    size: int
    mtime_ns: int
    taggers: tuple[str, ...] = ()
    music: bool = False
    tags_only: bool = False


@dataclass(frozen=True)
class TimedOut(Analysis):
    """The failure of a file whose analysis took longer than the timeout (its worker is recycled).

    Attributes
    ----------
    worker : str
        The Dask worker that was running it ("" on a local process, which is killed at once).
    """

    worker: str = ""


@dataclass(frozen=True)
class Lost:
    """A file whose analysis was lost for a reason that is not the file's (a broken pool, a lost cluster).

    Nothing is stored for it, so the next scan analyses it again.
    """

    path: str
    reason: str


Runner = Callable[[Iterator[Todo]], Iterator[list["Analysis | Lost"]]]
"""Analyses files somewhere and yields the results in lists (a list per finished batch)."""


@dataclass
class ScanReport:
    """What a scan did.

    Attributes
    ----------
    new, changed, unchanged, gone, retried, tagged : int
        Files by what the walk found (``retried``: unchanged files that had failed; ``tagged``:
        unchanged files that lacked the tags or music decision asked for, decoded for them alone).
    analysed : int
        Files analysed and stored with their features and prediction.
    failed : list of (str, str)
        Files that failed in this scan (stored as failed) and why.
    lost : list of (str, str)
        Files whose analysis was lost (not stored; the next scan retries them) and why.
    reclassified : int
        Stored files re-classified from their features with the current model.
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    retried: int = 0
    tagged: int = 0
    analysed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    reclassified: int = 0


def analyse_file(
    path: str,
    segment_seconds: float | None = None,
    taggers: Sequence[str] = (),
    music: bool = False,
    tags_only: bool = False,
) -> Analysis:
    """Decode one file and compute the features of its windows (and segments); a bad file never raises.

    Parameters
    ----------
    path : str
        The audio file, or its URL (``s3://...``: the object is copied to a
        temporary file first, see :func:`genrekit.library.remote.local_copy`).
    segment_seconds : float, optional
        Also compute the features of consecutive segments of this length (3: the
        public 3-second table's segments).
    taggers : sequence of str
        Also the file-level tags and embedding of these musicnn taggers, from the same decoding pass.
    music : bool
        Also the music detector's decision.
    tags_only : bool
        Compute the tags and music decision only, not the features.

    Returns
    -------
    Analysis
        The features, or the error (naming the file) when it cannot be analysed.

    Raises
    ------
    BackendError
        If this machine cannot read the URL's protocol (a worker without the
        fsspec backend: its fault, not the file's, so nothing is stored).
    """
    wanted = (segment_seconds, tuple(taggers), music, tags_only)
    if not remote.is_url(path):
        return _analyse_path(path, *wanted)
    try:
        with remote.local_copy(path) as local:
            result = _analyse_path(local, *wanted)
    except remote.BackendError:
        raise
    except GenrekitError as exc:
        return Analysis(path, -1, -1, error=str(exc))
    except OSError as exc:  # the temporary copy: no space left, no such folder
        return Analysis(path, -1, -1, error=f"{path}: cannot copy to a temporary file: {exc}")
    error = None if result.error is None else result.error.replace(local, path)
    return replace(result, path=path, error=error)


def _analyse_path(
    path: str, segment_seconds: float | None, taggers: tuple[str, ...], music: bool, tags_only: bool
) -> Analysis:
    """Analyse a local file (see :func:`analyse_file`)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        return Analysis(path, -1, -1, error=f"{path}: cannot read: {exc.strerror or exc}")
    try:
        stream = _tag_stream(taggers, music)
        if tags_only:
            result = Analysis(path, stat.st_size, stat.st_mtime_ns, tags_only=True)
            _decode_into(path, stream)
        else:
            result = _features(path, stat, segment_seconds, stream)
        if stream is not None:
            result = replace(result, **_tag_fields(stream, taggers, music, path))
    except Exception as exc:  # one bad file, whatever its fault, must not stop the scan
        message = str(exc) if isinstance(exc, GenrekitError) else f"{path}: unexpected {exc!r}"
        return Analysis(path, stat.st_size, stat.st_mtime_ns, error=message, tags_only=tags_only)
    return result


def _features(path: str, stat: os.stat_result, segment_seconds: float | None, stream) -> Analysis:
    """Decode a file once for the features of its windows (and segments), feeding `stream` on the way."""
    from genrekit.audio.analysis import MIN_SECONDS, analyse_file

    tap = None if stream is None else stream.push
    analysis = analyse_file(path, segment_seconds=segment_seconds, min_seconds=MIN_SECONDS, tap=tap)
    segments = analysis.segments
    return Analysis(
        path,
        stat.st_size,
        stat.st_mtime_ns,
        analysis.n_samples,
        analysis.windows.bounds,
        analysis.windows.features,
        segment_seconds,
        None if segments is None else segments.bounds,
        None if segments is None else segments.features,
    )


def _tag_stream(taggers: tuple[str, ...], music: bool):
    """Return a :class:`~genrekit.tagger.model.TagStream` at 22,050 Hz, None when nothing is asked."""
    if not taggers and not music:
        return None
    from genrekit.core.schema import SAMPLE_RATE
    from genrekit.tagger.stream import tag_stream

    return tag_stream(taggers, music, SAMPLE_RATE)


def _decode_into(path: str, stream) -> None:
    """Decode a file (as the analysis does: 22,050 Hz, block by block) into `stream` only."""
    from genrekit.audio.decode import open_audio
    from genrekit.core.schema import SAMPLE_RATE

    with open_audio(path, sr=SAMPLE_RATE) as (_, blocks):
        try:
            for block in blocks:
                stream.push(block)
        except AudioError as exc:
            message = str(exc)
            raise AudioError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from exc


def _tag_fields(stream, taggers: tuple[str, ...], music: bool, path: str) -> dict:
    """Return the ``tags`` and ``music`` of an Analysis from a finished stream (errors name `path`)."""
    from genrekit.tagger.stream import music_decision

    try:
        results = stream.finish()
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from exc
    tags = tuple(_file_tags(results[name]) for name in taggers)
    if not music:
        return {"tags": tags, "music": None}
    decision = music_decision(stream, results)
    return {"tags": tags, "music": MusicCheck(decision.probability, decision.level_dbfs, decision.is_music)}


def _file_tags(result) -> FileTags:
    """Return a :class:`~genrekit.tagger.TagResult` as the catalogue stores it (file-level values)."""
    probabilities = dict(zip(result.labels, map(float, result.probabilities), strict=True))
    return FileTags(result.tagger, probabilities, result.embedding)


def analyse_todo(item: Todo, segment_seconds: float | None = None) -> Analysis:
    """Analyse a file of the walk (:func:`analyse_file`).

    An object behind a URL keeps the size and change stamp its listing gave, which
    the next listing is compared with.
    """
    result = analyse_file(item.path, segment_seconds, item.taggers, item.music, item.tags_only)
    if remote.is_url(item.path):
        result = replace(result, size=item.size, mtime_ns=item.mtime_ns)
    return replace(result, tags_only=item.tags_only)


def analyse_or_report(item: Todo, segment_seconds: float | None = None) -> Analysis | Lost:
    """Analyse a file of the walk (:func:`analyse_todo`) in a local runner; what it raises becomes a result.

    Parameters
    ----------
    item : Todo
        The file.
    segment_seconds : float, optional
        Also compute segment features (see :func:`analyse_file`).

    Returns
    -------
    Analysis or Lost
        The analysis; :class:`Lost` when this machine lacks the URL's fsspec backend
        (not the file's fault: nothing is stored, the next scan tries it again, as on
        Dask); a failed :class:`~genrekit.library.catalogue.Analysis` naming the file
        and the error for any other exception, so that it neither stops the scan nor
        kills a worker process (which would count as a crash of the file).
    """
    try:
        return analyse_todo(item, segment_seconds)
    except remote.BackendError as exc:
        return Lost(item.path, str(exc))
    except Exception as exc:  # a bug, whatever the file: one file never stops the batch
        return _failure(item, f"analysis failed: {type(exc).__name__}: {exc}")


def timed_out(item: Todo, timeout: float, worker: str = "") -> TimedOut:
    """Return the failure stored for a file whose analysis took longer than `timeout` seconds.

    Parameters
    ----------
    item : Todo
        The file.
    timeout : float
        The limit it ran past, in seconds.
    worker : str
        The Dask worker that ran it, to be restarted ("" for a local process).

    Returns
    -------
    TimedOut
        The failure, its error naming the file and the limit.
    """
    return _failure(item, f"timed out after {timeout:g} s", TimedOut, worker=worker)


def killed_repeatedly(item: Todo, reason: str) -> Analysis:
    """Return the failure stored for a file that killed every worker that tried it.

    Parameters
    ----------
    item : Todo
        The file.
    reason : str
        How the last worker died (its exit status, or Dask's error).

    Returns
    -------
    Analysis
        The failure, its error naming the file and `reason`.
    """
    return _failure(item, f"the workers analysing it died repeatedly ({reason})")


def _failure(item: Todo, reason: str, kind: type[Analysis] = Analysis, **fields: object) -> Analysis:
    """Return the failed analysis (of class `kind`, with `fields`) of a walked file: ``path: reason``."""
    return kind(
        item.path,
        item.size,
        item.mtime_ns,
        error=f"{item.path}: {reason}",
        tags_only=item.tags_only,
        **fields,
    )


def analyse_batch(
    items: Sequence[Todo], segment_seconds: float | None = None, timeout: float | None = None
) -> list[Analysis]:
    """Analyse several files in turn with one BLAS thread (a task of a Dask worker).

    With a `timeout`, each file runs in a thread of its own; a file still running
    after `timeout` seconds is returned as :class:`TimedOut` (naming this worker,
    which the client then restarts: a Python thread cannot be stopped) and the files
    after it are left out, for the client to submit again. Outside a Dask worker
    (called directly), the scratch folder is left as it is and no worker is named.
    """
    worker = _dask_worker()
    if worker is not None:
        remote.set_scratch(worker.local_directory)  # Dask clears it, even after a killed worker
    address = "" if worker is None else worker.address
    results: list[Analysis] = []
    with threadpool_limits(1):
        for item in items:
            if timeout is None:
                result = analyse_todo(item, segment_seconds)
            else:
                result = _within(timeout, analyse_todo, item, segment_seconds)
            if result is None:
                results.append(timed_out(item, timeout, address))
                break
            results.append(result)
    return results


def _dask_worker():
    """Return the Dask worker running this task, or None outside one (or without Dask)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # ValueError: "No worker found"
        return None


def _within(timeout: float, fn: Callable[..., Analysis], *args: object) -> Analysis | None:
    """Return ``fn(*args)`` run in a thread of its own, or None when it still runs after `timeout` s."""
    box: list[Analysis | Exception] = []

    def target() -> None:
        try:
            box.append(fn(*args))
        except Exception as exc:  # raised again in the task, as without a timeout
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


def run_local(
    jobs: int | None = None, segment_seconds: float | None = None, timeout: float | None = None
) -> Runner:
    """Return a runner that analyses files on `jobs` local processes (all cores when None).

    Each process analyses one file at a time, so memory does not grow with the
    library. A file still running after `timeout` seconds is reported failed
    (:class:`TimedOut`) and its process killed and replaced; a process that dies
    (a decoder crash, out of memory) is replaced and its file tried again, up to
    :data:`LOCAL_TRIES` times, then stored as failed. Without a timeout, ``jobs=1``
    analyses in this process.
    Objects behind URLs are copied into a temporary folder of the runner's own
    (:func:`scratch_folder`), removed at the end, or by the next scan if this one is killed.
    """
    jobs = jobs or cpu_count()

    def run(todo: Iterator[Todo]) -> Iterator[list[Analysis | Lost]]:
        if jobs == 1 and timeout is None:
            with threadpool_limits(1):
                for item in todo:
                    yield [analyse_or_report(item, segment_seconds)]
            return
        scratch = scratch_folder()
        slots: list[_Slot] = []  # started when there is work (an unchanged rescan starts none)
        try:
            yield from _run_slots(slots, jobs, lambda: _Slot(segment_seconds, scratch), todo, timeout)
        finally:  # also on Ctrl-C: stop what is running
            for slot in slots:
                slot.close()
            shutil.rmtree(scratch, ignore_errors=True)

    return run


SCRATCH_PREFIX: str = "genrekit-scan-"
"""Start of the name of a local runner's temporary folder, followed by the scan's process id."""


SCRATCH_STALE_SECONDS: float = 3600.0
"""Age (of its modification time) past which a scratch folder of a process that is gone is removed.

The process id alone is not enough: where the temporary directory is shared across
PID namespaces (containers), a live scan's process id may name no process here.
A live scan's folder changes with each object it copies, so one untouched for an
hour whose process is gone is taken as left behind.
"""


def scratch_folder() -> str:
    """Make a local runner's temporary folder for copies of URL objects.

    Folders left by scans whose process is gone (killed before they could remove
    theirs) are removed first: the folder's name holds the process id, and its
    modification time must be older than :data:`SCRATCH_STALE_SECONDS`.

    Returns
    -------
    str
        The new folder, named ``genrekit-scan-<pid>-<random>`` in the temporary directory.
    """
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{SCRATCH_PREFIX}*"):
        pid = old.name[len(SCRATCH_PREFIX) :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and _older_than(old, SCRATCH_STALE_SECONDS):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")


def _older_than(path: Path, seconds: float) -> bool:
    """Whether `path` was last modified more than `seconds` ago (False when it is gone)."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Slot:
    """One worker process that analyses one file at a time, started again after a death or a timeout."""

    def __init__(self, segment_seconds: float | None, scratch: str) -> None:
        self._args = (segment_seconds, scratch)
        self.item: Todo | None = None
        self.deadline = math.inf
        self._start()

    def _start(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_serve, args=(child, *self._args), daemon=True)
        self.process.start()
        child.close()

    def send(self, item: Todo, timeout: float | None) -> None:
        """Start analysing `item`."""
        self.conn.send(item)
        self.item, self.deadline = item, math.inf if timeout is None else time.monotonic() + timeout

    def take(self) -> Analysis | Lost | None:
        """Return the finished analysis, or None when the process died without one."""
        try:
            result = self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            result = None
        self.item, self.deadline = None, math.inf
        return result

    def restart(self) -> None:
        """Kill the process (whatever it is doing) and start a fresh one."""
        self.close()
        self.item, self.deadline = None, math.inf
        self._start()

    def close(self) -> None:
        """Kill the process."""
        self.process.kill()
        self.process.join()
        self.conn.close()


def _serve(conn: Connection, segment_seconds: float | None, scratch: str) -> None:
    """Run a worker process: analyse each file received on `conn` and send the result back.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The process's end of its pipe: :class:`Todo` in, :class:`~genrekit.library.catalogue.Analysis`
        or :class:`Lost` out (:func:`analyse_or_report`: nothing a file raises ends
        the process). It returns when the runner closes the pipe.
    segment_seconds : float, optional
        Also compute segment features (see :func:`analyse_file`).
    scratch : str
        The runner's folder for copies of URL objects (:func:`scratch_folder`).
    """
    init_worker()
    remote.set_scratch(scratch)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        conn.send(analyse_or_report(item, segment_seconds))


LOCAL_TRIES: int = 2
"""Processes a file may kill (a decoder crash, out of memory) before a local scan stores it as failed."""


def _run_slots(
    slots: list[_Slot], jobs: int, new_slot: Callable[[], _Slot], todo: Iterator[Todo], timeout: float | None
) -> Iterator[list[Analysis | Lost]]:
    """Feed the files to up to `jobs` slots (added to `slots`), one each; yield each result as it comes.

    A file whose process died is fed again (before the next new file) until it has
    killed :data:`LOCAL_TRIES` processes; a file still running after `timeout`
    seconds is failed and its process restarted.
    """
    idle: list[_Slot] = []
    again: list[Todo] = []  # files to try again after their process died
    deaths: dict[str, int] = {}

    def pending() -> Todo | None:
        return again.pop() if again else next(todo, None)

    while True:
        _feed(slots, idle, jobs, new_slot, pending, timeout)
        busy = [slot for slot in slots if slot.item is not None]
        if not busy:
            return
        _wait_for_any(busy)
        for slot in busy:
            if slot.conn.poll() or not slot.process.is_alive():
                result = _collect(slot, deaths, again)
            elif time.monotonic() >= slot.deadline:
                result = _expire(slot, timeout)
            else:
                continue
            idle.append(slot)
            if result is not None:
                yield [result]


def _feed(
    slots: list[_Slot],
    idle: list[_Slot],
    jobs: int,
    new_slot: Callable[[], _Slot],
    pending: Callable[[], Todo | None],
    timeout: float | None,
) -> None:
    """Give a pending file to each idle slot, starting new slots (up to `jobs`) while files remain."""
    while idle or len(slots) < jobs:
        item = pending()
        if item is None:
            return
        if not idle:
            slots.append(new_slot())
            idle.append(slots[-1])
        idle.pop().send(item, timeout)


def _wait_for_any(busy: list[_Slot]) -> None:
    """Wait until a busy slot has a result or a dead process, or the earliest deadline passes."""
    deadline = min(slot.deadline for slot in busy)
    wait(
        [slot.conn for slot in busy] + [slot.process.sentinel for slot in busy],
        timeout=None if deadline == math.inf else max(0.0, deadline - time.monotonic()),
    )


def _collect(slot: _Slot, deaths: dict[str, int], again: list[Todo]) -> Analysis | Lost | None:
    """Take a slot's result; when its process died with the file, restart it and count the death.

    Returns
    -------
    Analysis or Lost or None
        The result; after a death, None with the file added to `again` while it
        has killed fewer than :data:`LOCAL_TRIES` processes, else its failure.
    """
    item = slot.item
    result = slot.take()
    if result is not None:
        return result
    code = slot.process.exitcode
    slot.restart()
    deaths[item.path] = deaths.get(item.path, 0) + 1
    if deaths[item.path] < LOCAL_TRIES:
        again.append(item)
        return None
    return killed_repeatedly(item, f"the last exited with status {code}")


def _expire(slot: _Slot, timeout: float) -> TimedOut:
    """Restart a slot whose file ran past its deadline; return the file's failure."""
    item = slot.item
    slot.restart()
    return timed_out(item, timeout)


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Yield the audio files at or below `root` with their stat, in the order of their path strings.

    Hidden files and folders (``.name``) are skipped and symbolic links to folders
    are not followed, like :func:`genrekit.audio.decode.audio_files`; a file
    named as `root` is taken whatever its extension. Each folder is read once and
    its entries sorted so that the whole stream is ordered like the paths as
    strings (a folder ``a`` sorts as ``a/``), the order of the catalogue's index.
    """
    if not root.is_dir():
        yield str(root), root.stat()
        return
    with os.scandir(root) as entries:
        listed = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                listed.append((entry.name + os.sep, entry))
            elif os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS and entry.is_file():
                listed.append((entry.name, entry))
    for key, entry in sorted(listed, key=lambda pair: pair[0]):
        if key.endswith(os.sep):
            yield from walk(Path(entry.path))
        else:
            yield entry.path, entry.stat()


def _listing(root: str) -> Iterator[tuple[str, int, int]]:
    """Yield ``(path, size, mtime_ns)`` of the audio files at or below `root` (a URL's: its change stamp)."""
    if remote.is_url(root):
        yield from remote.walk_url(root)
        return
    for path, stat in walk(Path(root)):
        yield path, stat.st_size, stat.st_mtime_ns


def plan(
    catalogue: Catalogue,
    roots: Iterable[str],
    report: ScanReport,
    segment_seconds: float | None = None,
    retry_failed: bool = False,
    taggers: Sequence[str] = (),
    music: bool = False,
) -> Iterator[Todo]:
    """Yield the files to analyse under `roots` and mark the vanished ones gone (counting in `report`).

    New and changed files are analysed with `taggers` and `music`; an unchanged analysed file
    that lacks some of them gets a tags-only :class:`Todo` for what it lacks.
    """
    for root in roots:
        gone: list[int] = []
        for found, entry in _merge(_listing(root), catalogue.entries(root)):
            if found is None:
                if entry.status != "gone":
                    gone.append(entry.id)
                if len(gone) >= PAGE:
                    catalogue.mark_gone(gone)
                    report.gone, gone = report.gone + len(gone), []
                continue
            todo = Todo(*found, tuple(taggers), music)
            path = todo.path
            if not path.isascii() and not _is_utf8(path):
                report.failed.append((ascii(path), f"{path!a}: the name is not valid UTF-8; rename it"))
                continue
            kind = _what_changed(entry, todo, segment_seconds, retry_failed)
            if kind == "unchanged":
                todo = _missing_tags(entry, todo)
                kind = "unchanged" if todo is None else "tagged"
            setattr(report, kind, getattr(report, kind) + 1)
            if kind != "unchanged":
                yield todo
        catalogue.mark_gone(gone)
        report.gone += len(gone)


def _is_utf8(path: str) -> bool:
    """Whether a path decoded by the OS (undecodable bytes as surrogates) is valid UTF-8 (SQLite's text)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _merge(
    found: Iterator[tuple[str, int, int]], stored: Iterator[Entry]
) -> Iterator[tuple[tuple[str, int, int] | None, Entry | None]]:
    """Pair two streams ordered by path: ``(found, entry)``, either None when the other has no match."""
    item, entry = next(found, None), next(stored, None)
    while item is not None or entry is not None:
        if entry is None or (item is not None and item[0] < entry.path):
            yield item, None
            item = next(found, None)
        elif item is None or entry.path < item[0]:
            yield None, entry
            entry = next(stored, None)
        else:
            yield item, entry
            item, entry = next(found, None), next(stored, None)


def _missing_tags(entry: Entry | None, todo: Todo) -> Todo | None:
    """Return a tags-only Todo for what an unchanged analysed file lacks of `todo`'s tags (or None)."""
    if entry is None or entry.status != "ok":
        return None
    taggers = tuple(name for name in todo.taggers if name not in entry.taggers)
    music = todo.music and not entry.music
    if not taggers and not music:
        return None
    return replace(todo, taggers=taggers, music=music, tags_only=True)


def _what_changed(entry: Entry | None, todo: Todo, segment_seconds: float | None, retry_failed: bool) -> str:
    """Classify a file on disk against its catalogue entry: new, changed, retried or unchanged."""
    if entry is None or entry.status == "gone":
        return "new"
    if (entry.size, entry.mtime_ns) != (todo.size, todo.mtime_ns):
        return "changed"
    if entry.status == "failed":
        return "retried" if retry_failed else "unchanged"
    if segment_seconds is not None and entry.segment_seconds != segment_seconds:
        return "changed"
    return "unchanged"


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    catalogue: Catalogue,
    model,
    runner: Runner | None = None,
    segment_seconds: float | None = None,
    retry_failed: bool = False,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    on_stored: Callable[[Analysis], None] | None = None,
    taggers: Sequence[str] = (),
    detect_music: bool = False,
    tagger_weights: str | os.PathLike[str] | None = None,
) -> ScanReport:
    """Bring the catalogue up to date with the files under `paths` and with `model`.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Audio files and folders (folders recursively), or their fsspec URLs
        (``s3://bucket/music``: :mod:`genrekit.library.remote`).
    catalogue : Catalogue
        The catalogue to update (this process is its only writer).
    model : GenreModel
        The current model (:func:`genrekit.load_model`).
    runner : callable, optional
        Where files are analysed: :func:`run_local` (the default, all cores) or
        :func:`genrekit.library.cluster.run_dask`.
    segment_seconds : float, optional
        Also store the features of segments of this length (3: the public
        3-second table), and analyse again the files stored without them.
    retry_failed : bool
        Analyse again the unchanged files that failed before.
    min_confidence : float
        Top probability below which a file's genre is stored as ``uncertain``
        (as is a file whose audio is unlike the training music).
    on_stored : callable, optional
        Called with each analysis once it is committed (e.g. a progress bar).
    taggers : sequence of str
        Also store each file's tags and 200-d embedding of these musicnn taggers (``msd``,
        ``mtt``); unchanged files stored without them are decoded again for them alone.
    detect_music : bool
        Also store each file's music decision (:mod:`genrekit.tagger.music`), which its stored
        verdict then follows (``not music``); on with a model loaded with ``detect_music``.
    tagger_weights : path-like, optional
        Where to read the taggers' weights when they are not yet in the cache (a musicnn
        wheel, folder or checkpoint); pip downloads them otherwise.

    Returns
    -------
    ScanReport
        What was found and done.

    Raises
    ------
    AudioError
        If a path does not exist.
    GenrekitError
        If `model` was trained on windows other than 30 s (the catalogue stores 30-s windows).
    ModelError
        If a tagger is unknown or its weights cannot be obtained.
    BackendError
        If the fsspec backend of a URL is not installed (:mod:`genrekit.library.remote`).
    """
    window = getattr(model, "window_seconds", 30.0)
    if window != 30.0:
        raise GenrekitError(
            f"this model was trained on {window:g}-second rows, and the catalogue classifies the 30-second "
            "windows it stores; predict such a model's files with `genrekit predict`"
        )
    roots = _roots(paths)
    taggers = tuple(dict.fromkeys(taggers))
    music = detect_music or getattr(model, "detect_music", False)
    if taggers or music:
        from genrekit.tagger.stream import prepare

        prepare(taggers, music, tagger_weights)
    runner = runner or run_local(segment_seconds=segment_seconds)
    report = ScanReport()
    current = model_id(model.metadata)
    report.reclassified = reclassify(catalogue, model, min_confidence)
    for results in runner(plan(catalogue, roots, report, segment_seconds, retry_failed, taggers, music)):
        analyses = [r for r in results if isinstance(r, Analysis)]
        report.lost += [(r.path, r.reason) for r in results if isinstance(r, Lost)]
        predictions = _predictions(model, current, analyses, min_confidence)
        for analysis in analyses:
            _store(catalogue, analysis, predictions.get(analysis.path), report)
            if on_stored is not None:
                on_stored(analysis)
    report.reclassified += reclassify(catalogue, model, min_confidence)  # files given a music decision
    return report


def _store(
    catalogue: Catalogue, analysis: Analysis, prediction: Prediction | None, report: ScanReport
) -> None:
    """Store one result and count it; a failed tags-only analysis leaves the stored file as it was."""
    if analysis.error is not None:
        report.failed.append((analysis.path, analysis.error))
        if not analysis.tags_only:
            catalogue.put(analysis)
    elif analysis.tags_only:
        catalogue.put_tags(analysis)
    else:
        catalogue.put(analysis, prediction)
        report.analysed += 1


def reclassify(catalogue: Catalogue, model, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> int:
    """Re-classify, from their stored window features, the files whose prediction is not `model`'s.

    Returns
    -------
    int
        How many files were re-classified.
    """
    current, total, cut = model_id(model.metadata), 0, min_confidence
    last = 0
    while batch := catalogue.stale(current, last):
        last = batch[-1].id
        catalogue.put_predictions(
            (f.id, _predict(model, current, f.path, _stored_windows(f), cut)) for f in batch
        )
        total += len(batch)
    return total


def _predictions(
    model, current: str, analyses: Sequence[Analysis], min_confidence: float
) -> dict[str, Prediction]:
    """Classify the windows of each successful analysis; path -> prediction."""
    return {
        item.path: _predict(model, current, item.path, _windows(item), min_confidence)
        for item in analyses
        if item.error is None and not item.tags_only
    }


def _stored_windows(stored):
    """Return the FileWindows of a stored file (a catalogue StoredFile), with its music probability."""
    from genrekit.prediction.model import FileWindows

    return FileWindows(stored.n_samples, stored.bounds, stored.features, stored.music)


def _windows(item: Analysis):
    """Return the FileWindows of an analysis, with its music probability when the detector ran."""
    from genrekit.prediction.model import FileWindows

    music = math.nan if item.music is None else item.music.probability
    return FileWindows(item.n_samples, item.bounds, item.features, music)


def _predict(model, current: str, path: str, windows, min_confidence: float) -> Prediction:
    """Classify one file's windows, alone and on one thread, so the result never depends on batching."""
    with threadpool_limits(1):
        (file_prediction,) = model.predict_windows([(Path(path), windows)])
    return _prediction(file_prediction, current, min_confidence)


def _prediction(file_prediction, current: str, min_confidence: float) -> Prediction:
    """Return a FilePrediction as the catalogue stores it: its verdict (genre, uncertain, not music)."""
    best = file_prediction.genre
    return Prediction(
        model_id=current,
        genre=file_prediction.verdict(min_confidence),
        best_guess=best,
        confidence=file_prediction.confidence,
        novelty=file_prediction.novelty,
        familiar=file_prediction.familiar,
        probabilities=dict(
            zip(file_prediction.classes, map(float, file_prediction.probabilities), strict=True)
        ),
    )


def _roots(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Absolute, existing, sorted roots (URLs as their backend spells them), leaving out those inside another.

    Raises
    ------
    AudioError
        If a path does not exist.
    BackendError
        If a URL's fsspec backend is not installed.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    roots = []
    for path in paths:
        if remote.is_url(path):
            roots.append(remote.root_url(path))
        elif not Path(path).exists():
            raise AudioError(f"{path}: no such file or folder")
        else:
            roots.append(str(Path(path).resolve()))
    roots.sort()
    return [root for i, root in enumerate(roots) if not any(_inside(root, r) for r in roots[:i])]


def _inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it."""
    sep = "/" if remote.is_url(root) else os.sep
    return path == root or path.startswith(root.rstrip(sep) + sep)
