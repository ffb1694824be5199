"""PartitionActor: one replica of one partition on one broker: its leader (Produce, Fetch,
ListOffsets; followers' fetches) or a follower (its broker's fetcher appends the leader's
batches; client requests get NOT_LEADER_OR_FOLLOWER). `roles.py` says which;
`replica_io.py` holds the replication half of the shell.

The shell around `actors/partition/state.py` (`PartitionState`, which decides: validation,
idempotence, long polling, what cleanup runs; its docstring says how each request goes).
The actor does the I/O: it owns the `PartitionLog` (opened in `on_start`, closed in
`on_stop`), performs the log operations the state returns, reports the log's offsets back,
replies, and arms the timers. It calls no one: it only answers.

The actor is named `f"{topic}-{partition}"` (e.g. `orders-3`), so its address on node `n` is
`n/orders-3`; a topic name never holds '/', so the name is always valid. acks=0 arrives as a
cast: appended, never answered. Any ZafkaError is answered by the Actor base as an
ErrorReply; a damaged batch a fetch runs into is CORRUPT_MESSAGE, logged once per batch.

A timer (`fsync_interval_ms`, on the runtime's monotonic clock), armed only while appended
data is past the recovery point, drives `flush_if_due`.
Another (`cleanup_interval_ms`, Kafka's 5 minutes by default) cleans the log by its topic's
`cleanup.policy`: retention (`delete`: whole sealed segments past `retention.ms` or beyond
`retention.bytes`) or compaction (`compact`: the latest record per key, tombstones kept for
`delete.retention.ms`; run when a segment was sealed since the last run, or when tombstones
may have aged out). Both compare record timestamps with the wall clock. They run on the
runtime's thread: a compaction rewrites the sealed segments, so a compacted topic's segments
are kept small (`__consumer_offsets`: `limits.offsets_segment_bytes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from zafka import clock as clocks
from zafka import limits
from zafka.actors.partition import replica_io
from zafka.actors.partition.cleanup import Cleanup, CleanupSchedule
from zafka.actors.partition.fetch_waiters import FetchWaiters, PendingFetch
from zafka.actors.partition.roles import SOLE_LEADER, Leadership, Role
from zafka.actors.partition.state import (
    NO_TIMESTAMP,
    PARKED,
    Append,
    FindTimestamp,
    PartitionState,
    Read,
)
from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.errors import ZafkaError
from zafka.storage.config import LogConfig
from zafka.storage.log import PartitionLog
from zafka.storage.records import read_batch
from zafka.transport.client import (
    FetchRequest,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ProduceRequest,
    ProduceResponse,
)
from zafka.transport.envelope import Envelope
from zafka.transport.names import partition_actor_name

logger = logging.getLogger(__name__)


class PartitionActor(Actor):
    """Leads partition `partition` of `topic`, its log in `directory`."""

    def __init__(
        self,
        topic: str,
        partition: int,
        directory: Path,
        config: LogConfig,
        leader_epoch: int = 0,
        max_message_bytes: int = limits.batch_bytes_max,
        cleanup_interval_ms: int = limits.log_cleanup_interval_ms,
        wall_clock: Callable[[], int] = clocks.wall_ms,
        role: Role = SOLE_LEADER,
        on_append: Callable[[str, int], None] | None = None,
        eligible: Callable[[int], bool] = lambda replica: True,
        log_checked: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(partition_actor_name(topic, partition))
        self.directory = directory
        self.config = config
        self.state = PartitionState(
            topic, partition, config, leader_epoch, max_message_bytes, role, eligible
        )
        self._log: PartitionLog | None = None
        self.cleanup_interval_ms = cleanup_interval_ms
        self._wall_clock = wall_clock
        self._on_append = on_append  # wakes followers' fetches waiting on this broker
        self.checkpointed_high_watermark = -1
        self.cleaning = CleanupSchedule(config)
        # A follower whose log this process has not checked yet checks it before it copies,
        # then calls `log_checked` (None: no check needed).
        self._log_checked = log_checked
        self.scrubbed = self.state.is_leader or log_checked is None
        self.scrub_offset = 0

    @property
    def waiters(self) -> FetchWaiters:
        return self.state.waiters

    @waiters.setter
    def waiters(self, waiters: FetchWaiters) -> None:
        self.state.waiters = waiters

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        self._log = PartitionLog.open(self.directory, self.config)
        log, state = self._log, self.state
        if state.is_leader:
            log.begin_epoch(state.leader_epoch)
        high_watermark = replica_io.read_high_watermark(self)
        self.checkpointed_high_watermark = high_watermark
        epoch_start = log.epochs.end_offset_for(state.leader_epoch - 1, log.log_end_offset)[1]
        state.log_opened(
            log.headers(),
            log.log_start_offset,
            log.log_end_offset,
            log.recovery_point,
            high_watermark,
            max(epoch_start, log.log_start_offset),
            self._runtime().now_ms(),
        )
        self._schedule_flush()
        self.set_timer("cleanup", self.cleanup_interval_ms)
        if state.is_leader and state.role.replicas != (state.role.broker_id,):
            self.set_timer("isr", self._isr_check_ms())
        if not self.scrubbed:
            self.scrub_offset = log.log_start_offset
            self.set_timer("scrub", 0)

    def on_stop(self) -> None:
        """Answer every parked fetch with what is there, then flush and seal the log."""
        if self._log is None:
            return
        try:
            fetches, acks = self.state.stop()
            for pending in fetches:
                self._answer(pending)
            for ack in acks:
                detail = f"{self.name} stopped leading before the ISR had the batch"
                self.reply_error(ack.handle, ZafkaError("NOT_LEADER_OR_FOLLOWER", detail))
            replica_io.checkpoint_high_watermark(self)
        finally:
            self._log.close()
            self._log = None

    @property
    def log(self) -> PartitionLog:
        if self._log is None:
            raise ZafkaError("NOT_LEADER_OR_FOLLOWER", f"{self.name} is not open")
        return self._log

    def _log_changed(self) -> None:
        log = self.log
        self.state.log_changed(log.log_start_offset, log.log_end_offset, log.recovery_point)

    def _schedule_flush(self) -> None:
        if self.state.flush_wanted():
            self.set_timer("flush", max(self.config.fsync_interval_ms, limits.flush_timer_ms_min))
            self.state.flush_armed = True

    def on_flush_timeout(self, now_ms: int) -> None:
        self.state.flush_armed = False
        self.log.flush_if_due(now_ms)
        self._log_changed()
        replica_io.checkpoint_high_watermark(self)
        self._schedule_flush()

    def _isr_check_ms(self) -> int:
        return max(self.state.check_leader().lag_max_ms // 2, 1)

    def on_scrub_timeout(self, now_ms: int) -> None:
        self.scrubbed = replica_io.scrub_step(self)
        if not self.scrubbed:
            self.set_timer("scrub", 0)
        elif self._log_checked is not None:
            self._log_checked()

    def on_isr_timeout(self, now_ms: int) -> None:
        """Kafka's ISR check: followers lagging past replica.lag.time.max.ms leave the ISR."""
        replica_io.propose_isr(self)
        self.set_timer("isr", self._isr_check_ms())

    def on_cleanup_timeout(self, now_ms: int) -> None:
        try:
            self.clean()
        except ZafkaError as err:  # a damaged batch in a segment to compact: try again later
            logger.error("partition %s: cleanup stopped: %s", self.name, err.detail)
        self.set_timer("cleanup", self.cleanup_interval_ms)

    def clean(self) -> int:
        """Retention or compaction, by the topic's cleanup.policy (see the module docstring).
        Returns how many segments (delete) or records (compact) it removed."""
        log, wall_ms = self.log, self._wall_clock()
        action = self.cleaning.wanted(wall_ms, self._sealed_bases())
        if action is Cleanup.NONE:
            return 0
        try:
            if action is Cleanup.RETENTION:
                return log.enforce_retention(wall_ms)
            removed = log.compact(wall_ms)
            self.cleaning.compacted(wall_ms, self._sealed_bases())
            return removed
        finally:
            self._log_changed()

    def _sealed_bases(self) -> tuple[int, ...]:
        return tuple(segment.base_offset for segment in self.log.segments[:-1])

    def update(self, role: Leadership, leader_epoch: int) -> None:
        """The controller changed this leader's ISR or replicas, maybe in a new epoch (which
        starts at the log end)."""
        if leader_epoch > self.state.leader_epoch:
            self.log.begin_epoch(leader_epoch)
        now_ms = self._runtime().now_ms()
        if self.state.update(role, leader_epoch, self.log.log_end_offset, now_ms):
            replica_io.handle_released(self, self.state.release(self._bytes_available))

    # --- produce --------------------------------------------------------------------------

    def on_produce_request(self, envelope: Envelope) -> ProduceResponse | None:
        """Append one batch (or recognise a retried one); None for acks=0 (a cast)."""
        request: ProduceRequest = envelope.message
        state = self.state
        step = state.produce(request)
        if isinstance(step, Append):
            try:
                base_offset, last_offset = self.log.append(bytearray(step.batch), step.leader_epoch)
            except OSError as err:  # a full disk, a file size limit: nothing was appended
                logger.error("partition %s: cannot append: %s", self.name, err)
                raise ZafkaError("KAFKA_STORAGE_ERROR", f"{self.name}: {err.strerror}") from None
            self._log_changed()
            released = state.appended(step, base_offset, last_offset, self._bytes_available)
            self._schedule_flush()
            replica_io.handle_released(self, released)
            if self._on_append is not None:
                self._on_append(state.topic, state.partition)
        else:
            base_offset = step
        if envelope.correlation_id == 0:
            return None  # a cast (acks=0): nobody waits for an answer
        answer = state.answer(request, envelope, base_offset, self._runtime().now_ms())
        if answer is PARKED:
            self._schedule_deadlines()
            return DEFERRED
        return answer

    # --- fetch ----------------------------------------------------------------------------

    def on_fetch_request(self, envelope: Envelope) -> object:
        request: FetchRequest = envelope.message
        data = self._perform(self.state.fetch(request))
        if envelope.correlation_id == 0:
            return None  # a fetch sent as a cast has nobody to answer
        response = self.state.fetched(request, envelope, data, self._runtime().now_ms())
        if response is PARKED:
            self._schedule_deadlines()
            return DEFERRED
        return response

    def _perform(self, read: Read) -> bytes:
        try:
            return self.log.read(read.offset, read.max_bytes, max_offset=read.max_offset)
        except ZafkaError as err:
            if err.error.name == "CORRUPT_MESSAGE" and self.state.first_report(err.detail):
                logger.error(
                    "partition %s: %s; fetches from there get CORRUPT_MESSAGE until the "
                    "consumer seeks past it",
                    self.name,
                    err.detail,
                )
            raise

    def _bytes_available(self, offset: int, up_to_offset: int) -> int:
        """Bytes of whole batches from the one holding `offset` to the log end (no I/O
        beyond index lookups): at least what a fetch below the high watermark `up_to_offset`
        reads, and at least one batch when `offset` is below it, which is what releasing a
        parked fetch needs (a fetch wanting more may be answered with less: Kafka's too)."""
        total = 0
        for segment in self.log.segments:
            if segment.next_offset > offset:
                total += segment.size - segment.position_of(offset)
        return total

    def _answer(self, pending: PendingFetch) -> None:
        """Reply to a parked fetch with what is readable from its offset now."""
        envelope: Envelope = pending.handle  # type: ignore[assignment]
        try:
            response = self.state.response(self._perform(self.state.released(pending)))
        except ZafkaError as err:  # e.g. the log was truncated below its offset
            self.reply_error(envelope, err)
            return
        self.reply(envelope, response)

    def _schedule_deadlines(self) -> None:
        """Arm the timer of parked fetches and of acks=all answers for the earliest one."""
        state = self.state
        due = [
            d
            for d in (state.next_fetch_deadline_ms(), state.acks.next_deadline_ms())
            if d is not None
        ]
        if not due:
            self.cancel_timer("deadline")
        else:
            self.set_timer("deadline", max(min(due) - self._runtime().now_ms(), 0))

    def on_deadline_timeout(self, now_ms: int) -> None:
        for pending in self.state.expire(now_ms):
            self._answer(pending)
        for ack in self.state.expire_acks(now_ms):
            detail = f"{self.name}: the ISR did not have the batch in time"
            self.reply_error(ack.handle, ZafkaError("REQUEST_TIMED_OUT", detail))
        self._schedule_deadlines()

    # --- list offsets ---------------------------------------------------------------------

    def on_list_offsets_request(self, envelope: Envelope) -> ListOffsetsResponse:
        request: ListOffsetsRequest = envelope.message
        step = self.state.list_offsets(request)
        if not isinstance(step, FindTimestamp):
            return step
        at = self.log.offset_for_timestamp(step.timestamp)
        if at is None:
            return ListOffsetsResponse(error_code=0, offset=-1, timestamp=NO_TIMESTAMP)
        return ListOffsetsResponse(error_code=0, offset=at, timestamp=self._timestamp_of(at))

    def _timestamp_of(self, offset: int) -> int:
        """The timestamp of the record at `offset` (decodes the one batch holding it)."""
        data = self.log.read(offset, 0, max_offset=self.state.high_watermark)
        if not data:
            return NO_TIMESTAMP
        decoded = read_batch(data)
        for at, timestamp in zip(decoded.offsets, decoded.timestamps, strict=True):
            if at == offset:
                return timestamp
        return NO_TIMESTAMP

    on_isr_written = replica_io.on_isr_written

    HANDLERS = handlers(
        {
            ProduceRequest: on_produce_request,
            FetchRequest: on_fetch_request,
            ListOffsetsRequest: on_list_offsets_request,
            replica_io.IsrWritten: on_isr_written,
        }
    )
