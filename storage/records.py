"""Reading record batches: the consumer side of the format (DESIGN §2, docs/STORAGE.md).

Only clients (and compaction) open a batch's payload. `read_batch` checks the batch
(`batch.check_batch`), decompresses the payload within `limits.decompressed_bytes_max`
(refusing a zstd frame that does not declare its size, or declares too much, before
decompressing it), unpacks it with msgpack bounds and checks the four columns; it keeps
the columns. `read_records` also builds one `Record` per record.

Pure functions: no I/O. The zstd decompressor is cached per thread (not thread-safe). Every
per-record pass is a C-level call (`map`, `zip`, `set`, `tuple.__new__`): no Python bytecode
runs per record.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, NamedTuple, TypeAlias

import msgpack
import zstandard

from zafka import limits
from zafka.storage.batch import CODEC_NONE, HEADER_SIZE, BatchHeader, Buffer, check_batch, corrupt

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd data frame (not a skippable frame)
# Type sets for the C-level column checks: set(map(type, column)) against these.
_INT = frozenset((int,))
_KV_TYPES = frozenset((bytes, type(None)))
_HEADERS_TYPES = frozenset((tuple, type(None)))
_PAIR = frozenset((tuple,))
_PAIR_LEN = frozenset((2,))
_STR = frozenset((str,))
_ITEM0, _ITEM1 = operator.itemgetter(0), operator.itemgetter(1)

Headers: TypeAlias = tuple[tuple[str, bytes | None], ...] | None  # a value may be null, as Kafka's


class Record(NamedTuple):
    """One record as a consumer sees it. A tuple: compares equal to a plain 5-tuple too."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers


# Records are made with `map(tuple.__new__, repeat(Record), five_tuples)`: all in C, 2x faster
# than calling Record (its __new__ is a Python function), 1.2x faster than a partial.
_tuple_new = tuple.__new__

_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    try:
        return _local.decompressor
    except AttributeError:
        _local.decompressor = zstandard.ZstdDecompressor()
        return _local.decompressor


def _payload(h: BatchHeader, batch: Buffer) -> Buffer:
    """The packed records of a checked batch, decompressed within `decompressed_bytes_max`."""
    body = memoryview(batch)[HEADER_SIZE:]
    if h.codec == CODEC_NONE:
        return body
    if body[:4] != _ZSTD_MAGIC:
        raise corrupt("payload is not a zstd data frame")
    try:
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise corrupt(f"bad zstd frame header: {exc}") from None
    if size < 0:
        raise corrupt("zstd frame does not declare its content size")
    if not 0 < size <= limits.decompressed_bytes_max:
        raise corrupt(
            f"zstd frame declares {size} bytes, allowed 1..{limits.decompressed_bytes_max}"
        )
    try:
        return _decompressor().decompress(
            body, max_output_size=limits.decompressed_bytes_max, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise corrupt(f"zstd: {exc}") from None


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """One checked batch, decoded to its columns; `read_batch` makes it.

    Record i has offset `header.base_offset + i`, timestamp
    `header.first_timestamp + timestamp_deltas[i]`, key `keys[i]`, value `values[i]` and
    headers `headers[i]` (`headers` is None when the payload has no headers column: no record
    has any). No per-record object exists until asked for: iterate for `Record`s one at a
    time, or index the columns.
    """

    header: BatchHeader
    timestamp_deltas: tuple[int, ...]
    keys: tuple[bytes | None, ...]
    values: tuple[bytes | None, ...]
    headers: tuple[Headers, ...] | None

    def __len__(self) -> int:
        return self.header.record_count

    @property
    def offsets(self) -> range:
        base = self.header.base_offset
        return range(base, base + self.header.record_count)

    @property
    def timestamps(self) -> tuple[int, ...]:
        """Every record's timestamp (ms), computed on each access."""
        return tuple(map(self.header.first_timestamp.__add__, self.timestamp_deltas))

    def __iter__(self) -> Iterator[Record]:
        h = self.header
        base, count = h.base_offset, h.record_count
        return map(
            _tuple_new,
            repeat(Record),
            zip(
                range(base, base + count),
                map(h.first_timestamp.__add__, self.timestamp_deltas),
                self.keys,
                self.values,
                repeat(None, count) if self.headers is None else self.headers,
                strict=True,
            ),
        )

    def records(self) -> list[Record]:
        return list(self.__iter__())


def _column(column: Any, count: int, name: str) -> tuple[Any, ...]:
    if type(column) is not tuple or len(column) != count:
        raise corrupt(f"{name} column is not an array of the {count} records the header says")
    return column


def _check_headers(headers: tuple[Any, ...]) -> None:
    """Every element None or a tuple of (str, bytes or None) pairs, in C-level passes."""
    if not set(map(type, headers)) <= _HEADERS_TYPES:
        raise corrupt("record headers must be nil or arrays of [str, bin] pairs")
    pairs = tuple(chain.from_iterable(filter(None, headers)))
    if not pairs:
        return
    if (
        set(map(type, pairs)) != _PAIR
        or set(map(len, pairs)) != _PAIR_LEN
        or set(map(type, map(_ITEM0, pairs))) != _STR
        or not set(map(type, map(_ITEM1, pairs))) <= _KV_TYPES
    ):
        raise corrupt("record headers must be nil or arrays of [str, bin or nil] pairs")


def read_batch(batch: Buffer) -> RecordBatch:
    """One whole batch, checked and decoded to columns; CORRUPT_MESSAGE for anything malformed.

    Checks the batch (`check_batch`), refuses a zstd frame that does not declare its size or
    declares more than `limits.decompressed_bytes_max` before decompressing it, unpacks with
    msgpack bounds, then checks the four columns: each an array of `record_count` elements of
    the right types (headers: nil, or per record nil or [str, bin] pairs). Builds no
    per-record object; headers come back as tuples of pairs.
    """
    h = check_batch(batch)
    raw = _payload(h, batch)
    n = len(raw)
    try:
        columns = msgpack.unpackb(
            raw,
            use_list=False,
            raw=False,
            max_str_len=n,
            max_bin_len=n,
            max_array_len=n,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError) as exc:  # msgpack's errors are ValueErrors
        raise corrupt(f"payload is not msgpack: {type(exc).__name__}: {exc}") from None
    if type(columns) is not tuple or len(columns) != 4:
        raise corrupt("payload is not an array of 4 columns [deltas, keys, values, headers]")
    count = h.record_count
    deltas = _column(columns[0], count, "timestamp delta")
    keys = _column(columns[1], count, "key")
    values = _column(columns[2], count, "value")
    headers = columns[3]
    if set(map(type, deltas)) != _INT:
        raise corrupt("record timestamp deltas must be integers")
    if not set(map(type, keys)) <= _KV_TYPES:
        raise corrupt("record keys must be bytes or nil")
    if not set(map(type, values)) <= _KV_TYPES:
        raise corrupt("record values must be bytes or nil")
    if headers is not None:
        _check_headers(_column(headers, count, "headers"))
    return RecordBatch(h, deltas, keys, values, headers)


def read_records(batch: Buffer) -> list[Record]:
    """Every record of one whole batch, checked like `read_batch`: `read_batch(batch).records()`."""
    return read_batch(batch).records()
