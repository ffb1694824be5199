"""Property test: random appends, reads, rolls, retention, truncation and reopens (clean or
crashed) against a simple in-memory model. Every read must equal the model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.unit.storage_helpers import crash
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch, parse_header, stamp
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import PartitionLog

CONFIG = LogConfig(
    segment_bytes=1024, index_interval_bytes=100, segment_ms=10**15, fsync=Fsync.NEVER
)


class LogModel(RuleBasedStateMachine):
    """The model: the stamped batches in order, and the log start offset."""

    @initialize()
    def open(self):
        self.dir = Path(tempfile.mkdtemp(prefix="zafka-model-"))
        self.log = PartitionLog.open(self.dir, CONFIG)
        self.batches: list[tuple[int, int, bytes]] = []  # (base, last, bytes as stored)
        self.start = 0
        self.end = 0

    def teardown(self):
        crash(self.log)
        shutil.rmtree(self.dir)

    @rule(
        count=st.integers(1, 6),
        value_bytes=st.integers(0, 300),
        timestamps=st.lists(st.integers(0, 10**6), min_size=6, max_size=6),
    )
    def append(self, count, value_bytes, timestamps):
        records = [(timestamps[i], b"k%d" % i, b"v" * value_bytes, None) for i in range(count)]
        data = build_batch(records)
        base, last = self.log.append(data, 0)
        assert (base, last) == (self.end, self.end + count - 1)
        stamped = bytearray(data)
        stamp(stamped, base, 0)
        self.batches.append((base, last, bytes(stamped)))
        self.end = last + 1

    @rule(data=st.data(), max_bytes=st.integers(1, 3000))
    def read(self, data, max_bytes):
        offset = data.draw(st.integers(self.start, self.end))
        got = bytes(self.log.read(offset, max_bytes))
        expected = [b for base, last, b in self.batches if last >= offset]
        if offset == self.end:
            assert got == b""
            return
        # Whole batches in order from the one holding `offset`; at least one; within the
        # budget after the first; a read stops early only at a segment boundary.
        taken, size = [], 0
        for b in expected:
            if taken and size + len(b) > max_bytes:
                break
            taken.append(b)
            size += len(b)
        assert got == b"".join(taken[: _count_batches(got)])
        assert got, "a read below the log end returned nothing"
        returned = _count_batches(got)
        if returned < len(taken):
            next_base = parse_header(taken[returned]).base_offset
            assert next_base in {s.base_offset for s in self.log.segments}

    @rule(offset=st.integers(-5, -1) | st.integers(1, 5))
    def read_out_of_range(self, offset):
        target = self.start + offset if offset < 0 else self.end + offset
        try:
            self.log.read(target, 100)
        except ZafkaError as err:
            assert err.error.name == "OFFSET_OUT_OF_RANGE"
        else:
            raise AssertionError(f"read at {target} outside [{self.start}, {self.end}]")

    @rule()
    def roll(self):
        self.log.roll()

    @rule(data=st.data())
    def delete_records_before(self, data):
        offset = data.draw(st.integers(self.start, self.end))
        self.log.delete_records_before(offset)
        self.start = offset

    @rule()
    def retention_by_size(self):
        config = LogConfig(retention_bytes=2048, retention_ms=-1)
        self.log.config, saved = config, self.log.config
        self.log.enforce_retention()
        self.log.config = saved
        assert self.log.log_start_offset >= self.start
        self.start = self.log.log_start_offset

    @rule(data=st.data())
    def truncate(self, data):
        offset = data.draw(st.integers(self.start, self.end))
        self.log.truncate_to(offset)
        removed = [b for b in self.batches if b[1] >= offset]  # whole batches go
        if removed:
            self.end = removed[0][0]
            self.batches = self.batches[: len(self.batches) - len(removed)]
        self.start = min(self.start, self.end)

    @rule(clean=st.booleans())
    def reopen(self, clean):
        if clean:
            self.log.close()
        else:
            crash(self.log)  # all writes reached the page cache: nothing may be lost
        self.log = PartitionLog.open(self.dir, CONFIG)

    @invariant()
    def offsets_match(self):
        if hasattr(self, "log"):
            assert (self.log.log_start_offset, self.log.log_end_offset) == (self.start, self.end)

    @invariant()
    def tail_in_memory_matches_the_file(self):
        """The batches the active segment keeps in memory are the ones its file holds."""
        if hasattr(self, "log"):
            segment = self.log._segments[-1]
            for position, size, last in segment._tail:
                walked = next(segment._walk(position))
                assert walked == (position, size, last)
            if segment._tail:
                position, size, _ = segment._tail[-1]
                assert position + size == segment.size


def _count_batches(data: bytes) -> int:
    position, count = 0, 0
    while position < len(data):
        position += parse_header(data, position).size
        count += 1
    return count


LogModel.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestLogModel = LogModel.TestCase
