"""What the controller tells every broker's metadata cache (UpdateMetadata,
transport/controller.py), built from its state. Pure.

A full update is every partition, split into messages of at most
`limits.update_metadata_partitions_max` partitions (each message stays far below the wire's
header limit), the first marked `reset`; a delta is the partitions changed and the topics
removed since the last one. Both carry the live brokers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from zafka import limits
from zafka.actors.controller.state import ControllerState, Key
from zafka.transport.client import BrokerInfo, PartitionMetadata, TopicMetadata
from zafka.transport.controller import UpdateMetadataRequest


def full_updates(
    state: ControllerState, endpoints: Mapping[int, str], kafka: Mapping[int, str]
) -> list[UpdateMetadataRequest]:
    """Every partition, in as many messages as it takes (the first resets the cache)."""
    keys = sorted(state.partitions)
    step = limits.update_metadata_partitions_max
    chunks = [keys[i : i + step] for i in range(0, len(keys), step)] or [[]]
    return [
        UpdateMetadataRequest(_brokers(endpoints, kafka), _topics(state, chunk), (), n == 0)
        for n, chunk in enumerate(chunks)
    ]


def delta_update(
    state: ControllerState,
    endpoints: Mapping[int, str],
    kafka: Mapping[int, str],
    changed: list[Key],
    removed: list[str],
) -> UpdateMetadataRequest:
    """The partitions in `changed` (still known) and the topics `removed`."""
    known = [key for key in changed if key in state.partitions]
    brokers = _brokers(endpoints, kafka)
    return UpdateMetadataRequest(brokers, _topics(state, known), tuple(removed), False)


def _brokers(endpoints: Mapping[int, str], kafka: Mapping[int, str]) -> tuple[BrokerInfo, ...]:
    return tuple(BrokerInfo(b, endpoints[b], kafka.get(b)) for b in sorted(endpoints))


def _topics(state: ControllerState, keys: Iterable[Key]) -> tuple[TopicMetadata, ...]:
    by_topic: dict[str, list[PartitionMetadata]] = {}
    for topic, p in keys:
        view = state.partitions[(topic, p)]
        s = view.state
        partition = PartitionMetadata(p, s.leader, s.leader_epoch, view.replicas, s.isr)
        by_topic.setdefault(topic, []).append(partition)
    return tuple(TopicMetadata(name, 0, tuple(ps)) for name, ps in by_topic.items())
