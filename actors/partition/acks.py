"""acks=all: the produce answers a leader holds until the high watermark passes their batch.

Kafka's DelayedProduce purgatory as a pure structure (no I/O, no clock: `now_ms` is passed
in). Batches are appended in offset order, so the waiting answers are too: `released(hw)`
takes them from the front while their last offset is below the high watermark. Each also has
a deadline (the request's timeout): `expired(now_ms)` gives those past it, answered
REQUEST_TIMED_OUT by the actor (the batch stays in the log; an idempotent retry is
recognised). Bounded: with `waiting_max` waiting, `check_room` raises BUSY before anything
is appended.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from zafka import limits
from zafka.errors import ZafkaError


@dataclass(slots=True, eq=False)
class WaitingAck:
    handle: Hashable  # the actor's reference to the request to answer
    base_offset: int
    last_offset: int
    deadline_ms: int
    waiting: bool = True  # False once released, expired or drained


class AckPurgatory:
    def __init__(self, waiting_max: int = limits.acks_waiting_max) -> None:
        self.waiting_max = waiting_max
        self._by_offset: deque[WaitingAck] = deque()
        self._deadlines: list[tuple[int, int, WaitingAck]] = []
        self._waiting = 0
        self._added = 0

    def __len__(self) -> int:
        return self._waiting

    def check_room(self) -> None:
        """BUSY when full (an expired answer counts until the high watermark passes it)."""
        if len(self._by_offset) >= self.waiting_max:
            raise ZafkaError("BUSY", f"{self.waiting_max} acks=all answers wait already")

    def add(self, handle: Hashable, base_offset: int, last_offset: int, deadline_ms: int) -> None:
        ack = WaitingAck(handle, base_offset, last_offset, deadline_ms)
        self._by_offset.append(ack)
        self._waiting += 1
        self._added += 1
        heapq.heappush(self._deadlines, (deadline_ms, self._added, ack))

    def released(self, high_watermark: int) -> list[WaitingAck]:
        """The waiting answers whose batch is now below the high watermark, oldest first."""
        out = []
        while self._by_offset and self._by_offset[0].last_offset < high_watermark:
            ack = self._by_offset.popleft()
            if ack.waiting:
                out.append(self._done(ack))
        return out

    def expired(self, now_ms: int) -> list[WaitingAck]:
        """The waiting answers past their deadline, earliest first."""
        out = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            ack = heapq.heappop(self._deadlines)[2]
            if ack.waiting:
                out.append(self._done(ack))
        return out

    def next_deadline_ms(self) -> int | None:
        while self._deadlines and not self._deadlines[0][2].waiting:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def drain(self) -> list[WaitingAck]:
        """Every waiting answer, oldest first (the leader steps down or stops)."""
        out = [self._done(ack) for ack in self._by_offset if ack.waiting]
        self._by_offset.clear()
        self._deadlines.clear()
        return out

    def _done(self, ack: WaitingAck) -> WaitingAck:
        ack.waiting = False
        self._waiting -= 1
        return ack
