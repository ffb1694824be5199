"""Sparse indexes of one segment: offset -> file position, and timestamp -> offset.

Entries live in memory while a segment is written. The file is written whole when the
segment is sealed (rolled or closed) with a trailer holding the segment's end state and a
CRC-32C over everything, so a missing, torn or garbled index is detected on load and rebuilt
from the log ("a crash means rebuild", as in Kafka's LogSegment).
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c

OFFSET_ENTRY = struct.Struct(">II")  # offset relative to the segment base, file position
TIME_ENTRY = struct.Struct(">qI")  # largest timestamp so far (ms), relative offset
_TRAILER = struct.Struct(">qqqI")  # next_offset, max_timestamp, log_bytes, crc32c


@dataclass(frozen=True)
class SegmentSeal:
    """A sealed segment's end state, stored in its index trailers."""

    next_offset: int
    max_timestamp: int
    log_bytes: int


class SparseIndex:
    """Sorted (key, value) pairs; keys strictly increase, values never decrease."""

    def __init__(self, path: Path, entry: struct.Struct) -> None:
        self.path = path
        self._entry = entry
        self.keys: list[int] = []
        self.values: list[int] = []

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, key: int, value: int) -> None:
        if self.keys and (key <= self.keys[-1] or value < self.values[-1]):
            raise ValueError(f"index entry ({key}, {value}) out of order")
        self.keys.append(key)
        self.values.append(value)

    def floor(self, key: int) -> int:
        """Position in the index of the largest key <= `key`, or -1."""
        return bisect.bisect_right(self.keys, key) - 1

    def lower(self, key: int) -> int:
        """Position in the index of the largest key < `key`, or -1."""
        return bisect.bisect_left(self.keys, key) - 1

    def truncate(self, count: int) -> None:
        del self.keys[count:], self.values[count:]

    def clear(self) -> None:
        self.truncate(0)

    def save(self, seal: SegmentSeal, fsync: bool) -> None:
        body = b"".join(map(self._entry.pack, self.keys, self.values))
        head = _TRAILER.pack(seal.next_offset, seal.max_timestamp, seal.log_bytes, 0)[:-4]
        data = body + head + struct.pack(">I", crc32c.crc32c(body + head))
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self) -> SegmentSeal | None:
        """Read the file; the seal it records, or None (entries cleared) if it is unusable."""
        self.clear()
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        body_bytes = len(data) - _TRAILER.size
        if body_bytes < 0 or body_bytes % self._entry.size:
            return None
        next_offset, max_ts, log_bytes, crc = _TRAILER.unpack_from(data, body_bytes)
        if crc != crc32c.crc32c(memoryview(data)[:-4]):
            return None
        # The CRC proves these are the entries `save` wrote, which `append` kept in order.
        entries = self._entry.iter_unpack(memoryview(data)[:body_bytes])
        columns = list(zip(*entries, strict=True)) or [(), ()]
        self.keys, self.values = list(columns[0]), list(columns[1])
        return SegmentSeal(next_offset, max_ts, log_bytes)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
