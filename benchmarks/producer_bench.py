"""Per-record cost of the producer's building blocks: the partitioner and the accumulator.

  partition_ns_per_key:         Partitioner.partition for 16-byte keys, all different (every
                                key hashed: the cache only costs here)
  partition_cached_ns_per_key:  the same keys again (the bounded key -> hash cache hits)
  partition_null_key_ns:        a null key (the sticky partition)
  append_ns_per_record:         RecordAccumulator.append, 16-byte key, 100-byte value, in a
                                steady state (batches drained and completed as they fill,
                                garbage collector on)
  partition_to_append_ratio:    partition_ns_per_key / append_ns_per_record
  murmur2_<way>_ns_<n>B:        ways of computing Kafka's murmur2 in Python, same results:
                                bytes (index each byte, Kafka's code transcribed), from_bytes
                                (int.from_bytes per word), iter_unpack (struct.iter_unpack),
                                cast (memoryview.cast("I")), unpack (one struct.unpack_from and
                                a word loop), lanes (all words mixed at once in 64-bit lanes),
                                zafka (what the partitioner runs: unpack below 28 bytes, lanes
                                from there)

Each figure is the best of --reps runs over the same keys, in ns per key or record. Output is
`name=value` lines.
"""

from __future__ import annotations

import argparse
import gc
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_bench import fmt

from zafka import limits
from zafka.clients import accumulator as acc_mod
from zafka.clients import partitioner as part_mod

M = part_mod.MULTIPLIER
X = 0xFFFFFFFF
SEED = part_mod.SEED


def _finish(h: int, data: bytes, n: int) -> int:
    tail = n & 3
    if tail:
        h = (h ^ int.from_bytes(data[n - tail :], "little")) * M
    h &= X
    h ^= h >> 13
    h = h * M & X
    return h ^ h >> 15


def mm_bytes(data: bytes) -> int:
    """Kafka's Utils.murmur2 transcribed: index every byte."""
    n = len(data)
    h = SEED ^ n
    for i in range(0, n & ~3, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = k * M & X
        k ^= k >> 24
        k = k * M & X
        h = (h * M & X) ^ k
    return _finish(h, data, n)


def mm_from_bytes(data: bytes) -> int:
    n = len(data)
    h = SEED ^ n
    for i in range(0, n & ~3, 4):
        k = int.from_bytes(data[i : i + 4], "little") * M & X
        h = h * M ^ (k ^ k >> 24) * M
    return _finish(h, data, n)


def mm_iter_unpack(data: bytes) -> int:
    n = len(data)
    h = SEED ^ n
    for (k,) in struct.iter_unpack("<I", data[: n & ~3]):
        k = k * M & X
        h = h * M ^ (k ^ k >> 24) * M
    return _finish(h, data, n)


def mm_cast(data: bytes) -> int:
    n = len(data)
    h = SEED ^ n
    for k in memoryview(data)[: n & ~3].cast("I"):  # native order: little-endian machines only
        k = k * M & X
        h = h * M ^ (k ^ k >> 24) * M
    return _finish(h, data, n)


def mm_unpack(data: bytes) -> int:
    n = len(data)
    h = SEED ^ n
    for k in struct.unpack_from(f"<{n >> 2}I", data):
        k = k * M & X
        h = h * M ^ (k ^ k >> 24) * M
    return _finish(h, data, n)


def mm_lanes(data: bytes) -> int:
    n = len(data)
    return _finish(part_mod._mix_lanes(data, n >> 2, SEED ^ n), data, n)


WAYS: dict[str, Callable[[bytes], int]] = {
    "bytes": mm_bytes,
    "from_bytes": mm_from_bytes,
    "iter_unpack": mm_iter_unpack,
    "cast": mm_cast,
    "unpack": mm_unpack,
    "lanes": mm_lanes,
    "zafka": part_mod._murmur2_u32,
}


Case = tuple[int, Callable[[], object], Callable[[], object]]  # (items, setup, timed run)


def best_ns(reps: int, cases: dict[str, Case]) -> dict[str, float]:
    """Best ns per item of each case over `reps` rounds; every round runs every case once, so
    drift in machine load hits all of them. Setup is untimed; the garbage collector is on."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(reps):
        for name, (_, setup, run) in cases.items():
            setup()
            gc.collect()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: best[name] / cases[name][0] * 1e9 for name in cases}


def murmur_cases(keys_by_size: dict[int, list[bytes]]) -> dict[str, Case]:
    out: dict[str, Case] = {}
    for size, keys in keys_by_size.items():
        expected = [part_mod._murmur2_u32(k) for k in keys[:200]]
        for name, fn in WAYS.items():
            assert [fn(k) for k in keys[:200]] == expected, name
            run = lambda fn=fn, keys=keys: list(map(fn, keys))  # noqa: E731
            out[f"murmur2_{name}_ns_{size}B"] = (len(keys), list, run)
    return out


def partition_cases(keys: list[bytes]) -> dict[str, Case]:
    """Keys are fresh bytes objects in every run, as a producer's serialized keys are: their
    hash for the cache's dict is computed once per call, never found cached in the object."""
    assert len(keys) > limits.key_hash_cache_keys_max, "cold keys must overflow the cache"
    p = part_mod.Partitioner(random.Random(1))
    part = p.partition
    hot = keys[:1000] * (len(keys) // 1000)  # 1000 keys that repeat: all in the cache
    state: dict[str, list[bytes]] = {}

    def fresh(source: list[bytes]) -> Callable[[], None]:
        def setup() -> None:
            state["keys"] = [bytes(memoryview(k)) for k in source]
            p._hashes.clear()
            if source is hot:
                for k in source[:1000]:
                    part("t", k, 12)

        return setup

    def run() -> None:
        for k in state["keys"]:
            part("t", k, 12)

    def nulls() -> None:
        for _ in keys:
            part("t", None, 12)

    return {
        "partition_ns_per_key": (len(keys), fresh(keys), run),
        "partition_cached_ns_per_key": (len(hot), fresh(hot), run),
        "partition_null_key_ns": (len(keys), list, nulls),
    }


def append_case(keys: list[bytes], value: bytes) -> Case:
    partitions = 12
    in_flight = {("t", p) for p in range(partitions)}
    state: dict[str, acc_mod.RecordAccumulator] = {}

    def setup() -> None:
        state["acc"] = acc_mod.RecordAccumulator(16384, 5, 32 * 1024 * 1024, False)

    def run() -> None:
        acc = state["acc"]
        append = acc.append
        for i, k in enumerate(keys):
            append("t", i % partitions, 1_700_000_000_000, k, value, None, 1000)
            if i & 1023 == 1023:  # the sender: drain what is ready, deliver it
                for batch in acc.drain(acc.ready(1000, in_flight), 1000):
                    acc.complete(batch, True)

    return len(keys), setup, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=50_000, help="keys per repetition")
    parser.add_argument("--reps", type=int, default=7, help="repetitions; the best counts")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    keys = [rng.randbytes(16) for _ in range(args.keys)]
    few = max(1000, args.keys // 10)
    sized = {s: [rng.randbytes(s) for _ in range(few)] for s in (16, 36, 100)}
    cases = partition_cases(keys)
    cases["append_ns_per_record"] = append_case(keys, b"v" * 100)
    cases.update(murmur_cases(sized))
    results = best_ns(args.reps, cases)
    append_ns = results["append_ns_per_record"]
    results["partition_to_append_ratio"] = results["partition_ns_per_key"] / append_ns
    results["partition_cached_to_append_ratio"] = results["partition_cached_ns_per_key"] / append_ns
    for name, value in results.items():
        print(f"{name}={fmt(value)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
