"""`zafka bench e2e` and the e2e part of benchmarks/vs_redis.py: records sent at a fixed rate
while a consumer thread in the same process reads them; the latency of each, from just
before `send()` to the return of the `poll()` that brought it (the send time travels in
the value's first 8 bytes: a record timestamp has only milliseconds)."""

from __future__ import annotations

import math
import struct
import threading
from array import array
from dataclasses import dataclass, field

from zafka import benchstats, clock
from zafka.benchrun import (
    DEFAULT_IDLE_TIMEOUT_MS,
    FLUSH_TIMEOUT_S,
    POLL_MS,
    Outcomes,
    Pairs,
    Progress,
    bounded_flush,
    payload,
    pin_positions,
)
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError

SEND_TIME = struct.Struct("<q")  # the send time (monotonic ns) in a value's first bytes


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


class _Reader(threading.Thread):
    """The e2e consumer thread: polls until `records` arrived or `stop`; per record, the
    latency from the send time in its value to the return of the poll that brought it."""

    def __init__(self, consumer: Consumer, records: int, out: E2EResult, progress) -> None:
        super().__init__(name="bench-e2e-consumer", daemon=True)
        self.consumer, self.records, self.out, self.progress = consumer, records, out, progress
        self.stop = threading.Event()
        self.last = 0.0  # monotonic_s of the last record's arrival
        self.error: ZafkaError | None = None

    def run(self) -> None:
        unpack, out, extend = SEND_TIME.unpack_from, self.out, self.out.latencies_ns.extend
        try:
            while out.received < self.records and not self.stop.is_set():
                batch = self.consumer.poll(POLL_MS)
                if not batch:
                    continue
                now = clock.monotonic_ns()
                self.last = clock.monotonic_s()
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
        count, idle_since = -1, clock.monotonic_s()
        while self.is_alive():
            self.join(POLL_MS / 1000)
            if self.out.received != count:
                count, idle_since = self.out.received, clock.monotonic_s()
            elif clock.monotonic_s() - idle_since > idle_timeout_ms / 1000:
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
    outcomes = Outcomes(out)
    reader = _Reader(consumer, records, out, progress)
    reader.start()
    send, pack = producer.send, SEND_TIME.pack_into
    nv, nk = len(values), len(keys) if keys else 0
    pacer = benchstats.Pacer(rate)
    start = clock.monotonic_s()
    try:
        for i in range(records):
            pacer.wait(i)
            value = bytearray(values[i % nv])
            pack(value, 0, clock.monotonic_ns())
            outcomes.add([send(topic, bytes(value), keys[i % nk] if nk else None)])  # type: ignore[index]
            out.sent = i + 1
        out.send_seconds = clock.monotonic_s() - start
        flush_error = bounded_flush(producer, flush_timeout_s)
        out.timed_out = not reader.wait_idle(idle_timeout_ms)
    finally:
        reader.stop.set()
        reader.join(5 * POLL_MS / 1000 + 1)
    outcomes.finish(flush_error)
    if reader.error is not None:
        raise reader.error
    out.seconds = (reader.last or clock.monotonic_s()) - start
    return out


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
