"""The producer's I/O side: the actor that turns accumulated batches into Produce requests.

`Producer.send` (any user thread) appends to the `RecordAccumulator` under `SendState.lock`
and nudges this actor through `Runtime.post` when a partition is not busy or a batch just
opened; the actor then sends what `ready` says, up to `max_in_flight` requests per partition
(five with idempotence, one without), and sets a timer for the next linger or backoff
deadline. A reply completes the batch's `BatchResult`, frees its bytes and sends the next
batch of that partition at once. Retries keep their order: a retried batch waits until its
partition has nothing in flight, and a sequence gap reported for a later batch while an
earlier one awaits its retry is retried too.

Failures: a retriable error (timeouts, BUSY, NOT_LEADER_OR_FOLLOWER, ...) requeues the batch
with its sequence numbers after `retry_backoff_ms`, refreshing metadata first when the error
says so; the broker's de-duplication turns a retry of a batch that did land into its
original offset. A batch fails for good on a non-retriable error or after
`delivery_timeout_ms`. With idempotence, a batch that failed after it was sent leaves a
hole in its partition's sequence, so the producer takes a new producer id (InitProducerId)
once nothing is in flight and numbers everything not yet sent from 0 again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from zafka import limits
from zafka.actors.runtime.actor import answer_of
from zafka.backoff import backoff_ms
from zafka.clients.accumulator import Batch, RecordAccumulator, TopicPartition
from zafka.clients.delivery import UNKNOWN_OFFSET, BatchResult
from zafka.clients.io import ClientActor
from zafka.clients.metadata import leader_may_have_moved
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.client import InitProducerIdRequest, ProduceRequest, ProduceResponse
from zafka.transport.envelope import Envelope
from zafka.transport.names import broker_node, partition_actor_name
from zafka.transport.zmq_transport import ZmqTransport

NO_PRODUCER_ID = -1
# Requests in flight per partition: Kafka's max.in.flight.requests.per.connection with
# idempotence (the broker keeps this many batches per producer for de-duplication). Without
# idempotence a retry could overtake, so one at a time.
PLAIN_IN_FLIGHT_REQUESTS = 1


@dataclass(frozen=True)
class SenderConfig:
    acks: int
    idempotent: bool
    request_timeout_ms: int
    delivery_timeout_ms: int
    retry_backoff_ms: int


@dataclass
class SendState:
    """What user threads and the I/O thread share; every field under `lock` unless noted."""

    accumulator: RecordAccumulator
    lock: threading.Lock = field(default_factory=threading.Lock)
    results: dict[int, BatchResult] = field(default_factory=dict)  # batch id -> outcome
    in_flight: dict[TopicPartition, int] = field(default_factory=dict)  # requests, if any
    busy: set[TopicPartition] = field(default_factory=set)  # at the limit: records gather
    max_in_flight_requests: int = PLAIN_IN_FLIGHT_REQUESTS
    nudged: bool = False  # a nudge is posted and not yet run
    flushing: int = 0  # flush() calls waiting: every open batch is ready
    # Read without the lock (dict reads are atomic): written by the I/O thread only.
    partition_counts: dict[str, int] = field(default_factory=dict)
    available: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)  # batches completed, bytes freed

    def idle(self) -> bool:
        return not self.accumulator.has_undrained() and self.accumulator.in_flight_batches == 0

    def sent(self, tp: TopicPartition) -> None:
        count = self.in_flight[tp] = self.in_flight.get(tp, 0) + 1
        if count >= self.max_in_flight_requests:
            self.busy.add(tp)

    def answered(self, tp: TopicPartition) -> None:
        count = self.in_flight.pop(tp) - 1
        if count:
            self.in_flight[tp] = count
        self.busy.discard(tp)


class SenderActor(ClientActor):
    """Sends the accumulator's batches; see the module docstring."""

    def __init__(
        self,
        bootstrap: list[str],
        transport: ZmqTransport,
        config: SenderConfig,
        state: SendState,
    ) -> None:
        super().__init__(bootstrap, transport, config.request_timeout_ms)
        self.config = config
        self.state = state
        self.producer_id = NO_PRODUCER_ID
        self.producer_epoch = -1
        self._needs_producer_id = config.idempotent
        self._asking_producer_id = False
        self._wire: dict[int, bytes] = {}  # batch id -> its encoded bytes, kept for retries
        self._holes: set[TopicPartition] = set()  # a sent batch failed: later ones see a gap
        self._metadata_failures = 0  # refreshes in a row that left some partition leaderless
        self._metadata_waiting = False  # a refresh for leaderless partitions, or its backoff
        self._retired = False  # crashed or stopped: a successor (if any) sends from now on

    # --- the send loop --------------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self.send_ready()  # a successor after a crash: what its predecessor left is queued

    def fail_all_calls(self, err: ZafkaError) -> None:
        """On stop or before a restart: the replies that fail now requeue or fail their
        batches in the shared state; this instance sends nothing more."""
        self._retired = True
        super().fail_all_calls(err)

    def nudge(self) -> None:
        """Posted by `Producer.send`: there may be something to send."""
        self.state.nudged = False
        self.send_ready()

    def on_linger_timeout(self, now_ms: int) -> None:
        self.send_ready()

    def on_metadata_updated(self) -> None:
        for topic in list(self.metadata.topics):
            count = self.metadata.partition_count(topic)
            if count is not None:
                self.state.available[topic] = self.metadata.available_partitions(topic)
                self.state.partition_counts[topic] = count

    def send_ready(self) -> None:
        """Send every batch that is ready and can go; fail expired ones; set the next timer."""
        state, now = self.state, self._runtime().now_ms()
        leaderless: set[str] = set()
        with state.lock:
            expired = state.accumulator.expire(now, self.config.delivery_timeout_ms)
            batches = [] if self._needs_producer_id else self._drain(now, leaderless)
            deadline = state.accumulator.next_deadline_ms(now)
            oldest = state.accumulator.oldest_undrained_ms()
        if oldest is not None:  # wake when the oldest waiting batch expires, at the latest
            expiry = oldest + self.config.delivery_timeout_ms
            deadline = expiry if deadline is None else min(deadline, expiry)
        timeout = ZafkaError("REQUEST_TIMED_OUT", "delivery_timeout_ms passed before delivery")
        for batch in expired:
            self.finish(batch, UNKNOWN_OFFSET, timeout)
        for batch in batches:
            self._produce(batch)
        if batches and self.config.acks == 0:  # done already: their partitions' next batches
            deadline = now
        if leaderless:
            self._refresh_for(leaderless)
        elif not self._metadata_waiting:
            self._metadata_failures = 0
        if deadline is not None:
            self.set_timer("linger", max(0, deadline - now))
        self._renew_producer_id()

    def _drain(self, now: int, leaderless: set[str]) -> list[Batch]:
        """Under the lock: take every batch that can go now, marking its partition."""
        state, out = self.state, []
        flush = state.flushing > 0
        while True:
            ready = state.accumulator.ready(now, state.busy, flush, state.in_flight)
            sendable = []
            for tp in ready:
                if tp in state.busy:
                    continue
                if self.metadata.leader(*tp) is None:
                    leaderless.add(tp[0])
                else:
                    sendable.append(tp)
            batches = state.accumulator.drain(sendable, now)
            if not batches:
                return out
            for batch in batches:
                state.sent((batch.topic, batch.partition))
            out += batches

    def _refresh_for(self, topics: set[str]) -> None:
        """Ask for the leaders of `topics`: one refresh at a time, and after one that left
        some partition leaderless, not before a backoff that doubles (a dead leader must
        not make the producer flood the cluster with metadata requests)."""
        if self._metadata_waiting:
            return
        self._metadata_waiting = True
        self.refresh_metadata(topics, self._after_refresh)

    def _after_refresh(self, error: ZafkaError | None) -> None:
        self._metadata_failures += 1
        failures, first_ms = self._metadata_failures, self.config.retry_backoff_ms
        self.set_timer("metadata", backoff_ms(first_ms, failures, limits.retry_backoff_ms_max))
        if error is None:
            self.send_ready()  # what found its leader goes now

    def on_metadata_timeout(self, now_ms: int) -> None:
        self._metadata_waiting = False
        self.send_ready()

    def _produce(self, batch: Batch) -> None:
        data = self._wire.get(batch.batch_id)
        if data is None:
            data = build_batch(
                batch.records,
                producer_id=self.producer_id,
                producer_epoch=self.producer_epoch,
                base_sequence=batch.base_sequence if self.producer_id >= 0 else -1,
            )
            self._wire[batch.batch_id] = data
        leader = self.metadata.leader(batch.topic, batch.partition)
        target = f"{broker_node(leader)}/{partition_actor_name(batch.topic, batch.partition)}"
        config = self.config
        request = ProduceRequest(
            batch.topic, batch.partition, config.acks, config.request_timeout_ms, data
        )
        if config.acks == 0:
            sent = self.cast(target, request)
            error = None if sent else self._runtime().unsent(target)
            self.finish(batch, UNKNOWN_OFFSET, error, in_flight=True)
            return
        # A request never outlives its batch's delivery deadline: it times out then at most.
        left_ms = batch.created_ms + config.delivery_timeout_ms - self._runtime().now_ms()
        self.call(
            target,
            request,
            max(1, min(config.request_timeout_ms, left_ms)),
            lambda reply: self._on_produced(batch, reply),
        )

    def _on_produced(self, batch: Batch, reply: Envelope | ZafkaError) -> None:
        response = answer_of(reply, "in a ProduceResponse")
        if isinstance(response, ProduceResponse):
            self.finish(batch, response.base_offset, None, in_flight=True)
        elif self._retriable(batch, response):
            self._retry(batch, response)
        else:
            self.finish(batch, UNKNOWN_OFFSET, response, in_flight=True)
        if not self._retired:
            self.send_ready()

    def _retriable(self, batch: Batch, error: ZafkaError) -> bool:
        """Whether to send `batch` again. A sequence gap is retriable when an earlier batch
        of its partition caused it: one awaiting its retry, or one that failed for good (a
        hole: the next producer id numbers everything again). UNKNOWN_PRODUCER_ID (the
        broker forgot us) is mended the same way, as Kafka does."""
        tp = (batch.topic, batch.partition)
        name = error.error.name
        if name == "UNKNOWN_PRODUCER_ID" and self.producer_id >= 0:
            self._needs_producer_id = True
            self._holes.add(tp)
        elif name == "OUT_OF_ORDER_SEQUENCE":
            with self.state.lock:
                caused = self.state.accumulator.sent_before_and_not_done(batch)
            if not (caused or tp in self._holes):
                return False
        elif not (error.retriable or error.error.refresh_metadata):
            return False
        age = self._runtime().now_ms() - batch.created_ms
        return age < self.config.delivery_timeout_ms

    def _retry(self, batch: Batch, error: ZafkaError) -> None:
        state, now = self.state, self._runtime().now_ms()
        if leader_may_have_moved(error):
            self.metadata.forget_leader(batch.topic, batch.partition)
        with state.lock:
            state.answered((batch.topic, batch.partition))
            requeued = state.accumulator.requeue(batch, now + self.config.retry_backoff_ms)
        if not requeued:  # the producer is closing: the accumulator dropped it
            self.finish(batch, UNKNOWN_OFFSET, error)

    def finish(
        self, batch: Batch, base_offset: int, error: ZafkaError | None, in_flight: bool = False
    ) -> None:
        """The batch is done (delivered, or failed for good): tell its futures. `in_flight`:
        the accumulator still holds it as drained (else it dropped it already: expired,
        aborted, not requeued)."""
        state = self.state
        with state.lock:
            if in_flight:
                state.answered((batch.topic, batch.partition))
                state.accumulator.complete(batch, error is None)
            result = state.results.pop(batch.batch_id, None)
            state.changed.notify_all()
        self._wire.pop(batch.batch_id, None)
        if error is not None and self.producer_id >= 0 and batch.base_sequence >= 0:
            self._needs_producer_id = True  # a hole in the partition's sequence
            self._holes.add((batch.topic, batch.partition))
        if result is not None:
            result.complete(base_offset, error)

    # --- producer ids ---------------------------------------------------------------------

    def _renew_producer_id(self) -> None:
        """Ask for a producer id when one is needed and nothing is in flight."""
        if not self._needs_producer_id or self._asking_producer_id or self.state.in_flight:
            return
        self._asking_producer_id = True
        target = f"{self.any_broker()}/broker"
        self.call(
            target, InitProducerIdRequest(), self.config.request_timeout_ms, self._on_producer_id
        )

    def _on_producer_id(self, reply: Envelope | ZafkaError) -> None:
        self._asking_producer_id = False
        response = answer_of(reply)
        if isinstance(response, ZafkaError):
            self.set_timer("linger", self.config.retry_backoff_ms)  # ask again after it
            return
        self.producer_id, self.producer_epoch = response.producer_id, response.producer_epoch
        with self.state.lock:
            self.state.accumulator.reset_sequences()
        self._wire.clear()
        self._holes.clear()
        self._needs_producer_id = False
        self.send_ready()
