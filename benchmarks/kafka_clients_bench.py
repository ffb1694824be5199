"""confluent-kafka (librdkafka) through a broker's Kafka protocol listener against zafka's own
SDK, and against Redis Streams, in the same run.

Starts redis-server and ZooKeeper plus one zafka broker (the local launcher: the broker gets
a Kafka listener) on 127.0.0.1, all files in one temporary directory, everything stopped by
PID at the end, also on errors (see vs_redis.py, whose set-up and Redis workloads this
reuses). Workload on every side: --records records, 100-byte values, 16-byte keys from
zafka/benchstats.py's pools, into a 1-partition topic, acks=1, zstd on both zafka producers:

- native: zafka's Producer (defaults but acks=1) then Consumer, as vs_redis.py;
- kafka: confluent-kafka's Producer (acks=1, compression.type=zstd, its other defaults:
  linger.ms 5, batches up to 1 MB) producing with no delivery callback, then flush(); its
  Consumer assigned the partition from offset 0, consume() in batches of 1000, until it has
  every record (which checks that every send was delivered, once);
- redis: pipelined XADD and XRANGE, as vs_redis.py.

Output is `name=value` lines:

  kafka_produce_vs_native   confluent-kafka producer records/s over zafka's Producer
  kafka_consume_vs_native   confluent-kafka consumer records/s over zafka's Consumer
  kafka_produce_vs_redis, kafka_consume_vs_redis   the same over Redis Streams
  native_produce_rps, native_consume_rps, kafka_produce_rps, kafka_consume_rps,
  redis_produce_rps, redis_consume_rps, records
  kafka_consume_broker_us_per_record   the broker's CPU time (user + system, from /proc)
                                       while confluent-kafka consumed, per record
  kafka_consume_client_us_per_record   this process's CPU time (confluent-kafka's Python
                                       calls and librdkafka's threads) meanwhile, per record
  kafka_consume_client_ceiling_rps     1 / the client's: what it could read if the broker
                                       cost nothing (each side has a core of its own)
  native_consume_client_us_per_record  the same for zafka's Consumer

    python benchmarks/kafka_clients_bench.py [--records N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_redis
from vs_redis import note, run_measured

from zafka import benchrun, benchstats, cluster

KAFKA_TOPIC = "kafka-bench"
DEADLINE_S = 600.0  # no phase may take longer


def kafka_produce(bootstrap: str, records: int, keys: list[bytes], values: list[bytes]) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "compression.type": "zstd"})
    nk, nv = len(keys), len(values)
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(KAFKA_TOPIC, values[i % nv], keys[i % nk], partition=0)
                break
            except BufferError:  # its queue is full: let it deliver
                producer.poll(0.05)
        if time.perf_counter() - start > DEADLINE_S:
            raise RuntimeError(f"confluent-kafka produced only {i} records in {DEADLINE_S} s")
    left = producer.flush(DEADLINE_S)
    if left:
        raise RuntimeError(f"confluent-kafka: {left} records not delivered")
    return records / (time.perf_counter() - start)


def kafka_consume(bootstrap: str, records: int) -> float:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(KAFKA_TOPIC, 0, 0)])
    got, start = 0, time.perf_counter()
    while got < records and time.perf_counter() - start < DEADLINE_S:
        got += sum(1 for m in consumer.consume(1000, 1.0) if m.error() is None)
    seconds = time.perf_counter() - start
    consumer.close()
    if got != records:
        raise RuntimeError(f"confluent-kafka read {got} records of {records}")
    return records / seconds


def cpu_s(pid: int) -> float:
    """User + system CPU seconds process `pid` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(pid: int, work) -> tuple[float, float, float]:
    """`work()`'s result, and the CPU seconds of broker `pid` and of this process in it."""
    broker, client = cpu_s(pid), time.process_time()
    result = work()
    return result, cpu_s(pid) - broker, time.process_time() - client


def measure(args: argparse.Namespace, workdir: Path) -> list[tuple[str, object]]:
    keys, values = benchstats.key_pool(), benchstats.value_pool(vs_redis.VALUE_BYTES)
    with vs_redis.redis_server(workdir / "redis") as redis_port:
        note(f"redis: XADD {args.records} records")
        redis_produce = vs_redis.redis_produce(redis_port, args.records, keys, values)
        note("redis: XRANGE them")
        redis_consume = vs_redis.redis_consume(redis_port, args.records)
    with vs_redis.zafka_cluster(workdir / "zafka") as bootstrap:
        brokers = list(cluster.load_state(workdir / "zafka").values())
        kafka_bootstrap = cluster.kafka_bootstrap(brokers)
        note(f"native: produce {args.records} records")
        native_produce = vs_redis.zafka_produce(bootstrap, args.records, keys, values)
        note("native: consume them")
        (pid,) = [info.pid for info in brokers if info.kafka_port]  # the one broker
        native_consume, _, native_client_s = timed(
            pid, lambda: vs_redis.zafka_consume(bootstrap, args.records)
        )
        benchrun.ensure_topic(bootstrap, KAFKA_TOPIC, 1)
        note(f"confluent-kafka: produce {args.records} records")
        kafka_produce_rps = kafka_produce(kafka_bootstrap, args.records, keys, values)
        note("confluent-kafka: consume them")
        kafka_consume_rps, broker_s, client_s = timed(
            pid, lambda: kafka_consume(kafka_bootstrap, args.records)
        )
    per_record_us = 1e6 / args.records
    return [
        ("kafka_produce_vs_native", kafka_produce_rps / native_produce),
        ("kafka_consume_vs_native", kafka_consume_rps / native_consume),
        ("kafka_produce_vs_redis", kafka_produce_rps / redis_produce),
        ("kafka_consume_vs_redis", kafka_consume_rps / redis_consume),
        ("native_produce_rps", native_produce),
        ("native_consume_rps", native_consume),
        ("kafka_produce_rps", kafka_produce_rps),
        ("kafka_consume_rps", kafka_consume_rps),
        ("redis_produce_rps", redis_produce),
        ("redis_consume_rps", redis_consume),
        ("records", args.records),
        ("kafka_consume_broker_us_per_record", broker_s * per_record_us),
        ("kafka_consume_client_us_per_record", client_s * per_record_us),
        ("kafka_consume_client_ceiling_rps", args.records / max(client_s, 1e-9)),
        ("native_consume_client_us_per_record", native_client_s * per_record_us),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000, help="default: 300000")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be positive")
    problem = vs_redis.missing()
    if problem:
        print(f"kafka_clients_bench.py: {problem}", file=sys.stderr)
        return 2
    return run_measured("kafka_clients_bench.py", measure, args)


if __name__ == "__main__":
    raise SystemExit(main())
