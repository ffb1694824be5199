"""Pure helpers of the perf tool (`zafka bench`) and benchmarks/vs_redis.py: the workload's
keys and values, percentiles, pacing at a fixed rate and the summary's `name=value` lines.

Workload (both tools use the same, so their figures compare):

- keys: `key_pool()`, KEY_POOL_KEYS distinct 16-byte keys (`key-000000000042`), taken in turn.
  The pool is larger than the producer partitioner's key-hash cache
  (`limits.key_hash_cache_keys_max`, 4096, cleared when full), so the cache never hits and
  every keyed send hashes its key: the producer's worst case.
- values: `value_pool(size)`, distinct values of random uppercase letters (as Kafka's perf
  tool makes them), taken in turn; the pool is larger than the records a 256 KiB batch holds
  at 100 bytes, so zstd finds no repeated value inside a batch, only the letters' entropy
  (zstd level 1: about 1.7:1, 1.8:1 with the keys).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence

from zafka import clock as clocks

KEY_BYTES = 16
KEY_POOL_KEYS = 100_000
VALUE_POOL_VALUES = 8192
VALUE_POOL_BYTES_MAX = 16 * 1024 * 1024  # large values: fewer of them
LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TO_LETTERS = bytes(LETTERS[b % len(LETTERS)] for b in range(256))  # random bytes -> letters
QUANTILES = (50.0, 99.0, 99.9)


def key_pool(count: int = KEY_POOL_KEYS) -> list[bytes]:
    """`count` distinct 16-byte keys: b"key-" and 12 digits."""
    if not 1 <= count <= 10**12:
        raise ValueError(f"key pool of {count}: expected 1..10**12")
    return [b"key-%012d" % i for i in range(count)]


def value_pool(size: int, seed: int = 1) -> list[bytes]:
    """Distinct `size`-byte values of random uppercase letters, the same every run:
    VALUE_POOL_VALUES of them, fewer when that would pass VALUE_POOL_BYTES_MAX (at least 1)."""
    if size < 0:
        raise ValueError(f"value size {size}: expected >= 0")
    if size == 0:
        return [b""]
    count = max(1, min(VALUE_POOL_VALUES, VALUE_POOL_BYTES_MAX // size))
    rng = random.Random(seed)
    return [rng.randbytes(size).translate(_TO_LETTERS) for _ in range(count)]


def percentiles(samples: Iterable[float], quantiles: Sequence[float] = QUANTILES) -> list[float]:
    """The nearest-rank percentile of `samples` for each of `quantiles` (0 < q <= 100): the
    smallest sample with at least q% of the samples at or below it. NaN for no samples."""
    ordered = sorted(samples)
    n = len(ordered)
    out = []
    for q in quantiles:
        if not 0 < q <= 100:
            raise ValueError(f"percentile {q}: expected 0 < q <= 100")
        # ceil(q/100 * n) without float error for values like 99.9% of 1000
        rank = -(-round(q * n * 1000) // 100_000)
        out.append(ordered[max(rank, 1) - 1] if n else math.nan)
    return out


def quantile_name(q: float) -> str:
    """50 -> "p50", 99.9 -> "p999", 99.99 -> "p9999"."""
    text = f"{q:g}"
    return "p" + text.replace(".", "")


def fmt(value: float | int) -> str:
    """A figure for a `name=value` line: ints as they are, floats with 3 decimals below 100
    and none from there (benchmarks/batch_bench.py's format); nan for no value."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.3f}" if value < 100 else f"{value:.0f}"


def throughput_lines(records: int, payload_bytes: int, seconds: float) -> list[tuple[str, float]]:
    """(name, value) pairs: records, elapsed_s, records_per_s and mb_per_s (keys + values,
    10**6 bytes)."""
    rate = records / seconds if seconds > 0 else math.nan
    mb = payload_bytes / 1e6 / seconds if seconds > 0 else math.nan
    return [("records", records), ("elapsed_s", seconds), ("records_per_s", rate), ("mb_per_s", mb)]


def latency_lines(
    prefix: str, latencies_ns: Sequence[int], quantiles: Sequence[float] = QUANTILES
) -> list[tuple[str, float]]:
    """(name, ms) pairs: `<prefix>_p50_ms`, ..., `<prefix>_max_ms` of ns latencies."""
    values = percentiles(latencies_ns, quantiles)
    pairs = [
        (f"{prefix}_{quantile_name(q)}_ms", v / 1e6) for q, v in zip(quantiles, values, strict=True)
    ]
    pairs.append((f"{prefix}_max_ms", max(latencies_ns) / 1e6 if latencies_ns else math.nan))
    return pairs


def format_lines(pairs: Iterable[tuple[str, float | int]]) -> str:
    """`name=value` lines (see `fmt`), each ending in a newline."""
    return "".join(f"{name}={fmt(value)}\n" for name, value in pairs)


class Pacer:
    """Spaces events at `rate` per second: `wait(i)` sleeps until event i is due, at
    start + i / rate on an absolute schedule, so oversleeping one event does not delay the
    ones after it (a late sender catches up without sleeping)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = clocks.monotonic_s,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate {rate}: expected > 0")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self.start = clock()

    def due(self, i: int) -> float:
        return self.start + i * self.interval

    def wait(self, i: int) -> None:
        delay = self.due(i) - self._clock()
        if delay > 0:
            self._sleep(delay)
