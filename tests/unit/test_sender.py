"""SenderActor and SendState over the deterministic memory network, against a scripted broker
that checks sequences as the real one does (`ProducerStateTable`): requests in flight per
partition, records gathering while a partition is busy, retries in order after a retriable
error, a new producer id after a batch fails for good or the broker forgets the producer,
metadata refreshes that back off, delivery timeouts and acks=0. One virtual clock; no
sockets, no sleeps. Records are appended as `Producer.send` appends them, and the nudge is
posted to the I/O runtime as it posts it."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

import pytest

from zafka import limits
from zafka.actors.partition.producer_state import Action, ProducerStateTable
from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.clients.accumulator import RecordAccumulator
from zafka.clients.delivery import UNKNOWN_OFFSET, BatchResult, RecordFuture
from zafka.clients.metadata import NO_LEADER
from zafka.clients.producer import Producer
from zafka.clients.sender import (
    PLAIN_IN_FLIGHT_REQUESTS,
    SenderActor,
    SenderConfig,
    SendState,
)
from zafka.errors import ZafkaError
from zafka.storage.batch import parse_header
from zafka.storage.records import read_records
from zafka.transport.client import (
    BrokerInfo,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    ProduceRequest,
    ProduceResponse,
    TopicMetadata,
)
from zafka.transport.envelope import Envelope
from zafka.transport.memory import MemoryNetwork, MemoryTransport

TOPIC = "orders"
TP = (TOPIC, 0)
ENDPOINT = "mem://broker-1"
FIRST_PRODUCER_ID = 1000
T0 = 1_700_000_000_000  # record timestamps: the epoch ms of the virtual clock's 0


class Broker(Actor):
    """The broker actor: metadata for `orders` (one partition led by `leader`), producer ids."""

    def __init__(self) -> None:
        super().__init__("broker")
        self.leader = 1
        self.metadata_ms: list[int] = []  # when each MetadataRequest arrived
        self.producer_ids: list[int] = []  # handed out, in order
        self.on_init_producer_id = lambda: None  # a test's probe, run as a request arrives
        self.init_error_codes: deque[int] = deque()  # answered in the response's error_code

    def on_metadata_request(self, envelope: Envelope) -> MetadataResponse:
        self.metadata_ms.append(self._runtime().now_ms())
        parts = (PartitionMetadata(0, self.leader, 0, (1,), (1,)),)
        return MetadataResponse((BrokerInfo(1, ENDPOINT),), (TopicMetadata(TOPIC, 0, parts),))

    def on_init_producer_id_request(self, envelope: Envelope) -> InitProducerIdResponse:
        self.on_init_producer_id()
        if self.init_error_codes:
            return InitProducerIdResponse(self.init_error_codes.popleft(), -1, -1)
        producer_id = FIRST_PRODUCER_ID + len(self.producer_ids)
        self.producer_ids.append(producer_id)
        return InitProducerIdResponse(0, producer_id, 0)

    HANDLERS = handlers(
        {MetadataRequest: on_metadata_request, InitProducerIdRequest: on_init_producer_id_request}
    )


@dataclass(frozen=True)
class Arrival:
    """A Produce request as the partition received it."""

    producer_id: int
    base_sequence: int
    values: tuple[bytes, ...]


class Partition(Actor):
    """`orders-0`: a log with the real producer-state checks. While `hold` is set, requests
    park until `release`; `errors` scripts the answers to the next ones processed (an error
    name, or None: process it as the broker would)."""

    def __init__(self) -> None:
        super().__init__("orders-0")
        self.hold = True
        self.parked: list[Envelope] = []
        self.errors: deque[str | None] = deque()
        self.arrivals: list[Arrival] = []
        self.answers: list[str | int] = []  # per processed request: error name or base offset
        self.log: list[bytes] = []  # values, by offset
        self.producers = ProducerStateTable()
        self.max_message_bytes = 1 << 20

    def on_produce_request(self, envelope: Envelope) -> object:
        request: ProduceRequest = envelope.message
        h = parse_header(request.batch)
        values = tuple(r.value for r in read_records(request.batch))
        self.arrivals.append(Arrival(h.producer_id, h.base_sequence, values))  # type: ignore[arg-type]
        if envelope.correlation_id == 0:  # acks=0: a cast, never answered
            self._process(request)
            return None
        if self.hold:
            self.parked.append(envelope)
            return DEFERRED
        return self._process(request)

    def _process(self, request: ProduceRequest) -> ProduceResponse:
        try:
            error = self.errors.popleft() if self.errors else None
            if error is not None:
                raise ZafkaError(error, "scripted")
            if len(request.batch) > self.max_message_bytes:
                raise ZafkaError("MESSAGE_TOO_LARGE", f"{len(request.batch)} bytes")
            h = parse_header(request.batch)
            decision = self.producers.check(
                h.producer_id, h.producer_epoch, h.base_sequence, h.record_count
            )
            if decision.action is Action.DUPLICATE:
                base = decision.base_offset
            else:
                base = len(self.log)
                self.log.extend(r.value for r in read_records(request.batch))  # type: ignore[misc]
                self.producers.record(
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    h.record_count,
                    base,
                    len(self.log) - 1,
                )
        except ZafkaError as err:
            self.answers.append(err.error.name)
            raise
        self.answers.append(base)
        return ProduceResponse(0, base, -1)

    def release(self, count: int | None = None, lose: int = -1) -> None:
        """Process the first `count` parked requests (all by default), in arrival order, and
        answer them; the one at index `lose` is processed but its answer is lost."""
        parked = self.parked[:count]
        del self.parked[: len(parked)]
        for i, envelope in enumerate(parked):
            try:
                answer: object = self._process(envelope.message)
            except ZafkaError as err:
                if i != lose:
                    self.reply_error(envelope, err)
                continue
            if i != lose:
                self.reply(envelope, answer)

    def drop_parked(self) -> None:
        """The parked requests are lost: never processed, never answered."""
        self.parked.clear()

    HANDLERS = handlers({ProduceRequest: on_produce_request})


class Harness:
    def __init__(
        self,
        *,
        idempotent: bool = True,
        acks: int = -1,
        leader: int = 1,
        init_error_codes: tuple[int, ...] = (),
        linger_ms: int = 5,
        request_timeout_ms: int = 1_000,
        delivery_timeout_ms: int = 60_000,
        retry_backoff_ms: int = limits.retry_backoff_ms,
    ) -> None:
        self.network = MemoryNetwork(seed=5)
        server = MemoryTransport(self.network, "broker-1")
        server.bind(ENDPOINT)
        client = MemoryTransport(self.network, "producer-test")
        clock = lambda: self.network.now_ms  # noqa: E731
        self.server = Runtime("broker-1", server, clock=clock)
        self.client = Runtime("producer-test", client, clock=clock)
        self.broker: Broker = self.server.spawn(Broker)  # type: ignore[assignment]
        self.broker.leader = leader
        self.broker.init_error_codes.extend(init_error_codes)
        self.partition: Partition = self.server.spawn(Partition)  # type: ignore[assignment]
        self.state = SendState(RecordAccumulator(16_384, linger_ms, 1 << 20, True))
        self.state.max_in_flight_requests = (
            limits.idempotent_in_flight_batches_max if idempotent else PLAIN_IN_FLIGHT_REQUESTS
        )
        config = SenderConfig(
            acks, idempotent, request_timeout_ms, delivery_timeout_ms, retry_backoff_ms
        )
        self.client.spawn(lambda: SenderActor([ENDPOINT], client, config, self.state))
        self.server.start()
        self.client.start()
        self.first_actor = self.actor
        # The topic's metadata, as Producer._wait_for_topic asks for it before the first send.
        self.client.post(lambda: self.actor.refresh_metadata([TOPIC], lambda error: None))
        self.settle()
        assert self.state.partition_counts == {TOPIC: 1}

    @property
    def actor(self) -> SenderActor:
        return self.client.actor("client")  # type: ignore[return-value]

    def settle(self, ms: int = 0) -> None:
        """Run both runtimes until idle; then move the clock by `ms` and run them again."""
        for advance in (0, ms):
            self.network.advance(advance)
            for _ in range(200):
                if self.server.step() + self.client.step() == 0:
                    break
        assert self.actor is self.first_actor, "the sender crashed (see the log)"

    def run_for(self, ms: int, step_ms: int = 10) -> None:
        for _ in range(ms // step_ms):
            self.settle(step_ms)

    def send(self, value: bytes) -> RecordFuture:
        """`Producer.send` to partition 0: append under the lock, then post a nudge when a
        batch opened or the partition can take another request; then run the runtimes."""
        state = self.state
        with state.lock:
            now = self.network.now_ms
            where = state.accumulator.append(TOPIC, 0, T0 + now, None, value, None, now)
            assert where is not None
            batch_id, index = where
            result = state.results.get(batch_id)
            if result is None:
                result = state.results[batch_id] = BatchResult(TOPIC, 0)
            if not state.nudged and (index == 0 or TP not in state.busy):
                state.nudged = True
                self.client.post(lambda: self.actor.nudge())
        self.settle()
        return RecordFuture(result, index, T0 + now)

    def sequences(self, start: int = 0) -> list[tuple[int, int, tuple[bytes, ...]]]:
        return [(a.producer_id, a.base_sequence, a.values) for a in self.partition.arrivals[start:]]


def offsets(futures: list[RecordFuture]) -> list[int]:
    return [future.result(0).offset for future in futures]


def error_name(future: RecordFuture) -> str:
    error = future.exception(0)
    assert error is not None
    return error.error.name


# --- (a) requests in flight, gathering ------------------------------------------------------


def test_five_requests_in_flight_with_idempotence_then_records_gather() -> None:
    h = Harness()
    futures = [h.send(b"%d" % i) for i in range(5)]
    pid = FIRST_PRODUCER_ID
    assert h.sequences() == [(pid, i, (b"%d" % i,)) for i in range(5)]  # each sent at once
    assert h.state.in_flight == {TP: 5} and TP in h.state.busy
    futures += [h.send(b"5"), h.send(b"6")]
    h.run_for(100)  # past linger_ms: ready, but the partition is at its limit
    assert len(h.partition.arrivals) == 5
    h.partition.release(1)
    h.settle()
    assert h.sequences(5) == [(pid, 5, (b"5", b"6"))]  # gathered into one batch
    assert h.state.in_flight == {TP: 5}
    h.partition.hold = False
    h.partition.release()
    h.settle()
    assert offsets(futures) == list(range(7))
    assert h.partition.log == [b"%d" % i for i in range(7)]
    assert h.state.in_flight == {} and not h.state.busy and h.state.idle()
    assert h.broker.producer_ids == [pid]


def test_one_request_in_flight_without_idempotence() -> None:
    h = Harness(idempotent=False, acks=1)
    futures = [h.send(b"%d" % i) for i in range(4)]
    assert h.sequences() == [(-1, -1, (b"0",))]  # no producer id, no sequence
    assert h.state.in_flight == {TP: 1} and TP in h.state.busy
    h.partition.release()
    h.settle()
    assert h.sequences(1) == [(-1, -1, (b"1", b"2", b"3"))]  # gathered while busy
    h.partition.release()
    h.settle()
    assert offsets(futures) == [0, 1, 2, 3]
    assert h.broker.producer_ids == []  # never asked for one


def test_a_busy_partition_holds_its_lingered_batch_until_an_answer() -> None:
    h = Harness(idempotent=False, acks=1, linger_ms=50)
    first = h.send(b"0")
    h.send(b"1")
    h.run_for(200)  # lingered long enough, but one request in flight: it waits
    assert len(h.partition.arrivals) == 1
    h.partition.hold = False
    h.partition.release()
    h.settle()
    assert h.sequences(1) == [(-1, -1, (b"1",))]
    assert first.result(0).offset == 0


# --- (b) a retriable error while later batches are in flight --------------------------------


@pytest.mark.parametrize("failure", ["REQUEST_TIMED_OUT", "NOT_LEADER_OR_FOLLOWER", "lost"])
def test_a_retriable_error_retries_it_and_the_later_batches_in_order(failure: str) -> None:
    h = Harness()
    first = h.send(b"0")
    h.partition.release()
    h.settle()
    assert first.result(0).offset == 0  # the broker knows the producer now
    futures = [h.send(b"%d" % i) for i in (1, 2, 3)]
    pid = FIRST_PRODUCER_ID
    assert h.sequences(1) == [(pid, i, (b"%d" % i,)) for i in (1, 2, 3)]
    done: list[int] = []
    for i, future in enumerate(futures):
        future.add_done_callback(lambda _, i=i: done.append(i))
    if failure == "lost":  # the request never reaches the log; the call times out
        h.partition.parked.pop(0)
    else:
        h.partition.errors.append(failure)
    h.partition.release()
    h.settle()
    expected_answers = [0] + ([] if failure == "lost" else [failure])
    assert h.partition.answers == expected_answers + ["OUT_OF_ORDER_SEQUENCE"] * 2
    assert not any(f.done() for f in futures)
    h.partition.hold = False
    h.run_for(2_000)
    assert offsets(futures) == [1, 2, 3]
    assert done == [0, 1, 2]  # completed in order
    assert h.partition.log == [b"0", b"1", b"2", b"3"]
    assert h.sequences(4) == [(pid, i, (b"%d" % i,)) for i in (1, 2, 3)]  # same numbers
    assert h.broker.producer_ids == [pid]  # no sequence hole: the same producer id
    assert len(h.broker.metadata_ms) == 2  # the leader error, or no answer, asked again
    assert h.state.idle()


def test_a_retry_of_a_batch_that_landed_gets_its_original_offset() -> None:
    h = Harness()
    futures = [h.send(b"%d" % i) for i in range(3)]
    h.partition.release(lose=0)  # all three appended; the first answer is lost
    h.settle()
    assert offsets(futures[1:]) == [1, 2] and not futures[0].done()
    h.partition.hold = False
    h.run_for(2_000)  # the call times out; the retry is recognised as a duplicate
    assert offsets(futures) == [0, 1, 2]
    assert h.partition.log == [b"0", b"1", b"2"]
    assert h.partition.answers == [0, 1, 2, 0]


# --- (c) a batch that fails for good while later ones are in flight -------------------------


def test_a_batch_failing_for_good_retries_the_later_ones_under_a_new_producer_id() -> None:
    h = Harness()
    h.partition.max_message_bytes = 2_000
    first = h.send(b"0")
    h.partition.release()
    h.settle()
    large = h.send(random.Random(1).randbytes(4_000))  # incompressible: over the limit
    later = [h.send(b"2"), h.send(b"3")]
    pid = FIRST_PRODUCER_ID
    assert [(a.producer_id, a.base_sequence) for a in h.partition.arrivals] == [
        (pid, 0),
        (pid, 1),
        (pid, 2),
        (pid, 3),
    ]
    in_flight_at_init: list[dict] = []
    h.broker.on_init_producer_id = lambda: in_flight_at_init.append(dict(h.state.in_flight))
    h.partition.release(1)  # the large one fails for good...
    h.settle()
    assert h.partition.answers == [0, "MESSAGE_TOO_LARGE"]
    assert error_name(large) == "MESSAGE_TOO_LARGE"
    assert in_flight_at_init == []  # ...but two requests are still in flight: no new id yet
    after = h.send(b"4")  # waits for the new producer id
    h.partition.release()
    h.settle()
    assert h.partition.answers[2:] == ["OUT_OF_ORDER_SEQUENCE"] * 2
    assert h.broker.producer_ids == [pid, pid + 1]  # asked once nothing was in flight
    assert in_flight_at_init == [{}]
    h.partition.hold = False
    h.run_for(1_000)
    assert first.result(0).offset == 0
    assert offsets([*later, after]) == [1, 2, 3]
    assert h.sequences(4) == [(pid + 1, i, (v,)) for i, v in enumerate([b"2", b"3", b"4"])]
    assert h.partition.log == [b"0", b"2", b"3", b"4"]
    assert h.state.idle()


# --- (d) the broker forgot the producer -----------------------------------------------------


def test_unknown_producer_id_takes_a_new_one_and_retries() -> None:
    h = Harness()
    first = h.send(b"0")
    h.partition.release()
    h.settle()
    h.partition.producers = ProducerStateTable()  # evicted: sequence 1 is not a start
    futures = [h.send(b"1"), h.send(b"2")]
    h.partition.release()
    h.settle()
    assert h.partition.answers == [0] + ["UNKNOWN_PRODUCER_ID"] * 2
    h.partition.hold = False
    h.run_for(1_000)
    pid = FIRST_PRODUCER_ID
    assert h.broker.producer_ids == [pid, pid + 1]
    assert first.result(0).offset == 0
    assert offsets(futures) == [1, 2]
    assert h.sequences(3) == [(pid + 1, 0, (b"1",)), (pid + 1, 1, (b"2",))]
    assert h.partition.log == [b"0", b"1", b"2"]


# --- (e) a leaderless partition -------------------------------------------------------------


def test_a_leaderless_partition_refreshes_metadata_with_a_doubling_backoff() -> None:
    h = Harness(leader=NO_LEADER)
    h.partition.hold = False
    assert len(h.broker.metadata_ms) == 1  # the topic's first lookup
    future = h.send(b"0")
    h.run_for(10_000)
    times = h.broker.metadata_ms[1:]
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[:4] == [100, 200, 400, 800]  # retry_backoff_ms, doubling...
    assert set(gaps[4:]) == {limits.retry_backoff_ms_max}  # ...up to a second
    assert 10 <= len(times) <= 16  # a handful in 10 s, not a flood
    assert h.partition.arrivals == [] and not future.done()
    h.broker.leader = 1  # a leader is elected: the next refresh finds it
    h.run_for(1_000)
    assert future.result(0).offset == 0
    count = len(h.broker.metadata_ms)
    h.run_for(5_000)
    assert len(h.broker.metadata_ms) == count  # no refresh without a reason


# --- (f) delivery timeout -------------------------------------------------------------------


def test_undelivered_records_fail_with_request_timed_out_after_the_delivery_timeout() -> None:
    h = Harness(leader=NO_LEADER, delivery_timeout_ms=3_000)
    futures = [h.send(b"0"), h.send(b"1")]
    h.run_for(2_990)
    assert not any(f.done() for f in futures)
    h.run_for(3_000 + limits.retry_backoff_ms_max - 2_990)  # noticed at the next wake-up
    assert [error_name(f) for f in futures] == ["REQUEST_TIMED_OUT"] * 2
    assert h.state.idle() and h.state.accumulator.buffered_bytes == 0


def test_a_batch_without_answers_fails_once_the_delivery_timeout_passed() -> None:
    h = Harness(request_timeout_ms=1_000, delivery_timeout_ms=3_500)
    future = h.send(b"0")
    for _ in range(10):  # every attempt is lost
        h.run_for(500)
        h.partition.drop_parked()
    assert error_name(future) == "REQUEST_TIMED_OUT"
    assert 3 <= len(h.partition.arrivals) <= 4  # retried meanwhile, after each timeout
    assert h.state.idle() and h.state.in_flight == {}


def test_a_batch_in_flight_fails_by_its_delivery_timeout() -> None:
    h = Harness(request_timeout_ms=30_000, delivery_timeout_ms=10_000)
    future = h.send(b"0")
    h.partition.drop_parked()  # lost: no answer will come
    h.run_for(11_000, step_ms=100)
    done_by_the_deadline = future.done()
    h.run_for(20_000, step_ms=100)
    assert error_name(future) == "REQUEST_TIMED_OUT"
    assert done_by_the_deadline  # at 10 s, not at the call's 30 s


# --- producer ids ---------------------------------------------------------------------------


def test_an_init_producer_id_response_with_an_error_is_asked_again() -> None:
    h = Harness(init_error_codes=(7,))  # REQUEST_TIMED_OUT, in the response
    h.partition.hold = False
    future = h.send(b"0")
    h.run_for(1_000)
    assert future.result(0).offset == 0
    assert h.sequences() == [(FIRST_PRODUCER_ID, 0, (b"0",))]


# --- (g) acks=0 -----------------------------------------------------------------------------


def test_acks_0_sends_without_waiting() -> None:
    h = Harness(idempotent=False, acks=0)
    futures = [h.send(b"%d" % i) for i in range(3)]
    assert h.sequences() == [(-1, -1, (b"%d" % i,)) for i in range(3)]  # one by one, at once
    assert [f.result(0).offset for f in futures] == [UNKNOWN_OFFSET] * 3
    assert h.partition.parked == [] and h.partition.log == [b"0", b"1", b"2"]
    assert h.state.in_flight == {} and h.state.idle()
    assert h.actor._pending == {}  # no call awaits an answer


# --- the Producer's side --------------------------------------------------------------------


def test_the_producer_refuses_idempotence_with_acks_0() -> None:
    with pytest.raises(ZafkaError, match="INVALID_CONFIG"):
        Producer("127.0.0.1:9", acks=0)


@pytest.mark.parametrize(("idempotent", "limit"), [(True, 5), (False, 1)])
def test_the_producer_sets_the_in_flight_limit(idempotent: bool, limit: int) -> None:
    producer = Producer("127.0.0.1:9", acks=1, enable_idempotence=idempotent)
    try:
        assert producer._state.max_in_flight_requests == limit
    finally:
        producer.close(0)
