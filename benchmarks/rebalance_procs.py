"""The processes of benchmarks/rebalance_bench.py: a consumer-group member, and the producer
of the steady stream. Each reports as JSON lines on stdout and takes commands, one per line,
on stdin (stdin closing counts as `close`).

    python benchmarks/rebalance_procs.py member BOOTSTRAP GROUP TOPIC SESSION_MS
    python benchmarks/rebalance_procs.py produce BOOTSTRAP TOPIC PARTITIONS RATE

**member**: starts (imports and all), reports `ready`, and joins only on the `join` command,
so that the start-up's CPU burst is over before the join is timed. Then it polls in a loop (a
Consumer at its defaults, auto-commit on, auto_offset_reset earliest) until `close` (the
consumer closes, leaving the group, and the process exits 0). It reports:

    {"e": "ready", "t": T}
    {"e": "joining", "t": T}                     just before Consumer(group_id=...) (the join)
    {"e": "assigned" | "revoked" | "lost", "t": T, "parts": [p, ...]}   (the callbacks)
    {"e": "poll", "t": T, "parts": {"p": [count, first_offset, last_offset, min_sent, max_sent]}}
    {"e": "member", "t": T, "epoch": n, "target": [p, ...]}
    {"e": "error", "t": T, "error": "..."}
    {"e": "closed", "t": T}

A `poll` line summarises, per partition, the records one poll() handed out; `t` is when
poll() returned. A `member` line says that the member epoch or the target assignment (what
the coordinator's last JoinGroup/Heartbeat answer told the member to own) changed: a thread
samples them every WATCH_S from the Consumer's Membership (clients/membership.py, read under
the Consumer's lock; for diagnosis only: when the news reached the member, as against when
its callbacks ran).

**produce**: a Producer (acks=1) sends RATE records/s, record i to partition i % PARTITIONS,
100-byte values with the send time (time.monotonic_ns) in their first 8 bytes, until `close`;
then it flushes and reports `{"e": "done", "t": T, "sent": n, "errors": n, "error": "..."}`.
It runs apart from the bench so that nothing else in a process paces it.

Times are `time.monotonic()`: CLOCK_MONOTONIC is one clock for every process of the machine,
so the bench orders events across processes.
"""

from __future__ import annotations

import json
import queue
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zafka import benchstats
from zafka.benchrun import Outcomes, bounded_flush
from zafka.clients.consumer import Consumer
from zafka.clients.producer import Producer
from zafka.errors import ZafkaError

WATCH_S = 0.005
POLL_MS = 100  # poll() returns as soon as records are there; this only bounds an idle wait
VALUE_BYTES = 100
FLUSH_TIMEOUT_S = 10.0
SEND_TIME = struct.Struct("<q")
_out = threading.Lock()  # two threads report: whole lines


def report(event: str, t: float | None = None, **fields: object) -> None:
    fields = {"e": event, "t": time.monotonic() if t is None else t, **fields}
    line = json.dumps(fields, separators=(",", ":")) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def command_queue() -> queue.Queue[str]:
    """The commands from stdin; `close` once stdin closes (the bench is gone)."""
    commands: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("close")

    threading.Thread(target=read, daemon=True).start()
    return commands


# --- member -----------------------------------------------------------------------------------


def summary(records: list) -> dict[str, list[int]]:
    """Per partition: [count, first offset, last offset, min sent ns, max sent ns]."""
    unpack = SEND_TIME.unpack_from
    parts: dict[str, list[int]] = {}
    for r in records:
        sent = unpack(r.value)[0]
        row = parts.get(str(r.partition))
        if row is None:
            parts[str(r.partition)] = [1, r.offset, r.offset, sent, sent]
        else:
            row[0] += 1
            row[2] = r.offset
            row[3] = min(row[3], sent)
            row[4] = max(row[4], sent)
    return parts


def callback(kind: str):
    def run(partitions: set) -> None:
        report(kind, parts=sorted(tp.partition for tp in partitions))

    return run


def watch(consumer: Consumer, stopping: threading.Event) -> None:
    """Report every change of the member epoch or target (see the module docstring)."""
    last = None
    while not stopping.wait(WATCH_S):
        try:
            with consumer._cond:  # diagnosis only: the Consumer's private Membership
                membership = consumer._group.membership
                now = (membership.epoch, membership.target)
        except AttributeError:  # the Consumer's insides changed: no `member` lines
            return
        if now != last:
            last = now
            report("member", epoch=now[0], target=sorted(tp.partition for tp in now[1]))


def member(bootstrap: str, group: str, topic: str, session_ms: str) -> int:
    commands = command_queue()
    report("ready")
    while (command := commands.get()) not in ("join", "close"):
        pass
    if command == "close":
        report("closed")
        return 0
    report("joining")
    consumer = Consumer(
        bootstrap,
        group_id=group,
        topics=[topic],
        session_timeout_ms=int(session_ms),
        auto_offset_reset="earliest",
        on_partitions_assigned=callback("assigned"),
        on_partitions_revoked=callback("revoked"),
        on_partitions_lost=callback("lost"),
    )
    stopping = threading.Event()
    threading.Thread(target=watch, args=(consumer, stopping), daemon=True).start()
    try:
        while True:
            try:
                if commands.get_nowait() == "close":
                    break
            except queue.Empty:
                pass
            records = consumer.poll(POLL_MS)
            t = time.monotonic()
            if records:
                report("poll", t, parts=summary(records))
    except ZafkaError as err:
        report("error", error=str(err))
        return 1
    finally:
        stopping.set()
        consumer.close()
        report("closed")
    return 0


# --- produce ----------------------------------------------------------------------------------


@dataclass
class Counts:
    errors: int = 0
    first_error: ZafkaError | None = None


def produce(bootstrap: str, topic: str, partitions: str, rate: str) -> int:
    commands = command_queue()
    count, out = int(partitions), Counts()
    outcomes = Outcomes(out)
    filler = bytes(VALUE_BYTES - SEND_TIME.size)
    with Producer(bootstrap, acks=1) as producer:
        report("ready")
        send, pacer, i = producer.send, benchstats.Pacer(float(rate)), 0
        while commands.empty():
            pacer.wait(i)
            value = SEND_TIME.pack(time.monotonic_ns()) + filler
            outcomes.add([send(topic, value, partition=i % count)])
            i += 1
        outcomes.finish(bounded_flush(producer, FLUSH_TIMEOUT_S))
    report("done", sent=i, errors=out.errors, error=str(out.first_error or ""))
    return 0


def main() -> int:
    role, *args = sys.argv[1:]
    return {"member": member, "produce": produce}[role](*args)


if __name__ == "__main__":
    sys.exit(main())
