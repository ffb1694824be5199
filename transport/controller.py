"""Controller protocol: the controller tells brokers who leads each partition
(LeaderAndIsr) and what the cluster looks like (UpdateMetadata, which brokers serve
Metadata requests from).

Every message carries the controller epoch in its envelope: a broker refuses an epoch older
than the newest it has seen (STALE_CONTROLLER_EPOCH), and accepts a newer one only from the
broker ZooKeeper names as the controller of that epoch (NOT_CONTROLLER otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from zafka.transport.client import BrokerInfo, TopicMetadata
from zafka.transport.schema import Message


@dataclass(frozen=True, slots=True)
class LeaderAndIsrRequest(Message):
    """The controller's decision for one partition: leader (-1: none), its epoch, ISR and
    replicas, and the version of the partition's state znode that holds them (a leader's ISR
    writes are checked against it). A broker among `replicas` leads or follows it (a
    follower fetches from `leader_endpoint`); one not among them drops it."""

    EPOCH = "controller"
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    version: int
    leader_endpoint: str


@dataclass(frozen=True, slots=True)
class LeaderAndIsrResponse(Message):
    """Outcome of a LeaderAndIsrRequest."""

    error_code: int


@dataclass(frozen=True, slots=True)
class UpdateMetadataRequest(Message):
    """The live brokers, and partitions as the controller knows them: the ones changed
    since its last update, or (`reset`) all of them, in as many messages as it takes (the
    first with `reset`: the broker forgets what it had). `deleted_topics` are gone."""

    EPOCH = "controller"
    brokers: tuple[BrokerInfo, ...]
    topics: tuple[TopicMetadata, ...]
    deleted_topics: tuple[str, ...]
    reset: bool


@dataclass(frozen=True, slots=True)
class UpdateMetadataResponse(Message):
    """Outcome of an UpdateMetadataRequest."""

    error_code: int
