"""Faults that probes of a single broker process found, each against a real broker and a real
ZooKeeper: the liveness probe, a damaged batch below the recovery point after a kill -9,
and a request that would auto-create thousands of topics. Every wait is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.broker_helpers import (
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
from zafka.storage import checkpoint
from zafka.storage.batch import parse_header
from zafka.storage.records import read_records
from zafka.transport.client import FetchRequest, FetchResponse, MetadataRequest, MetadataResponse
from zafka.transport.codec import encode
from zafka.transport.control import ErrorReply, Ping, Pong
from zafka.transport.envelope import Envelope

pytestmark = pytest.mark.slow


def test_the_protocol_docs_ping_example_is_answered_with_pong(broker):
    client = RawClient(broker.endpoint)
    try:
        assert client.call("broker", Ping(sent_ms=1_700_000_000_000)) == Pong(1_700_000_000_000)
        assert create(client, "pinged", 1).results[0].error_code == 0
        assert client.call("pinged-0", Ping(sent_ms=5)) == Pong(5)  # every actor answers
    finally:
        client.close()
    header = encode(Envelope("client-7/app", "broker-1/broker", Ping(1_700_000_000_000), 1))[0]
    documented = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
    assert " ".join(f"{b:02x}" for b in header[:30]) in documented.read_text()


def _values(reply: FetchResponse) -> list[bytes | None]:
    data, position, values = bytes(reply.records), 0, []
    while position < len(data):
        size = parse_header(data, position).size
        values += [r.value for r in read_records(data[position : position + size])]
        position += size
    return values


def test_a_damaged_batch_below_the_recovery_point_keeps_the_data_after_it(broker):
    client = RawClient(broker.endpoint)
    assert create(client, "kept", 1, {"flush.ms": "100"}).results[0].error_code == 0
    for b in range(20):
        assert produce(client, "kept", 0, [b"v%d" % i for i in range(b * 3, b * 3 + 3)]) == b * 3
    client.close()
    directory = broker.data_dir / "kept-0"
    flushed = wait_until(lambda: checkpoint.read_offset(directory / "recovery-point") == 60, 10)
    assert flushed, "the broker did not move the recovery point to the log end"
    broker.kill()  # kill -9: the active segment is scanned on the way back
    segment = directory / f"{0:020d}.log"
    data = bytearray(segment.read_bytes())
    data[parse_header(data, 0).size - 2] ^= 0x20  # one byte of the first batch's records
    segment.write_bytes(bytes(data))
    broker.start()

    client = RawClient(broker.endpoint)
    try:
        after = client.call("kept-0", FetchRequest("kept", 0, 3, 1 << 20, 0, 0))
        assert isinstance(after, FetchResponse) and after.high_watermark == 60
        assert _values(after) == [b"v%d" % i for i in range(3, 60)]
        bad = client.call("kept-0", FetchRequest("kept", 0, 1, 1 << 20, 0, 0))
        assert isinstance(bad, ErrorReply) and bad.code == code("CORRUPT_MESSAGE")
        assert "offsets 0..2" in bad.message
        assert produce(client, "kept", 0, [b"new"]) == 60  # no offset given out twice
    finally:
        client.close()
    assert "offsets 0..2, below the recovery point 60" in broker.log()


def test_a_metadata_request_for_10000_unknown_topics_leaves_the_broker_serving(zk_hosts, tmp_path):
    process = BrokerProcess(zk_hosts, tmp_path / "data", tmp_path / "broker.log", free_port())
    process.args += ["--auto-create-topics"]
    process.start()
    client = RawClient(process.endpoint)
    try:
        names = tuple(f"auto-{i}" for i in range(limits.collection_items_max))
        reply = client.receive(client.send("broker", MetadataRequest(names)), timeout_s=60)
        assert isinstance(reply, MetadataResponse), reply
        codes = [t.error_code for t in reply.topics]
        assert codes.count(0) == limits.auto_created_topics_per_request_max
        assert codes.count(code("THROTTLING_QUOTA_EXCEEDED")) == len(names) - codes.count(0)
        created = next(t.name for t in reply.topics if t.error_code == 0)
        # Produce and fetch are served at once, on a created topic and on a new one.
        assert produce(client, created, 0, [b"a"], timeout_s=5) == 0
        assert create(client, "normal", 1).results[0].error_code == 0
        assert produce(client, "normal", 0, [b"b"], timeout_s=5) == 0
        assert fetch_values(client, "normal", 0) == [b"b"]
    finally:
        client.close()
        process.kill()
    assert "topics not auto-created" in process.log()
