"""Crash recovery: torn tails at every byte, flipped bits, lost or garbled indexes."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from tests.unit.storage_helpers import SMALL, all_records, batch, crash, open_log
from zafka.errors import ZafkaError
from zafka.storage.config import LogConfig


def test_a_torn_last_batch_is_cut_at_every_byte_position(tmp_path):
    source = tmp_path / "source"
    log = open_log(source, LogConfig(index_interval_bytes=64))
    for i in range(5):
        log.append(batch(3, ts=1000 + i, value_bytes=30), 0)
    complete = all_records(log)[:-3]  # what the first four batches hold
    last_start = log.active.size - log.segments[-1].header_at(log.segments[-1].position_of(12)).size
    full_size = log.active.size
    log_file = log.active.log_path.name
    crash(log)
    for cut in range(last_start, full_size):
        torn = tmp_path / f"torn-{cut}"
        shutil.copytree(source, torn)
        os.truncate(torn / log_file, cut)
        reopened = open_log(torn, LogConfig(index_interval_bytes=64))
        assert reopened.log_end_offset == 12, f"cut at byte {cut}"
        assert all_records(reopened) == complete, f"cut at byte {cut}"
        assert reopened.active.size == last_start
        assert reopened.append(batch(1), 0) == (12, 12)
        crash(reopened)
        shutil.rmtree(torn)


def _garbage(kind: int) -> bytes:
    if kind == -1:  # a header that declares a negative length
        return (0).to_bytes(8, "big") + (-50).to_bytes(4, "big", signed=True) + bytes(49)
    if kind == -2:  # a header that declares far more bytes than the file holds
        return (0).to_bytes(8, "big") + (2**31 - 1).to_bytes(4, "big") + bytes(49)
    return random.Random(kind).randbytes(200)


@pytest.mark.parametrize("kind", [-1, -2, *range(20)])
def test_garbage_after_the_last_batch_is_cut(tmp_path, kind):
    log = open_log(tmp_path)
    for _ in range(3):
        log.append(batch(2), 0)
    before, size, path = all_records(log), log.active.size, log.active.log_path
    crash(log)
    with open(path, "ab") as f:
        f.write(_garbage(kind))
    log = open_log(tmp_path)
    assert all_records(log) == before and log.active.size == size


def test_a_flipped_bit_in_a_sealed_segment_is_never_served(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(3), 0)
    log.close()
    sealed = log.segments[0]
    assert len(log.segments) > 1
    with open(sealed.log_path, "r+b") as f:
        f.seek(sealed.size // 2)
        byte = f.read(1)
        f.seek(sealed.size // 2)
        f.write(bytes([byte[0] ^ 0x10]))
    log = open_log(tmp_path)  # sealed below the recovery point: not rescanned on open
    with pytest.raises(ZafkaError) as err:
        offset = 0
        while offset < log.segments[1].base_offset:
            data = log.read(offset, 64)
            offset = int.from_bytes(data[:8], "big") + 3
    assert err.value.error.name == "CORRUPT_MESSAGE"


@pytest.mark.parametrize("damage", ["delete", "garble", "truncate"])
def test_lost_or_garbled_indexes_are_rebuilt_with_the_same_answers(tmp_path, damage):
    log = open_log(tmp_path)
    for i in range(60):
        log.append(batch(2, ts=1000 + 7 * i), 0)
    probes = range(0, log.log_end_offset, 5)
    times = range(990, 1000 + 7 * 60, 13)
    expected_reads = [bytes(log.read(o, 300)) for o in probes]
    expected_times = [log.offset_for_timestamp(t) for t in times]
    log.close()
    for index_file in list(tmp_path.glob("*.index")) + list(tmp_path.glob("*.timeindex")):
        if damage == "delete":
            index_file.unlink()
        elif damage == "garble":
            data = bytearray(index_file.read_bytes())
            data[len(data) // 3] ^= 0xFF
            index_file.write_bytes(bytes(data))
        else:
            os.truncate(index_file, index_file.stat().st_size // 2)
    log = open_log(tmp_path)
    assert [bytes(log.read(o, 300)) for o in probes] == expected_reads
    assert [log.offset_for_timestamp(t) for t in times] == expected_times
    assert all(len(s.offset_index) > 0 for s in log.segments)


def test_a_torn_segment_before_later_unflushed_segments_drops_them(tmp_path):
    log = open_log(tmp_path, SMALL)
    for _ in range(40):
        log.append(batch(3), 0)
    first, later = log.segments[0], log.segments[1:]
    assert later
    crash(log)
    os.truncate(first.log_path, first.size - 1)
    log = open_log(tmp_path, SMALL)
    assert len(log.segments) == 1
    assert log.log_end_offset == first.next_offset - 3
    assert not any(s.log_path.exists() for s in later)


def _flip(path, position: int, mask: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ mask]))


def test_a_damaged_first_batch_of_a_sealed_segment_does_not_stop_the_log_opening(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(3), 0)
    end = log.log_end_offset
    first, second = log.segments[0], log.segments[1]
    log.close()
    _flip(first.log_path, 8, 0x40)  # the first batch's length
    (tmp_path / "leader-epoch-checkpoint").unlink()  # and the epoch rebuild must cope too
    log = open_log(tmp_path)
    assert log.log_end_offset == end
    assert all_records(log, start=second.base_offset)[0].offset == second.base_offset


def test_a_flipped_base_offset_in_a_sealed_segment_is_never_served(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(3), 0)
    sealed = log.segments[0]
    second_batch = sealed.header_at(0).size
    log.close()
    _flip(sealed.log_path, second_batch + 7, 0x02)  # base offset 3 becomes 1
    log = open_log(tmp_path)
    with pytest.raises(ZafkaError) as err:  # a cold read starting at it, before any other
        log.read(3, 10_000)
    assert err.value.error.name == "CORRUPT_MESSAGE"
    assert f"byte {second_batch} of {sealed.log_path}, offsets 3.." in err.value.detail
    assert len(log.read(0, 10_000)) == second_batch  # the intact batch before it, alone


def test_a_base_offset_flipped_far_ahead_is_corrupt_message_not_an_empty_read(tmp_path):
    """A stamped offset the CRC leaves out, pushed past the segment's end, must not make a
    read below the log end look empty (a consumer would wait there for ever)."""
    sparse = LogConfig(segment_bytes=4096, index_interval_bytes=4096, segment_ms=10**15)
    log = open_log(tmp_path, sparse)
    for _ in range(100):
        log.append(batch(1), 0)
    sealed, end = log.segments[1], log.log_end_offset
    sizes = [sealed.header_at(0).size]
    log.close()
    middle = sizes[0] * 5  # the sixth batch of the second segment
    _flip(sealed.log_path, middle, 0x10)  # its base offset becomes 2**60 more
    log = open_log(tmp_path, sparse)
    served = log.read(sealed.base_offset, 1 << 20, max_offset=end)
    assert len(served) == middle  # the intact batches before it
    with pytest.raises(ZafkaError) as err:  # where that read stopped: the damaged batch
        log.read(sealed.base_offset + 5, 1 << 20, max_offset=end)
    assert err.value.error.name == "CORRUPT_MESSAGE" and f"byte {middle}" in err.value.detail


def test_a_broken_length_inside_a_sealed_segment_is_refused_not_walked(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(3), 0)
    sealed = log.segments[0]
    first_batch = sealed.header_at(0).size
    log.close()
    _flip(sealed.log_path, first_batch + 8, 0x80)  # the second batch's length goes negative
    log = open_log(tmp_path)
    assert len(log.read(0, 10_000)) == first_batch  # read past an index entry: one pread
    with pytest.raises(ZafkaError) as err:
        log.read(3, 10_000)
    assert err.value.error.name == "CORRUPT_MESSAGE"


def test_after_a_crash_the_next_flush_fsyncs_recovered_segments_and_close_seals_them(tmp_path):
    log = open_log(tmp_path)
    for _ in range(60):
        log.append(batch(3), 0)
    recovered = [s.base_offset for s in log.segments[:-1]]
    crash(log)
    log = open_log(tmp_path)
    assert [s.base_offset for s in log._unflushed] == recovered  # fsynced before the point moves
    log.append(batch(1), 0)
    log.flush()
    assert log._unflushed == [] and log.recovery_point == log.log_end_offset
    log.close()
    reopened = open_log(tmp_path)
    assert all(s.sealed for s in reopened.segments)  # a clean restart scans nothing


def _flushed_then_crashed(tmp_path, batches: int, unflushed: int = 0):
    """A one-segment log of `batches` 3-record batches, flushed (recovery point at its
    end), then `unflushed` more, then a crash. Returns the segment and the log end."""
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))
    for _ in range(batches):
        log.append(batch(3), 0)
    log.flush()
    for _ in range(unflushed):
        log.append(batch(3), 0)
    segment, end = log.active, log.log_end_offset
    crash(log)
    return segment, end


def test_a_damaged_batch_below_the_recovery_point_is_quarantined_not_cut(tmp_path, caplog):
    segment, end = _flushed_then_crashed(tmp_path, batches=20)
    _flip(segment.log_path, 40, 0x01)  # inside the first batch's CRC-covered header
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))
    assert log.log_end_offset == end == 60
    assert [r.offset for r in all_records(log, start=3)] == list(range(3, 60))
    with pytest.raises(ZafkaError) as err:
        log.read(1, 10_000)
    assert err.value.error.name == "CORRUPT_MESSAGE" and "offsets 0..2" in err.value.detail
    assert "offsets 0..2, below the recovery point 60" in caplog.text
    assert log.append(batch(1), 0) == (60, 60)  # no offset is given out twice


def test_a_quarantine_is_found_again_after_a_clean_restart(tmp_path):
    segment, _ = _flushed_then_crashed(tmp_path, batches=20)
    _flip(segment.log_path, segment.size // 20 + 7, 0x02)  # batch 3..5 now claims base 1
    open_log(tmp_path, LogConfig(index_interval_bytes=128)).close()  # quarantined, clean stop
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))
    with pytest.raises(ZafkaError) as err:
        log.read(4, 10_000)
    assert "offsets 3..5" in err.value.detail
    assert [r.offset for r in all_records(log, start=6)] == list(range(6, 60))


def test_a_torn_unflushed_tail_after_a_damaged_flushed_batch_is_cut(tmp_path):
    segment, _ = _flushed_then_crashed(tmp_path, batches=5, unflushed=1)
    size = segment.size // 6  # six batches of one size
    os.truncate(segment.log_path, size * 5 + 70)  # the unflushed one torn
    _flip(segment.log_path, size * 4 + 40, 0x01)  # the flushed one before it damaged
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))
    assert log.log_end_offset == 15 and log.recovery_point == 15
    with pytest.raises(ZafkaError) as err:
        log.read(12, 10_000)
    assert "offsets 12..14" in err.value.detail
    assert len(log.read(0, 10_000)) == size * 4  # the intact batches before it


def test_a_torn_header_below_a_recovery_point_ahead_of_the_data_is_cut(tmp_path):
    segment, _ = _flushed_then_crashed(tmp_path, batches=5)
    os.truncate(segment.log_path, segment.size // 5 * 4 + 30)
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))  # power loss: the point
    assert log.log_end_offset == 12 and log.recovery_point == 12  # was ahead of the data


def test_a_torn_tail_above_the_recovery_point_is_still_cut(tmp_path):
    segment, _ = _flushed_then_crashed(tmp_path, batches=5, unflushed=3)
    _flip(segment.log_path, segment.size - 10, 0x01)  # inside the last, unflushed batch
    log = open_log(tmp_path, LogConfig(index_interval_bytes=128))
    assert log.log_end_offset == 21 and log.recovery_point == 15


def test_a_broken_length_below_the_recovery_point_refuses_to_open_and_says_how(tmp_path):
    segment, _ = _flushed_then_crashed(tmp_path, batches=5)
    _flip(segment.log_path, 8, 0x40)  # the first batch's length
    with pytest.raises(ZafkaError) as err:
        open_log(tmp_path, LogConfig(index_interval_bytes=128))
    assert "offsets from 0" in err.value.detail and "recovery point 15" in err.value.detail
    (tmp_path / "recovery-point").unlink()  # the documented escape: accept the cut
    assert open_log(tmp_path, LogConfig(index_interval_bytes=128)).log_end_offset == 0
