"""Log compaction (cleanup.policy=compact): keep only the latest record of each key.

Compaction rewrites sealed segments only; the active segment is never touched, but its
records count when deciding what is latest. Kept records keep their offsets: each run of
consecutive kept offsets becomes one batch (the format numbers records by position, so a
gap starts a new batch); a batch that loses nothing is copied byte for byte. A tombstone
(a record whose value is None) is kept until its timestamp is `delete_retention_ms` old, so
consumers that lag can still see the delete. Records without a key are dropped. The last
batch of each idempotent producer is kept whole, as Kafka's cleaner keeps it, so producer
state rebuilt from the log still knows that producer's last sequence.

The rewritten segment goes to `<base>.log.cleaned`, is fsynced, then renamed over the
original; a crash before the rename leaves the original (the leftover is deleted on open).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from zafka.storage.batch import BatchHeader, build_batch, parse_header
from zafka.storage.records import Record, read_batch, read_records
from zafka.storage.segment import LogSegment


def iter_batches(segment: LogSegment) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Every stored batch of a segment, CRC-checked, in order."""
    position = 0
    while position < segment.size:
        data = segment.read(position, 0, None)  # exactly one whole batch
        yield parse_header(data), data
        position += len(data)


def latest_offsets(segments: tuple[LogSegment, ...]) -> tuple[dict[bytes, int], set[int]]:
    """The offset of the last record of each key across `segments`, and the base offsets of
    each idempotent producer's last batch (kept whole: the broker rebuilds producer state
    from batch headers, and a lost last sequence would refuse the producer's next batch)."""
    latest: dict[bytes, int] = {}
    last_batch_of_producer: dict[int, int] = {}
    for segment in segments:
        for header, data in iter_batches(segment):
            decoded = read_batch(data)
            latest.update(zip(decoded.keys, decoded.offsets, strict=True))
            if header.producer_id >= 0:
                last_batch_of_producer[header.producer_id] = header.base_offset
    latest.pop(None, None)  # records without a key are never kept
    return latest, set(last_batch_of_producer.values())


def _runs(records: list[Record]) -> Iterator[list[Record]]:
    """Split records into runs of consecutive offsets."""
    run: list[Record] = []
    for record in records:
        if run and record.offset != run[-1].offset + 1:
            yield run
            run = []
        run.append(record)
    if run:
        yield run


def _rebuild(header: BatchHeader, run: list[Record]) -> bytes:
    first = run[0].offset - header.base_offset
    return build_batch(
        [(r.timestamp, r.key, r.value, r.headers) for r in run],
        codec=header.codec,
        base_offset=run[0].offset,
        leader_epoch=header.leader_epoch,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence + first if header.base_sequence >= 0 else -1,
        control=header.is_control,
    )


def write_cleaned(
    segment: LogSegment,
    latest: tuple[dict[bytes, int], set[int]],
    tombstone_horizon_ms: int,
    out: Path,
) -> int:
    """Write the compacted copy of `segment` to `out` (fsynced). Returns records removed.
    `latest` is what `latest_offsets` found."""
    latest_by_key, keep_whole = latest
    removed = 0
    with open(out, "wb") as f:
        for header, data in iter_batches(segment):
            if header.base_offset in keep_whole:
                f.write(data)
                continue
            records = read_records(data)
            kept = [
                r
                for r in records
                if r.key is not None
                and latest_by_key.get(r.key) == r.offset
                and (r.value is not None or r.timestamp >= tombstone_horizon_ms)
            ]
            removed += len(records) - len(kept)
            if len(kept) == len(records):
                f.write(data)
                continue
            for run in _runs(kept):
                f.write(_rebuild(header, run))
        f.flush()
        os.fsync(f.fileno())
    return removed
