"""Per-partition log settings (Kafka's topic configs), validated on construction."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage.batch import HEADER_SIZE

DAY_MS = 24 * 3600 * 1000

# Topic config keys (Kafka's names, plus zafka's own) -> the LogConfig field each sets.
# max.message.bytes, min.insync.replicas and unclean.leader.election.enable set none: the
# first bounds produced batches (the broker checks it), the second is how many in-sync
# replicas acks=all needs, the third lets the controller elect a replica out of sync.
TOPIC_CONFIG_FIELDS: dict[str, str | None] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "cleanup.policy": "cleanup_policy",
    "delete.retention.ms": "delete_retention_ms",
    "flush.ms": "fsync_interval_ms",
    "zafka.fsync": "fsync",
    "max.message.bytes": None,
    "min.insync.replicas": None,
    "unclean.leader.election.enable": None,
}
# The values of the keys that set no LogConfig field, when a topic does not set them.
_OTHER_DEFAULTS = {
    "max.message.bytes": str(limits.batch_bytes_max),
    "min.insync.replicas": "1",
    "unclean.leader.election.enable": "false",
}
BOOLEANS = ("true", "false")
_LONG = re.compile(r"-?[0-9]{1,19}")  # Kafka's values are strings; numbers are decimal longs


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
        if not 1024 <= self.segment_bytes <= limits.segment_bytes_max:
            raise ZafkaError(
                "INVALID_CONFIG",
                f"segment_bytes must be 1024..{limits.segment_bytes_max}, got {self.segment_bytes}",
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

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, str]) -> LogConfig:
        """The log settings of a topic from its configs (Kafka keys, string values).

        Keys not given keep LogConfig's defaults. `zafka.fsync` is always|interval|never;
        `flush.ms` is the fsync interval and applies only with `interval` (the default).
        `max.message.bytes` is checked here (HEADER_SIZE..limits.batch_bytes_max) but is not
        a log setting: the broker reads it from the topic's configs and enforces it per batch;
        so are `min.insync.replicas` (1..limits.replicas_max, for acks=all) and
        `unclean.leader.election.enable` (true|false), which the controller reads.
        An unknown key or a bad value raises INVALID_CONFIG naming the key.
        """
        values: dict[str, object] = {}
        for key, text in configs.items():
            if key not in TOPIC_CONFIG_FIELDS:
                raise ZafkaError(
                    "INVALID_CONFIG",
                    f"unknown topic config {str(key)[:64]!r}"
                    f" (known: {', '.join(TOPIC_CONFIG_FIELDS)})",
                )
            if not isinstance(text, str):
                raise ZafkaError(
                    "INVALID_CONFIG", f"{key}: value must be a string, got {type(text).__name__}"
                )
            field = TOPIC_CONFIG_FIELDS[key]
            value: object = text
            try:
                if key == "unclean.leader.election.enable":
                    if text not in BOOLEANS:
                        raise ValueError("expected true or false")
                    continue
                if key == "zafka.fsync":
                    modes = [mode.value for mode in Fsync]
                    if text not in modes:
                        raise ValueError(f"expected one of {', '.join(modes)}")
                    value = Fsync(text)
                elif key != "cleanup.policy":
                    if _LONG.fullmatch(text) is None or not -(2**63) <= int(text) < 2**63:
                        raise ValueError("expected a decimal integer (64-bit)")
                    value = int(text)
                if key == "min.insync.replicas":
                    if not 1 <= int(text) <= limits.replicas_max:
                        raise ValueError(f"must be 1..{limits.replicas_max}")
                    continue
                if field is None:  # max.message.bytes
                    if not HEADER_SIZE <= int(text) <= limits.batch_bytes_max:
                        raise ValueError(f"must be {HEADER_SIZE}..{limits.batch_bytes_max}")
                    continue
                cls(**{field: value})  # the field's own range check, with every other default
            except (ValueError, ZafkaError) as e:
                reason = e.detail if isinstance(e, ZafkaError) else str(e)
                raise ZafkaError("INVALID_CONFIG", f"{key}={text[:64]!r}: {reason}") from None
            values[field] = value
        if "flush.ms" in configs and values.get("fsync", Fsync.INTERVAL) is not Fsync.INTERVAL:
            raise ZafkaError("INVALID_CONFIG", "flush.ms applies only with zafka.fsync=interval")
        return cls(**values)


def topic_config_defaults() -> dict[str, str]:
    """Every topic config key with its value when the topic does not set it, as Kafka's
    strings (what DescribeConfigs shows as a default)."""
    return dict(_defaults())


@functools.cache
def _defaults() -> tuple[tuple[str, str], ...]:
    base = LogConfig()
    values = {}
    for key, field in TOPIC_CONFIG_FIELDS.items():
        if field is None:
            values[key] = _OTHER_DEFAULTS[key]
        else:
            value = getattr(base, field)
            values[key] = value.value if isinstance(value, Enum) else str(value)
    return tuple(values.items())
