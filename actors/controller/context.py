"""What a controller actor is given by its broker process (zafka/broker_main.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from kazoo.client import KazooClient

from zafka import limits
from zafka.coordination.controller import ControllerElection
from zafka.coordination.worker import ZooKeeperWorker
from zafka.transport.zmq_transport import ZmqTransport


class ControllerSettings(NamedTuple):
    """Kafka's automatic leader rebalance: every `imbalance_check_interval_ms` (0: never),
    elect the preferred leaders of each broker that lost the lead of more than
    `imbalance_per_broker_percentage` % of the partitions it prefers."""

    imbalance_check_interval_ms: int = limits.leader_imbalance_check_interval_ms
    imbalance_per_broker_percentage: int = limits.leader_imbalance_per_broker_percent


@dataclass
class ControllerContext:
    """What a ControllerActor needs, shared by its incarnations (the election and the
    watches are set up once per process)."""

    client: KazooClient
    worker: ZooKeeperWorker
    transport: ZmqTransport
    broker_id: int
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    election: ControllerElection | None = None
    watching: bool = False
