"""The actor runtime over ZeroMQ against raw pyzmq: two processes on 127.0.0.1, same run.

  call_rtt_p50_ms, call_rtt_p99_ms  sequential small calls (Ping -> Pong) actor to actor,
                                    through both runtimes, codec and ZmqTransport
  rtt_overhead_p50   runtime call p50 over a raw DEALER -> ROUTER echo p50
  small_msgs_ratio   one-way casts of 100-byte payloads per second, runtime over raw pyzmq
  payload_ratio      one-way 64 KiB payload frames, MB/s, runtime over raw pyzmq

RTTs are pooled over --reps alternating rounds; one-way figures are the best of --reps
tries. The server side runs in a child process (`--serve runtime|raw`), started and
stopped here.
Every loop is bounded in count and time. Output: one `name=value` line per figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zafka.actors.runtime.actor import Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.transport.client import ProduceRequest
from zafka.transport.control import Ping, Pong
from zafka.transport.envelope import Envelope
from zafka.transport.zmq_transport import ZmqTransport

COUNT_QUERY = -1  # Ping(sent_ms=-1) asks the sink how many casts it has seen
DEADLINE_S = 120.0  # no phase may take longer


class Sink(Actor):
    """The server actor: answers pings, counts casts."""

    def __init__(self) -> None:
        super().__init__("sink")
        self.received = 0

    def on_ping(self, envelope: Envelope) -> Pong:
        sent = envelope.message.sent_ms
        return Pong(sent_ms=self.received if sent == COUNT_QUERY else sent)

    def on_produce_request(self, envelope: Envelope) -> None:
        self.received += 1

    HANDLERS = handlers({ProduceRequest: on_produce_request})


def serve_runtime() -> None:
    transport = ZmqTransport("server")
    runtime = Runtime("server", transport)
    runtime.spawn(Sink)
    print(transport.bind("tcp://127.0.0.1:0"), flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    runtime.run(stop)


def serve_raw() -> None:
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.bind("tcp://127.0.0.1:0")
    print(router.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    received = 0
    while not stop.is_set():
        if not router.poll(100):
            continue
        identity, kind, *rest = router.recv_multipart(copy=False)
        if kind.bytes == b"data":
            received += 1
        elif kind.bytes == b"count":
            router.send_multipart([identity, str(received).encode()])
        else:
            router.send_multipart([identity, kind, *rest])


class Driver(Actor):
    """The client actor: sequential calls, each sent when the previous reply arrives."""

    def __init__(self, calls: int, done: threading.Event, name: str) -> None:
        super().__init__(name)
        self.remaining = calls
        self.latencies_ms: list[float] = []
        self.done = done
        self._sent_at = 0.0

    def on_start(self) -> None:
        self._next()

    def _next(self) -> None:
        self._sent_at = time.perf_counter()
        self.call("server/sink", Ping(sent_ms=1), 5000, self._on_reply)

    def _on_reply(self, reply: object) -> None:
        assert isinstance(reply, Envelope), reply
        self.latencies_ms.append((time.perf_counter() - self._sent_at) * 1000)
        self.remaining -= 1
        if self.remaining:
            self._next()
        else:
            self.done.set()


def runtime_client(endpoint: str) -> tuple[Runtime, ZmqTransport]:
    transport = ZmqTransport("client")
    transport.connect("server", endpoint)
    return Runtime("client", transport), transport


class RttClient:
    """One client runtime kept across rounds, driven like Runtime.run drives it."""

    def __init__(self, endpoint: str) -> None:
        self.runtime, self.transport = runtime_client(endpoint)
        self.runtime.start()
        self.rounds = 0

    def measure(self, calls: int) -> list[float]:
        done = threading.Event()
        self.rounds += 1
        driver = self.runtime.spawn(lambda: Driver(calls, done, f"driver-{self.rounds}"))
        deadline = time.monotonic() + DEADLINE_S
        while not done.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("runtime calls did not finish")
            if not self.runtime.step():
                self.transport.wait(10)
        return driver.latencies_ms

    def close(self) -> None:
        self.runtime.stop()


def raw_rtts(endpoint: str, calls: int) -> list[float]:
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.connect(endpoint)
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        dealer.send_multipart([b"ping", b"x" * 16])
        if not dealer.poll(5000):
            raise TimeoutError("raw echo did not answer")
        dealer.recv_multipart()
        out.append((time.perf_counter() - start) * 1000)
    dealer.close(linger=0)
    return out


def _wait_until_seen(runtime: Runtime, transport: ZmqTransport, count: int) -> None:
    """Ask the sink until it has seen `count` casts (bounded by DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    prober = runtime.spawn(lambda: Actor("prober"))
    seen = 0
    while seen < count:
        replies: list[object] = []
        prober.call("server/sink", Ping(sent_ms=COUNT_QUERY), 5000, replies.append)
        while not replies:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink saw {seen} of {count} casts")
            if not runtime.step():
                transport.wait(10)
        if isinstance(replies[0], Envelope):
            seen = replies[0].message.sent_ms


def runtime_one_way(endpoint: str, count: int, payload: bytes) -> float:
    """Seconds to cast `count` ProduceRequests carrying `payload` and have them all seen."""
    runtime, transport = runtime_client(endpoint)
    runtime.start()
    message = ProduceRequest(topic="t", partition=0, acks=0, timeout_ms=0, batch=payload)
    envelope = Envelope("client/driver", "server/sink", message)
    start = time.perf_counter()
    for _ in range(count):
        while not runtime.send(envelope):  # the peer's queue is full: let it drain
            time.sleep(0)
    _wait_until_seen(runtime, transport, count)
    elapsed = time.perf_counter() - start
    runtime.stop()
    return elapsed


def raw_one_way(endpoint: str, count: int, payload: bytes) -> float:
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.connect(endpoint)
    start = time.perf_counter()
    for _ in range(count):
        dealer.send_multipart([b"data", payload], copy=len(payload) < 65536)
    while True:
        dealer.send_multipart([b"count"])
        if not dealer.poll(5000):
            raise TimeoutError("raw sink did not answer")
        if int(dealer.recv_multipart()[0]) >= count:
            break
        if time.perf_counter() - start > DEADLINE_S:
            raise TimeoutError("raw sink did not see every message")
    elapsed = time.perf_counter() - start
    dealer.close(linger=0)
    return elapsed


def start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="sequential calls for RTT")
    parser.add_argument("--small", type=int, default=200_000, help="one-way 100-byte casts")
    parser.add_argument("--large", type=int, default=5000, help="one-way 64 KiB casts")
    parser.add_argument("--reps", type=int, default=5, help="rounds; one-way: the best counts")
    parser.add_argument("--serve", choices=("runtime", "raw"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        (serve_runtime if args.serve == "runtime" else serve_raw)()
        return 0
    small, large = b"s" * 100, b"L" * 65536
    figures: dict[str, float] = {}
    raw, raw_endpoint = start_server("raw")
    rt, rt_endpoint = start_server("runtime")
    try:
        raw_lat: list[float] = []
        rt_lat: list[float] = []
        client = RttClient(rt_endpoint)
        client.measure(500)  # warm up
        raw_rtts(raw_endpoint, 500)
        for _ in range(args.reps):  # alternate, so a noisy moment hits both sides
            raw_lat += raw_rtts(raw_endpoint, args.calls // args.reps)
            rt_lat += client.measure(args.calls // args.reps)
        client.close()
        best = dict.fromkeys(("raw_small", "rt_small", "raw_large", "rt_large"), float("inf"))
        for _ in range(args.reps):  # sides interleaved, so load on the machine hits both
            best["raw_small"] = min(best["raw_small"], raw_one_way(raw_endpoint, args.small, small))
            best["rt_small"] = min(
                best["rt_small"], runtime_one_way(rt_endpoint, args.small, small)
            )
            best["raw_large"] = min(best["raw_large"], raw_one_way(raw_endpoint, args.large, large))
            best["rt_large"] = min(
                best["rt_large"], runtime_one_way(rt_endpoint, args.large, large)
            )
        raw_small, rt_small = best["raw_small"], best["rt_small"]
        raw_large, rt_large = best["raw_large"], best["rt_large"]
    finally:
        stop_server(raw)
        stop_server(rt)
    figures["call_rtt_p50_ms"] = statistics.median(rt_lat)
    figures["call_rtt_p99_ms"] = p99(rt_lat)
    figures["raw_rtt_p50_ms"] = statistics.median(raw_lat)
    figures["raw_rtt_p99_ms"] = p99(raw_lat)
    figures["rtt_overhead_p50"] = figures["call_rtt_p50_ms"] / figures["raw_rtt_p50_ms"]
    figures["small_msgs_per_s"] = args.small / rt_small
    figures["raw_small_msgs_per_s"] = args.small / raw_small
    figures["small_msgs_ratio"] = raw_small / rt_small
    figures["payload_mb_per_s"] = args.large * len(large) / rt_large / 1e6
    figures["raw_payload_mb_per_s"] = args.large * len(large) / raw_large / 1e6
    figures["payload_ratio"] = raw_large / rt_large
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if value < 1000 else f"{name}={value:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
