"""One segment of a partition log: a file of whole record batches, named by its base offset.

Batches are appended as the bytes the producer sent (stamped with offsets), read back as
slices of the file, and never decompressed here. Indexes are rebuilt from the file whenever
they are missing, garbled or describe a different file size (see index.py).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import crc32c

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage import scan
from zafka.storage.batch import CRC_START, HEADER_SIZE, BatchHeader, parse_header
from zafka.storage.index import OFFSET_ENTRY, TIME_ENTRY, SegmentSeal, SparseIndex

_VERIFY = struct.Struct(">qiibIhi")  # base_offset .. last_offset_delta: a header's first 27 bytes
# Batch headers are walked in chunks of this many bytes (one pread each, not one per batch):
# twice the default index interval, so a walk from an index entry mostly takes one read.
_EMPTY = memoryview(b"")
_POSITION = operator.itemgetter(0)


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class LogSegment:
    """The segment file and its indexes; all positions are byte offsets in the file."""

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int) -> None:
        stem = directory / segment_name(base_offset)
        self.base_offset = base_offset
        self.log_path = stem.with_suffix(".log")
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        self.size = os.fstat(self._fd).st_size
        self.offset_index = SparseIndex(stem.with_suffix(".index"), OFFSET_ENTRY)
        self.time_index = SparseIndex(stem.with_suffix(".timeindex"), TIME_ENTRY)
        self._interval_bytes = index_interval_bytes
        self._sealed_on_disk = False  # index files describe the file as it is now
        self._reset_state()

    def _reset_state(self) -> None:
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.first_batch_timestamp = -1  # what rolling by age measures from, as in Kafka
        self._bytes_since_entry = 0
        self.verified_bytes = 0  # batches before this position have passed their CRC check
        self.verified_next_offset = self.base_offset  # the offset after those batches
        self.damaged: dict[int, tuple[int, int]] = {}  # position: offsets, quarantined
        # (position, size, last offset) of each batch indexed since the last offset-index
        # entry (or since the segment was opened), up to the end of the file: reads at the
        # tail, where followers and consumers wait, find their batches here instead of
        # walking headers on disk. At most index_interval_bytes / HEADER_SIZE entries.
        self._tail: list[tuple[int, int, int]] = []
        self.offset_index.clear()
        self.time_index.clear()

    # --- opening --------------------------------------------------------------------------

    def load_sealed(self, recovery_point: int) -> bool:
        """Use the sealed indexes if they match this file and end at or below the recovery
        point (all of it was flushed). False means the caller must `recover()`."""
        seal = self.offset_index.load()
        trusted = (
            seal is not None
            and seal == self.time_index.load()
            and seal.log_bytes == self.size
            and seal.next_offset <= recovery_point
        )
        if not trusted:
            self._reset_state()
            self.offset_index.delete()  # stale or garbled: never trust these files again
            self.time_index.delete()
            return False
        try:
            first = self.header_at(0) if self.size else None
        except ZafkaError:  # the file was damaged after it was sealed
            self._reset_state()
            return False
        self.next_offset = seal.next_offset
        self.max_timestamp = seal.max_timestamp
        if first is not None:
            self.first_batch_timestamp = first.max_timestamp
        self._sealed_on_disk = True
        return True

    def recover(self, recovery_point: int = 0, next_base: int | None = None) -> int:
        """Re-scan the whole file, checking every batch, and rebuild the indexes (see
        scan.py: a torn tail is cut, a flushed batch damaged later is quarantined).
        `next_base` is the next segment's base offset. Returns how many bytes were cut."""
        self._reset_state()
        position = scan.intact_end(self, recovery_point, next_base)
        cut_bytes = self.size - position
        if cut_bytes:
            self._unseal()
            os.ftruncate(self._fd, position)
            self.size = position
        self.verified_bytes, self.verified_next_offset = position, self.next_offset
        if self.damaged:  # reads check (and refuse) from the first damaged batch on
            self.verified_bytes = min(self.damaged)
            self.verified_next_offset = self.damaged[self.verified_bytes][0]
        return cut_bytes

    def quarantine(self, position: int, first: int, last: int, size: int) -> None:
        """Keep the `size` bytes at `position` as offsets `first`..`last`, unreadable."""
        self._bytes_since_entry = self._interval_bytes  # index entries at both ends of it
        self.index_batch(position, first, last, -1, size)
        self._bytes_since_entry = self._interval_bytes
        self.damaged[position] = (first, last)

    def pread(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, position)

    # --- writing --------------------------------------------------------------------------

    def append(
        self, batch: bytearray | memoryview, base: int, last: int, max_timestamp: int
    ) -> None:
        """Write one whole, already checked batch at the end (offsets `base`..`last`).
        On a failed write the file is cut back, so no partial batch stays behind."""
        self._unseal()
        position = self.size
        try:
            written = os.pwrite(self._fd, batch, position)
            while written < len(batch):  # short writes: only on a full disk or a signal
                written += os.pwrite(self._fd, memoryview(batch)[written:], position + written)
        except OSError:
            os.ftruncate(self._fd, position)
            raise
        self.index_batch(position, base, last, max_timestamp, len(batch))
        self.size = position + len(batch)
        if self.verified_bytes == position:  # the log checked it before appending
            self.verified_bytes, self.verified_next_offset = self.size, last + 1

    def index_batch(self, position: int, base: int, last: int, max_ts: int, size: int) -> None:
        self.max_timestamp = max(self.max_timestamp, max_ts)
        if self.first_batch_timestamp < 0:
            self.first_batch_timestamp = max_ts
        if position == 0 or self._bytes_since_entry >= self._interval_bytes:
            relative = base - self.base_offset
            self.offset_index.append(relative, position)
            if not self.time_index or self.max_timestamp > self.time_index.keys[-1]:
                self.time_index.append(self.max_timestamp, relative)
            self._bytes_since_entry = 0
            self._tail = []
        self._tail.append((position, size, last))
        self._bytes_since_entry += size
        self.next_offset = last + 1

    def truncate_to(self, offset: int) -> None:
        """Remove every batch whose last offset is >= `offset`."""
        self._unseal()
        position = self.position_of(offset)
        os.ftruncate(self._fd, position)
        self.size = position
        self.recover(recovery_point=offset)  # what stays was kept: a bad batch there stays

    def seal(self, fsync: bool) -> None:
        """Write both index files with this segment's end state (on roll and on close).
        A segment holding quarantined batches is never sealed: the quarantine lives in
        memory, so each open re-scans the segment and finds it again."""
        if self.damaged:
            return
        seal = SegmentSeal(self.next_offset, self.max_timestamp, self.size)
        self._tail = []  # a sealed segment is read from disk
        self.offset_index.save(seal, fsync)
        self.time_index.save(seal, fsync)
        self._sealed_on_disk = True

    @property
    def sealed(self) -> bool:
        """True when the index files on disk describe this file as it is now."""
        return self._sealed_on_disk

    def _unseal(self) -> None:
        """The file is about to change: its index files no longer describe it."""
        if self._sealed_on_disk:
            self.offset_index.delete()
            self.time_index.delete()
            self._sealed_on_disk = False

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def delete(self) -> None:
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.offset_index.delete()
        self.time_index.delete()

    # --- reading --------------------------------------------------------------------------

    def header_at_unchecked(self, position: int) -> BatchHeader:
        """The header at `position` as the file holds it, its length not checked."""
        return parse_header(os.pread(self._fd, HEADER_SIZE, position))

    def header_at(self, position: int) -> BatchHeader:
        """The header of the batch at `position`; CORRUPT_MESSAGE if its length cannot be
        right (so no walk over a damaged file can loop or run past the end)."""
        header = self.header_at_unchecked(position)
        if not HEADER_SIZE <= header.size <= self.size - position:
            raise ZafkaError(
                "CORRUPT_MESSAGE",
                f"batch length {header.size} at byte {position} of {self.log_path}",
            )
        return header

    def position_of(self, offset: int) -> int:
        """Position of the first batch whose last offset is >= `offset` (or the file size)."""
        for position, (first, last) in self.damaged.items():
            if first <= offset <= last:
                return position
        entry = self.offset_index.floor(offset - self.base_offset)
        start = self.offset_index.values[entry] if entry >= 0 else 0
        for position, _, last_offset in self._batches_from(start):
            if last_offset >= offset:
                return position
        return self.size

    def _batches_from(self, position: int) -> Iterator[tuple[int, int, int]]:
        """As `_walk`, from memory when `position` is a batch boundary in the known tail."""
        tail = self._tail
        if tail and position >= tail[0][0] and not self.damaged:
            if position == self.size:
                return iter(())
            at = bisect.bisect_left(tail, position, key=_POSITION)
            if at < len(tail) and tail[at][0] == position:
                return itertools.islice(tail, at, None)
        return self._walk(position)

    def _walk(self, position: int) -> Iterator[tuple[int, int, int]]:
        """(position, size, last offset) of each batch from `position` to the end, reading
        `limits.segment_walk_chunk_bytes` at a time. CORRUPT_MESSAGE where a length cannot be
        right (as `header_at`), so a walk over a damaged file never loops or runs past the end."""
        end = self.size
        while position < end:
            chunk = os.pread(
                self._fd, min(limits.segment_walk_chunk_bytes, end - position), position
            )
            at = 0
            while at + HEADER_SIZE <= len(chunk):
                base, length, _, _, _, _, delta = _VERIFY.unpack_from(chunk, at)
                size = 12 + length
                if not HEADER_SIZE <= size <= end - position - at:
                    break  # header_at below says what is wrong
                yield position + at, size, base + delta
                at += size
            if at == 0:
                self.header_at(position)  # raises: no whole header, or a bad length, here
                raise ZafkaError(
                    "CORRUPT_MESSAGE", f"no batch at byte {position} of {self.log_path}"
                )
            position += at

    def position_for_timestamp(self, timestamp: int) -> int:
        """Position of the first batch with max timestamp >= `timestamp` (or the file size)."""
        entry = self.time_index.lower(timestamp)
        relative = self.time_index.values[entry] if entry >= 0 else 0
        start = self.position_of(self.base_offset + relative)
        return self._first_from(start, lambda header: header.max_timestamp >= timestamp)

    def _first_from(self, position: int, wanted: Callable[[BatchHeader], bool]) -> int:
        """Walk batch headers from `position` to the first `wanted` one (or the file size)."""
        while position < self.size:
            header = self.header_at(position)
            if wanted(header):
                return position
            position += header.size
        return self.size

    def read(self, position: int, max_bytes: int, max_offset: int | None) -> memoryview:
        """Whole batches from `position`, up to `max_bytes` (but always the first batch whole),
        none with an offset >= `max_offset`: one pread, no copy.

        A batch is CRC-checked the first time it is served since the log was opened (batches
        appended or recovered in this run were checked then), so a corrupt batch is never
        served as valid data, and a consumer tailing the log pays nothing for it. A read
        stops before a damaged batch, so the intact batches before it are served; a read that
        starts at one is CORRUPT_MESSAGE naming the segment, the byte and the offsets."""
        if position in self.damaged:
            first, last = self.damaged[position]
            raise self._damaged(position, first, last)
        end = self._end_of_read(position, max_bytes, max_offset)
        if end == position:
            return _EMPTY
        data = memoryview(os.pread(self._fd, end - position, position))
        if end > self.verified_bytes:
            data = data[: self._verified_prefix(data, position)]
        return data

    def _end_of_read(self, position: int, max_bytes: int, max_offset: int | None) -> int:
        """The batch boundary where a read from `position` stops (before damaged framing)."""
        limit = position + max_bytes
        positions = self.offset_index.values
        entry = bisect.bisect_right(positions, limit) - 1  # index: skip ahead, then walk
        end = max(position, positions[entry]) if entry >= 0 else position
        if max_offset is not None:
            below = self.offset_index.floor(max_offset - self.base_offset)
            end = min(end, max(position, positions[below])) if below >= 0 else position
        try:
            for at, size, last_offset in self._batches_from(end):
                if last_offset >= self.next_offset:  # a stamped offset the CRC leaves out
                    raise ZafkaError(
                        "CORRUPT_MESSAGE",
                        f"batch at byte {at} of {self.log_path} claims offset {last_offset}",
                    )
                if (at > position and at + size > limit) or (
                    max_offset is not None and last_offset >= max_offset
                ):
                    return at
                end = at + size
        except ZafkaError as err:
            if end > position:
                return end  # serve what comes before the damage; the next read reports it
            first = self._first_offset_at(end)
            detail = f"{err.detail}, offsets {first}..{self.next_offset - 1}"
            raise ZafkaError("CORRUPT_MESSAGE", detail) from None
        return self.size

    def _first_offset_at(self, position: int) -> int:
        """The lowest offset the batch at `position` (a batch boundary) may hold: one past
        the batch before it, found by walking from the index entry below."""
        if position == 0:
            return self.base_offset
        entry = bisect.bisect_right(self.offset_index.values, position - 1) - 1
        at = self.offset_index.values[entry] if entry >= 0 else 0
        for start, size, last_offset in self._walk(at):
            if start + size >= position:
                return last_offset + 1
        return self.base_offset

    def _verified_prefix(self, data: memoryview, position: int) -> int:
        """How many bytes of `data` (read at `position`) are good batches: each not checked
        yet must have a length that fits, pass its CRC and hold offsets that go on from the
        batch before it and stay inside this segment (the CRC does not cover the
        leader-stamped base offset). CORRUPT_MESSAGE if the first batch is bad. The rest of
        each header was validated on append."""
        offset = 0
        previous_last = self.base_offset - 1
        if position > self.verified_bytes:  # a cold read: offsets go on from the batch before
            previous_last = self._first_offset_at(position) - 1
        while offset < len(data):
            start = position + offset
            if start < self.verified_bytes:
                base, length, _, _, _, _, delta = _VERIFY.unpack_from(data, offset)
                size, last = 12 + length, base + delta
            else:
                if start == self.verified_bytes:
                    previous_last = max(previous_last, self.verified_next_offset - 1)
                checked = self._check_batch_at(data, offset, previous_last)
                if checked is None and offset:
                    return offset
                if checked is None:
                    raise self._damaged(start, *self._claimed_offsets(data))
                size, last = checked
                if start == self.verified_bytes:
                    self.verified_bytes, self.verified_next_offset = start + size, last + 1
            previous_last = last
            offset += size
        return offset

    def _check_batch_at(
        self, data: memoryview, offset: int, previous_last: int
    ) -> tuple[int, int] | None:
        """(size, last offset) of the batch at `offset` in `data`, or None if it is bad: a
        length that does not fit, offsets out of order, or a CRC mismatch."""
        if len(data) - offset < HEADER_SIZE:
            return None
        base, length, _, _, crc, _, delta = _VERIFY.unpack_from(data, offset)
        size, last = 12 + length, base + delta
        if not HEADER_SIZE <= size <= len(data) - offset:
            return None
        if not previous_last < base <= last < self.next_offset:
            return None
        if crc != crc32c.crc32c(data[offset + CRC_START : offset + size]):
            return None
        return size, last

    @staticmethod
    def _claimed_offsets(data: memoryview) -> tuple[int, int]:
        """The offsets the (bad) batch at the start of `data` claims, if it has a header."""
        if len(data) < _VERIFY.size:
            return -1, -1
        base, _, _, _, _, _, delta = _VERIFY.unpack_from(data)
        return base, base + delta

    def _damaged(self, start: int, base: int, last: int) -> ZafkaError:
        """The error for a bad batch at byte `start`: the offsets it claims when they fit
        after the batch before it, else all it may hold (up to the segment's end)."""
        first = self._first_offset_at(start)
        if not first <= base <= last < self.next_offset:
            base, last = first, self.next_offset - 1
        detail = f"bad batch at byte {start} of {self.log_path}, offsets {base}..{last}"
        return ZafkaError("CORRUPT_MESSAGE", detail)
