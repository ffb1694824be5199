"""What travels between actors: an envelope around one message, and where it goes.

Addresses are `node/actor`: `node` names a process on the network (the transport routes by
it), `actor` names an actor inside that process (the runtime dispatches by it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PROTOCOL_VERSION = 1
NO_EPOCH = -1
# A client that knows an endpoint but not the node behind it (a bootstrap server) connects
# to it under this name and addresses `*/broker`; every node accepts `*` as its own name.
ANY_NODE = "*"


def address(node: str, actor: str) -> str:
    return f"{node}/{actor}"


def split_address(addr: str) -> tuple[str, str]:
    """(node, actor) of `node/actor`; ValueError if it is not one."""
    node, sep, actor = addr.partition("/")
    if not sep or not node or not actor or "/" in actor:
        raise ValueError(f"not an actor address (node/actor): {addr!r}")
    return node, actor


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message with its routing: the unit the codec turns into frames and back.

    `correlation_id` pairs a reply with its call (0 for a cast); `epoch` is the leader, group
    or controller epoch the sender believes in, where the message type has one (else -1);
    `reply` is True for the answer to a call.
    """

    sender: str
    target: str
    message: object  # a transport.schema.Message
    correlation_id: int = 0
    epoch: int = NO_EPOCH
    reply: bool = False
    version: int = PROTOCOL_VERSION


class Transport(Protocol):
    """Moves frames between nodes. Implementations: zmq_transport (tcp, ipc, inproc) and
    memory (deterministic, for tests). Never blocks except in `wait`."""

    node: str

    def bind(self, endpoint: str) -> str:
        """Accept peers at `endpoint`; returns it resolved (e.g. the port chosen for tcp :0)."""

    def connect(self, node: str, endpoint: str) -> None:
        """Make `node` reachable at `endpoint` (reconnects on its own when the link drops)."""

    def disconnect(self, node: str) -> None:
        """Forget an outbound link (the liveness helper decided the peer is dead)."""

    def send(self, node: str, frames: list[bytes | memoryview]) -> bool:
        """Queue `frames` as one message to `node`. False if the node is unknown or its
        queue is full (the message is dropped: callers time out and retry)."""

    def recv(self) -> tuple[str, list[bytes | memoryview]] | None:
        """The next received message as (sending node, frames), or None if none is waiting.
        Large frames may come as memoryviews over the received buffer (zero-copy)."""

    def wait(self, timeout_ms: int) -> bool:
        """Block up to `timeout_ms` until `recv` may return something. True if it may."""

    def is_down(self, node: str) -> bool:
        """Whether the link to `node` has no connection now (a send would fail)."""

    def take_lost_links(self) -> list[str]:
        """Nodes whose link dropped since the last call (their replies will not come)."""

    def peers(self) -> list[str]:
        """Every node this transport can send to now."""

    def wake(self) -> None:
        """Thread-safe: make a `wait` in progress (or the next one) return at once."""

    def close(self) -> None:
        """Drop every socket and queued message."""
