"""What the group coordinator's shell (the actor) and its tests use from the pure group state
machine (`state.py`): the answers (`Outcome`, `MemberAssignment`), descriptions for the
CLI, error names and their wire codes, limits, request checks and the group invariant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from zafka.actors.group.assignors import ASSIGNORS
from zafka.actors.group.records import Member, Record, Subscription, compile_pattern
from zafka.errors import BY_NAME
from zafka.limits import session_timeout_ms_max, subscription_pattern_bytes_max
from zafka.transport.names import TopicPartition


def error_code(name: str) -> int:
    """The wire code of an `Outcome.error` name (a name from zafka/errors.py's table)."""
    return BY_NAME[name].code


class MemberAssignment(NamedTuple):
    """The answer to a join or heartbeat: the member's id and epoch, how often to heartbeat,
    the partitions it must own (`assignment`) and those it must give up (`revoking`)."""

    member_id: str
    member_epoch: int
    heartbeat_interval_ms: int
    assignment: frozenset[TopicPartition]
    revoking: frozenset[TopicPartition]


class Outcome(NamedTuple):
    """What a handler did: records to append (in order, already applied), an error name
    ("NONE": success; nothing changed otherwise), the member's answer (join, heartbeat) and
    the members removed (expire)."""

    records: tuple[Record, ...] = ()
    error: str = "NONE"
    member: MemberAssignment | None = None
    removed: tuple[str, ...] = ()


class MemberDescription(NamedTuple):
    member_id: str
    instance_id: str | None
    subscription: Subscription
    member_epoch: int
    state: str  # "stable" | "revoking" | "reconciling"
    assignment: frozenset[TopicPartition]
    revoking: frozenset[TopicPartition]
    target: frozenset[TopicPartition]


class GroupDescription(NamedTuple):
    group_id: str
    state: str  # "empty" | "stable" (every member stable) | "reconciling"
    epoch: int
    assignor: str
    members: tuple[MemberDescription, ...]


def check_join(
    subscription: Subscription,
    session_timeout_ms: int,
    assignor: str | None,
    heartbeat_interval_ms: int,
) -> str | None:
    """The error name for a join's settings, or None: a session timeout in
    (heartbeat_interval_ms, session_timeout_ms_max], a known assignor, a valid subscription."""
    if not heartbeat_interval_ms < session_timeout_ms <= session_timeout_ms_max:
        return "INVALID_SESSION_TIMEOUT"
    if assignor is not None and assignor not in ASSIGNORS:
        return "INVALID_REQUEST"
    return check_subscription(subscription)


def check_subscription(subscription: Subscription) -> str | None:
    """INVALID_REQUEST for a pattern that is too long or does not compile, else None."""
    pattern = subscription.pattern
    if pattern is None:
        return None
    if len(pattern.encode()) > subscription_pattern_bytes_max:
        return "INVALID_REQUEST"
    try:
        compile_pattern(pattern)
    except Exception:  # re.error, RecursionError, ...
        return "INVALID_REQUEST"
    return None


def describe_group(
    group_id: str,
    epoch: int,
    assignor: str,
    members: Mapping[str, Member],
    target: Mapping[str, frozenset[TopicPartition]],
) -> GroupDescription:
    """The group as `zafka groups describe` shows it."""
    described = tuple(
        describe_member(members[m], epoch, target.get(m, frozenset())) for m in sorted(members)
    )
    if not described:
        state = "empty"
    elif all(m.state == "stable" for m in described):
        state = "stable"
    else:
        state = "reconciling"
    return GroupDescription(group_id, state, epoch, assignor, described)


def describe_member(
    member: Member, epoch: int, target: frozenset[TopicPartition]
) -> MemberDescription:
    assignment = frozenset(member.assigned)
    if member.revoking:
        state = "revoking"
    elif member.epoch == epoch and assignment == target:
        state = "stable"
    else:
        state = "reconciling"
    return MemberDescription(
        member.member_id,
        member.instance_id,
        member.subscription,
        member.epoch,
        state,
        assignment,
        frozenset(member.revoking),
        target,
    )


def check_invariant(
    epoch: int,
    members: Mapping[str, Member],
    target: Mapping[str, frozenset[TopicPartition]],
    owner_index: Mapping[TopicPartition, str],
) -> None:
    """Raises AssertionError unless: no partition has two owners (assigned or revoking),
    `owner_index` matches the members, each member has a target and the targets are
    disjoint, and no member epoch is ahead of the group epoch."""
    owners: dict[TopicPartition, str] = {}
    for member in members.values():
        assert not set(member.assigned) & set(member.revoking), member
        assert member.epoch <= epoch, (member, epoch)
        for tp in member.owns():
            assert tp not in owners, f"{tp} owned by {owners.get(tp)} and {member.member_id}"
            owners[tp] = member.member_id
    assert owners == owner_index, "the owner index does not match the members"
    assert set(target) == set(members), "members and targets differ"
    targeted = [tp for tps in target.values() for tp in tps]
    assert len(targeted) == len(set(targeted)), "a partition in two targets"
