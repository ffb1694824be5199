"""How to schedule actors in one process: the measurement behind the runtime's design.

Two actors play ping-pong (a call, its reply, the next call) --rounds times, three ways:

  loop_rounds_per_s     zafka's Runtime: one thread, mailboxes drained by one loop
  threads_rounds_per_s  one thread per actor, handing messages over queue.Queue
  asyncio_rounds_per_s  one asyncio task per actor, handing over asyncio.Queue

and the ratios of the alternatives to the loop. Output: one `name=value` line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sys
import threading
import time
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zafka.actors.runtime.actor import Actor
from zafka.actors.runtime.loop import Runtime
from zafka.transport.control import Ping, Pong
from zafka.transport.envelope import Envelope


class Ponger(Actor):
    def on_ping(self, envelope: Envelope) -> Pong:
        return Pong(sent_ms=envelope.message.sent_ms)


class Pinger(Actor):
    def __init__(self, rounds: int, done: threading.Event) -> None:
        super().__init__("pinger")
        self.left, self.done = rounds, done

    def on_start(self) -> None:
        self.call("local/ponger", Ping(sent_ms=self.left), 5000, self._on_reply)

    def _on_reply(self, reply: object) -> None:
        self.left -= 1
        if self.left:
            self.call("local/ponger", Ping(sent_ms=self.left), 5000, self._on_reply)
        else:
            self.done.set()


def loop_rounds(rounds: int) -> float:
    runtime, done = Runtime("local"), threading.Event()
    runtime.spawn(lambda: Ponger("ponger"))
    runtime.spawn(lambda: Pinger(rounds, done))
    start = time.perf_counter()
    runtime.start()
    while not done.is_set():
        runtime.step()
    return rounds / (time.perf_counter() - start)


def threads_rounds(rounds: int) -> float:
    to_ponger: queue.Queue[Ping] = queue.Queue()
    to_pinger: queue.Queue[Pong] = queue.Queue()

    def ponger() -> None:
        for _ in range(rounds):
            to_pinger.put(Pong(sent_ms=to_ponger.get().sent_ms))

    thread = threading.Thread(target=ponger)
    start = time.perf_counter()
    thread.start()
    for i in range(rounds):
        to_ponger.put(Ping(sent_ms=i))
        to_pinger.get(timeout=5)
    thread.join()
    return rounds / (time.perf_counter() - start)


def asyncio_rounds(rounds: int) -> float:
    async def main() -> float:
        to_ponger: asyncio.Queue[Ping] = asyncio.Queue()
        to_pinger: asyncio.Queue[Pong] = asyncio.Queue()

        async def ponger() -> None:
            for _ in range(rounds):
                to_pinger.put_nowait(Pong(sent_ms=(await to_ponger.get()).sent_ms))

        start = time.perf_counter()
        task = asyncio.create_task(ponger())
        for i in range(rounds):
            to_ponger.put_nowait(Ping(sent_ms=i))
            await to_pinger.get()
        await task
        return rounds / (time.perf_counter() - start)

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50_000, help="ping-pong rounds per try")
    parser.add_argument("--reps", type=int, default=3, help="tries; the best counts")
    args = parser.parse_args(argv)
    best = {"loop": 0.0, "threads": 0.0, "asyncio": 0.0}
    for _ in range(args.reps):
        best["loop"] = max(best["loop"], loop_rounds(args.rounds))
        best["threads"] = max(best["threads"], threads_rounds(args.rounds))
        best["asyncio"] = max(best["asyncio"], asyncio_rounds(args.rounds))
    for name, value in best.items():
        print(f"{name}_rounds_per_s={value:.0f}")
    print(f"threads_over_loop={best['threads'] / best['loop']:.3f}")
    print(f"asyncio_over_loop={best['asyncio'] / best['loop']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
