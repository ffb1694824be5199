"""The state machine of one partition's leader. Pure: no files, sockets, threads or clock.

`PartitionActor` is its shell: it feeds requests in, performs the log operations they
return on its `PartitionLog`, feeds the results back, sends the replies and arms timers.
Time comes in as `now_ms` (the runtime's monotonic clock) or `wall_ms` (record time).

What it owns: the partition's identity and leader epoch, the topic's limits, the producer
state (idempotence), the parked fetches (long polling), and the log's offsets as the shell
last reported them (`log_opened`, `log_changed`). What it decides:

- Produce: `produce(request)` checks the partition, acks and batch size, and judges the
  batch by the producer state: a retried duplicate gets its original base offset (an `int`,
  nothing to append); otherwise it returns an `Append` for the shell to perform and report
  with `appended` (which records the batch for its producer and releases the parked fetches
  that now have their `min_bytes`). A corrupt batch is reported as CORRUPT_MESSAGE, never as
  a sequence gap; a duplicate is checked before it is answered (an appended batch is checked
  by the log). Every refusal is a ZafkaError raised before anything is appended.
- Fetch: `fetch(request)` checks the request and the offset against [log start, high
  watermark] and returns the `Read` to perform; `fetched(request, handle, data, now_ms)`
  turns its result into the response, or parks the fetch (returns `PARKED`) when fewer than
  `min_bytes` came back and it may wait. `released(pending)` gives the `Read` for a parked
  fetch being answered now (or the ZafkaError to answer it with).
- ListOffsets: `list_offsets(request)` answers -2 (log start) and -1 (high watermark) at
  once; for a timestamp it returns a `FindTimestamp` for the shell to look up in the log.
- Timers: `flush_wanted()` says when a flush timer should be armed (appended data past the
  recovery point, fsync not `never`); `next_fetch_deadline_ms` / `expire(now_ms)` for parked
  fetches (cleanup.py says which cleanup the topic's policy wants).

- Replication (docs/ARCHITECTURE.md, Replication): a leader's `ReplicaSet` keeps the ISR
  and the high watermark, which moves on the leader's appends and its followers' fetches
  (`replica_fetch`), and on ISR writes (`isr_proposal`, `isr_written`). Consumers read only
  below the high watermark. acks=all is answered once the high watermark passes the batch
  (`answer`: PARKED in the `AckPurgatory` until then, or its timeout); with fewer in-sync
  replicas than `min_insync` it is refused before anything is appended. A follower refuses
  client requests (NOT_LEADER_OR_FOLLOWER) and takes its leader's batches (`replicated`),
  rebuilding the producer state from them, so a retry after a failover is recognised.
  Whatever moved the high watermark returns the fetches and answers it released (`Released`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from zafka import limits
from zafka.actors.partition.acks import AckPurgatory, WaitingAck
from zafka.actors.partition.fetch_waiters import BytesAvailableFn, FetchWaiters, PendingFetch
from zafka.actors.partition.operations import NOTHING, Append, FindTimestamp, Read, Released
from zafka.actors.partition.producer_state import Action, ProducerStateTable
from zafka.actors.partition.replica_set import ReplicaSet
from zafka.actors.partition.replica_state import ReplicaDecisions
from zafka.actors.partition.roles import SOLE_LEADER, Leadership, Role
from zafka.errors import ZafkaError
from zafka.storage.batch import BatchHeader, check_batch, parse_header
from zafka.storage.config import Fsync, LogConfig
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

ACKS = (0, 1, -1)
NO_TIMESTAMP = -1
PARKED = object()  # `fetched`: the fetch waits (answer it when `appended` or `expire` says)


class PartitionState(ReplicaDecisions):
    """The leader of partition `partition` of `topic`, as state and decisions."""

    def __init__(
        self,
        topic: str,
        partition: int,
        config: LogConfig,
        leader_epoch: int = 0,
        max_message_bytes: int = limits.batch_bytes_max,
        role: Role = SOLE_LEADER,
        eligible: Callable[[int], bool] = lambda replica: True,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.config = config
        self.leader_epoch = leader_epoch
        self.max_message_bytes = max_message_bytes  # the topic's max.message.bytes
        self.role = role
        self.eligible = eligible  # which replicas may join the ISR (live ones)
        self.replicas: ReplicaSet | None = None  # a leader's, from `log_opened`
        self.follower_high_watermark = 0  # a follower's, from its leader's answers
        self.producers = ProducerStateTable()
        self.waiters = FetchWaiters()
        self.acks = AckPurgatory()
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.recovery_point = 0
        self.flush_armed = False  # the shell's flush timer is set
        self._damage_reported: set[str] = set()  # corrupt batches a fetch ran into

    @property
    def high_watermark(self) -> int:
        """What consumers may read below (every in-sync replica holds it)."""
        if self.replicas is None:
            return min(self.follower_high_watermark, self.log_end_offset)
        return self.replicas.high_watermark

    @property
    def is_leader(self) -> bool:
        return isinstance(self.role, Leadership)

    def check_leader(self) -> Leadership:
        if not isinstance(self.role, Leadership):
            raise ZafkaError(
                "NOT_LEADER_OR_FOLLOWER",
                f"{self.topic}-{self.partition}: broker {self.role.leader} leads it",
            )
        return self.role

    # --- the log's results ------------------------------------------------------------------

    def log_opened(
        self,
        headers: Iterable[BatchHeader],
        start: int,
        end: int,
        rp: int,
        high_watermark: int = 0,
        epoch_start: int = 0,
        now_ms: int = 0,
    ) -> None:
        """The log was opened: rebuild the producer state from its batch headers; a leader
        starts tracking its followers from the checkpointed high watermark."""
        self.producers.rebuild(headers)
        self.log_changed(start, end, rp)
        self.follower_high_watermark = high_watermark
        if isinstance(self.role, Leadership):
            role = self.role
            self.replicas = ReplicaSet(
                role.broker_id,
                role.replicas,
                role.isr,
                role.version,
                max(high_watermark, start),
                end,
                epoch_start,
                now_ms,
                role.lag_max_ms,
                self.eligible,
            )

    def log_changed(self, start: int, end: int, recovery_point: int) -> None:
        """The log's start, end and recovery point after an operation on it."""
        self.log_start_offset, self.log_end_offset = start, end
        self.recovery_point = recovery_point

    # --- produce ----------------------------------------------------------------------------

    def check_partition(self, topic: str, partition: int) -> None:
        if topic != self.topic or partition != self.partition:
            raise ZafkaError(
                "UNKNOWN_TOPIC_OR_PARTITION",
                f"{topic}-{partition} is not led by {self.topic}-{self.partition}",
            )

    def produce(self, request: ProduceRequest) -> Append | int:
        """The `Append` to perform, or the base offset of the duplicate it retries."""
        self.check_partition(request.topic, request.partition)
        role = self.check_leader()
        if request.acks not in ACKS:
            raise ZafkaError("INVALID_REQUEST", f"acks {request.acks} is not one of {ACKS}")
        if request.acks == -1:
            self._check_insync(role)
            self.acks.check_room()
        if len(request.batch) > self.max_message_bytes:
            raise ZafkaError(
                "MESSAGE_TOO_LARGE",
                f"batch of {len(request.batch)} bytes, max.message.bytes {self.max_message_bytes}",
            )
        header = parse_header(request.batch)
        try:
            decision = self.producers.check(
                header.producer_id, header.producer_epoch, header.base_sequence, header.record_count
            )
        except ZafkaError:
            check_batch(request.batch)  # a corrupt batch is reported as such, not as a gap
            raise
        if decision.action is Action.DUPLICATE:
            check_batch(request.batch)
            return decision.base_offset
        return Append(request.batch, header, self.leader_epoch)

    def _check_insync(self, role: Leadership) -> None:
        assert self.replicas is not None
        if len(self.replicas.isr) < role.min_insync:
            raise ZafkaError(
                "NOT_ENOUGH_REPLICAS",
                f"{self.topic}-{self.partition}: in sync {list(self.replicas.isr)}, "
                f"min.insync.replicas {role.min_insync}",
            )

    def appended(
        self, append: Append, base_offset: int, last_offset: int, available: BytesAvailableFn
    ) -> Released:
        """`append` is in the log at [base_offset, last_offset] (report the log's offsets
        with `log_changed` first). Returns what the high watermark's move released."""
        header = append.header
        self.producers.record(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.record_count,
            base_offset,
            last_offset,
        )
        assert self.replicas is not None
        moved = self.replicas.leader_appended(self.log_end_offset)
        return self._release(available) if moved else NOTHING

    def answer(
        self, request: ProduceRequest, handle: Hashable, base_offset: int, now_ms: int
    ) -> ProduceResponse | object:
        """The answer to a produce whose batch is at `base_offset` (appended or a retry),
        or PARKED: acks=all and the high watermark has not passed it yet."""
        last_offset = base_offset + parse_header(request.batch).last_offset_delta
        if request.acks == -1 and last_offset >= self.high_watermark:
            deadline_ms = now_ms + max(request.timeout_ms, 0)
            self.acks.add(handle, base_offset, last_offset, deadline_ms)
            return PARKED
        return ProduceResponse(error_code=0, base_offset=base_offset, log_append_time_ms=-1)

    def _release(self, available: BytesAvailableFn) -> Released:
        key = (self.topic, self.partition)
        fetches = self.waiters.on_append(key, self.high_watermark, available)
        acks = self.acks.released(self.high_watermark)
        role = self.role
        failed = bool(acks) and self.replicas is not None and isinstance(role, Leadership)
        failed = failed and len(self.replicas.isr) < role.min_insync  # type: ignore[union-attr]
        return Released(fetches, acks, failed)

    # --- fetch ------------------------------------------------------------------------------

    def fetch(self, request: FetchRequest) -> Read:
        self.check_partition(request.topic, request.partition)
        self.check_leader()
        if request.max_bytes < 0 or request.max_wait_ms < 0:
            raise ZafkaError("INVALID_REQUEST", "max_bytes and max_wait_ms must be >= 0")
        return self._read(request.offset, request.max_bytes)

    def fetched(
        self, request: FetchRequest, handle: Hashable, data: bytes, now_ms: int
    ) -> FetchResponse | object:
        """The response to a fetch whose `Read` returned `data`, or PARKED: fewer than
        `min_bytes` and it may wait (BUSY when too many wait already)."""
        if len(data) >= request.min_bytes or request.max_wait_ms == 0:
            return self.response(data)
        key = (self.topic, self.partition)
        deadline_ms = now_ms + request.max_wait_ms
        self.waiters.add(
            handle, key, request.offset, request.min_bytes, request.max_bytes, deadline_ms
        )
        return PARKED

    def released(self, pending: PendingFetch) -> Read:
        """The read to answer a released fetch with (ZafkaError if its offset is gone)."""
        return self._read(pending.offset, pending.max_bytes)

    def response(self, data: bytes) -> FetchResponse:
        return FetchResponse(
            error_code=0,
            high_watermark=self.high_watermark,
            log_start_offset=self.log_start_offset,
            records=data,  # the stored batches as read: travels as its own frame, uncopied
        )

    def first_report(self, damage: str) -> bool:
        """True the first time a fetch runs into the damaged batch `damage` (log it once)."""
        first = damage not in self._damage_reported
        self._damage_reported.add(damage)
        return first

    def expire(self, now_ms: int) -> list[PendingFetch]:
        return self.waiters.expire(now_ms)

    def next_fetch_deadline_ms(self) -> int | None:
        return self.waiters.next_deadline_ms()

    def stop(self) -> tuple[list[PendingFetch], list[WaitingAck]]:
        """The actor stops: every parked fetch, to answer with what is there, and every
        acks=all answer still waiting (NOT_LEADER_OR_FOLLOWER: the producer retries)."""
        return self.waiters.drain_all(), self.acks.drain()

    def expire_acks(self, now_ms: int) -> list[WaitingAck]:
        return self.acks.expired(now_ms)

    def _read(self, offset: int, max_bytes: int) -> Read:
        """Below the high watermark; an offset between it and the log end reads nothing
        yet (Kafka's: a consumer of a new leader whose high watermark lags is not reset)."""
        start, end = self.log_start_offset, self.log_end_offset
        if not start <= offset <= end:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", f"offset {offset} is outside [{start}, {end}]")
        return Read(offset, max_bytes, self.high_watermark)

    # --- list offsets -----------------------------------------------------------------------

    def list_offsets(self, request: ListOffsetsRequest) -> ListOffsetsResponse | FindTimestamp:
        self.check_partition(request.topic, request.partition)
        self.check_leader()
        timestamp = request.timestamp
        if timestamp == EARLIEST:
            return ListOffsetsResponse(0, self.log_start_offset, NO_TIMESTAMP)
        if timestamp == LATEST:
            return ListOffsetsResponse(0, self.high_watermark, NO_TIMESTAMP)
        if timestamp < 0:
            raise ZafkaError("INVALID_REQUEST", f"timestamp {timestamp}: -2, -1 or >= 0")
        return FindTimestamp(timestamp)

    # --- timers -----------------------------------------------------------------------------

    def flush_wanted(self) -> bool:
        """Whether to arm the flush timer now (an idle partition costs no timer: a broker
        hosts thousands). The caller sets it and `flush_armed`."""
        unflushed = self.recovery_point < self.log_end_offset
        return self.config.fsync is not Fsync.NEVER and unflushed and not self.flush_armed
