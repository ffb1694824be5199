"""The measurements behind `zafka bench` (zafka/cli_bench.py) and benchmarks/vs_redis.py:
produce as fast as possible and consume from the beginning (end to end at a fixed rate is in
zafka/bench_e2e.py).

Each `run_*` function takes clients made by the caller, runs one workload with the keys and
values of zafka/benchstats.py and returns a result with counts, seconds and latencies (ns);
the `*_summary` functions turn a result into `name=value` pairs. Nothing here prints,
except `ensure_topic`'s note on stderr.
"""

from __future__ import annotations

import sys
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Protocol

from zafka import benchstats, limits
from zafka import clock as clocks
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer
from zafka.clients.delivery import RecordFuture
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError

CHUNK_RECORDS = 1024  # records per chunk of sends: progress updates, delivery checks
CHECK_WINDOW_CHUNKS = 16  # chunks sent before the oldest one's deliveries are checked
DEFAULT_LATENCY_EVERY_RECORDS = 16  # produce: the send-to-ack latency of every 16th record
DEFAULT_IDLE_TIMEOUT_MS = 10_000
POLL_MS = 100
# A flush waits at most this long: the producer's delivery timeout (120 s by default) is
# over by then for every record, so what is not done by then will not be.
FLUSH_TIMEOUT_S = 130.0

Progress = Callable[[int], object]
Pairs = list[tuple[str, float | int]]


@dataclass
class ProduceResult:
    sent: int = 0
    delivered: int | None = 0  # None: not checked per record (see run_produce)
    payload_bytes: int = 0  # keys + values sent
    seconds: float = 0.0  # first send to the end of the flush
    errors: int = 0
    first_error: ZafkaError | None = None
    latencies_ns: array = field(default_factory=lambda: array("q"))


@dataclass
class ConsumeResult:
    records: int = 0
    payload_bytes: int = 0  # keys + values received
    seconds: float = 0.0  # first poll to the last record
    expected: int = 0
    timed_out: bool = False


# --- clients and topics ---------------------------------------------------------------------


def producer_for(
    bootstrap: str, acks: str, request_timeout_ms: int = limits.request_timeout_ms
) -> Producer:
    """A Producer with its default settings but `acks` (idempotence needs acks 1 or all)."""
    return Producer(
        bootstrap,
        acks=acks,
        enable_idempotence=acks != "0",
        request_timeout_ms=request_timeout_ms,
        max_block_ms=max(request_timeout_ms, 60_000),
    )


def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int | None,
    request_timeout_ms: int = limits.request_timeout_ms,
) -> int:
    """The topic's partition count, creating it with `partitions` (default 1) if missing.
    An existing topic with another count is used as it is (a note on stderr)."""
    with Admin(bootstrap, request_timeout_ms=request_timeout_ms) as admin:
        try:
            (described,) = admin.describe_topics([topic])
        except ZafkaError as err:
            if err.error.name != "UNKNOWN_TOPIC_OR_PARTITION":
                raise
        else:
            count = len(described.partitions)
            if partitions is not None and partitions != count:
                print(
                    f"note: topic {topic} exists with {count} partitions; --partitions "
                    f"{partitions} applies only when the bench creates it",
                    file=sys.stderr,
                )
            return count
        try:
            admin.create_topic(topic, partitions or 1)
        except ZafkaError as err:
            if err.error.name != "TOPIC_ALREADY_EXISTS":  # created meanwhile by someone else
                raise
            return len(admin.describe_topics([topic])[0].partitions)
        return partitions or 1


def topic_partitions(
    bootstrap: str, topic: str, request_timeout_ms: int = limits.request_timeout_ms
) -> int:
    """The partition count of an existing topic (UNKNOWN_TOPIC_OR_PARTITION if none)."""
    with Admin(bootstrap, request_timeout_ms=request_timeout_ms) as admin:
        return len(admin.describe_topics([topic])[0].partitions)


# --- produce --------------------------------------------------------------------------------


class DeliveryCounts(Protocol):
    """What `Outcomes` counts into: a produce or an e2e result."""

    errors: int
    first_error: ZafkaError | None


class Outcomes:
    """Counts delivery outcomes of futures checked in the sending thread."""

    def __init__(self, out: DeliveryCounts) -> None:
        self.out = out
        self.pending: deque[list[RecordFuture]] = deque()  # chunks not checked yet

    def check(self, futures: list[RecordFuture]) -> list[RecordFuture]:
        """Count the outcomes of the done futures; returns those not done yet."""
        late = []
        for f in futures:
            if not f.done():
                late.append(f)
                continue
            error = f.exception(0)
            if error is not None:
                self.out.errors += 1
                self.out.first_error = self.out.first_error or error
        return late

    def add(self, chunk: list[RecordFuture]) -> None:
        """Queue `chunk`; check the oldest chunks once the window is full and they are done."""
        pending = self.pending
        pending.append(chunk)
        while len(pending) > CHECK_WINDOW_CHUNKS:
            late = self.check(pending.popleft())
            if late:
                pending.appendleft(late)
                break

    def finish(self, flush_error: ZafkaError | None) -> None:
        """Check everything left after the flush; what is still not done failed with
        `flush_error` (the flush timed out)."""
        out = self.out
        while self.pending:
            late = self.check(self.pending.popleft())
            if late:
                out.errors += len(late)
                out.first_error = out.first_error or flush_error


def run_produce(
    producer: Producer,
    topic: str,
    records: int,
    values: list[bytes],
    keys: list[bytes] | None,
    *,
    latency_every: int | None = DEFAULT_LATENCY_EVERY_RECORDS,
    progress: Progress | None = None,
    flush_timeout_s: float = FLUSH_TIMEOUT_S,
) -> ProduceResult:
    """Send `records` records (values and keys taken in turn from the pools) as fast as
    `send` takes them, then flush; the clock stops when the flush returned.

    With `latency_every` N, every Nth record gets a delivery callback recording its
    send-to-ack latency, and every record's outcome is checked as its chunk completes
    (`delivered`, `errors`: exact). With None, no callbacks and no per-record checks: the
    futures are dropped (only the last of each chunk is checked) and `delivered` is None,
    for the caller to verify by reading the records back: the throughput of plain sends."""
    if latency_every is not None and latency_every < 1:
        raise ValueError(f"latency_every={latency_every}: expected >= 1 or None")
    out = ProduceResult()
    outcomes = Outcomes(out)
    append = out.latencies_ns.append

    def acked(start: int, future: RecordFuture) -> None:  # on the producer's I/O thread
        now = clocks.monotonic_ns()
        if future.exception(0) is None:
            append(now - start)

    start = clocks.monotonic_s()
    try:
        for base in range(0, records, CHUNK_RECORDS):
            end = min(base + CHUNK_RECORDS, records)
            if latency_every:
                chunk = _send_sampled(
                    producer, topic, base, end, values, keys, latency_every, acked
                )
                outcomes.add(chunk)
            else:
                outcomes.pending.append([_send_plain(producer, topic, base, end, values, keys)])
            out.sent = end
            if progress is not None:
                progress(end - base)
    finally:
        flush_error = bounded_flush(producer, flush_timeout_s)
        out.seconds = clocks.monotonic_s() - start
    out.payload_bytes = pool_bytes(values, out.sent) + pool_bytes(keys, out.sent)
    outcomes.finish(flush_error)
    out.delivered = out.sent - out.errors if latency_every else None
    return out


def bounded_flush(producer: Producer, timeout_s: float) -> ZafkaError | None:
    """Flush, bounded; the error if it did not finish in time."""
    try:
        producer.flush(timeout_s)
    except ZafkaError as err:
        return err
    return None


def _send_sampled(
    producer: Producer,
    topic: str,
    base: int,
    end: int,
    values: list[bytes],
    keys: list[bytes] | None,
    every: int,
    acked: Callable[[int, RecordFuture], None],
) -> list[RecordFuture]:
    """Send records base..end-1, a latency callback on every `every`th; their futures."""
    send = producer.send
    nv, nk = len(values), len(keys) if keys else 0
    chunk: list[RecordFuture] = []
    keep = chunk.append
    for i in range(base, end):
        key = keys[i % nk] if nk else None  # type: ignore[index]
        if i % every:
            keep(send(topic, values[i % nv], key))
        else:
            t = clocks.monotonic_ns()
            f = send(topic, values[i % nv], key)
            f.add_done_callback(partial(acked, t))
            keep(f)
    return chunk


def _send_plain(
    producer: Producer,
    topic: str,
    base: int,
    end: int,
    values: list[bytes],
    keys: list[bytes] | None,
) -> RecordFuture:
    """Send records base..end-1, dropping their futures; the last one's."""
    send = producer.send
    nv = len(values)
    if keys:
        nk = len(keys)
        for i in range(base, end):
            f = send(topic, values[i % nv], keys[i % nk])
    else:
        for i in range(base, end):
            f = send(topic, values[i % nv])
    return f


def pool_bytes(pool: list[bytes] | None, records: int) -> int:
    """Bytes in `records` items taken in turn from `pool`."""
    if not pool:
        return 0
    whole, rest = divmod(records, len(pool))
    return whole * sum(map(len, pool)) + sum(map(len, pool[:rest]))


# --- consume --------------------------------------------------------------------------------

_KEY = itemgetter(4)
_VALUE = itemgetter(5)


def payload(batch: list) -> int:
    """Bytes of the keys and values of consumer records (C-level loops: no bytecode per
    record)."""
    return sum(map(len, filter(None, map(_VALUE, batch)))) + sum(
        map(len, filter(None, map(_KEY, batch)))
    )


def pin_positions(consumer: Consumer, topic: str, partitions: int, end: bool) -> dict[int, int]:
    """Assign every partition and pin each position at the log's start or end (before the
    clock starts, so the lookups are not timed); {partition: offset}."""
    consumer.assign([(topic, p) for p in range(partitions)])
    if end:
        consumer.seek_to_end()
    else:
        consumer.seek_to_beginning()
    return {p: consumer.position((topic, p)) for p in range(partitions)}


def run_consume(
    consumer: Consumer,
    topic: str,
    partitions: int,
    records: int | None,
    *,
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS,
    count_bytes: bool = True,
    progress: Progress | None = None,
) -> ConsumeResult:
    """Read `topic` from the beginning until `records` records (None: all it holds now)
    were handed to user code; the clock runs from the first poll to the last record."""
    ends = pin_positions(consumer, topic, partitions, end=True)
    starts = pin_positions(consumer, topic, partitions, end=False)
    available = sum(ends[p] - starts[p] for p in starts)
    out = ConsumeResult(expected=available if records is None else records)
    wanted = out.expected
    poll = consumer.poll
    count = size = 0
    start = last = clocks.monotonic_s()
    while count < wanted:
        batch = poll(POLL_MS)
        now = clocks.monotonic_s()
        if not batch:
            if now - last > idle_timeout_ms / 1000:
                out.timed_out = True
                break
            continue
        last = now
        count += len(batch)
        if count_bytes:
            size += payload(batch)
        if progress is not None:
            progress(len(batch))
    out.records, out.payload_bytes, out.seconds = count, size, last - start
    return out


# --- end to end -----------------------------------------------------------------------------


# --- summaries (pure) -----------------------------------------------------------------------


def produce_summary(result: ProduceResult) -> Pairs:
    delivered = result.sent - result.errors if result.delivered is None else result.delivered
    pairs = benchstats.throughput_lines(delivered, result.payload_bytes, result.seconds)
    pairs.insert(1, ("errors", result.errors))
    pairs.append(("latency_samples", len(result.latencies_ns)))
    return pairs + benchstats.latency_lines("latency", result.latencies_ns)


def consume_summary(result: ConsumeResult) -> Pairs:
    return benchstats.throughput_lines(result.records, result.payload_bytes, result.seconds)
