"""The consumer's group traffic on its I/O thread: `GroupMemberActor` is the `FetcherActor`
(clients/fetcher.py) of a consumer with a `group_id`, which also finds the group's
coordinator and sends what the `Membership` (clients/membership.py, pure) plans: joins,
heartbeats and OffsetFetch requests for partitions about to start; and, for user threads
(through `ClientIO.submit`), commits, committed offsets and the LeaveGroup.

**Finding the coordinator.** A `FindCoordinatorRequest` to some broker's `broker` actor
names the coordinator's broker id (its endpoint comes with the metadata, which is asked
again when the broker is not known yet); every group request then goes to
`broker-<id>/group-<group_id>`. UNKNOWN_ACTOR from there: the group actor is not spawned
yet, so FindCoordinator is asked of that broker itself (which spawns it); NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE, STOPPED or a timeout: the coordinator is looked up again; every
retriable error is retried after a backoff (`retry_backoff_ms` doubling up to 1 s). Joins and
heartbeats are retried by the Membership's own schedule; commits, OffsetFetch for users and
the LeaveGroup until their deadline.

Every answer is filed under the Consumer's lock and wakes a waiting `poll` (which runs the
user's rebalance callbacks on its own thread).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

from zafka.actors.runtime.actor import answer_of
from zafka.clients.fetch_state import FetchState
from zafka.clients.fetcher import FetcherActor, FetcherConfig
from zafka.clients.membership import Assignment, Membership, to_groups, to_tps
from zafka.errors import ZafkaError
from zafka.transport.envelope import Envelope
from zafka.transport.group import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    PartitionOffset,
)
from zafka.transport.names import TopicPartition, broker_node, group_actor_name
from zafka.transport.zmq_transport import ZmqTransport

log = logging.getLogger(__name__)

Answer = object  # a response message, or the ZafkaError it carried / the call failed with
Done = Callable[[Answer], None]


class GroupMemberActor(FetcherActor):
    """A group consumer's I/O-thread side; see the module docstring."""

    def __init__(
        self,
        bootstrap: list[str],
        transport: ZmqTransport,
        config: FetcherConfig,
        state: FetchState,
        cond: threading.Condition,
        membership: Membership,
    ) -> None:
        super().__init__(bootstrap, transport, config, state, cond)
        self.membership = membership
        self.group_id = membership.group_id
        self._commits = 0  # commits sent so far: a retry waits for no newer one
        self.coordinator: int | None = None
        self._ask: int | None = None  # ask this broker for the coordinator (after UNKNOWN_ACTOR)
        self._finding = False
        self._coordinator_waiters: list[Callable[[int | ZafkaError], None]] = []
        self._scheduled: list[tuple[int, int, Callable[[], None]]] = []  # (due, seq, fn)
        self._sequence = itertools.count()
        self._group_kick_pending = False

    # --- lifecycle and scheduling --------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        with self.cond:
            self.membership.forget_in_flight()
        self.group_pump()

    def group_kick(self) -> None:
        """User thread, lock held: the membership changed, act on it soon (posted once)."""
        if not self._group_kick_pending and self.runtime is not None:
            self._group_kick_pending = True
            self.runtime.post(self.group_pump)

    def _later(self, delay_ms: int, fn: Callable[[], None]) -> None:
        due = self._runtime().now_ms() + delay_ms
        heapq.heappush(self._scheduled, (due, next(self._sequence), fn))
        self._arm(None)

    def _arm(self, wake_ms: int | None) -> None:
        if self._scheduled:
            due = self._scheduled[0][0]
            wake_ms = due if wake_ms is None else min(wake_ms, due)
        if wake_ms is not None:
            self.set_timer("group", max(wake_ms - self._runtime().now_ms(), 0))

    def on_group_timeout(self, now_ms: int) -> None:
        while self._scheduled and self._scheduled[0][0] <= now_ms:
            _, _, fn = heapq.heappop(self._scheduled)
            fn()
        self.group_pump()

    # --- what the membership plans ------------------------------------------------------------

    def group_pump(self) -> None:
        """Send the join, heartbeat and OffsetFetch the membership plans now."""
        with self.cond:
            self._group_kick_pending = False
        if self.retired:  # a successor (if any) pumps instead
            self._handed_over(GroupMemberActor.group_pump)
            return
        now = self._runtime().now_ms()
        with self.cond:
            out = self.membership.outgoing(now) if not self.closing else None
        if out is None:
            return
        generation = out.generation
        if out.join is not None:
            self._send_join(out.join, generation)
        if out.heartbeat is not None:
            self._send_heartbeat(out.heartbeat, generation)
        if out.offset_fetch is not None:
            self._send_offset_fetch(out.offset_fetch, generation)
        self._arm(out.wake_ms)

    def _send_join(self, request: JoinGroupRequest, generation: int) -> None:
        self._send_membership(request, generation, self.membership.on_join, "join")

    def _send_heartbeat(self, request: HeartbeatRequest, generation: int) -> None:
        self._send_membership(request, generation, self.membership.on_heartbeat, "heartbeat")

    def _send_membership(
        self, request: object, generation: int, on_answer: Callable[..., None], what: str
    ) -> None:
        """A join or heartbeat: both are answered with the member's assignment."""

        def done(answer: Answer) -> None:
            if not isinstance(answer, ZafkaError):
                answer = Assignment(
                    answer.member_epoch,  # type: ignore[attr-defined]
                    answer.heartbeat_interval_ms,  # type: ignore[attr-defined]
                    to_tps(answer.assignment),  # type: ignore[attr-defined]
                )
            else:
                log.info("%s: %s of group %r failed: %s", self.address, what, self.group_id, answer)
            self._filed(on_answer, generation, answer)

        self._group_call(request, self.request_timeout_ms, done)

    def _send_offset_fetch(self, request: OffsetFetchRequest, generation: int) -> None:
        def done(answer: Answer) -> None:
            if not isinstance(answer, ZafkaError):
                answer = {
                    tp: offset for tp, (offset, _) in offsets_of(answer).items() if offset >= 0
                }
            self._filed(self.membership.on_offsets, generation, answer)

        self._group_call(request, self.request_timeout_ms, done)

    def _filed(self, on_answer: Callable[..., None], generation: int, answer: object) -> None:
        with self.cond:
            on_answer(generation, answer, self._runtime().now_ms())
            self.cond.notify_all()
        self.group_pump()

    # --- for user threads (through ClientIO.submit) --------------------------------------------

    def commit(
        self,
        offsets: dict,
        member_id: str,
        member_epoch: int,
        generation: int,
        timeout_ms: int,
        future: Future,
    ) -> None:
        """Commit `{tp: (offset, metadata)}` as `member_id` at `member_epoch`, retrying for
        up to `timeout_ms`; `future` gets None or the ZafkaError (a fencing error also fences
        the membership)."""
        args = (offsets, member_id, member_epoch, generation, timeout_ms, future)
        if self._handed_over(lambda live: live.commit(*args)):
            return
        self._commits += 1
        sequence = self._commits
        message = OffsetCommitRequest(
            self.group_id,
            member_id,
            member_epoch,
            tuple(
                PartitionOffset(tp.topic, tp.partition, offset, metadata)
                for tp, (offset, metadata) in sorted(offsets.items())
            ),
        )

        def done(answer: Answer) -> None:
            if isinstance(answer, ZafkaError):
                with self.cond:
                    self.membership.on_commit_error(generation, answer)
                    self.cond.notify_all()
                self.group_pump()
                future.set_exception(answer)
            else:
                future.set_result(None)

        # A retried commit must never land after a newer one: it would move offsets back
        # (or, after a revocation, be refused and fence this member for nothing).
        self._group_request(message, timeout_ms, done, lambda: self._commits != sequence)

    def fetch_committed(self, tps: list, timeout_ms: int, future: Future) -> None:
        """`future` gets `{tp: (offset, metadata)}` of the committed offsets among `tps`."""
        if self._handed_over(lambda live: live.fetch_committed(tps, timeout_ms, future)):
            return
        message = OffsetFetchRequest(self.group_id, to_groups(tps))

        def done(answer: Answer) -> None:
            if isinstance(answer, ZafkaError):
                future.set_exception(answer)
            else:
                future.set_result(offsets_of(answer))

        self._group_request(message, timeout_ms, done)

    def leave_group(self, member_id: str, timeout_ms: int, future: Future) -> None:
        """LeaveGroup for `member_id`; `future` gets None or the ZafkaError."""
        if self._handed_over(lambda live: live.leave_group(member_id, timeout_ms, future)):
            return

        def done(answer: Answer) -> None:
            if isinstance(answer, ZafkaError):
                future.set_exception(answer)
            else:
                future.set_result(None)

        self._group_request(LeaveGroupRequest(self.group_id, member_id), timeout_ms, done)

    # --- requests to the coordinator -----------------------------------------------------------

    def _group_request(
        self,
        message: object,
        timeout_ms: int,
        done: Done,
        superseded: Callable[[], bool] = lambda: False,
    ) -> None:
        """`_group_call`, retried after retriable errors (with backoff) for `timeout_ms`,
        unless `superseded()` says a newer request made this one moot."""
        failures = 0
        deadline_ms = self._runtime().now_ms() + timeout_ms

        def attempt() -> None:
            remaining = deadline_ms - self._runtime().now_ms()
            self._group_call(message, min(max(remaining, 1), self.request_timeout_ms), answered)

        def answered(answer: Answer) -> None:
            nonlocal failures
            retry = not self.closing and not superseded()
            if isinstance(answer, ZafkaError) and answer.retriable and retry:
                failures += 1
                delay = self._backoff_ms(failures)
                if self._runtime().now_ms() + delay < deadline_ms:
                    self._later(delay, attempt)
                    return
            done(answer)

        attempt()

    def _group_call(self, message: object, timeout_ms: int, done: Done) -> None:
        """One attempt: `message` to the coordinator (found first if unknown); `done` gets the
        answer. Errors that say the coordinator moved make it be looked up again."""

        def send(coordinator: int | ZafkaError) -> None:
            if isinstance(coordinator, ZafkaError):
                done(coordinator)
                return
            target = f"{broker_node(coordinator)}/{group_actor_name(self.group_id)}"

            def on_reply(reply: Envelope | ZafkaError) -> None:
                answer = answer_of(reply)
                if isinstance(answer, ZafkaError):
                    self._coordinator_failed(coordinator, answer)
                done(answer)

            self._call(target, message, timeout_ms, on_reply)

        self._with_coordinator(send)

    def _coordinator_failed(self, coordinator: int, err: ZafkaError) -> None:
        name = err.error.name
        if self.coordinator != coordinator:
            return
        if name == "UNKNOWN_ACTOR":  # not spawned yet: its broker's FindCoordinator does that
            self.coordinator, self._ask = None, coordinator
        elif err.error.refind_coordinator:
            self.coordinator, self._ask = None, None

    def _with_coordinator(self, fn: Callable[[int | ZafkaError], None]) -> None:
        """`fn(coordinator id)` once it is known, or `fn(error)` if the lookup failed."""
        if self.coordinator is not None:
            fn(self.coordinator)
            return
        self._coordinator_waiters.append(fn)
        if not self._finding:
            self._finding = True
            self._find()

    def _find(self) -> None:
        if not self.metadata.brokers:  # know the brokers first (and link them)
            self.refresh_metadata((), self._metadata_for_find)
            return
        ask = self._ask
        node = broker_node(ask) if ask in self.metadata.brokers else None
        target = f"{node or self.any_broker()}/broker"
        request = FindCoordinatorRequest(self.group_id)
        self._call(target, request, self.request_timeout_ms, self._found)

    def _metadata_for_find(self, err: ZafkaError | None) -> None:
        if err is not None:
            self._find_done(err)
        else:
            self._find()

    def _found(self, reply: Envelope | ZafkaError) -> None:
        answer = answer_of(reply)
        if isinstance(answer, ZafkaError):
            self._find_done(answer)
            return
        response: FindCoordinatorResponse = answer  # type: ignore[assignment]
        node = response.node
        if node in self.metadata.brokers:
            self._find_done(node)
            return

        def after_metadata(err: ZafkaError | None) -> None:
            if node in self.metadata.brokers:
                self._find_done(node)
            else:
                detail = f"coordinator broker {node} is not in the metadata"
                self._find_done(err or ZafkaError("COORDINATOR_NOT_AVAILABLE", detail))

        self.refresh_metadata((), after_metadata)

    def _find_done(self, result: int | ZafkaError) -> None:
        """The lookup ended: waiters get the coordinator, or the error (retriable errors make
        their callers back off and try again)."""
        self._finding = False
        if isinstance(result, ZafkaError):
            log.info("%s: no coordinator for %r: %s", self.address, self.group_id, result)
        else:
            self.coordinator, self._ask = result, None
        waiting, self._coordinator_waiters = self._coordinator_waiters, []
        for fn in waiting:
            fn(result)


def offsets_of(response: object) -> dict:
    """`{tp: (offset, metadata)}` of an OffsetFetchResponse (offset -1: none committed)."""
    return {
        TopicPartition(o.topic, o.partition): (o.offset, o.metadata)
        for o in response.offsets  # type: ignore[attr-defined]
    }
