"""zafka against Redis Streams on this machine, in the same run: produce and consume
throughput as ratios over Redis, and zafka's end-to-end latency at a fixed rate.

Redis Streams is what a Python user would pick instead. The script starts, on 127.0.0.1
and free ports, with all their files in one temporary directory:

- redis-server with appendonly yes, appendfsync everysec (and no RDB snapshots);
- ZooKeeper and one zafka broker process, with the local launcher (zafka/cluster.py, as
  `zafka cluster up --brokers 1`); the broker's partition logs fsync every 1 s (the default,
  `flush.ms` 1000), like appendfsync everysec;

and stops all of them by PID at the end, also on errors. Workload, the same on both sides:
--records records (default 1,000,000) with 100-byte values and 16-byte keys:

- keys: a pool of 100,000 distinct 16-byte keys (`key-000000000042`) taken in turn
  (zafka/benchstats.py). The pool is larger than the producer partitioner's key-hash cache
  (4096 keys, cleared when full), so the cache never hits: every zafka send hashes its key.
- values: a pool of 8192 distinct values of random uppercase letters taken in turn (no value
  repeats inside a zafka batch, so zstd level 1 gets only the letters' entropy: about 1.7:1,
  1.8:1 with the keys).
- Redis: redis-py (with hiredis when installed, as `pip install -e .[bench]` does),
  pipelined XADD of {k: key, v: value} in batches of 1000 (pipelines without MULTI), then
  XRANGE over the whole stream in batches of 1000. Each side's records/s counts until its
  last reply.
- zafka: the Producer at its default settings except acks=1, into a 1-partition topic:
  send() in a loop, the futures dropped (no callbacks), then flush(); the clock stops when
  flush() returns, every record acknowledged. Then a Consumer at its default settings reads
  the topic from the beginning, counting the records its poll() hands out; it must find
  exactly --records records in the log (which checks that every send was delivered, once).
- e2e: zafka alone, --e2e-seconds (default 10) at --e2e-rate records/s (default 5000), keys
  and values as above, Producer (defaults, acks=1) and a Consumer thread in this process.
  Latency: from just before send() to the consumer's poll() returning the record; the send
  time (monotonic clock) travels in the value's first 8 bytes, so both ends use one clock.

Output is `name=value` lines:

  produce_vs_redis     zafka producer records/s (acks=1) over Redis pipelined XADD
  consume_vs_redis     zafka consumer records/s over Redis XRANGE
  e2e_p50_ms, e2e_p99_ms, e2e_p999_ms, e2e_max_ms
  redis_produce_rps, zafka_produce_rps, redis_consume_rps, zafka_consume_rps
  records, e2e_records, e2e_rate, redis_parser (hiredis or python)

Needs redis-server (`apt-get install -y redis-server`) and redis-py
(`pip install -e .[bench]`), and ZooKeeper as scripts/setup.sh installs it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_bench import fmt

from zafka import bench_e2e, benchrun, benchstats, cluster
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer

STREAM = "bench"
TOPIC = "bench"
E2E_TOPIC = "bench-e2e"
REDIS_BATCH_RECORDS = 1000
VALUE_BYTES = 100
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
REDIS_SOCKET_TIMEOUT_S = 60.0
FLUSH_TIMEOUT_S = 300.0
IDLE_TIMEOUT_MS = 15_000


class SetupError(Exception):
    """Something missing or not starting; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, SIGKILL after STOP_TIMEOUT_S; by the Popen's PID only."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# --- the servers ----------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[int]:
    """redis-server on 127.0.0.1 (AOF, fsync every second), answering PING; its port."""
    import redis

    binary = shutil.which("redis-server") or "redis-server"
    directory.mkdir(parents=True)
    port = free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    args += ["--daemonize", "no", "--protected-mode", "yes", "--logfile", "redis.log"]
    proc = subprocess.Popen(args, cwd=directory, stdin=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SetupError(
                        f"redis-server did not start; its log:\n{tail(directory / 'redis.log')}"
                    ) from None
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        stop(proc)


@contextlib.contextmanager
def zafka_cluster(directory: Path, count: int = 1) -> Iterator[str]:
    """ZooKeeper and `count` brokers, started and stopped by the local launcher
    (zafka/cluster.py: topic auto-creation on, default log settings); the bootstrap
    "127.0.0.1:PORT[,...]"."""
    try:
        cluster.start_zookeeper(directory, free_port())
        brokers = cluster.start_brokers(directory, count)
        yield cluster.bootstrap(brokers)
    except cluster.LauncherError as err:
        raise SetupError(str(err)) from None
    finally:
        cluster.stop_all(directory)  # brokers, then ZooKeeper, by the PIDs it recorded


def note(text: str) -> None:
    """Progress on stderr (stdout holds only the figures)."""
    print(f"vs_redis.py: {text} ...", file=sys.stderr, flush=True)


# --- the workloads --------------------------------------------------------------------------


def redis_produce(port: int, records: int, keys: list[bytes], values: list[bytes]) -> float:
    """Pipelined XADD in batches of REDIS_BATCH_RECORDS; records/s."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=REDIS_SOCKET_TIMEOUT_S)
    nk, nv = len(keys), len(values)
    start = time.perf_counter()
    for base in range(0, records, REDIS_BATCH_RECORDS):
        pipe = client.pipeline(transaction=False)
        xadd = pipe.xadd
        for i in range(base, min(base + REDIS_BATCH_RECORDS, records)):
            xadd(STREAM, {"k": keys[i % nk], "v": values[i % nv]})
        pipe.execute()
    seconds = time.perf_counter() - start
    stored = client.xlen(STREAM)
    client.close()
    if stored != records:
        raise RuntimeError(f"Redis holds {stored} entries, not {records}")
    return records / seconds


def redis_consume(port: int, records: int) -> float:
    """XRANGE over the stream in batches of REDIS_BATCH_RECORDS; records/s."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=REDIS_SOCKET_TIMEOUT_S)
    xrange = client.xrange
    count = 0
    low = "-"
    start = time.perf_counter()
    while True:
        entries = xrange(STREAM, min=low, max="+", count=REDIS_BATCH_RECORDS)
        if not entries:
            break
        count += len(entries)
        low = b"(" + entries[-1][0]  # exclusive: after the last entry read
    seconds = time.perf_counter() - start
    client.close()
    if count != records:
        raise RuntimeError(f"XRANGE read {count} entries, not {records}")
    return records / seconds


def zafka_produce(bootstrap: str, records: int, keys: list[bytes], values: list[bytes]) -> float:
    """The Producer at its defaults but acks=1; records/s until flush() returned."""
    benchrun.ensure_topic(bootstrap, TOPIC, 1)
    with Producer(bootstrap, acks=1) as producer:
        result = benchrun.run_produce(
            producer,
            TOPIC,
            records,
            values,
            keys,
            latency_every=None,
            flush_timeout_s=FLUSH_TIMEOUT_S,
        )
    if result.errors:  # every record is counted when read back, by zafka_consume
        raise RuntimeError(f"zafka produce failed: {result.first_error}")
    return records / result.seconds


def zafka_consume(bootstrap: str, records: int) -> float:
    """A Consumer at its defaults, from the beginning; records/s handed out by poll()."""
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        result = benchrun.run_consume(
            consumer, TOPIC, 1, None, idle_timeout_ms=IDLE_TIMEOUT_MS, count_bytes=False
        )
    if result.expected != records or result.records != records:
        raise RuntimeError(
            f"the topic holds {result.expected} records, the consumer got {result.records}; "
            f"{records} were sent"
        )
    return records / result.seconds


def zafka_e2e(
    bootstrap: str, records: int, rate: float, keys: list[bytes], values: list[bytes]
) -> list[tuple[str, float]]:
    """Producer (defaults, acks=1) at `rate` and a consumer thread; e2e latency lines."""
    benchrun.ensure_topic(bootstrap, E2E_TOPIC, 1)
    with Producer(bootstrap, acks=1) as producer, Consumer(bootstrap) as consumer:
        result = bench_e2e.run_e2e(
            producer,
            consumer,
            E2E_TOPIC,
            1,
            records,
            rate,
            values,
            keys,
            idle_timeout_ms=IDLE_TIMEOUT_MS,
        )
    if result.errors or result.received != records:
        raise RuntimeError(
            f"e2e: {result.received} of {records} records arrived, {result.errors} failed "
            f"(first error: {result.first_error})"
        )
    return benchstats.latency_lines("e2e", result.latencies_ns)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: every server started gets stopped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records on each side (default: 1000000)"
    )
    parser.add_argument(
        "--e2e-seconds", type=float, default=10.0, help="length of the e2e run (default: 10)"
    )
    parser.add_argument(
        "--e2e-rate", type=float, default=5000.0, help="e2e records per second (default: 5000)"
    )
    args = parser.parse_args(argv)
    if args.records < 1 or args.e2e_seconds <= 0 or args.e2e_rate <= 0:
        parser.error("--records, --e2e-seconds and --e2e-rate must be positive")
    return args


def missing() -> str | None:
    """What is not installed, with how to install it; None if all is there."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: apt-get install -y redis-server (Debian/Ubuntu)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed: .venv/bin/pip install -e '.[bench]'"
    return None


def measure(args: argparse.Namespace, workdir: Path) -> list[tuple[str, object]]:
    """Both sides' runs, servers started and stopped around them; the figures."""
    from redis.utils import HIREDIS_AVAILABLE

    keys = benchstats.key_pool()
    values = benchstats.value_pool(VALUE_BYTES)
    e2e_records = max(1, round(args.e2e_seconds * args.e2e_rate))
    with redis_server(workdir / "redis") as redis_port:
        note(f"redis: XADD {args.records} records")
        redis_produce_rps = redis_produce(redis_port, args.records, keys, values)
        note("redis: XRANGE them")
        redis_consume_rps = redis_consume(redis_port, args.records)
    with zafka_cluster(workdir / "zafka") as bootstrap:
        note(f"zafka: produce {args.records} records")
        zafka_produce_rps = zafka_produce(bootstrap, args.records, keys, values)
        note("zafka: consume them")
        zafka_consume_rps = zafka_consume(bootstrap, args.records)
        note(f"zafka: e2e, {e2e_records} records at {args.e2e_rate:g}/s")
        latency = zafka_e2e(bootstrap, e2e_records, args.e2e_rate, keys, values)
    return [
        ("produce_vs_redis", zafka_produce_rps / redis_produce_rps),
        ("consume_vs_redis", zafka_consume_rps / redis_consume_rps),
        *latency,
        ("redis_produce_rps", redis_produce_rps),
        ("zafka_produce_rps", zafka_produce_rps),
        ("redis_consume_rps", redis_consume_rps),
        ("zafka_consume_rps", zafka_consume_rps),
        ("records", args.records),
        ("e2e_records", e2e_records),
        ("e2e_rate", args.e2e_rate),
        ("redis_parser", "hiredis" if HIREDIS_AVAILABLE else "python"),
    ]


def run_measured(script: str, measure, args: argparse.Namespace) -> int:
    """Run `measure(args, workdir)` in a fresh temporary directory (kept, and named, if it
    fails; 2 for a set-up problem) and print its figures as `name=value` lines."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix=f"zafka-{script.removesuffix('.py')}-"))
    try:
        results = measure(args, workdir)
    except BaseException as err:
        print(f"{script}: failed; the servers' files and logs are in {workdir}", file=sys.stderr)
        if isinstance(err, SetupError):
            print(f"{script}: {err}", file=sys.stderr)
            return 2
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    for name, value in results:
        shown = fmt(value) if isinstance(value, float) else value
        print(f"{name}={shown}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = missing()
    if problem:
        print(f"vs_redis.py: {problem}", file=sys.stderr)
        return 2
    return run_measured("vs_redis.py", measure, args)


if __name__ == "__main__":
    raise SystemExit(main())
