"""What the parts of a Consumer share: its lock, fetch state, I/O, group and closed flag.

A `Consumer` (clients/consumer.py) is made of parts that each own one responsibility:
`Positions` (clients/consumer_positions.py: assignment, seeks, positions, pause), `GroupCalls`
(clients/consumer_group_calls.py: subscription, commits, lag) and its own polling and
lifecycle. Each part holds this one `ConsumerCore`, never the Consumer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from zafka import clock
from zafka.clients.consumer_group import ConsumerGroup
from zafka.clients.fetch_state import FetchState
from zafka.clients.fetcher import FetcherActor
from zafka.clients.io import ClientIO
from zafka.errors import ZafkaError


@dataclass(eq=False)
class ConsumerCore:
    """The consumer's shared state; `cond` guards `state` (shared with the I/O thread)."""

    cond: threading.Condition
    state: FetchState
    request_timeout_ms: int
    retry_backoff_ms: int
    closed: threading.Event = field(default_factory=threading.Event)
    io: ClientIO = field(init=False)
    actor: FetcherActor = field(init=False)
    group: ConsumerGroup | None = None  # None without a group_id

    def check_open(self) -> None:
        if self.closed.is_set():
            raise ZafkaError("STOPPED", "the consumer is closed")

    def timeout_ms(self, timeout_ms: int | None) -> int:
        """A call's bound: `timeout_ms` (>= 1), by default `request_timeout_ms`."""
        if timeout_ms is None:
            return self.request_timeout_ms
        if type(timeout_ms) is not int or timeout_ms < 1:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 1")
        return timeout_ms

    def deadline(self, timeout_ms: int | None) -> float:
        """When a wait of `timeout_ms` (>= 0, default `request_timeout_ms`) ends (monotonic s)."""
        if timeout_ms is None:
            timeout_ms = self.request_timeout_ms
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise ZafkaError("INVALID_REQUEST", f"timeout_ms {timeout_ms!r}: expected an int >= 0")
        return clock.monotonic_s() + timeout_ms / 1000
