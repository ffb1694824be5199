"""The Consumer: read records from partitions you assign (DESIGN §8).

    from zafka import Consumer
    with Consumer("127.0.0.1:9092", auto_offset_reset="earliest") as consumer:
        consumer.assign([("orders", 0)])
        for record in consumer:                   # blocks for records until closed
            print(record.offset, record.key, record.value)

Manual assignment only: consumer groups come later and will drive the same machinery (a
rebalance is an `assign`, a committed offset a `seek`); `group_id` is refused until then.

Threads: the user's thread calls the methods (one thread at a time; `close` may come from any
thread and wakes a blocked `poll`). The client's I/O thread (clients/io.py) runs a
`FetcherActor` (clients/fetcher.py) that sends the fetches and ListOffsets requests the
`FetchState` (clients/fetch_state.py, pure) plans to each partition's leader, and files the
answers; both threads share the state under one lock. Records are decoded on the user's
thread, in `poll`, as lean `ConsumerRecord` tuples.

Prefetching: as soon as `poll` starts on one fetch response of a partition, the next fetch
for it goes out (long polling: the broker holds it up to `fetch_max_wait_ms` until
`fetch_min_bytes` are there), so it is in flight while the user handles these records; more
follow while less than `fetch_max_bytes` waits unreturned. So a partition that trickles keeps
a fetch parked at the broker, and what a partition prefetches is bounded by `fetch_max_bytes`,
not by a count of responses: besides the response `poll` is working through, less than
`fetch_max_bytes` waits when a fetch goes out, plus that fetch's answer.

Positions follow Kafka: a newly assigned partition starts where `auto_offset_reset` says
("latest", "earliest", or "none": poll raises OFFSET_OUT_OF_RANGE until you seek), as does
a position that falls outside the log. `seek_to_beginning` and `seek_to_end` are lazy: the
offset is looked up at the next `poll` or `position`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from zafka import limits
from zafka.clients import io
from zafka.clients.drain import ConsumerRecord, TopicPartition, fresh
from zafka.clients.fetch_state import EARLIEST, LATEST, RESET_POLICIES, FetchState
from zafka.clients.fetcher import RETRY_BACKOFF_MAX_MS, FetcherActor, FetcherConfig
from zafka.clients.io import ClientIO
from zafka.coordination.names import check_topic_name
from zafka.errors import ZafkaError

__all__ = ["Consumer", "ConsumerRecord", "OffsetAndTimestamp", "TopicPartition"]

ITERATION_POLL_MS = 1000  # how long one poll inside `for record in consumer` waits


class OffsetAndTimestamp(NamedTuple):
    """What `offsets_for_times` found: the first offset at or after the time, and its
    record's timestamp."""

    offset: int
    timestamp: int


def _int(name: str, value: object, low: int, high: int, meaning: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ZafkaError(
            "INVALID_CONFIG", f"{name}={value!r}: expected an int in {low}..{high} ({meaning})"
        )
    return value


def _tp(tp: object) -> TopicPartition:
    """A (topic, partition) pair as a TopicPartition: a valid topic name, a partition >= 0."""
    if not isinstance(tp, tuple) or len(tp) != 2:
        raise ZafkaError("INVALID_REQUEST", f"expected a (topic, partition) pair, got {tp!r}")
    topic, partition = tp
    check_topic_name(topic)
    if type(partition) is not int or partition < 0:
        raise ZafkaError("INVALID_REQUEST", f"partition {partition!r}: expected an int >= 0")
    return tp if type(tp) is TopicPartition else TopicPartition(topic, partition)


def _tps(tps: Iterable[object], what: str) -> list[TopicPartition]:
    if isinstance(tps, str) or (
        isinstance(tps, tuple) and len(tps) == 2 and isinstance(tps[0], str)
    ):
        raise ZafkaError("INVALID_REQUEST", f"{what} takes a list of (topic, partition) pairs")
    return list(dict.fromkeys(map(_tp, tps)))


class Consumer:
    """Reads records from assigned partitions; see the module docstring.

    `bootstrap_servers`: "host:port" (or "tcp://host:port"), a list of them or one
    comma-separated string. Fetching: `fetch_max_bytes` per partition and fetch (a batch
    larger than that still comes whole), `fetch_max_wait_ms` how long the broker may hold a
    fetch until `fetch_min_bytes` are there. `max_poll_records`: the most one `poll` returns.
    `auto_offset_reset`: where a partition without a valid position starts. Requests wait
    `request_timeout_ms` (also the default bound of `position` and `offsets_for_times`) and
    are retried after `retry_backoff_ms`, doubling up to 1 s. Close it when done."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        group_id: str | None = None,
        fetch_max_bytes: int = 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        max_poll_records: int = 500,
        auto_offset_reset: str = "latest",
        request_timeout_ms: int = 30_000,
        retry_backoff_ms: int = 100,
    ) -> None:
        if group_id is not None:
            raise ZafkaError(
                "INVALID_CONFIG",
                f"group_id={group_id!r}: consumer groups are not supported yet; "
                "leave group_id unset and use assign()",
            )
        if auto_offset_reset not in RESET_POLICIES:
            raise ZafkaError(
                "INVALID_CONFIG",
                f"auto_offset_reset={auto_offset_reset!r}: expected 'latest', 'earliest' or 'none'",
            )
        max_bytes = _int("fetch_max_bytes", fetch_max_bytes, 1, limits.frame_bytes_max, "per fetch")
        call_ms_max = limits.call_timeout_ms_max
        config = FetcherConfig(
            max_bytes,
            _int("fetch_max_wait_ms", fetch_max_wait_ms, 1, 60_000, "ms a fetch may wait"),
            _int("fetch_min_bytes", fetch_min_bytes, 1, max_bytes, "bytes a fetch waits for"),
            _int("request_timeout_ms", request_timeout_ms, 1, call_ms_max, "ms per request"),
            _int("retry_backoff_ms", retry_backoff_ms, 1, 60_000, "ms before a first retry"),
        )
        self._max_poll_records = _int(
            "max_poll_records", max_poll_records, 1, limits.batch_records_max, "per poll"
        )
        self._request_timeout_ms = config.request_timeout_ms
        self._retry_backoff_s = config.retry_backoff_ms / 1000
        self._cond = threading.Condition(threading.Lock())
        self._state = FetchState(
            RESET_POLICIES[auto_offset_reset],
            config.retry_backoff_ms,
            RETRY_BACKOFF_MAX_MS,
            config.fetch_max_wait_ms,
            config.fetch_max_bytes,
        )
        self._closed = threading.Event()
        self._polling = False
        self._io = ClientIO(
            "consumer",
            bootstrap_servers,
            lambda bootstrap, transport: FetcherActor(
                bootstrap, transport, config, self._state, self._cond
            ),
        )
        self._actor: FetcherActor = self._io.actor  # type: ignore[assignment]

    # --- assignment and positions ---------------------------------------------------------

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Read exactly these (topic, partition) pairs from now on (replacing the previous
        assignment; partitions kept keep their positions, new ones start per
        `auto_offset_reset`). INVALID_TOPIC for a bad topic name."""
        tps = _tps(partitions, "assign")
        with self._cond:
            self._check_open()
            self._state.assign(tps)
            self._actor.kick()

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned now."""
        with self._cond:
            return set(self._state.partitions)

    def seek(self, partition: tuple[str, int], offset: int) -> None:
        """Make the next poll of `partition` start at `offset` (an offset outside the log
        is handled by `auto_offset_reset` when the broker says so)."""
        if type(offset) is not int or offset < 0:
            raise ZafkaError("INVALID_REQUEST", f"offset {offset!r}: expected an int >= 0")
        tp = _tp(partition)
        with self._cond:
            self._check_open()
            self._state.seek(tp, offset)
            self._actor.kick()

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log start, looked up lazily."""
        self._reset(partitions, EARLIEST)

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Start `partitions` (default: all assigned) at the log end, looked up lazily: call
        `position` to pin it before producing what you then expect to read."""
        self._reset(partitions, LATEST)

    def _reset(self, partitions: Iterable[tuple[str, int]] | None, timestamp: int) -> None:
        with self._cond:
            self._check_open()
            tps = list(self._state.partitions) if partitions is None else _tps(partitions, "seek")
            for tp in tps:
                self._state.reset(tp, timestamp)
            self._actor.kick()

    def position(self, partition: tuple[str, int], timeout_ms: int | None = None) -> int:
        """The offset of the next record poll returns for `partition`, looked up first if
        needed (waiting up to `timeout_ms`, default `request_timeout_ms`; then the last
        error seen, or REQUEST_TIMED_OUT)."""
        tp = _tp(partition)
        deadline = self._deadline(timeout_ms)
        with self._cond:
            while True:
                self._check_open()
                ps = self._state.get(tp)
                if self._state.settle(ps):
                    self._actor.kick()
                if ps.error is not None:
                    raise fresh(ps.error)
                if ps.position is not None:
                    return ps.position
                self._actor.kick()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timed_out(f"position of {tp}", ps.last_error)
                self._cond.wait(remaining)

    def highwater(self, partition: tuple[str, int]) -> int | None:
        """The partition's high watermark as the last fetch said (None before one); the lag
        is `highwater - position`."""
        with self._cond:
            hw = self._state.get(_tp(partition)).high_watermark
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
            wanted[_tp(partition)] = ts
        deadline = self._deadline(timeout_ms)
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        last: ZafkaError | None = None  # the last retriable error, for the timeout's message
        backoff_s = self._retry_backoff_s
        while wanted:
            self._check_open()
            futures = {
                tp: self._io.submit(lambda f, tp=tp, ts=ts: self._actor.list_offsets(tp, ts, f))
                for tp, ts in wanted.items()
            }
            retry: dict[TopicPartition, int] = {}
            for tp, future in futures.items():
                try:
                    offset, ts = io.result(future, max(deadline - time.monotonic(), 0))
                except ZafkaError as err:
                    if not err.retriable or self._closed.is_set():
                        raise
                    retry[tp] = wanted[tp]
                    if last is None or err.error.name != "REQUEST_TIMED_OUT":
                        last = err
                    continue
                found[tp] = None if offset < 0 else OffsetAndTimestamp(offset, ts)
            wanted = retry
            if wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timed_out("offsets_for_times", last)
                self._closed.wait(min(backoff_s, remaining))
                backoff_s = min(backoff_s * 2, max(RETRY_BACKOFF_MAX_MS / 1000, backoff_s))
        return found

    # --- pause and resume -----------------------------------------------------------------

    def pause(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Stop returning and fetching records of `partitions` (what was prefetched is
        dropped and fetched again after `resume`); positions stay."""
        with self._cond:
            self._check_open()
            for tp in _tps(partitions, "pause"):
                self._state.pause(tp)

    def resume(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Fetch and return records of paused `partitions` again, from their positions."""
        with self._cond:
            self._check_open()
            for tp in _tps(partitions, "resume"):
                self._state.resume(tp)
            self._actor.kick()

    def paused(self) -> set[TopicPartition]:
        with self._cond:
            return {tp for tp, ps in self._state.partitions.items() if ps.paused}

    # --- polling --------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 0) -> list[ConsumerRecord]:
        """Records of the assigned, unpaused partitions, up to `max_poll_records`, in offset
        order per partition; waits up to `timeout_ms` for some (an empty list then). Raises a
        partition's error (OFFSET_OUT_OF_RANGE under policy "none", an undecodable batch,
        ...), and STOPPED once the consumer is closed."""
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 0")
        deadline = time.monotonic() + timeout_ms / 1000
        cond, state, actor = self._cond, self._state, self._actor
        with cond:
            if self._polling:
                raise ZafkaError("INVALID_REQUEST", "poll is already running in another thread")
            self._polling = True
        try:
            while True:
                with cond:
                    self._check_open()
                    if not state.partitions:
                        raise ZafkaError("INVALID_REQUEST", "no partitions assigned: assign first")
                    try:
                        ready, kick = state.claim()
                    except ZafkaError:
                        actor.kick()  # a reset claim() started before it raised goes out
                        raise
                    if kick:
                        actor.kick()
                    if not ready:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return []
                        cond.wait(remaining)
                        continue
                # Decoding happens outside the lock: the I/O thread never touches a drain or
                # the position of a partition that has one, so nothing moves under us.
                records: list[ConsumerRecord] = []
                quota = self._max_poll_records
                taken = []
                for ps in ready:
                    drain, position = ps.drain, ps.position
                    assert drain is not None and position is not None  # claim() says so
                    position = drain.take(records, position, quota - len(records))
                    taken.append((ps, drain, position))
                    if len(records) >= quota:
                        break
                with cond:
                    for ps, drain, position in taken:
                        state.commit(ps, drain, position)
                if records:
                    return records
        finally:
            self._polling = False

    def __iter__(self) -> Iterator[ConsumerRecord]:
        """Every record, as it comes, until the consumer is closed."""
        while True:
            try:
                records = self.poll(ITERATION_POLL_MS)
            except ZafkaError as err:
                if self._closed.is_set() and err.error.name == "STOPPED":
                    return
                raise
            yield from records

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop fetching and the I/O thread; a poll blocked in another thread raises STOPPED
        at once. Idempotent; callable from any thread."""
        with self._cond:
            if self._closed.is_set():
                return
            self._closed.set()
            self._actor.closing = True
            self._cond.notify_all()
        self._io.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ZafkaError("STOPPED", "the consumer is closed")

    def _deadline(self, timeout_ms: int | None) -> float:
        if timeout_ms is None:
            timeout_ms = self._request_timeout_ms
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 0")
        return time.monotonic() + timeout_ms / 1000


def _timed_out(what: str, last: ZafkaError | None) -> ZafkaError:
    """The error for a wait that ran out: the last error seen (with its code), else
    REQUEST_TIMED_OUT."""
    if last is None:
        return ZafkaError("REQUEST_TIMED_OUT", f"{what}: no answer in time")
    return ZafkaError(last.error.name, f"{what}: not done in time; last: {last.detail}")
