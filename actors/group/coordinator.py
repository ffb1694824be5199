"""GroupCoordinatorActor: the shell around one consumer group's state machine (DESIGN §3).

One actor per group, named `group-<group id>`, on the broker that leads the group's partition
of `__consumer_offsets` (`actors/broker/admin.py`: `coordinator_partition`). The broker
actor spawns it when FindCoordinator asks for the group there, and for every group found when
it loads a partition; clients then send it JoinGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, DescribeGroup and DeleteGroup. The logic is `actors/group/state.py`'s
`GroupState`; this actor does the I/O:

- **Loading.** Until it has a state (replayed from the log by an `OffsetsLoader` and handed
  over by the broker, `GroupLoaded`) every request is answered COORDINATOR_LOAD_IN_PROGRESS.
  With its state it calls `update_topics` (the topics the broker knows), appends what that
  returns and `start_sessions(now)`: every member gets a full session.
- **Writes before replies.** A handler's `Outcome.records` are already applied to the state;
  they are appended to the group's partition (one batch, keys and values as bytes, acks=all,
  a local ProduceRequest to the partition actor) and the reply goes out only once the append
  succeeded. One append is in flight at a time: requests arriving meanwhile wait (even those
  that change nothing, which must not see unwritten state), and are then run together, their
  records appended as one batch, their replies sent when it is written.
- **A failed append** (the partition gone, a timeout, a full disk): the waiting requests are
  answered NOT_COORDINATOR (the partition is not led here any more) or
  COORDINATOR_NOT_AVAILABLE, the state (which holds the failed records) is dropped, and the
  actor asks the broker (`NeedState`) to replay the log again; it is loading until then.
- **Expiry.** A timer at `next_deadline_ms()` runs `expire(now)` (its records are appended
  too); topic changes come from the broker's topic watch (`TopicsChanged`, `update_topics`).
- **Idle.** An actor whose group is blank (no members, no offsets, epoch 0: never used, or
  deleted) and unused for `limits.idle_group_ms` stops itself, telling the broker
  (`GroupGone`); FindCoordinator starts a new one when the group is asked for again.

Errors are answered in the response's `error_code` (the response types all have one);
errors of the envelope (no such actor, a full mailbox, a malformed message) come as an
ErrorReply, as for every actor. Calls: group coordinator -> partition actor of its
`__consumer_offsets` partition; casts to `broker` (`NeedState`, `GroupStatus`, `GroupGone`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from zafka import clock as clocks
from zafka import limits
from zafka.actors.group.api import Outcome, error_code
from zafka.actors.group.messages import (
    GroupGone,
    GroupLoaded,
    GroupStatus,
    NeedState,
    TopicsChanged,
    describe_response,
    error_response,
    is_blank,
    partitions_of,
    subscription_of,
    topic_partitions,
)
from zafka.actors.group.records import OFFSETS_TOPIC, Record
from zafka.actors.group.state import GroupState
from zafka.actors.runtime.actor import DEFERRED, Actor, answer_of, handlers
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.client import ProduceRequest
from zafka.transport.envelope import Envelope, address
from zafka.transport.group import (
    DeleteGroupRequest,
    DeleteGroupResponse,
    DescribeGroupRequest,
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
from zafka.transport.names import TopicPartition, group_actor_name, partition_actor_name

log = logging.getLogger(__name__)

ACKS_ALL = -1
EXPIRE = "expire"  # a queued expiry run (the timer fired while an append was in flight)


_LOCAL_MESSAGES = (GroupLoaded, TopicsChanged)  # from the broker; not group requests


class GroupCoordinatorActor(Actor):
    """Coordinates group `group_id`, whose records live in `partition` of
    `__consumer_offsets`; `state` None: loading (see the module docstring)."""

    def __init__(
        self,
        group_id: str,
        partition: int,
        state: GroupState | None,
        topics: Mapping[str, int],
        *,
        heartbeat_interval_ms: int,
        wall_clock: Callable[[], int] = clocks.wall_ms,
        broker: str = "broker",
    ) -> None:
        super().__init__(group_actor_name(group_id))
        self.group_id = group_id
        self.partition = partition
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._initial_topics = dict(topics)
        self._wall_clock = wall_clock
        self._broker = broker
        self._held: list[tuple[Envelope, object]] = []  # answered once the append is written
        self._queue: deque[Envelope | str | TopicsChanged] = deque()  # waiting for that
        self._appending = False
        self._timer_at: int | None = None  # when the expiry timer fires
        self._reported: object = ()  # the last GroupStatus state sent (() : none yet)

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        if self.state is None:
            self._tell_broker(NeedState(self.group_id))
        else:
            state, self.state = self.state, None
            self._load(state, self._initial_topics)

    def on_stop(self) -> None:
        """Whatever still waits (nothing, unless the runtime stops mid-append) is told to find
        the coordinator again."""
        self._drop_waiting("NOT_COORDINATOR")

    def _tell_broker(self, message: object) -> None:
        self.cast(address(self._runtime().node, self._broker), message)

    def _now(self) -> int:
        return self._runtime().now_ms()

    # --- loading --------------------------------------------------------------------------

    def on_group_loaded(self, envelope: Envelope) -> None:
        loaded: GroupLoaded = envelope.message
        if self.state is None:  # else a late duplicate: the state in hand is newer
            self._load(loaded.state, loaded.topics)

    def _load(self, state: GroupState, topics: Mapping[str, int]) -> None:
        if state.group_id != self.group_id:
            raise ValueError(f"state of {state.group_id!r} handed to {self.name}")
        self.state = state
        records = list(state.update_topics(topics).records)
        state.start_sessions(self._now())
        if records:
            self._append(records, [])
        else:
            self._settled()

    def on_topics_changed(self, envelope: Envelope) -> None:
        if self.state is None:
            return  # the state comes with the topics of its own time
        if self._appending:
            self._queue.append(envelope.message)
        else:
            self._round([envelope.message])

    # --- requests -------------------------------------------------------------------------

    def handler_for(self, envelope: Envelope) -> Callable[[Envelope], object]:
        """Every group request goes through `_request` (queued behind loading and appends);
        its step in the dispatch table (`_join`, ...) runs inside a round (`_handle`)."""
        handler = super().handler_for(envelope)
        return handler if type(envelope.message) in _LOCAL_MESSAGES else self._request

    def _request(self, envelope: Envelope) -> object:
        if self.state is None:
            return self._error(envelope.message, "COORDINATOR_LOAD_IN_PROGRESS")
        if self._appending:
            self._queue.append(envelope)
        else:
            self._round([envelope], direct=envelope)
        return DEFERRED

    def _error(self, message: object, name: str) -> object:
        return error_response(message, error_code(name), self.heartbeat_interval_ms)

    def _round(
        self, items: Iterable[Envelope | str | TopicsChanged], direct: Envelope | None = None
    ) -> None:
        """Run `items` through the state machine; append their records as one batch and
        answer once it is written (at once when there is nothing to write). `direct`: the
        envelope being dispatched now (if the state machine raises, the dispatcher answers
        it; this answers the others before the crash restarts the actor)."""
        items = list(items)
        try:
            self._run_round(items)
        except Exception:
            crashed = ZafkaError("UNKNOWN_SERVER_ERROR", f"{self.name} crashed")
            for item in items:
                if isinstance(item, Envelope) and item is not direct and item.correlation_id:
                    self.reply_error(item, crashed)
            raise

    def _run_round(self, items: list[Envelope | str | TopicsChanged]) -> None:
        state = self.state
        assert state is not None
        records: list[Record] = []
        replies: list[tuple[Envelope, object]] = []
        for item in items:
            if isinstance(item, Envelope):
                written, reply = self._handle(state, item.message)
                records += written
                replies.append((item, reply))
            elif isinstance(item, TopicsChanged):
                records += state.update_topics(item.topics).records
            else:  # EXPIRE
                outcome = state.expire(self._now())
                if outcome.removed:
                    log.info("%s: members expired: %s", self.name, ", ".join(outcome.removed))
                records += outcome.records
        if records:
            self._append(records, replies)
        else:
            self._answer_all(replies)  # nothing written: the status is the same, but
            self._arm_expiry()  # heartbeats move deadlines later, and a fired timer is gone

    def _handle(self, state: GroupState, message: object) -> tuple[tuple[Record, ...], object]:
        """(records, reply) for one request: the state machine's outcome as a response."""
        if getattr(message, "group_id", None) != self.group_id:
            return (), self._error(message, "INVALID_REQUEST")
        member_id = getattr(message, "member_id", "")
        instance_id = getattr(message, "instance_id", None) or ""
        if max(len(member_id.encode()), len(instance_id.encode())) > limits.member_id_bytes_max:
            return (), self._error(message, "INVALID_REQUEST")
        outcome, reply = getattr(self, self.dispatch_table[type(message)])(state, message)
        return outcome.records, reply

    def _join(self, state: GroupState, message: JoinGroupRequest) -> tuple[Outcome, object]:
        subscription = subscription_of(message.subscription, message.subscription_pattern)
        if subscription is None:
            return Outcome(), self._error(message, "INVALID_REQUEST")
        outcome = state.join(
            self._now(),
            subscription,
            message.session_timeout_ms,
            member_id=message.member_id,
            instance_id=message.instance_id,
            assignor=message.assignor,
        )
        a = outcome.member
        if a is None:
            return outcome, self._error(message, outcome.error)
        assignment = topic_partitions(a.assignment)
        reply = JoinGroupResponse(
            0, a.member_id, a.member_epoch, a.heartbeat_interval_ms, assignment
        )
        return outcome, reply

    def _heartbeat(self, state: GroupState, message: HeartbeatRequest) -> tuple[Outcome, object]:
        subscription = None
        if message.subscription is not None or message.subscription_pattern is not None:
            subscription = subscription_of(message.subscription or (), message.subscription_pattern)
            if subscription is None:
                return Outcome(), self._error(message, "INVALID_REQUEST")
        owned = partitions_of(message.owned)
        outcome = state.heartbeat(
            self._now(), message.member_id, message.member_epoch, owned, subscription
        )
        a = outcome.member
        if a is None:
            return outcome, self._error(message, outcome.error)
        assignment = topic_partitions(a.assignment)
        return outcome, HeartbeatResponse(0, a.member_epoch, a.heartbeat_interval_ms, assignment)

    def _leave(self, state: GroupState, message: LeaveGroupRequest) -> tuple[Outcome, object]:
        outcome = state.leave(message.member_id)
        return outcome, LeaveGroupResponse(error_code(outcome.error))

    def _commit(self, state: GroupState, message: OffsetCommitRequest) -> tuple[Outcome, object]:
        offsets = [
            (TopicPartition(o.topic, o.partition), o.offset, o.metadata) for o in message.offsets
        ]
        now = self._wall_clock()  # kept as the commit time: the wall clock, not the monotonic
        outcome = state.commit(now, message.member_id, message.member_epoch, offsets)
        return outcome, OffsetCommitResponse(error_code(outcome.error))

    def _fetch(self, state: GroupState, message: OffsetFetchRequest) -> tuple[Outcome, object]:
        """The committed offsets asked for (a partition without one: -1), or all of them."""
        if message.partitions is None:
            found = state.committed()
            wanted = sorted(found)
        else:
            wanted = partitions_of(message.partitions)
            found = state.committed(wanted)
        offsets = []
        for tp in wanted:
            committed = found.get(tp)
            offset, metadata = (-1, "") if committed is None else committed[:2]
            offsets.append(PartitionOffset(tp.topic, tp.partition, offset, metadata))
        return Outcome(), OffsetFetchResponse(0, tuple(offsets))

    def _describe(self, state: GroupState, message: DescribeGroupRequest) -> tuple[Outcome, object]:
        if is_blank(state):
            return Outcome(), self._error(message, "GROUP_ID_NOT_FOUND")
        return Outcome(), describe_response(state.describe())

    def _delete(self, state: GroupState, message: DeleteGroupRequest) -> tuple[Outcome, object]:
        if is_blank(state):
            return Outcome(), self._error(message, "GROUP_ID_NOT_FOUND")
        outcome = state.delete()
        return outcome, DeleteGroupResponse(error_code(outcome.error))

    # --- appending ------------------------------------------------------------------------

    def _append(self, records: list[Record], replies: list[tuple[Envelope, object]]) -> None:
        """Append `records` as one batch; `replies` go out once it is written."""
        self._appending = True
        self._held = replies
        stamp = self._wall_clock()
        try:
            batch = build_batch([(stamp, r.key, r.value, None) for r in records])
            request = ProduceRequest(
                OFFSETS_TOPIC, self.partition, ACKS_ALL, limits.group_log_timeout_ms, batch
            )
            target = address(
                self._runtime().node, partition_actor_name(OFFSETS_TOPIC, self.partition)
            )
            self.call(target, request, limits.group_log_timeout_ms, self._appended)
        except ZafkaError as err:  # MESSAGE_TOO_LARGE, BUSY: as if the append had failed
            self._appended(err)

    def _appended(self, reply: Envelope | ZafkaError) -> None:
        if not self._appending:
            return  # already failed (the call was refused before it was sent)
        self._appending = False
        held, self._held = self._held, []
        answer = answer_of(reply, f"append to {OFFSETS_TOPIC}-{self.partition}")
        if isinstance(answer, ZafkaError):
            self._failed(held, answer)
            return
        self._answer_all(held)
        self._settled()  # written: report the status, arm the timers
        if self._queue:
            items = list(self._queue)
            self._queue.clear()
            self._round(items)

    def _failed(self, held: list[tuple[Envelope, object]], error: ZafkaError) -> None:
        """The state holds records that may not be in the log: drop it and replay the log.
        The partition not led here any more (`refresh_metadata`): NOT_COORDINATOR."""
        log.warning("%s: %s; reloading", self.name, error)
        gone = error.error.refresh_metadata
        name = "NOT_COORDINATOR" if gone else "COORDINATOR_NOT_AVAILABLE"
        for envelope, _ in held:
            self._reply(envelope, self._error(envelope.message, name))
        self._drop_waiting("COORDINATOR_LOAD_IN_PROGRESS")
        self.state = None
        self.cancel_timer("expire")
        self._timer_at = None
        self._tell_broker(NeedState(self.group_id))

    def _drop_waiting(self, name: str) -> None:
        waiting = [env for env, _ in self._held] + [
            i for i in self._queue if isinstance(i, Envelope)
        ]
        self._held, self._queue = [], deque()
        for envelope in waiting:
            self._reply(envelope, self._error(envelope.message, name))

    def _answer_all(self, replies: list[tuple[Envelope, object]]) -> None:
        for envelope, reply in replies:
            self._reply(envelope, reply)

    def _reply(self, envelope: Envelope, message: object) -> None:
        if envelope.correlation_id == 0:
            return  # a cast: nobody waits
        try:
            self.reply(envelope, message)
        except ZafkaError as err:  # e.g. an answer too large for the wire
            self.reply_error(envelope, err)

    # --- after a change: status, timers ---------------------------------------------------

    def _settled(self) -> None:
        """The state is written: report it, arm the expiry and idle timers."""
        state = self.state
        assert state is not None
        blank = is_blank(state)
        status = None if blank else state.describe().state
        if status != self._reported:
            self._reported = status
            self._tell_broker(GroupStatus(self.group_id, status))
        if blank:
            self.set_timer("idle", limits.idle_group_ms)
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        """Make the expiry timer fire at the state's next deadline, at the latest."""
        assert self.state is not None
        deadline = self.state.next_deadline_ms()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._timer_at = deadline
            self.set_timer("expire", max(0, deadline - self._now()))

    def on_expire_timeout(self, now_ms: int) -> None:
        self._timer_at = None
        if self.state is None:
            return
        if self._appending:
            if EXPIRE not in self._queue:
                self._queue.append(EXPIRE)
        else:
            self._round([EXPIRE])

    def on_idle_timeout(self, now_ms: int) -> None:
        """Stop if the group is still blank and nothing is in flight (an actor stopping
        itself from a timer is safe: nothing of it runs after this in the step)."""
        state = self.state
        if state is None or self._appending or self._queue or not is_blank(state):
            return
        self._tell_broker(GroupGone(self.group_id))
        self._runtime().despawn(self.name)

    HANDLERS = handlers(
        {
            GroupLoaded: on_group_loaded,
            TopicsChanged: on_topics_changed,
            JoinGroupRequest: _join,
            HeartbeatRequest: _heartbeat,
            LeaveGroupRequest: _leave,
            OffsetCommitRequest: _commit,
            OffsetFetchRequest: _fetch,
            DescribeGroupRequest: _describe,
            DeleteGroupRequest: _delete,
        }
    )
