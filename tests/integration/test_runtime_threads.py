"""Two runtimes over real ZeroMQ (tcp on 127.0.0.1): work posted from another thread wakes a
blocked loop at once, and a client that knows only an endpoint reaches a server by the
ANY_NODE name, learning the server's node from the reply. Every wait is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
import zmq

from zafka.actors.runtime.actor import Actor
from zafka.actors.runtime.loop import Runtime
from zafka.transport import codec
from zafka.transport.control import Ping, Pong
from zafka.transport.envelope import ANY_NODE, Envelope
from zafka.transport.zmq_transport import ZmqTransport

WAIT_S = 5.0
IDLE_WAIT_MS = 60_000  # far longer than any wait below: only a wake-up can end it in time


class Server(Actor):
    def __init__(self) -> None:
        super().__init__("server")


class Caller(Actor):
    """Makes calls for other threads (through Runtime.post)."""

    def __init__(self) -> None:
        super().__init__("caller")

    def call_future(self, target: str, message: object) -> Future:
        future: Future = Future()
        self.call(target, message, 5_000, future.set_result)
        return future


def blocked(runtime: Runtime) -> bool:
    """Wait (bounded) until the runtime's loop is in its idle wait. The runtime has no event
    for that, so its flag is polled: the wait is the test's precondition, not its proof."""
    deadline = time.monotonic() + WAIT_S
    while not runtime._waiting:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def call_from_thread(runtime: Runtime, caller: Caller, target: str, message: object) -> Future:
    """What an SDK user thread does: hand the call to the runtime's thread, get a future."""
    futures: list[Future] = []
    posted = threading.Event()

    def call() -> None:
        futures.append(caller.call_future(target, message))
        posted.set()

    runtime.post(call)
    assert posted.wait(WAIT_S)
    return futures[0]


def start(runtime: Runtime) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop, IDLE_WAIT_MS), daemon=True)
    thread.start()
    return stop, thread


@pytest.fixture
def pair() -> Iterator[tuple[Runtime, Caller, str]]:
    server_rt = Runtime("node-s", ZmqTransport("node-s"))
    server_rt.spawn(Server)
    endpoint = server_rt._transport.bind("tcp://127.0.0.1:0")
    client_transport = ZmqTransport("node-c")
    client_transport.connect(ANY_NODE, endpoint)
    client_rt = Runtime("node-c", client_transport)
    caller = client_rt.spawn(Caller)
    threads = [start(server_rt), start(client_rt)]
    yield client_rt, caller, endpoint
    for stop, thread in threads:
        stop.set()
        server_rt._transport.wake()
        client_transport.wake()
        thread.join(WAIT_S)
        assert not thread.is_alive()


def test_posted_work_wakes_a_blocked_loop(pair: tuple[Runtime, Caller, str]) -> None:
    client_rt, _, _ = pair
    for _ in range(5):  # each time the loop is blocked in its 60 s idle wait
        assert blocked(client_rt), "the loop never went idle"
        ran = threading.Event()
        client_rt.post(ran.set)
        assert ran.wait(WAIT_S), "posted work waited for the idle wait to end"


def test_a_call_to_any_node_is_answered_by_the_server(pair: tuple[Runtime, Caller, str]) -> None:
    client_rt, caller, _ = pair
    reply = call_from_thread(client_rt, caller, f"{ANY_NODE}/server", Ping(sent_ms=42)).result(
        WAIT_S
    )
    assert reply.message == Pong(sent_ms=42)
    assert reply.sender == "node-s/server"  # the server's real node: now the client knows it


def test_a_peer_named_any_node_is_not_heard(pair: tuple[Runtime, Caller, str]) -> None:
    """ANY_NODE is a wildcard target, never a sender: a socket connecting under that routing
    id could otherwise claim any sender name. Its messages are dropped; a good peer is served."""
    client_rt, caller, endpoint = pair
    context = zmq.Context.instance()
    rogue = context.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.setsockopt(zmq.ROUTING_ID, ANY_NODE.encode())
    rogue.connect(endpoint)
    try:
        envelope = Envelope(f"{ANY_NODE}/x", "node-s/server", Ping(sent_ms=1), correlation_id=9)
        rogue.send_multipart(codec.encode(envelope))
        good = call_from_thread(client_rt, caller, f"{ANY_NODE}/server", Ping(sent_ms=2))
        assert good.result(WAIT_S).message == Pong(sent_ms=2)
        assert rogue.poll(200) == 0, "a peer named ANY_NODE got an answer"
    finally:
        rogue.close()
