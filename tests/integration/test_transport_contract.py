"""One contract, every transport: memory, and ZeroMQ over tcp://, ipc:// and inproc://.

Every wait is bounded (`RECV_TIMEOUT_MS`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import zmq

from zafka.transport.envelope import Transport
from zafka.transport.memory import MemoryNetwork, MemoryTransport
from zafka.transport.zmq_transport import ZmqTransport

RECV_TIMEOUT_MS = 5_000
KINDS = ["memory", "zmq-tcp", "zmq-ipc", "zmq-inproc"]


@dataclass
class Net:
    """Makes transports of one kind and endpoints they can bind."""

    kind: str
    make: Callable[[str], Transport]
    endpoint: Callable[[str], str]
    timeout_ms: int  # how long a message may take to arrive (0: at once, in memory)

    def receive(self, transport: Transport) -> tuple[str, list]:
        deadline = time.monotonic() + self.timeout_ms / 1000
        while (message := transport.recv()) is None:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            assert remaining_ms > 0, f"{transport.node} got nothing in {self.timeout_ms} ms"
            transport.wait(remaining_ms)
        return message

    def server_and_clients(self, *names: str) -> tuple[Transport, list[Transport]]:
        server = self.make("server")
        endpoint = server.bind(self.endpoint("server"))
        clients = [self.make(name) for name in names]
        for client in clients:
            client.connect("server", endpoint)
        return server, clients


@pytest.fixture(params=KINDS)
def net(request: pytest.FixtureRequest) -> Iterator[Net]:
    transports: list[Transport] = []

    def keep(transport: Transport) -> Transport:
        transports.append(transport)
        return transport

    with contextlib.ExitStack() as stack:
        if request.param == "memory":
            network = MemoryNetwork()
            yield Net("memory", lambda n: keep(MemoryTransport(network, n)), "mem://{}".format, 0)
        else:
            context = zmq.Context()
            stack.callback(context.term)
            endpoint = _zmq_endpoints(request.param, stack)
            make = lambda n: keep(ZmqTransport(n, context))  # noqa: E731
            yield Net(request.param, make, endpoint, RECV_TIMEOUT_MS)
        for transport in transports:
            transport.close()


def _zmq_endpoints(kind: str, stack: contextlib.ExitStack) -> Callable[[str], str]:
    if kind == "zmq-tcp":
        return lambda name: "tcp://127.0.0.1:0"
    if kind == "zmq-ipc":  # a short path: ipc paths are limited to ~100 bytes
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="zafka-"))
        return lambda name: f"ipc://{os.path.join(directory, name)}"
    run = uuid.uuid4().hex[:8]
    return lambda name: f"inproc://{name}-{run}"


def test_request_and_reply_by_node_name(net: Net):
    server, [client] = net.server_and_clients("client")
    assert client.send("server", [b"request"])
    assert net.receive(server) == ("client", [b"request"])
    assert server.send("client", [b"reply"])
    assert net.receive(client) == ("server", [b"reply"])
    assert server.peers() == ["client"] and client.peers() == ["server"]


def test_several_peers_each_get_their_own_reply(net: Net):
    names = ["alpha", "beta", "gamma"]
    server, clients = net.server_and_clients(*names)
    for client in clients:
        assert client.send("server", [client.node.encode()])
    heard = set()
    for _ in names:
        sender, frames = net.receive(server)
        assert frames == [sender.encode()]
        heard.add(sender)
        assert server.send(sender, [b"for " + frames[0]])
    assert heard == set(names)
    for client in clients:
        assert net.receive(client) == ("server", [b"for " + client.node.encode()])
    assert server.peers() == names


def test_send_to_an_unknown_node_is_refused(net: Net):
    server, [client] = net.server_and_clients("client")
    assert not client.send("nobody", [b"x"])  # no such link, and the client has no ROUTER
    assert not server.send("nobody", [b"x"])  # nobody connected as "nobody"
    assert not net.make("loner").send("server", [b"x"])  # no sockets at all


def test_order_per_peer_is_kept(net: Net):
    count = 1000
    server, clients = net.server_and_clients("one", "two")
    for i in range(count):
        for client in clients:
            assert client.send("server", [i.to_bytes(4)])
    received: dict[str, list[int]] = {"one": [], "two": []}
    for _ in range(2 * count):
        sender, [frame] = net.receive(server)
        received[sender].append(int.from_bytes(frame))
    assert received == {"one": list(range(count)), "two": list(range(count))}


def test_multi_frame_messages_arrive_whole(net: Net):
    server, [client] = net.server_and_clients("client")
    frames = [b"header", b"", bytes(range(256)), b"x" * 70_000, memoryview(b"view")]
    assert client.send("server", frames)
    sender, got = net.receive(server)
    assert sender == "client"
    assert [bytes(frame) for frame in got] == [bytes(frame) for frame in frames]


def test_a_1_mib_frame_arrives_intact_both_ways(net: Net):
    server, [client] = net.server_and_clients("client")
    payload = os.urandom(1024 * 1024)
    assert client.send("server", [b"put", payload])
    sender, [verb, got] = net.receive(server)
    assert (sender, verb, bytes(got)) == ("client", b"put", payload)
    assert server.send("client", [b"echo", got])
    _, [verb, echoed] = net.receive(client)
    assert (verb, bytes(echoed)) == (b"echo", payload)


def test_mutual_links_use_the_outbound_one(net: Net):
    a, b = net.make("a"), net.make("b")
    a_endpoint, b_endpoint = a.bind(net.endpoint("a")), b.bind(net.endpoint("b"))
    a.connect("b", b_endpoint)
    b.connect("a", a_endpoint)
    assert a.send("b", [b"from a"]) and b.send("a", [b"from b"])
    assert net.receive(b) == ("a", [b"from a"])
    assert net.receive(a) == ("b", [b"from b"])


def test_disconnect_forgets_the_link(net: Net):
    _, [client] = net.server_and_clients("client")
    client.disconnect("server")
    client.disconnect("server")  # idempotent
    assert not client.send("server", [b"x"])
    assert client.peers() == []


def test_wait_is_bounded_and_reports_input(net: Net):
    server, [client] = net.server_and_clients("client")
    started = time.monotonic()
    assert not server.wait(20)
    assert time.monotonic() - started < 2
    client.send("server", [b"x"])
    assert net.receive(server) == ("client", [b"x"])
    assert server.recv() is None


def test_close_drops_everything_and_the_peer_forgets_us(net: Net):
    server, [client] = net.server_and_clients("client")
    client.send("server", [b"hello"])
    net.receive(server)
    client.close()
    client.close()  # idempotent
    assert not client.send("server", [b"x"])
    assert client.recv() is None and not client.wait(0)
    deadline = time.monotonic() + RECV_TIMEOUT_MS / 1000
    while server.send("client", [b"anyone?"]):  # the ROUTER learns of it asynchronously
        assert time.monotonic() < deadline, "the server never noticed the client left"
        server.wait(10)
    assert "client" not in server.peers()


@pytest.mark.parametrize("kind", ["zmq-tcp", "zmq-ipc"])
def test_a_dropped_link_is_reported_once_and_sends_fail_until_it_is_back(kind: str) -> None:
    """A peer that goes away (its sockets reset, as a killed process's are) is reported by
    `take_lost_links`; sends to it fail at once; once it is back, they go through again."""
    with contextlib.ExitStack() as stack:
        context = zmq.Context()
        stack.callback(context.term)
        endpoint_of = _zmq_endpoints(kind, stack)
        client = ZmqTransport("client", context)
        stack.callback(client.close)
        server = ZmqTransport("server", context)
        endpoint = server.bind(endpoint_of("server").replace(":0", f":{_free_port()}"))
        client.connect("server", endpoint)
        net = Net(kind, lambda n: ZmqTransport(n, context), endpoint_of, RECV_TIMEOUT_MS)
        assert client.send("server", [b"hello"])
        assert net.receive(server) == ("client", [b"hello"])
        server.close()
        lost = _wait_lost(client)
        assert lost == ["server"] and client.take_lost_links() == []
        assert not client.send("server", [b"into the void"])
        back = ZmqTransport("server", context)
        stack.callback(back.close)
        back.bind(endpoint)
        deadline = time.monotonic() + RECV_TIMEOUT_MS / 1000
        while not client.send("server", [b"again"]):  # up once it reconnected
            assert time.monotonic() < deadline, "the link never came back"
            client.wait(10)
            client.recv()
        assert net.receive(back) == ("client", [b"again"])


def _wait_lost(transport: ZmqTransport) -> list[str]:
    deadline = time.monotonic() + RECV_TIMEOUT_MS / 1000
    while not (lost := transport.take_lost_links()):
        assert time.monotonic() < deadline, "the dropped link was never reported"
        transport.wait(10)
        transport.recv()
    return lost


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
