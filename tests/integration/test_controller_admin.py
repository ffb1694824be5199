"""Partition admin through the controller, with real broker processes and a real ZooKeeper:
`zafka topics alter --partitions N` (the new partitions are served by their leaders, on
either broker, and an SDK producer reaches them), preferred leader election, on demand
(`zafka cluster elect-leaders`) and automatic (the imbalance check), and reassignment.

Followers replicate for real: a replica joins the ISR when its leader sees it caught up
(and writes the ISR, Kafka's AlterIsr), so an election or a move waits for that, and a
producer sending with acks=all through the move loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    BrokerProcess,
    RawClient,
    brokers_running,
    fetch_values,
    produce,
    wait_until,
    zafka,
)
from zafka.clients.producer import Producer
from zafka.coordination import paths
from zafka.coordination.brokers import registrations
from zafka.coordination.topic_records import LeaderIsr
from zafka.coordination.topics import TopicStore
from zafka.transport.admin import (
    AlterPartitionReassignmentsRequest,
    CreateTopicsRequest,
    DeleteTopicsRequest,
    NewTopic,
    Reassignment,
)

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


def in_sync(zk, partition: int, replicas: set[int]) -> bool:
    return set(state(zk, partition).isr) == replicas


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
    """A one-partition RF=2 topic with records whose leader failed over to the second replica
    (cleanly: both in sync) and came back, caught up and in the ISR again: (preferred
    replica, current leader)."""
    create(cluster, replication_factor=2)
    preferred, other = TopicStore(zk).get(TOPIC).replicas[0]
    client = client_of(cluster[preferred])
    assert wait_until(lambda: serves(client, 0), STATE_WAIT_S)
    assert produce(client, TOPIC, 0, [b"a", b"b"], acks=-1) >= 0  # on both replicas
    client.close()
    cluster[preferred].kill()
    assert wait_until(lambda: state(zk, 0).leader == other, STATE_WAIT_S), state(zk, 0)
    cluster[preferred].start()
    assert wait_until(lambda: in_sync(zk, 0, {preferred, other}), STATE_WAIT_S), state(zk, 0)
    return preferred, other


def test_elect_leaders_moves_leadership_back_to_the_preferred_replica(cluster, zk):
    preferred, other = _moved_to_follower(cluster, zk)
    assert state(zk, 0).leader == other
    epoch = state(zk, 0).leader_epoch
    with Producer(bootstrap(cluster), linger_ms=1) as producer:  # acks=all, through the move
        before = producer.send(TOPIC, b"before", partition=0).result(STATE_WAIT_S).offset
        electing = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zafka.cli",
                "cluster",
                "elect-leaders",
                "--topic",
                TOPIC,
                "--bootstrap",
                bootstrap(cluster, other),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        during = []
        while electing.poll() is None and len(during) < 20_000:
            during.append(producer.send(TOPIC, b"during", partition=0))
            during[-1].result(STATE_WAIT_S)
        out, err = electing.communicate(timeout=STATE_WAIT_S)
        after = producer.send(TOPIC, b"after", partition=0)
        offsets = [f.result(STATE_WAIT_S).offset for f in [*during, after]]
    assert electing.returncode == 0, err
    assert f"Successfully completed leader election (PREFERRED) for partitions {TOPIC}-0" in out
    assert offsets == list(range(before + 1, before + 2 + len(during)))  # none lost or doubled
    now = state(zk, 0)
    assert (now.leader, now.leader_epoch) == (preferred, epoch + 1)
    client = client_of(cluster[preferred])
    assert wait_until(lambda: serves(client, 0), STATE_WAIT_S)
    again = cli(cluster, "cluster", "elect-leaders")
    assert again.returncode == 0 and "Valid replica already elected" in again.stdout
    client.close()


def test_elect_leaders_refuses_a_preferred_replica_that_is_down_and_an_unclean_leader_wins(
    cluster, zk
):
    """Both replicas die, the follower first; with unclean election on, the follower returns
    and leads without what the preferred one took alone. The preferred replica, down, cannot
    be elected; back, it cuts its divergent tail (by leader epoch), copies the leader's log
    and rejoins the ISR, and then it can lead again."""
    client = client_of(cluster[1])
    configs = {"unclean.leader.election.enable": "true"}
    request = CreateTopicsRequest((NewTopic(TOPIC, 1, 2, configs),))
    assert client.call("broker", request).results[0].error_code == 0
    client.close()
    preferred, other = TopicStore(zk).get(TOPIC).replicas[0]
    cluster[other].kill()
    assert wait_until(lambda: state(zk, 0).isr == (preferred,), STATE_WAIT_S), state(zk, 0)
    alone = client_of(cluster[preferred])
    assert produce(alone, TOPIC, 0, [b"only-on-the-preferred"], acks=-1) == 0
    alone.close()
    cluster[preferred].kill()
    cluster[other].start()  # the only live replica, out of sync: elected uncleanly
    assert wait_until(lambda: state(zk, 0).leader == other, STATE_WAIT_S), state(zk, 0)
    leader = client_of(cluster[other])
    assert wait_until(lambda: serves(leader, 0), STATE_WAIT_S)  # writes "probe" at 0
    refused = cli(cluster, "cluster", "elect-leaders", "--topic", TOPIC, only=other)
    assert refused.returncode == 1
    assert "PREFERRED_LEADER_NOT_AVAILABLE" in refused.stderr and "is down" in refused.stderr
    assert state(zk, 0).leader == other  # nothing moved
    cluster[preferred].start()
    assert wait_until(lambda: in_sync(zk, 0, {preferred, other}), STATE_WAIT_S), state(zk, 0)
    elected = cli(cluster, "cluster", "elect-leaders", "--topic", TOPIC, only=other)
    assert elected.returncode == 0, elected.stderr
    back = client_of(cluster[preferred])
    assert wait_until(lambda: fetch_values(back, TOPIC, 0)[:1] == [b"probe"], STATE_WAIT_S)
    assert b"only-on-the-preferred" not in fetch_values(back, TOPIC, 0)  # cut, not served
    for c in (leader, back):
        c.close()


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
        first = [producer.send(TOPIC, b"moving-%d" % i, partition=0) for i in range(50)]
        assert [f.result(STATE_WAIT_S).offset for f in first] == list(range(50))
        stays = [producer.send(TOPIC, b"stay-%d" % i, partition=1) for i in range(20)]
        started = cli(cluster, "topics", "reassign", "--plan", str(plan))
        assert started.returncode == 0, started.stderr
        assert f"moving {TOPIC}-0 to {target}" in started.stdout
        during = []  # acks=all sends to the moving partition while it moves
        while state(zk, 0).leader != target and len(during) < 20_000:
            during.append(producer.send(TOPIC, b"moving-%d" % (50 + len(during)), partition=0))
            during[-1].result(STATE_WAIT_S)
        waited = cli(cluster, "topics", "reassign", "--plan", str(plan), "--wait")
        assert waited.returncode == 0 and "every move is done" in waited.stdout, waited.stderr
        assert TopicStore(zk).get(TOPIC).replicas[0] == (target,)
        now = state(zk, 0)
        assert (now.leader, now.isr) == (target, (target,))
        after = [
            producer.send(TOPIC, b"moving-%d" % (50 + len(during) + i), partition=0)
            for i in range(5)
        ]
        sent = first + during + after
        assert [f.result(STATE_WAIT_S).offset for f in sent] == list(range(len(sent)))
        assert [f.result(STATE_WAIT_S).offset for f in stays] == list(range(20))
    moved = client_of(cluster[target])
    values = fetch_values(moved, TOPIC, 0)
    moved.close()
    assert values == [b"moving-%d" % i for i in range(len(sent))]  # all there, in order, once
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
    replicas = TopicStore(zk).get(TOPIC).replicas[0]
    target = next(b for b in cluster if b not in replicas)
    client = client_of(cluster[replicas[0]])  # straight to the broker that is not paused
    move = AlterPartitionReassignmentsRequest((Reassignment(TOPIC, 0, (*replicas, target)),))
    os.kill(cluster[target].pid, signal.SIGSTOP)  # still registered, cannot catch up
    try:
        (result,) = client.call("broker", move).results
        assert result.error_code == 0, result
        assert zk.get_children(paths.REASSIGNMENTS) == [f"{TOPIC}:0"]
        (deleted,) = client.call("broker", DeleteTopicsRequest((TOPIC,))).results
        assert deleted.error_code == 0, deleted
        assert zk.get_children(paths.REASSIGNMENTS) == []  # the move ended with its topic
    finally:
        os.kill(cluster[target].pid, signal.SIGCONT)
        client.close()


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
