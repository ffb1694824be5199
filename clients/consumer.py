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

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import NamedTuple

from zafka import limits
from zafka.clients import io
from zafka.clients.consumer_config import (
    check_bool,
    check_group_config,
    check_int,
    check_subscription,
    check_tp,
    check_tps,
)
from zafka.clients.consumer_group import (
    CommitCallback,
    ConsumerGroup,
    ConsumerRebalanceListener,
    GroupConfig,
    OffsetAndMetadata,
    Partitions,
    _Callbacks,
)
from zafka.clients.drain import ConsumerRecord, TopicPartition, fresh
from zafka.clients.fetch_state import EARLIEST, LATEST, RESET_POLICIES, FetchState
from zafka.clients.fetcher import RETRY_BACKOFF_MAX_MS, FetcherActor, FetcherConfig
from zafka.clients.group_member import GroupMemberActor
from zafka.clients.io import ClientIO
from zafka.clients.membership import CommitFailedError, Membership
from zafka.errors import ZafkaError

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

ITERATION_POLL_MS = 1000  # how long one poll inside `for record in consumer` waits
CLOSE_GROUP_TIMEOUT_MS = 5000  # how long close() may spend committing and leaving the group


class GroupMetadata(NamedTuple):
    """Who this consumer is in its group (`Consumer.group_metadata`)."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None


class OffsetAndTimestamp(NamedTuple):
    """What `offsets_for_times` found: the first offset at or after the time, and its
    record's timestamp."""

    offset: int
    timestamp: int


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
        session_timeout_ms: int = 45_000,
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
        request_timeout_ms: int = 30_000,
        retry_backoff_ms: int = 100,
    ) -> None:
        if group_id is None:
            given = {
                "topics": topics,
                "pattern": pattern,
                "group_instance_id": group_instance_id,
                "assignor": assignor,
                "on_partitions_revoked": on_partitions_revoked,
                "on_partitions_assigned": on_partitions_assigned,
                "on_partitions_lost": on_partitions_lost,
            }
            for name, value in given.items():
                if value is not None:
                    raise ZafkaError(
                        "INVALID_CONFIG", f"{name} needs a group_id (consumer groups only)"
                    )
        else:
            check_group_config(group_id, group_instance_id, assignor)
        if auto_offset_reset not in RESET_POLICIES:
            raise ZafkaError(
                "INVALID_CONFIG",
                f"auto_offset_reset={auto_offset_reset!r}: expected 'latest', 'earliest' or 'none'",
            )
        max_bytes = check_int(
            "fetch_max_bytes", fetch_max_bytes, 1, limits.frame_bytes_max, "per fetch"
        )
        call_ms_max = limits.call_timeout_ms_max
        config = FetcherConfig(
            max_bytes,
            check_int("fetch_max_wait_ms", fetch_max_wait_ms, 1, 60_000, "ms a fetch may wait"),
            check_int("fetch_min_bytes", fetch_min_bytes, 1, max_bytes, "bytes a fetch waits for"),
            check_int("request_timeout_ms", request_timeout_ms, 1, call_ms_max, "ms per request"),
            check_int("retry_backoff_ms", retry_backoff_ms, 1, 60_000, "ms before a first retry"),
        )
        self._max_poll_records = check_int(
            "max_poll_records", max_poll_records, 1, limits.batch_records_max, "per poll"
        )
        session_ms = check_int(
            "session_timeout_ms", session_timeout_ms, 1, limits.session_timeout_ms_max, "ms"
        )
        group_config = GroupConfig(
            check_bool("enable_auto_commit", enable_auto_commit),
            check_int("auto_commit_interval_ms", auto_commit_interval_ms, 1, 86_400_000, "ms"),
            config.request_timeout_ms,
        )
        subscription = None
        if topics is not None or pattern is not None:
            subscription = check_subscription(topics, pattern)
        self._request_timeout_ms = config.request_timeout_ms
        self._retry_backoff_s = config.retry_backoff_ms / 1000
        self._cond = threading.Condition(threading.Lock())
        self._state = FetchState(
            RESET_POLICIES[auto_offset_reset],
            config.retry_backoff_ms,
            RETRY_BACKOFF_MAX_MS,
            config.fetch_max_wait_ms,
            config.fetch_max_bytes,
        )
        self._closed = threading.Event()
        self._polling = False
        self._group: ConsumerGroup | None = None
        membership: Membership | None = None
        if group_id is not None:
            membership = Membership(
                group_id,
                uuid.uuid4().hex,
                instance_id=group_instance_id,
                session_timeout_ms=session_ms,
                assignor=assignor,
                retry_backoff_ms=config.retry_backoff_ms,
                retry_backoff_max_ms=RETRY_BACKOFF_MAX_MS,
            )

        def make_actor(bootstrap: list[str], transport: object) -> FetcherActor:
            if membership is None:
                return FetcherActor(bootstrap, transport, config, self._state, self._cond)  # type: ignore[arg-type]
            return GroupMemberActor(
                bootstrap,
                transport,  # type: ignore[arg-type]
                config,
                self._state,
                self._cond,
                membership,
            )

        self._io = ClientIO("consumer", bootstrap_servers, make_actor)
        self._actor: FetcherActor = self._io.actor  # type: ignore[assignment]
        if membership is not None:
            listener = _Callbacks(on_partitions_revoked, on_partitions_assigned, on_partitions_lost)
            self._group = ConsumerGroup(
                membership, group_config, listener, self._state, self._cond, self._io
            )
            if subscription is not None:
                self._subscribe(*subscription, None)

    # --- group subscription ---------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] | None = None,
        *,
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Join the group (or change the subscription) with `topics` or a `pattern` (a
        regular expression a whole topic name must match; internal topics never do).
        `listener` replaces the rebalance callbacks. Needs a group_id; refused while
        partitions are assigned by hand."""
        if self._group is None:
            raise ZafkaError("INVALID_REQUEST", "subscribe needs a group_id; use assign() without")
        if topics is None and pattern is None:
            raise ZafkaError("INVALID_REQUEST", "subscribe to topics or a pattern")
        self._subscribe(*check_subscription(topics, pattern), listener)

    def _subscribe(
        self,
        topics: tuple[str, ...],
        pattern: str | None,
        listener: ConsumerRebalanceListener | None,
    ) -> None:
        group = self._group
        assert group is not None
        with self._cond:
            self._check_open()
            if self._state.partitions and not group.membership.subscribed:
                raise ZafkaError(
                    "INVALID_REQUEST", "partitions are assigned by hand: assign([]) first"
                )
            if listener is not None:
                group.listener = listener
            group.membership.subscribe(topics, pattern)
            self._group_actor().group_kick()

    def unsubscribe(self) -> None:
        """Leave the group: revoke the partitions (callbacks, commit with auto-commit), then
        LeaveGroup. `subscribe` joins again; `assign` is allowed again."""
        if self._group is None:
            return
        self._check_open()
        self._group.leave(self._request_timeout_ms, callbacks=True)

    def subscription(self) -> set[str] | str | None:
        """The subscribed topics, the pattern, or None when not subscribed."""
        if self._group is None:
            return None
        with self._cond:
            membership = self._group.membership
            if not membership.subscribed:
                return None
            return membership.pattern if membership.pattern is not None else set(membership.topics)

    @property
    def member_id(self) -> str | None:
        """This consumer's member id in its group (None without a group_id)."""
        return None if self._group is None else self._group.membership.member_id

    def group_metadata(self) -> GroupMetadata | None:
        """The group, member id, member epoch (0 while not a member) and instance id, as of
        now (None without a group_id)."""
        if self._group is None:
            return None
        with self._cond:
            m = self._group.membership
            return GroupMetadata(m.group_id, m.member_id, m.epoch, m.instance_id)

    def _group_actor(self) -> GroupMemberActor:
        return self._io.actor  # type: ignore[return-value]

    # --- assignment and positions ---------------------------------------------------------

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Read exactly these (topic, partition) pairs from now on (replacing the previous
        assignment; partitions kept keep their positions, new ones start per
        `auto_offset_reset`). INVALID_TOPIC for a bad topic name."""
        tps = check_tps(partitions, "assign")
        with self._cond:
            self._check_open()
            if self._group is not None and self._group.membership.subscribed:
                raise ZafkaError(
                    "INVALID_REQUEST", "subscribed to a group: unsubscribe() before assign()"
                )
            self._state.assign(tps)
            self._actor.kick()

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned now."""
        with self._cond:
            return set(self._state.partitions)

    def seek(self, partition: tuple[str, int], offset: int) -> None:
        """Make the next poll of `partition` start at `offset` (an offset outside the log
        is handled by `auto_offset_reset` when the broker says so)."""
        if type(offset) is not int or offset < 0:
            raise ZafkaError("INVALID_REQUEST", f"offset {offset!r}: expected an int >= 0")
        tp = check_tp(partition)
        with self._cond:
            self._check_open()
            self._state.seek(tp, offset)
            self._actor.kick()

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log start, looked up lazily."""
        self._reset(partitions, EARLIEST)

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log end, looked up lazily: call
        `position` to pin it before producing what you then expect to read."""
        self._reset(partitions, LATEST)

    def _reset(self, partitions: Iterable[tuple[str, int]] | None, timestamp: int) -> None:
        with self._cond:
            self._check_open()
            tps = (
                list(self._state.partitions)
                if partitions is None
                else check_tps(partitions, "seek")
            )
            for tp in tps:
                self._state.reset(tp, timestamp)
            self._actor.kick()

    def position(self, partition: tuple[str, int], timeout_ms: int | None = None) -> int:
        """The offset of the next record poll returns for `partition`, looked up first if
        needed (waiting up to `timeout_ms`, default `request_timeout_ms`; then the last
        error seen, or REQUEST_TIMED_OUT)."""
        tp = check_tp(partition)
        deadline = self._deadline(timeout_ms)
        with self._cond:
            while True:
                self._check_open()
                ps = self._state.get(tp)
                if self._state.settle(ps):
                    self._actor.kick()
                if ps.error is not None:
                    raise fresh(ps.error)
                if ps.position is not None:
                    return ps.position
                self._actor.kick()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timed_out(f"position of {tp}", ps.last_error)
                self._cond.wait(remaining)

    def highwater(self, partition: tuple[str, int]) -> int | None:
        """The partition's high watermark as the last fetch said (None before one); the lag
        is `highwater - position`."""
        with self._cond:
            hw = self._state.get(check_tp(partition)).high_watermark
        return None if hw < 0 else hw

    def offsets_for_times(
        self, timestamps: Mapping[tuple[str, int], int], timeout_ms: int | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first offset whose record timestamp is >= the time given
        (ms) and that record's timestamp, or None when there is none. Any partition, assigned
        or not; retries within `timeout_ms` (default `request_timeout_ms`)."""
        wanted: dict[TopicPartition, int] = {}
        for partition, ts in timestamps.items():
            if type(ts) is not int or ts < 0:
                raise ZafkaError("INVALID_REQUEST", f"timestamp {ts!r}: expected ms >= 0")
            wanted[check_tp(partition)] = ts
        deadline = self._deadline(timeout_ms)
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        last: ZafkaError | None = None  # the last retriable error, for the timeout's message
        backoff_s = self._retry_backoff_s
        while wanted:
            self._check_open()
            futures = {
                tp: self._io.submit(lambda f, tp=tp, ts=ts: self._actor.list_offsets(tp, ts, f))
                for tp, ts in wanted.items()
            }
            retry: dict[TopicPartition, int] = {}
            for tp, future in futures.items():
                try:
                    offset, ts = io.result(future, max(deadline - time.monotonic(), 0))
                except ZafkaError as err:
                    if not err.retriable or self._closed.is_set():
                        raise
                    retry[tp] = wanted[tp]
                    if last is None or err.error.name != "REQUEST_TIMED_OUT":
                        last = err
                    continue
                found[tp] = None if offset < 0 else OffsetAndTimestamp(offset, ts)
            wanted = retry
            if wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timed_out("offsets_for_times", last)
                self._closed.wait(min(backoff_s, remaining))
                backoff_s = min(backoff_s * 2, max(RETRY_BACKOFF_MAX_MS / 1000, backoff_s))
        return found

    # --- pause and resume -----------------------------------------------------------------

    def pause(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Stop returning and fetching records of `partitions` (what was prefetched is
        dropped and fetched again after `resume`); positions stay."""
        with self._cond:
            self._check_open()
            for tp in check_tps(partitions, "pause"):
                self._state.pause(tp)

    def resume(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Fetch and return records of paused `partitions` again, from their positions."""
        with self._cond:
            self._check_open()
            for tp in check_tps(partitions, "resume"):
                self._state.resume(tp)
            self._actor.kick()

    def paused(self) -> set[TopicPartition]:
        with self._cond:
            return {tp for tp, ps in self._state.partitions.items() if ps.paused}

    # --- offsets and lag --------------------------------------------------------------------

    def commit(
        self,
        offsets: Mapping[tuple[str, int], int | OffsetAndMetadata | tuple[int, str]] | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        """Commit, and wait (at most `timeout_ms`, default `request_timeout_ms`): the
        positions of every partition (the offsets after the records handed out), or
        `offsets` ({tp: offset, OffsetAndMetadata or (offset, metadata)}: the next offset to
        read). Needs a group_id. CommitFailedError (FENCED_MEMBER_EPOCH or
        UNKNOWN_MEMBER_ID) when the group no longer counts these partitions as this member's:
        they were lost (the member joins again), and their records since the last commit may
        be delivered again. Manually assigned partitions are committed as no member (the
        coordinator accepts that only while the group has no members)."""
        group = self._require_group("commit")
        timeout = self._timeout_ms(timeout_ms)
        self._check_open()
        group.run_commit_callbacks()
        group.commit(self._offsets(group, offsets), timeout)

    def commit_async(
        self,
        offsets: Mapping[tuple[str, int], int | OffsetAndMetadata | tuple[int, str]] | None = None,
        callback: CommitCallback | None = None,
    ) -> Future:
        """Commit without waiting (as `commit`). `callback(offsets, error or None)` runs on
        your thread in a later `poll`, `commit` or `close`; the returned future completes on
        the I/O thread."""
        group = self._require_group("commit_async")
        self._check_open()
        return group.commit_async(self._offsets(group, offsets), callback, self._request_timeout_ms)

    def _offsets(
        self, group: ConsumerGroup, offsets: Mapping | None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        if offsets is None:
            with self._cond:
                return group.positions()
        if not isinstance(offsets, Mapping):
            raise ZafkaError("INVALID_REQUEST", "offsets: expected a {(topic, partition): offset}")
        checked = {}
        for tp, value in offsets.items():
            om = OffsetAndMetadata(*value) if isinstance(value, tuple) else OffsetAndMetadata(value)
            if type(om.offset) is not int or om.offset < 0 or not isinstance(om.metadata, str):
                raise ZafkaError(
                    "INVALID_REQUEST", f"offset {value!r} of {tp}: expected an int >= 0"
                )
            checked[check_tp(tp)] = om
        return checked

    def committed(
        self, partitions: Iterable[tuple[str, int]], timeout_ms: int | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets of `partitions` (any partitions; None where nothing
        is committed), waiting at most `timeout_ms` (default `request_timeout_ms`)."""
        group = self._require_group("committed")
        tps = check_tps(partitions, "committed")
        timeout = self._timeout_ms(timeout_ms)
        self._check_open()
        return group.committed(tps, timeout) if tps else {}

    def lag(self, partition: tuple[str, int]) -> int | None:
        """How many records of an assigned partition are still to be read: its high
        watermark (as the last fetch said) minus its position; None until both are known."""
        with self._cond:
            ps = self._state.get(check_tp(partition))
            hw, position = ps.high_watermark, ps.position
        return None if hw < 0 or position is None else max(hw - position, 0)

    def lags(self) -> dict[TopicPartition, int | None]:
        """`lag` of every assigned partition."""
        with self._cond:
            parts = list(self._state.partitions.values())
            return {
                ps.tp: None
                if ps.high_watermark < 0 or ps.position is None
                else max(ps.high_watermark - ps.position, 0)
                for ps in parts
            }

    def _require_group(self, what: str) -> ConsumerGroup:
        if self._group is None:
            raise ZafkaError("INVALID_REQUEST", f"{what} needs a group_id")
        return self._group

    def _timeout_ms(self, timeout_ms: int | None) -> int:
        if timeout_ms is None:
            return self._request_timeout_ms
        if type(timeout_ms) is not int or timeout_ms < 1:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 1")
        return timeout_ms

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
        deadline = time.monotonic() + timeout_ms / 1000
        cond, state, actor, group = self._cond, self._state, self._actor, self._group
        with cond:
            if self._polling:
                raise ZafkaError("INVALID_REQUEST", "poll is already running in another thread")
            self._polling = True
        try:
            if group is not None:
                self._check_open()
                group.run_commit_callbacks()
                group.maybe_auto_commit()
            while True:
                if group is not None:
                    self._check_open()
                    group.run_tasks()
                with cond:
                    self._check_open()
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
                        remaining = deadline - time.monotonic()
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
                records = self.poll(ITERATION_POLL_MS)
            except ZafkaError as err:
                if self._closed.is_set() and err.error.name == "STOPPED":
                    return
                raise
            yield from records

    # --- lifecycle ------------------------------------------------------------------------

    def close(self, timeout_ms: int = CLOSE_GROUP_TIMEOUT_MS) -> None:
        """Stop fetching and the I/O thread; a poll blocked in another thread raises STOPPED
        at once. Idempotent; callable from any thread.

        In a group: the partitions are revoked (callbacks, unless a poll is running in
        another thread), the positions committed with auto-commit on, and the member leaves
        the group at once, unless it is static; within `timeout_ms` (then its session
        expires instead)."""
        with self._cond:
            if self._closed.is_set():
                return
            polling = self._polling
            if polling:  # wake a poll of another thread first: it raises STOPPED
                self._closed.set()
                self._cond.notify_all()
        group = self._group
        if group is not None:
            try:
                group.leave(max(timeout_ms, 1), callbacks=not polling)
                if not polling:
                    group.run_commit_callbacks()
            except Exception:
                log.exception("leaving the group on close failed")
        with self._cond:
            self._closed.set()
            self._actor.closing = True
            self._cond.notify_all()
        self._io.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ZafkaError("STOPPED", "the consumer is closed")

    def _deadline(self, timeout_ms: int | None) -> float:
        if timeout_ms is None:
            timeout_ms = self._request_timeout_ms
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 0")
        return time.monotonic() + timeout_ms / 1000


def _timed_out(what: str, last: ZafkaError | None) -> ZafkaError:
    """The error for a wait that ran out: the last error seen (with its code), else
    REQUEST_TIMED_OUT."""
    if last is None:
        return ZafkaError("REQUEST_TIMED_OUT", f"{what}: no answer in time")
    return ZafkaError(last.error.name, f"{what}: not done in time; last: {last.detail}")
