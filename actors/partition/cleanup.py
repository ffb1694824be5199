"""Which cleanup a partition's log wants, by its topic's `cleanup.policy`. Pure: the shell
(actors/partition/actor.py) asks on its cleanup timer and reports what ran."""

from __future__ import annotations

import enum

from zafka.storage.config import LogConfig


class Cleanup(enum.Enum):
    """What `CleanupSchedule.wanted` asks of the log now."""

    NONE = "none"  # compaction has nothing new to do
    RETENTION = "retention"  # cleanup.policy delete: drop segments past retention
    COMPACT = "compact"  # cleanup.policy compact: a segment was sealed, or tombstones aged


class CleanupSchedule:
    def __init__(self, config: LogConfig) -> None:
        self.config = config
        self._compacted: tuple[int, ...] = ()  # sealed segments' bases after the last compaction
        self._compacted_ms: int | None = None  # when it ran (wall clock)

    def wanted(self, wall_ms: int, sealed_bases: tuple[int, ...]) -> Cleanup:
        """What the topic's cleanup.policy wants now, given the sealed segments' bases:
        retention every time (`delete`); compaction when a segment was sealed since the last
        one, or when tombstones may have aged out (`compact`)."""
        if self.config.cleanup_policy != "compact":
            return Cleanup.RETENTION
        aged = (
            self._compacted_ms is not None
            and wall_ms - self._compacted_ms >= self.config.delete_retention_ms
        )
        if not sealed_bases or (sealed_bases == self._compacted and not aged):
            return Cleanup.NONE
        return Cleanup.COMPACT

    def compacted(self, wall_ms: int, sealed_bases: tuple[int, ...]) -> None:
        """A compaction ran at `wall_ms`, leaving these sealed segments."""
        self._compacted, self._compacted_ms = sealed_bases, wall_ms
