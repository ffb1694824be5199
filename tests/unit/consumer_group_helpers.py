"""A fake broker for group consumers on the memory network, with a real `Consumer` on it.

`Cluster` hosts node `broker-1` on a `MemoryNetwork`: a broker actor (metadata,
FindCoordinator, which spawns the group's coordinator actor as the real broker does),
partition actors that serve appended records (long polls parked until records come), and per
group a `FakeCoordinator` actor: the coordinator's real pure state machine
(actors/group/state.py) behind the wire messages, its records kept in a log so a
coordinator that is stopped and found again replays them (as a real one loads
`__consumer_offsets`). A driver thread steps every runtime, the network's clock following real
time, so a `Consumer` (whose `ClientIO` is swapped for `MemoryClientIO`) runs its user thread
and its I/O side as in production, without sockets. Tests change the cluster under
`cluster.lock` (the driver holds it while it steps).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from typing import Any

import pytest

from zafka.actors.group.api import error_code
from zafka.actors.group.records import Record, Subscription
from zafka.actors.group.state import GroupState
from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.clients import consumer as consumer_module
from zafka.clients.consumer import Consumer
from zafka.clients.fetch_state import EARLIEST
from zafka.clients.io import CLIENT_ACTOR, ClientActor
from zafka.clients.membership import to_groups, to_tps
from zafka.clients.metadata import parse_bootstrap
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
from zafka.transport.group import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    PartitionOffset,
)
from zafka.transport.memory import MemoryNetwork, MemoryTransport
from zafka.transport.names import TopicPartition

TP = TopicPartition
BOOTSTRAP = "127.0.0.1:1"
ENDPOINT = parse_bootstrap(BOOTSTRAP)[0]
WAIT_S = 10.0  # the longest any wait of these tests may take
PARK_CHECK_MS = 10
CLOCK_START_MS = 1_000_000_000


class FakePartition(Actor):
    """`<topic>-<p>`: values appended by the test; a fetch at the log end is parked until
    records come or its max wait passes."""

    def __init__(self, topic: str, partition: int, values: list[bytes]) -> None:
        super().__init__(f"{topic}-{partition}")
        self.tp = TP(topic, partition)
        self.values = values
        self.parked: list[tuple[int, Envelope]] = []  # (answer by ms, fetch)

    def on_start(self) -> None:
        self.set_timer("park", PARK_CHECK_MS)

    def answer(self, offset: int) -> FetchResponse:
        end = len(self.values)
        if not 0 <= offset <= end:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", f"{offset} outside [0, {end}]")
        rows = [(0, None, v, None) for v in self.values[offset:]]
        data = build_batch(rows, base_offset=offset) if rows else b""
        return FetchResponse(0, end, 0, data)

    def on_fetch_request(self, envelope: Envelope) -> object:
        offset = envelope.message.offset
        if offset == len(self.values):
            now = self._runtime().now_ms()
            self.parked.append((now + envelope.message.max_wait_ms, envelope))
            return DEFERRED
        return self.answer(offset)

    def on_park_timeout(self, now_ms: int) -> None:
        self.release(now_ms)
        self.set_timer("park", PARK_CHECK_MS)

    def release(self, now_ms: int | None = None) -> None:
        """Answer parked fetches: all when records came, else those whose wait is over."""
        keep = []
        for due, envelope in self.parked:
            offset = envelope.message.offset
            if offset < len(self.values) or now_ms is None or due <= now_ms:
                self.reply(envelope, self.answer(offset))
            else:
                keep.append((due, envelope))
        self.parked = keep

    def on_list_offsets_request(self, envelope: Envelope) -> ListOffsetsResponse:
        timestamp = envelope.message.timestamp
        return ListOffsetsResponse(0, 0 if timestamp == EARLIEST else len(self.values), -1)

    HANDLERS = handlers(
        {FetchRequest: on_fetch_request, ListOffsetsRequest: on_list_offsets_request}
    )


class FakeCoordinator(Actor):
    """`group-<id>`: GroupState behind the wire messages; see the module docstring."""

    def __init__(self, cluster: Cluster, group_id: str) -> None:
        super().__init__(f"group-{group_id}")
        self.cluster = cluster
        self.group_id = group_id
        self.state = GroupState(
            group_id,
            heartbeat_interval_ms=cluster.heartbeat_interval_ms,
            rebalance_timeout_ms=cluster.rebalance_timeout_ms,
        )
        for record in cluster.logs.setdefault(group_id, []):
            self.state.replay(record.key, record.value)

    @property
    def log(self) -> list[Record]:
        return self.cluster.logs[self.group_id]

    def on_start(self) -> None:
        self._apply(self.state.update_topics(self.cluster.partition_counts()))
        self.state.start_sessions(self._runtime().now_ms())
        self.set_timer("expire", PARK_CHECK_MS)

    def on_expire_timeout(self, now_ms: int) -> None:
        self._apply(self.state.expire(now_ms))
        self.set_timer("expire", PARK_CHECK_MS)

    def _apply(self, outcome: Any) -> Any:
        self.log.extend(outcome.records)
        return outcome

    def _fault(self, envelope: Envelope) -> int:
        """The code of a scripted error for this message type, if any (0: none)."""
        faults = self.cluster.faults.get(type(envelope.message).__name__)
        self.cluster.requests.append(envelope.message)
        return error_code(faults.popleft()) if faults else 0

    def _interval(self) -> int:
        return self.state.heartbeat_interval_ms

    def on_join_group_request(self, envelope: Envelope) -> JoinGroupResponse:
        m = envelope.message
        if code := self._fault(envelope):
            return JoinGroupResponse(code, m.member_id, -1, self._interval(), ())
        sub = Subscription(m.subscription, m.subscription_pattern)
        out = self._apply(
            self.state.join(
                self._runtime().now_ms(),
                sub,
                m.session_timeout_ms,
                member_id=m.member_id,
                instance_id=m.instance_id,
                assignor=m.assignor,
            )
        )
        if out.error != "NONE":
            return JoinGroupResponse(error_code(out.error), m.member_id, -1, self._interval(), ())
        a = out.member
        return JoinGroupResponse(
            0, a.member_id, a.member_epoch, a.heartbeat_interval_ms, to_groups(a.assignment)
        )

    def on_heartbeat_request(self, envelope: Envelope) -> HeartbeatResponse:
        m = envelope.message
        if code := self._fault(envelope):
            return HeartbeatResponse(code, -1, self._interval(), ())
        sub = None
        if m.subscription is not None or m.subscription_pattern is not None:
            sub = Subscription(m.subscription or (), m.subscription_pattern)
        out = self._apply(
            self.state.heartbeat(
                self._runtime().now_ms(), m.member_id, m.member_epoch, to_tps(m.owned), sub
            )
        )
        if out.error != "NONE":
            return HeartbeatResponse(error_code(out.error), -1, self._interval(), ())
        a = out.member
        return HeartbeatResponse(
            0, a.member_epoch, a.heartbeat_interval_ms, to_groups(a.assignment)
        )

    def on_leave_group_request(self, envelope: Envelope) -> LeaveGroupResponse:
        if code := self._fault(envelope):
            return LeaveGroupResponse(code)
        out = self._apply(self.state.leave(envelope.message.member_id))
        return LeaveGroupResponse(error_code(out.error))

    def on_offset_commit_request(self, envelope: Envelope) -> OffsetCommitResponse:
        m = envelope.message
        if code := self._fault(envelope):
            return OffsetCommitResponse(code)
        offsets = [(TP(o.topic, o.partition), o.offset, o.metadata) for o in m.offsets]
        now = self._runtime().now_ms()
        out = self._apply(self.state.commit(now, m.member_id, m.member_epoch, offsets))
        return OffsetCommitResponse(error_code(out.error))

    def on_offset_fetch_request(self, envelope: Envelope) -> OffsetFetchResponse:
        m = envelope.message
        if code := self._fault(envelope):
            return OffsetFetchResponse(code, ())
        tps = None if m.partitions is None else to_tps(m.partitions)
        found = self.state.committed(tps)
        return OffsetFetchResponse(
            0,
            tuple(
                PartitionOffset(tp.topic, tp.partition, c.offset, c.metadata)
                for tp, c in sorted(found.items())
            ),
        )

    HANDLERS = handlers(
        {
            JoinGroupRequest: on_join_group_request,
            HeartbeatRequest: on_heartbeat_request,
            LeaveGroupRequest: on_leave_group_request,
            OffsetCommitRequest: on_offset_commit_request,
            OffsetFetchRequest: on_offset_fetch_request,
        }
    )


class FakeBroker(Actor):
    """`broker`: metadata for the cluster's topics; FindCoordinator names broker 1 and
    spawns the group's coordinator here, as the real broker does."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__("broker")
        self.cluster = cluster

    def on_metadata_request(self, envelope: Envelope) -> MetadataResponse:
        topics = tuple(
            TopicMetadata(
                name, 0, tuple(PartitionMetadata(p, 1, 0, (1,), (1,)) for p in range(count))
            )
            for name, count in self.cluster.partition_counts().items()
        )
        return MetadataResponse((BrokerInfo(1, ENDPOINT),), topics)

    def on_find_coordinator_request(self, envelope: Envelope) -> FindCoordinatorResponse:
        group_id = envelope.message.group_id
        self.cluster.requests.append(envelope.message)
        faults = self.cluster.faults.get("FindCoordinatorRequest")
        if faults:
            return FindCoordinatorResponse(error_code(faults.popleft()), -1, "")
        runtime = self._runtime()
        name = f"group-{group_id}"
        if name not in runtime._cells:
            runtime.spawn(lambda: FakeCoordinator(self.cluster, group_id))
        return FindCoordinatorResponse(0, 1, ENDPOINT)

    HANDLERS = handlers(
        {MetadataRequest: on_metadata_request, FindCoordinatorRequest: on_find_coordinator_request}
    )


class MemoryClientIO:
    """`ClientIO`'s interface on the cluster's memory network: the runtime is stepped by the
    cluster's driver thread."""

    def __init__(
        self,
        cluster: Cluster,
        kind: str,
        bootstrap_servers: object,
        make_actor: Callable[[list[str], Any], ClientActor],
        on_exit: Callable[[], object] | None = None,
    ) -> None:
        self.cluster = cluster
        bootstrap = parse_bootstrap(bootstrap_servers)  # type: ignore[arg-type]
        self.node = f"{kind}-{next(cluster.ids)}"
        self.transport = MemoryTransport(cluster.network, self.node)
        self.runtime = Runtime(self.node, self.transport, clock=cluster.clock)
        self.runtime.spawn(lambda: make_actor(bootstrap, self.transport))
        self._submitted: set[Future] = set()
        self._closed = False
        with cluster.lock:
            self.runtime.start()
            cluster.runtimes.append(self.runtime)

    @property
    def actor(self) -> ClientActor:
        return self.runtime.actor(CLIENT_ACTOR)  # type: ignore[return-value]

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, fn: Callable[[Future], Any]) -> Future:
        future: Future = Future()
        if self._closed:
            future.set_exception(ZafkaError("STOPPED", f"{self.node} is closed"))
            return future
        self._submitted.add(future)
        future.add_done_callback(self._submitted.discard)

        def run() -> None:
            try:
                fn(future)
            except BaseException as err:
                if not future.done():
                    future.set_exception(err)

        self.runtime.post(run)
        return future

    def post(self, fn: Callable[[], Any]) -> None:
        self.runtime.post(fn)

    def close(self, timeout_s: float = 0) -> None:
        with self.cluster.lock:
            if self._closed:
                return
            self._closed = True
            self.cluster.runtimes.remove(self.runtime)
            self.runtime.stop()
        for future in list(self._submitted):
            with contextlib.suppress(InvalidStateError):
                future.set_exception(ZafkaError("STOPPED", f"{self.node} is closed"))


class Cluster:
    """See the module docstring. `topics`: name -> partition count."""

    def __init__(
        self,
        topics: dict[str, int],
        heartbeat_interval_ms: int = 50,
        rebalance_timeout_ms: int = 5_000,
    ) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.lock = threading.RLock()
        self.network = MemoryNetwork(seed=7)
        self.network.advance(CLOCK_START_MS)  # far from 0, like a monotonic clock
        self.ids = iter(range(1, 1_000_000))
        self.values: dict[TopicPartition, list[bytes]] = {}
        self.logs: dict[str, list[Record]] = {}  # group -> its records (__consumer_offsets)
        self.faults: dict[str, deque[str]] = {}  # request type -> errors to answer next
        self.requests: list[object] = []  # group requests the broker side received
        self._started = time.monotonic()
        server = MemoryTransport(self.network, "broker-1")
        server.bind(ENDPOINT)
        self.broker = Runtime("broker-1", server, clock=self.clock)
        self.broker.spawn(lambda: FakeBroker(self))
        for topic, count in topics.items():
            self.add_topic(topic, count)
        self.broker.start()
        self.runtimes: list[Runtime] = [self.broker]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="memory-network", daemon=True)
        self._thread.start()

    def clock(self) -> int:
        return self.network.now_ms

    def _drive(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                now = CLOCK_START_MS + int((time.monotonic() - self._started) * 1000)
                if now > self.network.now_ms:
                    self.network.advance(now - self.network.now_ms)
                work = sum(runtime.step() for runtime in list(self.runtimes))
            if not work:
                time.sleep(0.0005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)

    # --- the test's hands -----------------------------------------------------------------

    def add_topic(self, topic: str, partitions: int) -> None:
        with self.lock:
            for p in range(partitions):
                values = self.values.setdefault(TP(topic, p), [])
                self.broker.spawn(lambda t=topic, p=p, v=values: FakePartition(t, p, v))

    def partition_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tp in self.values:
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        return counts

    def append(self, tp: tuple[str, int], count: int) -> None:
        """`count` records `b"<topic>-<p>:<offset>"` at the end of `tp`."""
        with self.lock:
            values = self.values[TP(*tp)]
            start = len(values)
            values.extend(
                b"%s-%d:%d" % (tp[0].encode(), tp[1], o) for o in range(start, start + count)
            )
            self.broker.actor(f"{tp[0]}-{tp[1]}").release()  # type: ignore[attr-defined]

    def fill(self, topic: str, count: int) -> None:
        for tp in [tp for tp in self.values if tp.topic == topic]:
            self.append(tp, count)

    def fail(self, request_type: str, *errors: str) -> None:
        """The next requests of that type are answered with these errors."""
        with self.lock:
            self.faults.setdefault(request_type, deque()).extend(errors)

    def group(self, group_id: str) -> GroupState | None:
        """The coordinator's state now (None if its actor is not running); read it under
        `lock`."""
        cell = self.broker._cells.get(f"group-{group_id}")
        return None if cell is None else cell.actor.state  # type: ignore[attr-defined]

    def stop_coordinator(self, group_id: str) -> None:
        """Stop the group's actor (calls to it then get UNKNOWN_ACTOR); FindCoordinator
        starts it again, replaying its log."""
        with self.lock:
            self.broker.despawn(f"group-{group_id}")

    def consumer(self, **config: Any) -> Consumer:
        config.setdefault("fetch_max_wait_ms", 50)
        config.setdefault("request_timeout_ms", 2_000)
        config.setdefault("retry_backoff_ms", 10)
        config.setdefault("auto_offset_reset", "earliest")
        return Consumer(BOOTSTRAP, **config)


@contextlib.contextmanager
def clusters(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Cluster]]:
    """For a test's `cluster` fixture: `make(topics)` builds a Cluster, and every Consumer
    made meanwhile runs on the last one; all are stopped on exit."""
    made: list[Cluster] = []

    def make(topics: dict[str, int], **kwargs: Any) -> Cluster:
        c = Cluster(topics, **kwargs)
        made.append(c)
        monkeypatch.setattr(consumer_module, "ClientIO", lambda *a, **k: MemoryClientIO(c, *a, **k))
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


def wait_until(
    check: Callable[[], bool], what: str, poll: Callable[[], object] | None = None
) -> None:
    """Until `check()` holds (bounded: WAIT_S), calling `poll` (a consumer's poll, say) in
    between, or waiting a moment."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        if poll is not None:
            poll()
        else:
            time.sleep(0.002)
