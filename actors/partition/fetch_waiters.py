"""Long polling for Fetch: the fetches a partition actor holds until data or a deadline comes.

A Fetch may ask to wait (Kafka's fetch.min.bytes and fetch.max.wait.ms): when fewer than
`min_bytes` are readable from its offset below the high watermark, the actor parks it here
and answers it when an append makes enough bytes readable (`on_append`) or when its deadline
passes (`expire`: it gets whatever is there, possibly nothing), whichever comes first. This
is Kafka's DelayedFetch purgatory as a pure state machine: no I/O, no clock (`now_ms` is
passed in); how many bytes are readable is asked through `bytes_available_fn(offset,
up_to_offset)`, which the actor answers from its log.

Handles are opaque and hashable (the actor's reference to the call to answer); keys name the
partition. Bounded: at most `waiters_max` fetches wait at once, beyond that `add` raises BUSY
(retriable: the consumer backs off and fetches again).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from zafka import limits
from zafka.errors import ZafkaError

_STALE_SLACK = 64  # dead heap entries tolerated beyond the live ones before a rebuild

BytesAvailableFn = Callable[[int, int], int]


@dataclass(frozen=True, slots=True, eq=False)
class PendingFetch:
    """A parked fetch: what the actor needs to read and answer it once it is released."""

    handle: Hashable
    key: Hashable
    offset: int
    min_bytes: int
    max_bytes: int
    deadline_ms: int


class FetchWaiters:
    """Pending fetches by handle, by partition key, and by deadline."""

    def __init__(self, waiters_max: int = limits.fetch_waiters_max) -> None:
        if waiters_max < 1:
            raise ValueError(f"waiters_max must be at least 1, got {waiters_max}")
        self.waiters_max = waiters_max
        self._by_handle: dict[Hashable, PendingFetch] = {}  # in the order they were added
        self._by_key: dict[Hashable, dict[Hashable, PendingFetch]] = {}
        # A heap of (deadline_ms, order added, fetch). Fetches released another way stay in
        # it until popped or until there are too many of them (`_compact`).
        self._deadlines: list[tuple[int, int, PendingFetch]] = []
        self._added = 0

    def __len__(self) -> int:
        return len(self._by_handle)

    def add(
        self,
        handle: Hashable,
        key: Hashable,
        offset: int,
        min_bytes: int,
        max_bytes: int,
        deadline_ms: int,
    ) -> None:
        """Park a fetch. BUSY when `waiters_max` already wait. A handle already waiting, or
        `min_bytes` below 1 (such a fetch is answered at once, never parked), is a bug:
        ValueError."""
        if handle in self._by_handle:
            raise ValueError(f"fetch {handle!r} is already waiting")
        if min_bytes < 1:
            raise ValueError(f"min_bytes {min_bytes}: answer the fetch instead of parking it")
        if len(self._by_handle) >= self.waiters_max:
            raise ZafkaError("BUSY", f"{self.waiters_max} fetches are already waiting")
        pending = PendingFetch(handle, key, offset, min_bytes, max_bytes, deadline_ms)
        self._by_handle[handle] = pending
        self._by_key.setdefault(key, {})[handle] = pending
        self._added += 1
        heapq.heappush(self._deadlines, (deadline_ms, self._added, pending))

    def on_append(
        self, key: Hashable, high_watermark: int, bytes_available_fn: BytesAvailableFn
    ) -> list[PendingFetch]:
        """Release and return the fetches on `key` that now have at least `min_bytes`
        readable between their offset and `high_watermark`, in the order they were added.
        `bytes_available_fn` is asked once per distinct offset (tailing consumers share it),
        never for a fetch at or beyond the high watermark."""
        waiting = self._by_key.get(key)
        if not waiting:
            return []
        available: dict[int, int] = {}
        ready = []
        for pending in waiting.values():
            offset = pending.offset
            if offset >= high_watermark:
                continue
            if offset not in available:
                available[offset] = bytes_available_fn(offset, high_watermark)
            if available[offset] >= pending.min_bytes:
                ready.append(pending)
        for pending in ready:
            self._unlink(pending)
        self._compact()
        return ready

    def expire(self, now_ms: int) -> list[PendingFetch]:
        """Release and return the fetches whose deadline is at or before `now_ms`, earliest
        deadline first (equal deadlines in the order they were added)."""
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            pending = heapq.heappop(self._deadlines)[2]
            if self._is_waiting(pending):
                self._unlink(pending)
                expired.append(pending)
        return expired

    def next_deadline_ms(self) -> int | None:
        """The earliest deadline of a waiting fetch (when to call `expire`), or None."""
        while self._deadlines and not self._is_waiting(self._deadlines[0][2]):
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def cancel(self, handle: Hashable) -> PendingFetch | None:
        """Forget a fetch (its caller went away). Returns it, or None if it was not waiting."""
        pending = self._by_handle.get(handle)
        if pending is not None:
            self._unlink(pending)
            self._compact()
        return pending

    def drain(self, key: Hashable) -> list[PendingFetch]:
        """Release and return every fetch on `key`, in the order they were added: to answer
        them now (leadership moved, the log was truncated, the partition is deleted)."""
        released = list(self._by_key.get(key, {}).values())
        for pending in released:
            self._unlink(pending)
        self._compact()
        return released

    def drain_all(self) -> list[PendingFetch]:
        """Release and return every fetch, in the order they were added (the actor stops)."""
        released = list(self._by_handle.values())
        self._by_handle.clear()
        self._by_key.clear()
        self._deadlines.clear()
        return released

    def _is_waiting(self, pending: PendingFetch) -> bool:
        return self._by_handle.get(pending.handle) is pending

    def _unlink(self, pending: PendingFetch) -> None:
        """Remove from the handle and key maps; the heap entry goes stale (see `_compact`)."""
        del self._by_handle[pending.handle]
        on_key = self._by_key[pending.key]
        del on_key[pending.handle]
        if not on_key:
            del self._by_key[pending.key]

    def _compact(self) -> None:
        """Drop stale heap entries once they outnumber the live ones: the heap stays within
        twice the waiting fetches (plus a slack), at an amortised O(1) per removal."""
        if len(self._deadlines) > 2 * len(self._by_handle) + _STALE_SLACK:
            self._deadlines = [e for e in self._deadlines if self._is_waiting(e[2])]
            heapq.heapify(self._deadlines)
