"""The Producer against a real broker process: offsets in order, Kafka's key partitioning,
headers and timestamps stored as sent, callbacks, a full buffer (broker paused) that raises
or blocks and loses nothing, and bad input refused at `send`. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from tests.integration.broker_helpers import BrokerProcess
from tests.integration.clients.helpers import WAIT_S, bare_client, call, create, records_in
from zafka.clients.io import ClientIO
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError
from zafka.storage.records import Record
from zafka.transport.client import FetchRequest
from zafka.transport.murmur2 import key_partition


@pytest.fixture
def reader(bootstrap: str) -> Iterator[ClientIO]:
    """A bare client actor, to create topics and read back what the producer wrote."""
    with bare_client(bootstrap, "reader") as client:
        yield client


def stored(client: ClientIO, topic: str, partition: int) -> list[Record]:
    request = FetchRequest(topic, partition, 0, 1 << 24, 0, 0)
    return records_in(bytes(call(client, f"*/{topic}-{partition}", request).records))


def test_offsets_partitions_headers_and_timestamps(bootstrap: str, reader: ClientIO) -> None:
    create(reader, "orders", 3)
    keys = [b"user-%d" % i for i in range(30)]
    with Producer(bootstrap) as producer:
        futures = [producer.send("orders", b"v%d" % i, key=k) for i, k in enumerate(keys)]
        extra = producer.send("orders", b"h", headers=[("trace", b"7")], partition=1, timestamp=5)
        metas = [f.result(WAIT_S) for f in futures]
        assert extra.result(WAIT_S).partition == 1
    for key, meta in zip(keys, metas, strict=True):
        assert meta.partition == key_partition(key, 3)  # what a Java client would choose
    for p in range(3):
        offsets = [m.offset for m in metas if m.partition == p]
        assert offsets == list(range(len(offsets)))  # in send order, no gaps
        records = stored(reader, "orders", p)
        expected = [(k, b"v%d" % i) for i, k in enumerate(keys) if key_partition(k, 3) == p]
        assert [(r.key, r.value) for r in records if r.value != b"h"] == expected
    last = stored(reader, "orders", 1)[-1]
    assert (last.value, last.timestamp, last.headers) == (b"h", 5, (("trace", b"7"),))


def test_callbacks_run_once_with_the_outcome(bootstrap: str) -> None:
    done = threading.Event()
    seen = []

    def callback(future) -> None:
        seen.append(future.result(0).offset)
        if len(seen) == 50:
            done.set()

    with Producer(bootstrap) as producer:
        for i in range(50):
            producer.send("calls", b"%d" % i, partition=0).add_done_callback(callback)
        assert done.wait(WAIT_S)
        finished = producer.send("calls", b"late", partition=0)
        finished.result(WAIT_S)
        finished.add_done_callback(callback)  # already done: runs at once, here
    assert seen == list(range(51))


def test_bad_records_are_refused_at_send(bootstrap: str) -> None:
    with Producer(bootstrap) as producer:
        for args, kwargs in [
            (("t", "text"), {}),
            (("t", b"v"), {"key": "k"}),
            (("t", b"v"), {"headers": [("h", "not bytes")]}),
            (("t", b"v"), {"headers": [b"no pair"]}),
            (("t", b"v"), {"timestamp": -1}),
        ]:
            with pytest.raises(TypeError):
                producer.send(*args, **kwargs)
        with pytest.raises(ZafkaError) as info:
            producer.send("t", b"v", partition=5)
        assert info.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
        with pytest.raises(ZafkaError) as info:
            producer.send("bad/name", b"v")
        assert info.value.error.name == "INVALID_TOPIC"
        with pytest.raises(ZafkaError) as info:
            producer.send("t", b"x" * (2 << 20))
        assert info.value.error.name == "MESSAGE_TOO_LARGE"
        assert producer.send("t", b"fine").result(WAIT_S).offset == 0  # nothing else went in
    for kwargs in [{"acks": 2}, {"acks": 0}, {"linger_ms": -1}, {"request_timeout_ms": 0}]:
        with pytest.raises(ZafkaError) as info:
            Producer(bootstrap, **kwargs)
        assert info.value.error.name == "INVALID_CONFIG"


def test_a_full_buffer_raises_or_blocks_and_loses_nothing(
    bootstrap: str, broker: BrokerProcess, reader: ClientIO
) -> None:
    value = b"x" * 1000
    with Producer(bootstrap, buffer_bytes_max=20_000, batch_bytes=4_000, block=False) as fast:
        first = fast.send("full", value, partition=0)
        first.result(WAIT_S)  # metadata and producer id are in: the broker answers
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            futures = []
            with pytest.raises(ZafkaError) as info:
                for _ in range(100):
                    futures.append(fast.send("full", value, partition=0))
            assert info.value.error.name == "BUFFER_FULL"
            assert "buffer_bytes_max" in str(info.value)
            assert 5 <= len(futures) < 25
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        offsets = [f.result(WAIT_S).offset for f in futures]
    assert offsets == list(range(1, len(futures) + 1))
    assert len(stored(reader, "full", 0)) == len(futures) + 1


def test_send_blocks_while_full_then_fails_after_max_block(
    bootstrap: str, broker: BrokerProcess
) -> None:
    value = b"x" * 1000
    with Producer(bootstrap, buffer_bytes_max=8_000, batch_bytes=4_000, max_block_ms=300) as slow:
        slow.send("blocking", value, partition=0).result(WAIT_S)
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            futures = []
            with pytest.raises(ZafkaError) as info:
                for _ in range(20):
                    futures.append(slow.send("blocking", value, partition=0))
            assert info.value.error.name == "BUFFER_FULL"
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        assert [f.result(WAIT_S).offset for f in futures] == list(range(1, len(futures) + 1))


def test_close_fails_what_cannot_be_delivered(bootstrap: str, broker: BrokerProcess) -> None:
    producer = Producer(bootstrap, delivery_timeout_ms=60_000)
    producer.send("closing", b"first").result(WAIT_S)
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        pending = producer.send("closing", b"stuck")
        producer.close(timeout=0.5)
        with pytest.raises(ZafkaError) as info:
            pending.result(WAIT_S)
        assert info.value.error.name == "STOPPED"
        with pytest.raises(ZafkaError):
            producer.send("closing", b"after close")
    finally:
        os.kill(broker.pid, signal.SIGCONT)


def test_a_broker_killed_mid_stream_loses_and_duplicates_nothing(
    reader: ClientIO, broker: BrokerProcess
) -> None:
    """kill -9 while records flow, restart on the same port and data: every future succeeds,
    each record is stored once, in send order (retries keep their sequence numbers and the
    restarted broker rebuilds its de-duplication state from the log)."""
    values = [b"%d" % i for i in range(3000)]
    with Producer(f"127.0.0.1:{broker.port}", request_timeout_ms=2_000, linger_ms=1) as producer:
        futures = [producer.send("survive", v, partition=0) for v in values[:1000]]
        futures[-1].result(WAIT_S)
        broker.kill()
        futures += [producer.send("survive", v, partition=0) for v in values[1000:2000]]
        broker.start()  # the same broker: same id, port and data
        futures += [producer.send("survive", v, partition=0) for v in values[2000:]]
        offsets = [f.result(60) for f in futures]
    assert [m.offset for m in offsets] == list(range(len(values)))
    assert [r.value for r in stored(reader, "survive", 0)] == values


def test_acks_0_delivers_everything_under_load(bootstrap: str, reader: ClientIO) -> None:
    """acks=0: nothing is answered, so each batch is done when sent; the next batches of its
    partition must follow without waiting for a reply that never comes."""
    with Producer(bootstrap, acks=0, enable_idempotence=False, batch_bytes=4096) as producer:
        futures = [producer.send("fire", b"%d" % i, partition=0) for i in range(20_000)]
        producer.flush(WAIT_S)
        assert all(f.result(0).offset == -1 for f in futures)  # acks=0: offset unknown
    assert [r.value for r in stored(reader, "fire", 0)] == [b"%d" % i for i in range(20_000)]
