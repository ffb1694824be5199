"""Consumer-group administration: `GroupAdmin`, which `Admin` (clients/admin.py) owns.

    with Admin("127.0.0.1:9092") as admin:
        for listing in admin.list_groups():
            print(listing.group_id, listing.state)
        group = admin.describe_group("readers")
        for offset in admin.list_group_offsets("readers"):
            print(offset.topic, offset.partition, offset.committed, offset.log_end, offset.lag)
        admin.reset_group_offsets("readers", {("orders", 0): 0})  # only while it has no members

Group requests go to the group's coordinator, `broker-<C>/group-<group_id>`, found with a
FindCoordinatorRequest to any broker (docs/PROTOCOL.md, *Consumer groups, step by step*):
UNKNOWN_ACTOR from the coordinator makes the next lookup go to that broker's own `broker`
actor (which starts the group's actor); COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE and other retriable errors are retried after a backoff. All of it
runs in the caller's thread, bounded by `request_timeout_ms` for the whole method; the
requests themselves go through the Admin's I/O thread.

Offsets are reset by committing from outside the group (member id ""), which the coordinator
accepts only while the group has no members: a reset of an active group raises
NON_EMPTY_GROUP, saying to stop its consumers first. Resetting a group that does not exist
creates it, with those offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from zafka import clock, limits
from zafka.backoff import backoff_ms
from zafka.clients.admin_types import (
    GroupDescription,
    GroupListing,
    GroupOffset,
    MemberDescription,
)
from zafka.clients.io import result
from zafka.clients.metadata import NO_LEADER
from zafka.errors import BY_NAME, ZafkaError, from_code
from zafka.transport import admin as wire
from zafka.transport import group as gw
from zafka.transport.client import (
    EARLIEST,
    LATEST,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    MetadataResponse,
)
from zafka.transport.names import TopicPartition

__all__ = [
    "EARLIEST",
    "LATEST",
    "GroupAdmin",
    "GroupDescription",
    "GroupListing",
    "GroupOffset",
    "MemberDescription",
]
_Response = TypeVar("_Response")


def _tp(item: object, what: str) -> TopicPartition:
    """`item` as a TopicPartition (INVALID_REQUEST if it is not a (topic, partition))."""
    try:
        topic, partition = item  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ZafkaError("INVALID_REQUEST", f"{what}: not a (topic, partition): {item!r}") from None
    if not isinstance(topic, str) or type(partition) is not int or partition < 0:
        raise ZafkaError("INVALID_REQUEST", f"{what}: not a (topic, partition): {item!r}")
    return TopicPartition(topic, partition)


def _tps(partitions: Iterable[tuple[str, int]], what: str) -> list[TopicPartition]:
    """`partitions` as TopicPartitions without repeats."""
    if isinstance(partitions, str):
        raise ZafkaError("INVALID_REQUEST", f"{what} takes (topic, partition) pairs, got a str")
    return list(dict.fromkeys(_tp(item, what) for item in partitions))


def _specs(specs: Mapping[tuple[str, int], int], what: str) -> dict[TopicPartition, int]:
    """`specs` keyed by TopicPartition."""
    if not isinstance(specs, Mapping):
        raise ZafkaError("INVALID_REQUEST", f"{what} takes a dict {{(topic, partition): int}}")
    return {_tp(item, what): value for item, value in specs.items()}


def _by_topic(tps: Iterable[TopicPartition]) -> tuple[gw.TopicPartitions, ...]:
    topics: dict[str, list[int]] = {}
    for tp in tps:
        topics.setdefault(tp.topic, []).append(tp.partition)
    return tuple(gw.TopicPartitions(t, tuple(sorted(ps))) for t, ps in sorted(topics.items()))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def wait_reply(future: Future[Any], deadline: float, expected: type[_Response]) -> _Response:
    """The reply `future` brings by `deadline` (clock.monotonic_s()), which must be an
    `expected`; its error is raised here, in the caller's thread."""
    reply = result(future, max(deadline - clock.monotonic_s(), 0) + limits.caller_grace_s)
    if not isinstance(reply, expected):
        raise ZafkaError(
            "UNKNOWN_SERVER_ERROR",
            f"expected a {expected.__name__}, the broker sent a {type(reply).__name__}",
        )
    return reply


class Backoff:
    """Sleeps between retries, doubling, never past `deadline`; remembers the last error."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.failures = 0
        self.last: ZafkaError | None = None

    def wait(self, error: ZafkaError, what: str) -> None:
        """Sleep before the next attempt, or raise REQUEST_TIMED_OUT (naming `error`) if the
        deadline would pass first."""
        self.last = error
        self.failures += 1
        first_ms, max_ms = limits.retry_backoff_ms, limits.retry_backoff_ms_max
        delay_s = backoff_ms(first_ms, self.failures, max_ms) / 1000
        if clock.monotonic_s() + delay_s >= self.deadline:
            raise ZafkaError("REQUEST_TIMED_OUT", f"{what}; the last error: {error}")
        time.sleep(delay_s)


class GroupAdmin:
    """The consumer-group methods of an `Admin`, which owns one (see the module docstring).
    It sends through the two functions it is given: `call(message, expected, target,
    deadline, context)` waits for the reply, `submit(message, target, deadline, context)`
    returns a future of it; both raise or hold the reply's ZafkaError."""

    def __init__(
        self, call: Callable[..., Any], submit: Callable[..., Future[Any]], timeout_ms: int
    ):
        self._call = call
        self._submit = submit
        self._timeout_ms = timeout_ms

    def _deadline(self) -> float:
        return clock.monotonic_s() + self._timeout_ms / 1000

    # --- groups ---------------------------------------------------------------------------

    def list_groups(self) -> list[GroupListing]:
        """Every group some broker coordinates (ListGroups to each live broker), by id.
        Groups never used, or deleted, are not listed."""
        deadline = self._deadline()
        found: dict[str, GroupListing] = {}
        answered: set[int] = set()
        backoff = Backoff(deadline)
        while True:  # the live brokers not asked yet (again after a failure: one may be gone)
            cluster = self._call(MetadataRequest(topics=()), MetadataResponse, None, deadline)
            pending = sorted(b.id for b in cluster.brokers if b.id not in answered)
            futures = {
                b: self._submit(gw.ListGroupsRequest(), (b, "broker"), deadline, f"broker {b}")
                for b in pending
            }
            error = None
            for broker_id, future in futures.items():
                try:
                    reply = wait_reply(future, deadline, gw.ListGroupsResponse)
                except ZafkaError as err:
                    if not err.retriable or err.error.name == "REQUEST_TIMED_OUT":
                        raise
                    error = err
                    continue
                answered.add(broker_id)
                for g in reply.groups:
                    found.setdefault(g.group_id, GroupListing(g.group_id, g.state, broker_id))
            if error is None:
                break
            backoff.wait(error, "not every broker listed its groups in time")
        return sorted(found.values(), key=lambda g: g.group_id)

    def describe_group(self, group_id: str) -> GroupDescription:
        """The group's state, epoch, assignor and members (with their assignments). Raises
        GROUP_ID_NOT_FOUND when there is no such group (never used, or deleted),
        INVALID_GROUP_ID for a name outside [A-Za-z0-9._-]."""
        coordinator, r = self._group_request(
            group_id, gw.DescribeGroupRequest(group_id), gw.DescribeGroupResponse
        )
        members = r.members
        return GroupDescription(r.group_id, r.state, r.epoch, r.assignor, members, coordinator)

    def list_group_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
    ) -> list[GroupOffset]:
        """The group's committed offsets with each partition's log end offset and lag, by
        topic and partition. `partitions` None: every partition with a committed offset
        (none for an unknown group); else those partitions (`committed` None where there is
        none). A log end that cannot be read now (a topic deleted, no leader) is None."""
        wanted = None if partitions is None else _tps(partitions, "list_group_offsets")
        if wanted == []:
            return []
        deadline = self._deadline()
        request = gw.OffsetFetchRequest(group_id, None if wanted is None else _by_topic(wanted))
        _, r = self._group_request(group_id, request, gw.OffsetFetchResponse, deadline)
        committed = {TopicPartition(o.topic, o.partition): o for o in r.offsets}
        tps = sorted(committed if wanted is None else wanted)
        if wanted is None:
            tps = [tp for tp in tps if committed[tp].offset >= 0]
        ends = self._list_offsets({tp: LATEST for tp in tps}, deadline, strict=False)
        offsets = []
        for tp in tps:
            c = committed.get(tp)
            offset = None if c is None or c.offset < 0 else c.offset
            end = ends.get(tp)
            log_end = end if isinstance(end, int) else None
            offsets.append(
                GroupOffset(tp.topic, tp.partition, offset, c.metadata if c else "", log_end)
            )
        return offsets

    def reset_group_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit `offsets` ({(topic, partition): offset}) for the group, from outside it: only
        while it has no members (else NON_EMPTY_GROUP: stop its consumers first). A group
        that does not exist is created. The partitions must exist (UNKNOWN_TOPIC_OR_PARTITION);
        the offsets are taken as given (`list_offsets` finds the log's bounds)."""
        wanted = _specs(offsets, "reset_group_offsets")
        for tp, offset in wanted.items():
            if type(offset) is not int or offset < 0:
                raise ZafkaError("INVALID_REQUEST", f"{tp}: offset {offset!r}, expected >= 0")
        if not wanted:
            return
        deadline = self._deadline()
        self._check_partitions(list(wanted), deadline)
        commits = tuple(
            gw.PartitionOffset(tp.topic, tp.partition, o, "") for tp, o in sorted(wanted.items())
        )
        request = gw.OffsetCommitRequest(group_id, "", -1, commits)
        try:
            self._group_request(group_id, request, gw.OffsetCommitResponse, deadline)
        except ZafkaError as err:
            if err.error.name != "UNKNOWN_MEMBER_ID":  # member "" refused: it has members
                raise
            raise self._active(group_id, "reset its offsets") from None

    def delete_group(self, group_id: str) -> None:
        """Delete the group and its committed offsets. Raises GROUP_ID_NOT_FOUND if there is
        none, NON_EMPTY_GROUP while it has members (stop its consumers first)."""
        try:
            self._group_request(group_id, gw.DeleteGroupRequest(group_id), gw.DeleteGroupResponse)
        except ZafkaError as err:
            if err.error.name != "NON_EMPTY_GROUP":
                raise
            raise self._active(group_id, "delete it") from None

    # --- offsets of partitions -------------------------------------------------------------

    def list_offsets(
        self, specs: Mapping[tuple[str, int], int]
    ) -> dict[TopicPartition, int | None]:
        """For each partition, asked of its leader: EARLIEST (-2) the log start offset,
        LATEST (-1) the log end offset (high watermark), or a time (ms since the epoch): the
        first offset whose record's timestamp is at or after it (None: no such record).
        Raises UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist."""
        wanted = _specs(specs, "list_offsets")
        for tp, spec in wanted.items():
            if type(spec) is not int or spec < EARLIEST:
                raise ZafkaError(
                    "INVALID_REQUEST", f"{tp}: {spec!r}: expected EARLIEST, LATEST or a time"
                )
        found = self._list_offsets(wanted, self._deadline(), strict=True)
        return {tp: None if o == -1 else o for tp, o in found.items() if isinstance(o, int)}

    # --- plumbing -------------------------------------------------------------------------

    def _active(self, group_id: str, what: str) -> ZafkaError:
        """NON_EMPTY_GROUP for `group_id`, saying how many members it has and what to do."""
        try:
            members = len(self.describe_group(group_id).members)
            has = f"has {_plural(members, 'active member')}"
        except ZafkaError:
            has = "has active members"
        return ZafkaError(
            "NON_EMPTY_GROUP", f"group {group_id!r} {has}: stop its consumers first, then {what}"
        )

    def _group_request(
        self,
        group_id: str,
        message: object,
        expected: type[_Response],
        deadline: float | None = None,
    ) -> tuple[int, _Response]:
        """Send `message` to the group's coordinator (found first), following it and retrying
        as the module docstring says, until `deadline`. Returns the coordinator's id and its
        answer; an answer's error code is raised."""
        if deadline is None:
            deadline = self._deadline()
        ask: int | None = None  # ask this broker's `broker` actor for the coordinator
        backoff = Backoff(deadline)
        what = f"group {group_id!r}: no answer from its coordinator within {self._timeout_ms} ms"
        while True:
            coordinator = None
            try:
                coordinator = self._find_coordinator(group_id, ask, deadline)
                target = (coordinator, f"group-{group_id}")
                reply = self._call(message, expected, target, deadline, f"group {group_id!r}")
                return coordinator, reply
            except ZafkaError as err:
                name = err.error.name
                if not err.retriable or name == "REQUEST_TIMED_OUT":
                    raise
                if name == "UNKNOWN_ACTOR" and coordinator is not None:
                    first = ask != coordinator
                    ask = coordinator  # its broker starts the group's actor when asked
                    if first:
                        continue  # at once: that is the normal way to start it
                elif err.error.refind_coordinator:
                    ask = None
                backoff.wait(err, what)

    def _find_coordinator(self, group_id: str, ask: int | None, deadline: float) -> int:
        """The coordinator's broker id, asked of broker `ask` (None: any broker)."""
        request = gw.FindCoordinatorRequest(group_id)
        target = None if ask is None else (ask, "broker")
        context = f"group {group_id!r}"
        return self._call(request, gw.FindCoordinatorResponse, target, deadline, context).node

    def _check_partitions(self, tps: list[TopicPartition], deadline: float) -> None:
        """UNKNOWN_TOPIC_OR_PARTITION (or INVALID_TOPIC) unless every one of `tps` exists."""
        for leader in self._leaders(tps, deadline).values():
            if isinstance(leader, ZafkaError) and leader.error.name != "NOT_LEADER_OR_FOLLOWER":
                raise leader

    def _leaders(
        self, tps: Iterable[TopicPartition], deadline: float
    ) -> dict[TopicPartition, int | ZafkaError]:
        """Each partition's leader (DescribeTopics: never creates a topic), or its error:
        UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER when it has no leader now."""
        tps = list(tps)
        names = tuple(sorted({tp.topic for tp in tps}))
        if not names:
            return {}
        r = self._call(
            wire.DescribeTopicsRequest(names=names), wire.DescribeTopicsResponse, None, deadline
        )
        topics = {t.name: t for t in r.topics}
        leaders: dict[TopicPartition, int | ZafkaError] = {}
        for tp in tps:
            topic = topics.get(tp.topic)
            if topic is None or topic.error_code != 0:
                code = topic.error_code if topic else BY_NAME["UNKNOWN_TOPIC_OR_PARTITION"].code
                leaders[tp] = from_code(code, f"topic {tp.topic!r}")
            elif tp.partition >= len(topic.partitions):
                count = _plural(len(topic.partitions), "partition")
                leaders[tp] = ZafkaError(
                    "UNKNOWN_TOPIC_OR_PARTITION", f"topic {tp.topic!r} has {count}, no {tp}"
                )
            elif topic.partitions[tp.partition].leader == NO_LEADER:
                leaders[tp] = ZafkaError("NOT_LEADER_OR_FOLLOWER", f"{tp} has no leader now")
            else:
                leaders[tp] = topic.partitions[tp.partition].leader
        return leaders

    def _list_offsets(
        self, specs: Mapping[TopicPartition, int], deadline: float, strict: bool
    ) -> dict[TopicPartition, int | ZafkaError]:
        """ListOffsets of each partition at its leader, retrying retriable errors until
        `deadline`. `strict`: the first error that will not go away is raised, else every
        partition that fails gets its error instead of an offset."""
        found: dict[TopicPartition, int | ZafkaError] = {}
        pending = dict(specs)
        backoff = Backoff(deadline)
        while pending:
            futures: dict[TopicPartition, Future[Any] | ZafkaError] = {}
            for tp, leader in self._leaders(pending, deadline).items():
                if isinstance(leader, ZafkaError):
                    futures[tp] = leader
                else:
                    request = ListOffsetsRequest(tp.topic, tp.partition, pending[tp])
                    target = (leader, f"{tp.topic}-{tp.partition}")
                    futures[tp] = self._submit(request, target, deadline, str(tp))
            retry: dict[TopicPartition, int] = {}
            error = None
            for tp, future in futures.items():
                try:
                    if isinstance(future, ZafkaError):
                        raise future
                    reply = wait_reply(future, deadline, ListOffsetsResponse)
                    found[tp] = reply.offset
                except ZafkaError as err:
                    unknown = err.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
                    if err.retriable and not unknown and err.error.name != "REQUEST_TIMED_OUT":
                        retry[tp], error = pending[tp], err
                    elif strict:
                        raise
                    else:
                        found[tp] = err
            pending = retry
            if error is not None:
                try:
                    backoff.wait(error, f"no offsets for {sorted(pending)} in time")
                except ZafkaError as err:
                    if strict:
                        raise
                    found.update(dict.fromkeys(pending, err))
                    break
        return found
