"""Per-partition log settings (Kafka's topic configs), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from zafka.errors import ZafkaError

DAY_MS = 24 * 3600 * 1000


class Fsync(Enum):
    """When appended bytes are forced to disk.

    ALWAYS: before append returns (no acknowledged batch lost to power failure; slowest).
    INTERVAL: when `fsync_interval_ms` has passed since the last fsync, checked on append and
    on `flush_if_due` (the partition actor calls it on a timer): at most that window of
    acknowledged data is lost if the machine (not just the process) dies. The default.
    NEVER: the OS decides (Kafka's default; safe only with replication, which zafka lacks yet).
    A process crash alone loses nothing in any mode: written bytes are in the page cache.
    """

    ALWAYS = "always"
    INTERVAL = "interval"
    NEVER = "never"


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 256 * 1024 * 1024  # roll when the active segment would exceed this
    segment_ms: int = 7 * DAY_MS  # roll when the active segment's first batch is this old
    index_interval_bytes: int = 4096  # one index entry per this many bytes of batches
    retention_ms: int = 7 * DAY_MS  # delete segments whose newest record is older; -1 = keep
    retention_bytes: int = -1  # delete oldest segments while the log is larger; -1 = no cap
    cleanup_policy: str = "delete"  # "delete" (retention) or "compact" (latest per key)
    delete_retention_ms: int = DAY_MS  # how long compaction keeps tombstones
    fsync: Fsync = Fsync.INTERVAL
    fsync_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if self.segment_bytes < 1024:
            raise ZafkaError(
                "INVALID_CONFIG", f"segment_bytes must be >= 1024, got {self.segment_bytes}"
            )
        if self.segment_ms < 1 or self.index_interval_bytes < 1 or self.fsync_interval_ms < 0:
            raise ZafkaError(
                "INVALID_CONFIG",
                "segment_ms, index_interval_bytes must be >= 1, fsync_interval_ms >= 0",
            )
        if self.retention_ms < -1 or self.retention_bytes < -1 or self.delete_retention_ms < 0:
            raise ZafkaError(
                "INVALID_CONFIG", "retention_ms and retention_bytes must be >= -1 (-1 = unlimited)"
            )
        if self.cleanup_policy not in ("delete", "compact"):
            raise ZafkaError(
                "INVALID_CONFIG",
                f"cleanup_policy must be delete or compact, got {self.cleanup_policy}",
            )
        if not isinstance(self.fsync, Fsync):
            raise ZafkaError("INVALID_CONFIG", f"fsync must be one of {[f.value for f in Fsync]}")
