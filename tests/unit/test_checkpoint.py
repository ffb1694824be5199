"""Checkpoint files: durable ones fsync the file and its directory, hints none; a torn or
garbled one reads as missing. A log's recovery point is written after the data it covers was
fsynced: durably at most every `limits.recovery_point_durable_interval_ms`, a hint between;
and a roll makes the new segment's directory entries durable."""

from __future__ import annotations

import os

from tests.unit.storage_helpers import batch
from zafka import limits
from zafka.storage import checkpoint
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import RECOVERY_POINT, PartitionLog


def counting_fsyncs(monkeypatch) -> list[str]:
    """The path of what each os.fsync call syncs, in order."""
    calls: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_durable_checkpoint_fsyncs_the_file_and_the_directory(tmp_path, monkeypatch):
    calls = counting_fsyncs(monkeypatch)
    checkpoint.write_offset(tmp_path / "point", 42)
    assert len(calls) == 2
    assert checkpoint.read_offset(tmp_path / "point") == 42


def test_a_hint_is_written_whole_without_fsync(tmp_path, monkeypatch):
    calls = counting_fsyncs(monkeypatch)
    checkpoint.write_offset(tmp_path / "point", 7, durable=False)
    checkpoint.write_offset(tmp_path / "point", 8, durable=False)
    assert calls == []
    assert checkpoint.read_offset(tmp_path / "point") == 8
    assert not (tmp_path / "point.tmp").exists()


def test_a_garbled_checkpoint_reads_as_missing(tmp_path):
    checkpoint.write_offset(tmp_path / "point", 42)
    text = (tmp_path / "point").read_bytes()
    (tmp_path / "point").write_bytes(text.replace(b"42", b"43"))
    assert checkpoint.read_offset(tmp_path / "point") is None


def test_the_periodic_recovery_point_follows_a_data_fsync(tmp_path, monkeypatch):
    log = PartitionLog.open(tmp_path, LogConfig(fsync=Fsync.INTERVAL, fsync_interval_ms=0))
    log.append(batch(3), 0)  # (its first epoch is written, durably)
    calls = counting_fsyncs(monkeypatch)
    log.append(batch(2), 0)  # the interval (0 ms) has passed: flushed as it is appended
    assert len(calls) == 1 and calls[0].endswith(".log")  # the data; the point is a hint
    assert checkpoint.read_offset(tmp_path / RECOVERY_POINT) == log.log_end_offset == 5
    log.close()


def test_the_recovery_point_is_durable_once_its_interval_passed(tmp_path, monkeypatch):
    log = PartitionLog.open(tmp_path, LogConfig(fsync=Fsync.INTERVAL, fsync_interval_ms=0))
    log.append(batch(3), 0)
    monkeypatch.setattr(limits, "recovery_point_durable_interval_ms", 0)
    calls = counting_fsyncs(monkeypatch)
    log.append(batch(2), 0)
    assert calls[0].endswith(".log")  # the data first, then the point, file and directory
    assert calls[1:] == [str(tmp_path / (RECOVERY_POINT + ".tmp")), str(tmp_path)]
    log.close()


def test_a_roll_makes_the_new_segment_durable_in_its_directory(tmp_path, monkeypatch):
    log = PartitionLog.open(tmp_path, LogConfig(fsync=Fsync.INTERVAL))
    log.append(batch(3), 0)
    calls = counting_fsyncs(monkeypatch)
    log.roll()
    assert calls[-1] == str(tmp_path)  # after the sealed segment's index files
    assert len(log.segments) == 2
    log.close()
