"""Consumer-group protocol: coordinator lookup, membership with server-side assignment,
committed offsets. Member requests carry the group epoch in their envelope (EPOCH = "group")."""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.schema import Message


@dataclass(frozen=True, slots=True)
class TopicPartitions(Message):
    """Some partitions of one topic."""

    topic: str
    partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PartitionOffset(Message):
    """A committed offset (-1: none) with optional client metadata."""

    topic: str
    partition: int
    offset: int
    metadata: str


@dataclass(frozen=True, slots=True)
class FindCoordinatorRequest(Message):
    """Which broker coordinates this group."""

    group_id: str


@dataclass(frozen=True, slots=True)
class FindCoordinatorResponse(Message):
    """The coordinator's broker id and endpoint."""

    error_code: int
    node: int
    endpoint: str


@dataclass(frozen=True, slots=True)
class JoinGroupRequest(Message):
    """Join (member_id "" for a new member) with a subscription; static members set instance_id.
    It carries no epoch: joining is how a member gets one."""

    group_id: str
    member_id: str
    instance_id: str | None
    subscription: tuple[str, ...]
    session_timeout_ms: int


@dataclass(frozen=True, slots=True)
class JoinGroupResponse(Message):
    """The member's id and epoch, its heartbeat interval and its assigned partitions."""

    error_code: int
    member_id: str
    member_epoch: int
    heartbeat_interval_ms: int
    assignment: tuple[TopicPartitions, ...]


@dataclass(frozen=True, slots=True)
class HeartbeatRequest(Message):
    """Keep the membership alive at `member_epoch`."""

    EPOCH = "group"
    group_id: str
    member_id: str
    member_epoch: int


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(Message):
    """The member's current epoch and full assignment (it may have changed)."""

    error_code: int
    member_epoch: int
    heartbeat_interval_ms: int
    assignment: tuple[TopicPartitions, ...]


@dataclass(frozen=True, slots=True)
class LeaveGroupRequest(Message):
    """Leave the group now (no epoch: a fenced member may always leave)."""

    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True)
class LeaveGroupResponse(Message):
    """Outcome of a LeaveGroupRequest."""

    error_code: int


@dataclass(frozen=True, slots=True)
class OffsetCommitRequest(Message):
    """Commit offsets for partitions this member owns."""

    EPOCH = "group"
    group_id: str
    member_id: str
    member_epoch: int
    offsets: tuple[PartitionOffset, ...]


@dataclass(frozen=True, slots=True)
class OffsetCommitResponse(Message):
    """Outcome of an OffsetCommitRequest (all or nothing)."""

    error_code: int


@dataclass(frozen=True, slots=True)
class OffsetFetchRequest(Message):
    """Committed offsets of the group for some partitions (None: all of them)."""

    group_id: str
    partitions: tuple[TopicPartitions, ...] | None


@dataclass(frozen=True, slots=True)
class OffsetFetchResponse(Message):
    """The committed offsets found."""

    error_code: int
    offsets: tuple[PartitionOffset, ...]
