"""A deposed controller can do nothing: one paused (SIGSTOP) past its ZooKeeper session is
replaced, and once it runs again (SIGCONT) every partition state is still written by its
successor only; LeaderAndIsr or UpdateMetadata with a stale controller epoch, or from a broker
that is not the controller, is refused with an error code and changes nothing. Brokers answer
Metadata from the controller's updates, not from ZooKeeper. Real broker processes, real
ZooKeeper."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    SESSION_TIMEOUT_MS,
    BrokerProcess,
    RawClient,
    code,
    free_port,
    produce,
    wait_until,
)
from zafka.coordination.controller import read_controller, read_epoch
from zafka.coordination.topics import TopicStore
from zafka.transport import codec
from zafka.transport.admin import CreateTopicsRequest, NewTopic
from zafka.transport.client import MetadataRequest, PartitionMetadata, TopicMetadata
from zafka.transport.control import ErrorReply
from zafka.transport.controller import LeaderAndIsrRequest, UpdateMetadataRequest
from zafka.transport.envelope import Envelope

pytestmark = pytest.mark.integration

TOPIC = "orders"
WAIT_S = 30.0
PAUSE_S = SESSION_TIMEOUT_MS / 1000 + 2  # the paused controller's session has expired by then


@pytest.fixture
def cluster(zk_hosts: str, tmp_path: Path):
    brokers = {
        b: BrokerProcess(
            zk_hosts, tmp_path / f"data-{b}", tmp_path / f"broker-{b}.log", free_port(), b
        )
        for b in (1, 2, 3)
    }
    for broker in brokers.values():
        broker.start()
    yield brokers
    for broker in brokers.values():
        if broker.alive():
            os.kill(broker.pid, signal.SIGCONT)  # a paused one must be able to die
        broker.kill()


def states(zk) -> dict[int, tuple[int, int, int]]:
    """Partition -> (leader, leader epoch, controller epoch that wrote it)."""
    store = TopicStore(zk)
    found = {p: store.partition_state(TOPIC, p)[0] for p in range(3)}
    return {p: (s.leader, s.leader_epoch, s.controller_epoch) for p, s in found.items()}


def test_a_paused_controller_is_replaced_and_writes_nothing_when_it_wakes(cluster, zk):
    client = RawClient(cluster[1].endpoint, "broker-1")
    request = CreateTopicsRequest((NewTopic(TOPIC, 3, 1, {}),))
    assert client.call("broker", request).results[0].error_code == 0
    assert wait_until(lambda: read_controller(zk) in cluster, WAIT_S)
    old, old_epoch = read_controller(zk), read_epoch(zk)[0]
    led_by_old = [p for p, (leader, _, _) in states(zk).items() if leader == old]

    os.kill(cluster[old].pid, signal.SIGSTOP)
    assert wait_until(lambda: read_controller(zk) not in (None, old), PAUSE_S + 5)
    new, new_epoch = read_controller(zk), read_epoch(zk)[0]
    assert new_epoch == old_epoch + 1
    offline = lambda: all(states(zk)[p][0] == -1 for p in led_by_old)  # noqa: E731
    assert wait_until(offline, WAIT_S), states(zk)  # the paused broker's partitions
    os.kill(cluster[old].pid, signal.SIGCONT)  # it wakes, learns its session is gone

    back = lambda: all(states(zk)[p][0] == old for p in led_by_old)  # noqa: E731
    assert wait_until(back, WAIT_S), states(zk)  # registered again: it leads them again
    victim = next(b for b in cluster if b not in (old, new))
    cluster[victim].kill()  # a change only a controller acts on
    assert wait_until(lambda: victim not in {s[0] for s in states(zk).values()}, WAIT_S)
    for _, leader_epoch, controller_epoch in states(zk).values():
        assert leader_epoch == 0 or controller_epoch == new_epoch, states(zk)
    assert read_controller(zk) == new and read_epoch(zk)[0] == new_epoch
    client.close()


def leaders_in_metadata(client: RawClient) -> dict[int, int]:
    (topic,) = client.call("broker", MetadataRequest((TOPIC,))).topics
    return {p.partition: p.leader for p in topic.partitions}


def test_controller_messages_from_a_stale_or_false_controller_are_refused(cluster, zk):
    client = RawClient(cluster[1].endpoint, "broker-1")
    request = CreateTopicsRequest((NewTopic(TOPIC, 3, 1, {}),))
    assert client.call("broker", request).results[0].error_code == 0
    assert wait_until(lambda: read_controller(zk) in cluster, WAIT_S)
    epoch = read_epoch(zk)[0]
    before = states(zk)
    p = next(p for p, (leader, _, _) in before.items() if leader == 1)
    # Tell broker 1 that broker 2 leads its partition: from a client, not the controller.
    move = LeaderAndIsrRequest(TOPIC, p, 2, before[p][1] + 1, (2,), (1,), 0, "tcp://127.0.0.1:1")
    forged = PartitionMetadata(p, 2, before[p][1] + 9, (2,), (2,))
    lie = UpdateMetadataRequest((), (TopicMetadata(TOPIC, 0, (forged,)),), (TOPIC,), True)
    assert wait_until(lambda: leaders_in_metadata(client)[p] == 1, WAIT_S)
    correlation = iter(range(100, 200))
    for message in (move, lie):
        for sent_epoch, error in [(epoch - 1, "STALE_CONTROLLER_EPOCH"), (epoch, "NOT_CONTROLLER")]:
            sender, target, n = f"{client.node}/c", "broker-1/broker", next(correlation)
            client.send_frames(codec.encode(Envelope(sender, target, message, n, sent_epoch)))
            reply = client.receive(n)
            assert isinstance(reply, ErrorReply) and reply.code == code(error), reply
    assert states(zk) == before
    assert leaders_in_metadata(client)[p] == 1  # the forged update changed nothing
    assert produce(client, TOPIC, p, [b"still led here"]) == 0
    client.close()


def test_metadata_is_answered_from_the_controllers_updates_not_zookeeper(cluster, zk):
    """A state written into ZooKeeper behind the controller's back is not what brokers
    answer: they answer what the controller told them."""
    client = RawClient(cluster[2].endpoint, "broker-2")
    request = CreateTopicsRequest((NewTopic(TOPIC, 3, 1, {}),))
    assert client.call("broker", request).results[0].error_code == 0
    real = {p: leader for p, (leader, _, _) in states(zk).items()}
    assert wait_until(lambda: leaders_in_metadata(client) == real, WAIT_S)
    store = TopicStore(zk)
    state, version = store.partition_state(TOPIC, 0)
    elsewhere = next(b for b in cluster if b != state.leader)
    rogue = type(state)(elsewhere, state.leader_epoch + 5, (elsewhere,), state.controller_epoch)
    store.update_partition_state(TOPIC, 0, rogue, version)
    assert leaders_in_metadata(client) == real  # not read from ZooKeeper
    client.close()
