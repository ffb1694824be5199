"""What a partition's state machine (state.py) hands its shell: the log operations to
perform (`Append`, `Read`, `FindTimestamp`) and what a move of the high watermark released
(`Released`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from zafka.actors.partition.acks import WaitingAck
from zafka.actors.partition.fetch_waiters import PendingFetch
from zafka.storage.batch import BatchHeader


@dataclass(frozen=True, slots=True)
class Append:
    """Log operation: append `batch` under `leader_epoch`, then report it with `appended`."""

    batch: bytes
    header: BatchHeader
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class Read:
    """Log operation: whole batches from `offset`, at most `max_bytes` past the first,
    below `max_offset` (the high watermark)."""

    offset: int
    max_bytes: int
    max_offset: int


@dataclass(frozen=True, slots=True)
class FindTimestamp:
    """Log operation: the first offset whose record timestamp is >= `timestamp`."""

    timestamp: int


class Released(NamedTuple):
    """What a move of the high watermark released: fetches to answer, and acks=all answers
    (`failed`: the ISR is below min.insync.replicas now, NOT_ENOUGH_REPLICAS_AFTER_APPEND)."""

    fetches: list[PendingFetch]
    acks: list[WaitingAck]
    failed: bool = False


NOTHING = Released([], [])
