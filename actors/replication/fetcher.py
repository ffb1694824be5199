"""ReplicaFetcher: a follower broker's fetcher for one leader broker (`fetcher-<leader id>`).

It carries every partition this broker follows on that leader, each in one of these phases:

- `truncate`: just followed (a new leader epoch): once the local replica has checked its log
  (a damaged batch cuts it: replica_io.scrub_step), find where it agrees with the leader's
  (actors/partition/divergence.py) — cut at once when that needs no question;
- `ask`: an OffsetForLeaderEpoch question is owed or in flight (one request for all);
- `fetch`: fetching from its log end: one ReplicaFetch in flight for all of them, long-polling
  at the leader (`limits.replica_fetch_wait_ms`); each answer's batches are appended as they
  are and the next fetch goes out at once;
- `fenced`: the leader is in a newer epoch than this follower was told: wait for the
  controller's LeaderAndIsr (which starts the partition again in `truncate`).

A failed exchange (timeout, the leader down, an error for the whole request) is retried
after `limits.replica_fetch_backoff_ms`. The local replicas are partition actors of the same
process, called directly (actors/partition/replica_io.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from zafka import limits
from zafka.actors.partition import replica_io
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.partition.divergence import AskEpoch, TruncateTo
from zafka.actors.runtime.actor import Actor
from zafka.errors import BY_CODE, ZafkaError
from zafka.transport.envelope import Envelope
from zafka.transport.names import broker_node, partition_actor_name
from zafka.transport.replication import (
    EpochQuery,
    FetchedPartition,
    FetchPosition,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
)

log = logging.getLogger(__name__)
Key = tuple[str, int]
TRUNCATE, ASK, FETCH, FENCED = "truncate", "ask", "fetch", "fenced"


def fetcher_name(leader: int) -> str:
    return f"fetcher-{leader}"


@dataclass(slots=True, eq=False)
class Followed:
    """One partition followed: in `leader_epoch`, its phase, the epoch to ask about, and
    the offset to fetch from (the local log end)."""

    leader_epoch: int
    phase: str = TRUNCATE
    asked: int = -1
    offset: int = 0


class ReplicaFetcher(Actor):
    def __init__(self, broker_id: int, leader: int) -> None:
        super().__init__(fetcher_name(leader))
        self.broker_id = broker_id
        self.leader = leader
        self.partitions: dict[Key, Followed] = {}
        self._fetching = False
        self._asking = False

    @property
    def _target(self) -> str:
        return f"{broker_node(self.leader)}/replication"

    def follow(self, topic: str, partition: int, leader_epoch: int) -> None:
        self.partitions[(topic, partition)] = Followed(leader_epoch)
        self.set_timer("work", 0)

    def unfollow(self, topic: str, partition: int) -> None:
        self.partitions.pop((topic, partition), None)

    def _local(self, key: Key) -> PartitionActor | None:
        try:
            actor = self._runtime().actor(partition_actor_name(*key))
        except KeyError:
            return None
        if not isinstance(actor, PartitionActor) or actor.state.is_leader or actor._log is None:
            return None
        return actor

    def on_work_timeout(self, now_ms: int) -> None:
        checking = False  # a replica still checking its log (see replica_io.scrub_step)
        for key, followed in self.partitions.items():
            if followed.phase == TRUNCATE and (actor := self._local(key)) is not None:
                if not actor.scrubbed:
                    checking = True
                    continue
                self._step(followed, actor, replica_io.truncation_step(actor))
        self._ask()
        self._fetch()
        if checking:
            self.set_timer("retry", limits.replica_fetch_backoff_ms)

    def on_retry_timeout(self, now_ms: int) -> None:
        self.on_work_timeout(now_ms)

    def _retry(self, why: object) -> None:
        log.debug("%s: %s; retrying", self.name, why)
        self.set_timer("retry", limits.replica_fetch_backoff_ms)

    @staticmethod
    def _step(followed: Followed, actor: PartitionActor, step: AskEpoch | TruncateTo) -> None:
        if isinstance(step, TruncateTo):
            followed.phase, followed.offset = FETCH, actor.log.log_end_offset
        else:
            followed.phase, followed.asked = ASK, step.epoch

    # --- OffsetForLeaderEpoch ---------------------------------------------------------------

    def _ask(self) -> None:
        sent = {k: f for k, f in self.partitions.items() if f.phase == ASK}
        if self._asking or not sent:
            return
        queries = tuple(EpochQuery(*k, f.leader_epoch, f.asked) for k, f in sent.items())
        self._asking = True
        self.call(
            self._target,
            OffsetForLeaderEpochRequest(queries),
            limits.replica_fetch_timeout_ms,
            lambda reply: self._asked(reply, sent),
        )

    def _asked(self, reply: Envelope | ZafkaError, sent: dict[Key, Followed]) -> None:
        self._asking = False
        message = reply if isinstance(reply, ZafkaError) else reply.message
        if not isinstance(message, OffsetForLeaderEpochResponse):
            self._retry(message)
            return
        retry = False
        for answer in message.partitions:
            key = (answer.topic, answer.partition)
            followed = self.partitions.get(key)
            if followed is None or followed is not sent.get(key) or followed.phase != ASK:
                continue
            if answer.error_code == 0 and (actor := self._local(key)) is not None:
                step = replica_io.truncation_step(actor, (answer.epoch, answer.end_offset))
                self._step(followed, actor, step)
            else:
                retry |= not self._fenced(followed, answer.error_code)
        self._retry("epoch questions unanswered") if retry else self.set_timer("work", 0)

    @staticmethod
    def _fenced(followed: Followed, code: int) -> bool:
        """The leader is in a newer epoch: wait for the controller's word."""
        if BY_CODE[code].name == "FENCED_LEADER_EPOCH":
            followed.phase = FENCED
            return True
        return False

    # --- ReplicaFetch -----------------------------------------------------------------------

    def _fetch(self) -> None:
        if self._fetching:
            return
        sent = {}
        for key, followed in self.partitions.items():
            if followed.phase == FETCH and (actor := self._local(key)) is not None:
                followed.offset = actor.log.log_end_offset
                sent[key] = followed
        if not sent:
            return
        positions = tuple(FetchPosition(*k, f.leader_epoch, f.offset) for k, f in sent.items())
        request = ReplicaFetchRequest(
            self.broker_id, limits.replica_fetch_wait_ms, limits.replica_fetch_bytes_max, positions
        )
        self._fetching = True
        timeout_ms = limits.replica_fetch_wait_ms + limits.replica_fetch_timeout_ms
        self.call(self._target, request, timeout_ms, lambda reply: self._fetched(reply, sent))

    def _fetched(self, reply: Envelope | ZafkaError, sent: dict[Key, Followed]) -> None:
        self._fetching = False
        message = reply if isinstance(reply, ZafkaError) else reply.message
        if not isinstance(message, ReplicaFetchResponse):
            self._retry(message)
            return
        records, position, retry = memoryview(message.records), 0, False
        if sum(p.size for p in message.partitions) != len(records):
            self._retry("a fetch answer whose sizes do not add up")
            return
        for part in message.partitions:
            data = records[position : position + part.size]
            position += part.size
            key = (part.topic, part.partition)
            followed = self.partitions.get(key)
            actor = self._local(key)
            if followed is None or followed is not sent.get(key) or actor is None:
                continue
            if followed.phase == FETCH:
                retry |= not self._take(followed, actor, part.error_code, data, part)
        self._retry("fetch errors") if retry else self.set_timer("work", 0)

    def _take(
        self,
        followed: Followed,
        actor: PartitionActor,
        code: int,
        data: memoryview,
        part: FetchedPartition,
    ) -> bool:
        """Apply one partition's answer; False when it should be retried after a pause."""
        name = BY_CODE[code].name
        try:
            if code == 0:
                followed.offset = replica_io.follower_append(actor, data, part.high_watermark)
                return True
            if name == "OFFSET_OUT_OF_RANGE" and followed.offset < part.log_start_offset:
                replica_io.follower_reset(actor, part.log_start_offset)
                followed.offset = part.log_start_offset
                return True
            if name == "OFFSET_OUT_OF_RANGE":
                followed.phase = TRUNCATE
                return True
        except (ZafkaError, OSError) as err:  # a damaged batch, a full disk: try again later
            log.warning("%s: %s-%s: %s", self.name, part.topic, part.partition, err)
            return False
        return self._fenced(followed, code)
