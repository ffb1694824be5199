"""A fault-suite producer process: sends `f"{id}:{seq}"` records round-robin over the
topic's partitions at a steady rate with zafka's Producer (acks=all, idempotent), and logs
each outcome as a JSON line for tests/fault/checker.py. Stops after `--seconds`, or at
SIGTERM; what is still unanswered then is left unknown.

    python -m tests.fault.producer --bootstrap 127.0.0.1:PORT --topic T --partitions 3 \
        --id p1 --rate 200 --seconds 20 --log p1.jsonl
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from zafka.clients.producer import Producer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    with open(args.log, "w", buffering=1) as log:

        def write(event: dict) -> None:
            with lock:
                log.write(json.dumps(event) + "\n")

        def outcome(seq: int):
            def done(future) -> None:
                error = future.exception(0)
                base = {"producer": args.id, "seq": seq, "t": time.time()}
                if error is None:
                    meta = future.result(0)
                    write(
                        base | {"kind": "acked", "partition": meta.partition, "offset": meta.offset}
                    )
                else:
                    write(base | {"kind": "failed", "error": error.error.name})

            return done

        producer = Producer(
            args.bootstrap,
            acks="all",
            linger_ms=1,
            delivery_timeout_ms=60_000,
            request_timeout_ms=5_000,
        )
        start, seq = time.monotonic(), 0
        while not stop.is_set() and time.monotonic() - start < args.seconds:
            value = f"{args.id}:{seq}".encode()
            write({"kind": "sent", "producer": args.id, "seq": seq, "t": time.time()})
            future = producer.send(args.topic, value, partition=seq % args.partitions)
            future.add_done_callback(outcome(seq))
            seq += 1
            stop.wait(max(start + seq / args.rate - time.monotonic(), 0))
        producer.close(timeout=30 if not stop.is_set() else 2)


if __name__ == "__main__":
    main()
