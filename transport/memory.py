"""The in-memory transport: the ZeroMQ transport's semantics on a deterministic network.

A `MemoryNetwork` is the hub: it knows which transport is bound at which endpoint name,
holds a virtual clock (`now_ms`, moved only by `advance`) and the faults the test injects.
`MemoryTransport(network, node)` has the ZeroMQ transport's interface and routing: `connect`
makes a node reachable through the transport bound at an endpoint, which in turn can answer
the connecting node by name, as a ROUTER answers a DEALER.

Differences from ZeroMQ, all in the direction of determinism:

- `wait` never blocks: it says whether a message is deliverable at `now_ms`. Tests move the
  clock with `advance` to deliver delayed messages.
- A connect to an endpoint nobody has bound does not queue: `send` returns False until a
  transport binds it (ZeroMQ would queue up to the high-water mark and deliver later).
- `send` copies the frames to bytes, so the sender mutating its buffers later changes
  nothing; `recv` returns bytes.
- Faults are per direction (`src` node to `dst` node) and drawn from a seeded
  random.Random: `drop` loses a share of the messages, `delay` holds them for a number of
  virtual milliseconds (order per pair is kept, as TCP keeps it), `partition` loses every
  message between two sets of nodes until `heal`. A lost message still counts as sent
  (`send` returns True), as on a real network; faults apply when a message is sent.
- The queue limit is per sending node and receiving node, as a ZeroMQ pipe's high-water
  mark: a message counts until the receiver takes it with `recv`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Iterable

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.zmq_transport import Frames, check_frames, node_id

# One message in a receiver's inbox: (due at ms, sequence, name the receiver knows the
# sender by, sending node, frames). Ordered by due time, then by sending order.
_Queued = tuple[int, int, str, str, list[bytes]]


class MemoryNetwork:
    """The hub of memory transports: endpoints, virtual clock, queue limit and faults."""

    def __init__(
        self, seed: int = 0, queue_messages_max: int = limits.send_queue_messages_max
    ) -> None:
        self.now_ms = 0
        self.queue_messages_max = queue_messages_max
        self._random = random.Random(seed)
        self._sequence = itertools.count()
        self._nodes: dict[str, MemoryTransport] = {}
        self._bound: dict[str, MemoryTransport] = {}  # endpoint -> transport bound there
        self._drops: dict[tuple[str, str], float] = {}
        self._delays: dict[tuple[str, str], int] = {}
        self._last_due_ms: dict[tuple[str, str], int] = {}  # keeps each pair in order
        self._cut: set[tuple[str, str]] = set()  # (src, dst) pairs across a partition

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("the virtual clock never goes back")
        self.now_ms += ms

    def drop(self, src: str, dst: str, probability: float) -> None:
        """Lose this share of the messages `src` sends to `dst` (0 stops dropping)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"a probability is in [0, 1], not {probability}")
        self._drops[(src, dst)] = probability

    def delay(self, src: str, dst: str, ms: int) -> None:
        """Deliver what `src` sends to `dst` from now on `ms` virtual ms late (0: at once)."""
        if ms < 0:
            raise ValueError(f"a delay is >= 0 ms, not {ms}")
        self._delays[(src, dst)] = ms

    def partition(self, a_nodes: Iterable[str], b_nodes: Iterable[str]) -> None:
        """Lose every message between a node of `a_nodes` and a node of `b_nodes`."""
        b_nodes = list(b_nodes)
        for a in a_nodes:
            for b in b_nodes:
                self._cut.update({(a, b), (b, a)})

    def heal(self) -> None:
        """Undo every partition (drops and delays stay)."""
        self._cut.clear()

    def _register(self, transport: MemoryTransport) -> None:
        if transport.node in self._nodes:
            raise ZafkaError("INVALID_CONFIG", f"node {transport.node!r} is already on the net")
        self._nodes[transport.node] = transport

    def _unregister(self, transport: MemoryTransport) -> None:
        if self._nodes.get(transport.node) is transport:
            del self._nodes[transport.node]
        for endpoint in [e for e, t in self._bound.items() if t is transport]:
            del self._bound[endpoint]

    def _bind(self, transport: MemoryTransport, endpoint: str) -> None:
        if endpoint in self._bound:
            raise ZafkaError("INVALID_CONFIG", f"cannot bind {endpoint}: address in use")
        self._bound[endpoint] = transport

    def _route(self, src: MemoryTransport, node: str) -> tuple[MemoryTransport, str] | None:
        """Who receives what `src` sends to `node`, and the name it knows `src` by."""
        endpoint = src._links.get(node)
        if endpoint is not None:
            dst = self._bound.get(endpoint)
            return None if dst is None else (dst, src.node)
        peer = self._nodes.get(node)
        if peer is None:
            return None
        for name, peer_endpoint in peer._links.items():
            if self._bound.get(peer_endpoint) is src:
                return peer, name
        return None

    def _connected_to(self, transport: MemoryTransport) -> set[str]:
        """The nodes with a link to an endpoint `transport` has bound."""
        return {
            node
            for node, peer in self._nodes.items()
            if any(self._bound.get(e) is transport for e in peer._links.values())
        }

    def _send(self, src: MemoryTransport, node: str, frames: Frames) -> bool:
        route = self._route(src, node)
        if route is None:
            return False
        dst, name = route
        if dst.queued_from(src.node) >= self.queue_messages_max:
            return False
        pair = (src.node, dst.node)
        probability = self._drops.get(pair)
        if pair in self._cut or (probability and self._random.random() < probability):
            return True  # lost on the way
        due_ms = max(self.now_ms + self._delays.get(pair, 0), self._last_due_ms.get(pair, 0))
        self._last_due_ms[pair] = due_ms
        copied = [bytes(frame) for frame in frames]
        dst._enqueue((due_ms, next(self._sequence), name, src.node, copied))
        return True


class MemoryTransport:
    """`transport.envelope.Transport` on a `MemoryNetwork`; see the module docstring."""

    def __init__(self, network: MemoryNetwork, node: str) -> None:
        node_id(node)  # the same names as the ZeroMQ transport accepts
        self.node = node
        self._links: dict[str, str] = {}  # node we connected to -> its endpoint
        self._network = network
        self._inbox: list[_Queued] = []  # a heap
        self._queued: Counter[str] = Counter()  # messages in the inbox per sending node
        self._closed = False
        network._register(self)

    def bind(self, endpoint: str) -> str:
        self._check_open()
        self._network._bind(self, endpoint)
        return endpoint

    def connect(self, node: str, endpoint: str) -> None:
        self._check_open()
        node_id(node)
        self._links[node] = endpoint

    def disconnect(self, node: str) -> None:
        self._links.pop(node, None)

    def send(self, node: str, frames: Frames) -> bool:
        check_frames(frames)
        if self._closed:
            return False
        return self._network._send(self, node, frames)

    def recv(self) -> tuple[str, list[bytes]] | None:
        if not self.wait(0):
            return None
        _, _, name, sender, frames = heapq.heappop(self._inbox)
        self._queued[sender] -= 1
        return name, frames

    def wait(self, timeout_ms: int) -> bool:
        """Whether a message is deliverable at the network's `now_ms`; never blocks."""
        return bool(self._inbox) and self._inbox[0][0] <= self._network.now_ms

    def wake(self) -> None:
        """Nothing to do: `wait` never blocks here."""

    def is_down(self, node: str) -> bool:
        return False

    def take_lost_links(self) -> list[str]:
        """Never any: a partition here loses messages, not connections."""
        return []

    def peers(self) -> list[str]:
        """Nodes we connected to and nodes connected to an endpoint we bound."""
        return sorted(self._network._connected_to(self).union(self._links))

    def close(self) -> None:
        self._network._unregister(self)
        self._links.clear()
        self._inbox.clear()
        self._queued.clear()
        self._closed = True

    def queued_from(self, node: str) -> int:
        """Messages from `node` waiting in this transport's inbox, delayed ones included."""
        return self._queued[node]

    def _enqueue(self, message: _Queued) -> None:
        heapq.heappush(self._inbox, message)
        self._queued[message[3]] += 1

    def _check_open(self) -> None:
        if self._closed:
            raise ZafkaError("STOPPED", f"transport {self.node!r} is closed")
