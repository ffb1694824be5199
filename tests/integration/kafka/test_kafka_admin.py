"""Kafka clients' admin APIs on zafka: CreatePartitions, DescribeConfigs, ListGroups,
DescribeGroups and DeleteGroups through confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient, for classic groups (Kafka clients' own) and zafka's native groups alike.
Every wait is bounded."""

from __future__ import annotations

import time

from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import ConsumerGroupState, ConsumerGroupType, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType
from kafka.admin import NewPartitions as KPNewPartitions

from tests.integration.kafka.conftest import KafkaBroker
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer

WAIT_S = 30.0


def _create(admin: AdminClient, topic: str, partitions: int, configs: dict | None = None):
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=configs or {})])
    futures[topic].result(WAIT_S)


def test_partitions_grow_and_configs_describe_with_their_source(kafka_broker: KafkaBroker):
    admin = AdminClient({"bootstrap.servers": kafka_broker.kafka_bootstrap})
    _create(admin, "grown", 2, {"retention.ms": "3600000"})
    admin.create_partitions([NewPartitions("grown", 5)])["grown"].result(WAIT_S)
    assert len(admin.list_topics("grown", timeout=WAIT_S).topics["grown"].partitions) == 5
    shrink = admin.create_partitions([NewPartitions("grown", 3)])["grown"]
    assert shrink.exception(WAIT_S) is not None  # a topic never shrinks

    resource = ConfigResource("topic", "grown")
    configs = admin.describe_configs([resource])[resource].result(WAIT_S)
    assert configs["retention.ms"].value == "3600000" and not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete" and configs["cleanup.policy"].is_default
    assert configs["min.insync.replicas"].value == "1"
    broker = ConfigResource("broker", "1")
    assert admin.describe_configs([broker])[broker].result(WAIT_S)["broker.id"].value == "1"

    kp = KafkaAdminClient(bootstrap_servers=kafka_broker.kafka_bootstrap)
    try:
        kp.create_partitions({"grown": KPNewPartitions(6)})
        described = kp.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "grown")])
        assert set(described["topic"]["grown"]) == {"retention.ms"}  # modified ones only
    finally:
        kp.close()
    assert len(admin.list_topics("grown", timeout=WAIT_S).topics["grown"].partitions) == 6


def _wait(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.1)


def test_classic_and_native_groups_listed_described_and_deleted(kafka_broker: KafkaBroker):
    admin = AdminClient({"bootstrap.servers": kafka_broker.kafka_bootstrap})
    _create(admin, "watched", 2)
    with Producer(kafka_broker.bootstrap) as producer:
        for partition in (0, 1):
            producer.send("watched", b"v", partition=partition)
        producer.flush(WAIT_S)
    classic = CKConsumer(
        {
            "bootstrap.servers": kafka_broker.kafka_bootstrap,
            "group.id": "classic",
            "auto.offset.reset": "earliest",
        }
    )
    classic.subscribe(["watched"])
    native = Consumer(kafka_broker.bootstrap, group_id="native", topics=["watched"])
    try:
        _wait(lambda: classic.poll(0.2) is None and classic.assignment(), "classic assignment")
        _wait(lambda: native.poll(200) == [] and native.assignment(), "native assignment")

        def listed() -> dict:
            return {g.group_id: g for g in admin.list_consumer_groups().result(WAIT_S).valid}

        _wait(lambda: {"classic", "native"} <= set(listed()), "both groups listed")
        assert listed()["classic"].state == ConsumerGroupState.STABLE

        described = admin.describe_consumer_groups(["classic", "native", "nobody"])
        groups = {g: f.result(WAIT_S) for g, f in described.items()}
        for name in ("classic", "native"):
            (one,) = groups[name].members
            assert {tp.partition for tp in one.assignment.topic_partitions} == {0, 1}, name
        assert groups["nobody"].state == ConsumerGroupState.DEAD
        assert groups["classic"].type == ConsumerGroupType.CLASSIC
        assert groups["native"].type == ConsumerGroupType.CONSUMER  # ConsumerGroupDescribe

        busy = admin.delete_consumer_groups(["classic"])["classic"]
        assert isinstance(busy.exception(WAIT_S), KafkaException)  # NON_EMPTY_GROUP
        classic.commit(asynchronous=False)
        native.commit()
    finally:
        classic.close()
        native.close()
    for name, future in admin.delete_consumer_groups(["classic", "native"]).items():
        assert future.exception(WAIT_S) is None, name
    left = {g.group_id for g in admin.list_consumer_groups().result(WAIT_S).valid}
    assert not left & {"classic", "native"}
