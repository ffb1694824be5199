"""Idempotent produce: the per-partition producer state that de-duplicates retried batches.

Kafka's semantics (ProducerStateManager, before KIP-360). An idempotent producer stamps
every batch with its producer id, producer epoch and the sequence number of its first
record; sequences count records per partition and wrap from 2**31 - 1 to 0. For each
producer id the partition keeps the current epoch and the last
`limits.idempotent_in_flight_batches_max` batches it appended (first and last sequence,
first and last offset): enough to recognise every batch a producer with at most that many
requests in flight can retry.

The partition actor calls `check` before appending a batch and `record` after the log
appended it; on opening the partition it calls `rebuild` with the log's batch headers, which
is `record` replayed, so recovered state is exactly what live recording produced.

A pure state machine: no I/O, no clock. Memory is bounded: at most `producers_max` producer
ids (the one that appended least recently is forgotten first; it gets UNKNOWN_PRODUCER_ID on
its next batch and starts again) with `limits.idempotent_in_flight_batches_max` batches each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage.batch import BatchHeader

SEQUENCE_MAX = 2**31 - 1  # the next sequence after this one is 0
PRODUCER_EPOCH_MAX = 2**15 - 1  # an int16 in the batch header


class Action(Enum):
    APPEND = "append"  # append the batch
    DUPLICATE = "duplicate"  # append nothing; answer with the original batch's offsets


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a batch. For DUPLICATE, the offsets its first append got."""

    action: Action
    base_offset: int = -1
    last_offset: int = -1


APPEND = Decision(Action.APPEND)


@dataclass(frozen=True, slots=True)
class AppendedBatch:
    """One batch a producer appended: its sequence range and where it landed in the log."""

    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class ProducerEntry:
    """A read-only view of one producer's state: its epoch and its last batches, oldest first."""

    epoch: int
    batches: tuple[AppendedBatch, ...]


class _Producer:
    __slots__ = ("batches", "epoch")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[AppendedBatch] = deque(maxlen=limits.idempotent_in_flight_batches_max)


def last_sequence(base_sequence: int, record_count: int) -> int:
    """The sequence of a batch's last record, wrapping past SEQUENCE_MAX to 0."""
    return (base_sequence + record_count - 1) % (SEQUENCE_MAX + 1)


def _next_sequence(sequence: int) -> int:
    return 0 if sequence == SEQUENCE_MAX else sequence + 1


def _validate(producer_epoch: int, base_sequence: int, record_count: int) -> None:
    if not 0 <= producer_epoch <= PRODUCER_EPOCH_MAX:
        raise ZafkaError("INVALID_REQUEST", f"producer epoch {producer_epoch} with a producer id")
    if not 0 <= base_sequence <= SEQUENCE_MAX:
        raise ZafkaError("INVALID_REQUEST", f"base sequence {base_sequence} with a producer id")
    if not 1 <= record_count <= SEQUENCE_MAX:
        raise ZafkaError("INVALID_REQUEST", f"record count {record_count}")


class ProducerStateTable:
    """The producer state of one partition. A producer id below 0 means "not idempotent":
    such batches are always appended and never recorded."""

    def __init__(self, producers_max: int = limits.producers_max) -> None:
        if producers_max < 1:
            raise ValueError(f"producers_max must be at least 1, got {producers_max}")
        self.producers_max = producers_max
        # Least recently appended first: dict order is the LRU order (re-inserted on record).
        self._producers: dict[int, _Producer] = {}

    def check(
        self, producer_id: int, producer_epoch: int, base_sequence: int, record_count: int
    ) -> Decision:
        """Decide, before appending, what to do with a batch. Changes nothing.

        Raises ZafkaError: INVALID_PRODUCER_EPOCH for an epoch older than the known one,
        OUT_OF_ORDER_SEQUENCE for a sequence that does not follow the last one (a gap, an
        old batch no longer remembered, a new epoch not starting at 0), UNKNOWN_PRODUCER_ID
        for an unknown producer not starting at 0 (its state expired or was evicted),
        INVALID_REQUEST for fields an idempotent batch cannot carry.
        """
        if producer_id < 0:
            return APPEND
        _validate(producer_epoch, base_sequence, record_count)
        producer = self._producers.get(producer_id)
        if producer is None:
            if base_sequence != 0:
                raise ZafkaError(
                    "UNKNOWN_PRODUCER_ID",
                    f"producer {producer_id} has no state here, its sequence {base_sequence}"
                    " does not start at 0",
                )
            return APPEND
        if producer_epoch < producer.epoch:
            raise ZafkaError(
                "INVALID_PRODUCER_EPOCH",
                f"producer {producer_id} epoch {producer_epoch} < {producer.epoch}",
            )
        if producer_epoch > producer.epoch:
            if base_sequence != 0:
                raise ZafkaError(
                    "OUT_OF_ORDER_SEQUENCE",
                    f"producer {producer_id} new epoch {producer_epoch} starts at sequence"
                    f" {base_sequence}, not 0",
                )
            return APPEND
        return _check_sequence(producer_id, producer, base_sequence, record_count)

    def record(
        self,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        record_count: int,
        base_offset: int,
        last_offset: int,
    ) -> None:
        """Remember a batch the log appended at [base_offset, last_offset].

        Follows the log without checking: a batch of another epoch replaces the producer's
        state (as Kafka's replay does), and the producer becomes the most recently used;
        beyond `producers_max` the least recently used producer is forgotten.
        """
        if producer_id < 0:
            return
        producer = self._producers.pop(producer_id, None)
        if producer is None or producer.epoch != producer_epoch:
            producer = _Producer(producer_epoch)
        last_seq = last_sequence(base_sequence, record_count)
        producer.batches.append(AppendedBatch(base_sequence, last_seq, base_offset, last_offset))
        self._producers[producer_id] = producer
        if len(self._producers) > self.producers_max:
            del self._producers[next(iter(self._producers))]

    def rebuild(self, headers: Iterable[BatchHeader]) -> None:
        """Forget everything, then `record` every batch of the log, oldest first."""
        self._producers.clear()
        self.record_headers(headers)

    def record_headers(self, headers: Iterable[BatchHeader]) -> None:
        """`record` each batch, oldest first (a log's, or those a follower copied)."""
        for h in headers:
            self.record(
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.record_count,
                h.base_offset,
                h.last_offset,
            )

    def truncate(self, log_end_offset: int) -> None:
        """Forget every batch whose last offset is at or above `log_end_offset` (the log was
        truncated there, by whole batches). A producer left with no batch is forgotten: its
        next batch is judged as an unknown producer's."""
        for producer_id, producer in list(self._producers.items()):
            while producer.batches and producer.batches[-1].last_offset >= log_end_offset:
                producer.batches.pop()
            if not producer.batches:
                del self._producers[producer_id]

    def entries(self) -> dict[int, ProducerEntry]:
        """Every producer's state, least recently appended first (a copy)."""
        return {
            producer_id: ProducerEntry(producer.epoch, tuple(producer.batches))
            for producer_id, producer in self._producers.items()
        }


def _check_sequence(
    producer_id: int, producer: _Producer, base_sequence: int, record_count: int
) -> Decision:
    """A batch of the producer's current epoch: a remembered duplicate, the next one, or
    out of order."""
    last_seq = last_sequence(base_sequence, record_count)
    for batch in producer.batches:
        if batch.first_seq == base_sequence and batch.last_seq == last_seq:
            return Decision(Action.DUPLICATE, batch.base_offset, batch.last_offset)
    expected = _next_sequence(producer.batches[-1].last_seq)
    if base_sequence != expected:
        raise ZafkaError(
            "OUT_OF_ORDER_SEQUENCE",
            f"producer {producer_id} sent sequence {base_sequence}, expected {expected}",
        )
    return APPEND
