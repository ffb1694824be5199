"""ZeroMQ-specific behaviour: oversized frames, peers that are not nodes, floods past the
high-water mark, frame types, the default context, endpoint errors. Every wait is bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.zmq_transport import ZmqTransport

TIMEOUT_MS = 5_000
FRAME_BYTES_MAX = 1024  # the server's ZMQ_MAXMSGSIZE in these tests
HWM = 100  # queue_messages_max of both ends in the flood tests
FLOOD_FRAME_BYTES = 16 * 1024


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)  # closes whatever a test left open, then terminates


def receive(transport: ZmqTransport) -> tuple[str, list]:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (message := transport.recv()) is None:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        assert remaining_ms > 0, f"{transport.node} got nothing in {TIMEOUT_MS} ms"
        transport.wait(remaining_ms)
    return message


def raw_dealer(context: zmq.Context, endpoint: str, routing_id: bytes | None) -> zmq.Socket:
    """A plain pyzmq DEALER, as a client in another language or an attacker would have."""
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    sock.connect(endpoint)
    return sock


def expect_event(monitor: zmq.Socket, event: int) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        assert remaining_ms > 0 and monitor.poll(remaining_ms), f"no socket event {event}"
        if recv_monitor_message(monitor)["event"] == event:
            return


def serve(context: zmq.Context, **limits: int) -> tuple[ZmqTransport, str, ZmqTransport]:
    """A server on tcp loopback and a well-behaved client, "good", connected to it."""
    server = ZmqTransport("server", context, **limits)
    endpoint = server.bind("tcp://127.0.0.1:0")
    good = ZmqTransport("good", context, **limits)
    good.connect("server", endpoint)
    return server, endpoint, good


def test_a_peer_sending_an_oversized_frame_is_disconnected(context):
    server, endpoint, good = serve(context, frame_bytes_max=FRAME_BYTES_MAX)
    bad = raw_dealer(context, endpoint, b"bad")
    monitor = bad.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    bad.send(b"small")
    assert receive(server) == ("bad", [b"small"])
    bad.send(b"x" * (FRAME_BYTES_MAX + 1))
    expect_event(monitor, zmq.EVENT_DISCONNECTED)
    assert good.send("server", [b"still served?"])
    assert receive(server) == ("good", [b"still served?"])
    assert server.send("good", [b"yes"])
    assert receive(good) == ("server", [b"yes"])
    assert server.recv() is None  # nothing of the oversized message got through


def test_the_size_limit_is_per_frame(context):
    server, _, good = serve(context, frame_bytes_max=FRAME_BYTES_MAX)
    frames = [b"a" * FRAME_BYTES_MAX, b"b" * FRAME_BYTES_MAX]  # twice the limit in total
    assert good.send("server", frames)
    assert receive(server) == ("good", frames)


@pytest.mark.parametrize(
    "routing_id", [None, b"\x00abc", b"\xff\xfe"], ids=["generated", "nul-first", "not-utf8"]
)
def test_messages_from_peers_that_are_not_nodes_are_dropped(context, routing_id):
    server, endpoint, good = serve(context)
    stranger = raw_dealer(context, endpoint, routing_id)
    stranger.send(b"who am I")
    assert server.wait(TIMEOUT_MS)  # it reached the server's ROUTER ...
    assert server.recv() is None  # ... and was dropped there
    assert good.send("server", [b"hello"])
    assert receive(server) == ("good", [b"hello"])
    assert server.peers() == ["good"]
    stranger.close()


def kernel_buffer_bytes_max() -> int:
    """What loopback TCP may buffer for one connection: receive plus send buffer maxima."""
    try:
        fields = [Path(f"/proc/sys/net/ipv4/tcp_{b}mem").read_text().split() for b in "rw"]
        return sum(int(values[2]) for values in fields)
    except (OSError, IndexError, ValueError):
        return 64 * 1024 * 1024


def flood(sender: ZmqTransport, node: str, attempts: int) -> int:
    """Send numbered frames to `node` `attempts` times; how many were accepted."""
    accepted = 0
    padding = bytes(FLOOD_FRAME_BYTES - 4)
    for _ in range(attempts):
        if sender.send(node, [accepted.to_bytes(4) + padding]):
            accepted += 1
    return accepted


def assert_bounded_flood(sender: ZmqTransport, receiver: ZmqTransport, node: str) -> None:
    """A flood at a receiver that does not read stops being accepted at a bound, and what
    was accepted then arrives, whole and in order."""
    bound = 2 * HWM + kernel_buffer_bytes_max() // FLOOD_FRAME_BYTES + HWM
    accepted = flood(sender, node, attempts=20 * bound)
    assert HWM <= accepted <= bound
    assert not sender.send(node, [b"one more"])
    for expected in range(accepted):
        _, [frame] = receive(receiver)
        assert int.from_bytes(frame[:4]) == expected
    assert not receiver.wait(50)  # the refused messages were dropped, not queued


def test_a_client_flooding_a_server_past_the_high_water_mark_is_refused(context):
    server, _, client = serve(context, queue_messages_max=HWM)
    assert_bounded_flood(client, server, "server")


def test_a_server_flooding_a_client_past_the_high_water_mark_is_refused(context):
    server, _, client = serve(context, queue_messages_max=HWM)
    client.send("server", [b"hello"])
    receive(server)  # the server's ROUTER knows the client now
    assert_bounded_flood(server, client, "good")


def test_large_frames_are_received_without_a_copy(context):
    server, _, good = serve(context)
    small, large = (
        b"s" * (limits.recv_zero_copy_bytes_min - 1),
        b"L" * limits.recv_zero_copy_bytes_min,
    )
    good.send("server", [small, large])
    _, [got_small, got_large] = receive(server)
    assert type(got_small) is bytes and got_small == small
    assert isinstance(got_large, memoryview) and got_large == large


def test_the_default_context_is_shared_so_inproc_works():
    server, client = ZmqTransport("server"), ZmqTransport("client")
    try:
        endpoint = server.bind(f"inproc://default-context-{id(server)}")
        client.connect("server", endpoint)
        assert client.send("server", [b"over inproc"])
        assert receive(server) == ("client", [b"over inproc"])
    finally:
        client.close()
        server.close()


def test_wait_without_sockets_still_waits(context):
    lonely = ZmqTransport("lonely", context)
    started = time.monotonic()
    assert not lonely.wait(30)
    assert time.monotonic() - started >= 0.03
    lonely.close()


def test_bad_endpoints_and_a_closed_transport_are_refused(context):
    first, second = ZmqTransport("first", context), ZmqTransport("second", context)
    endpoint = first.bind("tcp://127.0.0.1:0")
    for call in (lambda: second.bind(endpoint), lambda: second.bind("nonsense://x")):
        with pytest.raises(ZafkaError) as raised:
            call()
        assert raised.value.error.name == "INVALID_CONFIG"
    with pytest.raises(ZafkaError):
        second.connect("first", "tcp://no-port")
    assert second.peers() == []  # the failed link left nothing behind
    first.close()
    with pytest.raises(ZafkaError) as raised:
        first.bind("tcp://127.0.0.1:0")
    assert raised.value.error.name == "STOPPED"
    second.close()
