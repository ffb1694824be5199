"""PartitionLog: the durable, segmented log of one partition.

A plain synchronous object (no sockets, threads or locks) that the partition actor owns.
Batches arrive already built and CRC-stamped by producers; the log validates them, stamps
offsets and leader epoch in place, appends them to the active segment and serves them back
as whole batches, never decompressing on the produce or fetch path.

Files in the partition directory: `<base>.log|.index|.timeindex` per segment,
`recovery-point`, `log-start-offset` and `leader-epoch-checkpoint` (see docs/STORAGE.md).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

from zafka import limits
from zafka.clock import monotonic_ms, wall_ms
from zafka.errors import ZafkaError
from zafka.storage import checkpoint, compaction
from zafka.storage.batch import BatchHeader, check_batch, parse_header, stamp
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.epochs import LeaderEpochCache
from zafka.storage.records import read_batch
from zafka.storage.segment import LogSegment

RECOVERY_POINT = "recovery-point"
LOG_START = "log-start-offset"
EPOCHS = "leader-epoch-checkpoint"


class PartitionLog:
    """Use `PartitionLog.open(directory, config)`; `close()` when done."""

    def __init__(self, directory: Path, config: LogConfig, segments: list[LogSegment]) -> None:
        self.directory = directory
        self.config = config
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self.log_start_offset = segments[0].base_offset
        self.recovery_point = 0
        self.epochs = LeaderEpochCache()
        self._unflushed: list[LogSegment] = []  # rolled since the last fsync
        self._flushed_offset = 0  # everything below it has been fsynced
        self._last_flush_ms = monotonic_ms()
        self._durable_point_ms = self._last_flush_ms - limits.recovery_point_durable_interval_ms

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: LogConfig | None = None) -> PartitionLog:
        """Open (or create) the log in `directory`, recovering whatever a crash left."""
        from zafka.storage.recovery import open_segments  # recovery depends on this module

        config = config or LogConfig()
        directory.mkdir(parents=True, exist_ok=True)
        start = checkpoint.read_offset(directory / LOG_START) or 0
        recovery_point = checkpoint.read_offset(directory / RECOVERY_POINT) or 0
        segments = open_segments(directory, config, recovery_point, start)
        log = cls(directory, config, segments)
        # A power loss can leave checkpoints ahead of the data they describe: clamp them.
        log.log_start_offset = min(max(start, segments[0].base_offset), log.log_end_offset)
        if log.log_start_offset != start:
            checkpoint.write_offset(directory / LOG_START, log.log_start_offset)
        log.recovery_point = log._flushed_offset = min(recovery_point, log.log_end_offset)
        if log.recovery_point != recovery_point:
            checkpoint.write_offset(directory / RECOVERY_POINT, log.recovery_point)
        # Segments holding offsets past the recovery point came back from the page cache,
        # maybe never fsynced: the next flush must fsync them before moving the point.
        log._unflushed = [s for s in segments[:-1] if s.next_offset > log.recovery_point]
        log._load_epochs()
        return log

    def _load_epochs(self) -> None:
        lines = checkpoint.read_lines(self.directory / EPOCHS)
        if lines is not None:
            self.epochs = LeaderEpochCache([tuple(map(int, line.split())) for line in lines])
        else:  # missing or garbled: every batch header carries its epoch, so rebuild
            for header in self.headers():
                self.epochs.assign(header.leader_epoch, header.base_offset)
        self.epochs.truncate_from_end(self.log_end_offset)
        self._write_epochs()

    def headers(self) -> Iterator[BatchHeader]:
        """Every readable batch header, oldest first (what leader epochs and producer state
        are rebuilt from). A damaged sealed segment's walk stops at the damage: reads of it
        report CORRUPT_MESSAGE."""
        for segment in self._segments:
            position = 0
            while position < segment.size:
                try:
                    header = segment.header_at(position)
                except ZafkaError:
                    break
                yield header
                position += header.size

    def _write_epochs(self) -> None:
        lines = [f"{epoch} {start}" for epoch, start in self.epochs.entries()]
        checkpoint.write_lines(self.directory / EPOCHS, lines)

    def close(self) -> None:
        """Flush, seal the active segment and checkpoint, so a clean restart scans nothing."""
        self.flush()
        for segment in self._segments:
            if segment is self.active or not segment.sealed:  # recovered ones need theirs
                segment.seal(fsync=True)
            segment.close()

    # --- offsets --------------------------------------------------------------------------

    @property
    def active(self) -> LogSegment:
        return self._segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.active.next_offset

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> tuple[LogSegment, ...]:
        return tuple(self._segments)

    # --- appending ------------------------------------------------------------------------

    def append(self, batch: bytes | bytearray, leader_epoch: int) -> tuple[int, int]:
        """Validate a producer's batch, stamp its offsets and epoch, append it.

        Returns (base_offset, last_offset). Raises ZafkaError (CORRUPT_MESSAGE,
        MESSAGE_TOO_LARGE, FENCED_LEADER_EPOCH) and appends nothing when the batch is bad or
        its epoch is older than the latest. A bytearray is stamped in place; bytes are
        copied once to be stamped.
        """
        if leader_epoch < max(self.epochs.latest_epoch, 0):
            raise ZafkaError(
                "FENCED_LEADER_EPOCH", f"epoch {leader_epoch} < {self.epochs.latest_epoch}"
            )
        header = check_batch(batch)
        buf = batch if isinstance(batch, bytearray) else bytearray(batch)
        base = self.log_end_offset
        stamp(buf, base, leader_epoch)
        if self._should_roll(len(buf), header.max_timestamp):
            self.roll()
        self.begin_epoch(leader_epoch)
        last = base + header.last_offset_delta
        self.active.append(buf, base, last, header.max_timestamp)
        if self.config.fsync is Fsync.ALWAYS:
            self._fsync_data()
        if self.config.fsync is not Fsync.NEVER:
            self.flush_if_due()
        return base, last

    def append_replicated(self, data: bytes | memoryview) -> list[BatchHeader]:
        """Append a leader's stored batches as they are (a follower): each is checked
        (CRC, limits) and must start at the log end; its header's epoch enters the epoch
        history. Returns their headers. CORRUPT_MESSAGE on a bad or misplaced batch: the
        batches before it stay appended."""
        view, position, headers = memoryview(data), 0, []
        while position < len(view):
            header = parse_header(view, position)
            batch = view[position : position + header.size]
            header = check_batch(batch)
            if header.base_offset != self.log_end_offset:
                raise ZafkaError(
                    "CORRUPT_MESSAGE",
                    f"replicated batch at {header.base_offset}, the log ends at "
                    f"{self.log_end_offset}",
                )
            if self._should_roll(header.size, header.max_timestamp):
                self.roll()
            self.begin_epoch(header.leader_epoch)
            self.active.append(batch, header.base_offset, header.last_offset, header.max_timestamp)
            headers.append(header)
            position += header.size
        if headers and self.config.fsync is Fsync.ALWAYS:
            self._fsync_data()
        return headers

    def begin_epoch(self, epoch: int) -> None:
        """Epoch `epoch` starts at the log end (a leader taking over, or a replicated batch
        of a newer epoch); an older or the same epoch changes nothing."""
        if epoch > self.epochs.latest_epoch:
            self.epochs.assign(epoch, self.log_end_offset)
            self._write_epochs()

    def _should_roll(self, batch_bytes: int, batch_max_timestamp: int) -> bool:
        """Roll by size, or by age measured in record time as Kafka does: the incoming
        batch's newest timestamp against the active segment's first batch."""
        active = self.active
        if active.size == 0:
            return False
        too_big = active.size + batch_bytes > self.config.segment_bytes
        age_ms = batch_max_timestamp - active.first_batch_timestamp
        return too_big or age_ms >= self.config.segment_ms

    def roll(self) -> None:
        """Seal the active segment and start a new one at the log end offset."""
        if self.active.size == 0:
            return
        old = self.active
        old.seal(fsync=self.config.fsync is not Fsync.NEVER)
        if old not in self._unflushed:  # it may have been rolled, truncated back and rolled
            self._unflushed.append(old)
        new = LogSegment(self.directory, old.next_offset, self.config.index_interval_bytes)
        if self.config.fsync is not Fsync.NEVER:  # the new files' entries, as Kafka's roll
            checkpoint.fsync_directory(self.directory)
        self._segments.append(new)
        self._bases.append(new.base_offset)

    # --- durability -----------------------------------------------------------------------

    def _fsync_data(self) -> None:
        for segment in self._unflushed:
            segment.flush()
        self._unflushed.clear()
        self.active.flush()
        self._flushed_offset = self.log_end_offset

    def flush(self) -> None:
        """fsync everything appended so far and advance the recovery point to the log end."""
        self._fsync_data()
        self._checkpoint_recovery_point()

    def _checkpoint_recovery_point(self) -> None:
        """After a data fsync the point moves forward: written durably at most every
        `limits.recovery_point_durable_interval_ms`, as a hint between (an older one after a
        power loss makes recovery scan more, and treat a damaged batch there as a torn
        tail; every write that lowers the point is durable)."""
        self.recovery_point = self._flushed_offset
        now_ms = monotonic_ms()
        durable = now_ms - self._durable_point_ms >= limits.recovery_point_durable_interval_ms
        checkpoint.write_offset(self.directory / RECOVERY_POINT, self.recovery_point, durable)
        if durable:
            self._durable_point_ms = now_ms
        self._last_flush_ms = now_ms

    def flush_if_due(self, now_ms: int | None = None) -> bool:
        """When `fsync_interval_ms` has passed (on the monotonic clock: `now_ms` must come
        from `monotonic_ms` or the runtime's clock), fsync (mode interval) and move the
        recovery point (modes interval and always). True if the recovery point moved."""
        now_ms = monotonic_ms() if now_ms is None else now_ms
        if self.config.fsync is Fsync.NEVER or self.recovery_point == self.log_end_offset:
            return False
        if now_ms - self._last_flush_ms < self.config.fsync_interval_ms:
            return False
        if self.config.fsync is Fsync.INTERVAL:
            self._fsync_data()
        self._checkpoint_recovery_point()
        return True

    # --- reading --------------------------------------------------------------------------

    def _check_offset(self, offset: int) -> None:
        if not self.log_start_offset <= offset <= self.log_end_offset:
            raise ZafkaError(
                "OFFSET_OUT_OF_RANGE",
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}]",
            )

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None) -> memoryview:
        """Whole stored batches from the one holding `offset`, up to `max_bytes` (at least one
        batch, so a consumer always progresses), none reaching `max_offset` (the high
        watermark). Empty at the log end. The first batch may start below `offset`: the
        consumer skips those records."""
        self._check_offset(offset)
        index = bisect.bisect_right(self._bases, offset) - 1
        for segment in self._segments[max(index, 0) :]:
            position = segment.position_of(offset)
            if position < segment.size:
                return segment.read(position, max_bytes, max_offset)
        return memoryview(b"")

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The first offset >= log start whose record timestamp is >= `timestamp`, or None."""
        for segment in self._segments:
            if segment.max_timestamp < timestamp:
                continue
            position = segment.position_for_timestamp(timestamp)
            while position < segment.size:
                batch = segment.read(position, 0, None)
                decoded = read_batch(batch)
                for offset, stamp_ms in zip(decoded.offsets, decoded.timestamps, strict=True):
                    if stamp_ms >= timestamp and offset >= self.log_start_offset:
                        return offset
                position += len(batch)
        return None

    # --- removing -------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Remove every batch whose last offset is >= `offset` (a diverged replica's tail)."""
        self._check_offset(offset)
        while len(self._segments) > 1 and self.active.base_offset >= offset:
            self._drop_segment(-1)
        if self.active.base_offset >= offset:
            self._discard(self.active)
            self._segments[-1] = LogSegment(
                self.directory, offset, self.config.index_interval_bytes
            )
            self._bases[-1] = offset
            self.log_start_offset = offset
        else:
            self.active.truncate_to(offset)
        if self.log_start_offset > self.log_end_offset:  # the cut batch straddled the start
            self.log_start_offset = self.log_end_offset
            checkpoint.write_offset(self.directory / LOG_START, self.log_start_offset)
        self.epochs.truncate_from_end(self.log_end_offset)
        self._write_epochs()
        self._flushed_offset = min(self._flushed_offset, self.log_end_offset)
        if self.recovery_point > self.log_end_offset:
            self.recovery_point = self.log_end_offset
            checkpoint.write_offset(self.directory / RECOVERY_POINT, self.recovery_point)

    def reset_to(self, offset: int) -> None:
        """Empty the log and start it at `offset` (a follower whose end is below its leader's
        log start: what it holds is gone from the leader)."""
        while len(self._segments) > 1:
            self._drop_segment(-1)
        self._discard(self.active)
        self._segments[-1] = LogSegment(self.directory, offset, self.config.index_interval_bytes)
        self._bases[-1] = self.log_start_offset = offset
        self.epochs = LeaderEpochCache()
        self._write_epochs()
        self._flushed_offset = self.recovery_point = offset
        checkpoint.write_offset(self.directory / LOG_START, offset)
        checkpoint.write_offset(self.directory / RECOVERY_POINT, offset)

    def delete_records_before(self, offset: int) -> None:
        """Advance the log start to `offset`; whole segments below it are deleted."""
        if offset > self.log_end_offset:
            self._check_offset(offset)
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        checkpoint.write_offset(self.directory / LOG_START, offset)
        if self.active.next_offset <= offset:
            self.roll()
        while len(self._segments) > 1 and self._segments[0].next_offset <= offset:
            self._drop_segment(0)
        self.epochs.truncate_from_start(offset)
        self._write_epochs()

    def _drop_segment(self, index: int) -> None:
        segment = self._segments.pop(index)
        del self._bases[index]
        self._discard(segment)

    def _discard(self, segment: LogSegment) -> None:
        if segment in self._unflushed:
            self._unflushed.remove(segment)
        segment.delete()

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete whole sealed segments past `retention_ms` or beyond `retention_bytes`
        (cleanup.policy=delete only). Returns how many were deleted."""
        if self.config.cleanup_policy != "delete":
            return 0
        now_ms = wall_ms() if now_ms is None else now_ms
        retention_ms, retention_bytes = self.config.retention_ms, self.config.retention_bytes
        total = self.size_bytes
        deleted = 0
        while len(self._segments) > 1:
            oldest = self._segments[0]
            expired = retention_ms >= 0 and oldest.max_timestamp < now_ms - retention_ms
            oversize = retention_bytes >= 0 and total - oldest.size >= retention_bytes
            if not (expired or oversize):
                break
            total -= oldest.size
            self._drop_segment(0)
            deleted += 1
        if deleted and self._segments[0].base_offset > self.log_start_offset:
            self.log_start_offset = self._segments[0].base_offset
            checkpoint.write_offset(self.directory / LOG_START, self.log_start_offset)
            self.epochs.truncate_from_start(self.log_start_offset)
            self._write_epochs()
        return deleted

    def compact(self, now_ms: int | None = None) -> int:
        """With cleanup.policy=compact, rewrite sealed segments keeping the latest record
        per key (see compaction.py). Returns how many records were removed."""
        if self.config.cleanup_policy != "compact":
            return 0
        now_ms = wall_ms() if now_ms is None else now_ms
        latest = compaction.latest_offsets(self.segments)
        horizon_ms = now_ms - self.config.delete_retention_ms
        removed = 0
        for index in range(len(self._segments) - 2, -1, -1):  # sealed segments, newest first
            segment = self._segments[index]
            cleaned = segment.log_path.with_name(segment.log_path.name + ".cleaned")
            count = compaction.write_cleaned(segment, latest, horizon_ms, cleaned)
            if count:
                self._swap_in(index, cleaned)
                removed += count
            else:
                cleaned.unlink()
        return removed

    def _swap_in(self, index: int, cleaned: Path) -> None:
        old = self._segments[index]
        if old in self._unflushed:  # the cleaned file was fsynced before the rename
            self._unflushed.remove(old)
        old.close()
        cleaned.replace(old.log_path)
        new = LogSegment(self.directory, old.base_offset, self.config.index_interval_bytes)
        new.recover()
        self._segments[index] = new
        if new.size == 0 and index > 0:
            self._drop_segment(index)
        else:
            new.seal(fsync=self.config.fsync is not Fsync.NEVER)
