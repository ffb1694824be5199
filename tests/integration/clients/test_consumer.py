"""The Consumer against a real broker process: records in order after seek_to_beginning, a
seek into the middle of a batch, long polling after seek_to_end, offsets_for_times, an
out-of-range offset under each reset policy, pause and resume, seeks that drop prefetched
data, an unknown partition, a prompt close, and iteration. Records are produced with the raw
protocol (one ProduceRequest per batch, so batch boundaries are the test's) or with the
Producer. Every wait is bounded; nothing sleeps to synchronise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.clients.helpers import WAIT_S, bare_client, call, create
from zafka.clients.consumer import Consumer, ConsumerRecord, OffsetAndTimestamp, TopicPartition
from zafka.clients.io import ClientIO
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.client import ProduceRequest

T0 = 1_700_000_000_000


@pytest.fixture
def raw(bootstrap: str) -> Iterator[ClientIO]:
    """A bare client actor: creates topics and produces one batch per call."""
    with bare_client(bootstrap, "raw") as client:
        yield client


@pytest.fixture
def consumers(bootstrap: str) -> Iterator[Callable[..., Consumer]]:
    """Makes consumers on the test's broker, closed at the end of the test."""
    made: list[Consumer] = []

    def make(**config: object) -> Consumer:
        config.setdefault("request_timeout_ms", 10_000)
        consumer = Consumer(bootstrap, **config)  # type: ignore[arg-type]
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def produce(client: ClientIO, topic: str, partition: int, records: list[tuple]) -> int:
    """One batch of `(timestamp, key, value, headers)` records; its base offset."""
    request = ProduceRequest(topic, partition, 1, 10_000, build_batch(records))
    return call(client, f"*/{topic}-{partition}", request).base_offset


def rows(first: int, count: int, ts: int = T0) -> list[tuple]:
    return [(ts + i, b"k%d" % i, b"v%d" % i, None) for i in range(first, first + count)]


def filled(
    raw: ClientIO, consumers: Callable[..., Consumer], topic: str, count: int, **config: object
) -> tuple[Consumer, TopicPartition]:
    """`topic` created with `count` records in partition 0 (one batch), and a consumer made
    with `config` and assigned that partition."""
    create(raw, topic)
    produce(raw, topic, 0, rows(0, count))
    consumer = consumers(**config)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    return consumer, tp


def poll_until(consumer: Consumer, count: int, wait_s: float = WAIT_S) -> list[ConsumerRecord]:
    """Poll until `count` records came (or the time is up: then what came)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + wait_s
    while len(records) < count and time.monotonic() < deadline:
        records += consumer.poll(200)
    return records


def wait_for(check: Callable[[], bool], what: str, consumer: Consumer) -> None:
    """Poll (which drives answers through) until `check()`, within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        consumer.poll(50)


def test_seek_to_beginning_returns_everything_in_order(raw: ClientIO, consumers) -> None:
    create(raw, "orders")
    produce(raw, "orders", 0, rows(0, 10))
    produce(raw, "orders", 0, [(T0 + 10, None, b"v10", (("h", b"x"),)), *rows(11, 4)])
    produce(raw, "orders", 0, rows(15, 10))
    consumer = consumers(max_poll_records=7)
    tp = TopicPartition("orders", 0)
    consumer.assign([("orders", 0)])
    assert consumer.assignment() == {tp}
    consumer.seek_to_beginning()
    records = poll_until(consumer, 25)
    assert [r.offset for r in records] == list(range(25))
    assert records[3] == ConsumerRecord("orders", 0, 3, T0 + 3, b"k3", b"v3", None)
    assert records[10] == ("orders", 0, 10, T0 + 10, None, b"v10", (("h", b"x"),))
    assert [r.value for r in records[20:]] == [b"v%d" % i for i in range(20, 25)]
    assert consumer.position(tp) == 25
    assert consumer.highwater(tp) == 25
    assert consumer.poll(0) == []


def test_seek_into_a_batch_skips_its_earlier_records(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(raw, consumers, "mid", 10)
    consumer.seek(tp, 4)
    records = poll_until(consumer, 6)
    assert [(r.offset, r.value) for r in records] == [(i, b"v%d" % i) for i in range(4, 10)]


def test_seek_drops_prefetched_data(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(
        raw, consumers, "again", 10, max_poll_records=2, auto_offset_reset="earliest"
    )
    assert [r.offset for r in poll_until(consumer, 2)] == [0, 1]
    consumer.seek(tp, 7)
    assert [r.offset for r in poll_until(consumer, 3)] == [7, 8, 9]
    consumer.seek(tp, 1)
    assert [r.offset for r in poll_until(consumer, 2)] == [1, 2]


def test_seek_to_end_then_new_records_come_by_long_polling(raw: ClientIO, consumers) -> None:
    # The broker holds each fetch up to 60 s: only the append releasing it delivers in time.
    consumer, tp = filled(raw, consumers, "tail", 5, fetch_max_wait_ms=60_000)
    consumer.seek_to_end()
    assert consumer.position(tp) == 5
    assert consumer.poll(300) == []  # a fetch from offset 5 is now parked at the broker
    produce(raw, "tail", 0, rows(5, 3))
    started = time.monotonic()
    records = poll_until(consumer, 3, wait_s=10.0)
    assert [r.offset for r in records] == [5, 6, 7]
    assert time.monotonic() - started < 10.0


def test_offsets_for_times(raw: ClientIO, consumers) -> None:
    create(raw, "times")
    produce(raw, "times", 0, rows(0, 3, ts=T0))  # offsets 0-2 at T0..T0+2
    produce(raw, "times", 0, rows(0, 3, ts=T0 + 1000))  # offsets 3-5 at T0+1000..
    consumer = consumers()
    tp = TopicPartition("times", 0)
    found = consumer.offsets_for_times({tp: T0 + 500})
    assert found == {tp: OffsetAndTimestamp(3, T0 + 1000)}
    assert consumer.offsets_for_times({("times", 0): 0}) == {tp: (0, T0)}
    assert consumer.offsets_for_times({tp: T0 + 60_000}) == {tp: None}
    with pytest.raises(ZafkaError) as bad:
        consumer.offsets_for_times({tp: -5})
    assert bad.value.error.name == "INVALID_REQUEST"


def test_out_of_range_offset_with_earliest_starts_over(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(raw, consumers, "oor", 5, auto_offset_reset="earliest")
    consumer.seek(tp, 100)
    assert [r.offset for r in poll_until(consumer, 5)] == [0, 1, 2, 3, 4]


def test_out_of_range_offset_with_latest_jumps_to_the_end(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(raw, consumers, "oor", 5, auto_offset_reset="latest")
    consumer.seek(tp, 100)
    assert consumer.position(tp) == 100
    assert consumer.poll(300) == []  # the broker says out of range; the position resets
    wait_for(lambda: consumer.position(tp) == 5, "the reset to the log end", consumer)
    produce(raw, "oor", 0, rows(5, 2))
    assert [r.offset for r in poll_until(consumer, 2)] == [5, 6]


def test_out_of_range_offset_with_none_raises_until_a_seek(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(raw, consumers, "oor", 5, auto_offset_reset="none")
    with pytest.raises(ZafkaError) as no_position:
        consumer.poll(0)
    assert no_position.value.error.name == "OFFSET_OUT_OF_RANGE"
    consumer.seek(tp, 100)
    with pytest.raises(ZafkaError) as out_of_range:
        poll_until(consumer, 1)
    assert out_of_range.value.error.name == "OFFSET_OUT_OF_RANGE"
    with pytest.raises(ZafkaError):  # still, until the user seeks
        consumer.poll(0)
    consumer.seek(tp, 3)
    assert [r.offset for r in poll_until(consumer, 2)] == [3, 4]


def test_pause_and_resume(raw: ClientIO, consumers) -> None:
    create(raw, "left")
    create(raw, "right")
    produce(raw, "left", 0, rows(0, 6))
    produce(raw, "right", 0, rows(0, 4))
    consumer = consumers(auto_offset_reset="earliest", max_poll_records=2)
    left, right = TopicPartition("left", 0), TopicPartition("right", 0)
    consumer.assign([left, right])
    consumer.pause([left])
    assert consumer.paused() == {left}
    got = poll_until(consumer, 4)
    assert [(r.topic, r.offset) for r in got] == [("right", i) for i in range(4)]
    assert consumer.poll(300) == []  # left is paused, right has no more
    consumer.resume([left])
    assert consumer.paused() == set()
    got = poll_until(consumer, 6)
    assert [(r.topic, r.offset) for r in got] == [("left", i) for i in range(6)]


def test_pause_in_the_middle_of_a_fetch_loses_nothing(raw: ClientIO, consumers) -> None:
    consumer, tp = filled(
        raw, consumers, "half", 6, auto_offset_reset="earliest", max_poll_records=2
    )
    assert [r.offset for r in poll_until(consumer, 2)] == [0, 1]  # 2-5 are prefetched
    consumer.pause([tp])
    assert consumer.poll(300) == []
    assert consumer.position(tp) == 2
    consumer.resume([tp])
    assert [r.offset for r in poll_until(consumer, 4)] == [2, 3, 4, 5]


def test_unknown_partition_and_bad_topic(raw: ClientIO, consumers) -> None:
    create(raw, "small", 1)
    # request_timeout_ms far above position's timeout_ms: the wait shows which one it used.
    consumer = consumers(request_timeout_ms=60_000)
    with pytest.raises(ZafkaError) as bad:
        consumer.assign([("no/such", 0)])
    assert bad.value.error.name == "INVALID_TOPIC"
    tp = ("small", 3)
    consumer.assign([tp])
    assert consumer.poll(300) == []
    started = time.monotonic()
    with pytest.raises(ZafkaError) as unknown:
        consumer.position(tp, timeout_ms=1500)
    assert unknown.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"  # the last error seen
    # It kept trying until its own timeout (never less), not request_timeout_ms (60 s): the
    # upper bound leaves a loaded machine 28 s of slack.
    assert 1.49 < time.monotonic() - started < 30.0
    with pytest.raises(ZafkaError) as unknown:
        consumer.offsets_for_times({tp: 0}, timeout_ms=1000)
    assert unknown.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"


def test_close_wakes_a_blocked_poll_at_once(raw: ClientIO, consumers) -> None:
    create(raw, "quiet")
    consumer = consumers()
    consumer.assign([("quiet", 0)])
    outcome: list[BaseException | list] = []

    def run() -> None:
        try:
            outcome.append(consumer.poll(30_000))
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    # Close only once the poll is under way (it sets _polling before it waits), so the
    # close really has a poll to wake; a close before it would pass for the wrong reason.
    deadline = time.monotonic() + WAIT_S
    while not consumer._polling:
        assert time.monotonic() < deadline, "poll did not start"
        time.sleep(0.001)
    assert outcome == []  # blocked: no record will come for 30 s
    started = time.monotonic()
    consumer.close()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3.0
    assert isinstance(outcome[0], ZafkaError) and outcome[0].error.name == "STOPPED"
    assert consumer.closed
    with pytest.raises(ZafkaError) as closed:
        consumer.poll(0)
    assert closed.value.error.name == "STOPPED"
    consumer.close()  # idempotent


def test_iteration_yields_records_as_they_come_until_closed(bootstrap: str, consumers) -> None:
    consumer = consumers(auto_offset_reset="earliest")
    with Producer(bootstrap) as producer:
        producer.send("stream", b"first", key=b"a").result(WAIT_S)
        consumer.assign([("stream", 0)])
        seen: list[ConsumerRecord] = []
        done = threading.Event()

        def run() -> None:
            for record in consumer:
                seen.append(record)
                if len(seen) == 20:
                    done.set()
            done.set()

        thread = threading.Thread(target=run)
        thread.start()
        for i in range(1, 20):
            producer.send("stream", b"v%d" % i, key=b"a")
        producer.flush()
        assert done.wait(WAIT_S)
    consumer.close()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert [r.offset for r in seen] == list(range(20))
    assert [r.value for r in seen] == [b"first"] + [b"v%d" % i for i in range(1, 20)]
    assert all(r.key == b"a" and r.topic == "stream" for r in seen)
