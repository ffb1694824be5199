"""Kafka clients and zafka's own clients on the same topics: a record written by one is read
back identical (key, value, headers, timestamp, offset) by the other; with 3 brokers, a Kafka
client bootstrapped at one broker produces to the leaders on all of them; and the listener
survives bad input, answering what it can and closing what it cannot parse. Every wait is
bounded."""

from __future__ import annotations

import datetime
import io
import socket
import struct
import time
from pathlib import Path

from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from confluent_kafka import TopicPartition as CKPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v12.response import FetchResponse
from kio.schema.request_header.v2.header import RequestHeader
from kio.schema.response_header.v1.header import ResponseHeader
from kio.serial import entity_reader, entity_writer

from tests.integration.kafka.conftest import KafkaBroker, kafka_brokers
from zafka import limits
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer

DEADLINE_S = 30.0
T0 = 1_700_000_000_000


def kafka_read(bootstrap: str, topic: str, partitions: int, count: int) -> list:
    consumer = CKConsumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([CKPartition(topic, p, 0) for p in range(partitions)])
    got, deadline = [], time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None:
            assert message.error() is None, message.error()
            got.append(message)
    consumer.close()
    return got


def test_native_records_read_identical_by_a_kafka_client(kafka_broker: KafkaBroker) -> None:
    with Admin(kafka_broker.bootstrap) as admin:
        admin.create_topic("native", 1, 1)
    sent = [(b"k%d" % i, b"v%d" % i, (("h", b"%d" % i),), T0 + i) for i in range(50)]
    with Producer(kafka_broker.bootstrap) as producer:
        for key, value, headers, timestamp in sent:
            producer.send("native", value, key=key, headers=list(headers), timestamp=timestamp)
        producer.flush(DEADLINE_S)
    got = kafka_read(kafka_broker.kafka_bootstrap, "native", 1, len(sent))
    as_read = [(m.key(), m.value(), tuple(m.headers()), m.timestamp()[1], m.offset()) for m in got]
    assert as_read == [(k, v, h, t, i) for i, (k, v, h, t) in enumerate(sent)]


def test_kafka_records_read_identical_by_the_native_consumer(kafka_broker: KafkaBroker) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_broker.kafka_bootstrap})
    admin.create_topics([NewTopic("fromkafka", 1, 1)])["fromkafka"].result(DEADLINE_S)
    producer = CKProducer({"bootstrap.servers": kafka_broker.kafka_bootstrap, "linger.ms": 5})
    sent = [(b"k%d" % i, b"v%d" % i, (("h", b"%d" % i), ("n", None)), T0 + i) for i in range(50)]
    for key, value, headers, timestamp in sent:
        producer.produce(
            "fromkafka", value, key, partition=0, headers=list(headers), timestamp=timestamp
        )
    assert producer.flush(DEADLINE_S) == 0
    with Consumer(kafka_broker.bootstrap) as consumer:
        consumer.assign([("fromkafka", 0)])
        consumer.seek(("fromkafka", 0), 0)
        got, deadline = [], time.monotonic() + DEADLINE_S
        while len(got) < len(sent) and time.monotonic() < deadline:
            got += consumer.poll(1000)
    assert [(r.key, r.value, r.headers, r.timestamp, r.offset) for r in got] == [
        (k, v, h, t, i) for i, (k, v, h, t) in enumerate(sent)
    ]


def test_a_client_bootstrapped_at_one_broker_reaches_every_leader(
    zk_hosts: str, tmp_path: Path
) -> None:
    with kafka_brokers(zk_hosts, tmp_path, (1, 2, 3)) as brokers:
        first = brokers[0].kafka_bootstrap
        admin = AdminClient({"bootstrap.servers": first})
        admin.create_topics([NewTopic("spread", 3, 1)])["spread"].result(DEADLINE_S)
        deadline = time.monotonic() + DEADLINE_S
        leaders: set[int] = set()
        while len(leaders) < 3 and time.monotonic() < deadline:
            topic = admin.list_topics("spread", timeout=DEADLINE_S).topics["spread"]
            leaders = {p.leader for p in topic.partitions.values() if p.leader >= 0}
        assert leaders == {1, 2, 3}
        ports = {b.kafka_port for b in brokers}
        advertised = admin.list_topics(timeout=DEADLINE_S).brokers.values()
        assert {b.port for b in advertised} == ports
        producer = CKProducer({"bootstrap.servers": first, "acks": "all"})
        for i in range(60):
            producer.produce("spread", b"%d" % i, partition=i % 3)
        assert producer.flush(DEADLINE_S) == 0
        got = kafka_read(first, "spread", 3, 60)
        assert sorted(int(m.value()) for m in got) == list(range(60))


def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, return what comes back until the broker closes or 2 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as sock:
        sock.sendall(data)
        sock.settimeout(2.0)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_bad_input_is_answered_or_closed_and_the_broker_stays_up(kafka_broker: KafkaBroker):
    port = kafka_broker.kafka_port
    too_big = struct.pack(">i", limits.kafka_request_bytes_max + 1)
    assert _exchange(port, too_big + b"\0" * 64) == b""  # closed before reading on
    garbage = b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\xff\xff"  # Metadata v12, bad body
    assert _exchange(port, struct.pack(">i", len(garbage)) + garbage) == b""
    unserved = struct.pack(">hhi", 29, 1, 77) + b"\0" * 8  # DescribeAcls v1: not served
    answer = _exchange(port, struct.pack(">i", len(unserved)) + unserved)
    assert struct.unpack_from(">ii", answer) == (len(answer) - 4, 77)
    assert struct.unpack_from(">h", answer, 12)[0] == 35  # after throttle time: UNSUPPORTED_VERSION
    burst = b"".join(
        struct.pack(">ihhi", 16, 29, 1, n) + b"\0" * 8 for n in range(1000)
    )  # 1,000 pipelined requests for an API not served: each answered, in order
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as sock:
        sock.sendall(burst)
        answers = b""
        while len(answers) < 1000 * len(answer):
            chunk = sock.recv(1 << 20)
            assert chunk, "closed before answering the burst"
            answers += chunk
    ids = [
        struct.unpack_from(">i", answers, at + 4)[0] for at in range(0, len(answers), len(answer))
    ]
    assert ids == list(range(1000))
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as sock:
        sock.sendall(b"\x00\x00\x01")  # a truncated size prefix, then the client goes away
    admin = AdminClient({"bootstrap.servers": kafka_broker.kafka_bootstrap})
    assert 1 in admin.list_topics(timeout=DEADLINE_S).brokers  # still serving
    assert kafka_broker.process.alive()


def test_a_leader_killed_under_an_acks_all_kafka_producer_loses_nothing(
    zk_hosts: str, tmp_path: Path
) -> None:
    with kafka_brokers(zk_hosts, tmp_path, (1, 2, 3)) as brokers:
        bootstrap = ",".join(b.kafka_bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = NewTopic("durable", 1, 3, config={"min.insync.replicas": "2"})
        admin.create_topics([topic])["durable"].result(DEADLINE_S)
        leader = admin.list_topics("durable", timeout=DEADLINE_S).topics["durable"].partitions[0]
        config = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60_000,
        }
        producer = CKProducer(config)
        acked: list[int] = []
        failed: list[object] = []

        def delivered(err, message) -> None:
            (failed if err else acked).append(err or int(message.value()))

        for i in range(3000):
            producer.produce("durable", b"%d" % i, partition=0, on_delivery=delivered)
            producer.poll(0)
            if i == 1000:
                producer.flush(DEADLINE_S)
                next(b for b in brokers if b.process.broker_id == leader.leader).process.kill()
        assert producer.flush(DEADLINE_S * 2) == 0
        assert failed == [] and len(acked) == 3000
        survivor = next(b for b in brokers if b.process.alive())
        got = kafka_read(survivor.kafka_bootstrap, "durable", 1, 3000)
        values = [int(m.value()) for m in got]
        assert sorted(values) == list(range(3000))  # every acked record, none twice


def _fetch_frame(topic: str, partitions: int, max_wait_ms: int) -> bytes:
    """A Fetch v12 of `partitions` from offset 0, size-prefixed, as a Kafka client sends it."""
    request = FetchRequest(
        max_wait=datetime.timedelta(milliseconds=max_wait_ms),
        min_bytes=1,
        topics=(
            FetchTopic(
                topic=topic,
                partitions=tuple(
                    FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20)
                    for p in range(partitions)
                ),
            ),
        ),
        forgotten_topics_data=(),
    )
    out = io.BytesIO()
    header = RequestHeader(
        request_api_key=1, request_api_version=12, correlation_id=5, client_id="test"
    )
    entity_writer(RequestHeader)(out, header)
    entity_writer(FetchRequest)(out, request)
    return struct.pack(">i", out.tell()) + out.getvalue()


def test_a_long_poll_answers_every_partition_without_error(kafka_broker: KafkaBroker) -> None:
    """A fetch waiting on two partitions, completed by a record arriving on one: the other is
    in the answer too, empty and without error (not REQUEST_TIMED_OUT)."""
    with Admin(kafka_broker.bootstrap) as admin:
        admin.create_topic("waiting", partitions=2)
    with socket.create_connection(("127.0.0.1", kafka_broker.kafka_port), timeout=DEADLINE_S) as s:
        s.sendall(_fetch_frame("waiting", 2, max_wait_ms=20_000))
        with Producer(kafka_broker.bootstrap) as producer:
            producer.send("waiting", b"now", partition=0)
            producer.flush(DEADLINE_S)
        (size,) = struct.unpack(">i", _recv_exactly(s, 4))
        answer = _recv_exactly(s, size)
    header, at = entity_reader(ResponseHeader)(answer, 0)
    response, _ = entity_reader(FetchResponse)(answer, at)
    assert header.correlation_id == 5 and response.error_code == ErrorCode.none
    (topic,) = response.responses
    by_partition = {p.partition_index: p for p in topic.partitions}
    assert {p: q.error_code for p, q in by_partition.items()} == {0: 0, 1: 0}
    assert b"now" in bytes(by_partition[0].records) and not by_partition[1].records


def test_fetch_answers_stay_within_the_clients_byte_limits(kafka_broker: KafkaBroker) -> None:
    """Stored batches are compressed and go out uncompressed: the limits count what is sent.
    100,000 records of 100 bytes are ~13 MB as Kafka sends them and a few hundred KB stored; a
    client that takes answers of ~1 MB at most reads them all, in order."""
    with Admin(kafka_broker.bootstrap) as admin:
        admin.create_topic("compressible", 1, 1)
    count = 100_000
    with Producer(kafka_broker.bootstrap) as producer:
        for i in range(count):
            producer.send("compressible", b"x" * 100, key=b"%d" % i)
        producer.flush(DEADLINE_S)
    limit = 1 << 20
    consumer = CKConsumer(
        {
            "bootstrap.servers": kafka_broker.kafka_bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "fetch.max.bytes": limit,
            "receive.message.max.bytes": limit + 64 * 1024,
        }
    )
    consumer.assign([CKPartition("compressible", 0, 0)])
    keys, deadline = [], time.monotonic() + DEADLINE_S
    while len(keys) < count and time.monotonic() < deadline:
        for message in consumer.consume(1000, 1.0):
            assert message.error() is None, message.error()
            keys.append(message.key())
    consumer.close()
    assert keys == [b"%d" % i for i in range(count)]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        assert chunk, "the broker closed the connection"
        out += chunk
    return out
