"""TopicStore against a real ZooKeeper: atomic create/delete, races, fencing, watches."""

from __future__ import annotations

import json
import threading

import pytest
from kazoo.client import KazooState

from tests.integration.conftest import expire_session, wait_for_state
from zafka import limits
from zafka.coordination import paths
from zafka.coordination.topic_records import STALE_VERSION_ERROR, LeaderIsr, MalformedZnode
from zafka.coordination.topics import TopicStore
from zafka.errors import ZafkaError

pytestmark = pytest.mark.integration

EVENT_TIMEOUT_S = 15.0
BROKERS = [1, 2, 3]


def _error(call, *args) -> str:
    with pytest.raises(ZafkaError) as err:
        call(*args)
    return err.value.error.name


def test_create_describe_list_delete_round_trip(make_client):
    client = make_client()
    store = TopicStore(client)
    info = store.create("orders", 3, 2, {"retention.ms": "60000"}, BROKERS)

    assert (info.name, info.partitions, info.replication_factor) == ("orders", 3, 2)
    assert sorted(r[0] for r in info.replicas) == BROKERS  # one leader per broker
    assert store.get("orders") == info
    assert store.names() == ["orders"]
    assert info.log_config.retention_ms == 60000
    for p, replicas in enumerate(info.replicas):
        state, version = store.partition_state("orders", p)
        assert state == LeaderIsr(leader=replicas[0], leader_epoch=0, isr=replicas)  # all in sync
        assert version == 0
    # Kafka's ZooKeeper-era layout, readable by anyone who knows it.
    assignment = json.loads(client.get("/brokers/topics/orders")[0])
    assert assignment["partitions"] == {str(p): list(r) for p, r in enumerate(info.replicas)}
    config = json.loads(client.get("/config/topics/orders")[0])
    assert config == {"version": 1, "config": {"retention.ms": "60000"}}

    store.delete("orders")

    assert store.get("orders") is None
    assert store.names() == []
    assert client.exists(paths.topic_config("orders")) is None
    assert _error(store.partition_state, "orders", 0) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert _error(store.delete, "orders") == "UNKNOWN_TOPIC_OR_PARTITION"
    again = store.create("orders", 1, 1, {}, BROKERS)
    assert again.topic_id != info.topic_id


def test_bad_creates_are_refused_and_write_nothing(make_client):
    client = make_client()
    store = TopicStore(client)
    refused = [
        (("a/b", 1, 1, {}, BROKERS), "INVALID_TOPIC"),
        (("..", 1, 1, {}, BROKERS), "INVALID_TOPIC"),
        (("t", 0, 1, {}, BROKERS), "INVALID_PARTITIONS"),
        (("t", limits.topic_partitions_max + 1, 1, {}, BROKERS), "INVALID_PARTITIONS"),
        (("t", 1, 0, {}, BROKERS), "INVALID_REPLICATION_FACTOR"),
        (("t", 1, 4, {}, BROKERS), "INVALID_REPLICATION_FACTOR"),
        (("t", 1, 1, {}, []), "INVALID_REPLICATION_FACTOR"),
        (("t", 1, 1, {"retention.ms": "soon"}, BROKERS), "INVALID_CONFIG"),
        (("t", 1, 1, {"no.such.key": "1"}, BROKERS), "INVALID_CONFIG"),
    ]
    for args, code in refused:
        assert _error(store.create, *args) == code, args
    assert store.names() == []
    assert client.exists(paths.CONFIG_TOPICS) is None  # refused before any write


def test_an_existing_topic_is_refused_and_left_as_it_was(make_client):
    store = TopicStore(make_client())
    first = store.create("t", 2, 1, {"cleanup.policy": "compact"}, BROKERS)
    assert _error(store.create, "t", 5, 3, {}, BROKERS) == "TOPIC_ALREADY_EXISTS"
    assert store.get("t") == first


def test_a_failed_create_leaves_nothing_behind(make_client):
    client = make_client()
    store = TopicStore(client)
    client.create(paths.topic_config("t"), b"left over", makepath=True)  # the last write fails

    with pytest.raises(ZafkaError) as err:
        store.create("t", 4, 2, {}, BROKERS)

    assert err.value.error.name == "TOPIC_ALREADY_EXISTS"
    assert "/config/topics/t" in err.value.detail
    assert client.exists(paths.topic("t")) is None  # the transaction wrote nothing
    assert store.names() == []


def test_the_largest_topic_fits_one_transaction(make_client):
    store = TopicStore(make_client())
    name = "x" * limits.topic_name_bytes_max
    info = store.create(name, limits.topic_partitions_max, 3, {"retention.ms": "1000"}, BROKERS)
    assert store.get(name) == info
    assert store.partition_state(name, limits.topic_partitions_max - 1)[0].isr == info.replicas[-1]
    store.delete(name)
    assert store.names() == []


def _race(stores: list[TopicStore], name: str) -> list[object]:
    """Each store creates `name` at once, from its own thread; each outcome, in order."""
    start = threading.Barrier(len(stores))
    outcomes: list[object] = [None] * len(stores)

    def create(i: int) -> None:
        start.wait(EVENT_TIMEOUT_S)
        try:
            outcomes[i] = stores[i].create(name, 3, 2, {}, BROKERS)
        except ZafkaError as e:
            outcomes[i] = e.error.name

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(EVENT_TIMEOUT_S)
    return outcomes


def test_concurrent_creates_of_one_topic_have_exactly_one_winner(make_client):
    stores = [TopicStore(make_client()) for _ in range(3)]
    for round_ in range(5):
        name = f"race-{round_}"
        outcomes = _race(stores, name)
        winners = [o for o in outcomes if not isinstance(o, str)]
        assert len(winners) == 1, outcomes
        assert outcomes.count("TOPIC_ALREADY_EXISTS") == len(stores) - 1, outcomes
        assert all(store.get(name) == winners[0] for store in stores)


def test_a_stale_writer_of_partition_state_is_refused(make_client):
    controller, stale = TopicStore(make_client()), TopicStore(make_client())
    info = controller.create("t", 1, 3, {}, BROKERS)
    state, version = controller.partition_state("t", 0)
    _, stale_version = stale.partition_state("t", 0)
    follower = info.replicas[0][1]

    new_leader = LeaderIsr(leader=follower, leader_epoch=1, isr=(follower,))
    assert controller.update_partition_state("t", 0, new_leader, version) == version + 1

    shrunk = LeaderIsr(leader=state.leader, leader_epoch=0, isr=(state.leader,))
    assert _error(stale.update_partition_state, "t", 0, shrunk, stale_version) == (
        STALE_VERSION_ERROR
    )
    assert stale.partition_state("t", 0) == (new_leader, version + 1)
    # Read again, decide again: the fresh version is accepted.
    newer = LeaderIsr(leader=follower, leader_epoch=2, isr=(follower,), controller_epoch=1)
    assert stale.update_partition_state("t", 0, newer, version + 1) == version + 2
    with pytest.raises(ValueError):
        stale.update_partition_state("t", 0, newer, -1)  # "any version" would bypass fencing
    assert _error(stale.update_partition_state, "t", 1, newer, 0) == "UNKNOWN_TOPIC_OR_PARTITION"


class NameWatch:
    """Collects the lists a TopicStore.watch reports and wakes waiters on each one."""

    def __init__(self) -> None:
        self.reported: list[list[str]] = []
        self._changed = threading.Condition()

    def __call__(self, names: list[str]) -> None:
        with self._changed:
            self.reported.append(names)
            self._changed.notify_all()

    def wait_for(self, names: list[str]) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: bool(self.reported) and self.reported[-1] == names, EVENT_TIMEOUT_S
            )


def test_a_watch_reports_creates_and_deletes(make_client):
    watched = NameWatch()
    TopicStore(make_client()).watch(watched)
    writer = TopicStore(make_client())
    assert watched.wait_for([]), "no first report of the current (empty) list"

    writer.create("b", 1, 1, {}, BROKERS)
    assert watched.wait_for(["b"]), watched.reported
    writer.create("a", 1, 1, {}, BROKERS)
    assert watched.wait_for(["a", "b"]), watched.reported
    writer.delete("b")
    assert watched.wait_for(["a"]), watched.reported


def test_topics_and_watches_survive_a_lost_session(make_client, zk_hosts):
    client = make_client()
    store = TopicStore(client)
    info = store.create("kept", 2, 2, {"segment.ms": "1000"}, BROKERS)
    watched = NameWatch()
    store.watch(watched)
    assert watched.wait_for(["kept"])

    reconnected = wait_for_state(client, KazooState.CONNECTED, EVENT_TIMEOUT_S)
    expire_session(client, zk_hosts)
    assert reconnected(), "the client did not reconnect with a new session"

    assert store.get("kept") == info
    assert TopicStore(make_client()).get("kept") == info  # and from another client
    TopicStore(make_client()).create("new", 1, 1, {}, BROKERS)
    assert watched.wait_for(["kept", "new"]), watched.reported


def test_malformed_znodes_are_reported_not_crashed_on(make_client):
    client = make_client()
    store = TopicStore(client)
    client.create(paths.topic("junk"), b"\x00not json", makepath=True)
    store.create("t", 1, 1, {}, BROKERS)
    client.set(paths.partition_state("t", 0), b'{"version": 1, "leader": "me"}')

    with pytest.raises(MalformedZnode) as err:
        store.get("junk")
    assert err.value.path == "/brokers/topics/junk"
    with pytest.raises(MalformedZnode):
        store.partition_state("t", 0)
    assert store.names() == ["junk", "t"]
    store.delete("junk")  # a topic that does not parse can still be removed
    assert store.names() == ["t"]
    client.create(paths.topic_partitions("t") + "/01")
    with pytest.raises(MalformedZnode):
        store.delete("t")  # refused before it deletes anything
    assert store.names() == ["t"]
