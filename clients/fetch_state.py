"""The consumer's fetch state: positions, prefetched data, and what to ask brokers next. Pure.

Two threads use one `FetchState`, always under the Consumer's lock: the user's thread
(assign, seek, pause, poll) and the client's I/O thread, which asks `actions` what to send and
reports answers with `fetch_done` and `reset_done`. No I/O happens here.

Per partition:

- `position`: the offset of the next record `poll` hands out; None while it must be found
  with a ListOffsets request (`reset_to`: earliest -2 or latest -1, as ListOffsets says).
- `epoch`: every request carries the epoch it was sent under; an answer for an older epoch is
  dropped. The epoch changes only on the user's thread (seek, seek_to_*, pause, resume,
  assign, applying a reset), so between taking records and committing the new position no
  other thread can move a partition under the user's feet.
- Prefetching: at most one fetch of the current epoch is in flight; answered fetches wait
  in `fetched` while the user works through the data before them (`drain`). A fetch goes out
  (from `fetch_offset`, just past the last batch received) while less than `fetch_max_bytes`
  waits, so it is in flight while the user handles the records before it, and a partition
  that trickles keeps a long poll parked at the broker. When `claim` moves `fetched` into
  `drain`, room opens for the next. Unreturned data per partition is bounded in bytes, not
  in responses (a trickle brings many small ones): the drain, plus `fetched`, which held
  less than `fetch_max_bytes` when the last fetch went out, plus that fetch's answer.
- Errors: OFFSET_OUT_OF_RANGE and CORRUPT_MESSAGE are acted on once the records fetched
  before them are handed out: out of range is reset by the policy (or, with policy "none",
  raised by every poll until a seek); a corrupt batch is raised by every poll, naming the
  partition and offset, until the user seeks past it (as Kafka's consumer does). Errors
  whose `refresh_metadata` flag is set, and timeouts (`leader_may_have_moved`), ask for new
  metadata; both kinds, and other retriable errors, back off exponentially
  (`retry_backoff_ms` doubling up to `retry_backoff_max_ms`).
  A non-retriable error is raised once by the next poll (`notice`); an undecodable batch
  stops the partition and is raised by every poll until a seek (`error`).

Records are decoded on the user's thread, one batch at a time, as `poll` takes them
(`Drain.take`), with C-level passes only: no Python bytecode runs per record.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from zafka import limits
from zafka.backoff import backoff_ms
from zafka.clients.drain import Drain, fresh, split_batches
from zafka.clients.metadata import leader_may_have_moved
from zafka.errors import ZafkaError
from zafka.storage.batch import Buffer, corrupt
from zafka.transport.client import EARLIEST, LATEST
from zafka.transport.names import TopicPartition

RESET_POLICIES: dict[str, int | None] = {"earliest": EARLIEST, "latest": LATEST, "none": None}


@dataclass(slots=True, eq=False)
class AssignedPartition:
    """One assigned partition; see the module docstring."""

    tp: TopicPartition
    epoch: int
    position: int | None = None  # the next offset poll hands out; None: reset first
    reset_to: int | None = None  # EARLIEST or LATEST while position is None (None: policy none)
    fetch_offset: int = -1  # where the next fetch starts
    paused: bool = False
    fetching: bool = False  # a fetch of this epoch is in flight
    resetting: bool = False  # a ListOffsets of this epoch is in flight
    fetched: list[memoryview] | None = None  # answered fetches' batches, for the user
    fetched_bytes: int = 0  # their size
    drain: Drain | None = None  # the answered fetch the user is working through
    halted: ZafkaError | None = None  # out of range or corrupt at fetch_offset (acted on later)
    error: ZafkaError | None = None  # raised by every poll until a seek
    notice: ZafkaError | None = None  # raised once, by the next poll
    last_error: ZafkaError | None = None  # the last retriable error (why position waits)
    failures: int = 0  # in a row: the backoff doubles with each
    retry_at_ms: int = 0  # no request before this (I/O thread's clock)
    high_watermark: int = -1  # as the last fetch said


class Request(NamedTuple):
    """A request `actions` asks the I/O thread to send to the partition's leader."""

    tp: TopicPartition
    epoch: int
    offset_or_timestamp: int  # a fetch's offset, or a reset's ListOffsets timestamp
    leader: int
    sent_ms: int  # when it was planned (I/O thread's clock)


@dataclass(slots=True)
class Plan:
    """What the I/O thread should do now (see `FetchState.actions`)."""

    fetches: list[Request] = field(default_factory=list)
    resets: list[Request] = field(default_factory=list)
    need_metadata: set[str] = field(default_factory=set)  # topics with partitions to locate
    wake_ms: int | None = None  # the earliest end of a backoff: plan again then


# The I/O thread's view of the cluster: a partition's leader id, the error that says why there
# is none, or None when its topic's metadata was never fetched.
LeaderOf = Callable[[TopicPartition], "int | ZafkaError | None"]


class FetchState:
    """Every assigned partition's state; see the module docstring. Not thread-safe by itself:
    the caller holds one lock around every call."""

    def __init__(
        self,
        reset_policy: int | None,
        retry_backoff_ms: int = limits.retry_backoff_ms,
        retry_backoff_max_ms: int = limits.retry_backoff_ms_max,
        fetch_max_wait_ms: int = 500,
        fetch_max_bytes: int = 1 << 20,
    ) -> None:
        self.reset_policy = reset_policy  # EARLIEST, LATEST or None ("none")
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_max_bytes = fetch_max_bytes  # no fetch while this much waits in `fetched`
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = max(retry_backoff_max_ms, retry_backoff_ms)
        self.partitions: dict[TopicPartition, AssignedPartition] = {}
        self._epochs = itertools.count(1)  # unique across partitions and reassignments
        self._stale: dict[TopicPartition, int] = {}  # requests of older epochs in flight
        self._rotation = 0

    # --- the user's thread ---------------------------------------------------------------

    def get(self, tp: TopicPartition) -> AssignedPartition:
        ps = self.partitions.get(tp)
        if ps is None:
            raise ZafkaError("INVALID_REQUEST", f"{tp} is not assigned to this consumer")
        return ps

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """Replace the assignment. Partitions kept keep their state; new ones start from the
        reset policy; answers for dropped ones are ignored."""
        partitions = {}
        for tp in tps:
            ps = self.partitions.get(tp)
            if ps is None:
                ps = AssignedPartition(tp, next(self._epochs), reset_to=self.reset_policy)
            partitions[tp] = ps
        for tp, ps in self.partitions.items():
            if tp not in partitions:
                self._invalidate(ps)
        self.partitions = partitions

    def seek(self, tp: TopicPartition, offset: int) -> None:
        ps = self.get(tp)
        self._invalidate(ps)
        ps.position, ps.reset_to, ps.fetch_offset = offset, None, offset
        ps.error = ps.notice = None

    def reset(self, tp: TopicPartition, timestamp: int | None) -> None:
        """Forget the position: it is looked up (EARLIEST or LATEST) when next needed; None
        (policy "none") makes polls raise until a seek."""
        ps = self.get(tp)
        self._invalidate(ps)
        ps.position, ps.reset_to = None, timestamp
        ps.error = ps.notice = None

    def pause(self, tp: TopicPartition) -> None:
        """Stop fetching; data already fetched is dropped (fetched again on resume)."""
        ps = self.get(tp)
        if not ps.paused:
            self._invalidate(ps)
            ps.paused = True

    def resume(self, tp: TopicPartition) -> None:
        ps = self.get(tp)
        if ps.paused:
            self._invalidate(ps)
            ps.paused = False

    def _invalidate(self, ps: AssignedPartition) -> None:
        """A new epoch: answers of the old one are dropped, and what was fetched with it."""
        stale = ps.fetching + ps.resetting
        if stale:
            self._stale[ps.tp] = self._stale.get(ps.tp, 0) + stale
        ps.epoch = next(self._epochs)
        ps.fetching = ps.resetting = False
        ps.fetched = ps.drain = ps.halted = None
        ps.fetched_bytes = 0
        ps.failures, ps.retry_at_ms = 0, 0
        if ps.position is not None:
            ps.fetch_offset = ps.position

    def settle(self, ps: AssignedPartition) -> bool:
        """Act on what the I/O thread could not: an out-of-range offset or a corrupt batch
        once the records fetched before it are handed out, and a missing position under
        policy "none". True if the position must now be looked up (the I/O thread has work)."""
        if ps.halted is not None and ps.drain is None and ps.fetched is None:
            err = ps.halted
            if self.reset_policy is None or err.error.name == "CORRUPT_MESSAGE":
                ps.halted, ps.error = None, err
            else:
                self._invalidate(ps)
                ps.position, ps.reset_to = None, self.reset_policy
                return True
        if ps.position is None and ps.reset_to is None and ps.error is None:
            ps.error = ZafkaError(
                "OFFSET_OUT_OF_RANGE",
                f"{ps.tp} has no position and auto_offset_reset is 'none': seek first",
            )
        return False

    def claim(self) -> tuple[list[AssignedPartition], bool]:
        """The partitions with records to hand out, starting one further each call (no
        partition starves the others), after raising the first pending error. The flag is
        True when the I/O thread has new work: an answered fetch moved to `drain` (the next
        fetch may go out) or a position must be looked up."""
        parts = list(self.partitions.values())
        kick = False
        for ps in parts:
            kick |= self.settle(ps)
            if ps.error is not None:
                raise fresh(ps.error)  # raised again each poll: a new traceback each time
            if ps.notice is not None:
                err, ps.notice = ps.notice, None
                raise err
        if not parts:
            return [], kick
        k = self._rotation % len(parts)
        self._rotation = k + 1
        ready = []
        for ps in parts[k:] + parts[:k]:
            if ps.paused:
                continue
            if ps.drain is None and ps.fetched is not None:
                ps.drain, ps.fetched, kick = Drain(ps.tp, ps.fetched), None, True
                ps.fetched_bytes = 0
            if ps.drain is not None:
                ready.append(ps)
        return ready, kick

    def commit(self, ps: AssignedPartition, drain: Drain, position: int) -> None:
        """Records up to `position` were handed out of `drain` (taken since `claim`)."""
        ps.position = position
        if drain.error is not None:
            ps.error, ps.drain = drain.error, None
        elif drain.exhausted and ps.drain is drain:
            ps.drain = None

    # --- the I/O thread ------------------------------------------------------------------

    def actions(self, now_ms: int, leader_of: LeaderOf) -> Plan:
        """Mark and return the requests to send now: a ListOffsets for each partition whose
        position must be looked up, a fetch for each unpaused partition with nothing in
        flight and nothing waiting. Partitions whose leader is unknown are listed in
        `need_metadata`; those backing off set `wake_ms`."""
        plan = Plan()
        for tp, ps in self.partitions.items():
            if ps.error is not None:
                continue
            if ps.position is None:
                if ps.resetting or ps.reset_to is None:
                    continue
            elif ps.paused or ps.fetching or ps.fetched_bytes >= self.fetch_max_bytes or ps.halted:
                continue
            if self._stale.get(tp, 0) >= limits.stale_fetches_per_partition_max:
                continue  # planned again when a stale answer comes back
            if ps.retry_at_ms > now_ms:
                if plan.wake_ms is None or ps.retry_at_ms < plan.wake_ms:
                    plan.wake_ms = ps.retry_at_ms
                continue
            leader = leader_of(tp)
            if not isinstance(leader, int):
                if leader is not None:
                    ps.last_error = leader
                plan.need_metadata.add(tp.topic)
                continue
            if ps.reset_to is not None and ps.position is None:
                ps.resetting = True
                plan.resets.append(Request(tp, ps.epoch, ps.reset_to, leader, now_ms))
            else:
                ps.fetching = True
                plan.fetches.append(Request(tp, ps.epoch, ps.fetch_offset, leader, now_ms))
        return plan

    def forget_in_flight(self) -> None:
        """The I/O thread's actor was replaced (after a crash): its calls will never be
        answered, so nothing counts as in flight any more."""
        for ps in self.partitions.values():
            ps.fetching = ps.resetting = False
        self._stale.clear()

    def _current(self, tp: TopicPartition, epoch: int) -> AssignedPartition | None:
        """The partition if `epoch` is its current one; else the answer is stale."""
        ps = self.partitions.get(tp)
        if ps is not None and ps.epoch == epoch:
            return ps
        stale = self._stale.get(tp, 0)
        if stale > 1:
            self._stale[tp] = stale - 1
        else:
            self._stale.pop(tp, None)
        return None

    def fetch_done(
        self,
        request: Request,
        answer: ZafkaError | tuple[Buffer, int],
        now_ms: int,
    ) -> bool:
        """A fetch was answered: `(records, high_watermark)` or an error. True if the
        partition's leader should be forgotten and metadata refreshed."""
        ps = self._current(request.tp, request.epoch)
        if ps is None:
            return False
        ps.fetching = False
        if isinstance(answer, ZafkaError):
            return self._failed(ps, answer, now_ms)
        records, ps.high_watermark = answer
        batches, next_offset = split_batches(records)
        if next_offset > request.offset_or_timestamp:
            if ps.fetched is None:
                ps.fetched = batches
            else:
                ps.fetched += batches
            ps.fetched_bytes += len(records)
            ps.fetch_offset = next_offset
        elif not len(records):
            # Nothing came within the long poll. An empty answer well before its max wait
            # (a broker stopping) must not start a request loop: wait out the rest of it.
            ps.retry_at_ms = request.sent_ms + self.fetch_max_wait_ms
        else:  # bytes that hold no batch, or only batches below the offset
            detail = f"{ps.tp}: a fetch from {request.offset_or_timestamp} returned no usable batch"
            return self._failed(ps, corrupt(detail), now_ms, raise_once=True)
        ps.failures, ps.last_error = 0, None
        return False

    def reset_done(self, request: Request, answer: ZafkaError | int, now_ms: int) -> bool:
        """A ListOffsets for a reset was answered: the offset, or an error. True if the
        partition's leader should be forgotten and metadata refreshed."""
        ps = self._current(request.tp, request.epoch)
        if ps is None:
            return False
        ps.resetting = False
        if isinstance(answer, ZafkaError):
            return self._failed(ps, answer, now_ms)
        if ps.position is None:
            ps.position = ps.fetch_offset = answer
        ps.failures, ps.last_error = 0, None
        return False

    def _failed(
        self, ps: AssignedPartition, err: ZafkaError, now_ms: int, raise_once: bool = False
    ) -> bool:
        """Back off; remember a retriable error (position's timeout names it), have the next
        poll raise any other; OFFSET_OUT_OF_RANGE and CORRUPT_MESSAGE wait for `settle`."""
        if ps.position is not None and err.error.halts_position:
            ps.halted = _halted(ps.tp, ps.fetch_offset, err)
            return False
        ps.failures += 1
        delay = backoff_ms(self.retry_backoff_ms, ps.failures, self.retry_backoff_max_ms)
        ps.retry_at_ms = now_ms + delay
        if err.retriable and not raise_once:
            ps.last_error = err
        else:
            ps.notice = err
        return leader_may_have_moved(err)


def _halted(tp: TopicPartition, offset: int, err: ZafkaError) -> ZafkaError:
    """A fetch error that stops the partition, saying where and what to do."""
    if err.error.name != "CORRUPT_MESSAGE":
        return err
    detail = (
        f"{tp.topic}-{tp.partition} at offset {offset}: {err.detail}; the records before it "
        "were delivered. "
        "Seek past the damaged batch to go on (consumer.seek)"
    )
    return ZafkaError("CORRUPT_MESSAGE", detail)
