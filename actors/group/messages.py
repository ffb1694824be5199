"""What a group coordinator exchanges: the local messages between it, the broker actor and
the offsets loaders (plain objects, never on the wire: the codec does not know them, so no
peer can send one), and the conversions between the group state machine's answers and the
wire messages of transport/group.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from zafka.actors.group.api import GroupDescription
from zafka.actors.group.records import Subscription
from zafka.actors.group.state import GroupState
from zafka.transport.group import (
    DeleteGroupRequest,
    DeleteGroupResponse,
    DescribeGroupRequest,
    DescribeGroupResponse,
    GroupMember,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    TopicPartitions,
)
from zafka.transport.names import TopicPartition


def is_blank(state: GroupState) -> bool:
    """No members, no offsets, epoch 0: what a group never used (or deleted) looks like."""
    return not state.members and not state.offsets and state.epoch == 0


# --- local messages (never on the wire: the codec does not know them) ---------------------


@dataclass(frozen=True, eq=False)
class GroupLoaded:
    """Broker -> coordinator: the group's state, replayed from the log (ownership passes),
    and every topic's partition count now."""

    state: GroupState
    topics: Mapping[str, int]


@dataclass(frozen=True)
class TopicsChanged:
    """Broker -> coordinators: every topic's partition count, after a change."""

    topics: Mapping[str, int]


@dataclass(frozen=True)
class NeedState:
    """Coordinator -> broker: replay my group from the log (I started without a state, or an
    append failed)."""

    group_id: str


@dataclass(frozen=True)
class GroupStatus:
    """Coordinator -> broker: the group's state for ListGroups ("empty", "stable",
    "reconciling"), None while it is blank."""

    group_id: str
    state: str | None


@dataclass(frozen=True)
class GroupGone:
    """Coordinator -> broker: I stopped (blank and idle)."""

    group_id: str


# --- wire messages <-> the state machine ----------------------------------------------------


def topic_partitions(partitions: Iterable[TopicPartition]) -> tuple[TopicPartitions, ...]:
    """Partitions grouped by topic, sorted."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return tuple(TopicPartitions(t, tuple(ps)) for t, ps in by_topic.items())


def partitions_of(groups: Iterable[TopicPartitions]) -> list[TopicPartition]:
    """The partitions of wire `TopicPartitions`, one by one."""
    return [TopicPartition(g.topic, p) for g in groups for p in g.partitions]


def subscription_of(topics: tuple[str, ...], pattern: str | None) -> Subscription | None:
    """The subscription, or None if it has both topics and a pattern."""
    try:
        return Subscription(topics, pattern)
    except ValueError:
        return None


def error_response(message: object, code: int, heartbeat_interval_ms: int) -> object:
    """The response to `message` (a group request) that carries only error `code`."""
    if isinstance(message, JoinGroupRequest):
        return JoinGroupResponse(code, message.member_id, -1, heartbeat_interval_ms, ())
    if isinstance(message, HeartbeatRequest):
        return HeartbeatResponse(code, -1, heartbeat_interval_ms, ())
    if isinstance(message, LeaveGroupRequest):
        return LeaveGroupResponse(code)
    if isinstance(message, OffsetCommitRequest):
        return OffsetCommitResponse(code)
    if isinstance(message, OffsetFetchRequest):
        return OffsetFetchResponse(code, ())
    if isinstance(message, DescribeGroupRequest):
        return DescribeGroupResponse(code, message.group_id, "", -1, "", ())
    if isinstance(message, DeleteGroupRequest):
        return DeleteGroupResponse(code)
    raise TypeError(f"not a group request: {type(message).__name__}")


def describe_response(description: GroupDescription) -> DescribeGroupResponse:
    members = tuple(
        GroupMember(
            m.member_id,
            m.instance_id,
            m.subscription.topics,
            m.subscription.pattern,
            m.member_epoch,
            m.state,
            tuple(sorted(m.assignment)),
            tuple(sorted(m.revoking)),
        )
        for m in description.members
    )
    d = description
    return DescribeGroupResponse(0, d.group_id, d.state, d.epoch, d.assignor, members)
