"""The producer's record accumulator: records per partition, in batches (DESIGN §8).

Pure and clock-driven: no I/O, no threads, no clock (calls that depend on time take `now_ms`).
Not thread-safe: the Producer calls it under its lock. A batch of a (topic, partition) is
open (takes appends), then closed when full, drained (in flight), and at last completed;
a drained batch that must be retried is requeued and drained again.

- `append` adds a record to the partition's open batch; a record that would take it past
  `batch_bytes` closes it and opens the next (a record larger than `batch_bytes` travels
  alone). Sizes are `record_size` estimates, upper bounds of the packed bytes, so a batch
  never needs more than `batch_bytes + limits.batch_overhead_bytes` on the wire.
- `ready(now_ms, busy, in_flight=busy)`: a partition that is not busy (below its limit of
  requests in flight) sends its open batch at once; a busy one gathers records until the
  batch is full or `linger_ms` old. So a producer sends at once when idle and batches under
  load, with no fixed delay. Full batches are always ready; a retried one after its backoff,
  when its partition has no request in flight (so it cannot race the requests that went
  before it).
- `drain(partitions, now_ms)` takes the first batch of each partition and numbers its records
  (producer sequence: per partition, from 0, wrapping after 2**31-1 as Kafka's do) the first
  time; a retried batch keeps its numbers and goes back first (`requeue`), so order holds.

Buffer: the bytes of undrained and in-flight batches never exceed `buffer_bytes_max`; an
`append` past it raises BUFFER_FULL. Waiting for room (`has_room`) is the Producer's job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zafka import limits
from zafka.errors import ZafkaError

# Facts about the msgpack encoding (not limits), used to bound a batch's size cheaply.
record_overhead_bytes = 20  # msgpack bytes around a record's key and value: delta 9, 5, 5, 1
headers_overhead_bytes = 5  # a record's list of headers (msgpack array header)
header_overhead_bytes = 11  # one (name, value) header: array 1, str 5, bin 5

SEQUENCE_MODULUS = 2**31  # sequence numbers run 0 .. 2**31-1, then wrap to 0 (Kafka's int32)

TopicPartition = tuple[str, int]
Record = tuple[int, Any, Any, Any]  # (timestamp_ms, key, value, headers): build_batch's rows


@dataclass(slots=True, eq=False)
class Batch:
    """Records of one partition sent together: `records` go to `storage.batch.build_batch` as
    they are, with `base_sequence`. `(batch_id, index in records)` is what `append` returned."""

    batch_id: int
    topic: str
    partition: int
    created_ms: int
    records: list[Record] = field(default_factory=list, repr=False)
    size_bytes: int = 0  # the records' record_size estimates
    base_sequence: int = -1  # set when first drained
    attempts: int = 0  # times drained
    ready_at_ms: int = 0  # a requeued batch waits for its backoff

    @property
    def last_sequence(self) -> int:
        return (self.base_sequence + len(self.records) - 1) % SEQUENCE_MODULUS


class _Partition:
    __slots__ = ("next_sequence", "open", "queue")

    def __init__(self) -> None:
        self.open: Batch | None = None  # takes appends
        self.queue: deque[Batch] = deque()  # closed, undrained; by batch_id (= record order)
        self.next_sequence = 0


def headers_size(headers: Iterable[tuple[str, bytes]]) -> int:
    """Estimated packed bytes of one record's headers (names measured in UTF-8)."""
    size = headers_overhead_bytes
    for name, value in headers:
        size += header_overhead_bytes + len(name.encode()) + (len(value) if value else 0)
    return size


def record_size(key: bytes | None, value: bytes | None, headers: Any = None) -> int:
    """Bytes a record counts for in a batch and in the buffer: an upper bound of its packed
    size. The Producer uses it for `has_room`."""
    size = record_overhead_bytes
    if key is not None:
        size += len(key)
    if value is not None:
        size += len(value)
    if headers:
        size += headers_size(headers)
    return size


def next_sequence(sequence: int, records: int) -> int:
    """The sequence after `records` records from `sequence`, wrapping as Kafka's do."""
    return (sequence + records) % SEQUENCE_MODULUS


def _config(name: str, value: int, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ZafkaError("INVALID_CONFIG", f"{name}={value!r}, expected an int in {low}..{high}")
    return value


class RecordAccumulator:
    """Records per partition, in batches (see the module docstring). `on_batch_closed(topic,
    partition)` hears of every open batch that closes (full, drained or expired): the sticky
    partitioner's `batch_closed`."""

    def __init__(
        self,
        batch_bytes: int,
        linger_ms: int,
        buffer_bytes_max: int,
        block: bool,
        *,
        on_batch_closed: Callable[[str, int], None] | None = None,
    ) -> None:
        largest = limits.batch_bytes_max - limits.batch_overhead_bytes
        self.batch_bytes = _config("batch_bytes", batch_bytes, record_overhead_bytes, largest)
        self.linger_ms = _config("linger_ms", linger_ms, 0, 2**31 - 1)
        self.buffer_bytes_max = _config("buffer_bytes_max", buffer_bytes_max, batch_bytes, 2**62)
        self.block = block
        self._record_bytes_max = min(largest, buffer_bytes_max)
        self._on_batch_closed = on_batch_closed
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._pending: dict[TopicPartition, _Partition] = {}  # with an undrained batch
        self._in_flight: dict[int, Batch] = {}  # drained, not yet completed or requeued
        self._used_bytes = 0
        self._next_batch_id = 0
        self._closed: BaseException | None = None
        self.delivered_records = 0
        self.failed_records = 0

    # --- the per-record path -----------------------------------------------------------

    def append(
        self,
        topic: str,
        partition: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
        now_ms: int,
        abort_on_full: bool = False,
    ) -> tuple[int, int] | None:
        """Add one record; returns (batch_id, index in the batch).

        BUFFER_FULL when the buffer has no room for it (nothing changes), MESSAGE_TOO_LARGE
        when no batch or buffer could ever hold it. Types are the caller's contract (checked
        in `Producer.send`). `abort_on_full` (null keys, KIP-480): when the open batch cannot
        take the record, close it and return None instead of opening another batch here; the
        partitioner has moved on, so partition the record again and append it there.
        """
        if headers is None:  # record_size, inlined: this is the per-record path
            size = record_overhead_bytes + (0 if key is None else len(key))
            size += 0 if value is None else len(value)
        else:
            size = record_size(key, value, headers)
        part = self._partitions.get((topic, partition))
        if part is not None:
            batch = part.open
            if batch is not None and batch.size_bytes + size <= self.batch_bytes:
                if self._used_bytes + size > self.buffer_bytes_max:
                    raise self._buffer_full(size)
                records = batch.records
                records.append((timestamp_ms, key, value, headers))
                batch.size_bytes += size
                self._used_bytes += size
                return batch.batch_id, len(records) - 1
        record = (timestamp_ms, key, value, headers)
        return self._append_new_batch(topic, partition, record, size, now_ms, abort_on_full)

    def _append_new_batch(
        self,
        topic: str,
        partition: int,
        record: Record,
        size: int,
        now_ms: int,
        abort_on_full: bool,
    ) -> tuple[int, int] | None:
        if self._closed is not None:
            raise self._closed
        if size > self._record_bytes_max:
            raise ZafkaError(
                "MESSAGE_TOO_LARGE",
                f"a record of {size} bytes (key, value, headers and {record_overhead_bytes} "
                f"bytes of framing) can never be sent: the limit is {self._record_bytes_max} "
                f"bytes (the largest batch and buffer_bytes_max={self.buffer_bytes_max})",
            )
        if self._used_bytes + size > self.buffer_bytes_max:
            raise self._buffer_full(size)
        tp = (topic, partition)
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
        if part.open is not None:  # it cannot take this record
            self._close_open(tp, part)
            if abort_on_full:
                return None
        batch = part.open = Batch(self._next_batch_id, topic, partition, now_ms)
        self._next_batch_id += 1
        self._pending[tp] = part
        batch.records.append(record)
        batch.size_bytes = size
        self._used_bytes += size
        if size > self.batch_bytes:  # a large record travels alone
            self._close_open(tp, part)
        return batch.batch_id, 0

    def _close_open(self, tp: TopicPartition, part: _Partition) -> None:
        part.queue.append(part.open)  # type: ignore[arg-type]
        part.open = None
        if self._on_batch_closed is not None:
            self._on_batch_closed(*tp)

    def _buffer_full(self, size: int) -> ZafkaError:
        what = (
            "wait until has_room() before appending"
            if self.block
            else "wait for deliveries (flush), send more slowly, or let send block (block=True)"
        )
        return ZafkaError(
            "BUFFER_FULL",
            f"{self._used_bytes} of buffer_bytes_max={self.buffer_bytes_max} bytes are held by "
            f"unsent and in-flight batches, this record needs {size} more: {what}, "
            f"or raise buffer_bytes_max",
        )

    def has_room(self, nbytes: int) -> bool:
        """True if a record of `nbytes` (see `record_size`) fits the buffer now."""
        return self._used_bytes + nbytes <= self.buffer_bytes_max

    # --- the sender's path ---------------------------------------------------------------

    def ready(
        self,
        now_ms: int,
        busy: Container[TopicPartition],
        flush: bool = False,
        in_flight: Container[TopicPartition] | None = None,
    ) -> list[TopicPartition]:
        """Partitions whose first batch should be sent now (see the module docstring).

        `busy`: partitions that cannot take another request now (their records gather);
        `in_flight`: partitions with any request in flight (a retried batch waits for them;
        default: `busy`). `flush`: every open batch is ready, linger or not (a retried batch
        still waits for its backoff). The Producer may drain fewer (leader unknown, busy)."""
        if in_flight is None:
            in_flight = busy
        out = []
        linger = self.linger_ms
        for tp, part in self._pending.items():
            queue = part.queue
            if queue:
                head = queue[0]  # a retry waits for its backoff and for its partition's requests
                if head.ready_at_ms <= now_ms and (not head.attempts or tp not in in_flight):
                    out.append(tp)
            elif flush or tp not in busy or now_ms - part.open.created_ms >= linger:
                out.append(tp)
        return out

    def drain(self, partitions: Iterable[TopicPartition], now_ms: int) -> list[Batch]:
        """Take the first batch of each partition (at most one each) to send, in the given
        order; partitions with nothing to send now are skipped. The batches count as in
        flight until `complete` or `requeue`."""
        out = []
        for tp in partitions:
            part = self._pending.get(tp)
            if part is None:
                continue
            queue = part.queue
            if queue:
                if queue[0].ready_at_ms > now_ms:
                    continue
                batch = queue.popleft()
            else:
                batch = part.open  # type: ignore[assignment]
                self._close_open(tp, part)
                queue.popleft()
            if batch.base_sequence < 0:
                batch.base_sequence = part.next_sequence
                part.next_sequence = next_sequence(part.next_sequence, len(batch.records))
            batch.attempts += 1
            if not queue and part.open is None:
                del self._pending[tp]
            self._in_flight[batch.batch_id] = batch
            out.append(batch)
        return out

    def complete(self, batch: Batch, ok: bool) -> None:
        """The batch is done: delivered (`ok`) or failed for good; its bytes are freed. (With
        idempotence, a batch that failed for good leaves a gap in its partition's sequence: the
        Producer's to mend, by an epoch bump.)"""
        self._take_in_flight(batch)
        self._used_bytes -= batch.size_bytes
        if ok:
            self.delivered_records += len(batch.records)
        else:
            self.failed_records += len(batch.records)

    def requeue(self, batch: Batch, ready_at_ms: int = 0) -> bool:
        """Send the batch again, with the same sequence numbers, before every younger batch of
        its partition and not before `ready_at_ms` (the retry backoff); nothing of the
        partition is sent until then. False after `abort_all`: the batch is dropped and
        freed, and the caller fails it."""
        self._take_in_flight(batch)
        if self._closed is not None:
            self._used_bytes -= batch.size_bytes
            self.failed_records += len(batch.records)
            return False
        tp = (batch.topic, batch.partition)
        part = self._partitions[tp]
        batch.ready_at_ms = ready_at_ms
        queue = part.queue
        i = 0
        while i < len(queue) and queue[i].batch_id < batch.batch_id:
            i += 1
        queue.insert(i, batch)
        self._pending[tp] = part
        return True

    def sent_before_and_not_done(self, batch: Batch) -> bool:
        """Whether a batch of the same partition, sent before `batch`, is in flight or waits
        for its retry: then a sequence gap reported for `batch` is that batch's doing."""
        tp = (batch.topic, batch.partition)
        for other in self._in_flight.values():
            if other.batch_id < batch.batch_id and (other.topic, other.partition) == tp:
                return True
        part = self._partitions.get(tp)
        return part is not None and any(
            b.attempts and b.batch_id < batch.batch_id for b in part.queue
        )

    def _take_in_flight(self, batch: Batch) -> None:
        if self._in_flight.pop(batch.batch_id, None) is not batch:
            raise ValueError(f"{batch!r} is not in flight (drained, not completed or requeued)")

    def next_deadline_ms(self, now_ms: int) -> int | None:
        """The earliest time after `now_ms` at which a batch becomes ready by time alone (its
        linger or its retry backoff ends); None if there is none. What is ready now is
        `ready`'s business: a Producer that cannot send it waits for an event, not a timer."""
        best = None
        linger = self.linger_ms
        for part in self._pending.values():
            queue = part.queue
            t = queue[0].ready_at_ms if queue else part.open.created_ms + linger
            if t > now_ms and (best is None or t < best):
                best = t
        return best

    def oldest_undrained_ms(self) -> int | None:
        """When the oldest batch not in flight was created (None: there is none): the
        first to expire. A partition's batches are created in order, so its first one."""
        firsts = [p.queue[0] if p.queue else p.open for p in self._pending.values()]
        return min((b.created_ms for b in firsts if b is not None), default=None)

    def expire(self, now_ms: int, delivery_timeout_ms: int) -> list[Batch]:
        """Remove and return the undrained batches created `delivery_timeout_ms` or more ago
        (from the front of each partition, so order holds), their bytes freed. A returned
        batch with `base_sequence >= 0` was sent before: with idempotence, its partition's
        sequence now has a gap (the Producer bumps its epoch)."""
        out: list[Batch] = []
        deadline = now_ms - delivery_timeout_ms
        for tp, part in list(self._pending.items()):
            queue = part.queue
            while queue and queue[0].created_ms <= deadline:
                out.append(queue.popleft())
            if not queue and part.open is not None and part.open.created_ms <= deadline:
                out.append(part.open)
                self._close_open(tp, part)
                queue.popleft()
            if not queue and part.open is None:
                del self._pending[tp]
        for batch in out:
            self._used_bytes -= batch.size_bytes
            self.failed_records += len(batch.records)
        return out

    def abort_all(self, error: BaseException) -> list[Batch]:
        """Close: remove and return every undrained batch (fail them with `error`); later
        appends raise `error`, later requeues return False. In-flight batches stay in flight
        until completed."""
        self._closed = error
        out: list[Batch] = []
        for part in self._pending.values():
            out.extend(part.queue)
            if part.open is not None:
                out.append(part.open)
        self._pending.clear()
        self._partitions.clear()
        for batch in out:
            self._used_bytes -= batch.size_bytes
            self.failed_records += len(batch.records)
        return out

    def reset_sequences(self) -> None:
        """A new producer id (or epoch) starts every partition at sequence 0: undrained batches,
        retried ones included, are numbered again when drained. Only with nothing in flight
        (their numbers belong to the old id)."""
        if self._in_flight:
            raise ValueError(f"{len(self._in_flight)} batches are in flight")
        for part in self._partitions.values():
            part.next_sequence = 0
            for batch in part.queue:
                batch.base_sequence = -1
            if part.open is not None:
                part.open.base_sequence = -1

    # --- state ---------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Estimated bytes held by undrained and in-flight batches."""
        return self._used_bytes

    @property
    def in_flight_batches(self) -> int:
        return len(self._in_flight)  # drained, not yet completed or requeued

    def has_undrained(self) -> bool:
        return bool(self._pending)  # some batch is open, full or retried

    def sequence_of(self, topic: str, partition: int) -> int:
        """The sequence number the partition's next new batch will start at."""
        part = self._partitions.get((topic, partition))
        return 0 if part is None else part.next_sequence
