"""Record batches: the unit zafka appends, replicates and serves (DESIGN §2, docs/STORAGE.md).

A batch is a 61-byte big-endian header (Kafka RecordBatch v2 layout) followed by the records,
packed with msgpack once per batch as four columns (timestamp deltas, keys, values, headers)
and compressed with zstd level 1. The CRC-32C covers every byte from `attributes` (offset 21)
to the end, so a leader stamps `base_offset` and `leader_epoch` in place (`stamp`) without
recomputing it, and the broker validates a batch (`check_batch`) without decompressing it.
This module is the header and the producer side (`build_batch`); only clients open the
payload, with `storage/records.py` (`read_batch`, `read_records`).

Pure functions: no I/O. The zstd compressor and the msgpack packer are cached per thread
(they are not thread-safe, and a compressor costs ~10 µs to create, a quarter of the time a
16 KiB batch takes to build). Every per-record pass is a C-level call (`map`, `zip`, `sum`):
no Python bytecode runs per record.
"""

from __future__ import annotations

import operator
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from typing import Any, TypeAlias

import crc32c
import msgpack
import zstandard

from zafka import limits
from zafka.errors import ZafkaError

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = 61
LENGTH_PREFIX_SIZE = 12  # base_offset + batch_length: batch size = 12 + batch_length
CRC_START = 21  # the CRC covers [21, end): everything after the fields a leader stamps
FORMAT_VERSION = 1
CODEC_NONE = 0
CODEC_ZSTD = 1
CODEC_MASK = 0x07  # attributes bits 0-2
CONTROL_FLAG = 0x10  # attributes bit 4
assert HEADER.size == HEADER_SIZE

_CODECS = (CODEC_NONE, CODEC_ZSTD)
_KNOWN_ATTRIBUTES = CODEC_MASK | CONTROL_FLAG
_LEADER_EPOCH_POS = 12
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_SHAPE = "every record must be (timestamp, key, value, headers)"

Buffer: TypeAlias = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    leader_epoch: int
    format_version: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return LENGTH_PREFIX_SIZE + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def codec(self) -> int:
        return self.attributes & CODEC_MASK

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_FLAG)


_new_header = object.__new__
_HEADER_SETTERS = tuple(getattr(BatchHeader, name).__set__ for name in BatchHeader.__slots__)


def corrupt(detail: str) -> ZafkaError:
    """The CORRUPT_MESSAGE error for a malformed batch (also raised by `storage/records.py`)."""
    return ZafkaError("CORRUPT_MESSAGE", detail)


def _header(fields: tuple[int, ...]) -> BatchHeader:
    # Through the slot descriptors: 1.5x faster than the generated frozen __init__.
    header = _new_header(BatchHeader)
    for set_field, value in zip(_HEADER_SETTERS, fields, strict=True):
        set_field(header, value)
    return header


def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """The header at `pos`, unchecked. CORRUPT_MESSAGE if fewer than 61 bytes remain."""
    remaining = len(buf) - pos
    if pos < 0 or remaining < HEADER_SIZE:
        raise corrupt(f"{max(remaining, 0)} bytes at {pos}, a batch header needs {HEADER_SIZE}")
    return _header(HEADER.unpack_from(buf, pos))


def check_batch(buf: Buffer) -> BatchHeader:
    """Validate one whole batch (header, limits, CRC) without decompressing it.

    Allocates nothing proportional to the sizes the header declares. Raises
    CORRUPT_MESSAGE, or MESSAGE_TOO_LARGE when the batch exceeds `limits.batch_bytes_max`.
    """
    if len(buf) < HEADER_SIZE:
        raise corrupt(f"{len(buf)} bytes, a batch header needs {HEADER_SIZE}")
    fields = HEADER.unpack_from(buf)
    _, length, _, version, crc, attributes, last_delta, *_, count = fields
    size = LENGTH_PREFIX_SIZE + length
    if version != FORMAT_VERSION:
        raise corrupt(f"format version {version}, expected {FORMAT_VERSION}")
    if size != len(buf):
        raise corrupt(f"batch_length {length} says {size} bytes, got {len(buf)}")
    if size > limits.batch_bytes_max:
        raise ZafkaError(
            "MESSAGE_TOO_LARGE", f"batch of {size} bytes, limit {limits.batch_bytes_max}"
        )
    if not 1 <= count <= limits.batch_records_max:
        raise corrupt(f"record_count {count} outside 1..{limits.batch_records_max}")
    if last_delta != count - 1:
        raise corrupt(f"last_offset_delta {last_delta} with record_count {count}")
    if attributes & ~_KNOWN_ATTRIBUTES:
        raise corrupt(f"unknown attribute bits in {attributes:#06x}")
    if (attributes & CODEC_MASK) not in _CODECS:
        raise corrupt(f"unknown codec {attributes & CODEC_MASK}")
    actual = crc32c.crc32c(memoryview(buf)[CRC_START:])
    if actual != crc:
        raise corrupt(f"CRC-32C {actual:#010x}, header says {crc:#010x}")
    return _header(fields)


def stamp(buf: bytearray | memoryview, base_offset: int, leader_epoch: int) -> None:
    """Write base_offset and leader_epoch in place; the CRC does not cover them."""
    if len(buf) < HEADER_SIZE:
        raise corrupt(f"{len(buf)} bytes, a batch header needs {HEADER_SIZE}")
    _INT64.pack_into(buf, 0, base_offset)
    _INT32.pack_into(buf, _LEADER_EPOCH_POS, leader_epoch)


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    try:
        return _local.compressor
    except AttributeError:
        _local.compressor = zstandard.ZstdCompressor(level=1, write_content_size=True)
        return _local.compressor


def _packer() -> msgpack.Packer:
    """Reused, so its buffer is allocated once: msgpack.packb allocates 256 KiB per call, which
    glibc often maps and unmaps (a page fault every 4 KiB: up to 15% of a 256 KiB build)."""
    try:
        return _local.packer
    except AttributeError:
        _local.packer = msgpack.Packer(autoreset=False)
        return _local.packer


_PACKER_KEEP_BYTES = 4 * 1024 * 1024  # a Packer keeps its largest buffer: not one above this
_TRANSPOSE_STEP = 512  # rows per zip(*rows): fewer live objects than gen 0's GC threshold


def _columns(records: Sequence[Sequence[Any]]) -> tuple[Sequence[Any], ...]:
    """The four columns of `(timestamp, key, value, headers)` rows, transposed in C.

    ValueError unless every record has four items (`strict`: as many as the first; the
    unpacking: four). `zip(*rows)` holds one iterator per row at once, and 700 new objects
    set off the cycle collector (gen 0), whose passes cost 2-5% of a 256 KiB or 1 MiB
    build: batches above 512 records go 512 rows at a time.
    """
    if len(records) <= _TRANSPOSE_STEP:
        stamps, keys, values, headers = zip(*records, strict=True)
        return stamps, keys, values, headers
    stamps, keys, values, headers = [], [], [], []
    rows = iter(records)
    for _ in range(0, len(records), _TRANSPOSE_STEP):
        s, k, v, h = zip(*islice(rows, _TRANSPOSE_STEP), strict=True)
        stamps += s
        keys += k
        values += v
        headers += h
    return stamps, keys, values, headers


def build_batch(
    records: Sequence[Sequence[Any]],
    *,
    codec: int = CODEC_ZSTD,
    base_offset: int = 0,
    leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    control: bool = False,
) -> bytes:
    """One batch of `(timestamp_ms, key, value, headers)` records, CRC included.

    MESSAGE_TOO_LARGE above `limits.batch_records_max` records or `limits.batch_bytes_max`
    bytes; INVALID_REQUEST for no records, an unknown codec, a record that is not four items,
    a timestamp that is not an integer, or a value that msgpack or the header cannot hold.

    Key, value and header *types* are the caller's contract (bytes or None; None or a list
    of (str, bytes) pairs), checked per record where records enter (`Producer.send`):
    checking them again here costs ~10-15% of the encode speed. A batch that breaks it is
    refused by every reader (`records.read_batch`: CORRUPT_MESSAGE), never misread.
    """
    count = len(records)
    if count == 0:
        raise ZafkaError("INVALID_REQUEST", "a batch needs at least one record")
    if count > limits.batch_records_max:
        raise ZafkaError("MESSAGE_TOO_LARGE", f"{count} records, limit {limits.batch_records_max}")
    if codec not in _CODECS:
        raise ZafkaError("INVALID_REQUEST", f"unknown codec {codec}")
    packer = _packer()
    try:
        stamps, keys, values, headers = _columns(records)
        first = stamps[0]
        deltas = list(map(operator.sub, stamps, repeat(first)))
        # Any float (time.time() * 1000), Decimal, ... makes the sum one: 4x cheaper than
        # set(map(type, deltas)). (A bool timestamp gives an int delta, as it always did.)
        if type(sum(deltas)) is not int:
            raise TypeError("record timestamps must be integers")
        high = first + max(deltas)
        if headers.count(None) == count:
            headers = None  # type: ignore[assignment]
        packer.pack((deltas, keys, values, headers))  # on an error, the packer empties itself
    except (TypeError, ValueError, LookupError, OverflowError) as exc:
        raise ZafkaError("INVALID_REQUEST", f"{_SHAPE}: {exc}") from None
    try:
        with packer.getbuffer() as packed:
            payload = _compressor().compress(packed) if codec == CODEC_ZSTD else bytes(packed)
            if len(packed) > _PACKER_KEEP_BYTES:
                del _local.packer  # it keeps its largest buffer: not one this large
    finally:
        packer.reset()
    size = HEADER_SIZE + len(payload)
    if size > limits.batch_bytes_max:
        raise ZafkaError(
            "MESSAGE_TOO_LARGE", f"batch of {size} bytes, limit {limits.batch_bytes_max}"
        )
    fields = [base_offset, size - LENGTH_PREFIX_SIZE, leader_epoch, FORMAT_VERSION, 0]
    fields += [codec | (CONTROL_FLAG if control else 0), count - 1, first, high]
    fields += [producer_id, producer_epoch, base_sequence, count]
    try:
        head = HEADER.pack(*fields)
        fields[4] = crc32c.crc32c(payload, crc32c.crc32c(head[CRC_START:]))
        return HEADER.pack(*fields) + payload
    except struct.error as exc:
        raise ZafkaError("INVALID_REQUEST", f"header field out of range: {exc}") from None
