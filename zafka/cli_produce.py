"""`zafka produce TOPIC`: one record per input line, from stdin or a file, with a `Producer`.

A line's bytes become the record's value (its newline, `\\n` or `\\r\\n`, removed); with
`--key-separator SEP` the part before the first SEP is the key. Every record gets the
`--header`s. Reading a file shows a progress bar (on a terminal, or with `--progress`).
The command ends once every record is delivered (acks 1 or all) or sent (acks 0), or at the
first record that fails, and prints what it did to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO

from zafka.cli_common import (
    EXIT_CODES_EPILOG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Bootstrap,
    HelpFormatter,
    add_acks_argument,
    add_connection_arguments,
    add_progress_argument,
    fail,
    key_value,
    non_negative_int,
    report,
    resolve_bootstrap,
    show_progress,
)
from zafka.clients.delivery import RecordFuture
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError

EXAMPLES = """examples:
  seq 1 1000 | zafka produce numbers
  zafka produce orders --file orders.txt --key-separator :
  zafka produce orders --header source=cli --partition 0 --acks 1"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `produce` subcommand to `commands` (the `zafka` parser's subparsers)."""
    produce = commands.add_parser(
        "produce",
        help="send lines from stdin or a file as records",
        description="Send one record per line of stdin (or of --file) to TOPIC. The line is "
        "the value; with --key-separator the part before the first separator is the key. "
        "Ends when every record is delivered, or at the first one that fails.",
        epilog=f"{EXAMPLES}\n{EXIT_CODES_EPILOG}",
        formatter_class=HelpFormatter,
    )
    produce.add_argument("topic", metavar="TOPIC", help="the topic to send to")
    produce.add_argument(
        "--file", metavar="FILE", help="read lines from FILE instead of stdin (with a progress bar)"
    )
    produce.add_argument(
        "--key-separator",
        type=_separator,
        metavar="SEP",
        help="split each line at the first SEP into key and value; a line without SEP is an error",
    )
    produce.add_argument(
        "--header",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a header on every record, repeatable",
    )
    produce.add_argument(
        "--partition",
        type=non_negative_int,
        metavar="P",
        help="send every record to partition P (default: by key; records without a key "
        "stick to one partition per batch)",
    )
    add_acks_argument(produce)
    add_progress_argument(produce, "while reading --file")
    add_connection_arguments(produce)
    produce.set_defaults(func=_produce)


def _separator(text: str) -> bytes:
    if not text:
        raise argparse.ArgumentTypeError("the key separator cannot be empty")
    return text.encode()


# --- pure helpers ---------------------------------------------------------------------------


def strip_newline(line: bytes) -> bytes:
    """`line` without its trailing `\\n` or `\\r\\n` (the last line may have none)."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


class MissingSeparator(ValueError):
    """A line has no key separator."""


def split_line(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    """(key, value) of one line without its newline: key None without a separator; with
    one, the part before its first occurrence (MissingSeparator if there is none)."""
    if separator is None:
        return None, line
    key, found, value = line.partition(separator)
    if not found:
        raise MissingSeparator(line)
    return key, value


class Tally:
    """Delivery outcomes, counted on the producer's I/O thread, read by the main thread."""

    def __init__(self) -> None:
        self.delivered = 0
        self.error: ZafkaError | None = None
        self._lock = threading.Lock()

    def done(self, future: RecordFuture) -> None:
        error = future.exception(0)
        with self._lock:
            if error is None:
                self.delivered += 1
            elif self.error is None:
                self.error = error


# --- the command ----------------------------------------------------------------------------


def _lines(source: BinaryIO, progress: object | None) -> Iterator[bytes]:
    if progress is None:
        yield from source
        return
    for raw in source:
        progress.update(len(raw))  # type: ignore[attr-defined]
        yield raw


def _progress_bar(args: argparse.Namespace, source: BinaryIO, stack: ExitStack) -> object | None:
    if args.file is None or not show_progress(args):
        return None
    from tqdm import tqdm

    total = os.fstat(source.fileno()).st_size
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=args.topic, file=sys.stderr)
    stack.callback(bar.close)
    return bar


def _produce(args: argparse.Namespace) -> int:
    bootstrap = resolve_bootstrap(args)
    headers = [(k, v.encode()) for k, v in args.header] or None
    tally = Tally()
    sent = 0
    failure: ZafkaError | None = None
    with ExitStack() as stack:  # closing the producer delivers what is buffered
        try:
            source = stack.enter_context(open(args.file, "rb")) if args.file else sys.stdin.buffer
        except OSError as err:
            return fail(f"cannot read {args.file}: {err.strerror}")
        try:
            producer = Producer(
                bootstrap.servers,
                acks=args.acks,
                enable_idempotence=args.acks != "0",
                request_timeout_ms=args.request_timeout_ms,
                max_block_ms=args.request_timeout_ms,
            )
        except ZafkaError as err:
            return report(err, bootstrap)
        stack.callback(producer.close)
        bar = _progress_bar(args, source, stack)
        if args.file is None and sys.stdin.isatty():
            print("reading records from stdin, one per line; end with Ctrl-D", file=sys.stderr)
        try:
            for number, raw in enumerate(_lines(source, bar), 1):
                if tally.error is not None:
                    break
                try:
                    key, value = split_line(strip_newline(raw), args.key_separator)
                except MissingSeparator:
                    sep = args.key_separator.decode(errors="backslashreplace")
                    return fail(
                        f"line {number} has no key separator {sep!r}; "
                        f"stopped there (the {sent} records before it are sent)"
                    )
                future = producer.send(
                    args.topic, value, key=key, headers=headers, partition=args.partition
                )
                future.add_done_callback(tally.done)
                sent += 1
        except ZafkaError as err:
            failure = err
        except KeyboardInterrupt:
            print(f"interrupted after {sent} records; delivering them", file=sys.stderr)
            return EXIT_INTERRUPTED
    failure = failure or tally.error
    if failure is not None:
        return _failed(failure, bootstrap, args.topic, sent, tally)
    if args.acks == "0":
        print(f"sent {sent} records to {args.topic} (acks=0: not confirmed)", file=sys.stderr)
    else:
        print(f"produced {tally.delivered} records to {args.topic}", file=sys.stderr)
    return EXIT_OK


def _failed(error: ZafkaError, bootstrap: Bootstrap, topic: str, sent: int, tally: Tally) -> int:
    what = f"producing to {topic!r}"
    if sent:
        what += f" ({tally.delivered} of {sent} records delivered)"
    status = report(error, bootstrap, what)
    if error.error.name == "UNKNOWN_TOPIC_OR_PARTITION":
        print(f"  to create it: zafka topics create {topic}", file=sys.stderr)
    return status
