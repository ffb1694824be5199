"""The controller with real broker processes and a real ZooKeeper: a kill -9 of a broker
leading RF=1 partitions takes them offline (leader -1, a new leader epoch) and its return
brings them back with their data; with RF=2 its in-sync follower takes over with every
acked record, and the old leader catches up as its follower; a kill -9 of the
controller elects another within the session timeout + 2 s; the surviving broker's
partitions are served throughout; a topic deleted while a broker is down leaves its disk
when it returns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    SESSION_TIMEOUT_MS,
    BrokerProcess,
    RawClient,
    brokers_running,
    create,
    fetch_values,
    produce,
    wait_until,
    zafka,
)
from zafka.clients.producer import Producer
from zafka.coordination.controller import read_controller
from zafka.coordination.topics import TopicStore
from zafka.transport.admin import CreateTopicsRequest, DeleteTopicsRequest, NewTopic

pytestmark = pytest.mark.integration

TOPIC = "orders"
FAILOVER_S = SESSION_TIMEOUT_MS / 1000 + 2  # the bound on a new controller
STATE_WAIT_S = 30.0  # a broker's death noticed (session expiry) and written by the controller


@pytest.fixture
def cluster(zk_hosts: str, tmp_path: Path):
    with brokers_running(zk_hosts, tmp_path) as brokers:
        yield brokers


def client_of(broker: BrokerProcess) -> RawClient:
    return RawClient(broker.endpoint, f"broker-{broker.broker_id}")


def leaders(zk) -> dict[int, tuple[int, int]]:
    """Partition -> (leader, leader epoch), as ZooKeeper has it."""
    store = TopicStore(zk)
    return {
        p: (s.leader, s.leader_epoch) for p in (0, 1) for s in [store.partition_state(TOPIC, p)[0]]
    }


def _two_partitions(cluster, zk, replication_factor: int, configs=None):
    """A two-partition topic, one led by each broker: (clients, the controller, the other
    broker, partition -> (leader, epoch), the partition the other one leads)."""
    clients = {b: client_of(broker) for b, broker in cluster.items()}
    request = CreateTopicsRequest((NewTopic(TOPIC, 2, replication_factor, configs or {}),))
    assert clients[1].call("broker", request).results[0].error_code == 0
    assert wait_until(lambda: read_controller(zk) in cluster, STATE_WAIT_S)
    controller = read_controller(zk)
    victim = 2 if controller == 1 else 1
    before = leaders(zk)
    mine = next(p for p, (leader, _) in before.items() if leader == victim)
    return clients, controller, victim, before, mine


def test_a_dead_leader_takes_its_partitions_offline_and_its_return_brings_them_back(cluster, zk):
    """RF=1: no other replica to elect, so the partition waits for its leader, data intact."""
    clients, controller, victim, before, mine = _two_partitions(cluster, zk, 1)
    theirs = 1 - mine
    assert wait_until(lambda: _serves(clients[victim], mine), STATE_WAIT_S)
    assert produce(clients[victim], TOPIC, mine, [b"a", b"b"]) == 0

    cluster[victim].kill()
    offline = (-1, before[mine][1] + 1)
    assert wait_until(lambda: leaders(zk)[mine] == offline, STATE_WAIT_S), leaders(zk)
    assert leaders(zk)[theirs] == before[theirs]  # the survivor's partition did not move
    assert produce(clients[controller], TOPIC, theirs, [b"x"]) >= 0  # and is served
    survivor = ("--bootstrap", cluster[controller].endpoint.removeprefix("tcp://"))
    assert zafka("topics", "list", "--offline", *survivor).stdout.split() == [TOPIC]
    described = zafka("topics", "describe", TOPIC, *survivor).stdout
    assert f"Partition: {mine}\tLeader: none" in described and "(offline" in described

    cluster[victim].start()  # waits for its old session to expire, then registers again
    back = (victim, before[mine][1] + 2)
    assert wait_until(lambda: leaders(zk)[mine] == back, STATE_WAIT_S), leaders(zk)
    clients[victim].close()
    clients[victim] = client_of(cluster[victim])
    assert wait_until(lambda: _serves(clients[victim], mine), STATE_WAIT_S)
    assert fetch_values(clients[victim], TOPIC, mine) == [b"a", b"b"]  # its data came back
    for client in clients.values():
        client.close()


def test_a_dead_leaders_in_sync_follower_takes_over_and_the_old_leader_catches_up(cluster, zk):
    """RF=2: the follower has every record acked with acks=all, leads in the next epoch and
    serves them; the old leader returns as its follower, copies what it missed and is back
    in the ISR."""
    clients, controller, victim, before, mine = _two_partitions(cluster, zk, 2)
    assert wait_until(lambda: _serves(clients[victim], mine), STATE_WAIT_S)
    assert produce(clients[victim], TOPIC, mine, [b"a", b"b"], acks=-1) == 0

    cluster[victim].kill()
    taken = (controller, before[mine][1] + 1)
    assert wait_until(lambda: leaders(zk)[mine] == taken, STATE_WAIT_S), leaders(zk)
    assert wait_until(lambda: _serves(clients[controller], mine), STATE_WAIT_S)
    assert fetch_values(clients[controller], TOPIC, mine) == [b"a", b"b"]
    assert produce(clients[controller], TOPIC, mine, [b"c"], acks=-1) == 2  # ISR: itself

    cluster[victim].start()
    store = TopicStore(zk)
    in_sync = lambda: set(store.partition_state(TOPIC, mine)[0].isr) == {1, 2}  # noqa: E731
    assert wait_until(in_sync, STATE_WAIT_S), store.partition_state(TOPIC, mine)
    assert produce(clients[controller], TOPIC, mine, [b"d"], acks=-1) == 3  # both have it
    for client in clients.values():
        client.close()


def test_a_killed_controller_is_replaced_within_the_session_timeout(cluster, zk):
    clients = {b: client_of(broker) for b, broker in cluster.items()}
    assert create(clients[1], TOPIC, 2).results[0].error_code == 0
    assert wait_until(lambda: read_controller(zk) in cluster, STATE_WAIT_S)
    controller = read_controller(zk)
    survivor = 2 if controller == 1 else 1
    theirs = next(p for p, (leader, _) in leaders(zk).items() if leader == survivor)

    with Producer(cluster[survivor].endpoint.removeprefix("tcp://"), linger_ms=1) as producer:
        cluster[controller].kill()
        killed_at = time.monotonic()
        sent = []  # the survivor's partition is served throughout the controller's failover
        while read_controller(zk) != survivor and time.monotonic() - killed_at < FAILOVER_S + 5:
            sent.append(producer.send(TOPIC, b"during-%d" % len(sent), partition=theirs))
            sent[-1].result(STATE_WAIT_S)
        took_s = time.monotonic() - killed_at
        assert read_controller(zk) == survivor and took_s <= FAILOVER_S, f"after {took_s:.1f} s"
        assert [f.result(STATE_WAIT_S).offset for f in sent] == list(range(len(sent)))
    assert produce(clients[survivor], TOPIC, theirs, [b"still"]) == len(sent)
    for client in clients.values():
        client.close()


def _serves(client: RawClient, partition: int) -> bool:
    try:
        fetch_values(client, TOPIC, partition)
    except AssertionError:  # UNKNOWN_ACTOR while it is not hosted yet
        return False
    return True


def test_a_topic_deleted_while_a_broker_is_down_is_gone_from_its_disk_when_it_returns(cluster, zk):
    clients = {b: client_of(broker) for b, broker in cluster.items()}
    assert create(clients[1], TOPIC, 2).results[0].error_code == 0
    dirs = {b: cluster[b].data_dir for b in cluster}

    def on_disk(b: int) -> list[str]:
        return sorted(p.name for p in dirs[b].iterdir() if p.name.startswith(TOPIC))

    assert wait_until(lambda: on_disk(1) and on_disk(2), STATE_WAIT_S)
    cluster[2].kill()
    deleted = clients[1].call("broker", DeleteTopicsRequest((TOPIC,)))
    assert deleted.results[0].error_code == 0
    assert wait_until(lambda: on_disk(1) == [], STATE_WAIT_S)
    assert on_disk(2) != []  # down: nobody could tell it
    cluster[2].start()
    assert on_disk(2) == []  # removed before it served anything
    assert TopicStore(zk).get(TOPIC) is None
    for client in clients.values():
        client.close()


def test_a_producer_keeps_going_through_its_leader_outage(cluster, zk):
    """Records sent while their partition is offline are delivered once it is back: no error
    reaches the user, none is lost or written twice."""
    clients = {b: client_of(broker) for b, broker in cluster.items()}
    assert create(clients[1], TOPIC, 2).results[0].error_code == 0
    assert wait_until(lambda: read_controller(zk) in cluster, STATE_WAIT_S)
    victim = 2 if read_controller(zk) == 1 else 1
    mine = next(p for p, (leader, _) in leaders(zk).items() if leader == victim)
    bootstrap = ",".join(b.endpoint.removeprefix("tcp://") for b in cluster.values())
    with Producer(bootstrap, linger_ms=1, request_timeout_ms=2000) as producer:
        before = [producer.send(TOPIC, b"before-%d" % i, partition=mine) for i in range(5)]
        assert [f.result(STATE_WAIT_S).offset for f in before] == list(range(5))
        cluster[victim].kill()
        during = [producer.send(TOPIC, b"during-%d" % i, partition=mine) for i in range(5)]
        cluster[victim].start()
        assert [f.result(STATE_WAIT_S).offset for f in during] == list(range(5, 10))
    clients[victim].close()
    clients[victim] = client_of(cluster[victim])
    expected = [b"before-%d" % i for i in range(5)] + [b"during-%d" % i for i in range(5)]
    assert fetch_values(clients[victim], TOPIC, mine) == expected
    for client in clients.values():
        client.close()


def test_an_unclean_topic_elects_a_replica_out_of_sync_when_no_in_sync_one_is_live(cluster, zk):
    """`unclean.leader.election.enable=true`: availability over the dead leader's records."""
    configs = {"unclean.leader.election.enable": "true"}
    clients, controller, victim, before, mine = _two_partitions(cluster, zk, 2, configs)
    cluster[victim].kill()
    elected = (controller, before[mine][1] + 1)
    assert wait_until(lambda: leaders(zk)[mine] == elected, STATE_WAIT_S), leaders(zk)
    assert TopicStore(zk).partition_state(TOPIC, mine)[0].isr == (controller,)
    assert wait_until(lambda: _serves(clients[controller], mine), STATE_WAIT_S)
    assert produce(clients[controller], TOPIC, mine, [b"after"]) == 0  # an empty log here
    for client in clients.values():
        client.close()
