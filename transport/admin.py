"""Admin protocol: create, delete, describe and grow topics; ask for leader elections."""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.client import PartitionMetadata
from zafka.transport.group import TopicPartitions
from zafka.transport.schema import Message


@dataclass(frozen=True, slots=True)
class NewTopic(Message):
    """A topic to create, with topic-level config overrides."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class TopicResult(Message):
    """The outcome for one topic of a create or delete."""

    name: str
    error_code: int
    error_message: str | None


@dataclass(frozen=True, slots=True)
class TopicDescription(Message):
    """One topic: its partitions and its config overrides, or an error code."""

    name: str
    error_code: int
    partitions: tuple[PartitionMetadata, ...]
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class CreateTopicsRequest(Message):
    """Create topics (sent to the controller)."""

    topics: tuple[NewTopic, ...]


@dataclass(frozen=True, slots=True)
class CreateTopicsResponse(Message):
    """One result per requested topic."""

    results: tuple[TopicResult, ...]


@dataclass(frozen=True, slots=True)
class DeleteTopicsRequest(Message):
    """Delete topics by name (sent to the controller)."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeleteTopicsResponse(Message):
    """One result per requested topic."""

    results: tuple[TopicResult, ...]


@dataclass(frozen=True, slots=True)
class DescribeTopicsRequest(Message):
    """Partitions and configs of the named topics."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DescribeTopicsResponse(Message):
    """One description per requested topic."""

    topics: tuple[TopicDescription, ...]


@dataclass(frozen=True, slots=True)
class PartitionCount(Message):
    """Grow topic `name` to `count` partitions in all."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class CreatePartitionsRequest(Message):
    """Add partitions to existing topics (Kafka's CreatePartitions)."""

    topics: tuple[PartitionCount, ...]


@dataclass(frozen=True, slots=True)
class CreatePartitionsResponse(Message):
    """One result per requested topic."""

    results: tuple[TopicResult, ...]


@dataclass(frozen=True, slots=True)
class ElectLeadersRequest(Message):
    """Preferred leader election (Kafka's ElectLeaders, type PREFERRED) for the named
    partitions; None: every partition of every topic."""

    partitions: tuple[TopicPartitions, ...] | None


@dataclass(frozen=True, slots=True)
class PartitionResult(Message):
    """The outcome for one partition: 0 (the election is queued with the controller),
    ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, ..."""

    topic: str
    partition: int
    error_code: int
    error_message: str | None


@dataclass(frozen=True, slots=True)
class ElectLeadersResponse(Message):
    """One result per partition asked about."""

    results: tuple[PartitionResult, ...]


@dataclass(frozen=True, slots=True)
class Reassignment(Message):
    """Move one partition's replicas to `replicas` (the first is its preferred leader)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionReassignmentsRequest(Message):
    """Start moving partitions' replicas (Kafka's AlterPartitionReassignments); a partition
    being moved already gets the new target."""

    partitions: tuple[Reassignment, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionReassignmentsResponse(Message):
    """One result per partition asked: 0 (the controller moves it),
    UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT."""

    results: tuple[PartitionResult, ...]


@dataclass(frozen=True, slots=True)
class ListPartitionReassignmentsRequest(Message):
    """The partitions being moved now (Kafka's ListPartitionReassignments)."""


@dataclass(frozen=True, slots=True)
class OngoingReassignment(Message):
    """A partition on its way to its target: its replicas now, those being added (not yet
    in sync) and those that will be removed."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ListPartitionReassignmentsResponse(Message):
    """Every partition being moved, by topic and partition."""

    reassignments: tuple[OngoingReassignment, ...]
