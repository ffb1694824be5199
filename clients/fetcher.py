"""The consumer's I/O-thread side: `FetcherActor` sends what the FetchState plans and files
the answers. Used by clients/consumer.py; see there and clients/fetch_state.py.

It runs on the consumer's `ClientIO` thread (a `ClientActor`: metadata, links, calls). Each
`pump` asks the state, under the Consumer's lock, which fetches and ListOffsets requests to
send, and sends them to the partition's leader, `broker-<id>/<topic>-<partition>`. Every
answer is filed under the lock (waking a `poll` or `position` that waits) and is followed by
another `pump`. Partitions whose leader is unknown get a metadata refresh; refreshes back off
(`retry_backoff_ms` doubling up to 1 s) while they stay unlocated, so an unknown partition
never makes a request loop. The user's thread asks for a `pump` with `kick` (posted at most
once until it runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

from zafka import limits
from zafka.actors.runtime.actor import answer_of
from zafka.backoff import backoff_ms
from zafka.clients.fetch_state import FetchState, Plan, Request
from zafka.clients.io import ClientActor
from zafka.errors import ZafkaError, from_code
from zafka.transport.client import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from zafka.transport.envelope import Envelope
from zafka.transport.names import TopicPartition, broker_node, partition_actor_name
from zafka.transport.zmq_transport import ZmqTransport

ReplyCallback = Callable[[Envelope | ZafkaError], None]


class FetcherConfig(NamedTuple):
    """The fetch settings of one consumer (validated by Consumer)."""

    fetch_max_bytes: int
    fetch_max_wait_ms: int
    fetch_min_bytes: int
    request_timeout_ms: int
    retry_backoff_ms: int


class FetcherActor(ClientActor):
    """The consumer's I/O-thread side: sends what the FetchState plans, files the answers
    (under the Consumer's lock, waking a waiting poll) and plans again."""

    def __init__(
        self,
        bootstrap: list[str],
        transport: ZmqTransport,
        config: FetcherConfig,
        state: FetchState,
        cond: threading.Condition,
    ) -> None:
        super().__init__(bootstrap, transport, config.request_timeout_ms)
        self.config = config
        self.state = state
        self.cond = cond
        self.closing = False  # set by Consumer.close: send nothing more
        self.retired = False  # stopped, or replaced after a crash: the live one does the work
        self._kick_pending = False
        self._md_refreshing = False
        self._md_failures = 0
        self._md_retry_at_ms = 0
        self._fetch_timeout_ms = min(
            config.request_timeout_ms + config.fetch_max_wait_ms, limits.call_timeout_ms_max
        )

    # --- planning -------------------------------------------------------------------------

    def kick(self) -> None:
        """User thread, lock held: the state changed, plan again soon (posted once)."""
        if not self._kick_pending and self.runtime is not None:
            self._kick_pending = True
            self.runtime.post(self.pump)

    def on_start(self) -> None:
        super().on_start()
        # A restarted actor takes the state over where the crashed one left it.
        with self.cond:
            self.state.forget_in_flight()
        self.pump()

    def fail_all_calls(self, err: ZafkaError) -> None:
        """On stop and before a restart: the answers are still filed (as errors), but this
        actor sends nothing more; the kicks it still gets go to its replacement."""
        self.retired = True
        super().fail_all_calls(err)

    def _live(self) -> FetcherActor:
        actor = self._runtime().actor(self.name)
        assert isinstance(actor, FetcherActor)
        return actor

    def _handed_over(self, call: Callable[[Any], object]) -> bool:
        """Whether this actor was retired (a crash restarted it) and another one took its
        place; then `call(that one)` ran instead (user threads may still hold this one)."""
        live = self._live() if self.retired else self
        if live is self:
            return False
        call(live)
        return True

    def pump(self) -> None:
        """Send every request the state plans now; arrange to plan again after backoffs."""
        if self.closing:
            return
        with self.cond:
            self._kick_pending = False
        if self.retired:  # a successor (if any) pumps instead
            self._handed_over(FetcherActor.pump)
            return
        now = self._runtime().now_ms()
        with self.cond:
            plan: Plan = self.state.actions(now, self.leader_of)
        for request in plan.fetches:
            self._send_fetch(request)
        for request in plan.resets:
            self._send_reset(request)
        wake = plan.wake_ms
        if plan.need_metadata:
            wake = self._refresh(plan.need_metadata, now, wake)
        else:
            self._md_failures = 0
        if wake is not None:
            self.set_timer("pump", max(wake - now, 0))

    def on_pump_timeout(self, now_ms: int) -> None:
        self.pump()

    def _backoff_ms(self, failures: int) -> int:
        return backoff_ms(self.config.retry_backoff_ms, failures, limits.retry_backoff_ms_max)

    def _refresh(self, topics: set[str], now: int, wake: int | None) -> int | None:
        """Ask for metadata now, or say when (refreshes back off while partitions stay
        unlocated: an unknown partition must not make a request loop)."""
        if self._md_refreshing:
            return wake
        if now < self._md_retry_at_ms:
            return self._md_retry_at_ms if wake is None else min(wake, self._md_retry_at_ms)
        self._md_refreshing = True
        self.refresh_metadata(topics, self._metadata_done)
        return wake

    def _metadata_done(self, error: ZafkaError | None) -> None:
        self._md_refreshing = False
        self._md_failures += 1
        self._md_retry_at_ms = self._runtime().now_ms() + self._backoff_ms(self._md_failures)
        self.pump()

    def leader_of(self, tp: TopicPartition) -> int | ZafkaError | None:
        """The broker leading `tp`, the error saying why none is known, or None (never asked)."""
        state = self.metadata.topics.get(tp.topic)
        if state is None:
            return None
        if state.error_code:
            return from_code(state.error_code, f"topic {tp.topic!r}")
        if tp.partition >= len(state.partitions):
            return ZafkaError(
                "UNKNOWN_TOPIC_OR_PARTITION",
                f"topic {tp.topic!r} has {len(state.partitions)} partitions, no {tp.partition}",
            )
        leader = self.metadata.leader(tp.topic, tp.partition)
        if leader is None:
            return ZafkaError("NOT_LEADER_OR_FOLLOWER", f"no leader known for {tp}")
        return leader

    def _target(self, tp: TopicPartition, leader: int) -> str:
        return f"{broker_node(leader)}/{partition_actor_name(tp.topic, tp.partition)}"

    def _forget(self, tp: TopicPartition, leader: int) -> None:
        if self.metadata.leader(tp.topic, tp.partition) == leader:
            self.metadata.forget_leader(tp.topic, tp.partition)

    # --- fetch and reset ------------------------------------------------------------------

    def _send_fetch(self, request: Request) -> None:
        tp, config = request.tp, self.config
        message = FetchRequest(
            topic=tp.topic,
            partition=tp.partition,
            offset=request.offset_or_timestamp,
            max_bytes=config.fetch_max_bytes,
            max_wait_ms=config.fetch_max_wait_ms,
            min_bytes=config.fetch_min_bytes,
        )

        def on_reply(reply: Envelope | ZafkaError) -> None:
            response = answer_of(reply, f"fetch {tp}")
            if isinstance(response, FetchResponse):
                response = (response.records, response.high_watermark)
            self._answered(request, response, self.state.fetch_done)

        self._call(self._target(tp, request.leader), message, self._fetch_timeout_ms, on_reply)

    def _send_reset(self, request: Request) -> None:
        tp = request.tp
        message = ListOffsetsRequest(tp.topic, tp.partition, request.offset_or_timestamp)

        def on_reply(reply: Envelope | ZafkaError) -> None:
            self._answered(request, _list_offsets_answer(tp, reply), self.state.reset_done)

        self._call(self._target(tp, request.leader), message, self.request_timeout_ms, on_reply)

    def _call(self, target: str, message: object, timeout_ms: int, on_reply: ReplyCallback) -> None:
        try:
            self.call(target, message, timeout_ms, on_reply)
        except ZafkaError as err:  # BUSY: too many calls in flight
            on_reply(err)

    def _answered(self, request: Request, answer: object, done: Callable[..., bool]) -> None:
        with self.cond:
            refresh = done(request, answer, self._runtime().now_ms())
            self.cond.notify_all()
        if refresh:
            self._forget(request.tp, request.leader)
        self.pump()

    # --- offsets for times (for user threads, through ClientIO.submit) ---------------------

    def list_offsets(self, tp: TopicPartition, timestamp: int, future: Future) -> None:
        """One ListOffsets to `tp`'s leader (metadata first if it is unknown); `future` gets
        `(offset, timestamp)` or the error."""
        if self._handed_over(lambda live: live.list_offsets(tp, timestamp, future)):
            return

        def send(leader: int | ZafkaError | None) -> None:
            if not isinstance(leader, int):
                future.set_exception(leader or ZafkaError("UNKNOWN_TOPIC_OR_PARTITION", str(tp)))
                return

            def on_reply(reply: Envelope | ZafkaError) -> None:
                answer = _list_offsets_answer(tp, reply, with_timestamp=True)
                if isinstance(answer, ZafkaError):
                    if answer.error.refresh_metadata:
                        self._forget(tp, leader)
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

            message = ListOffsetsRequest(tp.topic, tp.partition, timestamp)
            self._call(self._target(tp, leader), message, self.request_timeout_ms, on_reply)

        leader = self.leader_of(tp)
        if isinstance(leader, int):
            send(leader)
        else:
            self.refresh_metadata([tp.topic], lambda err: send(err or self.leader_of(tp)))


def _list_offsets_answer(
    tp: TopicPartition, reply: Envelope | ZafkaError, with_timestamp: bool = False
) -> ZafkaError | int | tuple[int, int]:
    response = answer_of(reply, f"list offsets {tp}")
    if isinstance(response, ZafkaError):
        return response
    assert isinstance(response, ListOffsetsResponse)
    return (response.offset, response.timestamp) if with_timestamp else response.offset
