"""Kafka's RecordBatch v2 (magic 2) <-> zafka's records, both ways, as pure functions.

A Kafka batch is the 61-byte header zafka's batches share (storage/batch.py), then the
records, each `length, attributes, timestamp delta, offset delta, key, value, headers` in
zigzag varints, compressed as a whole by the codec in attributes bits 0-2 (gzip, snappy,
lz4, zstd). `decode_batches` turns what a Kafka producer sent into checked batches of
`(timestamp, key, value, headers)` records with their producer fields; `encode_batch` turns
one stored zafka batch into an uncompressed Kafka batch for a Kafka consumer (the bytes a
consumer gets are never recompressed: a fetch costs the broker no compression).

Everything a peer sends is bounded: the decompressed size by `limits.decompressed_bytes_max`,
a record's fields by the bytes that are there. Any malformation is CORRUPT_MESSAGE, as
Kafka's broker answers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from itertools import count, repeat
from typing import NamedTuple

import cramjam
import crc32c
import lz4.frame
import zstandard

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage.batch import HEADER, HEADER_SIZE, LENGTH_PREFIX_SIZE
from zafka.storage.records import RecordBatch

MAGIC = 2
CODEC_MASK = 0x07
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20
_XERIAL_MAGIC = b"\x82SNAPPY\x00"  # the Java client's snappy framing (xerial)
_INT32 = struct.Struct(">i")

Headers = tuple[tuple[str, bytes | None], ...] | None


class KafkaBatch(NamedTuple):
    """One batch a Kafka producer sent, decoded and checked."""

    records: list[tuple[int, bytes | None, bytes | None, Headers]]
    producer_id: int
    producer_epoch: int
    base_sequence: int
    transactional: bool
    codec: int


def corrupt(detail: str) -> ZafkaError:
    return ZafkaError("CORRUPT_MESSAGE", f"Kafka record batch: {detail}")


# --- varints ---------------------------------------------------------------------------------


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    """A zigzag varint (up to 10 bytes: a varlong) at `at`: (value, next position)."""
    shift = result = 0
    while True:
        if at >= len(buf):
            raise corrupt("a varint runs past the end")
        byte = buf[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7
        if shift > 63:
            raise corrupt("a varint is longer than 10 bytes")


def _put_varint(out: bytearray, value: int) -> None:
    value = (value << 1) ^ (value >> 63)
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _bytes(buf: bytes, at: int) -> tuple[bytes | None, int]:
    length, at = _varint(buf, at)
    if length < 0:
        return None, at
    if at + length > len(buf):
        raise corrupt(f"a field of {length} bytes runs past the end")
    return buf[at : at + length], at + length


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _put_varint(out, -1)
    else:
        _put_varint(out, len(value))
        out += value


# --- producer batches in ---------------------------------------------------------------------


def split_batches(data: bytes) -> Iterator[memoryview]:
    """Each whole batch in a Produce request's records (CORRUPT_MESSAGE for a partial one)."""
    view, at = memoryview(data), 0
    while at < len(view):
        if len(view) - at < LENGTH_PREFIX_SIZE:
            raise corrupt(f"{len(view) - at} trailing bytes are no batch")
        size = LENGTH_PREFIX_SIZE + _INT32.unpack_from(view, at + 8)[0]
        if not HEADER_SIZE <= size <= len(view) - at:
            raise corrupt(f"batch length {size} at byte {at} does not fit")
        yield view[at : at + size]
        at += size


def decode_batch(batch: memoryview) -> KafkaBatch:
    """One whole v2 batch: checked (magic, CRC-32C, lengths, contiguous offsets), decompressed
    within the limit, its records as (timestamp, key, value, headers)."""
    fields = HEADER.unpack_from(batch)
    _, _, _, magic, crc, attributes, last_delta, first_ts, _, pid, epoch, sequence, count = fields
    if magic != MAGIC:
        raise corrupt(f"magic {magic}: only record batch v2 (magic 2) is supported")
    if crc32c.crc32c(batch[21:]) != crc:
        raise corrupt("CRC-32C mismatch")
    if attributes & CONTROL_FLAG:
        raise corrupt("a producer may not send control batches")
    if not 0 < count <= limits.batch_records_max or last_delta != count - 1:
        raise corrupt(f"{count} records with last offset delta {last_delta}")
    body = _decompress(attributes & CODEC_MASK, bytes(batch[HEADER_SIZE:]))
    records, at = [], 0
    for expected_delta in range(count):
        record, at = _record(body, at, first_ts, expected_delta)
        records.append(record)
    if at != len(body):
        raise corrupt(f"{len(body) - at} bytes after the last record")
    transactional = bool(attributes & TRANSACTIONAL_FLAG)
    return KafkaBatch(records, pid, epoch, sequence, transactional, attributes & CODEC_MASK)


def _record(body: bytes, at: int, first_ts: int, expected_delta: int):
    length, at = _varint(body, at)
    end = at + length
    if length < 0 or end > len(body):
        raise corrupt(f"a record of {length} bytes does not fit")
    at += 1  # attributes: unused in v2
    ts_delta, at = _varint(body, at)
    offset_delta, at = _varint(body, at)
    if offset_delta != expected_delta:
        raise corrupt(f"offset delta {offset_delta} where {expected_delta} was due")
    key, at = _bytes(body, at)
    value, at = _bytes(body, at)
    count, at = _varint(body, at)
    if not 0 <= count <= end - at:
        raise corrupt(f"{count} record headers")
    headers = []
    for _ in range(count):
        name, at = _bytes(body, at)
        header_value, at = _bytes(body, at)
        if name is None:
            raise corrupt("a record header without a key")
        try:
            headers.append((name.decode(), header_value))
        except UnicodeDecodeError:
            raise corrupt("a record header key is not UTF-8") from None
    if at != end:
        raise corrupt("a record's length does not match its fields")
    return (first_ts + ts_delta, key, value, tuple(headers) or None), at


def _decompress(codec: int, data: bytes) -> bytes:
    most = limits.decompressed_bytes_max
    try:
        if codec == 0:
            return data
        if codec == 1:
            return _bounded(zlib.decompressobj(16 + zlib.MAX_WBITS), data, most)
        if codec == 2:
            return _snappy(data, most)
        if codec == 3:
            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=most + 1)
        elif codec == 4:
            out = _zstd(data, most)
        else:
            raise corrupt(f"unknown compression codec {codec}")
    except ZafkaError:
        raise
    except Exception as exc:  # each codec library has its own errors
        raise corrupt(f"{CODECS.get(codec)} payload: {type(exc).__name__}: {exc}") from None
    if len(out) > most:
        raise corrupt(f"decompresses to more than {most} bytes")
    return out


def _bounded(inflater, data: bytes, most: int) -> bytes:
    out = inflater.decompress(data, most + 1)
    if len(out) > most:
        raise corrupt(f"decompresses to more than {most} bytes")
    return out


def _zstd(data: bytes, most: int) -> bytes:
    """Every frame in `data` (a frame need not declare its size), stopping past `most`."""
    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    parts, total = [], 0
    while total <= most and (part := reader.read(most + 1 - total)):
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def _snappy(data: bytes, most: int) -> bytes:
    """Raw snappy (librdkafka) or the xerial framing (the Java client): blocks of
    [int32 length][raw snappy] after a 16-byte header."""
    if not data.startswith(_XERIAL_MAGIC):
        return _snappy_block(data, most)
    parts, at, total = [], 16, 0
    while at < len(data):
        (size,) = _INT32.unpack_from(data, at)
        if size < 0 or at + 4 + size > len(data):
            raise corrupt("a snappy block does not fit")
        part = _snappy_block(data[at + 4 : at + 4 + size], most - total)
        parts.append(part)
        total += len(part)
        at += 4 + size
    return b"".join(parts)


def _snappy_block(data: bytes, most: int) -> bytes:
    if cramjam.snappy.decompress_raw_len(data) > most:
        raise corrupt(f"decompresses to more than {most} bytes")
    return bytes(cramjam.snappy.decompress_raw(data))


# --- stored batches out ----------------------------------------------------------------------


def encode_batch(batch: RecordBatch) -> bytes:
    """One stored zafka batch as a Kafka v2 batch, uncompressed, with the same offsets,
    timestamps and producer fields. A control batch (a marker Kafka clients cannot parse)
    goes out with no records: a Kafka consumer steps over it by its last offset delta.

    The hot path of a Kafka consumer's fetch: per record only table lookups and
    concatenations (the varints of small numbers are precomputed)."""
    h = batch.header
    control = h.is_control
    body = b"" if control else _records(batch)
    attributes = CONTROL_FLAG if control else 0
    fields = (h.base_offset, HEADER_SIZE - LENGTH_PREFIX_SIZE + len(body), h.leader_epoch)
    fields += (MAGIC, 0, attributes, h.last_offset_delta, h.first_timestamp, h.max_timestamp)
    fields += (h.producer_id, h.producer_epoch, h.base_sequence, 0 if control else len(batch))
    out = bytearray(HEADER.pack(*fields))
    out += body
    struct.pack_into(">I", out, 17, crc32c.crc32c(memoryview(out)[21:]))
    return bytes(out)


def _records(batch: RecordBatch) -> bytes:
    """The records section: per record its parts in one flat list, its length summed from
    theirs (nothing copied twice)."""
    varint, small, limit, null = _varint_bytes, _SMALL_VARINTS, _SMALL, _NULL
    parts: list[bytes] = []
    put = parts.extend
    headers = batch.headers if batch.headers is not None else repeat(None)
    rows = zip(count(), batch.timestamp_deltas, batch.keys, batch.values, headers)
    for delta, ts_delta, key, value, record_headers in rows:
        ts_part = small[ts_delta + 1] if -1 <= ts_delta < limit else varint(ts_delta)
        delta_part = small[delta + 1] if delta < limit else varint(delta)
        if key is None:
            key, key_size = b"", null
        else:
            key_size = small[len(key) + 1] if len(key) < limit else varint(len(key))
        if value is None:
            value, value_size = b"", null
        else:
            value_size = small[len(value) + 1] if len(value) < limit else varint(len(value))
        tail = _headers(record_headers) if record_headers else b"\0"
        size = 1 + len(ts_part) + len(delta_part) + len(key_size) + len(key)
        size += len(value_size) + len(value) + len(tail)
        put((small[size + 1] if size < limit else varint(size), b"\0", ts_part, delta_part))
        put((key_size, key, value_size, value, tail))
    return b"".join(parts)


def _headers(headers: Headers) -> bytes:
    out = bytearray()
    _put_varint(out, len(headers or ()))
    for name, header_value in headers or ():
        _put_bytes(out, name.encode())
        _put_bytes(out, header_value)
    return bytes(out)


def _zigzag_bytes(value: int) -> bytes:
    out = bytearray()
    _put_varint(out, value)
    return bytes(out)


_SMALL = 1 << 13  # numbers whose varint is looked up, not computed (2 bytes at most)
_SMALL_VARINTS = tuple(_zigzag_bytes(n) for n in range(-1, _SMALL))  # index: n + 1
_NULL = _SMALL_VARINTS[0]  # -1: a null key or value


def _varint_bytes(value: int) -> bytes:
    return _SMALL_VARINTS[value + 1] if -1 <= value < _SMALL else _zigzag_bytes(value)
