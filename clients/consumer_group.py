"""The Consumer's group side on the user's thread: rebalance callbacks, commits, auto-commit
and leaving. Used by clients/consumer.py; the protocol's state is the `Membership`
(clients/membership.py), the traffic the `GroupMemberActor` (clients/group_member.py).

Callbacks run on the user's thread, inside `poll` (and `close`, `unsubscribe`), never with
the Consumer's lock held, so they may call the consumer (`commit`, `seek`, `position`...):

- revoked partitions: fetching stops, `on_partitions_revoked(partitions)` runs, their
  positions are committed (synchronously, with auto-commit on; else commit them yourself in
  the callback), then they are dropped and a heartbeat confirms it at once;
- new partitions: positions from their committed offsets (else `auto_offset_reset`), then
  `on_partitions_assigned(partitions)` (seek there to start elsewhere), then fetching starts;
- lost partitions (the member was fenced or its session expired): fetching stops,
  `on_partitions_lost(partitions)` runs (by default `on_partitions_revoked`), and they are
  dropped without a commit: someone else may own them already.

An exception from a callback is raised by the `poll` that ran it, after the rebalance work is
done. Partitions that do not move are never paused.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import NamedTuple

from zafka import clock
from zafka.clients import io
from zafka.clients.fetch_state import FetchState
from zafka.clients.group_member import GroupMemberActor
from zafka.clients.io import ClientIO
from zafka.clients.membership import (
    ASSIGN,
    LOST,
    REVOKE,
    CommitFailedError,
    Membership,
    Task,
)
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

log = logging.getLogger(__name__)

Partitions = set[TopicPartition]
CommitCallback = Callable[[dict[TopicPartition, "OffsetAndMetadata"], Exception | None], object]


class OffsetAndMetadata(NamedTuple):
    """A committed offset (the next record to read) and its metadata string."""

    offset: int
    metadata: str = ""


class ConsumerRebalanceListener:
    """Subclass and override what you need; pass it to `Consumer.subscribe`. Each method gets
    a set of TopicPartitions and runs on the thread that calls `poll`."""

    def on_partitions_revoked(self, partitions: Partitions) -> None:
        """Before revoked partitions are dropped (commit their offsets here without
        auto-commit)."""

    def on_partitions_assigned(self, partitions: Partitions) -> None:
        """After new partitions got their positions, before they are fetched."""

    def on_partitions_lost(self, partitions: Partitions) -> None:
        """The member lost these partitions (fenced, or its session expired): they may be
        someone else's already, so do not commit. By default: `on_partitions_revoked`."""
        self.on_partitions_revoked(partitions)


class Callbacks(ConsumerRebalanceListener):
    """The constructor's `on_partitions_*` functions as a listener."""

    def __init__(
        self,
        revoked: Callable[[Partitions], object] | None,
        assigned: Callable[[Partitions], object] | None,
        lost: Callable[[Partitions], object] | None,
    ) -> None:
        self._revoked, self._assigned, self._lost = revoked, assigned, lost

    def given(self) -> dict[str, object]:
        """The constructor options these came from, by name."""
        return {
            "on_partitions_revoked": self._revoked,
            "on_partitions_assigned": self._assigned,
            "on_partitions_lost": self._lost,
        }

    def on_partitions_revoked(self, partitions: Partitions) -> None:
        if self._revoked is not None:
            self._revoked(partitions)

    def on_partitions_assigned(self, partitions: Partitions) -> None:
        if self._assigned is not None:
            self._assigned(partitions)

    def on_partitions_lost(self, partitions: Partitions) -> None:
        if self._lost is not None:
            self._lost(partitions)
        else:
            self.on_partitions_revoked(partitions)


class GroupConfig(NamedTuple):
    enable_auto_commit: bool
    auto_commit_interval_ms: int
    request_timeout_ms: int


class ConsumerGroup:
    """The user's-thread half of a group consumer; see the module docstring."""

    def __init__(
        self,
        membership: Membership,
        config: GroupConfig,
        listener: ConsumerRebalanceListener,
        state: FetchState,
        cond: threading.Condition,
        client_io: ClientIO,
    ) -> None:
        self.membership = membership
        self.config = config
        self.listener = listener
        self._state = state
        self._cond = cond
        self._io = client_io
        self._next_auto_commit = clock.monotonic_s() + config.auto_commit_interval_ms / 1000
        self._last_committed: dict[TopicPartition, int] = {}
        self._completed: list[tuple[CommitCallback, dict, Exception | None]] = []
        self.closing = False  # close() from another thread: no more callbacks from poll

    @property
    def _actor(self) -> GroupMemberActor:
        return self._io.actor  # type: ignore[return-value]

    # --- tasks (the rebalance callbacks) ------------------------------------------------------

    def run_tasks(self) -> None:
        """Do what the membership asks of the user's thread (callbacks included); raise the
        first exception a callback raised once everything is done."""
        raised: BaseException | None = None
        while True:
            with self._cond:
                if self.closing:
                    break
                task = self.membership.next_task()
                if task is None:
                    break
                self._before(task)
            try:
                self._callback(task)
            except Exception as err:
                log.warning("rebalance callback %s raised: %r", task.kind, err)
                raised = raised or err
            if task.kind == REVOKE and self.config.enable_auto_commit:
                self._commit_revoked(task)
            with self._cond:
                self._after(task)
        if raised is not None:
            raise raised

    def _before(self, task: Task) -> None:
        """Lock held: stop fetching what goes; give what comes its committed position."""
        state = self._state
        if task.kind == ASSIGN:
            state.assign([*state.partitions, *sorted(task.partitions)])
            for tp, offset in task.offsets.items():
                if offset >= 0:
                    state.seek(tp, offset)
            self._actor.kick()
            return
        for tp in task.partitions:
            if tp in state.partitions:
                state.pause(tp)

    def _callback(self, task: Task) -> None:
        partitions = set(task.partitions)
        if task.kind == ASSIGN:
            self.listener.on_partitions_assigned(partitions)
        elif task.kind == REVOKE:
            self.listener.on_partitions_revoked(partitions)
        else:
            self.listener.on_partitions_lost(partitions)

    def _after(self, task: Task) -> None:
        """Lock held: drop what went; tell the membership (a revocation is confirmed now)."""
        if task.kind in (REVOKE, LOST):
            gone = task.partitions
            self._state.assign([tp for tp in self._state.partitions if tp not in gone])
            for tp in gone:
                self._last_committed.pop(tp, None)
        self.membership.done(task)
        self._actor.group_kick()

    def _commit_revoked(self, task: Task) -> None:
        with self._cond:
            offsets = {
                tp: OffsetAndMetadata(ps.position)
                for tp in task.partitions
                if (ps := self._state.partitions.get(tp)) is not None and ps.position is not None
            }
        try:
            self.commit(offsets, self.config.request_timeout_ms)
        except ZafkaError as err:
            log.warning("commit of revoked partitions %s failed: %s", sorted(offsets), err)

    # --- commits --------------------------------------------------------------------------

    def positions(self, only_changed: bool = False) -> dict[TopicPartition, OffsetAndMetadata]:
        """Lock held: the position of every partition that has one (records handed out)."""
        offsets = {}
        for tp, ps in self._state.partitions.items():
            position = ps.position
            if position is None:
                continue
            if only_changed and self._last_committed.get(tp) == position:
                continue
            offsets[tp] = OffsetAndMetadata(position)
        return offsets

    def _submit(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: int
    ) -> Future:
        """Send a commit (CommitFailedError at once when the partitions are not this
        member's any more)."""
        with self._cond:
            member_id, epoch, generation = self.membership.commit_as(offsets)
        wire = {tp: (om.offset, om.metadata) for tp, om in offsets.items()}
        return self._io.submit(
            lambda f: self._io.actor.commit(  # type: ignore[attr-defined]
                wire, member_id, epoch, generation, timeout_ms, f
            )
        )

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: int) -> None:
        """Commit `offsets` and wait (at most `timeout_ms`, then the last error)."""
        if not offsets:
            return
        future = self._submit(offsets, timeout_ms)
        try:
            io.result(future, timeout_ms / 1000 + 1)
        except ZafkaError as err:
            raise _commit_error(err) from None
        self._committed(offsets)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        callback: CommitCallback | None,
        timeout_ms: int,
    ) -> Future:
        """Send a commit; `callback(offsets, error or None)` runs in a later `poll` (or
        `commit`, `close`) on the user's thread. The future completes on the I/O thread."""
        offsets = dict(offsets)
        result: Future = Future()
        try:
            if not offsets:
                result.set_result(None)
                sent = None
            else:
                sent = self._submit(offsets, timeout_ms)
        except ZafkaError as err:
            result.set_exception(err)
            sent = None
        if sent is None:
            if callback is not None:
                with self._cond:
                    self._completed.append((callback, offsets, result.exception()))
            return result

        def finished(done: Future) -> None:
            err = done.exception()
            error = _commit_error(err) if isinstance(err, ZafkaError) else err
            if error is None:
                with self._cond:
                    self._committed(offsets)
            with self._cond:
                if callback is not None:
                    self._completed.append((callback, offsets, error))
                self._cond.notify_all()
            if error is None:
                result.set_result(None)
            else:
                result.set_exception(error)

        sent.add_done_callback(finished)
        return result

    def _committed(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        for tp, om in offsets.items():
            if tp in self._state.partitions:
                self._last_committed[tp] = om.offset

    def run_commit_callbacks(self) -> None:
        """Run the callbacks of finished `commit_async`s (user's thread, no lock held)."""
        with self._cond:
            completed, self._completed = self._completed, []
        for callback, offsets, error in completed:
            try:
                callback(offsets, error)
            except Exception:
                log.exception("commit_async callback raised")

    def maybe_auto_commit(self) -> None:
        """In `poll`, before it hands out records: every `auto_commit_interval_ms`, commit the
        positions of the records earlier polls handed out (at-least-once), asynchronously."""
        if not self.config.enable_auto_commit or not self.membership.subscribed:
            return
        now = clock.monotonic_s()
        if now < self._next_auto_commit:
            return
        self._next_auto_commit = now + self.config.auto_commit_interval_ms / 1000
        with self._cond:
            offsets = self.positions(only_changed=True)
            offsets = {tp: om for tp, om in offsets.items() if tp in self.membership.owned}
        if offsets:
            self.commit_async(offsets, _log_auto_commit, self.config.request_timeout_ms)

    def committed(
        self, tps: list[TopicPartition], timeout_ms: int
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets of `tps` (None where there is none)."""
        future = self._io.submit(
            lambda f: self._io.actor.fetch_committed(tps, timeout_ms, f)  # type: ignore[attr-defined]
        )
        found = io.result(future, timeout_ms / 1000 + 1)
        result: dict[TopicPartition, OffsetAndMetadata | None] = {}
        for tp in tps:
            offset, metadata = found.get(tp, (-1, ""))
            result[tp] = OffsetAndMetadata(offset, metadata) if offset >= 0 else None
        return result

    # --- leaving --------------------------------------------------------------------------

    def leave(self, timeout_ms: int, callbacks: bool) -> None:
        """Close or unsubscribe: drop lost partitions, revoke the others (callbacks when
        `callbacks`, and a commit with auto-commit on), then LeaveGroup (not for a static
        member: it comes back under its instance id and takes its partitions back)."""
        deadline = clock.monotonic_s() + timeout_ms / 1000
        membership = self.membership
        with self._cond:
            self.closing = self.closing or not callbacks
            if not membership.subscribed:
                membership.left()
                return
            membership.leave()
        if callbacks:
            with contextlib.suppress(Exception):  # logged by run_tasks; leaving goes on
                self.run_tasks()
        elif self.config.enable_auto_commit:
            with self._cond:
                offsets = {tp: om for tp, om in self.positions().items() if tp in membership.owned}
            with contextlib.suppress(ZafkaError):
                self.commit(offsets, max(int((deadline - clock.monotonic_s()) * 1000), 1))
        with self._cond:
            member_id = membership.member_id
            static = membership.instance_id is not None
            was_member = membership.join_sent
            membership.left()
            self._state.assign([])
        if static or not was_member:
            return
        remaining_ms = max(int((deadline - clock.monotonic_s()) * 1000), 1)
        future = self._io.submit(
            lambda f: self._io.actor.leave_group(member_id, remaining_ms, f)  # type: ignore[attr-defined]
        )
        try:
            io.result(future, remaining_ms / 1000 + 1)
        except ZafkaError as err:
            log.info("LeaveGroup of %r failed (its session will expire): %s", member_id, err)


def _commit_error(err: ZafkaError) -> ZafkaError:
    if err.error.rejoin_group and not isinstance(err, CommitFailedError):
        return CommitFailedError(
            err.error.name, f"the group refused the commit: {err.detail}; the member rejoins"
        )
    return err


def _log_auto_commit(offsets: dict, error: Exception | None) -> None:
    if error is not None:
        log.warning("auto-commit of %d partitions failed: %s", len(offsets), error)
