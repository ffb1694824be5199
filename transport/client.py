"""Client protocol: metadata, produce, fetch, offsets by time, producer ids.

Record batches (storage/batch.py format) travel as payload frames, never inside the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.schema import Frame, Message


@dataclass(frozen=True, slots=True)
class BrokerInfo(Message):
    """A live broker: its id, the endpoint clients connect to, and the host:port of its
    Kafka protocol listener (None: it has none)."""

    id: int
    endpoint: str
    kafka_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionMetadata(Message):
    """One partition: its leader (-1: none), leader epoch, replicas and in-sync replicas."""

    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicMetadata(Message):
    """One topic's partitions, or an error code (e.g. UNKNOWN_TOPIC_OR_PARTITION)."""

    name: str
    error_code: int
    partitions: tuple[PartitionMetadata, ...]


@dataclass(frozen=True, slots=True)
class MetadataRequest(Message):
    """Brokers and the named topics' partitions (None: every topic)."""

    topics: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class MetadataResponse(Message):
    """The cluster as the answering broker knows it, and the controller's broker id (-1:
    none known)."""

    brokers: tuple[BrokerInfo, ...]
    topics: tuple[TopicMetadata, ...]
    controller_id: int = -1


@dataclass(frozen=True, slots=True)
class ProduceRequest(Message):
    """Append one record batch to a partition; acks is 0, 1 or -1 (all in-sync replicas)."""

    topic: str
    partition: int
    acks: int
    timeout_ms: int
    batch: Frame


@dataclass(frozen=True, slots=True)
class ProduceResponse(Message):
    """Where the batch landed: its first offset and the broker's append time."""

    error_code: int
    base_offset: int
    log_append_time_ms: int


@dataclass(frozen=True, slots=True)
class FetchRequest(Message):
    """Batches from `offset` (at most `max_bytes`; waits up to `max_wait_ms` for `min_bytes`)."""

    topic: str
    partition: int
    offset: int
    max_bytes: int
    max_wait_ms: int
    min_bytes: int


@dataclass(frozen=True, slots=True)
class FetchResponse(Message):
    """Stored batches (possibly starting before the requested offset) and the log's bounds."""

    error_code: int
    high_watermark: int
    log_start_offset: int
    records: Frame


EARLIEST = -2  # ListOffsetsRequest.timestamp: the log start offset
LATEST = -1  # ListOffsetsRequest.timestamp: the log end offset (the high watermark)


@dataclass(frozen=True, slots=True)
class ListOffsetsRequest(Message):
    """The first offset with a timestamp (ms) >= `timestamp`; -1: the log end, -2: the log start."""

    topic: str
    partition: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class ListOffsetsResponse(Message):
    """The offset found and its record's timestamp (-1 if none)."""

    error_code: int
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class InitProducerIdRequest(Message):
    """Ask for a producer id for an idempotent producer."""


@dataclass(frozen=True, slots=True)
class InitProducerIdResponse(Message):
    """A fresh producer id and its epoch."""

    error_code: int
    producer_id: int
    producer_epoch: int
