"""Partition admin through the controller, with real broker processes and a real ZooKeeper:
`zafka topics alter --partitions N` (the new partitions are served by their leaders, on
either broker, and an SDK producer reaches them), and preferred leader election, on demand
(`zafka cluster elect-leaders`) and automatic (the imbalance check).

Until followers replicate (the next issue), a replica joins the ISR only when its leader
writes it there. These tests write that ISR change as a leader will (a version-checked
state write plus the controller's `isr_changed` notification, Kafka's AlterIsr), on topics
without records, so that the preferred replica is eligible and holds all there is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    BrokerProcess,
    RawClient,
    brokers_running,
    produce,
    wait_until,
    zafka,
)
from zafka.clients.producer import Producer
from zafka.coordination import controller_requests, paths
from zafka.coordination.brokers import registrations
from zafka.coordination.controller import read_controller
from zafka.coordination.topic_records import LeaderIsr
from zafka.coordination.topics import TopicStore
from zafka.transport.admin import CreateTopicsRequest, NewTopic

pytestmark = pytest.mark.integration

TOPIC = "orders"
STATE_WAIT_S = 30.0  # a change noticed and written by the controller, with session expiry


def client_of(broker: BrokerProcess) -> RawClient:
    return RawClient(broker.endpoint, f"broker-{broker.broker_id}")


def bootstrap(brokers: dict[int, BrokerProcess], only: int | None = None) -> str:
    chosen = [b for i, b in brokers.items() if only is None or i == only]
    return ",".join(b.endpoint.removeprefix("tcp://") for b in chosen)


def cli(brokers: dict[int, BrokerProcess], *args: str, only: int | None = None):
    """`zafka ARGS --bootstrap` the brokers (or only broker `only`)."""
    return zafka(*args, "--bootstrap", bootstrap(brokers, only))


def create(brokers: dict[int, BrokerProcess], replication_factor: int, configs=None) -> None:
    client = client_of(brokers[min(brokers)])
    request = CreateTopicsRequest((NewTopic(TOPIC, 1, replication_factor, configs or {}),))
    assert client.call("broker", request).results[0].error_code == 0
    client.close()


def serves(client: RawClient, partition: int) -> bool:
    try:
        return produce(client, TOPIC, partition, [b"probe"], timeout_s=2.0) >= 0
    except AssertionError:  # UNKNOWN_ACTOR while it is not hosted there yet
        return False


def state(zk, partition: int) -> LeaderIsr:
    return TopicStore(zk).partition_state(TOPIC, partition)[0]


def join_isr(zk, partition: int, replica: int) -> None:
    """What a leader does when a follower caught up: the ISR with it, and the notice."""
    store = TopicStore(zk)
    now, version = store.partition_state(TOPIC, partition)
    grown = LeaderIsr(now.leader, now.leader_epoch, (*now.isr, replica), now.controller_epoch)
    store.update_partition_state(TOPIC, partition, grown, version)
    controller_requests.queue(zk, controller_requests.isr_changed_json([(TOPIC, partition)]))


@pytest.fixture
def cluster(zk_hosts: str, tmp_path: Path):
    with brokers_running(zk_hosts, tmp_path) as brokers:
        yield brokers


def test_alter_partitions_grows_a_topic_whose_new_partitions_are_served(cluster, zk):
    clients = {b: client_of(broker) for b, broker in cluster.items()}
    assert (
        zafka(
            "topics", "create", TOPIC, "--partitions", "2", "--bootstrap", bootstrap(cluster)
        ).returncode
        == 0
    )
    done = zafka(
        "topics", "alter", TOPIC, "--partitions", "5", "--bootstrap", bootstrap(cluster, 1)
    )
    assert done.returncode == 0, done.stderr
    assert "has 5 partitions now" in done.stdout
    info = TopicStore(zk).get(TOPIC)
    assert info is not None and info.partitions == 5
    leaders = {p: replicas[0] for p, replicas in enumerate(info.replicas)}
    assert set(leaders.values()) == {1, 2}  # round robin goes on over both brokers
    for p in range(
        2, 5
    ):  # each new one served by its leader, told by the answerer or the controller
        assert wait_until(lambda p=p: serves(clients[leaders[p]], p), STATE_WAIT_S), p
    with Producer(bootstrap(cluster), linger_ms=1) as producer:
        sent = [producer.send(TOPIC, b"new", partition=p) for p in range(5)]
        assert all(f.result(STATE_WAIT_S).offset >= 0 for f in sent)
    shrink = cli(cluster, "topics", "alter", TOPIC, "--partitions", "3")
    assert shrink.returncode == 1 and "INVALID_PARTITIONS" in shrink.stderr
    missing = zafka(
        "topics", "alter", "nope", "--partitions", "3", "--bootstrap", bootstrap(cluster)
    )
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stderr
    assert TopicStore(zk).get(TOPIC).partitions == 5  # nothing changed by the refusals
    for client in clients.values():
        client.close()


def _moved_to_follower(cluster, zk) -> tuple[int, int]:
    """A one-partition RF=2 topic whose leader failed over to the second replica (cleanly:
    both in sync) and came back: (preferred replica, current leader)."""
    create(cluster, replication_factor=2)
    preferred, other = TopicStore(zk).get(TOPIC).replicas[0]
    join_isr(zk, 0, other)
    assert wait_until(lambda: state(zk, 0).isr == (preferred, other), STATE_WAIT_S)
    cluster[preferred].kill()
    assert wait_until(lambda: state(zk, 0).leader == other, STATE_WAIT_S), state(zk, 0)
    cluster[preferred].start()
    assert wait_until(lambda: read_controller(zk) is not None, STATE_WAIT_S)
    join_isr(zk, 0, preferred)  # it caught up again
    return preferred, other


def test_elect_leaders_moves_leadership_back_to_the_preferred_replica(cluster, zk):
    preferred, other = _moved_to_follower(cluster, zk)
    assert state(zk, 0).leader == other
    epoch = state(zk, 0).leader_epoch
    elected = zafka(
        "cluster", "elect-leaders", "--topic", TOPIC, "--bootstrap", bootstrap(cluster, other)
    )
    assert elected.returncode == 0, elected.stderr
    assert (
        f"Successfully completed leader election (PREFERRED) for partitions {TOPIC}-0"
        in elected.stdout
    )
    now = state(zk, 0)
    assert (now.leader, now.leader_epoch) == (preferred, epoch + 1)
    client = client_of(cluster[preferred])
    assert wait_until(lambda: serves(client, 0), STATE_WAIT_S)
    again = cli(cluster, "cluster", "elect-leaders")
    assert again.returncode == 0 and "Valid replica already elected" in again.stdout
    client.close()


def test_elect_leaders_says_when_the_preferred_replica_is_not_in_sync(cluster, zk):
    client = client_of(cluster[1])
    configs = {"unclean.leader.election.enable": "true"}
    assert (
        client.call("broker", CreateTopicsRequest((NewTopic(TOPIC, 1, 2, configs),)))
        .results[0]
        .error_code
        == 0
    )
    client.close()
    preferred, other = TopicStore(zk).get(TOPIC).replicas[0]
    cluster[preferred].kill()  # the other one leads, uncleanly: the preferred is out of sync
    assert wait_until(lambda: state(zk, 0).leader == other, STATE_WAIT_S)
    cluster[preferred].start()
    refused = cli(cluster, "cluster", "elect-leaders", "--topic", TOPIC)
    assert refused.returncode == 1
    assert "PREFERRED_LEADER_NOT_AVAILABLE" in refused.stderr and "not in the ISR" in refused.stderr
    assert state(zk, 0).leader == other  # nothing moved


def test_the_controller_rebalances_leaders_by_itself(zk_hosts, zk, tmp_path):
    every_s = ("--leader-imbalance-check-interval-ms", "500")
    with brokers_running(zk_hosts, tmp_path, extra_args=every_s) as cluster:
        preferred, _ = _moved_to_follower(cluster, zk)
        assert wait_until(lambda: state(zk, 0).leader == preferred, STATE_WAIT_S)


def test_a_reassignment_moves_a_partition_to_another_broker(cluster, zk, tmp_path):
    """Partition 0 moves from its broker to the other one; partition 1 stays. A producer
    keeps sending to partition 1 throughout, and sends to partition 0 once it moved."""
    assert cli(cluster, "topics", "create", TOPIC, "--partitions", "2").returncode == 0
    info = TopicStore(zk).get(TOPIC)
    source = info.replicas[0][0]
    target = 2 if source == 1 else 1
    plan = tmp_path / "moves.json"
    move = {"topic": TOPIC, "partition": 0, "replicas": [target]}
    plan.write_text(json.dumps({"version": 1, "partitions": [move]}))
    on_source = cluster[source].data_dir / f"{TOPIC}-0"
    assert wait_until(on_source.is_dir, STATE_WAIT_S)
    with Producer(bootstrap(cluster), linger_ms=1) as producer:
        before = [producer.send(TOPIC, b"stay-%d" % i, partition=1) for i in range(20)]
        started = cli(cluster, "topics", "reassign", "--plan", str(plan))
        assert started.returncode == 0, started.stderr
        assert f"moving {TOPIC}-0 to {target}" in started.stdout
        assert wait_until(
            lambda: TopicStore(zk).get(TOPIC).replicas[0] == (target, source), STATE_WAIT_S
        )
        status = cli(cluster, "topics", "reassign", "--status").stdout
        assert (
            f"{TOPIC}-0\treplicas: {target},{source}\tadding: {target}\tremoving: {source}"
            in status
        )
        during = [producer.send(TOPIC, b"stay-%d" % i, partition=1) for i in range(20, 40)]
        join_isr(zk, 0, target)  # what its leader writes once the new replica caught up
        waited = cli(cluster, "topics", "reassign", "--plan", str(plan), "--wait")
        assert waited.returncode == 0 and "every move is done" in waited.stdout, waited.stderr
        assert TopicStore(zk).get(TOPIC).replicas[0] == (target,)
        now = state(zk, 0)
        assert (now.leader, now.isr) == (target, (target,))
        after = [producer.send(TOPIC, b"moved-%d" % i, partition=0) for i in range(5)]
        assert [f.result(STATE_WAIT_S).offset for f in after] == list(range(5))
        assert [f.result(STATE_WAIT_S).offset for f in before + during] == list(range(40))
    assert wait_until(lambda: not on_source.exists(), STATE_WAIT_S)  # the old replica's copy
    assert "no partition is being moved" in cli(cluster, "topics", "reassign", "--status").stdout


def test_a_reassignment_to_unknown_brokers_is_refused_and_changes_nothing(cluster, zk, tmp_path):
    assert cli(cluster, "topics", "create", TOPIC).returncode == 0
    before = TopicStore(zk).get(TOPIC).replicas
    plan = tmp_path / "bad.json"
    move = {"topic": TOPIC, "partition": 0, "replicas": [1, 99]}
    plan.write_text(json.dumps({"version": 1, "partitions": [move]}))
    refused = cli(cluster, "topics", "reassign", "--plan", str(plan))
    assert refused.returncode == 1 and "INVALID_REPLICA_ASSIGNMENT" in refused.stderr
    assert "[99] are not registered" in refused.stderr
    plan.write_text("{not json")
    assert cli(cluster, "topics", "reassign", "--plan", str(plan)).returncode == 2
    assert TopicStore(zk).get(TOPIC).replicas == before
    assert "no partition is being moved" in cli(cluster, "topics", "reassign", "--status").stdout
    waiting = {"topic": TOPIC, "partition": 0, "replicas": [1, 2]}  # 2 never catches up
    plan.write_text(json.dumps({"version": 1, "partitions": [waiting]}))
    assert cli(cluster, "topics", "reassign", "--plan", str(plan)).returncode == 0
    assert zk.get_children(paths.REASSIGNMENTS) == [f"{TOPIC}:0"]
    assert cli(cluster, "topics", "delete", TOPIC).returncode == 0
    assert zk.get_children(paths.REASSIGNMENTS) == []  # the move ended with its topic


def test_replicas_are_placed_on_different_racks_when_brokers_declare_them(zk_hosts, zk, tmp_path):
    racks = {1: "east", 2: "east", 3: "west", 4: "west"}
    with brokers_running(zk_hosts, tmp_path, (1, 2, 3, 4), racks=racks) as cluster:
        assert registrations(zk)[3].rack == "west"
        made = cli(
            cluster, "topics", "create", TOPIC, "--partitions", "8", "--replication-factor", "2"
        )
        assert made.returncode == 0, made.stderr
        grown = cli(cluster, "topics", "alter", TOPIC, "--partitions", "12")
        assert grown.returncode == 0, grown.stderr
        replicas = TopicStore(zk).get(TOPIC).replicas
        assert len(replicas) == 12
        assert all({racks[b] for b in r} == {"east", "west"} for r in replicas), replicas
