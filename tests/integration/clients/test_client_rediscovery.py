"""Clients that lose every broker they know find the cluster again: a broker that comes back
at another address is learnt from the metadata of any broker that answers, and a client
whose known brokers all went quiet goes back to its bootstrap list. Real broker processes,
real ZooKeeper; every wait is bounded."""

from __future__ import annotations

from pathlib import Path

from tests.integration.broker_helpers import BrokerProcess, free_port
from tests.integration.clients.helpers import WAIT_S, bare_client, call
from zafka.clients.producer import Producer
from zafka.transport.admin import CreateTopicsRequest, NewTopic
from zafka.transport.client import MetadataRequest

DELIVERY_S = 60


def _broker(zk_hosts: str, directory: Path, broker_id: int) -> BrokerProcess:
    return BrokerProcess(
        zk_hosts,
        directory / f"data-{broker_id}",
        directory / f"broker-{broker_id}.log",
        free_port(),
        broker_id=broker_id,
    )


def _create(bootstrap: str, topic: str) -> None:
    with bare_client(bootstrap, "admin") as admin:
        new = NewTopic(topic, 1, 1, {})
        assert call(admin, "*/broker", CreateTopicsRequest((new,))).results[0].error_code == 0


def _leader_of(bootstrap: str, topic: str) -> int:
    with bare_client(bootstrap, "probe") as client:
        (described,) = call(client, "*/broker", MetadataRequest((topic,))).topics
        return described.partitions[0].leader


def test_a_broker_back_on_another_port_is_found_through_another_broker(zk_hosts, tmp_path):
    brokers = {i: _broker(zk_hosts, tmp_path, i) for i in (1, 2)}
    for broker in brokers.values():
        broker.start()
    try:
        bootstrap = ",".join(f"127.0.0.1:{b.port}" for b in brokers.values())
        _create(bootstrap, "moving")
        leader = brokers[_leader_of(bootstrap, "moving")]
        values = [b"%d" % i for i in range(2000)]
        # The producer knows only the leader's first address.
        with Producer(f"127.0.0.1:{leader.port}", request_timeout_ms=2_000) as producer:
            futures = [producer.send("moving", v, partition=0) for v in values[:1000]]
            futures[-1].result(WAIT_S)
            leader.kill()
            futures += [producer.send("moving", v, partition=0) for v in values[1000:1500]]
            moved = BrokerProcess(  # the same broker (id, data) at a new address
                zk_hosts,
                leader.data_dir,
                leader.log_path,
                free_port(),
                broker_id=leader.broker_id,
            )
            moved.start()
            brokers[leader.broker_id] = moved
            futures += [producer.send("moving", v, partition=0) for v in values[1500:]]
            offsets = [f.result(DELIVERY_S).offset for f in futures]
        assert offsets == list(range(len(values)))  # each once, in order
    finally:
        for broker in brokers.values():
            broker.kill()


def test_a_client_whose_known_brokers_all_went_quiet_goes_back_to_its_bootstrap_list(
    zk_hosts, tmp_path
):
    broker = _broker(zk_hosts, tmp_path, 1)
    spare_port = free_port()  # where the broker will be next: the second bootstrap server
    broker.start()
    moved = None
    try:
        bootstrap = f"127.0.0.1:{broker.port},127.0.0.1:{spare_port}"
        _create(bootstrap, "alone")
        with Producer(bootstrap, request_timeout_ms=2_000) as producer:
            first = producer.send("alone", b"before", partition=0)
            assert first.result(WAIT_S).offset == 0
            broker.kill()
            later = producer.send("alone", b"after", partition=0)
            moved = BrokerProcess(
                zk_hosts, broker.data_dir, broker.log_path, spare_port, broker_id=1
            )
            moved.start()
            assert later.result(DELIVERY_S).offset == 1
    finally:
        broker.kill()
        if moved is not None:
            moved.kill()
