"""Audio files to mono float32 signals at the feature sample rate.

WAV, FLAC, Ogg (Vorbis, Opus), MP3, AIFF and AU go through libsndfile
(:mod:`soundfile`); other containers (M4A/AAC, WMA, MP4, ...) go through an
``ffmpeg`` subprocess when the ``ffmpeg`` program is installed.

The libsndfile path reproduces :func:`librosa.load` at ``sr=22050``: float32
samples, channels mixed to mono by their mean (as :func:`librosa.to_mono`),
then resampled with soxr at quality ``"HQ"`` (librosa's default ``res_type``,
``"soxr_hq"``) and cut or zero-padded to ``ceil(n * sr / sr_orig)`` samples (as
:func:`librosa.resample`). It works block by block (:func:`open_audio`), so a
long file never needs more memory than its decoded mono result plus one block, or
only one block for a caller that consumes the blocks as they come. The ffmpeg
path lets ffmpeg mix and resample (its own resampler, not soxr).

Memory is bounded by what will be analysed: with ``max_seconds``, a file whose header (or
``ffprobe``) says it is longer is refused before any decoding, and ffmpeg is told to stop
at the limit (``-t``), so a header that lies cannot make it decode more; upsampling reads
input blocks small enough that each resampled block stays about `block_frames` long; a file
below :data:`MIN_SAMPLE_RATE` (e.g. a WAV declared at 1 Hz, which would become 22,050 samples
per byte) is refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import struct
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from genrekit.audio.features import MIN_SAMPLES
from genrekit.core.errors import AudioError
from genrekit.core.schema import GENRES, SAMPLE_RATE

SOUNDFILE_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd"}
)
"""File extensions decoded by libsndfile."""

FFMPEG_EXTENSIONS: frozenset[str] = frozenset(
    {".m4a", ".aac", ".mp4", ".m4b", ".wma", ".webm", ".mka", ".mkv", ".ac3", ".amr", ".ape", ".wv"}
)
"""File extensions decoded through an ``ffmpeg`` subprocess."""

AUDIO_EXTENSIONS: frozenset[str] = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS
"""File extensions :func:`audio_files` picks up when it walks a folder."""

CHATTY_EXTENSIONS: frozenset[str] = frozenset({".mp3", ".mp2", ".mpga"})
"""Extensions whose libsndfile decoder prints on stderr by itself (see :func:`_quiet_c_stderr`)."""

BLOCK_FRAMES: int = 1 << 16
"""Frames read (and resampled) at a time."""

ESTIMATED_LENGTH_FORMATS: frozenset[str] = frozenset({"MP3", "MPEG"})
"""libsndfile formats whose frame count is an estimate (an MP3 without a Xing/LAME header is
measured from its size and bit rate; encoder delay and padding are counted or not)."""

MP3_FRAME: int = 1152
"""Samples per MPEG-1 Layer III frame (two MPEG-2 frames): MP3 is read in multiples of it, since
libsndfile's MP3 decoder returns other samples when a read ends inside an MPEG-2 frame."""

ESTIMATE_SHORTFALL: float = 0.1
"""Share of an estimated frame count that may be missing before the file counts as truncated."""

MIN_SAMPLE_RATE: int = 4000
"""Lowest sample rate accepted, in Hz: below it a file holds nothing of the spectrum the features
describe (up to 11 kHz), and each stored sample would become many resampled ones."""

PROBE_TIMEOUT: float = 30.0
"""Seconds ``ffprobe`` may take to read a container's duration."""

_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)
"""Data-chunk sizes that streaming WAV writers use for "length unknown"."""


class TooLongError(AudioError):
    """The audio is longer than the caller accepts (``max_seconds``)."""


def load_audio(
    path: str | os.PathLike[str],
    sr: int = SAMPLE_RATE,
    min_samples: int = MIN_SAMPLES,
    block_frames: int = BLOCK_FRAMES,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode an audio file to a mono float32 signal at `sr`.

    Parameters
    ----------
    path : path-like
        The audio file. Its extension picks the decoder (see the module docstring);
        an unknown extension is tried with libsndfile.
    sr : int > 0
        Target sample rate in Hz (default 22050, the GTZAN rate).
    min_samples : int >= 0
        Shortest acceptable result, in samples at `sr` (default: the minimum
        the features need, :data:`genrekit.audio.features.MIN_SAMPLES`).
    block_frames : int > 0
        Frames decoded and resampled at a time (libsndfile path).
    max_seconds : float, optional
        Longest audio accepted; a longer file is refused before it is decoded (or, when only
        decoding tells, as soon as decoding passes the limit).

    Returns
    -------
    ndarray of shape (n,), dtype float32
        The signal, mono, at `sr`.

    Raises
    ------
    TooLongError
        If the audio is longer than `max_seconds`.
    AudioError
        If the file is missing, empty, not audio, truncated (its header promises
        more audio than it holds, or more than memory holds), has no channels, a sample rate below
        :data:`MIN_SAMPLE_RATE`, holds NaN or Inf samples, is shorter than
        `min_samples`, or needs ffmpeg and ffmpeg is not installed.
        The message starts with the file name.
    """
    with open_audio(path, sr, block_frames, max_seconds) as (n_samples, blocks):
        try:
            y = np.empty(n_samples, dtype=np.float32)
        except MemoryError:  # a header may declare any length: refuse it as this file's error
            declared = f"{n_samples / sr:,.0f} s of audio"
            raise AudioError(f"{path}: its header declares {declared}, more than memory holds") from None
        filled = 0
        for block in blocks:
            y[filled : filled + len(block)] = block
            filled += len(block)
    if len(y) < min_samples:
        raise AudioError(
            f"{path}: too short: {len(y)} samples at {sr} Hz ({len(y) / sr:.3f} s), "
            f"need at least {min_samples}"
        )
    return y


@contextlib.contextmanager
def open_audio(
    path: str | os.PathLike[str],
    sr: int = SAMPLE_RATE,
    block_frames: int = BLOCK_FRAMES,
    max_seconds: float | None = None,
) -> Iterator[tuple[int, Iterator[np.ndarray]]]:
    """Open an audio file for decoding block by block: its length at `sr`, then its samples.

    The blocks, concatenated, are exactly what :func:`load_audio` returns (which is built on
    this), but a caller that consumes them as they come never holds the whole signal: with the
    libsndfile path, memory stays at one block whatever the file's length. The ffmpeg path
    decodes the whole file first (its length is known only at the end) and yields it as one block.

    Parameters
    ----------
    path : path-like
        The audio file (see :func:`load_audio`).
    sr : int > 0
        Target sample rate in Hz.
    block_frames : int > 0
        Frames decoded and resampled at a time (libsndfile path).

    Yields
    ------
    n_samples : int
        Length of the decoded signal at `sr`, known before decoding (from the header).
    blocks : iterator of ndarray of shape (m,), dtype float32
        Consecutive mono samples at `sr`, `n_samples` in all. A block may be a buffer that the
        next block overwrites: copy what must be kept. Iterating raises :class:`AudioError` (the
        message starts with the file name) for the problems :func:`load_audio` names, a truncated
        file at the end.

    Raises
    ------
    TooLongError
        If the audio is longer than `max_seconds`.
    AudioError
        If the file is missing, empty, not audio, has no channels, a sample rate below
        :data:`MIN_SAMPLE_RATE`, or needs ffmpeg and ffmpeg is not installed.
    """
    path = Path(path)
    if sr <= 0:
        raise ValueError(f"sr must be positive, got {sr}")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        y = _load_ffmpeg(path, sr, max_seconds)
        yield len(y), iter([y])
        return
    quiet = path.suffix.lower() in CHATTY_EXTENSIONS
    with _open_soundfile(path, quiet) as handle:
        if max_seconds is not None:
            check_duration(path, handle.frames / handle.samplerate, max_seconds)
        n_samples = math.ceil(handle.frames * sr / handle.samplerate)
        yield n_samples, _soundfile_blocks(handle, path, sr, n_samples, block_frames, quiet)


def check_duration(path: str | os.PathLike[str], seconds: float, max_seconds: float) -> None:
    """Raise :class:`TooLongError` naming `path` when `seconds` exceeds `max_seconds`."""
    if seconds > max_seconds:
        raise TooLongError(f"{path}: {seconds:.1f} s of audio, longer than the limit of {max_seconds:g} s")


@contextlib.contextmanager
def _quiet_c_stderr(quiet: bool) -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to the null device while the block runs.

    libsndfile's MP3 decoder (mpg123) prints notes such as "Illegal Audio-MPEG-Header"
    straight to the process's stderr, even for files it then decodes; genrekit reports
    decoding problems itself, once, naming the file.
    """
    if not quiet:
        yield
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def _open_soundfile(path: Path, quiet: bool) -> Iterator:
    """Open `path` with libsndfile and check its header; yield the open :class:`soundfile.SoundFile`.

    With `quiet`, what the decoder prints on stderr meanwhile is dropped (see :func:`_quiet_c_stderr`).
    """
    import soundfile as sf

    _check_wav_length(path)
    try:
        with _quiet_c_stderr(quiet):
            handle = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot decode: {_sf_reason(exc)}") from exc
    with handle:
        if handle.channels < 1:
            raise AudioError(f"{path}: no audio channels")
        if handle.samplerate < MIN_SAMPLE_RATE:
            raise AudioError(
                f"{path}: sample rate {handle.samplerate} Hz is below {MIN_SAMPLE_RATE} Hz: not music audio"
            )
        yield handle


def _soundfile_blocks(
    handle, path: Path, sr: int, n_out: int, block_frames: int, quiet: bool
) -> Iterator[np.ndarray]:
    """Decode, mix and resample an open file block by block: `n_out` samples in all.

    The resampled stream is cut at `n_out` samples, or zero-padded to it, as
    :func:`librosa.resample` does. When upsampling, fewer frames are read at a time, so that
    a resampled block is about `block_frames` long too. With `quiet`, the decoder's own stderr
    notes are dropped while it reads (not while the caller works on a block).
    """
    import soundfile as sf
    import soxr

    n_frames, sr_orig = handle.frames, handle.samplerate
    estimated = handle.format in ESTIMATED_LENGTH_FORMATS
    stream = None if sr_orig == sr else soxr.ResampleStream(sr_orig, sr, 1, dtype="float32", quality="HQ")
    read_frames = max(1, min(block_frames, block_frames * sr_orig // sr))
    if estimated:
        read_frames = max(MP3_FRAME, read_frames - read_frames % MP3_FRAME)
    filled = read = 0
    flushed = stream is None
    try:
        for block in _mono_blocks(handle, read_frames, quiet):
            _check_finite(block, read, sr_orig, path)
            read += len(block)
            if read > n_frames and not estimated:
                raise AudioError(f"{path}: holds more frames than its header declares ({n_frames})")
            flushed = flushed or (read == n_frames and not estimated)
            chunk = block if stream is None else stream.resample_chunk(block, last=flushed)
            if take := min(len(chunk), n_out - filled):
                yield chunk[:take]
            filled += take
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(
            f"{path}: truncated or corrupt: decoding failed after {read} of {n_frames} frames "
            f"({_sf_reason(exc)})"
        ) from exc
    _check_complete(path, n_frames, read, estimated)
    if not flushed and (take := n_out - filled) > 0:  # the resampler's last samples
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)[:take]
        yield tail
        filled += len(tail)
    if filled < n_out:
        yield np.zeros(n_out - filled, dtype=np.float32)


def _check_complete(path: Path, n_frames: int, read: int, estimated: bool) -> None:
    """Raise `AudioError` when fewer frames were read than the header declares.

    An estimated count (see :data:`ESTIMATED_LENGTH_FORMATS`) may fall short by
    :data:`ESTIMATE_SHORTFALL` of it: the samples that were not there become silence at the end,
    as the length promised before decoding requires.
    """
    if read >= n_frames or (estimated and n_frames - read <= ESTIMATE_SHORTFALL * n_frames):
        return
    raise AudioError(f"{path}: truncated: header declares {n_frames} frames, only {read} could be read")


def _check_finite(block: np.ndarray, offset: int, sr: int, path: Path) -> None:
    """Raise `AudioError` naming the first NaN or Inf sample of `block` (frame `offset` onwards).

    One float64 sum tells whether any sample is not finite (float32 values cannot overflow it);
    only then is the block searched.
    """
    if np.isfinite(np.add.reduce(block, dtype=np.float64)):
        return
    bad = offset + int(np.flatnonzero(~np.isfinite(block))[0])
    raise AudioError(f"{path}: NaN or Inf sample at {bad / sr:.3f} s (frame {bad})")


_MAX_SEQUENTIAL_CHANNELS = 7
"""Most channels NumPy's ``mean(axis=1)`` adds one after another (from 8 on it sums pairwise)."""


def _mono_blocks(handle, block_frames: int, quiet: bool = False) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks (the mean of the channels) of an open :class:`soundfile.SoundFile`.

    Frames are read into one reused buffer (no new pages per block) and mixed with in-place
    additions in channel order, then divided by the channel count: the same operations, in the
    same order and precision, as ``block.mean(axis=1, dtype=np.float32)``, so the same values,
    several times faster than NumPy's strided reduction. The yielded array is reused by the next
    block. With `quiet`, the decoder's stderr is dropped during each read.
    """
    channels = handle.channels
    buffer = np.empty((block_frames, channels), dtype=np.float32)
    mono = np.empty(block_frames, dtype=np.float32)
    while True:
        with _quiet_c_stderr(quiet):
            block = handle.read(block_frames, dtype="float32", always_2d=True, out=buffer)
        n = len(block)
        if n == 0:
            return
        if channels == 1:
            yield block[:, 0]
        elif channels > _MAX_SEQUENTIAL_CHANNELS:
            yield block.mean(axis=1, dtype=np.float32)
        else:
            out = mono[:n]
            np.add(block[:, 0], block[:, 1], out=out)
            for k in range(2, channels):
                out += block[:, k]
            out /= np.float32(channels)
            yield out


def _sf_reason(exc: Exception) -> str:
    """Return the libsndfile reason of `exc`, without the file name soundfile puts in front.

    libsndfile says a regular file "does not exist" when no decoder recognises it;
    that is reworded, since the file does exist.
    """
    text = str(exc)
    reason = text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text
    if "does not exist or is not a regular file" in reason:
        return "not a recognised audio format, or its header is corrupt"
    return reason


def _check_wav_length(path: Path) -> None:
    """Raise `AudioError` if a RIFF/WAVE file's data chunk declares more bytes than the file holds.

    libsndfile silently shortens such files to the bytes present, which would
    hide a truncated download or copy; other formats are checked while reading.
    """
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size not in _UNKNOWN_WAV_SIZES and chunk_size > available:
                    raise AudioError(
                        f"{path}: truncated: header declares {chunk_size} bytes of audio, "
                        f"the file holds {available}"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def ffmpeg_command(path: str | os.PathLike[str], sr: int = SAMPLE_RATE, ffmpeg: str = "ffmpeg") -> list[str]:
    """Return the ffmpeg command that decodes `path` to mono float32 at `sr` on stdout.

    Parameters
    ----------
    path : path-like
        The audio file.
    sr : int > 0
        Target sample rate in Hz.
    ffmpeg : str
        The ffmpeg program.

    Returns
    -------
    list of str
        The command line: first audio stream, mixed to one channel, raw
        little-endian float32 (``f32le``) samples on stdout.
    """
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", os.fspath(path),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]  # fmt: skip


def probe_seconds(path: str | os.PathLike[str], ffprobe: str = "ffprobe") -> float | None:
    """Return the duration a container declares, read by ``ffprobe`` without decoding the audio.

    Parameters
    ----------
    path : path-like
        The audio file.
    ffprobe : str
        The ffprobe program.

    Returns
    -------
    float or None
        Seconds, as ffprobe reports them (for some formats, such as raw AAC, an estimate from
        the bit rate); None when ffprobe is not installed, fails, takes longer than
        :data:`PROBE_TIMEOUT` or reports no duration.
    """
    program = shutil.which(ffprobe)
    if program is None:
        return None
    entries = ["-show_entries", "format=duration", "-of", "default=nw=1:nk=1"]
    command = [program, "-v", "error", *entries, os.fspath(path)]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT, check=False
        )
        seconds = float(done.stdout.decode(errors="replace").strip() or "nan")
    except (subprocess.TimeoutExpired, ValueError):
        return None
    return seconds if done.returncode == 0 and math.isfinite(seconds) else None


def _load_ffmpeg(path: Path, sr: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode through an ffmpeg subprocess (containers libsndfile cannot read).

    With `max_seconds`, the duration ffprobe reads from the container is checked first, and
    ffmpeg stops decoding just past the limit (``-t``), so memory never exceeds that much audio.
    """
    program = shutil.which("ffmpeg")
    if program is None:
        raise AudioError(f"{path}: cannot decode {path.suffix.lower()} without ffmpeg; install ffmpeg")
    command = ffmpeg_command(path, sr, program)
    if max_seconds is not None:
        declared = probe_seconds(path)
        if declared is not None:
            check_duration(path, declared, max_seconds)
        command[-1:-1] = ["-t", f"{max_seconds + 1:.6f}"]
    buffer = bytearray()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        while chunk := proc.stdout.read(1 << 20):
            buffer += chunk
        stderr = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        reason = stderr.splitlines()[-1] if stderr else f"ffmpeg exited with status {proc.returncode}"
        raise AudioError(f"{path}: cannot decode: {reason}")
    usable = len(buffer) - len(buffer) % 4
    if max_seconds is not None and usable // 4 > max_seconds * sr:
        raise TooLongError(f"{path}: longer than the limit of {max_seconds:g} s (decoding stopped there)")
    y = np.frombuffer(memoryview(buffer)[:usable], dtype="<f4").astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise AudioError(f"{path}: NaN or Inf sample at {bad / sr:.3f} s")
    return y


def audio_files(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into the list of audio files to process.

    A folder is walked recursively and contributes its files whose extension is
    in :data:`AUDIO_EXTENSIONS` (case-insensitive), sorted by path; hidden files
    and folders (names starting with ``.``) are skipped. A file named
    explicitly is always taken, whatever its extension. Duplicates are dropped,
    keeping the first occurrence.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Files and folders.

    Returns
    -------
    list of Path
        The audio files, in argument order, each folder's files sorted.

    Raises
    ------
    AudioError
        If a path does not exist.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: dict[Path, None] = {}
    for item in map(Path, paths):
        if item.is_dir():
            found.update(dict.fromkeys(_walk_audio(item)))
        elif item.exists():
            found[item] = None
        else:
            raise AudioError(f"{item}: no such file or folder")
    return list(found)


def _walk_audio(folder: Path) -> list[Path]:
    """Return the non-hidden audio files under `folder`, recursively, sorted."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [
            Path(root, name)
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
        ]
    return sorted(files)


def genre_from_path(path: str | os.PathLike[str], genres: Iterable[str] | None = GENRES) -> str:
    """Return the genre named by the folder holding `path`, or ``""``.

    Parameters
    ----------
    path : path-like
        An audio file, e.g. ``gtzan/blues/blues.00000.wav``.
    genres : iterable of str or None
        The genre names (default: the ten GTZAN genres); None accepts any
        folder name (your own genre folders).

    Returns
    -------
    str
        The parent folder's name when it is one of `genres` (or any name when
        `genres` is None), else ``""``.
    """
    parent = Path(path).parent.name
    return parent if genres is None or parent in set(genres) else ""
