"""The Consumer: read records from partitions you assign, or as a member of a consumer group
(DESIGN §8).

    from zafka import Consumer
    with Consumer("127.0.0.1:9092", auto_offset_reset="earliest") as consumer:
        consumer.assign([("orders", 0)])
        for record in consumer:                   # blocks for records until closed
            print(record.offset, record.key, record.value)

    with Consumer("127.0.0.1:9092", group_id="billing", topics=["orders"]) as consumer:
        for record in consumer:                   # the group shares the partitions out
            handle(record)                        # auto-commit: at-least-once

**Groups.** With `group_id` and a subscription (`topics=[...]` or `pattern="regex"`, in the
constructor or `subscribe`), the group's coordinator decides which partitions this consumer
reads, and moves them incrementally: a partition moves only after its previous owner has
stopped, committed and confirmed; partitions that do not move are never paused. The
membership (join, heartbeats at the coordinator's interval, reconciliation) runs on the I/O
thread (clients/group_member.py over the pure clients/membership.py); the rebalance callbacks
run on your thread inside `poll` (clients/consumer_group.py says exactly when). A group
consumer's positions start at the group's committed offsets (else `auto_offset_reset`).
Offsets: `commit()` (positions of the records handed out), `commit(offsets)`,
`commit_async()`, `committed()`, and with `enable_auto_commit` (default) every
`auto_commit_interval_ms` at the start of a `poll`, for the records earlier polls handed out
(at-least-once). A member fenced by the coordinator, or whose session expired, loses its
partitions (`on_partitions_lost`, no commit) and joins again; a commit it made for them raises
`CommitFailedError` (FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID). `close` commits (auto-commit)
and leaves the group at once, unless the member is static (`group_instance_id`: it takes its
partitions back when it returns within the session timeout).

Threads: the user's thread calls the methods (one thread at a time; `close` may come from any
thread and wakes a blocked `poll`). The client's I/O thread (clients/io.py) runs a
`FetcherActor` (clients/fetcher.py) that sends the fetches and ListOffsets requests the
`FetchState` (clients/fetch_state.py, pure) plans to each partition's leader, and files the
answers; both threads share the state under one lock. Records are decoded on the user's
thread, in `poll`, as lean `ConsumerRecord` tuples.

Prefetching: as soon as `poll` starts on one fetch response of a partition, the next fetch
for it goes out (long polling: the broker holds it up to `fetch_max_wait_ms` until
`fetch_min_bytes` are there), so it is in flight while the user handles these records; more
follow while less than `fetch_max_bytes` waits unreturned. So a partition that trickles keeps
a fetch parked at the broker, and what a partition prefetches is bounded by `fetch_max_bytes`,
not by a count of responses: besides the response `poll` is working through, less than
`fetch_max_bytes` waits when a fetch goes out, plus that fetch's answer.

Positions follow Kafka: a newly assigned partition starts where `auto_offset_reset` says
("latest", "earliest", or "none": poll raises OFFSET_OUT_OF_RANGE until you seek), as does
a position that falls outside the log. `seek_to_beginning` and `seek_to_end` are lazy: the
offset is looked up at the next `poll` or `position`.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from zafka import clock, limits
from zafka.clients.consumer_config import (
    check_fetch_config,
    check_group_settings,
    check_int,
    check_reset_policy,
)
from zafka.clients.consumer_core import ConsumerCore
from zafka.clients.consumer_group import (
    Callbacks,
    ConsumerGroup,
    ConsumerRebalanceListener,
    OffsetAndMetadata,
    Partitions,
)
from zafka.clients.consumer_group_calls import GroupCalls, GroupMetadata
from zafka.clients.consumer_positions import OffsetAndTimestamp, Positions
from zafka.clients.drain import ConsumerRecord, fresh
from zafka.clients.fetch_state import FetchState
from zafka.clients.fetcher import FetcherActor
from zafka.clients.group_member import GroupMemberActor
from zafka.clients.io import ClientIO
from zafka.clients.membership import CommitFailedError, Membership
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

__all__ = [
    "CommitFailedError",
    "Consumer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "GroupMetadata",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "TopicPartition",
]

log = logging.getLogger(__name__)


def _by(part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A Consumer method that is `method` of its part `part` (same name, signature, help)."""

    @functools.wraps(method)
    def call(self: Consumer, *args: Any, **kwargs: Any) -> Any:
        return method(getattr(self, part), *args, **kwargs)

    return call


class Consumer:
    """Reads records from assigned partitions, or as a group member; see the module docstring.

    `bootstrap_servers`: "host:port" (or "tcp://host:port"), a list of them or one
    comma-separated string. Fetching: `fetch_max_bytes` per partition and fetch (a batch
    larger than that still comes whole), `fetch_max_wait_ms` how long the broker may hold a
    fetch until `fetch_min_bytes` are there. `max_poll_records`: the most one `poll` returns.
    `auto_offset_reset`: where a partition without a valid (or committed) position starts.
    Requests wait `request_timeout_ms` (also the default bound of `position`, `commit`,
    `committed` and `offsets_for_times`) and are retried after `retry_backoff_ms`, doubling up
    to 1 s. Close it when done.

    Groups: `group_id`, with `topics` or `pattern` (a regular expression a whole topic name
    must match) to subscribe at once (else call `subscribe`). `group_instance_id` makes a
    static member. `session_timeout_ms`: how long the coordinator keeps a silent member
    (heartbeats go at the coordinator's interval). `enable_auto_commit`,
    `auto_commit_interval_ms`: see the module docstring. `on_partitions_revoked`,
    `on_partitions_assigned`, `on_partitions_lost`: rebalance callbacks, each given a set of
    TopicPartitions (or pass a `ConsumerRebalanceListener` to `subscribe`). `assignor`: the
    server-side assignor this member prefers ("uniform" or "range"; None: the group's)."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        group_id: str | None = None,
        topics: Iterable[str] | None = None,
        pattern: str | None = None,
        group_instance_id: str | None = None,
        session_timeout_ms: int = limits.group_session_timeout_ms,
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5_000,
        on_partitions_revoked: Callable[[Partitions], object] | None = None,
        on_partitions_assigned: Callable[[Partitions], object] | None = None,
        on_partitions_lost: Callable[[Partitions], object] | None = None,
        assignor: str | None = None,
        fetch_max_bytes: int = 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        max_poll_records: int = 500,
        auto_offset_reset: str = "latest",
        request_timeout_ms: int = limits.request_timeout_ms,
        retry_backoff_ms: int = limits.retry_backoff_ms,
    ) -> None:
        callbacks = Callbacks(on_partitions_revoked, on_partitions_assigned, on_partitions_lost)
        fetch = check_fetch_config(
            fetch_max_bytes,
            fetch_max_wait_ms,
            fetch_min_bytes,
            request_timeout_ms,
            retry_backoff_ms,
        )
        reset = check_reset_policy(auto_offset_reset)
        group = check_group_settings(
            group_id,
            topics,
            pattern,
            group_instance_id,
            session_timeout_ms,
            enable_auto_commit,
            auto_commit_interval_ms,
            assignor,
            callbacks,
            fetch.request_timeout_ms,
        )
        self._max_poll_records = check_int(
            "max_poll_records", max_poll_records, 1, limits.batch_records_max, "per poll"
        )
        backoff_max_ms = limits.retry_backoff_ms_max
        state = FetchState(
            reset,
            fetch.retry_backoff_ms,
            backoff_max_ms,
            fetch.fetch_max_wait_ms,
            fetch.fetch_max_bytes,
        )
        core = ConsumerCore(
            threading.Condition(threading.Lock()),
            state,
            fetch.request_timeout_ms,
            fetch.retry_backoff_ms,
        )
        self._core, self._polling = core, False
        self._positions, self._groups = Positions(core), GroupCalls(core)
        membership = None
        if group is not None:
            membership = Membership(
                group.group_id,
                uuid.uuid4().hex,
                instance_id=group.instance_id,
                session_timeout_ms=group.session_timeout_ms,
                assignor=group.assignor,
                retry_backoff_ms=fetch.retry_backoff_ms,
                retry_backoff_max_ms=backoff_max_ms,
            )

        def make_actor(bootstrap: list[str], transport: Any) -> FetcherActor:
            if membership is None:
                return FetcherActor(bootstrap, transport, fetch, state, core.cond)
            return GroupMemberActor(bootstrap, transport, fetch, state, core.cond, membership)

        core.io = ClientIO("consumer", bootstrap_servers, make_actor)
        core.actor = core.io.actor  # type: ignore[assignment]
        if group is not None and membership is not None:
            core.group = ConsumerGroup(
                membership, group.config, group.listener, state, core.cond, core.io
            )
            if group.subscription is not None:
                self._groups.join(*group.subscription, None)

    assign = _by("_positions", Positions.assign)
    assignment = _by("_positions", Positions.assignment)
    seek = _by("_positions", Positions.seek)
    seek_to_beginning = _by("_positions", Positions.seek_to_beginning)
    seek_to_end = _by("_positions", Positions.seek_to_end)
    position = _by("_positions", Positions.position)
    highwater = _by("_positions", Positions.highwater)
    offsets_for_times = _by("_positions", Positions.offsets_for_times)
    pause = _by("_positions", Positions.pause)
    resume = _by("_positions", Positions.resume)
    paused = _by("_positions", Positions.paused)

    subscribe = _by("_groups", GroupCalls.subscribe)
    unsubscribe = _by("_groups", GroupCalls.unsubscribe)
    subscription = _by("_groups", GroupCalls.subscription)
    member_id = property(_by("_groups", GroupCalls.member_id.fget))  # type: ignore[arg-type]
    group_metadata = _by("_groups", GroupCalls.group_metadata)
    commit = _by("_groups", GroupCalls.commit)
    commit_async = _by("_groups", GroupCalls.commit_async)
    committed = _by("_groups", GroupCalls.committed)
    lag = _by("_groups", GroupCalls.lag)
    lags = _by("_groups", GroupCalls.lags)

    # --- polling --------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 0) -> list[ConsumerRecord]:
        """Records of the assigned, unpaused partitions, up to `max_poll_records`, in offset
        order per partition; waits up to `timeout_ms` for some (an empty list then). Raises a
        partition's error (OFFSET_OUT_OF_RANGE under policy "none", an undecodable batch,
        ...), and STOPPED once the consumer is closed.

        In a group, a poll first auto-commits (when due) what earlier polls handed out, then
        runs the rebalance callbacks due (revoking, starting, dropping lost partitions), and
        raises what a callback raised, or the group's fatal error (e.g.
        GROUP_MAX_SIZE_REACHED). With no partitions yet, it waits for some."""
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 0")
        deadline = clock.monotonic_s() + timeout_ms / 1000
        core = self._core
        cond, state, actor, group = core.cond, core.state, core.actor, core.group
        with cond:
            if self._polling:
                raise ZafkaError("INVALID_REQUEST", "poll is already running in another thread")
            self._polling = True
        try:
            if group is not None:
                core.check_open()
                group.run_commit_callbacks()
                group.maybe_auto_commit()
            while True:
                if group is not None:
                    core.check_open()
                    group.run_tasks()
                with cond:
                    core.check_open()
                    if group is not None:
                        membership = group.membership
                        if membership.error is not None:
                            raise fresh(membership.error)
                        if membership.has_task():
                            continue  # a rebalance came in meanwhile: its callbacks first
                    if not state.partitions and not (group and group.membership.subscribed):
                        raise ZafkaError(
                            "INVALID_REQUEST", "no partitions assigned: assign or subscribe first"
                        )
                    try:
                        ready, kick = state.claim()
                    except ZafkaError:
                        actor.kick()  # a reset claim() started before it raised goes out
                        raise
                    if kick:
                        actor.kick()
                    if not ready:
                        remaining = deadline - clock.monotonic_s()
                        if remaining <= 0:
                            return []
                        cond.wait(remaining)
                        continue
                # Decoding happens outside the lock: the I/O thread never touches a drain or
                # the position of a partition that has one, so nothing moves under us.
                records: list[ConsumerRecord] = []
                quota = self._max_poll_records
                taken = []
                for ps in ready:
                    drain, position = ps.drain, ps.position
                    assert drain is not None and position is not None  # claim() says so
                    position = drain.take(records, position, quota - len(records))
                    taken.append((ps, drain, position))
                    if len(records) >= quota:
                        break
                with cond:
                    for ps, drain, position in taken:
                        state.commit(ps, drain, position)
                if records:
                    return records
        finally:
            self._polling = False

    def __iter__(self) -> Iterator[ConsumerRecord]:
        """Every record, as it comes, until the consumer is closed."""
        while True:
            try:
                records = self.poll(limits.iteration_poll_ms)
            except ZafkaError as err:
                if self._core.closed.is_set() and err.error.name == "STOPPED":
                    return
                raise
            yield from records

    # --- lifecycle ------------------------------------------------------------------------

    def close(self, timeout_ms: int = limits.group_close_timeout_ms) -> None:
        """Stop fetching and the I/O thread; a poll blocked in another thread raises STOPPED
        at once. Idempotent; callable from any thread.

        In a group: the partitions are revoked (callbacks, unless a poll is running in
        another thread), the positions committed with auto-commit on, and the member leaves
        the group at once, unless it is static; within `timeout_ms` (then its session
        expires instead)."""
        core = self._core
        with core.cond:
            if core.closed.is_set():
                return
            polling = self._polling
            if polling:  # wake a poll of another thread first: it raises STOPPED
                core.closed.set()
                core.cond.notify_all()
        group = core.group
        if group is not None:
            try:
                group.leave(max(timeout_ms, 1), callbacks=not polling)
                if not polling:
                    group.run_commit_callbacks()
            except Exception:
                log.exception("leaving the group on close failed")
        with core.cond:
            core.closed.set()
            core.actor.closing = True
            core.cond.notify_all()
        core.io.close()

    @property
    def closed(self) -> bool:
        return self._core.closed.is_set()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
