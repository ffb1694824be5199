"""Consumer-group protocol: coordinator lookup, membership with server-side assignment,
committed offsets, and the admin side (list, describe, delete groups).

Member epochs are checked by the coordinator's group state machine, not at the actor's door:
a member legitimately sends an epoch below the group's while it reconciles, its previous
epoch after a lost answer, and older epochs on commits of partitions it kept
(actors/group/state.py says exactly which are accepted)."""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.names import TopicPartition
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
    """Join with a subscription: topic names, or a regular expression over topic names
    (`subscription_pattern`, matched whole). The member id is best made by the client (a
    retried join then cannot create a second member); "" asks the coordinator for one.
    Static members set `instance_id`; `assignor` None: the group's default. Joining is how
    a member gets an epoch, and means it owns nothing."""

    group_id: str
    member_id: str
    instance_id: str | None
    subscription: tuple[str, ...]
    subscription_pattern: str | None
    assignor: str | None
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
    """Keep the membership alive at `member_epoch`, saying which partitions the member owns
    now (always all of them: how it confirms a revocation). A changed subscription rides
    along (None: unchanged)."""

    group_id: str
    member_id: str
    member_epoch: int
    owned: tuple[TopicPartitions, ...]
    subscription: tuple[str, ...] | None
    subscription_pattern: str | None


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(Message):
    """The member's epoch and the partitions it must own now: it revokes what it owns beyond
    them (committing first) and heartbeats again at once; it starts what is new."""

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
    """Commit offsets for partitions this member owns (member_id "": a commit from outside
    the group, e.g. an admin reset, accepted only while the group has no members)."""

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


@dataclass(frozen=True, slots=True)
class ListGroupsRequest(Message):
    """Every group this broker coordinates."""


@dataclass(frozen=True, slots=True)
class GroupListing(Message):
    """One group: its id and state ("empty", "stable", "reconciling")."""

    group_id: str
    state: str


@dataclass(frozen=True, slots=True)
class ListGroupsResponse(Message):
    """The groups this broker coordinates."""

    error_code: int
    groups: tuple[GroupListing, ...]


@dataclass(frozen=True, slots=True)
class DescribeGroupRequest(Message):
    """A group's state, members and assignment (sent to its coordinator)."""

    group_id: str


@dataclass(frozen=True, slots=True)
class GroupMember(Message):
    """One member as its coordinator sees it (the SDK's `MemberDescription`): its ids, what
    it subscribes to (topic names, or a pattern), its epoch, its state ("stable",
    "reconciling", or "revoking": it must give partitions up first), the partitions it owns
    and those it is giving up, each sorted."""

    member_id: str
    instance_id: str | None
    subscription: tuple[str, ...]
    subscription_pattern: str | None
    member_epoch: int
    state: str
    assignment: tuple[TopicPartition, ...]
    revoking: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class DescribeGroupResponse(Message):
    """A group's epoch, state, assignor and members (GROUP_ID_NOT_FOUND if none)."""

    error_code: int
    group_id: str
    state: str
    epoch: int
    assignor: str
    members: tuple[GroupMember, ...]


@dataclass(frozen=True, slots=True)
class DeleteGroupRequest(Message):
    """Delete a group and its committed offsets (NON_EMPTY_GROUP while it has members)."""

    group_id: str


@dataclass(frozen=True, slots=True)
class DeleteGroupResponse(Message):
    """Outcome of a DeleteGroupRequest."""

    error_code: int
