"""FetcherActor over the deterministic memory network, against a scripted broker: the next
fetch is in flight while the user handles the last answer, leader errors refresh metadata and
retry after a backoff, an unknown partition does not make a request loop, out-of-range resets,
and a crashed actor's replacement carries on. One virtual clock; no sockets, no sleeps."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.clients.drain import ConsumerRecord
from zafka.clients.fetch_state import EARLIEST, RESET_POLICIES, FetchState
from zafka.clients.fetcher import FetcherActor, FetcherConfig
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.client import (
    BrokerInfo,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)
from zafka.transport.envelope import Envelope
from zafka.transport.memory import MemoryNetwork, MemoryTransport
from zafka.transport.names import TopicPartition

TP = TopicPartition("orders", 0)
ENDPOINT = "mem://broker-1"


def batch(base: int, count: int) -> bytes:
    return build_batch(
        [(i, None, b"v%d" % i, None) for i in range(base, base + count)], base_offset=base
    )


class Broker(Actor):
    """The broker actor: metadata for `orders` with `partitions` partitions, led by 1."""

    def __init__(self, partitions: int = 1) -> None:
        super().__init__("broker")
        self.partitions = partitions
        self.requests = 0

    def on_metadata_request(self, envelope: Envelope) -> MetadataResponse:
        self.requests += 1
        parts = tuple(PartitionMetadata(p, 1, 0, (1,), (1,)) for p in range(self.partitions))
        return MetadataResponse((BrokerInfo(1, ENDPOINT),), (TopicMetadata("orders", 0, parts),))

    HANDLERS = handlers({MetadataRequest: on_metadata_request})


class Partition(Actor):
    """`orders-0`: serves one stored batch per fetch, or the next scripted error; parks a
    fetch at the log end until `release`."""

    def __init__(self, batches: list[bytes]) -> None:
        super().__init__("orders-0")
        self.batches = batches
        self.errors: deque[ZafkaError] = deque()
        self.fetches: list[int] = []
        self.list_offsets: list[int] = []
        self.parked: list[Envelope] = []

    @property
    def end(self) -> int:
        return 10 * len(self.batches)  # the tests store batches of 10

    def answer(self, offset: int) -> FetchResponse:
        if not 0 <= offset <= self.end:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", f"{offset} outside [0, {self.end}]")
        data = next((b for i, b in enumerate(self.batches) if 10 * i + 9 >= offset), b"")
        return FetchResponse(0, self.end, 0, data)

    def on_fetch_request(self, envelope: Envelope) -> object:
        offset = envelope.message.offset
        self.fetches.append(offset)
        if self.errors:
            raise self.errors.popleft()
        if offset == self.end:
            self.parked.append(envelope)
            return DEFERRED
        return self.answer(offset)

    def release(self) -> None:
        parked, self.parked = self.parked, []
        for envelope in parked:
            self.reply(envelope, self.answer(envelope.message.offset))

    def on_list_offsets_request(self, envelope: Envelope) -> ListOffsetsResponse:
        timestamp = envelope.message.timestamp
        self.list_offsets.append(timestamp)
        return ListOffsetsResponse(0, 0 if timestamp == EARLIEST else self.end, -1)

    HANDLERS = handlers(
        {FetchRequest: on_fetch_request, ListOffsetsRequest: on_list_offsets_request}
    )


class Harness:
    def __init__(
        self,
        batches: list[bytes],
        partitions: int = 1,
        reset: str = "earliest",
        buffer_bytes: int = 1,  # fetch_max_bytes as the state sees it: 1, one answer fills it
    ):
        self.network = MemoryNetwork(seed=3)
        server = MemoryTransport(self.network, "broker-1")
        server.bind(ENDPOINT)
        client = MemoryTransport(self.network, "consumer-test")
        clock = lambda: self.network.now_ms  # noqa: E731
        self.runtimes = [Runtime("broker-1", server, clock=clock)]
        self.runtimes.append(Runtime("consumer-test", client, clock=clock))
        self.broker: Broker = self.runtimes[0].spawn(lambda: Broker(partitions))  # type: ignore[assignment]
        self.partition: Partition = self.runtimes[0].spawn(lambda: Partition(batches))  # type: ignore[assignment]
        self.cond = threading.Condition()
        self.state = FetchState(RESET_POLICIES[reset], 100, 1000, 500, buffer_bytes)
        config = FetcherConfig(1 << 20, 500, 1, 5000, 100)
        self.client = self.runtimes[1]
        self.client.spawn(lambda: FetcherActor([ENDPOINT], client, config, self.state, self.cond))
        for runtime in self.runtimes:
            runtime.start()
        self.settle()

    @property
    def actor(self) -> FetcherActor:
        return self.client.actor("client")  # type: ignore[return-value]

    def settle(self, ms: int = 0) -> None:
        """Run both runtimes until idle; then move the clock by `ms` and run them again."""
        for advance in (0, ms):
            self.network.advance(advance)
            for _ in range(200):
                if sum(runtime.step() for runtime in self.runtimes) == 0:
                    break

    def run_for(self, ms: int, step_ms: int = 10) -> None:
        for _ in range(ms // step_ms):
            self.settle(step_ms)

    def user(self, fn) -> object:  # type: ignore[no-untyped-def]
        """Something the user's thread does, under the lock, then a kick."""
        with self.cond:
            result = fn()
            self.actor.kick()
        self.settle()
        return result

    def poll(self, quota: int = 1000) -> list[ConsumerRecord]:
        with self.cond:
            ready, kick = self.state.claim()
            if kick:
                self.actor.kick()
        out: list[ConsumerRecord] = []
        for ps in ready:
            drain = ps.drain
            position = drain.take(out, ps.position, quota - len(out))  # type: ignore[union-attr,arg-type]
            with self.cond:
                self.state.commit(ps, drain, position)  # type: ignore[arg-type]
        self.settle()
        return out


def test_the_next_fetch_is_in_flight_while_the_user_handles_the_last() -> None:
    h = Harness([batch(0, 10), batch(10, 10), batch(20, 10)])
    h.user(lambda: h.state.assign([TP]))
    assert h.partition.list_offsets == [EARLIEST]
    assert h.partition.fetches == [0]  # answered, waiting for the user: nothing more fetched
    with h.cond:
        ready, kick = h.state.claim()  # poll starts on it...
        assert kick
        h.actor.kick()
    h.settle()
    assert h.partition.fetches == [0, 10]  # ...and the next fetch is out before any record
    assert h.state.partitions[TP].position == 0
    out: list[ConsumerRecord] = []
    (ps,) = ready
    with h.cond:
        h.state.commit(ps, ps.drain, ps.drain.take(out, 0, 1000))  # type: ignore[union-attr]
    assert [r.offset for r in out] == list(range(10))
    assert [r.offset for r in h.poll()] == list(range(10, 20))
    assert h.partition.fetches == [0, 10, 20]
    assert [r.offset for r in h.poll()] == list(range(20, 30))
    assert h.partition.fetches == [0, 10, 20, 30]
    assert h.partition.parked  # a long poll at the log end
    h.partition.batches.append(batch(30, 10))
    h.partition.release()
    h.settle()
    assert [r.offset for r in h.poll()] == list(range(30, 40))


def test_a_leader_error_refreshes_metadata_and_retries_after_the_backoff() -> None:
    h = Harness([batch(0, 10)])
    h.partition.errors.append(ZafkaError("NOT_LEADER_OR_FOLLOWER", "moved"))
    h.user(lambda: h.state.assign([TP]))
    assert h.partition.fetches == [0]
    assert h.broker.requests == 1
    h.run_for(90)
    assert h.partition.fetches == [0]  # backing off
    h.run_for(20)
    assert h.broker.requests == 2  # the leader was forgotten: looked up again
    assert h.partition.fetches == [0, 0]
    assert [r.offset for r in h.poll()] == list(range(10))


def test_an_unknown_partition_backs_off_instead_of_looping() -> None:
    h = Harness([batch(0, 10)])
    other = TopicPartition("orders", 5)
    h.user(lambda: h.state.assign([other]))
    h.run_for(10_000, step_ms=50)
    # Refreshes back off 100, 200, 400, 800 ms, then every second: about 13 in 10 s.
    assert 5 <= h.broker.requests <= 16
    error = h.state.partitions[other].last_error
    assert error is not None and error.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert h.partition.fetches == []


def test_out_of_range_resets_by_the_policy() -> None:
    h = Harness([batch(0, 10)], reset="latest")
    h.user(lambda: (h.state.assign([TP]), h.state.seek(TP, 50)))
    assert h.partition.fetches == [50]  # out of range
    assert h.poll() == []  # the poll applies the policy...
    assert h.partition.list_offsets == [-1]  # ...the log end is looked up...
    assert h.state.partitions[TP].position == 10
    assert h.partition.fetches == [50, 10]  # ...and fetched from: a long poll there


def test_a_replaced_actor_carries_on(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness([batch(0, 10), batch(10, 10)])
    crashed = h.actor
    real = FetchState.fetch_done
    calls = []

    def crash_once(self, *args):  # type: ignore[no-untyped-def]
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a bug in the answer's handling")
        return real(self, *args)

    monkeypatch.setattr(FetchState, "fetch_done", crash_once)
    h.user(lambda: h.state.assign([TP]))
    assert h.actor is not crashed and crashed.retired
    assert h.partition.fetches == [0, 0]  # the replacement fetched again
    with h.cond:
        crashed.kick()  # a kick the user's thread sent the old actor still gets through
    assert [r.offset for r in h.poll()] == list(range(10))
    assert h.partition.fetches == [0, 0, 10]


def test_a_trickling_partition_keeps_a_fetch_parked_while_records_wait() -> None:
    h = Harness([batch(0, 10)], buffer_bytes=1 << 20)
    h.user(lambda: h.state.assign([TP]))
    # The answer waits for the user (far below fetch_max_bytes), and the next fetch is parked.
    assert h.partition.fetches == [0, 10] and len(h.partition.parked) == 1
    h.partition.batches.append(batch(10, 10))
    h.partition.release()
    h.settle()
    assert h.partition.fetches == [0, 10, 20]  # parked again at once, no poll in between
    assert [r.offset for r in h.poll()] == list(range(20))
