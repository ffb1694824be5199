"""What Admin's calls take and return (frozen dataclasses), and how they are read from the
wire's answers: topics (`NewTopic`, `TopicDescription`, `PartitionInfo`), brokers
(`BrokerDescription`) and consumer groups (`GroupListing`, `GroupDescription`,
`MemberDescription`, `GroupOffset`). Partitions are flat `TopicPartition`s, as Kafka's
AdminClient gives them. A member's description is the wire's `GroupMember` itself
(`transport/group.py`), so it is defined once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from zafka.clients.metadata import NO_LEADER
from zafka.errors import ZafkaError, from_code
from zafka.transport import admin as wire
from zafka.transport import group as gw
from zafka.transport.client import PartitionMetadata
from zafka.transport.names import TopicPartition, is_internal


@dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create. `configs` are topic-level overrides by Kafka's names
    (`retention.ms`, `retention.bytes`, `segment.bytes`, `segment.ms`, `cleanup.policy`,
    `delete.retention.ms`, `max.message.bytes`, `flush.ms`, `zafka.fsync`); values may be
    given as ints and are sent as strings."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition: its leader (None: no leader now), the leader's epoch, the brokers that
    hold a replica (the first is the preferred leader) and those in sync."""

    partition: int
    leader: int | None
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def offline(self) -> bool:
        """No leader: nobody serves it until a replica that may lead is back."""
        return self.leader is None

    @property
    def under_replicated(self) -> bool:
        """Fewer replicas in sync than assigned."""
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """One topic: its partitions in order and its config overrides (keys not set use the
    broker's defaults)."""

    name: str
    partitions: tuple[PartitionInfo, ...]
    configs: Mapping[str, str]

    @property
    def replication_factor(self) -> int:
        """The number of replicas of each partition."""
        return len(self.partitions[0].replicas) if self.partitions else 0

    @property
    def offline(self) -> bool:
        """Some partition has no leader."""
        return any(p.offline for p in self.partitions)

    @property
    def under_replicated(self) -> bool:
        """Some partition has fewer replicas in sync than assigned."""
        return any(p.under_replicated for p in self.partitions)

    @property
    def internal(self) -> bool:
        """Whether this is an internal topic (a name starting with `__`)."""
        return is_internal(self.name)


@dataclass(frozen=True, slots=True)
class BrokerDescription:
    """A live broker: its id and the endpoint clients connect to."""

    id: int
    endpoint: str


def partition_info(p: PartitionMetadata) -> PartitionInfo:
    leader = None if p.leader == NO_LEADER else p.leader
    return PartitionInfo(p.partition, leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr))


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A group as its coordinator lists it: "empty" (no members, committed offsets only),
    "stable" (every member has its target assignment) or "reconciling"."""

    group_id: str
    state: str
    coordinator: int


MemberDescription = gw.GroupMember  # one member of a group: the wire's own description


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A group: its state (as `GroupListing`), epoch, assignor, members and the broker that
    coordinates it."""

    group_id: str
    state: str
    epoch: int
    assignor: str
    members: tuple[MemberDescription, ...]
    coordinator: int

    def owners(self) -> dict[TopicPartition, str]:
        """Each partition a member owns, with that member's id."""
        return {tp: m.member_id for m in self.members for tp in m.assignment}


@dataclass(frozen=True, slots=True)
class GroupOffset:
    """A group's committed offset of one partition (None: none committed) with its metadata,
    the partition's log end offset (its high watermark; None when it could not be read) and
    the lag (`log_end - committed`, None unless both are known)."""

    topic: str
    partition: int
    committed: int | None
    metadata: str
    log_end: int | None

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end is None:
            return None
        return self.log_end - self.committed


@dataclass(frozen=True, slots=True)
class PartitionReassignment:
    """A partition being moved: its replicas now, those being added (catching up) and those
    that will be removed once the added ones are in sync."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


def topic_error(name: str, code: int, detail: str | None) -> ZafkaError:
    """The error for one topic, its detail naming the topic (once)."""
    if detail and repr(name) in detail:
        return from_code(code, detail)
    return from_code(code, f"topic {name!r}" + (f": {detail}" if detail else ""))


def topic_results(
    names: list[str], results: tuple[wire.TopicResult, ...]
) -> dict[str, ZafkaError | None]:
    """Each name with None (done) or its error, from a response's per-topic results."""
    by_name = {r.name: r for r in results}
    outcome: dict[str, ZafkaError | None] = {}
    for name in names:
        r = by_name.get(name)
        if r is None:
            outcome[name] = ZafkaError("UNKNOWN_SERVER_ERROR", f"no result for {name!r}")
        else:
            ok = r.error_code == 0
            outcome[name] = None if ok else topic_error(name, r.error_code, r.error_message)
    return outcome
