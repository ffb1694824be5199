"""What a partition actor is on its broker: the leader (with its followers) or a follower.

Given by the broker from the controller's LeaderAndIsr (or, on start, from ZooKeeper's
partition state). A change of leader epoch starts a new partition actor; a change of ISR or
replicas within the epoch is passed to the running leader (`PartitionState.update`).
"""

from __future__ import annotations

from dataclasses import dataclass

from zafka import limits


@dataclass(frozen=True, slots=True)
class Leadership:
    """Broker `broker_id` leads, with in-sync set `isr` among `replicas`, as the partition's
    state znode holds them at `version` (the version its ISR writes are checked against)."""

    broker_id: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    version: int
    min_insync: int = 1  # the topic's min.insync.replicas
    lag_max_ms: int = limits.replica_lag_time_max_ms


@dataclass(frozen=True, slots=True)
class Followership:
    """This broker follows broker `leader` (its fetcher copies the leader's log)."""

    leader: int


SOLE_LEADER = Leadership(broker_id=0, isr=(0,), replicas=(0,), version=0)
Role = Leadership | Followership
