"""A corrupt batch in a sealed segment, against a real broker process and the SDK Consumer:
the consumer gets every record before it, then `poll` raises CORRUPT_MESSAGE naming the
partition and offset on every call until the user seeks past it; the broker logs the
segment, byte and offsets. Every wait is bounded."""

from __future__ import annotations

import time

import pytest

from tests.integration.clients.helpers import WAIT_S, bare_client, call
from zafka.clients.consumer import Consumer, ConsumerRecord, TopicPartition
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch, parse_header
from zafka.transport.admin import CreateTopicsRequest, NewTopic
from zafka.transport.client import ProduceRequest

BATCHES = 30
PER_BATCH = 3
BAD_BATCH = 2  # the third batch of the first segment: offsets 6..8


def _fill(bootstrap: str, topic: str) -> None:
    """`topic` with small segments (so the first is sealed) and BATCHES batches."""
    with bare_client(bootstrap, "raw") as raw:
        new = NewTopic(topic, 1, 1, {"segment.bytes": "1024"})
        assert call(raw, "*/broker", CreateTopicsRequest((new,))).results[0].error_code == 0
        for b in range(BATCHES):
            rows = [(1000 + i, None, b"v%d" % i, None) for i in range(b * 3, b * 3 + 3)]
            request = ProduceRequest(topic, 0, 1, 10_000, build_batch(rows))
            assert call(raw, f"*/{topic}-0", request).base_offset == b * PER_BATCH


def _flip_a_byte_of_batch(segment_path, index: int) -> None:
    data = bytearray(segment_path.read_bytes())
    position = 0
    for _ in range(index):
        position += parse_header(data, position).size
    size = parse_header(data, position).size
    assert position + size < len(data), "the bad batch must not be the segment's last"
    data[position + size - 2] ^= 0x20  # inside the records: the CRC no longer matches
    segment_path.write_bytes(bytes(data))


def _poll_until_error(consumer: Consumer) -> tuple[list[ConsumerRecord], ZafkaError]:
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            records += consumer.poll(200)
        except ZafkaError as err:
            return records, err
    raise AssertionError(f"no error within {WAIT_S}s; got offsets {[r.offset for r in records]}")


def test_a_corrupt_sealed_batch_is_raised_after_the_records_before_it(broker, bootstrap):
    _fill(bootstrap, "damaged")
    assert broker.terminate() == 0, broker.log()
    _flip_a_byte_of_batch(broker.data_dir / "damaged-0" / f"{0:020d}.log", BAD_BATCH)
    broker.start()

    consumer = Consumer(bootstrap, auto_offset_reset="earliest", request_timeout_ms=10_000)
    try:
        tp = TopicPartition("damaged", 0)
        consumer.assign([tp])
        records, err = _poll_until_error(consumer)
        assert [r.offset for r in records] == list(range(BAD_BATCH * PER_BATCH))
        assert err.error.name == "CORRUPT_MESSAGE" and not err.error.retriable
        assert "damaged-0 at offset 6" in err.detail and "seek" in err.detail
        with pytest.raises(ZafkaError):  # every poll, until the user seeks
            consumer.poll(100)
        consumer.seek(tp, (BAD_BATCH + 1) * PER_BATCH)
        rest: list[ConsumerRecord] = []
        deadline = time.monotonic() + WAIT_S
        while len(rest) < 81 and time.monotonic() < deadline:
            rest += consumer.poll(200)
        assert [r.offset for r in rest] == list(range(9, BATCHES * PER_BATCH))
    finally:
        consumer.close()
    assert "damaged-0" in broker.log() and "offsets 6..8" in broker.log()
