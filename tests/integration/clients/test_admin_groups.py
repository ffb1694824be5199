"""Admin's consumer-group methods against a real broker process (its group coordinator, real
ZooKeeper): a group made by a reset from outside it (member id ""), listed, described, its
committed offsets with log ends and lag, reset again, deleted; list_offsets by earliest,
latest and time; a reset or delete refused while a member is active (a member joined with
the raw protocol, so the Admin is checked independently of the group Consumer); unknown
groups, partitions and bad group ids get their error codes. Every wait is bounded by the
Admin's request timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.broker_helpers import BrokerProcess, free_port
from tests.integration.clients.helpers import WAIT_S, bare_client, call
from zafka.actors.broker.admin import coordinator_partition
from zafka.actors.group.records import OFFSETS_TOPIC
from zafka.clients.admin import Admin
from zafka.clients.admin_groups import (
    EARLIEST,
    LATEST,
    GroupListing,
    GroupOffset,
    MemberDescription,
)
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError
from zafka.transport.group import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
)
from zafka.transport.names import TopicPartition

TIMEOUT_MS = 10_000
T0 = 1_700_000_000_000  # record timestamps: T0 + 1000 * offset
O0, O1 = TopicPartition("orders", 0), TopicPartition("orders", 1)


@pytest.fixture
def admin(bootstrap: str) -> Iterator[Admin]:
    with Admin(bootstrap, request_timeout_ms=TIMEOUT_MS) as client:
        yield client


@pytest.fixture
def orders(admin: Admin, bootstrap: str) -> None:
    """Topic `orders`: 10 records in partition 0 (timestamps T0 + 1000 * offset), 4 in 1."""
    admin.create_topic("orders", partitions=2)
    with Producer(bootstrap) as producer:
        for i in range(10):
            producer.send("orders", b"v", partition=0, timestamp=T0 + 1000 * i)
        for i in range(4):
            producer.send("orders", b"v", partition=1, timestamp=T0 + 1000 * i)
        producer.flush(WAIT_S)


@contextmanager
def member(bootstrap: str, group: str, topics: tuple[str, ...]) -> Iterator[JoinGroupResponse]:
    """A member of `group` joined with the raw protocol (session 60 s, no heartbeats: the
    test ends long before), leaving on exit."""
    with bare_client(bootstrap, "test-member") as client:
        found = call(client, "*/broker", FindCoordinatorRequest(group))
        assert isinstance(found, FindCoordinatorResponse) and found.error_code == 0, found
        request = JoinGroupRequest(group, "member-1", None, topics, None, None, 60_000)
        deadline = time.monotonic() + WAIT_S
        while True:  # the coordinator may still be loading __consumer_offsets
            reply = call(client, f"*/group-{group}", request)
            assert isinstance(reply, JoinGroupResponse), reply
            if reply.error_code != 14 or time.monotonic() > deadline:  # LOAD_IN_PROGRESS
                break
        assert reply.error_code == 0, reply
        yield reply
        left = call(client, f"*/group-{group}", LeaveGroupRequest(group, reply.member_id))
        assert isinstance(left, LeaveGroupResponse) and left.error_code == 0, left


def _error(fn: object, *args: object) -> ZafkaError:
    with pytest.raises(ZafkaError) as err:
        fn(*args)  # type: ignore[operator]
    return err.value


def test_no_groups(admin: Admin) -> None:
    assert admin.list_groups() == []
    err = _error(admin.describe_group, "nobody")
    assert err.error.name == "GROUP_ID_NOT_FOUND" and "'nobody'" in str(err)
    assert _error(admin.delete_group, "nobody").error.name == "GROUP_ID_NOT_FOUND"
    assert admin.list_group_offsets("nobody") == []
    assert _error(admin.describe_group, "bad/name").error.name == "INVALID_GROUP_ID"


def test_list_offsets(admin: Admin, orders: None) -> None:
    assert admin.list_offsets({O0: EARLIEST, O1: EARLIEST}) == {O0: 0, O1: 0}
    assert admin.list_offsets({O0: LATEST, O1: LATEST}) == {O0: 10, O1: 4}
    at = admin.list_offsets({O0: T0 + 4500, O1: T0 + 4500, ("orders", 0): T0})
    assert at == {O0: 0, O1: None}  # the last spec for a partition wins; none after the end
    assert admin.list_offsets({O0: T0 + 5000}) == {O0: 5}
    err = _error(admin.list_offsets, {("orders", 2): LATEST})
    assert err.error.name == "UNKNOWN_TOPIC_OR_PARTITION" and "orders" in str(err)
    err = _error(admin.list_offsets, {("missing", 0): LATEST})
    assert err.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert "missing" not in admin.list_topics()  # looked up, never auto-created
    assert _error(admin.list_offsets, {O0: -3}).error.name == "INVALID_REQUEST"


def test_reset_creates_describe_list_delete(admin: Admin, orders: None) -> None:
    admin.reset_group_offsets("readers", {O0: 3, ("orders", 1): 4})
    assert admin.list_groups() == [GroupListing("readers", "empty", 1)]
    group = admin.describe_group("readers")
    assert (group.group_id, group.state, group.members, group.coordinator) == (
        "readers",
        "empty",
        (),
        1,
    )
    assert admin.list_group_offsets("readers") == [
        GroupOffset("orders", 0, 3, "", 10),
        GroupOffset("orders", 1, 4, "", 4),
    ]
    assert [o.lag for o in admin.list_group_offsets("readers")] == [7, 0]

    admin.reset_group_offsets("readers", {O0: 10})  # the other partition keeps its offset
    assert admin.list_group_offsets("readers", [O1, O0, O1]) == [
        GroupOffset("orders", 0, 10, "", 10),
        GroupOffset("orders", 1, 4, "", 4),
    ]
    admin.reset_group_offsets("others", {O1: 1})
    assert [g.group_id for g in admin.list_groups()] == ["others", "readers"]

    admin.delete_group("readers")
    assert admin.list_groups() == [GroupListing("others", "empty", 1)]
    assert _error(admin.describe_group, "readers").error.name == "GROUP_ID_NOT_FOUND"
    assert admin.list_group_offsets("readers") == []


def test_offsets_of_a_deleted_topic_have_no_log_end(admin: Admin, orders: None) -> None:
    admin.reset_group_offsets("readers", {O0: 2})
    admin.delete_topic("orders")
    (offset,) = admin.list_group_offsets("readers")
    assert (offset.committed, offset.log_end, offset.lag) == (2, None, None)


def test_reset_checks_partitions_and_offsets(admin: Admin, orders: None) -> None:
    err = _error(admin.reset_group_offsets, "readers", {("orders", 5): 0})
    assert err.error.name == "UNKNOWN_TOPIC_OR_PARTITION" and "2 partitions" in str(err)
    err = _error(admin.reset_group_offsets, "readers", {("missing", 0): 0})
    assert err.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert _error(admin.reset_group_offsets, "readers", {O0: -1}).error.name == "INVALID_REQUEST"
    err = _error(admin.reset_group_offsets, "bad group", {O0: 0})
    assert err.error.name == "INVALID_GROUP_ID"
    assert admin.list_groups() == []  # nothing was created


def test_active_group_is_not_reset_nor_deleted(admin: Admin, orders: None, bootstrap: str) -> None:
    admin.reset_group_offsets("readers", {O0: 1})
    with member(bootstrap, "readers", ("orders",)) as joined:
        group = admin.describe_group("readers")
        assert group.state in ("stable", "reconciling") and group.epoch >= 1
        assert group.members == (
            MemberDescription(
                joined.member_id,
                None,
                ("orders",),
                None,
                joined.member_epoch,
                group.members[0].state,
                group.members[0].assignment,
                (),
            ),
        )
        assert set(group.members[0].assignment) <= {O0, O1}
        assert admin.list_groups() == [GroupListing("readers", group.state, 1)]

        err = _error(admin.reset_group_offsets, "readers", {O0: 5})
        assert err.error.name == "NON_EMPTY_GROUP"
        assert "1 active member" in str(err) and "stop its consumers first" in str(err)
        err = _error(admin.delete_group, "readers")
        assert err.error.name == "NON_EMPTY_GROUP" and "stop its consumers first" in str(err)
        assert admin.list_group_offsets("readers") == [GroupOffset("orders", 0, 1, "", 10)]
    admin.reset_group_offsets("readers", {O0: 5})  # it left: the group is empty again
    assert admin.list_group_offsets("readers") == [GroupOffset("orders", 0, 5, "", 10)]
    admin.delete_group("readers")
    assert admin.list_groups() == []


def test_unreachable_cluster_is_a_bounded_timeout() -> None:
    with Admin(f"127.0.0.1:{free_port()}", request_timeout_ms=1_000) as admin:
        started = time.monotonic()
        assert _error(admin.describe_group, "readers").error.name == "REQUEST_TIMED_OUT"
        assert time.monotonic() - started < 1.0 + WAIT_S


def test_two_brokers_each_coordinating_groups(zk_hosts: str, tmp_path: Path) -> None:
    """Groups on both brokers: found wherever they are (a lookup at the other broker names
    the coordinator, whose group actor the Admin starts by asking that broker), listed by
    their own coordinators, reset, described and deleted."""
    brokers = [
        BrokerProcess(
            zk_hosts,
            tmp_path / f"data-{i}",
            tmp_path / f"broker-{i}.log",
            free_port(),
            broker_id=i,
            extra_args=("--offsets-topic-partitions", "4"),
        )
        for i in (1, 2)
    ]
    try:
        for process in brokers:
            process.start()
        bootstrap = ",".join(f"127.0.0.1:{p.port}" for p in brokers)
        with Admin(bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
            admin.create_topic("orders", partitions=2)
            admin.reset_group_offsets("first", {O0: 0})  # creates __consumer_offsets
            (offsets,) = admin.describe_topics([OFFSETS_TOPIC])
            leaders = {p.partition: p.leader for p in offsets.partitions}
            by_leader: dict[int, list[str]] = {}
            for n in range(200):
                group = f"group-{n}"
                by_leader.setdefault(leaders[coordinator_partition(group, 4)], []).append(group)
            assert set(by_leader) == {1, 2}
            groups = {g: leader for leader, gs in by_leader.items() for g in gs[:3]}
            for i, group in enumerate(sorted(groups)):
                admin.reset_group_offsets(group, {O1: i})
            listed = {g.group_id: g.coordinator for g in admin.list_groups()}
            del listed["first"]
            assert listed == groups
            for i, group in enumerate(sorted(groups)):
                assert admin.describe_group(group).coordinator == groups[group]
                assert admin.list_group_offsets(group) == [GroupOffset("orders", 1, i, "", 0)]
                admin.delete_group(group)
            assert [g.group_id for g in admin.list_groups()] == ["first"]
    finally:
        for process in brokers:
            process.kill()


def test_groups_are_followed_through_a_broker_restart(
    admin: Admin, orders: None, broker: BrokerProcess
) -> None:
    """The same Admin carries on after the broker restarted (SIGTERM): the group's offsets
    and state were replayed from __consumer_offsets. (The retries of LOAD_IN_PROGRESS and
    UNKNOWN_ACTOR are unit-tested: here the broker has usually loaded before it is ready.)"""
    admin.reset_group_offsets("readers", {O0: 6})
    broker.terminate()
    broker.start()
    assert admin.list_group_offsets("readers") == [GroupOffset("orders", 0, 6, "", 10)]
    assert admin.list_groups() == [GroupListing("readers", "empty", 1)]
    admin.reset_group_offsets("readers", {O0: 2})
    assert admin.describe_group("readers").state == "empty"
    admin.delete_group("readers")
    assert admin.list_groups() == []
