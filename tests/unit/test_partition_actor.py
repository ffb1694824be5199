"""The partition leader actor with a Runtime and a FakeClock: no sockets, real log files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zafka import limits
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.partition.fetch_waiters import FetchWaiters
from zafka.actors.runtime.actor import Actor
from zafka.actors.runtime.loop import Runtime
from zafka.clock import FakeClock, monotonic_ms
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch, parse_header
from zafka.storage.config import LogConfig
from zafka.storage.records import read_records
from zafka.transport.client import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ProduceRequest,
    ProduceResponse,
)
from zafka.transport.envelope import Envelope
from zafka.transport.names import partition_actor_name

TOPIC = "orders"
T0 = 1_700_000_000_000
TARGET = f"n1/{TOPIC}-0"


class Client(Actor):
    """Calls (or casts to) the partition and records every reply or error it gets."""

    def __init__(self) -> None:
        super().__init__("client")
        self.replies: list[object] = []

    def ask(self, message: object) -> None:
        self.call(TARGET, message, 60_000, self._record)

    def tell(self, message: object) -> None:
        assert self.cast(TARGET, message)

    def _record(self, reply: Envelope | ZafkaError) -> None:
        self.replies.append(reply.message if isinstance(reply, Envelope) else reply)


class Node:
    """One runtime hosting the partition `orders-0` and a client."""

    def __init__(
        self,
        directory: Path,
        clock: FakeClock | None = None,
        max_message_bytes: int = limits.batch_bytes_max,
    ) -> None:
        self.clock = clock or FakeClock()
        self.runtime = Runtime("n1", clock=self.clock)
        factory = lambda: PartitionActor(  # noqa: E731
            TOPIC, 0, directory, LogConfig(), leader_epoch=3, max_message_bytes=max_message_bytes
        )
        self.partition: PartitionActor = self.runtime.spawn(factory)
        self.client: Client = self.runtime.spawn(Client)
        self.runtime.start()

    def settle(self) -> None:
        for _ in range(100):
            if not self.runtime.step():
                return
        raise AssertionError("the runtime never went idle")

    def call(self, message: object) -> object:
        """Call the partition and return its one answer (a message or a ZafkaError)."""
        before = len(self.client.replies)
        self.client.ask(message)
        self.settle()
        assert len(self.client.replies) == before + 1
        return self.client.replies[-1]

    def produce(self, batch: bytes, partition: int = 0, acks: int = 1) -> object:
        return self.call(ProduceRequest(TOPIC, partition, acks, 1000, batch))

    def fetch(self, offset: int, max_wait_ms: int = 0, min_bytes: int = 1) -> object:
        return self.call(fetch_request(offset, max_wait_ms, min_bytes))


def fetch_request(offset: int, max_wait_ms: int = 0, min_bytes: int = 1) -> FetchRequest:
    return FetchRequest(TOPIC, 0, offset, 1_048_576, max_wait_ms, min_bytes)


def batch_of(values: list[bytes], **fields: int) -> bytes:
    return build_batch([(T0 + i * 10, None, v, None) for i, v in enumerate(values)], **fields)


def records_in(data: bytes) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record of every whole batch in a fetch answer."""
    found, position = [], 0
    while position < len(data):
        size = parse_header(data, position).size
        records = read_records(data[position : position + size])
        found += [(r.offset, r.value) for r in records]
        position += size
    return found


def error_name(reply: object) -> str:
    assert isinstance(reply, ZafkaError), reply
    return reply.error.name


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "orders-0")
    yield node
    node.runtime.stop()


def test_the_actor_is_named_after_its_topic_and_partition(node: Node) -> None:
    assert node.partition.name == partition_actor_name(TOPIC, 0) == "orders-0"


def test_produce_then_fetch_returns_the_same_records(node: Node) -> None:
    first = node.produce(batch_of([b"a", b"b"]))
    second = node.produce(batch_of([b"c"]))
    assert first == ProduceResponse(error_code=0, base_offset=0, log_append_time_ms=-1)
    assert isinstance(second, ProduceResponse) and second.base_offset == 2
    reply = node.fetch(0)
    assert isinstance(reply, FetchResponse)
    assert (reply.error_code, reply.high_watermark, reply.log_start_offset) == (0, 3, 0)
    assert records_in(reply.records) == [(0, b"a"), (1, b"b"), (2, b"c")]
    assert parse_header(reply.records).leader_epoch == 3  # stamped with the leader's epoch


def test_an_acks_0_cast_appends_without_a_reply(node: Node) -> None:
    node.client.tell(ProduceRequest(TOPIC, 0, 0, 1000, batch_of([b"x", b"y"])))
    node.settle()
    assert node.client.replies == []
    assert node.partition.log.log_end_offset == 2


def test_an_unknown_acks_value_is_refused(node: Node) -> None:
    assert error_name(node.produce(batch_of([b"x"]), acks=2)) == "INVALID_REQUEST"
    assert node.partition.log.log_end_offset == 0


def test_an_idempotent_retry_gets_the_original_offset_and_is_stored_once(node: Node) -> None:
    node.produce(batch_of([b"before"]))
    batch = batch_of([b"a", b"b"], producer_id=7, producer_epoch=0, base_sequence=0)
    first = node.produce(batch)
    retry = node.produce(batch)
    assert isinstance(first, ProduceResponse) and first.base_offset == 1
    assert retry == first
    assert node.partition.log.log_end_offset == 3
    assert records_in(node.fetch(0).records) == [(0, b"before"), (1, b"a"), (2, b"b")]


def test_a_sequence_gap_is_out_of_order_and_appends_nothing(node: Node) -> None:
    node.produce(batch_of([b"a"], producer_id=7, producer_epoch=0, base_sequence=0))
    gap = batch_of([b"c"], producer_id=7, producer_epoch=0, base_sequence=2)
    assert error_name(node.produce(gap)) == "OUT_OF_ORDER_SEQUENCE"
    assert node.partition.log.log_end_offset == 1


def test_a_corrupt_crc_is_refused_and_appends_nothing(node: Node) -> None:
    corrupt = bytearray(batch_of([b"a", b"b"]))
    corrupt[-1] ^= 0xFF
    assert error_name(node.produce(bytes(corrupt))) == "CORRUPT_MESSAGE"
    assert node.partition.log.log_end_offset == 0
    assert node.fetch(0).records == b""


def test_a_batch_over_max_message_bytes_is_too_large_and_appends_nothing(tmp_path: Path) -> None:
    fits = batch_of([b"x" * 10])
    node = Node(tmp_path / "orders-0", max_message_bytes=len(fits))
    try:
        assert node.produce(fits) == ProduceResponse(0, 0, -1)  # exactly the limit: accepted
        big = batch_of([b"x" * 10, b"y" * 10])
        assert len(big) > len(fits)
        assert error_name(node.produce(big)) == "MESSAGE_TOO_LARGE"
        # An idempotent batch over the limit is refused before its sequence is looked at,
        # so it leaves no producer state behind: sequence 0 is still the one expected.
        over = batch_of([bytes(range(100))], producer_id=4, producer_epoch=0, base_sequence=0)
        assert error_name(node.produce(over)) == "MESSAGE_TOO_LARGE"
        assert node.partition.log.log_end_offset == 1
        assert records_in(node.fetch(0).records) == [(0, b"x" * 10)]
        retry = batch_of([b"z"], producer_id=4, producer_epoch=0, base_sequence=0)
        assert node.produce(retry) == ProduceResponse(0, 1, -1)
    finally:
        node.runtime.stop()


def test_another_partition_is_unknown(node: Node) -> None:
    assert error_name(node.produce(batch_of([b"a"]), partition=1)) == ("UNKNOWN_TOPIC_OR_PARTITION")
    other_topic = ListOffsetsRequest("payments", 0, -1)
    assert error_name(node.call(other_topic)) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert node.partition.log.log_end_offset == 0


def test_a_fetch_at_the_log_end_waits_for_the_next_produce(node: Node) -> None:
    node.produce(batch_of([b"a"]))
    node.client.ask(fetch_request(1, max_wait_ms=5_000))
    node.settle()
    assert node.client.replies == [ProduceResponse(0, 0, -1)]  # the fetch is parked
    assert len(node.partition.waiters) == 1
    node.client.ask(ProduceRequest(TOPIC, 0, 1, 1000, batch_of([b"b", b"c"])))
    node.settle()
    fetched, produced = node.client.replies[1:]
    assert isinstance(fetched, FetchResponse) and fetched.high_watermark == 3
    assert records_in(fetched.records) == [(1, b"b"), (2, b"c")]
    assert produced == ProduceResponse(0, 1, -1)
    assert len(node.partition.waiters) == 0


def test_a_parked_fetch_waits_for_min_bytes(node: Node) -> None:
    small = batch_of([b"a"])
    node.client.ask(fetch_request(0, max_wait_ms=5_000, min_bytes=len(small) + 1))
    node.settle()
    node.produce(small)
    assert len(node.partition.waiters) == 1  # one small batch is not enough
    node.client.ask(ProduceRequest(TOPIC, 0, 1, 1000, batch_of([b"b"])))
    node.settle()
    fetched = node.client.replies[1]
    assert isinstance(fetched, FetchResponse)
    assert records_in(fetched.records) == [(0, b"a"), (1, b"b")]


def test_a_parked_fetch_is_answered_empty_at_its_deadline(node: Node) -> None:
    node.client.ask(fetch_request(0, max_wait_ms=500))
    node.settle()
    node.clock.now_ms += 499
    node.settle()
    assert node.client.replies == []
    node.clock.now_ms += 1
    node.settle()
    assert node.client.replies == [FetchResponse(0, 0, 0, b"")]
    assert len(node.partition.waiters) == 0


def test_fetches_beyond_the_waiter_bound_are_busy(node: Node) -> None:
    node.partition.waiters = FetchWaiters(waiters_max=1)
    node.client.ask(fetch_request(0, max_wait_ms=500))
    node.client.ask(fetch_request(0, max_wait_ms=500))
    node.settle()
    assert [error_name(r) for r in node.client.replies] == ["BUSY"]
    node.clock.now_ms += 500
    node.settle()
    assert node.client.replies[1] == FetchResponse(0, 0, 0, b"")


def test_stopping_answers_parked_fetches(node: Node) -> None:
    node.produce(batch_of([b"a"]))
    node.client.ask(fetch_request(1, max_wait_ms=5_000))
    node.settle()
    node.partition.on_stop()
    node.settle()
    assert node.client.replies[1] == FetchResponse(0, 1, 0, b"")


@pytest.mark.parametrize("offset", [-1, 2, 100])
def test_offsets_outside_the_log_are_out_of_range(node: Node, offset: int) -> None:
    node.produce(batch_of([b"a"]))
    assert error_name(node.fetch(offset)) == "OFFSET_OUT_OF_RANGE"
    assert error_name(node.fetch(offset, max_wait_ms=500)) == "OFFSET_OUT_OF_RANGE"
    assert len(node.partition.waiters) == 0


def test_a_fetch_at_the_log_end_without_waiting_is_empty(node: Node) -> None:
    node.produce(batch_of([b"a"]))
    assert node.fetch(1) == FetchResponse(0, 1, 0, b"")


def test_list_offsets_earliest_latest_and_by_timestamp(node: Node) -> None:
    node.produce(batch_of([b"a", b"b"]))  # timestamps T0, T0 + 10
    node.produce(build_batch([(T0 + 100, None, b"c", None)]))

    def offset_for(timestamp: int) -> tuple[int, int]:
        reply = node.call(ListOffsetsRequest(TOPIC, 0, timestamp))
        assert isinstance(reply, ListOffsetsResponse) and reply.error_code == 0
        return reply.offset, reply.timestamp

    assert offset_for(-2) == (0, -1)
    assert offset_for(-1) == (3, -1)
    assert offset_for(T0) == (0, T0)
    assert offset_for(T0 + 5) == (1, T0 + 10)
    assert offset_for(T0 + 11) == (2, T0 + 100)
    assert offset_for(T0 + 101) == (-1, -1)
    assert error_name(node.call(ListOffsetsRequest(TOPIC, 0, -3))) == "INVALID_REQUEST"


def test_a_restart_keeps_the_data_and_the_producer_state(tmp_path: Path) -> None:
    directory = tmp_path / "orders-0"
    batch = batch_of([b"a", b"b"], producer_id=9, producer_epoch=1, base_sequence=0)
    first = Node(directory)
    first.produce(batch_of([b"plain"]))
    assert first.produce(batch) == ProduceResponse(0, 1, -1)
    first.runtime.stop()

    second = Node(directory)
    try:
        assert second.produce(batch) == ProduceResponse(0, 1, -1)  # still a duplicate
        assert second.partition.log.log_end_offset == 3
        assert records_in(second.fetch(0).records) == [(0, b"plain"), (1, b"a"), (2, b"b")]
        gap = batch_of([b"z"], producer_id=9, producer_epoch=1, base_sequence=5)
        assert error_name(second.produce(gap)) == "OUT_OF_ORDER_SEQUENCE"
        follow = batch_of([b"c"], producer_id=9, producer_epoch=1, base_sequence=2)
        assert second.produce(follow) == ProduceResponse(0, 3, -1)
    finally:
        second.runtime.stop()


def test_the_flush_timer_moves_the_recovery_point(tmp_path: Path) -> None:
    node = Node(tmp_path / "orders-0", FakeClock(monotonic_ms()))
    try:
        node.produce(batch_of([b"a"]))
        assert node.partition.log.recovery_point == 0
        node.clock.now_ms += 2_000  # past fsync_interval_ms (1000) on the runtime's clock
        node.settle()
        assert node.partition.log.recovery_point == 1
    finally:
        node.runtime.stop()
