from __future__ import annotations

import pytest

from zafka.errors import ZafkaError
from zafka.transport.memory import MemoryNetwork, MemoryTransport


def pair(network: MemoryNetwork) -> tuple[MemoryTransport, MemoryTransport]:
    """A server bound at "srv" and a client connected to it."""
    server, client = MemoryTransport(network, "server"), MemoryTransport(network, "client")
    server.bind("srv")
    client.connect("server", "srv")
    return server, client


def drain(transport: MemoryTransport) -> list[tuple[str, list[bytes]]]:
    received = []
    while (message := transport.recv()) is not None:
        received.append(message)
    return received


def test_request_and_reply_by_node_name():
    server, client = pair(MemoryNetwork())
    assert client.send("server", [b"ping", b"payload"])
    assert server.wait(0)
    assert server.recv() == ("client", [b"ping", b"payload"])
    assert server.send("client", [b"pong"])
    assert client.recv() == ("server", [b"pong"])
    assert server.peers() == ["client"] and client.peers() == ["server"]


def test_unknown_or_unreachable_nodes_are_refused():
    network = MemoryNetwork()
    server, client = pair(network)
    assert not client.send("nobody", [b"x"])
    client.connect("ghost", "nowhere")  # nothing bound there
    assert not client.send("ghost", [b"x"])
    stranger = MemoryTransport(network, "stranger")
    assert not server.send("stranger", [b"x"])  # it never connected to the server
    assert not stranger.recv()


def test_frames_are_copied_on_send():
    server, client = pair(MemoryNetwork())
    buffer = bytearray(b"before")
    assert client.send("server", [memoryview(buffer)])
    buffer[:] = b"after!"
    assert server.recv() == ("client", [b"before"])


def test_drop_is_deterministic_for_a_seed():
    def delivered(seed: int, probability: float) -> list[int]:
        network = MemoryNetwork(seed=seed)
        server, client = pair(network)
        network.drop("client", "server", probability)
        for i in range(200):
            assert client.send("server", [i.to_bytes(2)])  # a lost message counts as sent
        return [int.from_bytes(frames[0]) for _, frames in drain(server)]

    half = delivered(7, 0.5)
    assert half == delivered(7, 0.5)
    assert half != delivered(8, 0.5)
    assert 50 < len(half) < 150 and half == sorted(half)
    assert delivered(7, 1.0) == []
    assert delivered(7, 0.0) == list(range(200))


def test_drop_is_per_direction():
    network = MemoryNetwork()
    server, client = pair(network)
    network.drop("client", "server", 1.0)
    assert client.send("server", [b"lost"])
    assert server.recv() is None
    assert server.send("client", [b"arrives"]) and client.recv() == ("server", [b"arrives"])


def test_delay_holds_messages_until_the_clock_passes():
    network = MemoryNetwork()
    server, client = pair(network)
    network.delay("client", "server", 100)
    client.send("server", [b"late"])
    assert not server.wait(1000)  # never blocks, and the clock has not moved
    network.advance(99)
    assert server.recv() is None
    network.advance(1)
    assert server.recv() == ("client", [b"late"])


def test_order_per_pair_survives_a_shorter_delay():
    network = MemoryNetwork()
    server, client = pair(network)
    network.delay("client", "server", 100)
    client.send("server", [b"1"])
    network.delay("client", "server", 0)
    client.send("server", [b"2"])
    assert server.recv() is None  # "2" waits behind "1"
    network.advance(100)
    assert [frames for _, frames in drain(server)] == [[b"1"], [b"2"]]


def test_partition_cuts_both_ways_until_healed():
    network = MemoryNetwork()
    server, client = pair(network)
    other = MemoryTransport(network, "other")
    other.connect("server", "srv")
    client.send("server", [b"hello"])
    server.recv()
    network.partition(["client"], ["server"])
    assert client.send("server", [b"lost"])
    assert server.send("client", [b"lost"])
    assert other.send("server", [b"through"])
    assert drain(server) == [("other", [b"through"])]
    assert client.recv() is None
    network.heal()
    assert client.send("server", [b"back"])
    assert server.recv() == ("client", [b"back"])


def test_queue_limit_per_pipe():
    network = MemoryNetwork(queue_messages_max=3)
    server, client = pair(network)
    other = MemoryTransport(network, "other")
    other.connect("server", "srv")
    network.delay("client", "server", 50)
    assert all(client.send("server", [b"m"]) for _ in range(3))
    assert not client.send("server", [b"full"])  # delayed messages count
    assert other.send("server", [b"own queue"])
    network.advance(50)
    assert server.recv() == ("other", [b"own queue"])
    assert server.queued_from("client") == 3
    drain(server)
    assert server.queued_from("client") == 0
    assert client.send("server", [b"room again"])


def test_close_unregisters_the_node():
    network = MemoryNetwork()
    server, client = pair(network)
    client.send("server", [b"queued"])
    server.close()
    server.close()  # idempotent
    assert not client.send("server", [b"x"])
    assert server.recv() is None and not server.wait(0)
    assert not server.send("client", [b"x"])
    with pytest.raises(ZafkaError):
        server.bind("srv")
    again = MemoryTransport(network, "server")  # the name and the endpoint are free again
    again.bind("srv")
    assert client.send("server", [b"x"])


def test_disconnect_forgets_the_link():
    server, client = pair(MemoryNetwork())
    client.disconnect("server")
    assert not client.send("server", [b"x"])
    assert client.peers() == [] and server.peers() == []


@pytest.mark.parametrize("name", ["", "\x00id", "x" * 256])
def test_bad_node_names_are_refused(name):
    network = MemoryNetwork()
    with pytest.raises(ZafkaError):
        MemoryTransport(network, name)
    with pytest.raises(ZafkaError):
        MemoryTransport(network, "ok").connect(name, "srv")


def test_misuse_is_refused():
    network = MemoryNetwork()
    _, client = pair(network)
    with pytest.raises(ZafkaError):
        MemoryTransport(network, "server")  # two nodes of one name
    with pytest.raises(ZafkaError):
        client.bind("srv")  # address in use
    with pytest.raises(ValueError):
        client.send("server", [])
    with pytest.raises(ValueError):
        network.advance(-1)
    with pytest.raises(ValueError):
        network.drop("a", "b", 1.5)
    with pytest.raises(ValueError):
        network.delay("a", "b", -1)
