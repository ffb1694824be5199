"""ReplicationActor: a broker's leader side of replication (named `replication`).

Followers' fetchers (one per follower broker and leader broker) send it a ReplicaFetch for
every partition they follow here, and OffsetForLeaderEpoch while they find where to truncate.
It answers each partition from the local leader partition actor (a plain call: the same
thread; actors/partition/replica_io.py), which records the follower's log end offset and so
moves its ISR and high watermark. A partition this broker does not lead gets
NOT_LEADER_OR_FOLLOWER; a follower in another leader epoch FENCED_LEADER_EPOCH or
UNKNOWN_LEADER_EPOCH.

Long polling: a fetch that finds no data for any partition waits up to its `max_wait_ms`;
an append to one of its partitions (`wake_followers`, called by the leader) answers it on the
next runtime turn, reading all its partitions again. At most `limits.replica_fetches_waiting_max`
wait; beyond that a fetch is answered at once (empty).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from zafka import limits
from zafka.actors.partition import replica_io
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.errors import BY_NAME
from zafka.transport.envelope import Envelope
from zafka.transport.names import partition_actor_name
from zafka.transport.replication import (
    EpochEnd,
    FetchedPartition,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
)

log = logging.getLogger(__name__)
REPLICATION_ACTOR = "replication"
_NOT_LEADER = BY_NAME["NOT_LEADER_OR_FOLLOWER"].code


@dataclass(frozen=True, slots=True, eq=False)
class _Parked:
    envelope: Envelope
    keys: frozenset[tuple[str, int]]
    deadline_ms: int


def wake_followers(runtime: Runtime, topic: str, partition: int) -> None:
    """A leader appended to `topic`-`partition`: answer the fetches waiting on it."""
    try:
        actor = runtime.actor(REPLICATION_ACTOR)
    except KeyError:
        return
    assert isinstance(actor, ReplicationActor)
    actor.wake(topic, partition)


class ReplicationActor(Actor):
    def __init__(self) -> None:
        super().__init__(REPLICATION_ACTOR)
        self._parked: list[_Parked] = []
        self._woken: set[tuple[str, int]] = set()

    def on_stop(self) -> None:
        for parked in self._parked:
            self._answer(parked.envelope)
        self._parked.clear()

    def _leader(self, topic: str, partition: int) -> PartitionActor | None:
        try:
            actor = self._runtime().actor(partition_actor_name(topic, partition))
        except (KeyError, ValueError):
            return None
        return actor if isinstance(actor, PartitionActor) else None

    # --- ReplicaFetch -----------------------------------------------------------------------

    def on_replica_fetch_request(self, envelope: Envelope) -> object:
        request: ReplicaFetchRequest = envelope.message
        response, has_data = self._read(request)
        waiting = len(self._parked) < limits.replica_fetches_waiting_max
        if has_data or request.max_wait_ms <= 0 or not waiting or envelope.correlation_id == 0:
            return response
        keys = frozenset((p.topic, p.partition) for p in request.partitions)
        deadline_ms = self._runtime().now_ms() + request.max_wait_ms
        self._parked.append(_Parked(envelope, keys, deadline_ms))
        self._schedule_deadline()
        return DEFERRED

    def _read(self, request: ReplicaFetchRequest) -> tuple[ReplicaFetchResponse, bool]:
        results, chunks, total = [], [], 0
        for position in request.partitions:
            leader = self._leader(position.topic, position.partition)
            if leader is None:
                code, data = _NOT_LEADER, b""
            else:
                budget = request.max_bytes if total < limits.replica_fetch_response_bytes_max else 0
                code, data = replica_io.replica_read(
                    leader, request.replica_id, position.leader_epoch, position.offset, budget
                )
                if budget == 0:
                    data = b""
            high = leader.state.high_watermark if leader is not None else -1
            start = leader.state.log_start_offset if leader is not None else -1
            results.append(
                FetchedPartition(position.topic, position.partition, code, high, start, len(data))
            )
            if data:
                chunks.append(data)
                total += len(data)
        records = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return ReplicaFetchResponse(tuple(results), records), total > 0

    def _answer(self, envelope: Envelope) -> None:
        self.reply(envelope, self._read(envelope.message)[0])

    def wake(self, topic: str, partition: int) -> None:
        if not self._parked:
            return
        if not self._woken:
            self.set_timer("wake", 0)
        self._woken.add((topic, partition))

    def on_wake_timeout(self, now_ms: int) -> None:
        woken, self._woken = self._woken, set()
        ready = [p for p in self._parked if p.keys & woken]
        self._release(ready)

    def on_deadline_timeout(self, now_ms: int) -> None:
        self._release([p for p in self._parked if p.deadline_ms <= now_ms])

    def _release(self, ready: list[_Parked]) -> None:
        if not ready:
            return
        gone = set(map(id, ready))
        self._parked = [p for p in self._parked if id(p) not in gone]
        for parked in ready:
            self._answer(parked.envelope)
        self._schedule_deadline()

    def _schedule_deadline(self) -> None:
        if not self._parked:
            self.cancel_timer("deadline")
            return
        due = min(p.deadline_ms for p in self._parked)
        self.set_timer("deadline", max(due - self._runtime().now_ms(), 0))

    # --- OffsetForLeaderEpoch ---------------------------------------------------------------

    def on_offset_for_leader_epoch_request(
        self, envelope: Envelope
    ) -> OffsetForLeaderEpochResponse:
        request: OffsetForLeaderEpochRequest = envelope.message
        answers = []
        for query in request.partitions:
            leader = self._leader(query.topic, query.partition)
            if leader is None:
                code, epoch, end = _NOT_LEADER, -1, -1
            else:
                code, epoch, end = replica_io.epoch_end(leader, query.leader_epoch, query.epoch)
            answers.append(EpochEnd(query.topic, query.partition, code, epoch, end))
        return OffsetForLeaderEpochResponse(tuple(answers))

    HANDLERS = handlers(
        {
            ReplicaFetchRequest: on_replica_fetch_request,
            OffsetForLeaderEpochRequest: on_offset_for_leader_epoch_request,
        }
    )
