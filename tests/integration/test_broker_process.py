"""The broker as a real process (`python -m zafka.cli broker`) against a real ZooKeeper: it
registers, creates topics, answers metadata, hosts partition actors that produce and fetch,
refuses invalid topic names, stops cleanly on SIGTERM and recovers its data after a restart
and after a kill -9. Every wait is bounded."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
    BROKER_ID,
    REPO,
    STOP_TIMEOUT_S,
    BrokerProcess,
    RawClient,
    code,
    create,
    fetch_values,
    free_port,
    produce,
    wait_until,
)
from zafka import limits
from zafka.coordination.controller import read_controller
from zafka.coordination.topics import TopicStore
from zafka.transport.admin import (
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeTopicsRequest,
    DescribeTopicsResponse,
    NewTopic,
)
from zafka.transport.client import (
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
)
from zafka.transport.control import ErrorReply

pytestmark = pytest.mark.slow

EVENT_WAIT_S = 30.0  # a controller elected, an update arrived

INVALID_NAMES = ["", ".", "..", "a" * 250, "a/b", "a\x00b"]


@pytest.fixture
def client(broker: BrokerProcess) -> Iterator[RawClient]:
    raw = RawClient(broker.endpoint)
    yield raw
    raw.close()


def test_registers_creates_serves_and_stops_cleanly(broker, client, zk, tmp_path):
    assert zk.exists(f"/brokers/ids/{BROKER_ID}") is not None
    assert create(client, "orders").results[0].error_code == 0
    assert create(client, "orders").results[0].error_code == code("TOPIC_ALREADY_EXISTS")

    metadata = client.call("broker", MetadataRequest(None))
    assert isinstance(metadata, MetadataResponse)
    assert [(b.id, b.endpoint) for b in metadata.brokers] == [(BROKER_ID, broker.endpoint)]
    (topic,) = metadata.topics
    assert topic.name == "orders" and topic.error_code == 0
    assert [(p.partition, p.leader, p.isr) for p in topic.partitions] == [
        (0, BROKER_ID, (BROKER_ID,)),
        (1, BROKER_ID, (BROKER_ID,)),
    ]

    assert produce(client, "orders", 0, [b"a", b"b", b"c"]) == 0
    assert fetch_values(client, "orders", 0) == [b"a", b"b", b"c"]
    assert fetch_values(client, "orders", 1) == []

    assert broker.terminate() == 0, broker.log()
    gone = threading.Event()
    if zk.exists(f"/brokers/ids/{BROKER_ID}", watch=lambda event: gone.set()) is not None:
        assert gone.wait(5), "the broker's registration outlived its clean stop"
    client.close()

    broker.start()
    again = RawClient(broker.endpoint)
    try:
        assert fetch_values(again, "orders", 0) == [b"a", b"b", b"c"]
        assert produce(again, "orders", 0, [b"d"]) == 3
    finally:
        again.close()


def test_invalid_topic_names_are_refused_and_create_nothing(broker, client, zk):
    request = CreateTopicsRequest(tuple(NewTopic(n, 1, 1, {}) for n in INVALID_NAMES))
    response = client.call("broker", request)
    assert [(r.name, r.error_code) for r in response.results] == [
        (n, code("INVALID_TOPIC")) for n in INVALID_NAMES
    ]
    assert zk.get_children("/brokers/topics") == []
    metadata = client.call("broker", MetadataRequest(tuple(INVALID_NAMES)))
    assert {t.error_code for t in metadata.topics} == {code("INVALID_TOPIC")}
    assert os.listdir(Path(broker.args[broker.args.index("--data-dir") + 1])) == []


def test_describe_and_delete_remove_partitions_and_data(broker, client, zk):
    assert create(client, "gone", 2).results[0].error_code == 0
    produce(client, "gone", 1, [b"x"])
    description = client.call("broker", DescribeTopicsRequest(("gone", "missing")))
    assert [(t.name, t.error_code, len(t.partitions)) for t in description.topics] == [
        ("gone", 0, 2),
        ("missing", code("UNKNOWN_TOPIC_OR_PARTITION"), 0),
    ]
    data_dir = Path(broker.args[broker.args.index("--data-dir") + 1])
    assert sorted(os.listdir(data_dir)) == ["gone-0", "gone-1"]
    deleted = client.call("broker", DeleteTopicsRequest(("gone", "missing")))
    assert [r.error_code for r in deleted.results] == [0, code("UNKNOWN_TOPIC_OR_PARTITION")]
    assert os.listdir(data_dir) == []
    assert zk.get_children("/brokers/topics") == []
    reply = client.call("gone-1", FetchRequest("gone", 1, 0, 1024, 0, 0))
    assert isinstance(reply, ErrorReply) and reply.code == code("UNKNOWN_ACTOR")


def test_kill_9_then_restart_recovers_the_data(broker, client, zk):
    assert create(client, "durable", 1).results[0].error_code == 0
    for i in range(5):
        produce(client, "durable", 0, [f"v{i}".encode()])
    client.close()
    broker.kill()
    broker.start()  # waits, bounded, for the dead session's registration to expire
    assert zk.exists(f"/brokers/ids/{BROKER_ID}") is not None
    again = RawClient(broker.endpoint)
    try:
        assert fetch_values(again, "durable", 0) == [f"v{i}".encode() for i in range(5)]
    finally:
        again.close()
    assert broker.terminate() == 0, broker.log()


def test_init_producer_id_is_unique_and_continues_past_its_block_after_a_restart(broker, client):
    first, second = (client.call("broker", InitProducerIdRequest()) for _ in range(2))
    assert first == InitProducerIdResponse(error_code=0, producer_id=0, producer_epoch=0)
    assert second == InitProducerIdResponse(error_code=0, producer_id=1, producer_epoch=0)
    client.close()
    assert broker.terminate() == 0, broker.log()

    broker.start()
    again = RawClient(broker.endpoint)
    try:
        after = again.call("broker", InitProducerIdRequest())
    finally:
        again.close()
    assert isinstance(after, InitProducerIdResponse) and after.producer_epoch == 0
    assert after.producer_id == limits.producer_ids_per_block_count  # the next block's first


def test_topics_created_or_deleted_by_others_are_hosted_or_dropped(broker, client, zk):
    TopicStore(zk).create("external", 1, 1, {}, [BROKER_ID])

    def served() -> bool:
        reply = client.call("external-0", FetchRequest("external", 0, 0, 1024, 0, 0))
        return isinstance(reply, FetchResponse)

    assert wait_until(served, 5), "the watch did not spawn the partition actor"
    TopicStore(zk).delete("external")

    def dropped() -> bool:
        reply = client.call("external-0", FetchRequest("external", 0, 0, 1024, 0, 0))
        return isinstance(reply, ErrorReply) and reply.code == code("UNKNOWN_ACTOR")

    assert wait_until(dropped, 5), "the watch did not stop the partition actor"


def test_metadata_for_an_unknown_topic(broker, client, zk):
    metadata = client.call("broker", MetadataRequest(("nope",)))
    assert [(t.name, t.error_code) for t in metadata.topics] == [
        ("nope", code("UNKNOWN_TOPIC_OR_PARTITION"))
    ]
    assert zk.get_children("/brokers/topics") == []


def test_auto_create_topics_on_metadata(zk_hosts, tmp_path):
    process = BrokerProcess(zk_hosts, tmp_path / "data", tmp_path / "broker.log", free_port())
    process.args += ["--auto-create-topics", "--default-partitions", "3"]
    process.start()
    raw = RawClient(process.endpoint)
    try:
        metadata = raw.call("broker", MetadataRequest(("auto",)))
        (topic,) = metadata.topics
        assert topic.error_code == 0 and len(topic.partitions) == 3
        assert produce(raw, "auto", 2, [b"z"]) == 0
        assert fetch_values(raw, "auto", 2) == [b"z"]
    finally:
        raw.close()
        assert process.terminate() == 0, process.log()


def test_settings_from_a_config_file(zk_hosts, tmp_path):
    """`zafka broker --config FILE` with Kafka's setting names, and nothing else."""
    process = BrokerProcess(zk_hosts, tmp_path / "data", tmp_path / "broker.log", free_port())
    config = tmp_path / "server.properties"
    config.write_text(
        f"broker.id={process.broker_id}\nzookeeper.connect={zk_hosts}\n"
        f"listeners={process.endpoint}\nlog.dirs={process.data_dir}\n"
        "auto.create.topics.enable=true\nnum.partitions=2\nzookeeper.session.timeout.ms=2000\n"
    )
    process.args = [*process.args[: process.args.index("--id")], "--config", str(config)]
    process.start()
    raw = RawClient(process.endpoint)
    try:
        (topic,) = raw.call("broker", MetadataRequest(("from-config",))).topics
        assert topic.error_code == 0 and len(topic.partitions) == 2
    finally:
        raw.close()
        assert process.terminate() == 0, process.log()


def test_a_listen_host_other_than_loopback_is_refused(zk_hosts, tmp_path):
    process = BrokerProcess(zk_hosts, tmp_path / "data", tmp_path / "broker.log", free_port())
    process.args[process.args.index("--listen") + 1] = "tcp://0.0.0.0:1234"
    result = subprocess.run(
        process.args, cwd=REPO, capture_output=True, text=True, timeout=STOP_TIMEOUT_S
    )
    assert result.returncode == 2
    assert "127.0.0.1 only" in result.stderr


def metadata_names(client: RawClient) -> list[str]:
    return [t.name for t in client.call("broker", MetadataRequest(None)).topics]


def test_produce_and_fetch_do_not_wait_behind_a_stuck_zookeeper(broker, client, zk_server, zk):
    assert wait_until(lambda: read_controller(zk) == BROKER_ID, EVENT_WAIT_S)  # it fills caches
    assert create(client, "busy", 1).results[0].error_code == 0
    assert wait_until(lambda: metadata_names(client) == ["busy"], EVENT_WAIT_S)
    zk_server.pause()  # ZooKeeper answers nothing: a describe request is stuck in kazoo
    try:
        stuck = client.send("broker", DescribeTopicsRequest(("busy",)))
        # Produce, fetch and metadata (from the controller's updates) are answered while
        # the describe request is still waiting.
        started = time.monotonic()
        assert produce(client, "busy", 0, [b"during"]) == 0
        assert fetch_values(client, "busy", 0) == [b"during"]
        assert metadata_names(client) == ["busy"]
        served_s = time.monotonic() - started
        assert not client.replied(stuck)
    finally:
        zk_server.unpause()
    assert served_s < 1.0, f"produce, fetch and metadata took {served_s:.2f}s"
    # The stuck request is answered once ZooKeeper is back (or its connection was lost).
    late = client.receive(stuck)
    assert isinstance(late, DescribeTopicsResponse) or late.code == code("UNKNOWN_SERVER_ERROR")
