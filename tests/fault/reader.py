"""A fault-suite reader process: every record of every partition of a topic, from its start
to its end (the high watermark when it starts), one JSON line each, for
tests/fault/checker.py. Exits 1 if it could not read to the end within `--seconds`.

    python -m tests.fault.reader --bootstrap 127.0.0.1:PORT --topic T --partitions 3 --out F
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from zafka.clients.consumer import Consumer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    partitions = [(args.topic, p) for p in range(args.partitions)]
    deadline = time.monotonic() + args.seconds
    with Consumer(args.bootstrap) as consumer, open(args.out, "w") as out:
        consumer.assign(partitions)
        consumer.seek_to_end()
        ends = {tp: consumer.position(tp) for tp in partitions}
        consumer.seek_to_beginning()
        left = {tp for tp in partitions if ends[tp] > 0}
        while left and time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=200):
                tp = (record.topic, record.partition)
                if record.offset < ends[tp]:
                    line = {"partition": record.partition, "offset": record.offset}
                    out.write(json.dumps(line | {"value": record.value.decode()}) + "\n")
                if record.offset >= ends[tp] - 1:
                    left.discard(tp)
        print(json.dumps({"ends": {str(p): ends[(t, p)] for t, p in partitions}}))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
