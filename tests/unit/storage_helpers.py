"""Helpers shared by the storage tests: batches, logs on real files, simulated crashes."""

from __future__ import annotations

from pathlib import Path

from zafka.storage.batch import build_batch
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import PartitionLog
from zafka.storage.records import read_records

# Rolls by size only: test records carry small timestamps, which rolling by age would see as old.
SMALL = LogConfig(
    segment_bytes=2048, index_interval_bytes=128, segment_ms=10**15, fsync=Fsync.NEVER
)


def batch(count: int = 2, ts: int = 1_000, value_bytes: int = 40, key: bytes | None = b"k"):
    records = [(ts + i, key, bytes([i % 256]) * value_bytes, None) for i in range(count)]
    return build_batch(records)


def crash(log: PartitionLog) -> None:
    """Drop the log as kill -9 would: file descriptors closed, nothing flushed or sealed."""
    for segment in log.segments:
        segment.close()


def all_records(log: PartitionLog, start: int | None = None) -> list:
    """Every record from `start` (default log start) to the log end, read batch by batch."""
    offset = log.log_start_offset if start is None else start
    out = []
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        position = 0
        while position < len(data):
            size = 12 + int.from_bytes(data[position + 8 : position + 12], "big")
            out += [r for r in read_records(data[position : position + size]) if r.offset >= offset]
            position += size
        offset = out[-1].offset + 1 if out else log.log_end_offset
    return out


def open_log(path: Path, config: LogConfig = SMALL) -> PartitionLog:
    return PartitionLog.open(path, config)
