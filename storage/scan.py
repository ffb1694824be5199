"""Re-scanning one segment file batch by batch, after a crash or a truncation.

Every batch is checked (length, format, CRC, offsets after the batch before). A bad or
short batch at or above the recovery point is a torn tail: the scan ends there and the
segment cuts the file. One below it was flushed and damaged later: it is quarantined (kept
as an unreadable range of offsets) and the batches after it stay readable. In the last
segment a batch that a crash cut short ends the scan even below the recovery point (a power
loss can leave the point ahead of the data); where a length is broken and nothing after it
can be found, the log must not open (CORRUPT_MESSAGE saying how to accept the cut).

The segment is driven through its small public surface: `header_at`, `pread`,
`index_batch`, `quarantine`, `next_offset`, `size`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zafka.errors import ZafkaError
from zafka.storage.batch import HEADER_SIZE, BatchHeader, check_batch

if TYPE_CHECKING:
    from zafka.storage.segment import LogSegment


def intact_end(segment: LogSegment, recovery_point: int, next_base: int | None) -> int:
    """Index every intact batch of `segment` (quarantining flushed damage) and return the
    position where what stays ends. `next_base` is the next segment's base offset."""
    position = 0
    while position < segment.size:
        header = _valid_batch_at(segment, position)
        if header is not None:
            last, ts = header.last_offset, header.max_timestamp
            segment.index_batch(position, header.base_offset, last, ts, header.size)
            position += header.size
            continue
        if segment.next_offset >= recovery_point:
            break
        after = _quarantine(segment, position, recovery_point, next_base)
        if after == position:  # a torn tail, even below the recovery point
            break
        position = after
    return position


def _quarantine(
    segment: LogSegment, position: int, recovery_point: int, next_base: int | None
) -> int:
    """Quarantine the damaged batches from `position` on: up to the next intact batch,
    else to the next segment or the recovery point. In the last segment a torn batch
    (`_torn_at`) ends the range. Returns the position after the range: `position` itself
    when the first batch is a torn tail."""
    first, end = segment.next_offset, position
    while end < segment.size and (end == position or _valid_batch_at(segment, end) is None):
        if next_base is None and _torn_at(segment, end, recovery_point):
            break
        try:
            end += segment.header_at(end).size
        except ZafkaError as err:
            if next_base is None:
                raise _unrecoverable(segment, err.detail, first, recovery_point) from None
            end = segment.size
    if end == position:
        return position
    if segment.size - end >= HEADER_SIZE:  # an intact (or torn, unflushed) batch follows
        last = min(segment.header_at_unchecked(end).base_offset, recovery_point) - 1
    else:
        last = (recovery_point if next_base is None else next_base) - 1
    if last < first:
        raise _unrecoverable(segment, f"damage at byte {position}", first, recovery_point)
    segment.quarantine(position, first, last, end - position)
    return end


def _torn_at(segment: LogSegment, position: int, recovery_point: int) -> bool:
    """True when the batch at `position` runs past the end of the file and claims no
    flushed offset (or not even its header is whole): a write that a crash cut short."""
    remaining = segment.size - position
    if remaining < HEADER_SIZE:
        return True
    header = segment.header_at_unchecked(position)
    return header.size > remaining and header.base_offset >= recovery_point


def _unrecoverable(segment: LogSegment, detail: str, first: int, recovery_point: int) -> ZafkaError:
    return ZafkaError(
        "CORRUPT_MESSAGE",
        f"{detail} (offsets from {first}) is below the recovery point {recovery_point}: "
        "flushed data is damaged and what follows it cannot be found. To open the log "
        f"without offsets {first}.. (cut as a torn tail), delete "
        f"{segment.log_path.parent}/recovery-point and start again",
    )


def _valid_batch_at(segment: LogSegment, position: int) -> BatchHeader | None:
    if segment.size - position < HEADER_SIZE:
        return None
    try:
        header = segment.header_at(position)
        if header.base_offset < segment.next_offset:
            return None
        check_batch(segment.pread(position, header.size))
    except ZafkaError:
        return None
    return header


def first_damaged_offset(segment: LogSegment) -> int | None:
    """The first offset of `segment` that is not in an intact batch (a batch failing its
    length or CRC check or out of offset order, or a range recovery quarantined), or None
    if every batch is intact.
    Reads the whole file once (a follower's check of its log before it copies: a damaged
    replica must be repaired from its leader, never elected)."""
    quarantined = [first for first, _ in segment.damaged.values()]
    position, previous_last = 0, segment.base_offset - 1
    while position < segment.size:
        try:
            header = segment.header_at(position)
            check_batch(segment.pread(position, header.size))
        except ZafkaError:
            return min([previous_last + 1, *quarantined])
        if not previous_last < header.base_offset <= header.last_offset < segment.next_offset:
            return min([previous_last + 1, *quarantined])  # its offsets (the CRC leaves out)
        previous_last, position = header.last_offset, position + header.size
    return min(quarantined, default=None)
