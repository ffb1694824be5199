"""One consumer-group member as a process of its own, for tests/integration/clients/
test_consumer_group.py. It joins the group, polls, "processes" the records (reports them) and
commits after processing (auto-commit off), reporting every step as one JSON line on stdout:

    {"event": "started", "pid": ..., "t": ...}
    {"event": "assigned" | "revoked" | "lost", "partitions": [p, ...], "member": id,
     "epoch": n, "t": monotonic seconds}           (from the rebalance callbacks)
    {"event": "records", "records": [[p, offset, value], ...], "t": ...}
    {"event": "committed", "offsets": {p: offset}, "t": ...}
    {"event": "commit_failed", "error": NAME, "t": ...}
    {"event": "holding", "offsets": {p: offset}, "t": ...}
    {"event": "closed", "t": ...}

Times are `time.monotonic()`, which is one clock for every process of the machine (Linux
CLOCK_MONOTONIC), so the test can order events across processes.

Commands, one per line on stdin: `hold` (after the next poll that returns records, stop and
report `holding`: the records are not committed until `commit` comes), `commit` (commit what is
held), `close` (close the consumer: it leaves the group; then exit 0).

    python -m tests.integration.clients.group_member_proc BOOTSTRAP GROUP TOPIC SESSION_MS
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable

from zafka.clients.consumer import CommitFailedError, Consumer
from zafka.errors import ZafkaError

POLL_MS = 50


def report(event: str, **fields: object) -> None:
    fields |= {"event": event, "t": time.monotonic()}
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> int:
    bootstrap, group, topic, session_ms = sys.argv[1:5]
    commands: queue.Queue[str] = queue.Queue()

    def read_commands() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("close")  # stdin closed: the test is gone

    threading.Thread(target=read_commands, daemon=True).start()
    consumer: Consumer

    def callback(kind: str) -> Callable[[set], None]:
        def run(partitions: set) -> None:
            meta = consumer.group_metadata()
            assert meta is not None
            report(
                kind,
                partitions=sorted(tp.partition for tp in partitions),
                member=meta.member_id,
                epoch=meta.member_epoch,
            )

        return run

    consumer = Consumer(
        bootstrap,
        group_id=group,
        topics=[topic],
        session_timeout_ms=int(session_ms),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=5_000,
        on_partitions_assigned=callback("assigned"),
        on_partitions_revoked=callback("revoked"),
        on_partitions_lost=callback("lost"),
    )
    report("started", member=consumer.member_id)
    hold = False
    while True:
        try:
            command = commands.get_nowait()
        except queue.Empty:
            command = ""
        if command == "close":
            break
        hold = hold or command == "hold"
        records = consumer.poll(POLL_MS)
        if not records:
            continue
        report("records", records=[[r.partition, r.offset, r.value.decode()] for r in records])
        offsets: dict = {}
        for r in records:
            offsets[(r.topic, r.partition)] = r.offset + 1
        if hold:
            report("holding", offsets={tp[1]: o for tp, o in offsets.items()})
            while (command := commands.get()) not in ("commit", "close"):
                pass
            hold = False
            if command == "close":
                break
        try:
            consumer.commit(offsets)
        except CommitFailedError as err:
            report("commit_failed", error=err.error.name, detail=err.detail)
            continue
        except ZafkaError as err:
            report("commit_failed", error=err.error.name, detail=err.detail)
            continue
        report("committed", offsets={tp[1]: o for tp, o in offsets.items()})
    consumer.close()
    report("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
