"""Leader-epoch history of one partition: which epoch's leader wrote from which offset.

A pure in-memory structure; `PartitionLog` persists it. A follower uses
`end_offset_for(epoch)` to find where its history diverges from the leader's and truncates
there (Kafka's leader-epoch fencing, KIP-101).
"""

from __future__ import annotations

import bisect

UNDEFINED = -1


class LeaderEpochCache:
    def __init__(self, entries: list[tuple[int, int]] | None = None) -> None:
        self._epochs: list[int] = []
        self._starts: list[int] = []
        for epoch, start in entries or []:
            self.assign(epoch, start)

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._starts, strict=True))

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`. Returns True if that is new.

        Epochs only grow; an epoch that starts where the previous one did replaces it
        (the previous leader wrote nothing).
        """
        if epoch < 0 or epoch <= self.latest_epoch:
            return False
        if self._starts and start_offset < self._starts[-1]:
            raise ValueError(f"epoch {epoch} starts at {start_offset}, before {self._starts[-1]}")
        if self._starts and start_offset == self._starts[-1]:
            self._epochs.pop()
            self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        return True

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest epoch <= `epoch`, the offset where that epoch's history ends).

        For the latest epoch that is the log end offset; for an older one, the start offset
        of the next larger epoch. (UNDEFINED, UNDEFINED) if `epoch` precedes every entry.
        """
        i = bisect.bisect_right(self._epochs, epoch)
        if i == 0:
            return UNDEFINED, UNDEFINED
        if i == len(self._epochs):
            return self._epochs[-1], log_end_offset
        return self._epochs[i - 1], self._starts[i]

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after `end_offset` (the log was truncated there)."""
        i = bisect.bisect_left(self._starts, end_offset)
        del self._epochs[i:], self._starts[i:]

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop history below the log start, keeping the epoch that covers `start_offset`."""
        i = bisect.bisect_right(self._starts, start_offset)
        if i > 0:
            del self._epochs[: i - 1], self._starts[: i - 1]
            self._starts[0] = max(self._starts[0], start_offset)
