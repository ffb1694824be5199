"""A fault-suite consumer group member process: reads its share of a topic in group
`--group`, logs every record it gets as a JSON line (`{"partition", "offset", "t"}`) and
commits after each poll. Runs until `--seconds` have passed or SIGTERM.

    python -m tests.fault.member --bootstrap 127.0.0.1:PORT --topic T --group G --log F
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from zafka.clients.consumer import Consumer
from zafka.errors import ZafkaError


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--topic", "--group", "--log"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = Consumer(
        args.bootstrap,
        group_id=args.group,
        topics=[args.topic],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_timeout_ms,
    )
    deadline = time.monotonic() + args.seconds
    with open(args.log, "w", buffering=1) as log:
        while not stop.is_set() and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=200)
            for r in records:
                log.write(json.dumps({"partition": r.partition, "offset": r.offset}) + "\n")
            if records:
                try:
                    consumer.commit()
                except ZafkaError as err:  # fenced or rebalanced meanwhile: read again
                    log.write(json.dumps({"commit_failed": err.error.name}) + "\n")
    consumer.close()


if __name__ == "__main__":
    main()
