"""PartitionLog on real files: appends, reads, offsets, timestamps, epochs, errors."""

from __future__ import annotations

import random

import pytest

from tests.unit.storage_helpers import SMALL, all_records, batch, crash, open_log
from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch, parse_header
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import PartitionLog


def test_append_assigns_consecutive_offsets_and_rolls_segments(tmp_path):
    log = open_log(tmp_path)
    results = [log.append(batch(3), leader_epoch=0) for _ in range(40)]
    assert results == [(3 * i, 3 * i + 2) for i in range(40)]
    assert log.log_end_offset == 120
    assert len(log.segments) > 1
    assert all(s.size <= SMALL.segment_bytes for s in log.segments)
    assert [r.offset for r in all_records(log)] == list(range(120))


def test_read_returns_whole_batches_from_the_one_holding_the_offset(tmp_path):
    log = open_log(tmp_path)
    for _ in range(10):
        log.append(batch(3), 0)
    data = log.read(7, max_bytes=1)  # smaller than one batch: still one whole batch
    header = parse_header(data)
    assert (header.base_offset, header.last_offset, header.size) == (6, 8, len(data))
    assert log.read(log.log_end_offset, 1000) == b""


def test_read_stops_below_max_offset(tmp_path):
    log = open_log(tmp_path)
    for _ in range(4):
        log.append(batch(2), 0)
    data = log.read(0, 1 << 20, max_offset=4)
    assert [r.offset for r in all_records_of(data)] == [0, 1, 2, 3]
    assert log.read(4, 1 << 20, max_offset=4) == b""


def all_records_of(data):
    from zafka.storage.records import read_records

    position, out = 0, []
    while position < len(data):
        size = parse_header(data, position).size
        out += read_records(data[position : position + size])
        position += size
    return out


@pytest.mark.parametrize("offset", [-1, 11])
def test_reading_outside_the_log_is_offset_out_of_range(tmp_path, offset):
    log = open_log(tmp_path)
    for _ in range(5):
        log.append(batch(2), 0)
    with pytest.raises(ZafkaError) as err:
        log.read(offset, 100)
    assert err.value.error.name == "OFFSET_OUT_OF_RANGE"


def test_a_corrupt_batch_is_refused_and_nothing_is_appended(tmp_path):
    log = open_log(tmp_path)
    bad = bytearray(batch(2))
    bad[-1] ^= 0x01
    with pytest.raises(ZafkaError) as err:
        log.append(bytes(bad), 0)
    assert err.value.error.name == "CORRUPT_MESSAGE"
    assert log.log_end_offset == 0 and log.active.size == 0


def test_offset_for_timestamp_finds_the_first_record_at_or_after(tmp_path):
    log = open_log(tmp_path)
    for i in range(30):
        log.append(batch(2, ts=1000 + 10 * i), 0)  # records at 1000+10i and 1001+10i
    assert log.offset_for_timestamp(0) == 0
    assert log.offset_for_timestamp(1001) == 1
    assert log.offset_for_timestamp(1005) == 2
    assert log.offset_for_timestamp(1291) == 59
    assert log.offset_for_timestamp(1292) is None


def test_clean_reopen_scans_nothing_and_keeps_everything(tmp_path):
    log = open_log(tmp_path)
    for i in range(25):
        log.append(batch(2, ts=i), 0)
    before = all_records(log)
    log.close()
    log = open_log(tmp_path)
    assert log.recovery_point == log.log_end_offset == 50
    assert all_records(log) == before


def test_crash_reopen_recovers_every_written_batch(tmp_path):
    log = open_log(tmp_path)
    for _ in range(25):
        log.append(batch(2), 0)
    before = all_records(log)
    crash(log)
    log = open_log(tmp_path)
    assert log.recovery_point == 0 and log.log_end_offset == 50
    assert all_records(log) == before
    log.append(batch(1), 0)
    assert log.log_end_offset == 51


def test_truncate_removes_whole_batches_from_the_offset(tmp_path):
    log = open_log(tmp_path)
    for _ in range(30):
        log.append(batch(3), 0)
    log.truncate_to(50)  # inside batch 48..50: the whole batch goes
    assert log.log_end_offset == 48
    assert log.append(batch(1), 0) == (48, 48)
    log.truncate_to(0)
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (0, 0, 1)
    with pytest.raises(ZafkaError) as err:
        log.truncate_to(1)  # beyond the log end
    assert err.value.error.name == "OFFSET_OUT_OF_RANGE"


def test_delete_records_before_moves_the_log_start_and_drops_segments(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(3), 0)
    segments = len(log.segments)
    log.delete_records_before(100)
    assert log.log_start_offset == 100
    assert len(log.segments) < segments
    with pytest.raises(ZafkaError):
        log.read(99, 100)
    assert all_records(log)[0].offset == 100
    log.close()
    assert open_log(tmp_path).log_start_offset == 100


def test_retention_by_time_and_by_size_deletes_whole_old_segments(tmp_path):
    config = LogConfig(segment_bytes=2048, retention_ms=1000, segment_ms=10**15)
    log = open_log(tmp_path, config)
    for i in range(60):
        log.append(batch(2, ts=10 * i), 0)
    newest_of_first = log.segments[0].max_timestamp
    assert log.enforce_retention(now_ms=newest_of_first + 1000) == 0
    assert log.enforce_retention(now_ms=newest_of_first + 1001) == 1
    assert log.log_start_offset == log.segments[0].base_offset

    by_size = LogConfig(
        segment_bytes=2048, retention_bytes=4096, retention_ms=-1, segment_ms=10**15
    )
    log = open_log(tmp_path / "size", by_size)
    for _ in range(60):
        log.append(batch(2), 0)
    log.enforce_retention()
    assert log.size_bytes - log.segments[0].size < 4096
    assert len(log.segments) >= 2


def test_leader_epochs_are_recorded_and_survive_a_lost_checkpoint(tmp_path):
    log = open_log(tmp_path)
    log.append(batch(2), 0)
    log.append(batch(2), 3)
    log.append(batch(2), 3)
    log.append(batch(2), 5)
    assert log.epochs.entries() == [(0, 0), (3, 2), (5, 6)]
    assert log.epochs.end_offset_for(3, log.log_end_offset) == (3, 6)
    assert log.epochs.end_offset_for(4, log.log_end_offset) == (3, 6)
    assert log.epochs.end_offset_for(5, log.log_end_offset) == (5, 8)
    with pytest.raises(ZafkaError) as err:
        log.append(batch(1), 2)  # an older leader may not write
    assert err.value.error.name == "FENCED_LEADER_EPOCH"
    assert log.log_end_offset == 8
    log.close()
    (tmp_path / "leader-epoch-checkpoint").write_text("garbage")
    log = open_log(tmp_path)
    assert log.epochs.entries() == [(0, 0), (3, 2), (5, 6)]
    log.truncate_to(5)
    assert log.epochs.entries() == [(0, 0), (3, 2)]


def test_fsync_interval_advances_the_recovery_point_only_when_due(tmp_path):
    config = LogConfig(fsync=Fsync.INTERVAL, fsync_interval_ms=10**6)
    log = open_log(tmp_path, config)
    start = log._last_flush_ms
    log.append(batch(1), 0)
    assert log.recovery_point == 0
    assert not log.flush_if_due(now_ms=start + 10**6 - 1)
    assert log.flush_if_due(now_ms=start + 10**6)
    assert log.recovery_point == 1
    never = open_log(tmp_path / "never", LogConfig(fsync=Fsync.NEVER))
    never.append(batch(1), 0)
    assert not never.flush_if_due(now_ms=start + 10**9) and never.recovery_point == 0


def test_fsync_always_still_moves_the_recovery_point_so_recovery_stays_short(tmp_path):
    log = open_log(tmp_path, LogConfig(fsync=Fsync.ALWAYS, fsync_interval_ms=10**6))
    for _ in range(3):
        log.append(batch(1), 0)
    assert log.flush_if_due(now_ms=log._last_flush_ms + 10**6)
    assert log.recovery_point == 3
    crash(log)
    assert open_log(tmp_path, LogConfig(fsync=Fsync.ALWAYS)).recovery_point == 3


def test_the_active_segment_rolls_when_its_first_batch_is_older_than_segment_ms(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_ms=1000, fsync=Fsync.NEVER))
    log.append(batch(1, ts=5000), 0)
    log.append(batch(1, ts=5999), 0)
    assert len(log.segments) == 1
    log.append(batch(1, ts=6000), 0)  # record time, as Kafka: 1000 ms after the first batch
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_old_record_timestamps_do_not_roll_a_segment_per_batch(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_ms=1000, fsync=Fsync.NEVER))
    for i in range(50):
        log.append(batch(1, ts=1_577_836_800_000 + i), 0)  # 2020, far older than segment_ms
    assert len(log.segments) == 1


def test_checkpoints_ahead_of_the_data_are_clamped_on_open(tmp_path):
    from zafka.storage import checkpoint

    log = open_log(tmp_path)
    log.append(batch(2), 0)
    crash(log)
    checkpoint.write_offset(tmp_path / "log-start-offset", 5)  # a power loss lost the data
    checkpoint.write_offset(tmp_path / "recovery-point", 9)
    log = open_log(tmp_path)
    assert (log.log_start_offset, log.recovery_point, log.log_end_offset) == (2, 2, 2)
    assert log.append(batch(1), 0) == (2, 2)
    assert log.read(2, 100)


def test_walks_cross_chunk_boundaries_and_batches_larger_than_a_chunk(tmp_path):
    """Offsets are found by walking batch headers in chunks (limits.segment_walk_chunk_bytes): a
    header split across two chunks, and a batch larger than a chunk, are walked over."""
    rng = random.Random(7)
    config = LogConfig(fsync=Fsync.NEVER, index_interval_bytes=1 << 30)  # no index: walk all
    log = PartitionLog.open(tmp_path, config)
    sizes = [10, 5000, 3, 20_000, 7, 8000, 1, 300, 8100, 50]  # incompressible values
    batches = [build_batch([(i, None, rng.randbytes(n), None)]) for i, n in enumerate(sizes)]
    for data in batches:
        log.append(bytearray(data), 0)
    assert max(map(len, batches)) > limits.segment_walk_chunk_bytes
    unstamped = [b[16:] for b in batches]  # bytes 12-15: the leader epoch, stamped on append
    for offset in range(len(sizes)):
        first = bytes(log.read(offset, 1, max_offset=None))
        assert first[16:] == unstamped[offset]  # exactly one batch, the one asked for
        rest, position, found = bytes(log.read(offset, 1 << 20, max_offset=None)), 0, []
        while position < len(rest):
            size = parse_header(rest, position).size
            found.append(rest[position + 16 : position + size])
            position += size
        assert found == unstamped[offset:]
    log.close()
