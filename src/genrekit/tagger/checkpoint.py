"""Read TensorFlow (1.x and 2.x) "V2" checkpoints without TensorFlow.

A V2 checkpoint ``PREFIX`` is two files: ``PREFIX.index``, a LevelDB-style sorted string
table (SSTable) that maps every variable name to a serialized ``BundleEntryProto`` (data type,
shape, shard, byte offset and length, CRC32C), and ``PREFIX.data-00000-of-00001``, the raw
little-endian tensor bytes. This module decodes both with the standard library and NumPy:

* the SSTable: footer (two block handles and the magic number), index block, data blocks
  (prefix-compressed keys with restart points; TensorFlow writes them uncompressed);
* the protocol buffer wire format, only as far as ``BundleEntryProto`` and
  ``TensorShapeProto`` need (varints, fixed32/64 and length-delimited fields);
* tensor bytes, checked against the entry's masked CRC32C.

Only the dense numeric types a model's weights use are supported; a checkpoint with partitioned
(sliced) variables or compressed blocks is refused with a :class:`~genrekit.core.errors.ModelError`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.errors import ModelError

TABLE_MAGIC: int = 0xDB4775248B80FB57
"""Last eight bytes of every LevelDB/TensorFlow table file."""

_FOOTER_SIZE = 48
_BLOCK_TRAILER = 5  # one byte compression type + four bytes CRC32C

# tensorflow/core/framework/types.proto
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    19: np.dtype("<f2"),
}


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lies in the data shard (a decoded ``BundleEntryProto``)."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; return the value and the next position."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Split a serialized protocol buffer message into (field number, value) pairs.

    Varint and fixed-width values come back as int, length-delimited ones as bytes.
    """
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        out.append((number, value))
    return out


def _shape(buf: bytes) -> tuple[int, ...]:
    """Decode a ``TensorShapeProto`` (field 2: repeated Dim, whose field 1 is the size)."""
    dims = []
    for number, value in _fields(buf):
        if number == 2 and isinstance(value, bytes):
            size = dict(_fields(value)).get(1, 0)
            dims.append(int(size))
        elif number == 3 and value:
            raise ValueError("tensor of unknown rank")
    return tuple(dims)


def parse_entry(buf: bytes) -> BundleEntry:
    """Decode a serialized ``BundleEntryProto``.

    Parameters
    ----------
    buf : bytes
        The value the index table holds for one tensor name.

    Returns
    -------
    BundleEntry
        Its data type code, shape, shard, offset, size, CRC32C and whether it is sliced.
    """
    values: dict[int, int | bytes] = {}
    sliced = False
    for number, value in _fields(buf):
        if number == 7:
            sliced = True
        values[number] = value
    shape = values.get(2, b"")
    return BundleEntry(
        dtype=int(values.get(1, 0)),
        shape=_shape(shape) if isinstance(shape, bytes) else (),
        shard_id=int(values.get(3, 0)),
        offset=int(values.get(4, 0)),
        size=int(values.get(5, 0)),
        crc32c=int(values[6]) if 6 in values else None,
        sliced=sliced,
    )


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    """Decode a BlockHandle (offset and size varints); return offset, size, next position."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int) -> bytes:
    """Return the contents of the table block at `offset` after checking its trailer."""
    if offset + size + _BLOCK_TRAILER > len(data):
        raise ValueError("block runs past the end of the file")
    kind = data[offset + size]
    if kind != 0:
        raise ValueError(f"compressed table block (type {kind}) is not supported")
    return data[offset : offset + size]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Decode every (key, value) of a table block (prefix-compressed keys)."""
    if len(block) < 4:
        raise ValueError("table block too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise ValueError("bad restart count in table block")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_length, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_length > end:
            raise ValueError("corrupt table block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def read_index(data: bytes) -> dict[str, BundleEntry]:
    """Decode a checkpoint's ``.index`` file: variable name -> :class:`BundleEntry`.

    Parameters
    ----------
    data : bytes
        The whole ``.index`` file.

    Returns
    -------
    dict of str to BundleEntry
        Every tensor of the checkpoint (the bundle header, stored under the empty key, is left out).

    Raises
    ------
    ValueError
        If the bytes are not a TensorFlow table (bad magic, truncated or corrupt blocks).
    """
    if len(data) < _FOOTER_SIZE:
        raise ValueError("too short for a checkpoint index")
    footer = data[-_FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad table magic)")
    _, _, pos = _block_handle(footer, 0)  # the metaindex block: empty in tensor bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    entries: dict[str, BundleEntry] = {}
    for _, handle in _block_entries(_read_block(data, index_offset, index_size)):
        offset, size, _ = _block_handle(handle, 0)
        for key, value in _block_entries(_read_block(data, offset, size)):
            if key:
                entries[key.decode("utf-8")] = parse_entry(value)
    return entries


def _crc32c_table() -> np.ndarray:
    """Return the 256-entry lookup table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_CRC_TABLE: list[int] = _crc32c_table().tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (the checksum TensorFlow stores for tensors and blocks)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Undo LevelDB's CRC masking (``rotate right 17`` after subtracting ``0xA282EAD8``)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def checkpoint_files(prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return the ``.index`` and ``.data-00000-of-00001`` files of a checkpoint prefix or folder.

    Parameters
    ----------
    prefix : path-like
        A checkpoint prefix, or a folder that holds exactly one ``*.index`` file.

    Returns
    -------
    (Path, Path)
        The index file and the (single) data shard; they need not exist.

    Raises
    ------
    ModelError
        If `prefix` is a folder without exactly one index file.
    """
    text = os.fspath(prefix)
    if os.path.isdir(text):
        found = sorted(name for name in os.listdir(text) if name.endswith(".index"))
        if len(found) != 1:
            raise ModelError(
                f"{text}: expected one checkpoint (*.index file) in the folder, found {len(found)}"
            )
        text = os.path.join(text, found[0][: -len(".index")])
    return Path(text + ".index"), Path(text + ".data-00000-of-00001")


def read_checkpoint(
    prefix: str | os.PathLike[str], names: set[str] | None = None, *, verify_crc: bool = False
) -> dict[str, np.ndarray]:
    """Read the tensors of a V2 checkpoint as NumPy arrays.

    Parameters
    ----------
    prefix : path-like
        The checkpoint prefix: ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` are read.
        A folder holding one ``*.index`` file stands for that checkpoint (musicnn names its
        files ``.index`` and ``.data-00000-of-00001``, an empty prefix inside a folder).
    names : set of str, optional
        Only these variables (all of them when omitted).
    verify_crc : bool
        Check each tensor read against the CRC32C its entry stores (pure Python: about a
        second per 10 MB; the tagger checks SHA-256 of the whole files instead).

    Returns
    -------
    dict of str to ndarray
        Variable name -> array of its shape and dtype.

    Raises
    ------
    ModelError
        If a file is missing, the index is not a checkpoint index, a tensor is of an
        unsupported type, sliced, in another shard, out of the data file's bounds, or
        fails its checksum; the message names the file and the variable.
    """
    index_path, data_path = checkpoint_files(prefix)
    try:
        entries = read_index(index_path.read_bytes())
    except OSError as exc:
        raise ModelError(f"{index_path}: cannot read checkpoint index ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ModelError(f"{index_path}: {exc}") from exc
    wanted = entries.keys() if names is None else names
    missing = sorted(set(wanted) - entries.keys())
    if missing:
        raise ModelError(f"{index_path}: no variable {missing[0]!r} in the checkpoint")
    try:
        blob = data_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{data_path}: cannot read checkpoint data ({exc.strerror or exc})") from exc
    return {name: _tensor(blob, name, entries[name], data_path, verify_crc) for name in sorted(wanted)}


def _tensor(blob: bytes, name: str, entry: BundleEntry, path: Path, verify_crc: bool) -> np.ndarray:
    """Cut one tensor out of the data shard, checking type, bounds and (optionally) its CRC."""
    where = f"{path}: variable {name!r}"
    dtype = _DTYPES.get(entry.dtype)
    if dtype is None:
        raise ModelError(f"{where}: unsupported data type code {entry.dtype}")
    if entry.sliced or entry.shard_id != 0:
        raise ModelError(f"{where}: sliced or multi-shard variables are not supported")
    count = int(np.prod(entry.shape, dtype=np.int64))
    if entry.size != count * dtype.itemsize or entry.offset + entry.size > len(blob):
        raise ModelError(f"{where}: size or offset does not match its shape {entry.shape}")
    raw = blob[entry.offset : entry.offset + entry.size]
    if verify_crc and entry.crc32c is not None and crc32c(raw) != unmask_crc(entry.crc32c):
        raise ModelError(f"{where}: CRC32C mismatch (corrupt checkpoint data)")
    return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
