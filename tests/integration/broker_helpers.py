"""Helpers for tests against a real broker process: start and stop one, and a raw ZeroMQ
client that speaks the codec (calls, casts, hand-made frames). Every wait is bounded."""

from __future__ import annotations

import contextlib
import itertools
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from zafka.errors import BY_NAME
from zafka.storage.batch import build_batch, parse_header
from zafka.storage.records import read_records
from zafka.transport import codec
from zafka.transport.admin import CreateTopicsRequest, CreateTopicsResponse, NewTopic
from zafka.transport.client import FetchRequest, FetchResponse, ProduceRequest, ProduceResponse
from zafka.transport.envelope import Envelope
from zafka.transport.zmq_transport import ZmqTransport

BROKER_ID = 7
NODE = f"broker-{BROKER_ID}"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
REPLY_TIMEOUT_S = 10.0
SESSION_TIMEOUT_MS = 2000  # the test ZooKeeper allows 0.4-4 s
REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 120.0


def zafka(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `zafka` command line as a user would, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "zafka.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        env=env,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout_s: float) -> bool:
    """Check `predicate` every 50 ms until it holds; False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def code(name: str) -> int:
    return BY_NAME[name].code


class BrokerProcess:
    """One `zafka broker` subprocess: stdout is read for the ready line, stderr to a file."""

    def __init__(
        self,
        zk_hosts: str,
        data_dir: Path,
        log_path: Path,
        port: int,
        broker_id: int = BROKER_ID,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.broker_id = broker_id
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.args = [
            sys.executable,
            "-m",
            "zafka.cli",
            "broker",
            "--id",
            str(broker_id),
            "--zookeeper",
            zk_hosts,
            "--listen",
            self.endpoint,
            "--data-dir",
            str(data_dir),
            "--zk-session-timeout-ms",
            str(SESSION_TIMEOUT_MS),
            *extra_args,
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True
            )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        try:
            line = lines.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            line = ""
        expected = f"broker {self.broker_id} ready at {self.endpoint}"
        ready = line.strip() == expected or line.startswith(expected + " (kafka ")
        assert ready, f"no ready line ({line!r}); log:\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def brokers_running(
    zk_hosts: str,
    tmp_path: Path,
    ids: tuple[int, ...] = (1, 2),
    extra_args: tuple[str, ...] = (),
    racks: dict[int, str] | None = None,
) -> Iterator[dict[int, BrokerProcess]]:
    """Broker processes `ids` (each with its own data directory and log under `tmp_path`,
    and `--rack` if `racks` names one), started in order and killed at the end, pass or
    fail."""
    brokers = {}
    for b in ids:
        data_dir, log_path = tmp_path / f"data-{b}", tmp_path / f"broker-{b}.log"
        rack = ("--rack", racks[b]) if racks and b in racks else ()
        brokers[b] = BrokerProcess(zk_hosts, data_dir, log_path, free_port(), b, extra_args + rack)
    try:
        for broker in brokers.values():
            broker.start()
        yield brokers
    finally:
        for broker in brokers.values():
            broker.kill()


class RawClient:
    """A ZmqTransport and the codec. `call` = `send` + `receive`; replies to other calls
    that arrive meanwhile are kept for their own `receive`."""

    def __init__(self, endpoint: str, broker_node: str = NODE) -> None:
        self.node = f"client-{uuid.uuid4().hex[:8]}"
        self.broker_node = broker_node
        self.transport = ZmqTransport(self.node)
        self.transport.connect(broker_node, endpoint)
        self._ids = itertools.count(1)
        self._replies: dict[int, object] = {}
        self.casts: list[Envelope] = []  # what came in that was no reply (e.g. to `peer`)

    def send(self, actor: str, message: object, cast: bool = False) -> int:
        """Send a call (or a cast); returns its correlation id (0 for a cast)."""
        correlation_id = 0 if cast else next(self._ids)
        target = f"{self.broker_node}/{actor}"
        envelope = Envelope(f"{self.node}/c", target, message, correlation_id)
        self.send_frames(codec.encode(envelope))
        return correlation_id

    def send_frames(self, frames: list[bytes]) -> None:
        """Send hand-made frames as they are."""
        assert self.transport.send(self.broker_node, frames)

    def receive(self, correlation_id: int, timeout_s: float = REPLY_TIMEOUT_S) -> object:
        """The reply to call `correlation_id` (its message), waiting at most `timeout_s`."""
        if not self.wait_for(lambda: correlation_id in self._replies, timeout_s):
            raise AssertionError(f"no reply to call {correlation_id} within {timeout_s}s")
        return self._replies.pop(correlation_id)

    def wait_for(self, predicate, timeout_s: float = REPLY_TIMEOUT_S) -> bool:
        """Take what arrives until `predicate()` holds; False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._take_arrived()
            if predicate():
                return True
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return False
            self.transport.wait(min(remaining_ms, 100))

    def replied(self, correlation_id: int) -> bool:
        """Whether call `correlation_id`'s reply is here (takes what arrived; no wait)."""
        return self.wait_for(lambda: correlation_id in self._replies, timeout_s=0)

    def _take_arrived(self) -> None:
        item = self.transport.recv()
        while item is not None:
            envelope = codec.decode(item[1])
            if envelope.reply:
                self._replies[envelope.correlation_id] = envelope.message
            else:
                self.casts.append(envelope)
            item = self.transport.recv()

    def call(self, actor: str, message: object, timeout_s: float = REPLY_TIMEOUT_S) -> object:
        return self.receive(self.send(actor, message), timeout_s)

    def close(self) -> None:
        self.transport.close()


def create(client: RawClient, name: str, partitions: int = 2, configs=None) -> CreateTopicsResponse:
    topic = NewTopic(name, partitions, 1, dict(configs or {}))
    return client.call("broker", CreateTopicsRequest((topic,)))


def produce(
    client: RawClient,
    topic: str,
    partition: int,
    values: list[bytes],
    timeout_s: float = REPLY_TIMEOUT_S,
    acks: int = 1,
) -> int:
    batch = build_batch([(1000 + i, None, v, None) for i, v in enumerate(values)])
    request = ProduceRequest(topic, partition, acks, 5000, batch)
    reply = client.call(f"{topic}-{partition}", request, timeout_s)
    assert isinstance(reply, ProduceResponse), reply
    return reply.base_offset


def fetch_values(client: RawClient, topic: str, partition: int) -> list[bytes | None]:
    reply = client.call(f"{topic}-{partition}", FetchRequest(topic, partition, 0, 1 << 20, 0, 0))
    assert isinstance(reply, FetchResponse), reply
    data, position, values = bytes(reply.records), 0, []
    while position < len(data):  # whole batches, one after another
        size = parse_header(data, position).size
        values += [r.value for r in read_records(data[position : position + size])]
        position += size
    return values
