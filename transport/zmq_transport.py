"""The ZeroMQ transport: frames between nodes over tcp://, ipc:// or inproc://.

One ROUTER socket accepts the peers that connect to us (`bind`, any number of endpoints);
one DEALER per peer we connect to (`connect`), whose routing id is our node name, so the
peer's ROUTER knows us by name and can answer through its own ROUTER. `send(node)` goes
through our DEALER to `node` if we connected to it, else through the ROUTER to a peer that
connected to us as `node`.

- **One thread.** ZeroMQ sockets are not thread-safe: a transport is used from the thread
  that made it, and starts no thread of its own (libzmq's I/O thread aside). The exception
  is `wake`, which any thread may call to end a `wait` (an eventfd in the same poller).
- **Never blocks but in `wait`.** `send` is non-blocking: False when the node is unknown
  (ROUTER_MANDATORY: EHOSTUNREACH) or its queue is at the high-water mark (EAGAIN); the
  message is then dropped. A DEALER queues messages up to the mark while its link is down
  and delivers them after reconnecting (capped exponential backoff, 100 ms to 5 s).
- **Frames.** Sent frames of `limits.send_zero_copy_bytes_min` or more go zero-copy: libzmq
  holds the caller's buffer until it is on the wire, so it must not be mutated after `send`
  (bytes are immutable; a memoryview over a bytearray or mmap is the caller's promise).
  `recv` returns frames under `limits.recv_zero_copy_bytes_min` as `bytes` and larger ones
  as a `memoryview` over
  the received zmq.Frame, without a copy.
- **Bad peers.** Every socket sets ZMQ_MAXMSGSIZE to `frame_bytes_max`: libzmq checks it
  per frame (a multi-frame message may exceed it in total) and disconnects a peer that
  sends a bigger frame; nothing of that message is delivered. It applies to tcp:// and
  ipc://; inproc:// has no decoder and so no check. Messages from a peer whose routing id
  is not a node name (a raw socket's generated id, bytes that are not UTF-8) are dropped.
- **Lost links.** A DEALER's connection events are watched: when its connection drops (a
  killed peer's kernel resets it) or a connection to a named node is refused (nothing
  listens there), the node is *down* until it is connected again: sends to
  it return False at once instead of queueing, and `take_lost_links` reports it once, so the
  runtime fails the calls awaiting its replies (NETWORK_EXCEPTION, retriable) instead of
  letting them time out.
- **Peer identity.** A ROUTER hands a routing id over to the newest connection
  (ROUTER_HANDOVER), so a restarted peer takes its name back at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque

import zmq
from zmq.utils.monitor import recv_monitor_message

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.envelope import ANY_NODE

# Frames of at least these sizes are sent / received without a copy (measured in
# benchmarks/transport_bench.py: below them, copying costs less than zero-copy's bookkeeping).

Frames = list[bytes | memoryview]
# A DEALER's connection events: up (again), dropped, or refused. A bootstrap link (to
# ANY_NODE) refused is not down: its messages wait for a server that may be starting.
_LINK_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED


def node_id(node: str) -> bytes:
    """`node` as a routing id; ZafkaError INVALID_CONFIG if it cannot be one.

    A node name is 1 to 255 bytes of UTF-8 and does not start with NUL (libzmq reserves
    ids starting with a zero byte for the ones it generates)."""
    if not isinstance(node, str):
        raise ZafkaError("INVALID_CONFIG", f"a node name is a str, not {type(node).__name__}")
    encoded = node.encode()
    if not 0 < len(encoded) <= limits.routing_id_bytes_max or encoded[0] == 0:
        raise ZafkaError("INVALID_CONFIG", f"bad node name {node!r}: 1-255 bytes, no leading NUL")
    return encoded


def _node_name(routing_id: bytes) -> str | None:
    """The node name a peer connected as, or None if its routing id is not one (ANY_NODE is
    a wildcard for targets, never a peer's name)."""
    if not routing_id or routing_id[0] == 0:
        return None
    try:
        name = routing_id.decode()
    except UnicodeDecodeError:
        return None
    return None if name == ANY_NODE else name


def check_frames(frames: Frames) -> None:
    """ValueError unless `frames` holds at least one frame (ZeroMQ has no empty message)."""
    if not frames:
        raise ValueError("a message has at least one frame")


class ZmqTransport:
    """`transport.envelope.Transport` over ZeroMQ; see the module docstring.

    `context` defaults to the process-wide `zmq.Context.instance()`, so transports in one
    process reach each other over inproc:// (which needs one shared context); `close` closes
    this transport's sockets and never terminates the context.
    """

    def __init__(
        self,
        node: str,
        context: zmq.Context | None = None,
        *,
        frame_bytes_max: int = limits.frame_bytes_max,
        queue_messages_max: int = limits.send_queue_messages_max,
    ) -> None:
        self._id = node_id(node)
        self.node = node
        self._context = context if context is not None else zmq.Context.instance()
        self._frame_bytes_max = frame_bytes_max
        self._queue_messages_max = queue_messages_max
        self._poller = zmq.Poller()
        self._router: zmq.Socket | None = None
        self._dealers: dict[str, zmq.Socket] = {}  # node we connected to -> its DEALER
        self._dealer_nodes: dict[zmq.Socket, str] = {}  # the reverse
        self._link_endpoints: dict[str, str] = {}  # node -> the endpoint its DEALER reaches
        self._monitors: dict[zmq.Socket, str] = {}  # a DEALER's connection events -> node
        self._down: set[str] = set()  # nodes whose DEALER has no connection now
        self._lost: list[str] = []  # nodes whose connection dropped, not yet taken
        self._inbound: set[str] = set()  # nodes heard through the ROUTER, still reachable
        self._ready: deque[zmq.Socket] = deque()  # sockets that may hold input, round robin
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # see `wake`
        self._wake_lock = threading.Lock()  # the fd is never written after it is closed
        self._poller.register(self._wake_fd, zmq.POLLIN)
        self._closed = False

    def bind(self, endpoint: str) -> str:
        self._check_open()
        if self._router is None:
            self._router = self._socket(zmq.ROUTER)
            self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        try:
            self._router.bind(endpoint)
        except zmq.ZMQError as e:
            raise ZafkaError("INVALID_CONFIG", f"cannot bind {endpoint}: {e}") from e
        return self._router.getsockopt_string(zmq.LAST_ENDPOINT)

    def connect(self, node: str, endpoint: str) -> None:
        """Reach `node` at `endpoint` through a DEALER of its own; a second `connect` to the
        same node replaces the link (and drops what was queued on it)."""
        self._check_open()
        node_id(node)
        self.disconnect(node)
        dealer = self._socket(zmq.DEALER)
        dealer.setsockopt(zmq.ROUTING_ID, self._id)
        try:
            dealer.connect(endpoint)
        except zmq.ZMQError as e:
            self._close_socket(dealer)
            raise ZafkaError("INVALID_CONFIG", f"cannot connect to {endpoint}: {e}") from e
        self._dealers[node] = dealer
        self._dealer_nodes[dealer] = node
        self._link_endpoints[node] = endpoint
        monitor = dealer.get_monitor_socket(_LINK_EVENTS)
        self._monitors[monitor] = node
        self._poller.register(monitor, zmq.POLLIN)

    def ensure_link(self, node: str, endpoint: str) -> None:
        """`connect`, unless the link to `node` goes to `endpoint` already (so the actors that
        reach the same broker — the controller, a replica fetcher — never cut each other's)."""
        if self._dealers.get(node) is None or self._link_endpoints.get(node) != endpoint:
            self.connect(node, endpoint)

    def disconnect(self, node: str) -> None:
        """Close the DEALER to `node` and drop what is queued on it. A peer that connected
        to us stays reachable through the ROUTER until it goes away."""
        dealer = self._dealers.pop(node, None)
        if dealer is not None:
            del self._dealer_nodes[dealer]
            # Stop the events first, then close their socket: libzmq sends an event blocking,
            # holding the monitor's lock, so an event sent to a closed monitor socket would
            # hang it and then disable_monitor (seen once in CI, in a test's teardown).
            dealer.disable_monitor()
            for monitor in [m for m, n in self._monitors.items() if n == node]:
                del self._monitors[monitor]
                self._close_socket(monitor)
            self._close_socket(dealer)
        self._down.discard(node)

    def send(self, node: str, frames: Frames) -> bool:
        check_frames(frames)
        if self._closed:
            return False
        dealer = self._dealers.get(node)
        if node in self._down:  # fail now rather than queue for a link that is gone
            return False
        try:
            if dealer is not None:
                dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
            elif self._router is not None:
                self._router.send_multipart([node.encode(), *frames], zmq.NOBLOCK, copy=False)
            else:
                return False
        except zmq.Again:
            return False
        except zmq.ZMQError as e:
            if e.errno != zmq.EHOSTUNREACH:
                raise
            self._inbound.discard(node)
            return False
        return True

    def recv(self) -> tuple[str, Frames] | None:
        """The next message as (node, frames), taking sockets in turn; None if none waits."""
        polled = False
        while not self._closed:
            if not self._ready:
                if polled:
                    return None
                self._ready.extend(self._polled(0))
                polled = True
                continue
            sock = self._ready.popleft()
            if sock in self._monitors:
                self._link_event(sock)
                continue
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                continue
            if sock.get(zmq.EVENTS) & zmq.POLLIN:  # it holds more: come back after the others
                self._ready.append(sock)
            message = self._message(sock, parts)
            if message is not None:
                return message
        return None

    def wait(self, timeout_ms: int) -> bool:
        """Poll every socket at once for up to `timeout_ms` (a negative value counts as 0);
        `wake` from another thread ends the wait early. True if `recv` may return something."""
        if self._closed:
            return False
        self._ready = deque(self._polled(max(0, timeout_ms)))
        return bool(self._ready)

    def wake(self) -> None:
        """End a `wait` in progress (or the next one) at once. The one thread-safe method:
        another thread posted work for the thread that waits."""
        with self._wake_lock:
            if not self._closed:
                os.eventfd_write(self._wake_fd, 1)

    def _polled(self, timeout_ms: int) -> list[zmq.Socket]:
        """Sockets with input after polling up to `timeout_ms`; a wake-up is consumed."""
        ready = []
        for sock, _ in self._poller.poll(timeout_ms):
            if sock == self._wake_fd:
                with contextlib.suppress(BlockingIOError):  # another poll took it
                    os.eventfd_read(self._wake_fd)
            else:
                ready.append(sock)
        return ready

    def _link_event(self, monitor: zmq.Socket) -> None:
        """A DEALER connected, or lost or failed its connection (the peer is gone: a killed
        process's kernel resets its sockets)."""
        node = self._monitors[monitor]
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return
            if event == zmq.EVENT_CONNECTED:
                self._down.discard(node)
            elif node not in self._down and (event == zmq.EVENT_DISCONNECTED or node != ANY_NODE):
                self._down.add(node)  # dropped, or refused (no process listens there now)
                self._lost.append(node)

    def is_down(self, node: str) -> bool:
        """Whether `node`'s link has no connection now (sends to it fail)."""
        return node in self._down

    def take_lost_links(self) -> list[str]:
        """The nodes whose link dropped since the last call (their calls will get no reply:
        the runtime fails them now). Sends to such a node fail until it is connected again."""
        lost, self._lost = self._lost, []
        return lost

    def peers(self) -> list[str]:
        """Nodes we connected to, and nodes that connected to us and have spoken since."""
        return sorted(self._inbound.union(self._dealers))

    def close(self) -> None:
        for node in list(self._dealers):
            self.disconnect(node)
        if self._router is not None:
            self._close_socket(self._router)
            self._router = None
        self._inbound.clear()
        with self._wake_lock:
            if not self._closed:
                self._poller.unregister(self._wake_fd)
                os.close(self._wake_fd)
            self._closed = True

    def _message(self, sock: zmq.Socket, parts: list[zmq.Frame]) -> tuple[str, Frames] | None:
        frames: Frames = [
            p.bytes if len(p) < limits.recv_zero_copy_bytes_min else p.buffer for p in parts
        ]
        if sock is not self._router:
            return self._dealer_nodes[sock], frames
        node = _node_name(parts[0].bytes)
        if node is None:
            return None
        self._inbound.add(node)
        return node, frames[1:]

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self._frame_bytes_max)
        sock.setsockopt(zmq.SNDHWM, self._queue_messages_max)
        sock.setsockopt(zmq.RCVHWM, self._queue_messages_max)
        sock.setsockopt(zmq.RECONNECT_IVL, limits.reconnect_backoff_ms)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, limits.reconnect_backoff_ms_max)
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, limits.tcp_keepalive_idle_s)
        sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, limits.tcp_keepalive_interval_s)
        sock.copy_threshold = limits.send_zero_copy_bytes_min
        self._poller.register(sock, zmq.POLLIN)
        return sock

    def _close_socket(self, sock: zmq.Socket) -> None:
        self._poller.unregister(sock)
        if sock in self._ready:
            self._ready = deque(s for s in self._ready if s is not sock)
        sock.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ZafkaError("STOPPED", f"transport {self.node!r} is closed")
