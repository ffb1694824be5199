"""Where a topic's replicas go: Kafka's replica assignment (AdminUtils), pure functions.

`assign_replicas` places the partitions of a new topic, or the partitions added to one
(`first_partition` > 0), over the live brokers; `check_replication_factor` refuses a
replication factor the live brokers cannot hold (INVALID_REPLICATION_FACTOR).
"""

from __future__ import annotations

from collections.abc import Sequence

from zafka.errors import ZafkaError


def check_replication_factor(replication_factor: object, brokers: Sequence[int]) -> int:
    """`replication_factor` if 1..len(brokers); INVALID_REPLICATION_FACTOR otherwise."""
    if type(replication_factor) is not int or not 1 <= replication_factor <= len(brokers):
        raise ZafkaError(
            "INVALID_REPLICATION_FACTOR",
            f"replication factor {replication_factor!r} must be 1..{len(brokers)}"
            f" (the number of available brokers)",
        )
    return replication_factor


def assign_replicas(
    partitions: int,
    replication_factor: int,
    brokers: Sequence[int],
    start_index: int,
    replica_shift: int,
    first_partition: int = 0,
) -> tuple[tuple[int, ...], ...]:
    """Kafka's rack-unaware assignment (AdminUtils.assignReplicasToBrokersRackUnaware) of
    partitions `first_partition` .. `first_partition + partitions - 1`.

    Partition p's first replica (its preferred leader) is brokers[(p + start_index) % n], so
    leaders go round-robin; the followers follow it at a distance that grows by one every n
    partitions (`replica_shift`), so the followers of one broker's partitions are spread
    too. Kafka picks start_index and replica_shift at random for each new topic, so the
    first partitions of many topics do not all land on the same broker; for added
    partitions both are the index of partition 0's preferred leader. `brokers` is sorted.
    """
    n = len(brokers)
    assignment = []
    shift = replica_shift
    for p in range(first_partition, first_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        followers = (
            brokers[(first + 1 + (shift + j) % (n - 1)) % n] for j in range(replication_factor - 1)
        )
        assignment.append((brokers[first], *followers))
    return tuple(assignment)
