"""What replication costs: acks=all to 3 replicas against acks=1 to one, in the same run on
the same 3-broker cluster, and end-to-end latency with acks=all at a fixed rate.

Starts ZooKeeper and 3 brokers on 127.0.0.1 with the local launcher (all files in one
temporary directory; everything stopped by PID at the end, also on errors), then, with one
producer in this process, 100-byte values and 16-byte keys (zafka/benchstats.py's pools,
keyed: every send hashes its key), into 3-partition topics:

- single: --records records, acks=1, replication factor 1 (the baseline);
- replicated: the same records, acks=all, replication factor 3 (min.insync.replicas 2): a
  batch is answered once both followers fetched it (the high watermark passed it);
- e2e: --e2e-seconds at --e2e-rate records/s, acks=all, RF=3, a Consumer thread reading
  (it sees a record once the high watermark passed it); latency from just before send() to
  poll() handing the record out.

Each produce run counts until flush() returned with every record acknowledged. Output is
`name=value` lines:

  acks_all_vs_single   records/s at acks=all RF=3 over records/s at acks=1 RF=1
  e2e_p50_ms, e2e_p99_ms, e2e_p999_ms, e2e_max_ms   (acks=all, RF=3)
  single_rps, replicated_rps, records, e2e_records, e2e_rate

    python benchmarks/replication_bench.py [--records N] [--e2e-seconds S] [--e2e-rate R]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_redis import run_measured, zafka_cluster

from zafka import bench_e2e, benchrun, benchstats
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer

PARTITIONS = 3
VALUE_BYTES = 100
FLUSH_TIMEOUT_S = 300.0
IDLE_TIMEOUT_MS = 15_000


def note(text: str) -> None:
    print(f"replication_bench.py: {text} ...", file=sys.stderr, flush=True)


def produce_rps(bootstrap: str, topic: str, acks: str, records: int, keys, values) -> float:
    with Producer(bootstrap, acks=acks) as producer:
        result = benchrun.run_produce(
            producer,
            topic,
            records,
            values,
            keys,
            latency_every=1000,
            flush_timeout_s=FLUSH_TIMEOUT_S,
        )
    if result.errors or result.delivered != records:
        raise RuntimeError(f"{topic}: {result.errors} failed (first: {result.first_error})")
    return records / result.seconds


def e2e_lines(bootstrap: str, topic: str, records: int, rate: float, keys, values):
    with Producer(bootstrap, acks="all") as producer, Consumer(bootstrap) as consumer:
        result = bench_e2e.run_e2e(
            producer,
            consumer,
            topic,
            PARTITIONS,
            records,
            rate,
            values,
            keys,
            idle_timeout_ms=IDLE_TIMEOUT_MS,
        )
    if result.errors or result.received != records:
        raise RuntimeError(f"e2e: {result.received} of {records} arrived, {result.errors} failed")
    return benchstats.latency_lines("e2e", result.latencies_ns)


def measure(args: argparse.Namespace, workdir: Path) -> list[tuple[str, object]]:
    keys, values = benchstats.key_pool(), benchstats.value_pool(VALUE_BYTES)
    e2e_records = max(1, round(args.e2e_seconds * args.e2e_rate))
    with zafka_cluster(workdir, 3) as bootstrap:
        with Admin(bootstrap) as admin:
            admin.create_topic("single", PARTITIONS, 1)
            admin.create_topic("replicated", PARTITIONS, 3, {"min.insync.replicas": "2"})
            admin.create_topic("e2e", PARTITIONS, 3, {"min.insync.replicas": "2"})
        note(f"acks=1, RF=1: {args.records} records")
        single = produce_rps(bootstrap, "single", "1", args.records, keys, values)
        note(f"acks=all, RF=3: {args.records} records")
        replicated = produce_rps(bootstrap, "replicated", "all", args.records, keys, values)
        note(f"e2e, acks=all, RF=3: {e2e_records} records at {args.e2e_rate:g}/s")
        latency = e2e_lines(bootstrap, "e2e", e2e_records, args.e2e_rate, keys, values)
    return [
        ("acks_all_vs_single", replicated / single),
        *latency,
        ("single_rps", single),
        ("replicated_rps", replicated),
        ("records", args.records),
        ("e2e_records", e2e_records),
        ("e2e_rate", args.e2e_rate),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000, help="default: 300000")
    parser.add_argument("--e2e-seconds", type=float, default=10.0, help="default: 10")
    parser.add_argument("--e2e-rate", type=float, default=5000.0, help="default: 5000")
    args = parser.parse_args(argv)
    if args.records < 1 or args.e2e_seconds <= 0 or args.e2e_rate <= 0:
        parser.error("--records, --e2e-seconds and --e2e-rate must be positive")
    return run_measured("replication_bench.py", measure, args)


if __name__ == "__main__":
    raise SystemExit(main())
