"""The producer's record accumulator: batching, readiness, sequences, retries, buffer."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zafka import limits
from zafka.clients.accumulator import RecordAccumulator, next_sequence, record_size
from zafka.errors import ZafkaError
from zafka.storage import batch as sb

TP = ("t", 0)
TP1 = ("t", 1)
VALUE = b"v" * 80  # with no key: 100 bytes per record


def make(batch_bytes=1000, linger_ms=10, buffer_bytes_max=10_000, **kw) -> RecordAccumulator:
    return RecordAccumulator(batch_bytes, linger_ms, buffer_bytes_max, False, **kw)


def put(acc, tp=TP, now=0, value=VALUE, key=None, headers=None, ts=None):
    return acc.append(tp[0], tp[1], now if ts is None else ts, key, value, headers, now)


def send(acc, now, in_flight=(), flush=False):
    return acc.drain(acc.ready(now, set(in_flight), flush=flush), now)


def test_a_partition_with_nothing_in_flight_sends_at_once():
    acc = make()
    assert put(acc, now=5) == (0, 0)
    assert acc.ready(5, set()) == [TP]
    [batch] = acc.drain([TP], 5)
    assert (batch.topic, batch.partition, batch.base_sequence, batch.attempts) == ("t", 0, 0, 1)
    assert batch.records == [(5, None, VALUE, None)]
    assert acc.ready(5, set()) == [] and not acc.has_undrained()


def test_records_gather_while_a_request_is_in_flight_until_linger():
    acc = make(linger_ms=10)
    put(acc, now=0)
    send(acc, 0)
    for i in range(3):
        assert put(acc, now=2 + i) == (1, i)
    assert acc.ready(11, {TP}) == []  # created at 2: lingers until 12
    assert acc.next_deadline_ms(11) == 12
    assert acc.ready(12, {TP}) == [TP]
    assert acc.ready(3, set()) == [TP]  # the request completed: no linger when idle
    assert acc.ready(3, {TP}, flush=True) == [TP]  # flush: no linger either
    [second] = acc.drain([TP], 12)
    assert len(second.records) == 3 and second.base_sequence == 1


def test_a_full_batch_is_ready_while_in_flight():
    acc = make(batch_bytes=1000, linger_ms=1000)
    put(acc)
    send(acc, 0)
    ids = [put(acc, now=1) for _ in range(11)]  # 10 fit in 1000 bytes, the 11th opens a batch
    assert ids[:10] == [(1, i) for i in range(10)] and ids[10] == (2, 0)
    assert acc.ready(1, {TP}) == [TP]
    [full] = acc.drain([TP], 1)
    assert full.batch_id == 1 and full.size_bytes == 1000
    assert acc.ready(1, {TP}) == []  # the new batch lingers


def test_a_record_larger_than_a_batch_travels_alone():
    acc = make(batch_bytes=1000, linger_ms=1000)
    put(acc)
    assert put(acc, value=b"x" * 2000) == (1, 0)
    assert put(acc) == (2, 0)
    batches = send(acc, 0, in_flight=[TP]) + send(acc, 0, in_flight=[TP])
    assert [len(b.records) for b in batches] == [1, 1]
    assert [b.batch_id for b in batches] == [0, 1]


def test_drain_takes_one_batch_per_partition_in_order():
    acc = make(batch_bytes=200)
    for _ in range(5):
        put(acc)
    put(acc, TP1)
    batches = acc.drain([TP1, TP, ("t", 9)], 0)
    assert [(b.partition, b.batch_id, b.base_sequence) for b in batches] == [(1, 3, 0), (0, 0, 0)]
    assert [b.base_sequence for b in send(acc, 0)] == [2]
    assert [b.base_sequence for b in send(acc, 0)] == [4]


def test_sizes_are_estimated_per_record():
    acc = make()
    put(acc, key=b"k" * 16, value=b"v" * 100)
    put(acc, key=None, value=None)
    put(acc, key=b"k", value=b"v", headers=[("h", b"12345"), ("é", b"")])
    expected = 20 + 116 + 20 + (20 + 2 + 5 + (11 + 1 + 5) + (11 + 2))
    assert acc.buffered_bytes == expected
    assert record_size(b"k", b"v", [("h", b"12345"), ("é", b"")]) == 20 + 2 + 5 + 17 + 13


@pytest.mark.parametrize("codec", [sb.CODEC_NONE, sb.CODEC_ZSTD])
@pytest.mark.parametrize("headers", [False, True])
def test_the_estimate_bounds_the_built_batch(codec, headers):
    rng = random.Random(codec * 2 + headers)
    for _ in range(40):
        acc = make(batch_bytes=rng.choice([100, 1000, 16384, 200_000]), buffer_bytes_max=10**7)
        for _ in range(rng.randrange(1, 300)):
            key = rng.randbytes(rng.randrange(0, 40)) if rng.random() < 0.8 else None
            value = rng.randbytes(rng.choice([0, 1, 31, 32, 255, 256, 70_000]))
            hdrs = None
            if headers and rng.random() < 0.5:
                hdrs = [("é" * rng.randrange(40), rng.randbytes(rng.randrange(300)))] * 2
            ts = rng.choice([0, 2**40, 2**62])
            acc.append("t", 0, ts, key, value if rng.random() < 0.9 else None, hdrs, 0)
        for batch in send(acc, 0, flush=True) + send(acc, 0, flush=True):
            built = sb.build_batch(batch.records, codec=codec)
            assert len(built) <= batch.size_bytes + limits.batch_overhead_bytes


def test_buffer_full_raises_and_changes_nothing():
    acc = make(batch_bytes=1000, buffer_bytes_max=1000)
    for _ in range(10):
        put(acc)
    assert not acc.has_room(100) and acc.has_room(0)
    with pytest.raises(ZafkaError) as info:
        put(acc)  # a new batch would be needed
    assert info.value.error.name == "BUFFER_FULL" and info.value.retriable
    assert "buffer_bytes_max=1000" in str(info.value) and "block=True" in str(info.value)
    assert acc.buffered_bytes == 1000
    [batch] = send(acc, 0)
    assert len(batch.records) == 10
    with pytest.raises(ZafkaError, match="BUFFER_FULL"):
        put(acc)  # drained but in flight: still held
    acc.complete(batch, True)
    assert acc.has_room(1000) and put(acc) == (1, 0)


def test_buffer_full_while_appending_to_an_open_batch():
    acc = RecordAccumulator(1000, 10, 1000, True)
    for _ in range(9):
        put(acc)
    [batch] = send(acc, 0)
    put(acc)
    with pytest.raises(ZafkaError, match="has_room") as info:
        put(acc)  # the open batch has room, the buffer has not
    assert info.value.error.name == "BUFFER_FULL"
    acc.complete(batch, True)
    assert put(acc) == (1, 1)


def test_a_record_that_can_never_fit_is_too_large():
    acc = make(batch_bytes=1000, buffer_bytes_max=5000)
    with pytest.raises(ZafkaError) as info:
        put(acc, value=b"x" * 5000)
    assert info.value.error.name == "MESSAGE_TOO_LARGE" and not info.value.retriable
    big = make(batch_bytes=1000, buffer_bytes_max=10**8)
    with pytest.raises(ZafkaError, match="MESSAGE_TOO_LARGE"):
        put(big, value=b"x" * (1 << 20))
    assert big.buffered_bytes == 0 and not big.has_undrained()


def test_bad_configuration_is_refused():
    for args in [(19, 0, 99), (1 << 20, 0, 1 << 30), (1000, -1, 1000), (1000, 0, 999)]:
        with pytest.raises(ZafkaError, match="INVALID_CONFIG"):
            RecordAccumulator(*args, False)


def test_sequences_count_records_per_partition():
    acc = make(batch_bytes=300)
    for i in range(7):
        put(acc, TP if i % 2 else TP1)
    got = []
    while acc.has_undrained():
        got += [(b.partition, b.base_sequence, len(b.records)) for b in send(acc, 0, flush=True)]
    assert sorted(got) == [(0, 0, 3), (1, 0, 3), (1, 3, 1)]
    assert acc.sequence_of("t", 0) == 3 and acc.sequence_of("t", 1) == 4
    assert acc.sequence_of("t", 7) == 0


def test_sequences_wrap_like_kafka():
    assert next_sequence(2**31 - 1, 1) == 0
    assert next_sequence(2**31 - 2, 3) == 1
    assert next_sequence(5, 3) == 8
    acc = make()
    put(acc)
    acc._partitions[TP].next_sequence = 2**31 - 2
    put(acc, now=0)
    put(acc, now=0)
    [batch] = send(acc, 0)
    assert batch.base_sequence == 2**31 - 2 and batch.last_sequence == 0
    assert acc.sequence_of(*TP) == 1


def test_a_retried_batch_keeps_its_sequence_and_goes_first():
    acc = make(batch_bytes=300, linger_ms=1000)
    for _ in range(3):
        put(acc)
    [b1] = send(acc, 0)
    for _ in range(4):
        put(acc)  # fills b2 (3 records), opens b3
    [b2] = send(acc, 0, in_flight=[TP])
    assert (b1.base_sequence, b2.base_sequence) == (0, 3)
    acc.requeue(b2)  # in any order: batches go back by age
    acc.requeue(b1)
    assert acc.in_flight_batches == 0
    assert [b.batch_id for b in send(acc, 0)] == [b1.batch_id]
    assert b1.base_sequence == 0 and b1.attempts == 2 and len(b1.records) == 3
    acc.complete(b1, True)
    assert (acc.delivered_records, acc.failed_records) == (3, 0)
    [again] = send(acc, 0)
    assert again is b2 and again.base_sequence == 3
    [b3] = send(acc, 0, flush=True)
    assert b3.base_sequence == 6 and len(b3.records) == 1


def test_a_retry_waits_for_its_backoff_and_for_its_partitions_requests():
    acc = make(batch_bytes=200, linger_ms=0)
    for _ in range(5):
        put(acc)
    [b1] = send(acc, 0)
    [b2] = send(acc, 0, in_flight=[TP])  # full batches pipeline
    acc.requeue(b2, ready_at_ms=50)  # b2 failed first (b1 is still in flight)
    assert acc.ready(10, set()) == [] and acc.ready(10, set(), flush=True) == []
    assert acc.drain([TP], 10) == []  # the open batch behind it waits too
    assert acc.next_deadline_ms(10) == 50
    assert acc.ready(50, {TP}) == []  # b1 is in flight: b2 must not race it
    assert acc.ready(50, set()) == [TP]
    acc.requeue(b1)
    assert acc.drain(acc.ready(50, set()), 50) == [b1]
    acc.complete(b1, True)
    assert acc.drain(acc.ready(50, set()), 50) == [b2]
    assert [b.base_sequence for b in send(acc, 50)] == [4]


def test_next_deadline_is_the_earliest_linger_or_backoff_in_the_future():
    acc = make(linger_ms=10)
    assert acc.next_deadline_ms(0) is None
    put(acc, TP, now=3)  # backoffs: see the retry test
    put(acc, TP1, now=5)
    assert acc.next_deadline_ms(0) == 13
    assert acc.next_deadline_ms(13) == 15  # what is due now is ready()'s business
    assert acc.next_deadline_ms(15) is None


def test_expire_removes_old_batches_from_the_front():
    closed = []
    acc = make(batch_bytes=200, on_batch_closed=lambda t, p: closed.append((t, p)))
    for now in (0, 0, 5, 5, 9):
        put(acc, now=now)  # batches created at 0, 5, 9
    assert acc.expire(9, 10) == []
    assert [b.created_ms for b in acc.expire(10, 10)] == [0]
    assert [b.created_ms for b in acc.expire(15, 10)] == [5]
    assert acc.failed_records == 4 and acc.buffered_bytes == 100
    gone = acc.expire(19, 10)
    assert [b.created_ms for b in gone] == [9] and closed[-1] == TP
    assert not acc.has_undrained() and acc.buffered_bytes == 0


def test_abort_all_returns_undrained_batches_and_refuses_more():
    acc = make(batch_bytes=200)
    for _ in range(3):
        put(acc)
    put(acc, TP1)
    [in_flight] = acc.drain([TP], 0)
    error = ZafkaError("STOPPED", "producer closed")
    aborted = acc.abort_all(error)
    assert sorted((b.partition, len(b.records)) for b in aborted) == [(0, 1), (1, 1)]
    with pytest.raises(ZafkaError, match="producer closed"):
        put(acc)
    assert acc.requeue(in_flight) is False
    assert acc.buffered_bytes == 0 and acc.failed_records == 4
    with pytest.raises(ValueError, match="not in flight"):  # dropped by requeue: done
        acc.complete(in_flight, True)


def test_the_partitioner_hears_of_every_closed_open_batch():
    closed = []
    acc = make(batch_bytes=200, on_batch_closed=lambda t, p: closed.append((t, p)))
    put(acc)
    put(acc)
    assert closed == []
    put(acc)  # the first batch is full: closed
    assert closed == [TP]
    send(acc, 0)  # the full batch was closed already
    assert closed == [TP]
    send(acc, 0)  # the open batch is drained: closed
    assert closed == [TP, TP]
    put(acc)
    put(acc)  # abort_on_full: the full batch closes, the record is not appended
    assert acc.append("t", 0, 0, None, VALUE, None, 0, abort_on_full=True) is None
    assert closed == [TP, TP, TP] and acc.buffered_bytes == 500  # none completed
    assert acc.append("t", 0, 0, None, VALUE, None, 0, abort_on_full=True) == (3, 0)


def _produce(log: list, batch) -> str:
    """A partition leader with Kafka's idempotent de-duplication by sequence."""
    if batch.base_sequence == len(log):
        log.extend(batch.records)
        return "ok"
    if batch.base_sequence + len(batch.records) <= len(log):
        assert log[batch.base_sequence :][: len(batch.records)] == batch.records
        return "duplicate"
    return "out_of_order"


@settings(max_examples=150, stateful_step_count=60, deadline=None)
class AccumulatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.acc = RecordAccumulator(600, 20, 6000, False)
        self.now = 0
        self.sent: dict[tuple, list] = {}  # appended records per partition, in order
        self.ids: dict[tuple[int, int], tuple] = {}  # (batch_id, index) -> record
        self.acked: set[tuple[int, int]] = set()
        self.logs: dict[tuple, list] = {}  # what the leaders wrote
        self.network: list = []  # drained batches, in flight
        self.numbered: dict[tuple, int] = {}  # records given sequence numbers, per partition
        self.sequences: dict[int, int] = {}  # batch_id -> its base sequence
        self.requeued: dict[int, tuple] = {}  # batch_id -> partition, while waiting again

    @rule(p=st.integers(0, 2), size=st.integers(0, 700))
    def append(self, p, size):
        tp = ("t", p)
        record = (self.now, b"%d" % len(self.ids), b"x" * size, None)
        try:
            where = self.acc.append(*tp, *record, self.now)
        except ZafkaError as exc:
            assert exc.error.name == "BUFFER_FULL"
            return
        assert where not in self.ids
        self.ids[where] = record
        self.sent.setdefault(tp, []).append(record)

    @rule(ms=st.integers(0, 30))
    def tick(self, ms):
        self.now += ms

    @rule(flush=st.booleans())
    def send(self, flush):
        in_flight = {(b.topic, b.partition) for b in self.network}
        drained = self.acc.drain(self.acc.ready(self.now, in_flight, flush), self.now)
        for batch in drained:
            tp = (batch.topic, batch.partition)
            older = [i for i, p in self.requeued.items() if p == tp and i < batch.batch_id]
            assert not older, "a retried batch goes before every younger one"
            self.requeued.pop(batch.batch_id, None)
            if batch.attempts == 1:  # numbered now: right after the previous batch
                assert batch.base_sequence == self.numbered.get(tp, 0)
                self.numbered[tp] = batch.base_sequence + len(batch.records)
                self.sequences[batch.batch_id] = batch.base_sequence
            assert batch.base_sequence == self.sequences[batch.batch_id]
        self.network += drained

    @precondition(lambda self: self.network)
    @rule(
        i=st.integers(0, 100),
        fate=st.sampled_from(["arrive", "arrive", "lost_reply", "lost_request"]),
        backoff=st.integers(0, 20),
    )
    def respond(self, i, fate, backoff):
        batch = self.network.pop(i % len(self.network))
        outcome = "lost"
        if fate != "lost_request":
            outcome = _produce(self.logs.setdefault((batch.topic, batch.partition), []), batch)
        if fate == "arrive" and outcome in ("ok", "duplicate"):
            self.acc.complete(batch, True)
            for index in range(len(batch.records)):
                assert (batch.batch_id, index) not in self.acked
                self.acked.add((batch.batch_id, index))
                assert self.ids[batch.batch_id, index] == batch.records[index]
        else:
            self.acc.requeue(batch, self.now + backoff)
            self.requeued[batch.batch_id] = (batch.topic, batch.partition)

    @invariant()
    def buffer_within_limit_and_logs_in_order(self):
        assert 0 <= self.acc.buffered_bytes <= self.acc.buffer_bytes_max
        for tp, log in self.logs.items():
            assert log == self.sent[tp][: len(log)]

    def teardown(self):
        for _ in range(10_000):
            if not self.network and not self.acc.has_undrained():
                break
            self.now += 100
            self.send(flush=True)
            while self.network:
                self.respond(0, "arrive", 0)
        else:
            raise AssertionError("did not settle")
        assert self.acc.buffered_bytes == 0 and self.acc.in_flight_batches == 0
        assert self.acked == set(self.ids)
        for tp, records in self.sent.items():
            assert self.logs[tp] == records  # each once, in order, sequences 0, 1, ...
            assert self.acc.sequence_of(*tp) == len(records)


test_any_interleaving_delivers_every_record_once_in_order = AccumulatorMachine.TestCase


def test_reset_sequences_numbers_undrained_batches_again_from_zero():
    acc = make(batch_bytes=200)
    for _ in range(3):
        put(acc)
    [first] = send(acc, 0)
    assert first.base_sequence == 0
    with pytest.raises(ValueError):
        acc.reset_sequences()  # its numbers belong to the old producer id
    assert acc.requeue(first)
    acc.reset_sequences()
    drained = send(acc, 1)
    assert [(b.base_sequence, len(b.records)) for b in drained] == [(0, 2)]
    acc.complete(drained[0], True)
    assert [b.base_sequence for b in send(acc, 2)] == [2]


def test_busy_partitions_gather_and_retries_wait_for_every_request_in_flight():
    acc = make(batch_bytes=200)
    put(acc)
    assert acc.ready(0, busy=set(), in_flight={TP}) == [TP]  # not busy: sent at once
    assert acc.ready(0, busy={TP}, in_flight={TP}) == []  # busy: gathers (linger 10)
    [first] = send(acc, 0)
    put(acc)
    [second] = acc.drain([TP], 1)
    assert acc.sent_before_and_not_done(second)  # `first` is still in flight
    assert not acc.sent_before_and_not_done(first)
    assert acc.requeue(first, ready_at_ms=5)
    assert acc.ready(5, busy=set(), in_flight={TP}) == []  # `second` is still in flight
    assert acc.requeue(second)
    assert acc.ready(5, busy=set(), in_flight=set()) == [TP]
    assert acc.sent_before_and_not_done(second)  # `first` waits for its retry
