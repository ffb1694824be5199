"""The measurements behind `zafka bench` (zafka/cli_bench.py) and benchmarks/vs_redis.py:
produce as fast as possible, consume from the beginning, and end to end at a fixed rate.

Each `run_*` function takes clients made by the caller, runs one workload with the keys and
values of zafka/benchstats.py and returns a result with counts, seconds and latencies (ns);
the `*_summary` functions turn a result into `name=value` pairs. Nothing here prints,
except `ensure_topic`'s note on stderr.
"""

from __future__ import annotations

import math
import struct
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from time import monotonic_ns

from zafka import benchstats
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer
from zafka.clients.delivery import RecordFuture
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError

CHUNK = 1024  # records per chunk of sends: progress updates, delivery checks
CHECK_WINDOW_CHUNKS = 16  # chunks sent before the oldest one's deliveries are checked
DEFAULT_LATENCY_EVERY = 16  # produce: the send-to-ack latency of every 16th record
DEFAULT_IDLE_TIMEOUT_MS = 10_000
POLL_MS = 100
# A flush waits at most this long: the producer's delivery timeout (120 s by default) is
# over by then for every record, so what is not done by then will not be.
FLUSH_TIMEOUT_S = 130.0
SEND_TIME = struct.Struct("<q")  # e2e: the send time (monotonic ns) in a value's first bytes

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


@dataclass
class E2EResult:
    sent: int = 0
    received: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0  # first send to the last record received
    send_seconds: float = 0.0  # first send to the last send
    timed_out: bool = False
    errors: int = 0
    first_error: ZafkaError | None = None
    latencies_ns: array = field(default_factory=lambda: array("q"))


# --- clients and topics ---------------------------------------------------------------------


def producer_for(bootstrap: str, acks: str, request_timeout_ms: int = 30_000) -> Producer:
    """A Producer with its default settings but `acks` (idempotence needs acks 1 or all)."""
    return Producer(
        bootstrap,
        acks=acks,
        enable_idempotence=acks != "0",
        request_timeout_ms=request_timeout_ms,
        max_block_ms=max(request_timeout_ms, 60_000),
    )


def ensure_topic(
    bootstrap: str, topic: str, partitions: int | None, request_timeout_ms: int = 30_000
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


def topic_partitions(bootstrap: str, topic: str, request_timeout_ms: int = 30_000) -> int:
    """The partition count of an existing topic (UNKNOWN_TOPIC_OR_PARTITION if none)."""
    with Admin(bootstrap, request_timeout_ms=request_timeout_ms) as admin:
        return len(admin.describe_topics([topic])[0].partitions)


# --- produce --------------------------------------------------------------------------------


class _Outcomes:
    """Counts delivery outcomes of futures checked in the sending thread."""

    def __init__(self, out: ProduceResult | E2EResult) -> None:
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
    latency_every: int | None = DEFAULT_LATENCY_EVERY,
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
    outcomes = _Outcomes(out)
    append = out.latencies_ns.append

    def acked(start: int, future: RecordFuture) -> None:  # on the producer's I/O thread
        now = monotonic_ns()
        if future.exception(0) is None:
            append(now - start)

    start = time.perf_counter()
    try:
        for base in range(0, records, CHUNK):
            end = min(base + CHUNK, records)
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
        flush_error = _flush(producer, flush_timeout_s)
        out.seconds = time.perf_counter() - start
    out.payload_bytes = pool_bytes(values, out.sent) + pool_bytes(keys, out.sent)
    outcomes.finish(flush_error)
    out.delivered = out.sent - out.errors if latency_every else None
    return out


def _flush(producer: Producer, timeout_s: float) -> ZafkaError | None:
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
            t = monotonic_ns()
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
    start = last = time.perf_counter()
    while count < wanted:
        batch = poll(POLL_MS)
        now = time.perf_counter()
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


class _Reader(threading.Thread):
    """The e2e consumer thread: polls until `records` arrived or `stop`; per record, the
    latency from the send time in its value to the return of the poll that brought it."""

    def __init__(self, consumer: Consumer, records: int, out: E2EResult, progress) -> None:
        super().__init__(name="bench-e2e-consumer", daemon=True)
        self.consumer, self.records, self.out, self.progress = consumer, records, out, progress
        self.stop = threading.Event()
        self.last = 0.0  # perf_counter of the last record's arrival
        self.error: ZafkaError | None = None

    def run(self) -> None:
        unpack, out, extend = SEND_TIME.unpack_from, self.out, self.out.latencies_ns.extend
        try:
            while out.received < self.records and not self.stop.is_set():
                batch = self.consumer.poll(POLL_MS)
                if not batch:
                    continue
                now = monotonic_ns()
                self.last = time.perf_counter()
                extend([now - unpack(r.value)[0] for r in batch])
                out.received += len(batch)
                out.payload_bytes += payload(batch)
                if self.progress is not None:
                    self.progress(len(batch))
        except ZafkaError as err:
            if not self.stop.is_set():
                self.error = err

    def wait_idle(self, idle_timeout_ms: int) -> bool:
        """Wait until done or no record came for `idle_timeout_ms`; False if the latter."""
        count, idle_since = -1, time.monotonic()
        while self.is_alive():
            self.join(POLL_MS / 1000)
            if self.out.received != count:
                count, idle_since = self.out.received, time.monotonic()
            elif time.monotonic() - idle_since > idle_timeout_ms / 1000:
                return False
        return True


def run_e2e(
    producer: Producer,
    consumer: Consumer,
    topic: str,
    partitions: int,
    records: int,
    rate: float,
    values: list[bytes],
    keys: list[bytes] | None,
    *,
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS,
    progress: Progress | None = None,
    flush_timeout_s: float = FLUSH_TIMEOUT_S,
) -> E2EResult:
    """Send `records` records at `rate` per second while a consumer thread reads them from
    where the log ended before; per-record latency from just before send() to poll()."""
    if min(map(len, values)) < SEND_TIME.size:
        raise ValueError(f"e2e values need at least {SEND_TIME.size} bytes (the send time)")
    pin_positions(consumer, topic, partitions, end=True)
    out = E2EResult()
    outcomes = _Outcomes(out)
    reader = _Reader(consumer, records, out, progress)
    reader.start()
    send, pack = producer.send, SEND_TIME.pack_into
    nv, nk = len(values), len(keys) if keys else 0
    pacer = benchstats.Pacer(rate)
    start = time.perf_counter()
    try:
        for i in range(records):
            pacer.wait(i)
            value = bytearray(values[i % nv])
            pack(value, 0, monotonic_ns())
            outcomes.add([send(topic, bytes(value), keys[i % nk] if nk else None)])  # type: ignore[index]
            out.sent = i + 1
        out.send_seconds = time.perf_counter() - start
        flush_error = _flush(producer, flush_timeout_s)
        out.timed_out = not reader.wait_idle(idle_timeout_ms)
    finally:
        reader.stop.set()
        reader.join(5 * POLL_MS / 1000 + 1)
    outcomes.finish(flush_error)
    if reader.error is not None:
        raise reader.error
    out.seconds = (reader.last or time.perf_counter()) - start
    return out


# --- summaries (pure) -----------------------------------------------------------------------


def produce_summary(result: ProduceResult) -> Pairs:
    delivered = result.sent - result.errors if result.delivered is None else result.delivered
    pairs = benchstats.throughput_lines(delivered, result.payload_bytes, result.seconds)
    pairs.insert(1, ("errors", result.errors))
    pairs.append(("latency_samples", len(result.latencies_ns)))
    return pairs + benchstats.latency_lines("latency", result.latencies_ns)


def consume_summary(result: ConsumeResult) -> Pairs:
    return benchstats.throughput_lines(result.records, result.payload_bytes, result.seconds)


def e2e_summary(result: E2EResult, rate: float) -> Pairs:
    send_rate = result.sent / result.send_seconds if result.send_seconds > 0 else math.nan
    pairs: Pairs = [
        ("sent", result.sent),
        ("received", result.received),
        ("errors", result.errors),
        ("target_records_per_s", rate),
        ("send_records_per_s", send_rate),
    ]
    return pairs + benchstats.latency_lines("e2e_latency", result.latencies_ns)
