"""Bad input against a real runtime over real ZeroMQ: every bad message gets exactly one
ErrorReply with a code from the table (an over-size frame gets its peer disconnected), and
the runtime keeps serving a good peer. No ZooKeeper needed."""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterator

import msgpack
import pytest
import zmq

from zafka.actors.runtime.actor import Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.errors import BY_CODE
from zafka.transport import codec
from zafka.transport.client import ProduceRequest
from zafka.transport.control import ErrorReply, Ping, Pong
from zafka.transport.envelope import Envelope
from zafka.transport.zmq_transport import ZmqTransport

FRAME_BYTES_MAX = 256 * 1024
REPLY_WAIT_MS = 5000
SILENCE_MS = 200  # after the one reply, nothing more may come within this


class Echo(Actor):
    def __init__(self) -> None:
        super().__init__("echo")

    def on_produce_request(self, envelope: Envelope) -> Pong:
        return Pong(sent_ms=len(envelope.message.batch))

    HANDLERS = handlers({ProduceRequest: on_produce_request})


@pytest.fixture
def server() -> Iterator[tuple[Runtime, str]]:
    transport = ZmqTransport("server", frame_bytes_max=FRAME_BYTES_MAX)
    runtime = Runtime("server", transport)
    runtime.spawn(Echo)
    endpoint = transport.bind("tcp://127.0.0.1:0")
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop, 20), daemon=True)
    thread.start()
    yield runtime, endpoint
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the runtime did not stop"


def peer(endpoint: str, name: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, name.encode())
    sock.connect(endpoint)
    return sock


def receive(sock: zmq.Socket, wait_ms: int = REPLY_WAIT_MS) -> Envelope | None:
    if not sock.poll(wait_ms):
        return None
    return codec.decode(sock.recv_multipart())


def ping(sock: zmq.Socket, name: str, correlation_id: int) -> list[bytes]:
    env = Envelope(f"{name}/a", "server/echo", Ping(sent_ms=correlation_id), correlation_id)
    return codec.encode(env)


def assert_served(endpoint: str) -> None:
    good = peer(endpoint, "good")
    good.send_multipart(ping(good, "good", 7))
    reply = receive(good)
    assert reply is not None and reply.message == Pong(sent_ms=7)
    good.close()


def header(**changes: object) -> list[bytes]:
    """A Ping call's header frame from peer "bad", with some fields changed."""
    fields = {"version": 1, "type": "Ping", "correlation_id": 5, "sender": "bad/a"}
    fields |= {"target": "server/echo", "epoch": -1, "reply": False, "body": {"sent_ms": 1}}
    return [msgpack.packb(list((fields | changes).values()))]


PRODUCE_BODY = {"topic": "t", "partition": 0, "acks": 1, "timeout_ms": 10}
BAD_INPUTS = {
    "not msgpack": ([b"\xc1\xc1\xc1"], "INVALID_REQUEST"),
    "truncated msgpack": ([header()[0][:-3]], "INVALID_REQUEST"),
    "header not an array": ([msgpack.packb({"type": "Ping"})], "INVALID_REQUEST"),
    "wrong field count": ([msgpack.packb([1, "Ping", 5])], "INVALID_REQUEST"),
    "wrong types": (header(correlation_id="five"), "INVALID_REQUEST"),
    "body of wrong type": (header(body={"sent_ms": "x"}), "INVALID_REQUEST"),
    "unknown message type": (header(type="Pingg", body={}), "INVALID_REQUEST"),
    "unknown version": (header(version=99), "UNSUPPORTED_VERSION"),
    "missing payload frame": (header(type="ProduceRequest", body=PRODUCE_BODY), "INVALID_REQUEST"),
    "deeply nested": ([b"\x91" * 2000 + b"\xc0"], "INVALID_REQUEST"),
    "spoofed sender": (header(sender="someone-else/a"), "INVALID_REQUEST"),
    "handler missing": (header(type="Pong"), "INVALID_REQUEST"),
    "unknown actor": (header(target="server/nobody"), "UNKNOWN_ACTOR"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_exactly_one_error_reply_and_the_runtime_keeps_serving(server, case):
    _, endpoint = server
    frames, expected = BAD_INPUTS[case]
    bad = peer(endpoint, "bad")
    bad.send_multipart(frames)
    reply = receive(bad)
    assert reply is not None, f"{case}: no reply"
    assert isinstance(reply.message, ErrorReply)
    assert reply.message.code in BY_CODE
    assert BY_CODE[reply.message.code].name == expected, reply.message
    assert receive(bad, SILENCE_MS) is None, f"{case}: more than one reply"
    bad.close()
    assert_served(endpoint)


def test_an_oversize_frame_disconnects_its_peer_only(server):
    _, endpoint = server
    bad = peer(endpoint, "bad")
    env = Envelope("bad/a", "server/echo", ProduceRequest("t", 0, 1, 10, b"x"), 3)
    head, _ = codec.encode(env)
    bad.send_multipart([head, b"x" * (FRAME_BYTES_MAX + 1)])
    assert receive(bad, SILENCE_MS * 2) is None  # dropped with its connection, unanswered
    assert_served(endpoint)
    bad.close()


def test_a_flood_of_garbage_leaves_memory_bounded_and_service_intact(server):
    _, endpoint = server
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bad = peer(endpoint, "bad")
    for i in range(20_000):
        bad.send_multipart([b"\xc1" + i.to_bytes(4, "big")])
    replies = 0
    while receive(bad, 2000) is not None and replies < 20_000:
        replies += 1
    assert replies == 20_000  # one reply each, nothing queued without bound
    assert_served(endpoint)
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kib
    assert growth_kib < 64 * 1024, f"memory grew by {growth_kib} KiB"
    bad.close()
