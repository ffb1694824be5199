"""Two runtimes over the deterministic memory network: calls across nodes under drops,
partitions and heals, driven by one virtual clock (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from tests.unit.test_runtime import Caller, Echo
from zafka.actors.runtime.loop import Runtime
from zafka.errors import ZafkaError
from zafka.transport.control import Pong
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.envelope import Envelope
from zafka.transport.memory import MemoryNetwork, MemoryTransport


def cluster() -> tuple[MemoryNetwork, list[Runtime], Caller]:
    network = MemoryNetwork(seed=7)
    server_transport = MemoryTransport(network, "server")
    server_transport.bind("mem://server")
    client_transport = MemoryTransport(network, "client")
    client_transport.connect("server", "mem://server")
    clock = lambda: network.now_ms  # noqa: E731 (both runtimes read the network's clock)
    server = Runtime("server", server_transport, clock=clock)
    client = Runtime("client", client_transport, clock=clock)
    server.spawn(Echo)
    caller = client.spawn(Caller)
    server.start()
    client.start()
    return network, [server, client], caller


def settle(network: MemoryNetwork, runtimes: list[Runtime], ms: int = 0) -> None:
    """Run both runtimes until idle, then move the clock `ms` and run them again."""
    for advance in (0, ms):
        network.advance(advance)
        for _ in range(100):
            if sum(runtime.step() for runtime in runtimes) == 0:
                break


def test_a_call_crosses_nodes_and_its_reply_comes_back():
    network, runtimes, caller = cluster()
    caller.ask("server/echo", 11)
    settle(network, runtimes)
    (reply,) = caller.results
    assert isinstance(reply, Envelope) and reply.message == Pong(sent_ms=11)
    assert reply.sender == "server/echo"


def test_a_dropped_call_times_out_and_the_next_one_gets_through():
    network, runtimes, caller = cluster()
    network.drop("client", "server", 1.0)
    caller.ask("server/echo", 1, timeout_ms=300)
    settle(network, runtimes, ms=300)
    assert caller.results[0].error.name == "REQUEST_TIMED_OUT"
    network.drop("client", "server", 0.0)
    caller.ask("server/echo", 2, timeout_ms=300)
    settle(network, runtimes)
    assert caller.results[1].message == Pong(sent_ms=2)


def test_a_partition_times_calls_out_until_it_heals():
    network, runtimes, caller = cluster()
    network.partition(["client"], ["server"])
    caller.ask("server/echo", 1, timeout_ms=500)
    settle(network, runtimes, ms=499)
    assert caller.results == []  # not before its deadline
    settle(network, runtimes, ms=1)
    assert caller.results[0].error.name == "REQUEST_TIMED_OUT"
    network.heal()
    caller.ask("server/echo", 3, timeout_ms=500)
    settle(network, runtimes)
    assert caller.results[1].message == Pong(sent_ms=3)


def test_a_delayed_reply_arrives_within_the_timeout():
    network, runtimes, caller = cluster()
    network.delay("server", "client", 200)
    caller.ask("server/echo", 4, timeout_ms=500)
    settle(network, runtimes, ms=199)
    assert caller.results == []
    settle(network, runtimes, ms=1)
    assert caller.results[0].message == Pong(sent_ms=4)


def test_a_call_that_cannot_be_encoded_raises_and_leaves_nothing_pending():
    network, runtimes, caller = cluster()
    told = LeaderAndIsrRequest("t", 0, 1, 0, (1,), (1,), 0, "")
    with pytest.raises(ZafkaError):  # a controller-epoch message without its epoch
        caller.call("server/echo", told, 1000, caller.results.append, epoch=-5)
    assert caller._pending == {}
    settle(network, runtimes, ms=2000)
    assert caller.results == []  # no late timeout for a call that never went out
