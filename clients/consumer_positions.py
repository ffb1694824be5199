"""The Consumer's positions: manual assignment, seeks, positions, high watermarks, offsets
for times, pause and resume. A part the `Consumer` (clients/consumer.py) owns, working on the
consumer's shared `ConsumerCore` (clients/consumer_core.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from zafka import clock, limits
from zafka.backoff import backoff_ms
from zafka.clients import io
from zafka.clients.consumer_config import check_tp, check_tps
from zafka.clients.consumer_core import ConsumerCore
from zafka.clients.drain import fresh
from zafka.clients.fetch_state import EARLIEST, LATEST
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition


class OffsetAndTimestamp(NamedTuple):
    """What `offsets_for_times` found: the first offset at or after the time, and its
    record's timestamp."""

    offset: int
    timestamp: int


class Positions:
    """The consumer's assignment and positions (see the module docstring)."""

    def __init__(self, core: ConsumerCore) -> None:
        self.core = core

    # --- assignment and positions ---------------------------------------------------------

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Read exactly these (topic, partition) pairs from now on (replacing the previous
        assignment; partitions kept keep their positions, new ones start per
        `auto_offset_reset`). INVALID_TOPIC for a bad topic name."""
        tps = check_tps(partitions, "assign")
        with self.core.cond:
            self.core.check_open()
            if self.core.group is not None and self.core.group.membership.subscribed:
                raise ZafkaError(
                    "INVALID_REQUEST", "subscribed to a group: unsubscribe() before assign()"
                )
            self.core.state.assign(tps)
            self.core.actor.kick()

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned now."""
        with self.core.cond:
            return set(self.core.state.partitions)

    def seek(self, partition: tuple[str, int], offset: int) -> None:
        """Make the next poll of `partition` start at `offset` (an offset outside the log
        is handled by `auto_offset_reset` when the broker says so)."""
        if type(offset) is not int or offset < 0:
            raise ZafkaError("INVALID_REQUEST", f"offset {offset!r}: expected an int >= 0")
        tp = check_tp(partition)
        with self.core.cond:
            self.core.check_open()
            self.core.state.seek(tp, offset)
            self.core.actor.kick()

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log start, looked up lazily."""
        self._reset(partitions, EARLIEST)

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log end, looked up lazily: call
        `position` to pin it before producing what you then expect to read."""
        self._reset(partitions, LATEST)

    def _reset(self, partitions: Iterable[tuple[str, int]] | None, timestamp: int) -> None:
        with self.core.cond:
            self.core.check_open()
            tps = (
                list(self.core.state.partitions)
                if partitions is None
                else check_tps(partitions, "seek")
            )
            for tp in tps:
                self.core.state.reset(tp, timestamp)
            self.core.actor.kick()

    def position(self, partition: tuple[str, int], timeout_ms: int | None = None) -> int:
        """The offset of the next record poll returns for `partition`, looked up first if
        needed (waiting up to `timeout_ms`, default `request_timeout_ms`; then the last
        error seen, or REQUEST_TIMED_OUT)."""
        tp = check_tp(partition)
        deadline = self.core.deadline(timeout_ms)
        with self.core.cond:
            while True:
                self.core.check_open()
                ps = self.core.state.get(tp)
                if self.core.state.settle(ps):
                    self.core.actor.kick()
                if ps.error is not None:
                    raise fresh(ps.error)
                if ps.position is not None:
                    return ps.position
                self.core.actor.kick()
                remaining = deadline - clock.monotonic_s()
                if remaining <= 0:
                    raise _timed_out(f"position of {tp}", ps.last_error)
                self.core.cond.wait(remaining)

    def highwater(self, partition: tuple[str, int]) -> int | None:
        """The partition's high watermark as the last fetch said (None before one); the lag
        is `highwater - position`."""
        with self.core.cond:
            hw = self.core.state.get(check_tp(partition)).high_watermark
        return None if hw < 0 else hw

    def offsets_for_times(
        self, timestamps: Mapping[tuple[str, int], int], timeout_ms: int | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first offset whose record timestamp is >= the time given
        (ms) and that record's timestamp, or None when there is none. Any partition, assigned
        or not; retries within `timeout_ms` (default `request_timeout_ms`)."""
        wanted: dict[TopicPartition, int] = {}
        for partition, ts in timestamps.items():
            if type(ts) is not int or ts < 0:
                raise ZafkaError("INVALID_REQUEST", f"timestamp {ts!r}: expected ms >= 0")
            wanted[check_tp(partition)] = ts
        deadline = self.core.deadline(timeout_ms)
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        last: ZafkaError | None = None  # the last retriable error, for the timeout's message
        rounds = 0  # of retries so far
        while wanted:
            self.core.check_open()
            futures = {
                tp: self.core.io.submit(
                    lambda f, tp=tp, ts=ts: self.core.actor.list_offsets(tp, ts, f)
                )
                for tp, ts in wanted.items()
            }
            retry: dict[TopicPartition, int] = {}
            for tp, future in futures.items():
                try:
                    offset, ts = io.result(future, max(deadline - clock.monotonic_s(), 0))
                except ZafkaError as err:
                    if not err.retriable or self.core.closed.is_set():
                        raise
                    retry[tp] = wanted[tp]
                    if last is None or err.error.name != "REQUEST_TIMED_OUT":
                        last = err
                    continue
                found[tp] = None if offset < 0 else OffsetAndTimestamp(offset, ts)
            wanted = retry
            if wanted:
                remaining = deadline - clock.monotonic_s()
                if remaining <= 0:
                    raise _timed_out("offsets_for_times", last)
                rounds += 1
                first_ms, max_ms = self.core.retry_backoff_ms, limits.retry_backoff_ms_max
                self.core.closed.wait(min(backoff_ms(first_ms, rounds, max_ms) / 1000, remaining))
        return found

    # --- pause and resume -----------------------------------------------------------------

    def pause(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Stop returning and fetching records of `partitions` (what was prefetched is
        dropped and fetched again after `resume`); positions stay."""
        with self.core.cond:
            self.core.check_open()
            for tp in check_tps(partitions, "pause"):
                self.core.state.pause(tp)

    def resume(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Fetch and return records of paused `partitions` again, from their positions."""
        with self.core.cond:
            self.core.check_open()
            for tp in check_tps(partitions, "resume"):
                self.core.state.resume(tp)
            self.core.actor.kick()

    def paused(self) -> set[TopicPartition]:
        with self.core.cond:
            return {tp for tp, ps in self.core.state.partitions.items() if ps.paused}


def _timed_out(what: str, last: ZafkaError | None) -> ZafkaError:
    """The error for a wait that ran out: the last error seen (with its code), else
    REQUEST_TIMED_OUT."""
    if last is None:
        return ZafkaError("REQUEST_TIMED_OUT", f"{what}: no answer in time")
    return ZafkaError(last.error.name, f"{what}: not done in time; last: {last.detail}")
