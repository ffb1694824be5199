"""Admin's group methods (clients/admin_groups.py) over scripted answers, no sockets: how the
coordinator is found and followed (UNKNOWN_ACTOR -> FindCoordinator at that broker; NOT_
COORDINATOR -> any broker; LOAD_IN_PROGRESS -> the same again after a backoff), the whole
method bounded by the request timeout (on a fake clock), a refused reset turned into
NON_EMPTY_GROUP with the member count, ListGroups from every broker, argument checks."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import pytest

from zafka import limits
from zafka.actors.runtime.actor import error_of
from zafka.clients import admin_groups
from zafka.clients.admin_groups import GroupAdmin, GroupListing, GroupOffset
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport import admin as wire
from zafka.transport import group as gw
from zafka.transport.client import (
    BrokerInfo,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
)
from zafka.transport.names import TopicPartition as TP

Target = tuple[int, str] | None
Answer = Callable[[Target, object], object]


def code(name: str) -> int:
    return BY_NAME[name].code


class Clock:
    """time.monotonic and time.sleep for admin_groups: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic_s(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Scripted:
    """A GroupAdmin whose requests are answered by `answer(target, message)` (a reply, or a
    ZafkaError to raise); every request is recorded as (target, message type name). Its
    attributes are the GroupAdmin's (`Scripted(answer).describe_group("g")`)."""

    def __init__(self, answer: Answer, timeout_ms: int = 2_000) -> None:
        self.answer = answer
        self.sent: list[tuple[Target, str]] = []
        self.groups = GroupAdmin(self._call, self._submit, timeout_ms)

    def __getattr__(self, name: str) -> object:
        return getattr(self.groups, name)

    def _reply(self, message: object, target: Target, context: str) -> object:
        self.sent.append((target, type(message).__name__))
        reply = self.answer(target, message)
        error = reply if isinstance(reply, ZafkaError) else error_of(reply, context)
        if error is not None:  # as the I/O thread's `request` does
            raise error
        return reply

    def _call(self, message, expected, target=None, deadline=None, context=""):
        reply = self._reply(message, target, context)
        assert isinstance(reply, expected), reply
        return reply

    def _submit(self, message, target, deadline, context=""):
        future: Future = Future()
        try:
            future.set_result(self._reply(message, target, context))
        except ZafkaError as err:
            future.set_exception(err)
        return future


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(admin_groups, "clock", fake)  # what the backoff reads
    monkeypatch.setattr(admin_groups, "time", fake)  # and its sleep
    return fake


def found(node: int) -> gw.FindCoordinatorResponse:
    return gw.FindCoordinatorResponse(0, node, f"tcp://127.0.0.1:{9000 + node}")


def described(members: int = 0) -> gw.DescribeGroupResponse:
    member = gw.GroupMember("m", None, ("t",), None, 1, "stable", (), ())
    return gw.DescribeGroupResponse(0, "g", "stable", 1, "uniform", (member,) * members)


def group_answers(*group_replies: object, coordinator: int = 2) -> Answer:
    """FindCoordinator names `coordinator`; the group actor answers `group_replies` in turn
    (a str: that error name as a ZafkaError, an int: a DescribeGroupResponse error code)."""
    replies = list(group_replies)

    def answer(target: Target, message: object) -> object:
        if isinstance(message, gw.FindCoordinatorRequest):
            return found(coordinator)
        reply = replies.pop(0)
        if isinstance(reply, str):
            return ZafkaError(reply, "scripted")
        if isinstance(reply, int):
            return gw.DescribeGroupResponse(reply, "g", "", 0, "", ())
        return reply

    return answer


def test_unknown_actor_asks_that_broker_for_the_coordinator_at_once(clock):
    admin = Scripted(group_answers("UNKNOWN_ACTOR", described()))
    assert admin.describe_group("g").coordinator == 2
    assert admin.sent == [
        (None, "FindCoordinatorRequest"),
        ((2, "group-g"), "DescribeGroupRequest"),
        ((2, "broker"), "FindCoordinatorRequest"),  # that broker starts the group's actor
        ((2, "group-g"), "DescribeGroupRequest"),
    ]
    assert clock.slept == []


def test_unknown_actor_twice_backs_off(clock):
    admin = Scripted(group_answers("UNKNOWN_ACTOR", "UNKNOWN_ACTOR", described()))
    admin.describe_group("g")
    assert [t for t, _ in admin.sent if t and t[1] == "broker"] == [(2, "broker"), (2, "broker")]
    assert clock.slept == [limits.retry_backoff_ms / 1000]


def test_load_in_progress_and_not_coordinator_retry_with_backoff(clock):
    load, moved = code("COORDINATOR_LOAD_IN_PROGRESS"), code("NOT_COORDINATOR")
    admin = Scripted(group_answers(load, load, moved, described(1)))
    assert len(admin.describe_group("g").members) == 1
    finds = [t for t, name in admin.sent if name == "FindCoordinatorRequest"]
    assert finds == [None] * 4  # any broker each time
    first = limits.retry_backoff_ms / 1000
    assert clock.slept == [first, 2 * first, 4 * first]


def test_errors_that_will_not_go_away_are_raised_at_once(clock):
    admin = Scripted(group_answers(code("GROUP_ID_NOT_FOUND")))
    with pytest.raises(ZafkaError) as err:
        admin.describe_group("g")
    assert err.value.error.name == "GROUP_ID_NOT_FOUND" and "'g'" in str(err.value)
    assert clock.slept == []

    def invalid(target: Target, message: object) -> object:
        return gw.FindCoordinatorResponse(code("INVALID_GROUP_ID"), -1, "")

    with pytest.raises(ZafkaError) as err:
        Scripted(invalid).describe_group("bad/name")
    assert err.value.error.name == "INVALID_GROUP_ID"


def test_the_whole_method_is_bounded_by_the_request_timeout(clock):
    load = code("COORDINATOR_LOAD_IN_PROGRESS")
    admin = Scripted(group_answers(*[load] * 100), timeout_ms=5_000)
    started = clock.now
    with pytest.raises(ZafkaError) as err:
        admin.describe_group("g")
    assert err.value.error.name == "REQUEST_TIMED_OUT"
    assert "COORDINATOR_LOAD_IN_PROGRESS" in str(err.value)  # the last error, for the user
    first, cap = limits.retry_backoff_ms / 1000, limits.retry_backoff_ms_max / 1000
    waits = [min(first * 2**i, cap) for i in range(len(clock.slept) + 1)]
    assert clock.slept == waits[:-1] and len(waits) > 5  # doubling up to the cap
    assert clock.now - started <= 5.0 < clock.now - started + waits[-1]  # the next would pass


def _topic(partitions: int) -> wire.DescribeTopicsResponse:
    parts = tuple(PartitionMetadata(p, 1, 0, (1,), (1,)) for p in range(partitions))
    return wire.DescribeTopicsResponse((wire.TopicDescription("t", 0, parts, {}),))


def test_a_refused_reset_says_how_many_members_and_what_to_do(clock):
    def answer(target: Target, message: object) -> object:
        if isinstance(message, gw.FindCoordinatorRequest):
            return found(1)
        if isinstance(message, wire.DescribeTopicsRequest):
            return _topic(2)
        if isinstance(message, gw.OffsetCommitRequest):
            assert (message.member_id, message.offsets) == (
                "",
                (gw.PartitionOffset("t", 0, 5, ""), gw.PartitionOffset("t", 1, 0, "")),
            )
            return gw.OffsetCommitResponse(code("UNKNOWN_MEMBER_ID"))
        return described(2)

    with pytest.raises(ZafkaError) as err:
        Scripted(answer).reset_group_offsets("g", {("t", 1): 0, TP("t", 0): 5})
    assert err.value.error.name == "NON_EMPTY_GROUP"
    assert "group 'g' has 2 active members: stop its consumers first" in str(err.value)


def test_reset_checks_its_arguments_before_asking(clock):
    admin = Scripted(lambda target, message: _topic(2))
    for bad, complaint in [
        ({("t", 0): -1}, "expected >= 0"),
        ({("t", 0): True}, "expected >= 0"),
        ({("t", -1): 0}, "not a (topic, partition)"),
        ({"t": 0}, "not a (topic, partition)"),
        ([("t", 0)], "takes a dict"),
    ]:
        with pytest.raises(ZafkaError, match="INVALID_REQUEST") as err:
            admin.reset_group_offsets("g", bad)
        assert complaint in str(err.value)
    with pytest.raises(ZafkaError) as err:
        admin.reset_group_offsets("g", {("t", 2): 0})
    assert err.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert "topic 't' has 2 partitions, no" in str(err.value)
    assert all(name == "DescribeTopicsRequest" for _, name in admin.sent)
    admin.reset_group_offsets("g", {})  # nothing to do: nothing sent
    assert len(admin.sent) == 1


def test_list_groups_asks_every_broker_and_retries_one_that_is_loading(clock):
    loading = [True]

    def answer(target: Target, message: object) -> object:
        if isinstance(message, MetadataRequest):
            brokers = (BrokerInfo(1, "tcp://a:1"), BrokerInfo(2, "tcp://a:2"))
            return MetadataResponse(brokers, ())
        assert target is not None and target[1] == "broker"
        if target[0] == 2 and loading[0]:
            loading[0] = False
            return gw.ListGroupsResponse(code("COORDINATOR_LOAD_IN_PROGRESS"), ())
        groups = {1: ("b", "a"), 2: ("c",)}[target[0]]
        return gw.ListGroupsResponse(0, tuple(gw.GroupListing(g, "empty") for g in groups))

    admin = Scripted(answer)
    assert admin.list_groups() == [
        GroupListing("a", "empty", 1),
        GroupListing("b", "empty", 1),
        GroupListing("c", "empty", 2),
    ]
    asked = [t for t, name in admin.sent if name == "ListGroupsRequest"]
    assert asked == [(1, "broker"), (2, "broker"), (2, "broker")]  # 1 is not asked again


def test_offsets_with_log_ends_and_lag(clock):
    def answer(target: Target, message: object) -> object:
        if isinstance(message, gw.FindCoordinatorRequest):
            return found(1)
        if isinstance(message, gw.OffsetFetchRequest):
            assert message.partitions is None
            return gw.OffsetFetchResponse(
                0,
                (
                    gw.PartitionOffset("t", 1, 3, "m"),
                    gw.PartitionOffset("t", 0, 7, ""),
                    gw.PartitionOffset("gone", 0, 2, ""),
                ),
            )
        if isinstance(message, wire.DescribeTopicsRequest):
            missing = wire.TopicDescription("gone", code("UNKNOWN_TOPIC_OR_PARTITION"), (), {})
            return wire.DescribeTopicsResponse((*_topic(2).topics, missing))
        assert isinstance(message, ListOffsetsRequest) and message.timestamp == -1
        assert target == (1, f"t-{message.partition}")
        return ListOffsetsResponse(0, {0: 10, 1: 3}[message.partition], -1)

    assert Scripted(answer).list_group_offsets("g") == [
        GroupOffset("gone", 0, 2, "", None),
        GroupOffset("t", 0, 7, "", 10),
        GroupOffset("t", 1, 3, "m", 3),
    ]
    assert [o.lag for o in Scripted(answer).list_group_offsets("g")] == [None, 3, 0]
