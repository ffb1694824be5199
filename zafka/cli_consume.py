"""`zafka consume TOPIC`: print records of a topic's partitions, with a `Consumer`.

Where it starts, per partition: `--from-beginning`, `--offset N`, `--from-timestamp T` (the
first record at or after T), or by default the beginning (the end with `--follow`). Without
`--follow` it stops at the end offsets the partitions had when it started (or after
`--max-records`); with `--follow` it waits for new records until Ctrl-C (exit 0).

Each record is one line on stdout: `[TIMESTAMP\\t][KEY\\t]VALUE`, the value's bytes as stored
(so `zafka consume` reproduces what `zafka produce` read), a missing key or value printed as
`null`, timestamps in ISO 8601 (UTC). A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO

from zafka import clock
from zafka.cli_common import (
    EXIT_CODES_EPILOG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Bootstrap,
    HelpFormatter,
    add_connection_arguments,
    fail,
    non_negative_int,
    positive_int,
    report,
    resolve_bootstrap,
)
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer
from zafka.errors import ZafkaError

TopicPartition = tuple[str, int]
DEFAULT_IDLE_TIMEOUT_MS = 10_000  # without --follow: give up after this long without records
POLL_MS = 200  # one poll's wait: Ctrl-C and the idle timeout are noticed this quickly
NULL = b"null"

EXAMPLES = """examples:
  zafka consume orders                  # what is there now, then exit
  zafka consume orders --follow         # new records as they come, until Ctrl-C
  zafka consume orders --partition 0 --offset 42 --max-records 10
  zafka consume orders --from-timestamp 2024-05-01T12:00:00Z --print-timestamp"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `consume` subcommand to `commands` (the `zafka` parser's subparsers)."""
    consume = commands.add_parser(
        "consume",
        help="print a topic's records",
        description="Print the records of TOPIC (all its partitions, or --partition), one "
        "per line: [TIMESTAMP<tab>][KEY<tab>]VALUE. Starts at the beginning (the end with "
        "--follow) unless told otherwise. Without --follow it stops at the end offsets the "
        "partitions had when it started; with --follow it waits for new records until Ctrl-C.",
        epilog=f"{EXAMPLES}\n{EXIT_CODES_EPILOG}",
        formatter_class=HelpFormatter,
    )
    consume.add_argument("topic", metavar="TOPIC", help="the topic to read")
    start = consume.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning", action="store_true", help="start at each partition's first record"
    )
    start.add_argument(
        "--offset",
        type=non_negative_int,
        metavar="N",
        help="start at offset N in each partition read (an error if N is outside its log)",
    )
    start.add_argument(
        "--from-timestamp",
        type=parse_timestamp,
        metavar="TIME",
        help="start at the first record at or after TIME: ISO 8601 (e.g. 2024-05-01T12:00:00Z; "
        "local time without a zone) or milliseconds since the epoch",
    )
    consume.add_argument(
        "--partition", type=non_negative_int, metavar="P", help="read partition P only"
    )
    consume.add_argument("--print-key", action="store_true", help="print KEY<tab> before values")
    consume.add_argument(
        "--print-timestamp",
        action="store_true",
        help="print each record's timestamp (ISO 8601, UTC) first",
    )
    consume.add_argument(
        "--max-records", type=positive_int, metavar="N", help="stop after N records"
    )
    consume.add_argument(
        "--follow",
        action="store_true",
        help="keep waiting for new records until Ctrl-C (exit 0)",
    )
    consume.add_argument(
        "--timeout-ms",
        type=positive_int,
        metavar="MS",
        help="stop after MS without a record (default: never with --follow; "
        f"{DEFAULT_IDLE_TIMEOUT_MS} otherwise, an error if the end was not reached)",
    )
    add_connection_arguments(consume)
    consume.set_defaults(func=_consume)


# --- pure helpers ---------------------------------------------------------------------------


def parse_timestamp(text: str) -> int:
    """argparse type: milliseconds since the epoch, from digits (ms) or ISO 8601 (a time
    without a zone is local time)."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither ISO 8601 (e.g. 2024-05-01T12:00:00Z) nor milliseconds"
        ) from None
    ms = int(moment.timestamp() * 1000)  # naive: local time, as datetime.timestamp does
    if ms < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970")
    return ms


def format_timestamp(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2024-05-01T12:00:00.123Z."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_record(
    timestamp: int, key: bytes | None, value: bytes | None, print_key: bool, print_ts: bool
) -> bytes:
    """One output line (with its newline) for a record."""
    parts = []
    if print_ts:
        parts.append(format_timestamp(timestamp).encode())
    if print_key:
        parts.append(NULL if key is None else key)
    parts.append(NULL if value is None else value)
    return b"\t".join(parts) + b"\n"


# --- the command ----------------------------------------------------------------------------


class _Failure(Exception):
    """A failure already explained to the user (exit 1)."""


class _Count:
    """Records printed so far (kept when printing stops with an exception)."""

    started = False  # reading began: a summary is worth printing
    printed = 0


def _partitions(args: argparse.Namespace, bootstrap: Bootstrap) -> list[int]:
    """The partitions to read (the topic must exist: reading never creates it)."""
    with Admin(bootstrap.servers, request_timeout_ms=args.request_timeout_ms) as admin:
        (topic,) = admin.describe_topics([args.topic])
    count = len(topic.partitions)
    if args.partition is None:
        return list(range(count))
    if args.partition >= count:
        raise ZafkaError(
            "UNKNOWN_TOPIC_OR_PARTITION",
            f"topic {args.topic!r} has partitions 0..{count - 1}, not {args.partition}",
        )
    return [args.partition]


def _consume(args: argparse.Namespace) -> int:
    bootstrap = resolve_bootstrap(args)
    out = sys.stdout.buffer
    count = _Count()
    what = f"cannot read topic {args.topic!r}"
    try:
        partitions = _partitions(args, bootstrap)
        with Consumer(
            bootstrap.servers,
            auto_offset_reset="earliest",
            request_timeout_ms=args.request_timeout_ms,
        ) as consumer:
            what, count.started = f"reading topic {args.topic!r}", True
            tps = [(args.topic, p) for p in partitions]
            consumer.assign(tps)
            ends = _position_all(consumer, tps, consumer.seek_to_end)
            _seek_start(args, consumer, tps, ends)
            _print_records(args, consumer, tps, ends, out, count)
    except ZafkaError as err:
        _summary(count)
        return report(err, bootstrap, what)
    except _Failure:
        _summary(count)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _flush_quietly(out)
        _summary(count)
        return EXIT_OK if args.follow else EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `zafka consume t | head`: the reader has had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit flush does not fail
        return EXIT_OK
    _summary(count)
    return EXIT_OK


def _position_all(
    consumer: Consumer, tps: list[TopicPartition], seek: Callable[[list[TopicPartition]], None]
) -> dict[TopicPartition, int]:
    """Move `tps` with `seek` (seek_to_beginning or seek_to_end) and read where they are."""
    seek(tps)
    return {tp: consumer.position(tp) for tp in tps}


def _seek_start(
    args: argparse.Namespace,
    consumer: Consumer,
    tps: list[TopicPartition],
    ends: dict[TopicPartition, int],
) -> None:
    if args.offset is not None:
        starts = _position_all(consumer, tps, consumer.seek_to_beginning)
        for tp in tps:
            if not starts[tp] <= args.offset <= ends[tp]:
                fail(
                    f"offset {args.offset} is outside partition {tp[1]} of "
                    f"{tp[0]!r}, which holds offsets {starts[tp]}..{ends[tp]} "
                    f"({'empty' if starts[tp] == ends[tp] else f'{ends[tp]} is the next one'})"
                )
                raise _Failure
            consumer.seek(tp, args.offset)
    elif args.from_timestamp is not None:
        found = consumer.offsets_for_times({tp: args.from_timestamp for tp in tps})
        for tp in tps:
            at = found.get(tp)
            consumer.seek(tp, ends[tp] if at is None else at.offset)
    elif args.from_beginning or not args.follow:
        consumer.seek_to_beginning(tps)
    # else: --follow alone starts at the end, where seek_to_end left the positions


def _print_records(
    args: argparse.Namespace,
    consumer: Consumer,
    tps: list[TopicPartition],
    ends: dict[TopicPartition, int],
    out: BinaryIO,
    count: _Count,
) -> None:
    """Poll and print until done, counting in `count`. Ctrl-C ends it between two polls
    (raised as KeyboardInterrupt after the loop), never between printing and counting."""
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        _print_loop(args, consumer, tps, ends, out, count, interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt


def _print_loop(
    args: argparse.Namespace,
    consumer: Consumer,
    tps: list[TopicPartition],
    ends: dict[TopicPartition, int],
    out: BinaryIO,
    count: _Count,
    interrupted: threading.Event,
) -> None:
    # Without --follow: the partitions with records left below their end offset at start.
    pending = set() if args.follow else {tp for tp in tps if consumer.position(tp) < ends[tp]}
    idle_ms = args.timeout_ms or (None if args.follow else DEFAULT_IDLE_TIMEOUT_MS)
    limit = args.max_records
    last_record = clock.monotonic_s()
    while (args.follow or pending) and not interrupted.is_set():
        records = consumer.poll(POLL_MS)
        now = clock.monotonic_s()
        if records:
            last_record = now
        elif idle_ms is not None and (now - last_record) * 1000 >= idle_ms:
            if pending:
                left = ", ".join(f"{t}-{p} at {consumer.position((t, p))}" for t, p in pending)
                fail(
                    f"no record for {idle_ms} ms before the end offsets were "
                    f"reached ({left}); is the broker up? (--timeout-ms to wait longer)"
                )
                raise _Failure
            break
        lines = []
        for r in records:
            if not args.follow:
                tp = (r.topic, r.partition)
                if tp not in pending or r.offset >= ends[tp]:
                    continue
            line = format_record(r.timestamp, r.key, r.value, args.print_key, args.print_timestamp)
            lines.append(line)
            if limit is not None and count.printed + len(lines) >= limit:
                break
        out.write(b"".join(lines))
        out.flush()
        count.printed += len(lines)
        if limit is not None and count.printed >= limit:
            break
        if not args.follow:
            for tp in list(pending):
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
                    consumer.pause([tp])


def _summary(count: _Count) -> None:
    if count.started:
        print(f"consumed {count.printed} records", file=sys.stderr)


def _flush_quietly(out: BinaryIO) -> None:
    with contextlib.suppress(OSError):  # BrokenPipeError included
        out.flush()
