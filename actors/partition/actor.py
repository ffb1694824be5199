"""PartitionActor: the leader of one partition on one broker (Produce, Fetch, ListOffsets).

The actor is named `f"{topic}-{partition}"` (e.g. `orders-3`), so its address on node `n` is
`n/orders-3`; a topic name never holds '/', so the name is always valid. It owns one
`PartitionLog` (opened in `on_start`, closed in `on_stop`), the partition's
`ProducerStateTable` (rebuilt from the log's batch headers on start, so idempotence survives
a restart) and its `FetchWaiters` (long-polling fetches). It calls no one: it only answers.

Replication comes later: for now the high watermark is the log end offset, and acks=-1
(all in-sync replicas) means this leader alone, exactly like acks=1.

- Produce: a batch over the topic's `max.message.bytes` (its whole size, header included,
  as Kafka counts it) is refused with MESSAGE_TOO_LARGE. Otherwise the batch is judged by
  the producer state, and checked (header, CRC, limits) once, by the log's append or, for
  a duplicate, before it is answered:
  a retried duplicate gets its original base offset and appends nothing; otherwise it is
  appended under this actor's leader epoch, recorded, and parked fetches that now have
  their `min_bytes` are answered. acks=0 arrives as a cast: appended, never answered. Any
  ZafkaError (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, OUT_OF_ORDER_SEQUENCE, ...) is raised
  before anything is appended and the Actor base answers it as an ErrorReply.
- Fetch: whole stored batches from `offset` below the high watermark, stopping before a
  damaged one (a fetch starting at it is CORRUPT_MESSAGE naming the segment, byte and
  offsets; logged once per batch). Fewer than
  `min_bytes` readable and `max_wait_ms` > 0: the call is parked (its envelope is the
  handle) and answered by the append that makes enough bytes readable or at its deadline
  with whatever there is (possibly nothing). Too many parked fetches: BUSY.
- ListOffsets: -2 the log start, -1 the log end (the high watermark), else the first offset
  whose record timestamp is >= the one asked (offset -1 when there is none, as Kafka says).

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
import time
from collections.abc import Callable
from pathlib import Path

from zafka import limits
from zafka.actors.partition.fetch_waiters import FetchWaiters, PendingFetch
from zafka.actors.partition.producer_state import Action, ProducerStateTable
from zafka.actors.runtime.actor import DEFERRED, Actor
from zafka.errors import ZafkaError
from zafka.storage.batch import check_batch, parse_header
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import PartitionLog
from zafka.storage.records import read_batch
from zafka.transport.client import (
    EARLIEST,
    LATEST,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ProduceRequest,
    ProduceResponse,
)
from zafka.transport.envelope import Envelope
from zafka.transport.names import partition_actor_name

logger = logging.getLogger(__name__)

ACKS = (0, 1, -1)
NO_TIMESTAMP = -1
FLUSH_TIMER_MIN_MS = 10  # fsync_interval_ms of 0 must not make the timer spin every step


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
        wall_clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(partition_actor_name(topic, partition))
        self.topic = topic
        self.partition = partition
        self.directory = directory
        self.config = config
        self.leader_epoch = leader_epoch
        self.max_message_bytes = max_message_bytes  # the topic's max.message.bytes
        self._log: PartitionLog | None = None
        self.producers = ProducerStateTable()
        self.waiters = FetchWaiters()
        self.cleanup_interval_ms = cleanup_interval_ms
        self._wall_clock = wall_clock or (lambda: int(time.time() * 1000))
        self._compacted: tuple[int, ...] = ()  # sealed segments' bases after the last compaction
        self._compacted_ms: int | None = None  # when it ran (wall clock)
        self._damage_logged: set[str] = set()  # corrupt batches a fetch ran into
        self._flush_armed = False  # the flush timer is set

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        self._log = PartitionLog.open(self.directory, self.config)
        self.producers.rebuild(self._log.headers())
        self._schedule_flush()
        self.set_timer("cleanup", self.cleanup_interval_ms)

    def on_stop(self) -> None:
        """Answer every parked fetch with what is there, then flush and seal the log."""
        if self._log is None:
            return
        try:
            for pending in self.waiters.drain_all():
                self._answer(pending)
        finally:
            self._log.close()
            self._log = None

    @property
    def log(self) -> PartitionLog:
        if self._log is None:
            raise ZafkaError("NOT_LEADER_OR_FOLLOWER", f"{self.name} is not open")
        return self._log

    @property
    def high_watermark(self) -> int:
        """What consumers may read below: the log end until replication exists."""
        return self.log.log_end_offset

    def _now_ms(self) -> int:
        return self._runtime().now_ms()

    def _schedule_flush(self) -> None:
        """Arm the flush timer while appended data is past the recovery point (an idle
        partition costs no timer: a broker hosts thousands)."""
        log = self.log
        unflushed = log.recovery_point < log.log_end_offset
        if self.config.fsync is not Fsync.NEVER and unflushed and not self._flush_armed:
            self.set_timer("flush", max(self.config.fsync_interval_ms, FLUSH_TIMER_MIN_MS))
            self._flush_armed = True

    def on_flush_timeout(self, now_ms: int) -> None:
        self._flush_armed = False
        self.log.flush_if_due(now_ms)
        self._schedule_flush()

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
        if self.config.cleanup_policy != "compact":
            return log.enforce_retention(wall_ms)
        sealed = tuple(s.base_offset for s in log.segments[:-1])
        aged = (
            self._compacted_ms is not None
            and wall_ms - self._compacted_ms >= self.config.delete_retention_ms
        )
        if not sealed or (sealed == self._compacted and not aged):
            return 0
        removed = log.compact(wall_ms)
        self._compacted = tuple(s.base_offset for s in log.segments[:-1])
        self._compacted_ms = wall_ms
        return removed

    # --- produce --------------------------------------------------------------------------

    def _check_partition(self, topic: str, partition: int) -> None:
        if topic != self.topic or partition != self.partition:
            raise ZafkaError(
                "UNKNOWN_TOPIC_OR_PARTITION", f"{topic}-{partition} is not led by {self.name}"
            )

    def on_produce_request(self, envelope: Envelope) -> ProduceResponse | None:
        """Append one batch (or recognise a retried one); None for acks=0 (a cast)."""
        request: ProduceRequest = envelope.message
        self._check_partition(request.topic, request.partition)
        if request.acks not in ACKS:
            raise ZafkaError("INVALID_REQUEST", f"acks {request.acks} is not one of {ACKS}")
        if len(request.batch) > self.max_message_bytes:
            raise ZafkaError(
                "MESSAGE_TOO_LARGE",
                f"batch of {len(request.batch)} bytes, max.message.bytes {self.max_message_bytes}",
            )
        # One full check per batch: log.append checks what it appends; a duplicate, which
        # is answered without appending, is checked here.
        header = parse_header(request.batch)
        try:
            decision = self.producers.check(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                header.record_count,
            )
        except ZafkaError:
            check_batch(request.batch)  # a corrupt batch is reported as such, not as a gap
            raise
        if decision.action is Action.DUPLICATE:
            check_batch(request.batch)
            base_offset = decision.base_offset
        else:
            base_offset, last_offset = self.log.append(bytearray(request.batch), self.leader_epoch)
            self.producers.record(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                header.record_count,
                base_offset,
                last_offset,
            )
            self._schedule_flush()
            self._release_waiters()
        if envelope.correlation_id == 0:
            return None  # a cast (acks=0): nobody waits for an answer
        return ProduceResponse(error_code=0, base_offset=base_offset, log_append_time_ms=-1)

    # --- fetch ----------------------------------------------------------------------------

    def on_fetch_request(self, envelope: Envelope) -> object:
        request: FetchRequest = envelope.message
        self._check_partition(request.topic, request.partition)
        if request.max_bytes < 0 or request.max_wait_ms < 0:
            raise ZafkaError("INVALID_REQUEST", "max_bytes and max_wait_ms must be >= 0")
        self._check_offset(request.offset)
        response = self._fetch(request.offset, request.max_bytes)
        if envelope.correlation_id == 0:
            return None  # a fetch sent as a cast has nobody to answer
        enough = len(response.records) >= request.min_bytes
        if enough or request.max_wait_ms == 0:
            return response
        deadline_ms = self._now_ms() + request.max_wait_ms
        self.waiters.add(
            envelope,
            self.name,
            request.offset,
            request.min_bytes,
            request.max_bytes,
            deadline_ms,
        )
        self._schedule_fetch_deadline()
        return DEFERRED

    def _check_offset(self, offset: int) -> None:
        start, end = self.log.log_start_offset, self.high_watermark
        if not start <= offset <= end:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", f"offset {offset} is outside [{start}, {end}]")

    def _fetch(self, offset: int, max_bytes: int) -> FetchResponse:
        try:
            data = self.log.read(offset, max_bytes, max_offset=self.high_watermark)
        except ZafkaError as err:
            if err.error.name == "CORRUPT_MESSAGE" and err.detail not in self._damage_logged:
                self._damage_logged.add(err.detail)  # once per damaged batch, not per fetch
                logger.error(
                    "partition %s: %s; fetches from there get CORRUPT_MESSAGE until the "
                    "consumer seeks past it",
                    self.name,
                    err.detail,
                )
            raise
        return FetchResponse(
            error_code=0,
            high_watermark=self.high_watermark,
            log_start_offset=self.log.log_start_offset,
            records=data,  # the stored batches as read: travels as its own frame, uncopied
        )

    def _bytes_available(self, offset: int, up_to_offset: int) -> int:
        """Bytes of whole batches from the one holding `offset` to the log end: what a fetch
        could read while the high watermark is the log end (no I/O beyond index lookups).
        With replication this must stop at `up_to_offset` (the high watermark)."""
        total = 0
        for segment in self.log.segments:
            if segment.next_offset > offset:
                total += segment.size - segment.position_of(offset)
        return total

    def _release_waiters(self) -> None:
        released = self.waiters.on_append(self.name, self.high_watermark, self._bytes_available)
        for pending in released:
            self._answer(pending)

    def _answer(self, pending: PendingFetch) -> None:
        """Reply to a parked fetch with what is readable from its offset now."""
        envelope: Envelope = pending.handle  # type: ignore[assignment]
        try:
            self._check_offset(pending.offset)
            response = self._fetch(pending.offset, pending.max_bytes)
        except ZafkaError as err:  # e.g. the log was truncated below its offset
            self.reply_error(envelope, err)
            return
        self.reply(envelope, response)

    def _schedule_fetch_deadline(self) -> None:
        deadline_ms = self.waiters.next_deadline_ms()
        if deadline_ms is None:
            self.cancel_timer("fetch_deadline")
        else:
            self.set_timer("fetch_deadline", max(deadline_ms - self._now_ms(), 0))

    def on_fetch_deadline_timeout(self, now_ms: int) -> None:
        for pending in self.waiters.expire(now_ms):
            self._answer(pending)
        self._schedule_fetch_deadline()

    # --- list offsets ---------------------------------------------------------------------

    def on_list_offsets_request(self, envelope: Envelope) -> ListOffsetsResponse:
        request: ListOffsetsRequest = envelope.message
        self._check_partition(request.topic, request.partition)
        timestamp = request.timestamp
        if timestamp == EARLIEST:
            offset, found = self.log.log_start_offset, NO_TIMESTAMP
        elif timestamp == LATEST:
            offset, found = self.high_watermark, NO_TIMESTAMP
        elif timestamp < 0:
            raise ZafkaError("INVALID_REQUEST", f"timestamp {timestamp}: -2, -1 or >= 0")
        else:
            at = self.log.offset_for_timestamp(timestamp)
            offset, found = (-1, NO_TIMESTAMP) if at is None else (at, self._timestamp_of(at))
        return ListOffsetsResponse(error_code=0, offset=offset, timestamp=found)

    def _timestamp_of(self, offset: int) -> int:
        """The timestamp of the record at `offset` (decodes the one batch holding it)."""
        data = self.log.read(offset, 0, max_offset=self.high_watermark)
        if not data:
            return NO_TIMESTAMP
        decoded = read_batch(data)
        for at, timestamp in zip(decoded.offsets, decoded.timestamps, strict=True):
            if at == offset:
                return timestamp
        return NO_TIMESTAMP
