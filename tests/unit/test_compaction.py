"""cleanup.policy=compact keeps the latest record per key, with offsets unchanged."""

from __future__ import annotations

from tests.unit.storage_helpers import all_records, crash, open_log
from zafka.storage.batch import build_batch
from zafka.storage.config import Fsync, LogConfig

COMPACT = LogConfig(
    segment_bytes=1024,
    segment_ms=10**15,
    cleanup_policy="compact",
    delete_retention_ms=1000,
    fsync=Fsync.NEVER,
)


def write(log, key: bytes, value: bytes | None, ts: int) -> int:
    return log.append(build_batch([(ts, key, value, None)]), 0)[0]


def test_compaction_keeps_the_latest_value_per_key_at_its_offset(tmp_path):
    log = open_log(tmp_path, COMPACT)
    latest = {}
    for i in range(120):
        key = b"key-%d" % (i % 7)
        latest[key] = (write(log, key, b"value-%d" % i, ts=10_000 + i), b"value-%d" % i)
    active_start = log.active.base_offset
    before = all_records(log)

    removed = log.compact(now_ms=10_500)

    after = all_records(log)
    assert removed == len(before) - len(after) > 0
    sealed = [r for r in after if r.offset < active_start]
    keys = [r.key for r in sealed]
    assert len(keys) == len(set(keys)), "a key appears twice in the compacted part"
    for record in sealed:
        assert latest[record.key][0] == record.offset
    assert [r for r in before if r.offset >= active_start] == [
        r for r in after if r.offset >= active_start
    ]
    assert {r.key: (r.offset, r.value) for r in after} == latest
    crash(log)
    assert all_records(open_log(tmp_path, COMPACT)) == after


def test_tombstones_are_kept_for_delete_retention_then_removed(tmp_path):
    log = open_log(tmp_path, COMPACT)
    write(log, b"gone", b"v1", ts=1000)
    tombstone = write(log, b"gone", None, ts=2000)
    for i in range(60):
        write(log, b"other-%d" % i, b"x" * 20, ts=3000 + i)
    log.compact(now_ms=2500)  # within delete_retention_ms of the tombstone
    records = {r.offset: r for r in all_records(log)}
    assert tombstone in records and records[tombstone].value is None
    assert 0 not in records  # the value it deletes is gone already
    log.compact(now_ms=3001)
    assert all(r.key != b"gone" for r in all_records(log))


def test_reading_from_a_removed_offset_returns_the_next_kept_batch(tmp_path):
    log = open_log(tmp_path, COMPACT)
    for i in range(60):
        write(log, b"same", b"v%d" % i, ts=10_000 + i)
    write(log, b"tail", b"t", ts=10_100)
    log.compact(now_ms=10_200)
    first = all_records(log, start=0)[0]
    assert first.offset > 0 and first.key in (b"same", b"tail")


def test_delete_policy_does_not_compact(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_bytes=1024, segment_ms=10**15))
    for i in range(60):
        write(log, b"k", b"v%d" % i, ts=1)
    assert log.compact() == 0
    assert len(all_records(log)) == 60


def test_a_segment_emptied_by_compaction_leaves_the_log_writable_and_closable(tmp_path):
    config = LogConfig(
        segment_bytes=1024, segment_ms=10**15, cleanup_policy="compact", fsync=Fsync.INTERVAL
    )
    log = open_log(tmp_path, config)
    for i in range(40):
        write(log, b"same", b"v%d" % i, ts=10_000 + i)
    segments_before = len(log.segments)
    assert log.compact(now_ms=10_100) > 0
    assert len(log.segments) < segments_before  # emptied segments were dropped
    log.flush()
    assert write(log, b"same", b"after", ts=10_200) == 40
    log.close()
    reopened = open_log(tmp_path, config)
    assert all_records(reopened)[-1].value == b"after"


def test_each_idempotent_producer_keeps_its_last_batch_so_its_next_sequence_is_accepted(tmp_path):
    from zafka.actors.partition.producer_state import ProducerStateTable

    log = open_log(tmp_path, COMPACT)
    seven = build_batch(
        [(10_000, b"a", b"1", None), (10_000, b"b", b"1", None), (10_000, b"c", b"1", None)],
        producer_id=7,
        producer_epoch=0,
        base_sequence=0,
    )
    log.append(seven, 0)
    write(log, b"b", b"2", ts=10_001)  # another writer supersedes b and c
    write(log, b"c", b"2", ts=10_002)
    for i in range(40):
        write(log, b"fill-%d" % i, b"x" * 20, ts=10_003 + i)  # seal the first segment
    log.compact(now_ms=10_100)
    headers = []
    for segment in log.segments:
        position = 0
        while position < segment.size:
            header = segment.header_at(position)
            headers.append(header)
            position += header.size
    table = ProducerStateTable()
    table.rebuild(headers)
    assert table.check(7, 0, 3, 1).action.name == "APPEND"  # sequence 3 follows 0..2
