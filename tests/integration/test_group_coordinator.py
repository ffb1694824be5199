"""Group coordinators in a real broker process, driven by a raw ZeroMQ client (the wire
protocol of docs/PROTOCOL.md, nothing of the SDK), with a real ZooKeeper.

FindCoordinator creates `__consumer_offsets`; join, heartbeats, commits and offset fetches;
two members converge on four partitions (the revocation confirmed before the partitions
move); a silent member's session expires; a stale epoch's commit is refused; and after a
broker restart (SIGTERM or kill -9) the group's members, epochs, assignment and committed
offsets are what they were. Every wait is bounded; state is polled, never slept on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    BROKER_ID,
    BrokerProcess,
    RawClient,
    code,
    create,
    free_port,
)
from zafka.actors.broker.admin import coordinator_partition
from zafka.actors.group.records import OFFSETS_TOPIC
from zafka.transport.admin import CreateTopicsRequest, DeleteTopicsRequest, NewTopic
from zafka.transport.client import MetadataRequest
from zafka.transport.control import ErrorReply
from zafka.transport.group import (
    DescribeGroupRequest,
    DescribeGroupResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    GroupListing,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    ListGroupsRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    PartitionOffset,
    TopicPartitions,
)

pytestmark = pytest.mark.slow

GROUP = "readers"
OFFSETS_PARTITIONS = 4
HEARTBEAT_MS = 300
RETRY_S = 20.0  # bound on waits for a coordinator (start, load, restart)
ALL = (TopicPartitions("orders", (0, 1, 2, 3)),)
RETRIABLE = {code(n) for n in ("UNKNOWN_ACTOR", "COORDINATOR_LOAD_IN_PROGRESS", "STOPPED")}


def broker_process(zk_hosts: str, tmp_path: Path, *extra: str) -> BrokerProcess:
    return BrokerProcess(
        zk_hosts,
        tmp_path / "data",
        tmp_path / "broker.log",
        free_port(),
        extra_args=(
            "--offsets-topic-partitions",
            str(OFFSETS_PARTITIONS),
            "--group-heartbeat-interval-ms",
            str(HEARTBEAT_MS),
            *extra,
        ),
    )


@pytest.fixture
def broker(zk_hosts: str, tmp_path: Path) -> Iterator[BrokerProcess]:
    process = broker_process(zk_hosts, tmp_path)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def client(broker: BrokerProcess) -> Iterator[RawClient]:
    raw = RawClient(broker.endpoint)
    yield raw
    raw.close()


def error_of(reply: object) -> int:
    if isinstance(reply, ErrorReply):
        return reply.code
    return reply.error_code  # type: ignore[attr-defined]


def group_call(client: RawClient, message: object, timeout_s: float = RETRY_S) -> object:
    """Send `message` to the group's coordinator as a client would: UNKNOWN_ACTOR (the
    coordinator is not running: a restarted broker) -> FindCoordinator at that broker, which
    starts it; COORDINATOR_LOAD_IN_PROGRESS -> again. Bounded by `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = client.call(f"group-{GROUP}", message)
        if error_of(reply) not in RETRIABLE or time.monotonic() > deadline:
            return reply
        if error_of(reply) == code("UNKNOWN_ACTOR"):
            found = client.call("broker", FindCoordinatorRequest(GROUP))
            assert isinstance(found, FindCoordinatorResponse), found
        client.wait_for(lambda: False, 0.05)  # back off a little before asking again


def poll(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Ask `predicate` (a request to the broker each time) until it holds, bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
    return predicate()


def find(client: RawClient, group: str = GROUP) -> FindCoordinatorResponse:
    reply = client.call("broker", FindCoordinatorRequest(group))
    assert isinstance(reply, FindCoordinatorResponse), reply
    return reply


def join(client: RawClient, member: str, session_ms: int = 10_000) -> JoinGroupResponse:
    request = JoinGroupRequest(GROUP, member, None, ("orders",), None, None, session_ms)
    reply = group_call(client, request)
    assert isinstance(reply, JoinGroupResponse) and reply.error_code == 0, reply
    return reply


def heartbeat(client: RawClient, member: str, epoch: int, owned=()) -> HeartbeatResponse:
    reply = group_call(client, HeartbeatRequest(GROUP, member, epoch, tuple(owned), None, None))
    assert isinstance(reply, HeartbeatResponse), reply
    return reply


def commit(client: RawClient, member: str, epoch: int, offsets: dict[int, int]) -> int:
    entries = tuple(PartitionOffset("orders", p, o, "m") for p, o in offsets.items())
    return error_of(group_call(client, OffsetCommitRequest(GROUP, member, epoch, entries)))


def committed(client: RawClient) -> dict[int, int]:
    reply = group_call(client, OffsetFetchRequest(GROUP, None))
    assert error_of(reply) == 0, reply
    return {o.partition: o.offset for o in reply.offsets}  # type: ignore[attr-defined]


def describe(client: RawClient) -> DescribeGroupResponse:
    reply = group_call(client, DescribeGroupRequest(GROUP))
    assert isinstance(reply, DescribeGroupResponse), reply
    return reply


def partitions(reply) -> set[int]:
    return {p for tps in reply.assignment for p in tps.partitions}


def owned(ps: set[int]) -> tuple[TopicPartitions, ...]:
    return (TopicPartitions("orders", tuple(sorted(ps))),) if ps else ()


def converge_two(client: RawClient) -> tuple[set[int], set[int]]:
    """m1 owns all, m2 joins: m1 is told to revoke two, confirms, then m2 gets them."""
    first = join(client, "m1")
    assert (first.member_epoch, partitions(first)) == (1, {0, 1, 2, 3})
    second = join(client, "m2")
    assert (second.member_epoch, partitions(second)) == (2, set())  # nothing free yet
    revoke = heartbeat(client, "m1", 1, ALL)
    keep = partitions(revoke)
    assert revoke.member_epoch == 1 and len(keep) == 2
    early = heartbeat(client, "m2", 2)
    assert partitions(early) == set()  # m1 has not confirmed: nothing moves yet
    confirmed = heartbeat(client, "m1", 1, owned(keep))
    assert (confirmed.member_epoch, partitions(confirmed)) == (2, keep)
    taken = heartbeat(client, "m2", 2)
    assert (taken.member_epoch, partitions(taken)) == (2, {0, 1, 2, 3} - keep)
    return keep, {0, 1, 2, 3} - keep


def test_find_coordinator_creates_the_compacted_offsets_topic(zk_hosts, tmp_path, zk):
    process = broker_process(zk_hosts, tmp_path, "--auto-create-topics")
    process.start()
    raw = RawClient(process.endpoint)
    try:
        # Not auto-created by a metadata request, nor creatable or deletable by a client.
        (listed,) = raw.call("broker", MetadataRequest((OFFSETS_TOPIC,))).topics
        assert listed.error_code == code("UNKNOWN_TOPIC_OR_PARTITION")
        assert zk.exists(f"/brokers/topics/{OFFSETS_TOPIC}") is None
        new = NewTopic(OFFSETS_TOPIC, 1, 1, {})
        (made,) = raw.call("broker", CreateTopicsRequest((new,))).results
        assert made.error_code == code("INVALID_REQUEST")

        assert find(raw) == FindCoordinatorResponse(0, BROKER_ID, process.endpoint)
        assignment = json.loads(zk.get(f"/brokers/topics/{OFFSETS_TOPIC}")[0])
        assert len(assignment["partitions"]) == OFFSETS_PARTITIONS
        configs = json.loads(zk.get(f"/config/topics/{OFFSETS_TOPIC}")[0])["config"]
        assert configs["cleanup.policy"] == "compact"
        assert find(raw) == FindCoordinatorResponse(0, BROKER_ID, process.endpoint)
        assert find(raw, "other.group_1-x").error_code == 0
        for bad in ("", "a b", "x" * 250):
            assert find(raw, bad).error_code == code("INVALID_GROUP_ID")
        (deleted,) = raw.call("broker", DeleteTopicsRequest((OFFSETS_TOPIC,))).results
        assert deleted.error_code == code("INVALID_REQUEST")
        # The group's records go to its partition, and its coordinator answers there.
        partition = coordinator_partition(GROUP, OFFSETS_PARTITIONS)
        assert 0 <= partition < OFFSETS_PARTITIONS
        reply = raw.call(f"group-{GROUP}", DescribeGroupRequest(GROUP))
        assert error_of(reply) == code("GROUP_ID_NOT_FOUND")
    finally:
        raw.close()
        assert process.terminate() == 0, process.log()


def test_join_heartbeat_commit_and_fetch(broker, client):
    assert create(client, "orders", 4).results[0].error_code == 0
    assert find(client).error_code == 0
    joined = join(client, "m1")
    assert joined.heartbeat_interval_ms == HEARTBEAT_MS
    beat = heartbeat(client, "m1", joined.member_epoch, ALL)
    assert (beat.error_code, beat.member_epoch, partitions(beat)) == (0, 1, {0, 1, 2, 3})
    assert commit(client, "m1", 1, {0: 11, 3: 33}) == 0
    assert committed(client) == {0: 11, 3: 33}
    asked = OffsetFetchRequest(GROUP, (TopicPartitions("orders", (0, 1)),))
    reply = group_call(client, asked)
    assert [(o.partition, o.offset, o.metadata) for o in reply.offsets] == [
        (0, 11, "m"),
        (1, -1, ""),
    ]
    assert client.call("broker", ListGroupsRequest()).groups == (GroupListing(GROUP, "stable"),)


def test_two_members_converge_and_a_stale_epoch_commit_is_refused(broker, client):
    create(client, "orders", 4)
    find(client)
    _, moved = converge_two(client)
    description = describe(client)
    assert (description.state, description.epoch) == ("stable", 2)
    assert {m.member_id: m.member_epoch for m in description.members} == {"m1": 2, "m2": 2}
    # m1 gave `moved` up: committing one of them, even at its epoch, is a zombie's commit.
    assert commit(client, "m1", 2, {min(moved): 5}) == code("FENCED_MEMBER_EPOCH")
    assert commit(client, "m2", 1, {min(moved): 5}) == code("FENCED_MEMBER_EPOCH")  # got it at 2
    assert commit(client, "m2", 2, {min(moved): 5}) == 0
    assert committed(client) == {min(moved): 5}


def test_a_silent_member_is_removed_after_its_session(broker, client):
    create(client, "orders", 4)
    find(client)
    join(client, "steady")
    join(client, "silent", session_ms=1_000)
    started = time.monotonic()

    def silent_gone() -> bool:
        beat = heartbeat(client, "steady", describe_epoch(client, "steady"))
        assert beat.error_code == 0, beat
        client.wait_for(lambda: False, HEARTBEAT_MS / 1000)  # pace: one heartbeat a period
        return [m.member_id for m in describe(client).members] == ["steady"]

    assert poll(silent_gone, 10), "the silent member was never removed"
    assert time.monotonic() - started >= 0.9  # not before its session ran out
    assert heartbeat(client, "silent", 2).error_code == code("UNKNOWN_MEMBER_ID")


def describe_epoch(client: RawClient, member: str) -> int:
    return next(m.member_epoch for m in describe(client).members if m.member_id == member)


@pytest.mark.parametrize("stop", ["sigterm", "kill -9"])
def test_offsets_and_group_state_survive_a_broker_restart(broker, client, stop):
    create(client, "orders", 4)
    find(client)
    keep, moved = converge_two(client)
    assert commit(client, "m1", 2, {min(keep): 100}) == 0
    assert commit(client, "m2", 2, {min(moved): 200}) == 0
    before = describe(client)
    if stop == "sigterm":
        assert broker.terminate() == 0, broker.log()
    else:
        broker.kill()
    broker.start()
    after = describe(client)  # UNKNOWN_ACTOR, FindCoordinator, then loaded
    assert after == before
    assert after.state == "stable" and {m.member_epoch for m in after.members} == {2}
    assert committed(client) == {min(keep): 100, min(moved): 200}
    # The members carry on where they were: same epochs, same partitions, nothing moves.
    assert partitions(heartbeat(client, "m1", 2, owned(keep))) == keep
    assert partitions(heartbeat(client, "m2", 2, owned(moved))) == moved
    assert describe(client).epoch == 2


def test_either_broker_names_the_leader_of_the_groups_offsets_partition(zk_hosts, tmp_path, zk):
    brokers = [
        BrokerProcess(
            zk_hosts,
            tmp_path / f"data-{i}",
            tmp_path / f"broker-{i}.log",
            free_port(),
            broker_id=i,
            extra_args=("--offsets-topic-partitions", str(OFFSETS_PARTITIONS)),
        )
        for i in (1, 2)
    ]
    clients: dict[int, RawClient] = {}
    try:
        for process in brokers:
            process.start()
            clients[process.broker_id] = RawClient(process.endpoint, f"broker-{process.broker_id}")
        endpoints = {p.broker_id: p.endpoint for p in brokers}
        assert find(clients[1], "first").error_code == 0  # creates the topic over both
        leaders = {}
        for p in range(OFFSETS_PARTITIONS):
            state = json.loads(zk.get(f"/brokers/topics/{OFFSETS_TOPIC}/partitions/{p}/state")[0])
            leaders[p] = state["leader"]
        assert set(leaders.values()) == {1, 2}  # spread over both
        by_leader: dict[int, str] = {}
        for n in range(100):
            group = f"group-{n}"
            by_leader.setdefault(leaders[coordinator_partition(group, OFFSETS_PARTITIONS)], group)
        assert set(by_leader) == {1, 2}
        for leader, group in by_leader.items():
            expected = FindCoordinatorResponse(0, leader, endpoints[leader])
            assert find(clients[1], group) == expected  # any broker answers the same
            assert find(clients[2], group) == expected
            other = 3 - leader
            reply = clients[other].call(f"group-{group}", DescribeGroupRequest(group))
            assert error_of(reply) == code("UNKNOWN_ACTOR")  # not coordinated there
            reply = clients[leader].call(f"group-{group}", DescribeGroupRequest(group))
            assert error_of(reply) in (code("GROUP_ID_NOT_FOUND"), *RETRIABLE)
    finally:
        for raw in clients.values():
            raw.close()
        for process in brokers:
            process.kill()
