"""Group coordinators on a broker, over the in-memory network (the codec on every request).

A real BrokerActor (fake ZooKeeper, real worker thread) leads both partitions of a
`__consumer_offsets` with real log files and topic `orders` (4 partitions); a client runtime
on another node sends the group requests. The clock is the network's virtual clock.

What it shows: FindCoordinator spawns the group's coordinator; join, heartbeats and
incremental revocation; commits (stale epochs refused) and offset fetches; every change is
a record in the group's partition, replayed on a broker restart (members, epochs, assignment,
offsets); session expiry; a failed append answers an error, drops the state and reloads it
from the log; topic changes reach the coordinators; ListGroups, DescribeGroup, DeleteGroup;
an unused blank group's actor stops itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_broker_actor import led_here
from zafka import limits
from zafka.actors.broker.actor import BrokerActor, BrokerContext
from zafka.actors.broker.admin import CoordinatorLookup, HostPlan, coordinator_partition
from zafka.actors.group.coordinator import GroupCoordinatorActor
from zafka.actors.group.host import GroupHost, GroupSettings
from zafka.actors.group.records import OFFSETS_TOPIC, Subscription, decode_key
from zafka.actors.runtime.actor import Actor
from zafka.actors.runtime.loop import Runtime
from zafka.coordination.topic_records import TopicInfo
from zafka.coordination.worker import ZooKeeperWorker
from zafka.errors import BY_NAME, ZafkaError
from zafka.storage.batch import parse_header
from zafka.storage.records import read_records
from zafka.transport.client import FetchRequest, FetchResponse
from zafka.transport.envelope import Envelope
from zafka.transport.group import (
    DeleteGroupRequest,
    DeleteGroupResponse,
    DescribeGroupRequest,
    DescribeGroupResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    GroupListing,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    PartitionOffset,
    TopicPartitions,
)
from zafka.transport.memory import MemoryNetwork, MemoryTransport
from zafka.transport.names import group_actor_name

NODE = "broker-1"
ENDPOINT = "mem://broker-1"
WAIT_S = 5.0
HEARTBEAT_MS = 100
SESSION_MS = 1_000
GROUP = "g"
ALL = (TopicPartitions("orders", (0, 1, 2, 3)),)


def code(name: str) -> int:
    return BY_NAME[name].code


def topic(name: str, topic_id: str, partitions: int, configs=()) -> TopicInfo:
    return TopicInfo(name, topic_id, ((1,),) * partitions, configs)


class FakeStore:
    def __init__(self) -> None:
        self.watchers: list = []

    def watch(self, callback) -> None:
        self.watchers.append(callback)


class FakeZooKeeper:
    """Broker 1 leads every partition of every topic; `__consumer_offsets` has two."""

    broker_id = 1

    def __init__(self) -> None:
        self.store = FakeStore()
        self.topics = {
            OFFSETS_TOPIC: topic(OFFSETS_TOPIC, "offsets-1", 2, (("cleanup.policy", "compact"),)),
            "orders": topic("orders", "orders-1", 4),
        }

    def plan(self, info: TopicInfo) -> HostPlan:
        return HostPlan(info, led_here(info))

    def topic_plans(self, known):
        infos = self.topics.values()
        return sorted(self.topics), [self.plan(i) for i in infos if known.get(i.name) != i.topic_id]

    def find_coordinator(self, group_id, known_topic_id):
        info = self.topics[OFFSETS_TOPIC]
        p = coordinator_partition(group_id, info.partitions)
        plans = [self.plan(info)] if info.topic_id != known_topic_id else []
        return CoordinatorLookup(FindCoordinatorResponse(0, 1, ENDPOINT), p, plans)


class Client(Actor):
    def __init__(self) -> None:
        super().__init__("client")
        self.replies: dict[int, object] = {}

    def ask(self, target: str, message: object) -> int:
        holder: list[int] = []

        def record(reply: Envelope | ZafkaError) -> None:
            self.replies[holder[0]] = reply.message if isinstance(reply, Envelope) else reply

        holder.append(self.call(f"{NODE}/{target}", message, 60_000, record))
        return holder[0]


class Cluster:
    """One broker runtime and one client runtime on a memory network."""

    def __init__(self, data_dir: Path) -> None:
        self.network = MemoryNetwork(seed=1)
        self.zk = FakeZooKeeper()
        self.data_dir = data_dir
        self.posts = threading.Semaphore(0)
        transport = MemoryTransport(self.network, "client-1")
        transport.connect(NODE, ENDPOINT)
        self.client_runtime = Runtime("client-1", transport, clock=self.clock)
        self.client: Client = self.client_runtime.spawn(Client)  # type: ignore[assignment]
        self.client_runtime.start()
        self.start_broker()

    def clock(self) -> int:
        return self.network.now_ms

    def start_broker(self) -> None:
        transport = MemoryTransport(self.network, NODE)
        transport.bind(ENDPOINT)
        self.runtime = Runtime(NODE, transport, clock=self.clock)

        def post(fn) -> None:
            self.runtime.post(fn)
            self.posts.release()

        self.worker = ZooKeeperWorker(post)
        settings = GroupSettings(heartbeat_interval_ms=HEARTBEAT_MS, rebalance_timeout_ms=5_000)
        self.context = BrokerContext(
            self.zk, self.worker, self.data_dir, ENDPOINT, GroupHost(settings)
        )  # type: ignore[arg-type]
        self.runtime.spawn(lambda: BrokerActor(self.context))
        self.worker.start()
        self.runtime.start()
        self.settle()

    def stop_broker(self) -> None:
        self.runtime.stop()
        assert self.worker.close(WAIT_S)

    def settle(self, ms: int = 0) -> None:
        """Run both runtimes until idle; then move the clock by `ms` and run them again."""
        for advance in (0, ms):
            self.network.advance(advance)
            for _ in range(500):
                if self.runtime.step() + self.client_runtime.step() == 0:
                    break
            else:
                raise AssertionError("the runtimes never went idle")

    def call(self, target: str, message: object) -> object:
        correlation_id = self.client.ask(target, message)
        self.settle()
        assert correlation_id in self.client.replies, f"no answer to {message}"
        return self.client.replies.pop(correlation_id)

    def group(self, message: object) -> object:
        return self.call(group_actor_name(GROUP), message)

    def find(self, group_id: str = GROUP) -> FindCoordinatorResponse:
        return self.call("broker", FindCoordinatorRequest(group_id))  # type: ignore[return-value]

    def join(self, member_id: str, session_ms: int = SESSION_MS, **kw) -> JoinGroupResponse:
        request = JoinGroupRequest(
            GROUP,
            member_id,
            kw.get("instance_id"),
            kw.get("topics", ("orders",)),
            None,
            None,
            session_ms,
        )
        reply = self.group(request)
        assert isinstance(reply, JoinGroupResponse), reply
        return reply

    def heartbeat(self, member_id: str, epoch: int, owned=()) -> HeartbeatResponse:
        reply = self.group(HeartbeatRequest(GROUP, member_id, epoch, tuple(owned), None, None))
        assert isinstance(reply, HeartbeatResponse), reply
        return reply

    def commit(self, member_id: str, epoch: int, offsets: dict[int, int]) -> int:
        entries = tuple(PartitionOffset("orders", p, o, "") for p, o in offsets.items())
        reply = self.group(OffsetCommitRequest(GROUP, member_id, epoch, entries))
        assert isinstance(reply, OffsetCommitResponse), reply
        return reply.error_code

    def committed(self) -> dict[int, int]:
        reply = self.group(OffsetFetchRequest(GROUP, None))
        assert isinstance(reply, OffsetFetchResponse) and reply.error_code == 0, reply
        return {o.partition: o.offset for o in reply.offsets}

    def describe(self) -> DescribeGroupResponse:
        reply = self.group(DescribeGroupRequest(GROUP))
        assert isinstance(reply, DescribeGroupResponse), reply
        return reply

    def log_records(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """Every (key, value) in a partition of `__consumer_offsets`."""
        name = f"{OFFSETS_TOPIC}-{partition}"
        reply = self.call(name, FetchRequest(OFFSETS_TOPIC, partition, 0, 1 << 20, 0, 0))
        assert isinstance(reply, FetchResponse)
        data, position, records = bytes(reply.records), 0, []
        while position < len(data):
            size = parse_header(data, position).size
            records += [(r.key, r.value) for r in read_records(data[position : position + size])]
            position += size
        return records


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "data")
    yield cluster
    cluster.stop_broker()
    cluster.client_runtime.stop()


def assigned(reply) -> set[int]:
    return {p for tps in reply.assignment for p in tps.partitions}


def owned(partitions) -> tuple[TopicPartitions, ...]:
    return (TopicPartitions("orders", tuple(sorted(partitions))),) if partitions else ()


def converge_two(cluster: Cluster) -> tuple[int, int, set[int], set[int]]:
    """m1 owns all four, m2 joins; both heartbeat until the revocation is confirmed and
    each owns two. Returns (m1 epoch, m2 epoch, m1 partitions, m2 partitions)."""
    first = cluster.join("m1")
    assert (first.member_epoch, assigned(first)) == (1, {0, 1, 2, 3})
    second = cluster.join("m2")
    assert (second.error_code, second.member_epoch, assigned(second)) == (0, 2, set())
    revoke = cluster.heartbeat("m1", 1, ALL)  # told to give two up: its epoch stays
    keep = assigned(revoke)
    assert revoke.member_epoch == 1 and len(keep) == 2
    confirmed = cluster.heartbeat("m1", 1, owned(keep))  # revoked: moves to epoch 2
    assert (confirmed.member_epoch, assigned(confirmed)) == (2, keep)
    taken = cluster.heartbeat("m2", 2)
    assert (taken.member_epoch, assigned(taken)) == (2, {0, 1, 2, 3} - keep)
    return 2, 2, keep, {0, 1, 2, 3} - keep


def test_find_coordinator_spawns_the_group_coordinator_here(cluster: Cluster) -> None:
    assert cluster.find() == FindCoordinatorResponse(0, 1, ENDPOINT)
    assert group_actor_name(GROUP) in cluster.runtime._cells
    for bad in ("", "a/b", "x" * 250, "é"):
        assert cluster.find(bad).error_code == code("INVALID_GROUP_ID")


def test_two_members_converge_with_revocation_confirmed_and_every_change_logged(
    cluster: Cluster,
) -> None:
    cluster.find()
    converge_two(cluster)
    description = cluster.describe()
    assert (description.state, description.epoch) == ("stable", 2)
    assert [(m.member_id, m.member_epoch, m.state) for m in description.members] == [
        ("m1", 2, "stable"),
        ("m2", 2, "stable"),
    ]
    # Every change is a record of the group in its partition of __consumer_offsets.
    records = cluster.log_records(coordinator_partition(GROUP, 2))
    assert records and {decode_key(k).group_id for k, _ in records} == {GROUP}
    assert cluster.call("broker", ListGroupsRequest()) == ListGroupsResponse(
        0, (GroupListing(GROUP, "stable"),)
    )


def test_commits_fetches_and_stale_epochs(cluster: Cluster) -> None:
    cluster.find()
    e1, e2, keep, moved = converge_two(cluster)
    mine, theirs = min(keep), min(moved)
    assert cluster.commit("m1", e1, {mine: 10}) == 0
    assert cluster.commit("m2", e2, {theirs: 20}) == 0
    # m1 lost `theirs`: a commit of it, at any epoch, comes from a zombie.
    assert cluster.commit("m1", e1, {theirs: 99}) == code("FENCED_MEMBER_EPOCH")
    assert cluster.commit("m2", 1, {theirs: 99}) == code("FENCED_MEMBER_EPOCH")  # given at 2
    assert cluster.commit("nobody", 2, {mine: 99}) == code("UNKNOWN_MEMBER_ID")
    assert cluster.committed() == {mine: 10, theirs: 20}
    never = min({0, 1, 2, 3} - {mine, theirs})
    reply = cluster.group(OffsetFetchRequest(GROUP, (TopicPartitions("orders", (mine, never)),)))
    assert {o.partition: o.offset for o in reply.offsets} == {mine: 10, never: -1}


def test_a_restarted_broker_replays_members_epochs_assignment_and_offsets(
    cluster: Cluster,
) -> None:
    cluster.find()
    e1, e2, keep, moved = converge_two(cluster)
    assert cluster.commit("m1", e1, {min(keep): 7}) == 0
    before = cluster.describe()
    cluster.stop_broker()
    cluster.start_broker()  # the same data directory: the log is replayed
    assert cluster.describe() == before
    assert cluster.committed() == {min(keep): 7}
    # The members carry on at their epochs, owning what they owned.
    assert assigned(cluster.heartbeat("m1", e1, owned(keep))) == keep
    assert assigned(cluster.heartbeat("m2", e2, owned(moved))) == moved


def test_silent_members_expire_after_their_session(cluster: Cluster) -> None:
    cluster.find()
    cluster.join("m1")
    cluster.join("short", session_ms=300)
    cluster.settle(200)
    cluster.heartbeat("m1", 2, ALL)
    cluster.settle(200)  # 400 ms: `short` missed its session, m1 did not
    assert [m.member_id for m in cluster.describe().members] == ["m1"]
    cluster.settle(SESSION_MS)
    description = cluster.describe()
    assert (description.state, description.members) == ("empty", ())
    assert cluster.heartbeat("m1", 3).error_code == code("UNKNOWN_MEMBER_ID")


def test_a_lone_member_that_goes_silent_expires_after_a_timer_that_found_nothing(
    cluster: Cluster,
) -> None:
    """A heartbeat writes nothing but moves the session's end past the armed timer; when
    that timer fires with nothing due, the next deadline must be armed all the same."""
    cluster.find()
    joined = cluster.join("m1")
    cluster.settle(SESSION_MS // 2)
    assert cluster.heartbeat("m1", joined.member_epoch, ALL).error_code == 0
    cluster.settle(SESSION_MS // 2 + 50)  # the timer armed at the join fires: nothing due
    assert [m.member_id for m in cluster.describe().members] == ["m1"]
    cluster.settle(SESSION_MS)  # a whole session of silence since the heartbeat
    assert cluster.describe().members == ()


def test_a_failed_append_answers_an_error_and_reloads_the_state_from_the_log(
    cluster: Cluster,
) -> None:
    cluster.find()
    joined = cluster.join("m1")
    assert cluster.commit("m1", joined.member_epoch, {0: 5}) == 0
    partition = cluster.runtime.actor(f"{OFFSETS_TOPIC}-{coordinator_partition(GROUP, 2)}")
    partition.state.max_message_bytes = 64  # the next batch is refused: MESSAGE_TOO_LARGE
    assert cluster.commit("m1", joined.member_epoch, {0: 9}) == code("COORDINATOR_NOT_AVAILABLE")
    partition.state.max_message_bytes = limits.batch_bytes_max
    # The state was replayed from the log: the failed commit is not in it, the rest is.
    assert cluster.committed() == {0: 5}
    assert assigned(cluster.heartbeat("m1", joined.member_epoch, ALL)) == {0, 1, 2, 3}


def test_requests_wait_for_the_state_while_the_group_loads(tmp_path: Path) -> None:
    runtime = Runtime(NODE, clock=lambda: 0)
    actor = GroupCoordinatorActor(GROUP, 0, None, {}, heartbeat_interval_ms=HEARTBEAT_MS)
    runtime.spawn(lambda: actor)
    client: Client = runtime.spawn(Client)  # type: ignore[assignment]
    runtime.start()
    asked = client.ask(group_actor_name(GROUP), OffsetFetchRequest(GROUP, None))
    for _ in range(5):
        runtime.step()
    assert client.replies[asked] == OffsetFetchResponse(code("COORDINATOR_LOAD_IN_PROGRESS"), ())
    runtime.stop()


def test_topic_changes_reach_the_coordinator(cluster: Cluster) -> None:
    cluster.find()
    joined = cluster.join("m1")
    cluster.zk.topics["orders"] = topic("orders", "orders-2", 6)  # re-created, 6 partitions
    cluster.zk.store.watchers[0]([])
    cluster.settle()  # the watch's post queues the sync job
    assert cluster.posts.acquire(timeout=WAIT_S), "the sync job never came back"
    cluster.settle()
    reply = cluster.heartbeat("m1", joined.member_epoch, ALL)
    assert (reply.member_epoch, assigned(reply)) == (2, {0, 1, 2, 3, 4, 5})


def test_leave_then_delete_and_the_group_is_gone_for_good(cluster: Cluster) -> None:
    cluster.find()
    joined = cluster.join("m1")
    cluster.commit("m1", joined.member_epoch, {1: 3})
    assert cluster.group(DeleteGroupRequest(GROUP)) == DeleteGroupResponse(code("NON_EMPTY_GROUP"))
    assert cluster.group(LeaveGroupRequest(GROUP, "m1")) == LeaveGroupResponse(0)
    assert cluster.group(LeaveGroupRequest(GROUP, "m1")) == LeaveGroupResponse(
        code("UNKNOWN_MEMBER_ID")
    )
    assert cluster.call("broker", ListGroupsRequest()).groups == (GroupListing(GROUP, "empty"),)
    assert cluster.group(DeleteGroupRequest(GROUP)) == DeleteGroupResponse(0)
    assert cluster.describe().error_code == code("GROUP_ID_NOT_FOUND")
    assert cluster.call("broker", ListGroupsRequest()).groups == ()
    cluster.stop_broker()
    cluster.start_broker()
    assert cluster.find().error_code == 0
    assert cluster.describe().error_code == code("GROUP_ID_NOT_FOUND")
    assert cluster.committed() == {}


def test_a_blank_unused_group_actor_stops_itself(cluster: Cluster) -> None:
    cluster.find("ghost")
    name = group_actor_name("ghost")
    assert name in cluster.runtime._cells
    cluster.settle(limits.idle_group_ms + 1)
    assert name not in cluster.runtime._cells
    assert "ghost" not in cluster.context.groups.partition_of
    cluster.find("ghost")  # asked for again: a new one
    assert name in cluster.runtime._cells


def test_a_wrong_group_id_or_a_subscription_with_topics_and_pattern_is_refused(
    cluster: Cluster,
) -> None:
    cluster.find()
    reply = cluster.group(JoinGroupRequest("other", "m1", None, ("orders",), None, None, 1000))
    assert reply.error_code == code("INVALID_REQUEST")
    reply = cluster.group(JoinGroupRequest(GROUP, "m1", None, ("orders",), "o.*", None, 1000))
    assert reply.error_code == code("INVALID_REQUEST")
    reply = cluster.group(JoinGroupRequest(GROUP, "m1", None, ("orders",), None, None, 50))
    assert reply.error_code == code("INVALID_SESSION_TIMEOUT")  # not above the heartbeat
    assert cluster.describe().error_code == code("GROUP_ID_NOT_FOUND")


def test_a_coordinator_restarted_after_a_crash_replays_its_group(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.find()
    joined = cluster.join("m1")
    cluster.commit("m1", joined.member_epoch, {2: 4})
    before = cluster.describe()
    first = cluster.runtime.actor(group_actor_name(GROUP))

    def crash(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(GroupCoordinatorActor, "_describe", crash)
    reply = cluster.group(DescribeGroupRequest(GROUP))
    assert isinstance(reply, ZafkaError) and reply.error.name == "UNKNOWN_SERVER_ERROR"
    monkeypatch.undo()
    assert cluster.runtime.actor(group_actor_name(GROUP)) is not first  # restarted
    assert cluster.describe() == before  # its state replayed from the log
    assert cluster.committed() == {2: 4}


def test_replay_skips_other_groups_and_records_that_do_not_parse() -> None:
    from zafka.actors.group.offsets_loader import replay_batches
    from zafka.actors.group.state import GroupState
    from zafka.storage.batch import build_batch

    source = GroupState("a")
    records = source.join(0, Subscription(("t",)), 10_000, member_id="m").records
    assert records
    other = GroupState("b").join(0, Subscription(("t",)), 10_000, member_id="n").records
    rows = [(1, r.key, r.value, None) for r in (*records, *other)]
    rows.insert(1, (1, b"\xc1garbage", b"x", None))
    rows.insert(2, (1, None, b"no key", None))
    data = build_batch(rows)
    states: dict[str, GroupState] = {}
    next_offset = replay_batches(states, data, 0, frozenset({"a"}), GroupState)
    assert next_offset == len(rows)
    assert list(states) == ["a"] and states["a"] == source
    assert replay_batches({}, data, len(rows), None, GroupState) == len(rows)  # all before
