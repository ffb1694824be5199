"""Replication protocol: followers fetch from leaders."""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.schema import Frame, Message


@dataclass(frozen=True, slots=True)
class ReplicaFetchRequest(Message):
    """A follower fetches from `offset`; `last_fetched_epoch` lets the leader spot divergence."""

    EPOCH = "leader"
    topic: str
    partition: int
    replica_id: int
    offset: int
    last_fetched_epoch: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class ReplicaFetchResponse(Message):
    """Batches for the follower; diverging_epoch >= 0 means truncate to diverging_end_offset."""

    error_code: int
    high_watermark: int
    diverging_epoch: int
    diverging_end_offset: int
    records: Frame
