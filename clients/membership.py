"""A consumer's side of the group protocol: what the member owns, what it must revoke, start
or drop, its epoch and its fencing. Pure: no I/O, threads or clock (`now_ms` comes in).

Both of the Consumer's threads use one `Membership`, always under the Consumer's lock:

- the **I/O thread** (clients/group_member.py) asks `outgoing(now_ms)` what to send to the
  coordinator (a JoinGroup, a Heartbeat, an OffsetFetch for partitions about to start) and
  files each answer (`on_join`, `on_heartbeat`, `on_offsets`, `on_commit_error`);
- the **user's thread**, inside `poll`, asks `next_task()` what to do with partitions
  (revoke, start, drop as lost), runs the user's callbacks without the lock, and reports
  `done(task)`.

The coordinator's rules (actors/group/state.py) as the member follows them:

- Joining means owning nothing. The answer (and every heartbeat's) carries the member epoch
  and `assignment`, the partitions the member must own now.
- **Revoke** `owned - assignment`: the user's thread stops fetching them, calls
  `on_partitions_revoked`, commits their positions, drops them (`done`); only then do they
  leave `owned`, and a heartbeat goes out at once to confirm (the coordinator gives them to
  their next owner only after that). Until then every heartbeat still lists them.
- **Start** `assignment - owned`, once their committed offsets are known (an OffsetFetch sent
  after the assignment came, so it sees the previous owner's last commit). They count as
  owned from the moment the task is handed out, so a heartbeat can never release a partition
  the user's thread is still starting.
- Partitions in both sets are never touched (no stop-the-world).
- FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID (from a heartbeat or a commit), or no heartbeat
  answered for a whole session: every owned partition is **lost**. They leave `owned` at
  once (the coordinator may have given them away), the user's thread drops them without
  committing (`on_partitions_lost`), and the member joins again straight away with the same
  member id. Commits of lost partitions are refused locally (`CommitFailedError`).

A *generation* counts joins: a task or answer of an older generation is stale. Heartbeats
report `owned` (always all of it); one heartbeat, one join and one OffsetFetch are in flight
at most; failures back off (`retry_backoff_ms` doubling up to `retry_backoff_max_ms`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from zafka import limits
from zafka.backoff import backoff_ms
from zafka.errors import ZafkaError
from zafka.transport.group import (
    HeartbeatRequest,
    JoinGroupRequest,
    OffsetFetchRequest,
    TopicPartitions,
)
from zafka.transport.names import TopicPartition

TP = TopicPartition

# Membership states.
UNSUBSCRIBED = "unsubscribed"  # no subscription (or left): no group traffic
JOINING = "joining"  # a JoinGroup is due or in flight
MEMBER = "member"  # joined: heartbeats
LEAVING = "leaving"  # close/unsubscribe: releasing what it owns, then LeaveGroup; no traffic
FAILED = "failed"  # a fatal error (`error`), raised by every poll

# Task kinds, in the order the user's thread does them.
LOST = "lost"
REVOKE = "revoke"
ASSIGN = "assign"


class CommitFailedError(ZafkaError):
    """A commit the group refused, or that could not be sent because the member no longer
    owns the partitions (fenced, expired, revoked). The name says why (FENCED_MEMBER_EPOCH or
    UNKNOWN_MEMBER_ID); the member has joined again, and the records since the last commit
    may be delivered again to whoever owns the partitions now."""


class Task(NamedTuple):
    """Something the user's thread must do with `partitions` (see the module docstring)."""

    kind: str  # LOST, REVOKE or ASSIGN
    partitions: frozenset[TopicPartition]
    generation: int
    offsets: Mapping[TopicPartition, int]  # ASSIGN: committed offset per partition, -1 none


class Outgoing(NamedTuple):
    """What the I/O thread sends now (each at most once; `generation` is passed back with the
    answer), and when to ask again (`wake_ms`, None: when something changes)."""

    join: JoinGroupRequest | None = None
    heartbeat: HeartbeatRequest | None = None
    offset_fetch: OffsetFetchRequest | None = None
    generation: int = 0
    wake_ms: int | None = None


class Assignment(NamedTuple):
    """The part of a JoinGroupResponse / HeartbeatResponse the member acts on."""

    member_epoch: int
    heartbeat_interval_ms: int
    partitions: frozenset[TopicPartition]


def to_tps(groups: Iterable[TopicPartitions]) -> frozenset[TopicPartition]:
    return frozenset(TP(g.topic, p) for g in groups for p in g.partitions)


def to_groups(tps: Iterable[TopicPartition]) -> tuple[TopicPartitions, ...]:
    """Partitions by topic, sorted (the wire form)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append(partition)
    return tuple(TopicPartitions(t, tuple(sorted(ps))) for t, ps in sorted(by_topic.items()))


class Membership:
    """One consumer's membership of one group; see the module docstring. Not thread-safe by
    itself: the caller holds the Consumer's lock around every call."""

    def __init__(
        self,
        group_id: str,
        member_id: str,
        *,
        instance_id: str | None = None,
        session_timeout_ms: int = limits.group_session_timeout_ms,
        assignor: str | None = None,
        retry_backoff_ms: int = limits.retry_backoff_ms,
        retry_backoff_max_ms: int = limits.retry_backoff_ms_max,
    ) -> None:
        self.group_id = group_id
        self.member_id = member_id
        self.instance_id = instance_id
        self.session_timeout_ms = session_timeout_ms
        self.assignor = assignor
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = max(retry_backoff_max_ms, retry_backoff_ms)
        self.state = UNSUBSCRIBED
        self.topics: tuple[str, ...] = ()
        self.pattern: str | None = None
        self.generation = 0
        self.epoch = 0  # the member epoch of the last answer (0: not a member)
        self.heartbeat_interval_ms = 0
        self.owned: frozenset[TopicPartition] = frozenset()  # held by the user's thread
        self.target: frozenset[TopicPartition] = frozenset()  # the last answer's assignment
        self.lost: frozenset[TopicPartition] = frozenset()  # to drop, on the user's thread
        self.error: ZafkaError | None = None  # FAILED: why
        self.fenced_by: ZafkaError | None = None  # why the partitions were last lost
        self._lost_last: frozenset[TopicPartition] = frozenset()  # what that fencing took
        self.last_ok_ms: int | None = None  # the last join or heartbeat answered
        self.join_sent = False  # since the last `left`: a LeaveGroup is worth sending
        self._committed: dict[TopicPartition, int] = {}  # for partitions about to start
        self._entered: dict[TopicPartition, int] = {}  # target version it (re)entered at
        self._target_version = 0
        # The generation each request in flight was sent at (None: none in flight).
        self._join_in_flight: int | None = None
        self._heartbeat_in_flight: int | None = None
        self._offsets_in_flight: int | None = None
        self._offsets_asked: frozenset[TopicPartition] = frozenset()
        self._offsets_version = 0
        self._heartbeat_now = False
        self._next_heartbeat_ms = 0
        self._retry_at_ms = 0  # join, heartbeat
        self._offsets_retry_at_ms = 0
        self._failures = 0
        self._offsets_failures = 0
        self._subscription_version = 0  # bumped by subscribe
        self._subscription_acked = 0  # the version the coordinator has
        self._subscription_sent = 0  # the version the heartbeat in flight carries

    # --- the user's thread: subscription ------------------------------------------------------

    @property
    def subscribed(self) -> bool:
        return self.state in (JOINING, MEMBER, FAILED)

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None) -> None:
        """Set the subscription (topics or a pattern): join, or tell the coordinator in the
        next heartbeat (sent at once)."""
        self.topics = tuple(sorted(set(topics)))
        self.pattern = pattern
        self._subscription_version += 1
        if self.state in (UNSUBSCRIBED, LEAVING):
            self._start_joining()
        elif self.state == MEMBER:
            self._heartbeat_now = True

    def leave(self) -> None:
        """Close or unsubscribe: stop the group traffic; `next_task` now revokes everything
        owned (and drops what is lost). Then `left()` once the LeaveGroup is done."""
        if self.state == UNSUBSCRIBED:
            return
        self.state = LEAVING
        self.target = frozenset()
        self._committed.clear()

    def left(self) -> None:
        """The member left (or will be removed by its session): no longer in the group, and
        it holds no partitions."""
        self.state = UNSUBSCRIBED
        self.generation += 1
        self._join_in_flight = self._heartbeat_in_flight = self._offsets_in_flight = None
        self.epoch = 0
        self.join_sent = False
        self.target = frozenset()
        self.lost = self.owned = frozenset()  # the caller dropped them from the fetch state
        self._committed.clear()
        self._entered.clear()

    def _start_joining(self) -> None:
        """A new generation: answers to requests of the old one are ignored."""
        self.state = JOINING
        self.generation += 1
        self._join_in_flight = self._heartbeat_in_flight = self._offsets_in_flight = None
        self.epoch = 0
        self.target = frozenset()
        self._committed.clear()
        self._entered.clear()
        self._heartbeat_now = False
        self._retry_at_ms = 0
        self._failures = 0

    # --- the I/O thread: what to send ----------------------------------------------------------

    def outgoing(self, now_ms: int) -> Outgoing:
        """The requests to send now (marked in flight), and when to ask again."""
        join = heartbeat = offset_fetch = None
        wake: list[int] = []
        if self.state == JOINING and self._join_in_flight is None and not self.lost:
            # Not before the user's thread dropped what was lost: joining hands it on.
            if now_ms >= self._retry_at_ms:
                join = self._join_request()
            else:
                wake.append(self._retry_at_ms)
        elif self.state == MEMBER:
            if self._heartbeat_in_flight is None:
                due = self._next_heartbeat_ms
                if self._heartbeat_now or self._subscription_version != self._subscription_acked:
                    due = min(due, self._retry_at_ms)
                if now_ms >= due:
                    heartbeat = self._heartbeat_request()
                else:
                    wake.append(due)
            if self._offsets_in_flight is None:
                wanted = self._offsets_wanted()
                if wanted and now_ms >= self._offsets_retry_at_ms:
                    self._offsets_in_flight, self._offsets_asked = self.generation, wanted
                    self._offsets_version = self._target_version
                    offset_fetch = OffsetFetchRequest(self.group_id, to_groups(wanted))
                elif wanted:
                    wake.append(self._offsets_retry_at_ms)
        return Outgoing(join, heartbeat, offset_fetch, self.generation, min(wake, default=None))

    def _join_request(self) -> JoinGroupRequest:
        self._join_in_flight, self.join_sent = self.generation, True
        self._subscription_sent = self._subscription_version
        return JoinGroupRequest(
            self.group_id,
            self.member_id,
            self.instance_id,
            self.topics,
            self.pattern,
            self.assignor,
            self.session_timeout_ms,
        )

    def _heartbeat_request(self) -> HeartbeatRequest:
        self._heartbeat_in_flight = self.generation
        self._heartbeat_now = False
        topics: tuple[str, ...] | None = None
        pattern: str | None = None
        changed = self._subscription_version != self._subscription_acked
        if changed:  # a changed subscription rides along until the coordinator has it
            topics, pattern = self.topics, self.pattern
        self._subscription_sent = self._subscription_version
        return HeartbeatRequest(
            self.group_id,
            self.member_id,
            self.epoch,
            to_groups(self.owned),
            topics if changed else None,
            pattern,
        )

    def _offsets_wanted(self) -> frozenset[TopicPartition]:
        return frozenset(tp for tp in self.target - self.owned if tp not in self._committed)

    def forget_in_flight(self) -> None:
        """The I/O thread's actor was replaced (after a crash): nothing is in flight any more."""
        self._join_in_flight = self._heartbeat_in_flight = self._offsets_in_flight = None

    # --- the I/O thread: answers ---------------------------------------------------------------

    def on_join(self, generation: int, answer: Assignment | ZafkaError, now_ms: int) -> None:
        """A JoinGroup sent at `generation` was answered."""
        if generation != self.generation or self._join_in_flight != generation:
            return
        self._join_in_flight = None
        if self.state != JOINING:
            return
        if isinstance(answer, ZafkaError):
            self._failed(answer, now_ms)
            return
        self.state = MEMBER
        self._subscription_acked = self._subscription_sent
        self._answered(answer, now_ms)

    def on_heartbeat(self, generation: int, answer: Assignment | ZafkaError, now_ms: int) -> None:
        """A Heartbeat sent at `generation` was answered."""
        if generation != self.generation or self._heartbeat_in_flight != generation:
            return
        self._heartbeat_in_flight = None
        if self.state != MEMBER:
            return
        if isinstance(answer, ZafkaError):
            if answer.error.rejoin_group:
                self.fence(answer)
            else:
                self._failed(answer, now_ms)
            return
        self._subscription_acked = self._subscription_sent
        self._answered(answer, now_ms)

    def _answered(self, answer: Assignment, now_ms: int) -> None:
        self.epoch = answer.member_epoch
        self.heartbeat_interval_ms = answer.heartbeat_interval_ms
        self.last_ok_ms = now_ms
        self._failures = 0
        self._next_heartbeat_ms = now_ms + answer.heartbeat_interval_ms
        if answer.partitions != self.target:
            self._target_version += 1
            for tp in answer.partitions - self.target:
                self._entered[tp] = self._target_version
            for tp in self.target - answer.partitions:
                self._entered.pop(tp, None)
                self._committed.pop(tp, None)
            self.target = answer.partitions

    def _failed(self, err: ZafkaError, now_ms: int) -> None:
        """A join or heartbeat failed: fatal, or back off and try again. A member whose
        heartbeats have failed for a whole session has surely been removed: its partitions
        are lost. An unexpected broker error is tried again too: only the session ends a
        membership."""
        if not err.retriable and err.error.name != "UNKNOWN_SERVER_ERROR":
            self.state, self.error = FAILED, err
            return
        self._failures += 1
        delay = backoff_ms(self.retry_backoff_ms, self._failures, self.retry_backoff_max_ms)
        self._retry_at_ms = now_ms + delay
        if self.state == MEMBER:
            self._next_heartbeat_ms = self._retry_at_ms
            last = self.last_ok_ms
            if last is not None and now_ms - last >= self.session_timeout_ms:
                self.fence(
                    ZafkaError(
                        "UNKNOWN_MEMBER_ID",
                        f"no heartbeat answered for {now_ms - last} ms (session timeout "
                        f"{self.session_timeout_ms} ms); last error: {err}",
                    ),
                    retry_at_ms=self._retry_at_ms,
                )

    def fence(self, err: ZafkaError, retry_at_ms: int = 0) -> None:
        """The coordinator no longer counts this member's partitions as its own: they are
        lost; join again (at once, or at `retry_at_ms`). Only a member can be fenced."""
        if self.state != MEMBER:
            return
        self.fenced_by, self._lost_last = err, self.owned
        self.lost |= self.owned
        self.owned = frozenset()
        self._start_joining()
        self._retry_at_ms = retry_at_ms

    def on_commit_error(self, generation: int, err: ZafkaError) -> None:
        """A commit sent at `generation` was refused: a fencing error fences the member."""
        if generation == self.generation and err.error.rejoin_group:
            self.fence(err)

    def on_offsets(
        self,
        generation: int,
        answer: Mapping[TopicPartition, int] | ZafkaError,
        now_ms: int,
    ) -> None:
        """The OffsetFetch in flight was answered: committed offsets (partitions missing: none
        committed), or an error (tried again after a backoff)."""
        if generation != self.generation or self._offsets_in_flight != generation:
            return
        self._offsets_in_flight, asked = None, self._offsets_asked
        if isinstance(answer, ZafkaError):
            self._offsets_failures += 1
            failures = self._offsets_failures
            delay = backoff_ms(self.retry_backoff_ms, failures, self.retry_backoff_max_ms)
            self._offsets_retry_at_ms = now_ms + delay
            return
        self._offsets_failures = 0
        for tp in asked:
            entered = self._entered.get(tp)
            if tp in self.owned or entered is None or entered > self._offsets_version:
                continue  # no longer wanted, or given again since: ask again
            self._committed[tp] = answer.get(tp, -1)

    # --- the user's thread: tasks --------------------------------------------------------------

    def next_task(self) -> Task | None:
        """The next thing the user's thread must do, or None. Lost partitions are dropped
        first, then revocations, then new partitions whose committed offsets are known. An
        ASSIGN task's partitions count as owned from now on."""
        if self.lost:
            return Task(LOST, self.lost, self.generation, {})
        if self.state not in (MEMBER, LEAVING):
            return None
        revoke = self.owned - self.target
        if revoke:
            return Task(REVOKE, revoke, self.generation, {})
        committed = self._committed
        ready = {tp: committed[tp] for tp in self.target - self.owned if tp in committed}
        if not ready:
            return None
        for tp in ready:
            del self._committed[tp]
        self.owned |= ready.keys()
        return Task(ASSIGN, frozenset(ready), self.generation, ready)

    def has_task(self) -> bool:
        """Whether `next_task` has something (without handing it out)."""
        if self.lost:
            return True
        if self.state not in (MEMBER, LEAVING):
            return False
        return bool(self.owned - self.target) or any(
            tp in self._committed for tp in self.target - self.owned
        )

    def done(self, task: Task) -> None:
        """The user's thread did `task`. Revoked partitions leave `owned` and a heartbeat
        confirms it at once; a task of an older generation changes nothing (its partitions
        were lost meanwhile, and a LOST task follows)."""
        if task.kind == LOST:
            self.lost -= task.partitions
        elif task.kind == REVOKE and task.generation == self.generation:
            self.owned -= task.partitions
            self._heartbeat_now = True

    # --- the user's thread: commits -----------------------------------------------------------

    def commit_as(self, tps: Iterable[TopicPartition]) -> tuple[str, int, int]:
        """`(member_id, member_epoch, generation)` to commit offsets of `tps` with, or
        CommitFailedError when the member does not own them all. Outside the group (manual
        assignment) a commit goes with member id "" (accepted while the group is empty)."""
        if self.state == UNSUBSCRIBED and not self.lost:
            return "", -1, self.generation
        for tp in tps:
            if tp in self.owned and self.state in (MEMBER, LEAVING):
                continue
            if (tp in self.lost or tp in self._lost_last) and self.fenced_by is not None:
                cause = self.fenced_by
                raise CommitFailedError(
                    cause.error.name,
                    f"{tp} was lost ({cause.detail or cause.error.message}); "
                    "the member joined the group again",
                )
            raise CommitFailedError(
                "FENCED_MEMBER_EPOCH", f"{tp} is not owned by this member (revoked or lost)"
            )
        return self.member_id, self.epoch, self.generation
