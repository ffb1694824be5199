"""Unmodified Kafka clients (confluent-kafka, kafka-python, aiokafka, from PyPI) against a
real zafka broker's Kafka listener: create a topic, produce keyed records in every codec
with headers, read them all back from the beginning, find offsets by timestamp, delete the
topic. Every wait is bounded."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from confluent_kafka import TopicPartition as CKPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.kafka.conftest import KafkaBroker

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 40
PARTITIONS = 2
DEADLINE_S = 30.0


def rows(codec: str, null_header: bool = True) -> list[tuple[bytes, bytes, list]]:
    """Keyed records with headers; one header value null where the client allows it
    (kafka-python does not)."""
    headers = [("codec", codec.encode()), ("n", None if null_header else b"")]
    return [(f"k{i}".encode(), f"{codec}-{i}".encode() * 3, headers) for i in range(PER_CODEC)]


def expected(null_header: bool = True) -> set[tuple[bytes, bytes, tuple]]:
    return {(k, v, tuple(h)) for codec in CODECS for k, v, h in rows(codec, null_header)}


# --- confluent-kafka (librdkafka) -----------------------------------------------------------


def test_confluent_kafka_round_trip(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("ck", PARTITIONS, 1)])["ck"].result(DEADLINE_S)
    before = int(time.time() * 1000)
    failed: list[object] = []
    for codec in CODECS:
        producer = CKProducer(
            {"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": True}
        )
        for key, value, headers in rows(codec):
            producer.produce(
                "ck", value, key, headers=headers, on_delivery=lambda e, m: e and failed.append(e)
            )
        assert producer.flush(DEADLINE_S) == 0 and failed == [], (codec, failed)
    consumer = CKConsumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([CKPartition("ck", p, 0) for p in range(PARTITIONS)])
    got, deadline = [], time.monotonic() + DEADLINE_S
    while len(got) < len(expected()) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None:
            assert message.error() is None, message.error()
            got.append(message)
    assert {(m.key(), m.value(), tuple(m.headers())) for m in got} == expected()
    assert all(m.timestamp()[1] >= before for m in got)  # CreateTime kept
    by_time = consumer.offsets_for_times([CKPartition("ck", 0, before)], timeout=DEADLINE_S)
    assert by_time[0].offset == 0
    late = consumer.offsets_for_times([CKPartition("ck", 0, 2**62)], timeout=DEADLINE_S)
    assert late[0].offset == -1  # no record that late: Kafka answers -1
    consumer.close()
    admin.delete_topics(["ck"])["ck"].result(DEADLINE_S)
    assert "ck" not in admin.list_topics(timeout=DEADLINE_S).topics


# --- kafka-python ---------------------------------------------------------------------------


def test_kafka_python_round_trip(kafka_broker: KafkaBroker) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic as KPNewTopic

    bootstrap = kafka_broker.kafka_bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([KPNewTopic("kp", PARTITIONS, 1)])
    before = int(time.time() * 1000)
    for codec in CODECS:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            acks="all",
            enable_idempotence=True,
        )
        futures = [producer.send("kp", v, k, headers=h) for k, v, h in rows(codec, False)]
        producer.flush(DEADLINE_S)
        assert all(f.get(DEADLINE_S).offset >= 0 for f in futures)
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000)
    partitions = [TopicPartition("kp", p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    got = list(consumer)
    assert {(r.key, r.value, tuple(r.headers)) for r in got} == expected(False)
    found = consumer.offsets_for_times({partitions[0]: before})[partitions[0]]
    assert found.offset == 0 and found.timestamp >= before
    ends = consumer.end_offsets(partitions)
    assert sum(ends.values()) == len(expected(False))
    consumer.close()
    admin.delete_topics(["kp"])
    admin.close()


# --- aiokafka -------------------------------------------------------------------------------


def test_aiokafka_round_trip(kafka_broker: KafkaBroker) -> None:
    asyncio.run(asyncio.wait_for(_aiokafka(kafka_broker.kafka_bootstrap), DEADLINE_S * 3))


async def _aiokafka(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AIONewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([AIONewTopic("aio", PARTITIONS, 1)])
    for codec in CODECS:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=True,
        )
        await producer.start()
        try:
            for key, value, headers in rows(codec):
                await producer.send("aio", value, key, headers=headers)
            await producer.flush()
        finally:
            await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition("aio", p) for p in range(PARTITIONS)])
        got = []
        while len(got) < len(expected()):
            batches = await consumer.getmany(timeout_ms=1000)
            got += [r for records in batches.values() for r in records]
        assert {(r.key, r.value, tuple(r.headers)) for r in got} == expected()
    finally:
        await consumer.stop()
    await admin.delete_topics(["aio"])
    await admin.close()


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_every_acks_setting_lands_every_record(kafka_broker: KafkaBroker, acks: str) -> None:
    bootstrap = kafka_broker.kafka_bootstrap
    producer = CKProducer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 2})
    for i in range(200):
        producer.produce("acks", str(i).encode(), partition=0)
    assert producer.flush(DEADLINE_S) == 0
    consumer = CKConsumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([CKPartition("acks", 0, 0)])
    got, deadline = [], time.monotonic() + DEADLINE_S
    while len(got) < 200 and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(int(message.value()))
    consumer.close()
    assert got == list(range(200))
