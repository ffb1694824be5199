"""Consumer groups of unmodified Kafka clients on zafka (the classic protocol, client-side
assignors): three members of one client on 6 partitions share them, the two left take over
when one leaves, and a new member resumes from the committed offsets. One member per
thread (confluent-kafka, kafka-python) or task (aiokafka); every wait is bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.kafka.conftest import KafkaBroker
from zafka.clients.consumer import Consumer

PARTITIONS = 6
FIRST, LATER = 600, 60
DEADLINE_S = 60.0
KIP_848 = "confluent-kafka group.protocol=consumer"  # zafka's own groups, KIP-848's protocol
NATIVE_OPTIONS = {"auto_offset_reset": "earliest", "enable_auto_commit": False}
GROUP_OPTIONS = {  # kafka-python's and aiokafka's consumer options (the same names)
    "group_id": "three",
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
}


class Member(threading.Thread):
    """One group member polling in its own thread until told to stop; what it read, its
    assignment as last seen, and a commit after every poll that brought records."""

    def __init__(self, make: Callable[[], object], adapter: str) -> None:
        super().__init__(daemon=True)
        self.make, self.adapter = make, adapter
        self.values: list[int] = []
        self.assigned: set[int] = set()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = self.make()
            poll, assignment, commit, close = ADAPTERS[self.adapter]
            while not self.stop.is_set():
                got = poll(consumer)
                self.values += got
                if got:
                    commit(consumer)
                self.assigned = assignment(consumer)
            close(consumer)
        except BaseException as err:  # reported by the test
            self.error = err


def _ck_poll(c) -> list[int]:
    return [int(m.value()) for m in c.consume(100, 0.2) if m.error() is None]


def _kp_poll(c) -> list[int]:
    return [int(r.value) for rs in c.poll(200).values() for r in rs]


ADAPTERS = {
    "confluent-kafka": (
        _ck_poll,
        lambda c: {tp.partition for tp in c.assignment()},
        lambda c: c.commit(asynchronous=False),
        lambda c: c.close(),
    ),
    "zafka": (
        lambda c: [int(r.value) for r in c.poll(200)],
        lambda c: {tp.partition for tp in c.assignment()},
        lambda c: c.commit(),
        lambda c: c.close(),
    ),
    "kafka-python": (
        _kp_poll,
        lambda c: {tp.partition for tp in c.assignment()},
        lambda c: c.commit(),
        lambda c: c.close(),
    ),
}
ADAPTERS[KIP_848] = ADAPTERS["confluent-kafka"]


def consumer_factory(client: str, bootstrap: str, topic: str) -> Callable[[], object]:
    if client == "zafka":
        return lambda: Consumer(bootstrap, group_id="three", topics=[topic], **NATIVE_OPTIONS)
    if client in ("confluent-kafka", KIP_848):
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": "three",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        if client == KIP_848:  # the coordinator sets the session and heartbeat times
            config["group.protocol"] = "consumer"
        else:
            config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})

        def make_ck():
            consumer = CKConsumer(config)
            consumer.subscribe([topic])
            return consumer

        return make_ck
    from kafka import KafkaConsumer

    return lambda: KafkaConsumer(topic, bootstrap_servers=bootstrap, **GROUP_OPTIONS)


def produce(bootstrap: str, topic: str, values: range) -> None:
    producer = CKProducer({"bootstrap.servers": bootstrap})
    for v in values:
        producer.produce(topic, b"%d" % v, key=b"%d" % v)
    assert producer.flush(DEADLINE_S) == 0


def wait_for(predicate: Callable[[], bool], members: list[Member]) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        errors = [m.error for m in members if m.error]
        assert not errors, errors
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", KIP_848])
def test_three_members_share_rebalance_and_resume(kafka_broker: KafkaBroker, client: str):
    bootstrap = kafka_broker.kafka_bootstrap
    topic = "six"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(DEADLINE_S)
    produce(bootstrap, topic, range(FIRST))
    make = consumer_factory(client, bootstrap, topic)
    members = [Member(make, client) for _ in range(3)]
    for member in members:
        member.start()
    read = lambda group: {v for m in group for v in m.values}  # noqa: E731
    shared = lambda group: sorted(len(m.assigned) for m in group)  # noqa: E731
    assert wait_for(lambda: len(read(members)) == FIRST and shared(members) == [2, 2, 2], members)
    members[2].stop.set()  # leaves the group as it closes
    members[2].join(DEADLINE_S)
    assert wait_for(lambda: shared(members[:2]) == [3, 3], members[:2])
    for member in members[:2]:
        member.stop.set()
        member.join(DEADLINE_S)
    produce(bootstrap, topic, range(FIRST, FIRST + LATER))
    newcomer = Member(make, client)
    newcomer.start()
    assert wait_for(lambda: len(newcomer.values) >= LATER, [newcomer])
    time.sleep(1.0)  # nothing more may come: everything before was committed
    newcomer.stop.set()
    newcomer.join(DEADLINE_S)
    assert sorted(newcomer.values) == list(range(FIRST, FIRST + LATER))


def test_kafka_and_native_members_share_one_group(kafka_broker: KafkaBroker) -> None:
    """KIP-848 members of a Kafka client and zafka's own Consumer in one group: zafka's
    coordinator spreads the partitions over all of them (no partition owned twice), and
    every record is read (at least once: a partition that moves before its first commit is
    read again from the start, as with Kafka)."""
    admin = AdminClient({"bootstrap.servers": kafka_broker.kafka_bootstrap})
    admin.create_topics([NewTopic("mixed", PARTITIONS, 1)])["mixed"].result(DEADLINE_S)
    produce(kafka_broker.kafka_bootstrap, "mixed", range(FIRST))
    members = [
        Member(consumer_factory(KIP_848, kafka_broker.kafka_bootstrap, "mixed"), KIP_848),
        Member(consumer_factory(KIP_848, kafka_broker.kafka_bootstrap, "mixed"), KIP_848),
        Member(consumer_factory("zafka", kafka_broker.bootstrap, "mixed"), "zafka"),
    ]
    for member in members:
        member.start()
    try:
        shared = lambda: sorted(len(m.assigned) for m in members)  # noqa: E731
        read = lambda: {v for m in members for v in m.values}  # noqa: E731
        assert wait_for(lambda: shared() == [2, 2, 2] and len(read()) == FIRST, members)
        assert set().union(*(m.assigned for m in members)) == set(range(PARTITIONS))
    finally:
        for member in members:
            member.stop.set()
            member.join(DEADLINE_S)


def test_aiokafka_members_share_and_resume(kafka_broker: KafkaBroker) -> None:
    asyncio.run(asyncio.wait_for(_aiokafka_group(kafka_broker.kafka_bootstrap), DEADLINE_S * 2))


async def _aiokafka_group(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = "six-aiokafka"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(DEADLINE_S)
    produce(bootstrap, topic, range(FIRST))

    def make() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, **GROUP_OPTIONS)

    consumers = [make() for _ in range(3)]
    for consumer in consumers:
        await consumer.start()
    seen: set[int] = set()
    while len(seen) < FIRST or sorted(len(c.assignment()) for c in consumers) != [2, 2, 2]:
        for consumer in consumers:
            batches = await consumer.getmany(timeout_ms=100)
            seen |= {int(r.value) for rs in batches.values() for r in rs}
            if batches:
                await consumer.commit()
    await consumers[2].stop()
    while sorted(len(c.assignment()) for c in consumers[:2]) != [3, 3]:
        for consumer in consumers[:2]:
            await consumer.getmany(timeout_ms=100)
    for consumer in consumers[:2]:
        await consumer.stop()
    produce(bootstrap, topic, range(FIRST, FIRST + LATER))
    newcomer = make()
    await newcomer.start()
    got: list[int] = []
    deadline = time.monotonic() + 5.0
    while len(got) < LATER or time.monotonic() < deadline:
        batches = await newcomer.getmany(timeout_ms=200)
        got += [int(r.value) for rs in batches.values() for r in rs]
    await newcomer.stop()
    assert sorted(got) == list(range(FIRST, FIRST + LATER))
