"""Opening a partition directory after a clean stop or a crash.

Segments whose sealed indexes show they end at or below the recovery point are trusted as
they are (their indexes are CRC-checked on load). Every other segment is scanned batch by
batch, CRC-checked, and cut at the first bad or short batch at or above the recovery point,
so a torn tail never yields a partial batch. When a cut happens in the unflushed part of the
log, the segments after it are deleted: the log must stay contiguous. A bad batch below the
recovery point is not a torn tail (it was flushed): it is quarantined, logged with its
offsets, and what follows it is kept; if its framing is broken the log refuses to open
(CORRUPT_MESSAGE saying how to accept the cut). Leftover temporary files are removed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from zafka.storage.config import LogConfig
from zafka.storage.segment import LogSegment

log = logging.getLogger(__name__)

_TEMP_SUFFIXES = (".tmp", ".cleaned")


def _segment_bases(directory: Path) -> list[int]:
    return sorted(
        int(path.stem)
        for path in directory.glob("*.log")
        if path.stem.isdigit() and len(path.stem) == 20
    )


def open_segments(
    directory: Path, config: LogConfig, recovery_point: int, log_start: int
) -> list[LogSegment]:
    for path in directory.iterdir():
        if path.name.endswith(_TEMP_SUFFIXES):
            path.unlink()
    bases = _segment_bases(directory)
    segments: list[LogSegment] = []
    try:
        _open_in_order(directory, config, recovery_point, bases, segments)
    except BaseException:
        for segment in segments:  # no file descriptor outlives a failed open
            segment.close()
        raise
    if not segments:
        segments.append(LogSegment(directory, log_start, config.index_interval_bytes))
    return segments


def _open_in_order(
    directory: Path,
    config: LogConfig,
    recovery_point: int,
    bases: list[int],
    segments: list[LogSegment],
) -> None:
    for i, base in enumerate(bases):
        segment = LogSegment(directory, base, config.index_interval_bytes)
        if segments and base < segments[-1].next_offset:
            log.warning("%s overlaps the segment before it; deleting it", segment.log_path)
            _delete_from(directory, bases[i:], config, first=segment)
            break
        segments.append(segment)
        if segment.load_sealed(recovery_point):
            continue
        next_base = bases[i + 1] if i + 1 < len(bases) else None
        cut_bytes = segment.recover(recovery_point, next_base)
        _report(segment, recovery_point)
        if cut_bytes:
            log.warning(
                "recovery cut %d bytes (offsets from %d, above the recovery point %d) from %s",
                cut_bytes,
                segment.next_offset,
                recovery_point,
                segment.log_path,
            )
            later = bases[i + 1 :]
            if later and later[0] > recovery_point:
                _delete_from(directory, later, config)
                break


def _report(segment: LogSegment, recovery_point: int) -> None:
    for position, (first, last) in segment.damaged.items():
        log.error(
            "%s: damaged batch at byte %d, offsets %d..%d, below the recovery point %d: kept "
            "but unreadable (fetches of them get CORRUPT_MESSAGE); the batches after it are "
            "served",
            segment.log_path,
            position,
            first,
            last,
            recovery_point,
        )


def _delete_from(
    directory: Path, bases: list[int], config: LogConfig, first: LogSegment | None = None
) -> None:
    for base in bases:
        segment = first if first and first.base_offset == base else None
        segment = segment or LogSegment(directory, base, config.index_interval_bytes)
        log.warning("deleting %s: it follows a cut in the log", segment.log_path)
        segment.delete()
