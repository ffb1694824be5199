"""Records handed to user code: the types, and decoding fetched batches into them. Pure.

A fetch response holds whole stored batches back to back (`split_batches` cuts them,
uncopied). A `Drain` is the user's side of one response: each batch is decoded only when
`poll` reaches it, and records are built with C-level passes (`map` over the batch's
columns), so no Python bytecode runs per record; records below the position asked for (a
fetch may start mid-batch) are skipped.
"""

from __future__ import annotations

from itertools import repeat
from typing import NamedTuple

from zafka.errors import ZafkaError
from zafka.storage.batch import HEADER_SIZE, Buffer, parse_header
from zafka.storage.records import Headers, RecordBatch, read_batch
from zafka.transport.names import TopicPartition


class ConsumerRecord(NamedTuple):
    """One record handed to user code. A tuple: cheap to make, fields by name or position."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch, as the producer set it
    key: bytes | None
    value: bytes | None
    headers: Headers  # ((name, value), ...) or None


# Records are made by `map(tuple.__new__, repeat(ConsumerRecord), rows)`: all in C, about
# twice as fast as calling ConsumerRecord (its __new__ is a Python function).
_tuple_new = tuple.__new__


def fresh(err: ZafkaError) -> ZafkaError:
    """A new exception like `err`: an error raised again and again (until a seek) must not
    grow one traceback chain for ever."""
    return ZafkaError(err.error.name, err.detail)


def split_batches(data: Buffer) -> tuple[list[memoryview], int]:
    """The whole batches of a fetch response, uncopied, and the offset just past the last one
    (-1 when there is none). A partial batch at the end is left out, as Kafka clients do."""
    view = memoryview(data)
    end = len(view)
    batches: list[memoryview] = []
    pos, next_offset = 0, -1
    while end - pos >= HEADER_SIZE:
        header = parse_header(view, pos)
        size = header.size
        if size < HEADER_SIZE or pos + size > end:
            break
        batches.append(view[pos : pos + size])
        next_offset = header.last_offset + 1
        pos += size
    return batches, next_offset


class Drain:
    """The user's side of one fetch response: its batches, each decoded when records are
    first taken from it. Only the user's thread touches a Drain."""

    __slots__ = ("_batches", "_current", "_next", "error", "tp")

    def __init__(self, tp: TopicPartition, batches: list[memoryview]) -> None:
        self.tp = tp
        self._batches = batches
        self._next = 0  # the next batch to decode
        self._current: RecordBatch | None = None  # a decoded batch with records left
        self.error: ZafkaError | None = None  # a batch that could not be decoded

    @property
    def exhausted(self) -> bool:
        return self._current is None and self._next == len(self._batches)

    def take(self, out: list[ConsumerRecord], position: int, quota: int) -> int:
        """Append up to `quota` records at or after `position` to `out`; return the new
        position. Records below `position` are skipped (a fetch may start mid-batch), and
        so are control batches. A batch that cannot be decoded stops here: `error` is set
        and the position stays on it."""
        topic, partition = self.tp
        while quota > 0:
            rb = self._current
            if rb is None:
                if self._next == len(self._batches) or self.error is not None:
                    break
                batch = self._batches[self._next]
                try:
                    header = parse_header(batch)
                    if header.is_control or header.last_offset < position:
                        self._next += 1
                        position = max(position, header.last_offset + 1)
                        continue
                    rb = read_batch(batch)
                except ZafkaError as err:
                    self.error = err
                    break
                self._next += 1
                self._current = rb
            h = rb.header
            base, count = h.base_offset, h.record_count
            start = position - base if position > base else 0
            end = start + quota if start + quota < count else count
            n = end - start
            if n > 0:
                deltas, keys, values, headers = rb.timestamp_deltas, rb.keys, rb.values, rb.headers
                if n != count:
                    deltas, keys, values = deltas[start:end], keys[start:end], values[start:end]
                    if headers is not None:
                        headers = headers[start:end]
                out += map(
                    _tuple_new,
                    repeat(ConsumerRecord),
                    zip(
                        repeat(topic, n),
                        repeat(partition, n),
                        range(base + start, base + end),
                        map(h.first_timestamp.__add__, deltas),
                        keys,
                        values,
                        repeat(None, n) if headers is None else headers,
                        strict=True,
                    ),
                )
                quota -= n
                position = base + end
            if end >= count:
                self._current = None
        return position
