"""Replication protocol: a follower broker's fetcher asks a leader broker's `replication`
actor for the partitions it follows there, many partitions per message.

ReplicaFetch: from each partition's follower log end offset, in the follower's leader epoch;
the answer gives each partition's outcome and the stored batches of all of them, one after
the other, in one payload frame (`size` bytes each, in the order asked), appended by the
follower as they are. OffsetForLeaderEpoch: where the leader's history of an epoch ends, so
a follower can cut what diverges before it fetches (KIP-101/279).
"""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.schema import Frame, Message


@dataclass(frozen=True, slots=True)
class FetchPosition(Message):
    """One partition of a ReplicaFetch: fetch from `offset`, the follower in `leader_epoch`."""

    topic: str
    partition: int
    leader_epoch: int
    offset: int


@dataclass(frozen=True, slots=True)
class ReplicaFetchRequest(Message):
    """Follower broker `replica_id` fetches its partitions; the leader waits up to
    `max_wait_ms` for data when there is none, and sends at most `max_bytes` per partition
    (but always a whole first batch)."""

    replica_id: int
    max_wait_ms: int
    max_bytes: int
    partitions: tuple[FetchPosition, ...]


@dataclass(frozen=True, slots=True)
class FetchedPartition(Message):
    """One partition's outcome: `size` bytes of the records frame are its batches."""

    topic: str
    partition: int
    error_code: int
    high_watermark: int
    log_start_offset: int
    size: int


@dataclass(frozen=True, slots=True)
class ReplicaFetchResponse(Message):
    """The partitions in the order asked and their batches, concatenated."""

    partitions: tuple[FetchedPartition, ...]
    records: Frame


@dataclass(frozen=True, slots=True)
class EpochQuery(Message):
    """Where does the leader's history of `epoch` end? (Asked in `leader_epoch`.)"""

    topic: str
    partition: int
    leader_epoch: int
    epoch: int


@dataclass(frozen=True, slots=True)
class OffsetForLeaderEpochRequest(Message):
    partitions: tuple[EpochQuery, ...]


@dataclass(frozen=True, slots=True)
class EpochEnd(Message):
    """The largest epoch <= the one asked in the leader's log, and the offset where it ends
    (its log end for the latest epoch); -1, -1 when the log has no such epoch."""

    topic: str
    partition: int
    error_code: int
    epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class OffsetForLeaderEpochResponse(Message):
    partitions: tuple[EpochEnd, ...]
