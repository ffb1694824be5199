"""The replication half of a PartitionActor's shell: the leader side (followers' fetches,
OffsetForLeaderEpoch answers, ISR writes through the broker actor) and the follower side (the
broker's fetcher appends the leader's batches and truncates by leader epoch).

These methods are called directly by the `replication` actor (leader side) and the
`ReplicaFetcher` actors (follower side) of the same broker: every actor of a process runs on
the runtime's one thread, so a call is a plain call, and batches go from the log to the
fetch answer (and from the answer to the follower's log) without a message per partition.
An ISR change goes to the broker actor as an `AlterIsr` message (its worker writes ZooKeeper)
and comes back as `IsrWritten`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zafka import limits
from zafka.actors.partition.divergence import AskEpoch, TruncateTo, answered, first_step
from zafka.actors.partition.state import Released
from zafka.errors import ZafkaError
from zafka.storage import checkpoint
from zafka.storage.scan import first_damaged_offset
from zafka.transport.client import ProduceResponse
from zafka.transport.envelope import Envelope

if TYPE_CHECKING:
    from zafka.actors.partition.actor import PartitionActor

logger = logging.getLogger(__name__)
HIGH_WATERMARK = "high-watermark"  # the checkpoint file in the partition's directory


@dataclass(frozen=True, slots=True)
class AlterIsr:
    """Local (partition -> broker actor): write this ISR if the state is still at `version`."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    version: int


@dataclass(frozen=True, slots=True)
class IsrWritten:
    """Local (broker actor -> partition): the outcome of an AlterIsr (`version` -1: refused)."""

    leader_epoch: int
    isr: tuple[int, ...]
    version: int


def read_high_watermark(actor: PartitionActor) -> int:
    return checkpoint.read_offset(actor.directory / HIGH_WATERMARK) or 0


def checkpoint_high_watermark(actor: PartitionActor) -> None:
    high = actor.state.high_watermark
    if high != actor.checkpointed_high_watermark:
        checkpoint.write_offset(actor.directory / HIGH_WATERMARK, high, durable=False)
        actor.checkpointed_high_watermark = high


# --- the leader's side ----------------------------------------------------------------------


def replica_read(
    actor: PartitionActor, replica: int, leader_epoch: int, offset: int, max_bytes: int
) -> tuple[int, memoryview | bytes]:
    """A follower's fetch of this partition: (error code, its batches from `offset`)."""
    state = actor.state
    try:
        read, moved = state.replica_fetch(
            replica, leader_epoch, offset, max_bytes, actor._runtime().now_ms()
        )
        data = actor._perform(read)
    except ZafkaError as err:
        return err.error.code, b""
    if moved:
        handle_released(actor, state.release(actor._bytes_available))
    propose_isr(actor)
    return 0, data


def epoch_end(actor: PartitionActor, leader_epoch: int, epoch: int) -> tuple[int, int, int]:
    """OffsetForLeaderEpoch: (error code, the largest epoch <= `epoch`, where it ends)."""
    try:
        actor.state.check_leader()
        actor.state.check_epoch(leader_epoch)
    except ZafkaError as err:
        return err.error.code, -1, -1
    log = actor.log
    found, end = log.epochs.end_offset_for(epoch, log.log_end_offset)
    return 0, found, end


def propose_isr(actor: PartitionActor) -> None:
    """Send the ISR change the state wants now (if any) to the broker actor to write."""
    state = actor.state
    proposed = state.isr_proposal(actor._runtime().now_ms())
    if proposed is None:
        return
    role = state.check_leader()
    logger.info("partition %s: ISR %s -> %s", actor.name, list(role.isr), list(proposed))
    change = AlterIsr(
        state.topic, state.partition, role.broker_id, state.leader_epoch, proposed, role.version
    )
    actor.cast(f"{actor._runtime().node}/broker", change)


def on_isr_written(actor: PartitionActor, envelope: Envelope) -> None:
    written: IsrWritten = envelope.message
    state = actor.state
    if written.leader_epoch != state.leader_epoch or not state.is_leader:
        return
    if written.version < 0:
        state.isr_write_failed()
        return
    if state.isr_written(written.isr, written.version):
        handle_released(actor, state.release(actor._bytes_available))


def handle_released(actor: PartitionActor, released: Released) -> None:
    """Answer the fetches and the acks=all produces a move of the high watermark released."""
    for pending in released.fetches:
        actor._answer(pending)
    for ack in released.acks:
        envelope: Envelope = ack.handle  # type: ignore[assignment]
        if released.failed:
            detail = f"{actor.name}: the ISR fell below min.insync.replicas"
            actor.reply_error(envelope, ZafkaError("NOT_ENOUGH_REPLICAS_AFTER_APPEND", detail))
        else:
            actor.reply(envelope, ProduceResponse(0, ack.base_offset, -1))
    if released.acks or released.fetches:
        actor._schedule_deadlines()


# --- the follower's side --------------------------------------------------------------------


def truncation_step(
    actor: PartitionActor, leader_answer: tuple[int, int] | None = None
) -> AskEpoch | TruncateTo:
    """What the follower does next to find where it agrees with its leader: ask about an
    epoch, or cut its log (done, here) and fetch from there."""
    log = actor.log
    if leader_answer is None:
        step = first_step(log.epochs, log.log_start_offset, log.log_end_offset)
    else:
        step = answered(log.epochs, log.log_start_offset, log.log_end_offset, *leader_answer)
    if isinstance(step, TruncateTo) and step.offset < log.log_end_offset:
        logger.warning(
            "partition %s: cutting the divergent tail [%s, %s)",
            actor.name,
            step.offset,
            log.log_end_offset,
        )
        log.truncate_to(step.offset)
        actor._log_changed()
        actor.state.truncated()
    return step


def follower_append(actor: PartitionActor, data: memoryview, leader_high_watermark: int) -> int:
    """Append the leader's batches; returns the log end offset (where to fetch next)."""
    log = actor.log
    try:
        headers = log.append_replicated(data) if data else []
    finally:
        actor._log_changed()
    actor.state.replicated(headers, leader_high_watermark)
    actor._schedule_flush()
    return log.log_end_offset


def scrub_step(actor: PartitionActor) -> bool:
    """A follower checks its log once before it copies anything: whole segments, up to
    `limits.scrub_bytes_per_turn_max` a turn. A damaged batch cuts the log there: what
    follows is fetched again from the leader, so a damaged replica is repaired, and it cannot
    join the ISR (or be elected) before. True when the whole log has been checked."""
    log, read = actor.log, 0
    for segment in log.segments:
        if segment.base_offset < actor.scrub_offset:
            continue
        if read >= limits.scrub_bytes_per_turn_max:
            return False
        damaged = first_damaged_offset(segment)
        if damaged is not None:
            logger.warning(
                "partition %s: damaged batch at offset %s in %s; cut there, to fetch again",
                actor.name,
                damaged,
                segment.log_path,
            )
            log.truncate_to(max(damaged, log.log_start_offset))
            actor._log_changed()
            actor.state.truncated()
            return True
        read += segment.size
        actor.scrub_offset = segment.next_offset
    return True


def follower_reset(actor: PartitionActor, offset: int) -> None:
    """The leader's log starts above this one's end: start empty at `offset`."""
    logger.warning(
        "partition %s: behind the leader's log start, starting at %s", actor.name, offset
    )
    actor.log.reset_to(offset)
    actor._log_changed()
    actor.state.truncated()
