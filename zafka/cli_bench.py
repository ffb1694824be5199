"""`zafka bench produce|consume|e2e`: the perf tool, like Kafka's kafka-producer-perf-test and
kafka-consumer-perf-test.

- `produce`: sends `--records` records as fast as the producer takes them, then waits until
  all are acknowledged; every record's outcome is checked. Latency: from just before `send()`
  to the record's delivery callback (acks 1/all: the broker's answer; acks 0: the request
  went out), for every `--latency-every`th record (default 16: a callback per record would
  cost the producer more than half its throughput, on the I/O thread that also sends).
- `consume`: reads the topic from the beginning with a Consumer (every partition assigned)
  until `--records` records (default: all the topic held at the start) were handed to it.
- `e2e`: a producer at a fixed `--rate` and a consumer thread in the same process, reading
  from the end of the log as it was before the first send. Latency: from just before
  `send()` to the consumer's `poll()` returning the record; the send time (monotonic clock,
  ns) travels in the value's first 8 bytes, so both ends use one clock.

Records: `--record-size`-byte values of random uppercase letters and, with `--keys`, 16-byte
keys from a pool of 100,000 taken in turn (see zafka/benchstats.py). The producer runs with
its default settings except `--acks` (idempotence off with acks 0). `produce` and `e2e` create
the topic with `--partitions` if it does not exist.

The summary goes to stdout as `name=value` lines (MB: keys + values, 10**6 bytes); the
progress bar and errors go to stderr. The measurements themselves are in zafka/benchrun.py,
which benchmarks/vs_redis.py runs too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from zafka import benchstats
from zafka.bench_e2e import SEND_TIME, e2e_summary, run_e2e
from zafka.benchrun import (
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_LATENCY_EVERY_RECORDS,
    Pairs,
    Progress,
    consume_summary,
    ensure_topic,
    produce_summary,
    producer_for,
    run_consume,
    run_produce,
    topic_partitions,
)
from zafka.cli_common import (
    EXIT_CODES_EPILOG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    add_acks_argument,
    add_connection_arguments,
    add_progress_argument,
    fail,
    positive_int,
    report,
    resolve_bootstrap,
    show_progress,
)
from zafka.clients.consumer import Consumer
from zafka.errors import ZafkaError

DEFAULT_TOPIC = "zafka-bench"
DEFAULT_RECORDS = 1_000_000
DEFAULT_E2E_RECORDS = 50_000
DEFAULT_RECORD_BYTES = 100
DEFAULT_RATE_PER_S = 5000.0

EXAMPLES = """examples:
  zafka bench produce --records 1000000 --record-size 100 --keys --acks 1
  zafka bench consume --records 1000000
  zafka bench e2e --rate 5000 --records 50000"""


# --- argument parsing -----------------------------------------------------------------------


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def record_size(text: str) -> int:
    """argparse type: a record size in bytes, >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `bench` subcommand to `commands` (the `zafka` parser's subparsers)."""
    bench = commands.add_parser(
        "bench",
        help="measure throughput and latency: produce, consume, end to end",
        description="Measure a cluster like Kafka's perf-test tools: records/s, MB/s and "
        "latency percentiles. The summary goes to stdout as name=value lines; a progress "
        "bar goes to stderr. Values are random uppercase letters; keys (--keys) 16 bytes, "
        "from a pool of 100,000 taken in turn.",
        epilog=f"{EXAMPLES}\n{EXIT_CODES_EPILOG}",
        formatter_class=HelpFormatter,
    )
    actions = bench.add_subparsers(dest="action", metavar="ACTION", required=True)
    produce = actions.add_parser(
        "produce",
        help="send records as fast as possible; throughput and send-to-ack latency",
        description="Send --records records as fast as the producer takes them and wait "
        "until every one is acknowledged. Latency is from just before send() to the "
        "record's delivery callback, measured on every --latency-every'th record. Creates the "
        "topic if it does not exist.",
    )
    produce.set_defaults(func=_produce, records=DEFAULT_RECORDS)
    consume = actions.add_parser(
        "consume",
        help="read a topic from the beginning; consumer throughput",
        description="Read --topic from the beginning of every partition with a Consumer and "
        "count the records handed to it. Fill the topic first with `zafka bench produce`.",
    )
    consume.set_defaults(func=_consume, records=None)
    e2e = actions.add_parser(
        "e2e",
        help="produce at a fixed rate and consume in the same process; end-to-end latency",
        description="Send --records records at --rate records/s while a consumer thread "
        "in the same process reads them. Latency is from just before send() to poll() "
        "returning the record (the send time travels in the value's first 8 bytes). Creates "
        "the topic if it does not exist.",
    )
    e2e.set_defaults(func=_e2e, records=DEFAULT_E2E_RECORDS)
    for action in (produce, consume, e2e):
        _add_common_options(action)
    for action in (produce, e2e):
        _add_producer_options(action, min_size=SEND_TIME.size if action is e2e else 0)
    _add_specific_options(produce, consume, e2e)
    for action in (produce, consume, e2e):
        add_progress_argument(action, "on stderr")
        add_connection_arguments(action)
        action.epilog = f"{EXAMPLES}\n{EXIT_CODES_EPILOG}"
        action.formatter_class = HelpFormatter


def _add_common_options(action: argparse.ArgumentParser) -> None:
    action.add_argument(
        "--topic", default=DEFAULT_TOPIC, help=f"the topic (default: {DEFAULT_TOPIC})"
    )
    default = action.get_default("records")
    action.add_argument(
        "--records",
        type=positive_int,
        default=default,
        metavar="N",
        help="how many records (default: "
        + ("all the topic holds at the start)" if default is None else f"{default:,})"),
    )


def _add_producer_options(action: argparse.ArgumentParser, min_size: int) -> None:
    action.add_argument(
        "--record-size",
        type=record_size,
        default=DEFAULT_RECORD_BYTES,
        metavar="BYTES",
        help=f"bytes in each value (default: {DEFAULT_RECORD_BYTES}"
        + (f"; at least {min_size})" if min_size else ")"),
    )
    action.add_argument(
        "--keys",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="give each record a 16-byte key from a pool of 100,000, taken in turn "
        "(default: no keys)",
    )
    add_acks_argument(action)
    action.add_argument(
        "--partitions",
        type=positive_int,
        metavar="N",
        help="partitions of the topic when it is created (default: 1; an existing "
        "topic keeps its own)",
    )


def _add_specific_options(
    produce: argparse.ArgumentParser, consume: argparse.ArgumentParser, e2e: argparse.ArgumentParser
) -> None:
    produce.add_argument(
        "--latency-every",
        type=positive_int,
        default=DEFAULT_LATENCY_EVERY_RECORDS,
        metavar="N",
        help="measure the latency of every Nth record (default: "
        f"{DEFAULT_LATENCY_EVERY_RECORDS}; 1: all, at the cost of a callback per record on the "
        "producer's I/O thread)",
    )
    e2e.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULT_RATE_PER_S,
        metavar="RECORDS_PER_S",
        help=f"records sent per second (default: {DEFAULT_RATE_PER_S:g})",
    )
    for action in (consume, e2e):
        action.add_argument(
            "--timeout-ms",
            type=positive_int,
            default=DEFAULT_IDLE_TIMEOUT_MS,
            metavar="MS",
            help="give up when no record arrived for this long (default: "
            f"{DEFAULT_IDLE_TIMEOUT_MS})",
        )


# --- summaries and commands ----------------------------------------------------------------


def settings_lines(args: argparse.Namespace, partitions: int) -> list[tuple[str, object]]:
    """What the run measured: topic, partitions and, for produce and e2e, the records."""
    pairs: list[tuple[str, object]] = [("topic", args.topic), ("partitions", partitions)]
    if args.action != "consume":
        pairs += [
            ("record_size", args.record_size),
            ("keys", "yes" if args.keys else "no"),
            ("acks", args.acks),
        ]
    return pairs


class _Bar:
    """A tqdm bar on stderr, or nothing."""

    def __init__(self, args: argparse.Namespace, total: int | None) -> None:
        self.bar = None
        if show_progress(args):
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="rec",
                unit_scale=True,
                desc=f"{args.action} {args.topic}",
                file=sys.stderr,
                mininterval=0.25,
            )

    @property
    def update(self) -> Progress | None:
        return None if self.bar is None else self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print(pairs: Pairs | list[tuple[str, object]]) -> None:
    for name, value in pairs:
        shown = benchstats.fmt(value) if isinstance(value, int | float) else value
        print(f"{name}={shown}")
    sys.stdout.flush()


def _run(args: argparse.Namespace, work: Callable[[str, _Bar], int], total: int | None) -> int:
    bootstrap = resolve_bootstrap(args)
    bar: _Bar | None = None
    try:
        bar = _Bar(args, total)
        return work(bootstrap.servers, bar)
    except ZafkaError as err:
        if bar is not None:
            bar.close()
        status = report(err, bootstrap, f"bench {args.action} on {args.topic!r}")
        if err.error.name == "UNKNOWN_TOPIC_OR_PARTITION" and args.action == "consume":
            print(f"  fill it first: zafka bench produce --topic {args.topic}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _workload(
    servers: str, args: argparse.Namespace
) -> tuple[int, list[bytes] | None, list[bytes]]:
    """produce and e2e: the partition count (topic created if missing), keys (--keys), values."""
    partitions = ensure_topic(servers, args.topic, args.partitions, args.request_timeout_ms)
    keys = benchstats.key_pool() if args.keys else None
    return partitions, keys, benchstats.value_pool(args.record_size)


def _produce(args: argparse.Namespace) -> int:
    def work(servers: str, bar: _Bar) -> int:
        partitions, keys, values = _workload(servers, args)
        producer = producer_for(servers, args.acks, args.request_timeout_ms)
        try:
            result = run_produce(
                producer,
                args.topic,
                args.records,
                values,
                keys,
                latency_every=args.latency_every,
                progress=bar.update,
            )
        finally:
            bar.close()
            producer.close(args.request_timeout_ms / 1000)
        _print(settings_lines(args, partitions) + produce_summary(result))
        if result.errors:
            return fail(
                f"{result.errors} of {result.sent} records failed; the first: {result.first_error}"
            )
        return EXIT_OK

    return _run(args, work, args.records)


def _consume(args: argparse.Namespace) -> int:
    def work(servers: str, bar: _Bar) -> int:
        partitions = topic_partitions(servers, args.topic, args.request_timeout_ms)
        consumer = Consumer(
            servers, auto_offset_reset="earliest", request_timeout_ms=args.request_timeout_ms
        )
        try:
            result = run_consume(
                consumer,
                args.topic,
                partitions,
                args.records,
                idle_timeout_ms=args.timeout_ms,
                progress=bar.update,
            )
        finally:
            bar.close()
            consumer.close()
        _print(settings_lines(args, partitions) + consume_summary(result))
        if result.expected == 0:
            return fail(
                f"topic {args.topic} is empty; fill it first: "
                f"zafka bench produce --topic {args.topic}"
            )
        if result.timed_out:
            return fail(
                f"only {result.records} of {result.expected} records arrived; "
                f"none for {args.timeout_ms} ms (--timeout-ms)"
            )
        return EXIT_OK

    return _run(args, work, args.records)


def _e2e(args: argparse.Namespace) -> int:
    if args.record_size < SEND_TIME.size:
        return fail(
            f"--record-size must be at least {SEND_TIME.size} for e2e "
            "(the send time travels in the value)",
            EXIT_USAGE,
        )

    def work(servers: str, bar: _Bar) -> int:
        partitions, keys, values = _workload(servers, args)
        producer = producer_for(servers, args.acks, args.request_timeout_ms)
        consumer = Consumer(servers, request_timeout_ms=args.request_timeout_ms)
        try:
            result = run_e2e(
                producer,
                consumer,
                args.topic,
                partitions,
                args.records,
                args.rate,
                values,
                keys,
                idle_timeout_ms=args.timeout_ms,
                progress=bar.update,
            )
        finally:
            bar.close()
            producer.close(args.request_timeout_ms / 1000)
            consumer.close()
        _print(settings_lines(args, partitions) + e2e_summary(result, args.rate))
        if result.errors or result.timed_out or result.received < result.sent:
            return fail(
                f"{result.received} of {result.sent} records arrived, "
                f"{result.errors} failed to send"
                + (f" (the first: {result.first_error})" if result.first_error else "")
            )
        return EXIT_OK

    return _run(args, work, args.records)
