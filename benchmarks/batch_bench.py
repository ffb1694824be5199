"""Record batch encode/decode speed, as ratios against plain msgpack + zstd in the same run.

Records: 16-byte keys, 100-byte JSON-like values (about 5:1 under zstd), no headers. Batch
size = the packed (uncompressed) msgpack payload, as a producer fills it. For each size:

  encode:         build_batch(records)  vs  zstd_level1.compress(msgpack.packb(records))
  decode:         read_batch(batch)     vs  unpackb(zstd.decompress(row_frame), use_list=False)
  decode_records: read_records(batch)   vs  the same baseline
  check:          check_batch(batch) (the broker's produce path), MB/s

The baselines pack the records as rows, one array per record, as a plain msgpack user would
(the decode frames: [timestamp delta, key, value, headers] rows, byte for byte the payload of
the earlier row format).
read_batch is the consumer's reader: the batch fully checked and every record's data
accessible through its columns; read_records also builds one Record per record.

Each side is timed over the same batches; the best of --reps repetitions counts, sides
interleaved so drift in machine load hits both. Output is `name=value` lines; the lines
without a size suffix are the worst case over the sizes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import zstandard

try:
    from zafka.storage import batch as b
    from zafka.storage import records as rec
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from zafka.storage import batch as b
    from zafka.storage import records as rec

T0 = 1_700_000_000_000
EVENTS = (b"click", b"view", b"purchase", b"scroll")
SIZES = {"16KiB": 16 * 1024, "256KiB": 256 * 1024, "1MiB": 1024 * 1024}


def make_records(n: int, seed: int = 1) -> list[tuple[int, bytes, bytes, None]]:
    """JSON-like 100-byte values with some entropy: zstd level 1 packs them about 5:1."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = b'{"id":%d,"sid":"%012x","event":"%s","page":"/p/%03d","amt":%d.%02d}' % (
            i,
            rng.getrandbits(48),
            EVENTS[rng.getrandbits(2)],
            rng.randrange(1000),
            rng.randrange(10_000),
            rng.randrange(100),
        )
        key = b"user-%011d" % rng.randrange(100_000)
        out.append((T0 + i // 8, key, value.ljust(100, b" ")[:100], None))
    return out


def best_of(reps: int, sides: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best wall time per side over `reps` interleaved repetitions."""
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(reps):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_size(records: list, batch_bytes: int, reps: int) -> dict[str, float]:
    per_record = len(msgpack.packb(records[:1000])) / 1000
    per_batch = max(1, int(batch_bytes // per_record))
    chunks = [records[i : i + per_batch] for i in range(0, len(records), per_batch)]
    n = sum(map(len, chunks))
    cz = zstandard.ZstdCompressor(level=1)
    dz = zstandard.ZstdDecompressor()
    batches = [b.build_batch(c) for c in chunks]
    # The same records as rows, [timestamp - first timestamp, key, value, headers] each.
    rows = [[(t - c[0][0], k, v, h) for t, k, v, h in c] for c in chunks]
    frames = [cz.compress(msgpack.packb(r)) for r in rows]
    t = best_of(
        reps,
        {
            "encode_base": lambda: [cz.compress(msgpack.packb(c)) for c in chunks],
            "encode": lambda: [b.build_batch(c) for c in chunks],
            "decode_base": lambda: [
                msgpack.unpackb(dz.decompress(f), use_list=False) for f in frames
            ],
            "decode": lambda: [rec.read_batch(x) for x in batches],
            "decode_records": lambda: [rec.read_records(x) for x in batches],
            "check": lambda: [b.check_batch(x) for x in batches],
        },
    )
    return {
        "records_per_batch": per_batch,
        "compressed_batch_bytes": sum(map(len, batches)) // len(batches),
        "encode_records_per_s": n / t["encode"],
        "encode_baseline_records_per_s": n / t["encode_base"],
        "encode_ratio": t["encode_base"] / t["encode"],
        "decode_records_per_s": n / t["decode"],
        "decode_baseline_records_per_s": n / t["decode_base"],
        "decode_ratio": t["decode_base"] / t["decode"],
        "decode_records_ratio": t["decode_base"] / t["decode_records"],
        "decode_records_records_per_s": n / t["decode_records"],
        "check_mb_per_s": sum(map(len, batches)) / t["check"] / 1e6,
    }


def fmt(value: float) -> str:
    return f"{value:.3f}" if value < 100 else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000, help="records per repetition")
    parser.add_argument("--reps", type=int, default=15, help="repetitions; the best counts")
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help=f"comma-separated, from {', '.join(SIZES)}"
    )
    args = parser.parse_args(argv)
    records = make_records(args.records)
    results = {}
    for label in args.sizes.split(","):
        results[label] = bench_size(records, SIZES[label], args.reps)
        for name, value in results[label].items():
            print(f"{name}_{label}={fmt(value)}", flush=True)
    for name in ("encode_ratio", "decode_ratio", "decode_records_ratio"):
        print(f"{name}={fmt(min(r[name] for r in results.values()))}")
    for name in ("encode_records_per_s", "decode_records_per_s", "decode_records_records_per_s"):
        print(f"{name}={fmt(min(r[name] for r in results.values()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
