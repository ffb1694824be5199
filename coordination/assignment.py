"""Where a topic's replicas go: Kafka's replica assignment (AdminUtils), pure functions.

`assign_replicas` places the partitions of a new topic, or the partitions added to one
(`first_partition` > 0), over the live brokers; `assign_rack_aware` does the same so that a
partition's replicas sit on as many racks as they can; `place` picks one of the two (rack
aware when every live broker declared a rack: a cluster being upgraded, some brokers
without one, is placed as if it had none). `check_replication_factor` refuses a
replication factor the live brokers cannot hold (INVALID_REPLICATION_FACTOR).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence

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
    for first, shift in _walk(partitions, n, start_index, replica_shift, first_partition):
        followers = (
            brokers[(first + 1 + (shift + j) % (n - 1)) % n] for j in range(replication_factor - 1)
        )
        assignment.append((brokers[first], *followers))
    return tuple(assignment)


def _walk(
    partitions: int, n: int, start_index: int, replica_shift: int, first_partition: int
) -> Iterator[tuple[int, int]]:
    """For each partition, the index of its first replica among n brokers and the follower
    shift, which grows by one every n partitions (both Kafka's)."""
    shift = replica_shift
    for p in range(first_partition, first_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        yield (p + start_index) % n, shift


def rack_alternated(brokers: Sequence[int], racks: Mapping[int, str]) -> list[int]:
    """The brokers ordered so that neighbours are on different racks while they can be:
    the first of each rack (racks sorted), then the second of each, and so on."""
    by_rack: dict[str, list[int]] = {}
    for broker in sorted(brokers):
        by_rack.setdefault(racks[broker], []).append(broker)
    columns = [by_rack[rack] for rack in sorted(by_rack)]
    depth = max(len(column) for column in columns)
    return [column[i] for i in range(depth) for column in columns if i < len(column)]


def assign_rack_aware(
    partitions: int,
    replication_factor: int,
    brokers: Sequence[int],
    racks: Mapping[int, str],
    start_index: int,
    replica_shift: int,
    first_partition: int = 0,
) -> tuple[tuple[int, ...], ...]:
    """Kafka's rack-aware assignment (AdminUtils.assignReplicasToBrokersRackAware), in its
    idea: leaders round-robin over the rack-alternated brokers; each follower is the next
    broker, walking as `assign_replicas` walks, whose rack holds no replica of the partition
    yet (any rack once every rack holds one) and that holds none itself."""
    arranged = rack_alternated(brokers, racks)
    n, rack_count = len(arranged), len(set(racks[b] for b in arranged))
    assignment = []
    for first, shift in _walk(partitions, n, start_index, replica_shift, first_partition):
        replicas = [arranged[first]]
        used = {racks[arranged[first]]}
        step = 0
        while len(replicas) < replication_factor:  # ends: n - 1 steps visit every other broker
            broker = arranged[(first + 1 + (shift * rack_count + step) % (n - 1)) % n]
            step += 1
            rack_free = racks[broker] not in used or len(used) == rack_count
            if rack_free and broker not in replicas:
                replicas.append(broker)
                used.add(racks[broker])
        assignment.append(tuple(replicas))
    return tuple(assignment)


def place(
    partitions: int,
    replication_factor: int,
    racks: Mapping[int, str | None],
    first_partition: int = 0,
    preferred_first: int | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Replicas for partitions `first_partition`.. over the live brokers `racks` (broker ->
    its rack or None), rack aware when every broker has one. A new topic starts at a random
    broker (Kafka's start index and shift); added partitions continue from the broker that
    is partition 0's preferred leader (`preferred_first`), as Kafka continues."""
    brokers = sorted(racks)
    check_replication_factor(replication_factor, brokers)
    named = {b: r for b, r in racks.items() if r is not None}
    order = rack_alternated(brokers, named) if len(named) == len(brokers) else brokers
    if preferred_first in order:
        start = shift = order.index(preferred_first)
    else:
        start, shift = random.randrange(len(brokers)), random.randrange(len(brokers))
    if len(named) == len(brokers):
        return assign_rack_aware(
            partitions, replication_factor, brokers, named, start, shift, first_partition
        )
    return assign_replicas(partitions, replication_factor, brokers, start, shift, first_partition)
