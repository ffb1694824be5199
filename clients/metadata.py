"""What a client knows of the cluster: brokers, topics, partition leaders. Pure, no I/O.

`ClusterMetadata.update` takes a `MetadataResponse`; the client's actor (clients/io.py)
asks for one at start, when it meets a topic it does not know, and when a broker answers
with an error whose `refresh_metadata` flag is set (a leader moved, a topic went away), or
gives no answer in time (it may be down, or back at another address: `leader_may_have_moved`).
Bootstrap servers are parsed here too: `host:port` or `tcp://host:port`, comma-separated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zafka.errors import ZafkaError
from zafka.transport.client import MetadataResponse, PartitionMetadata

NO_LEADER = -1


def leader_may_have_moved(error: ZafkaError) -> bool:
    """Whether to ask for metadata before trying the leader again: the error says so, or no
    answer came (as Kafka's client, which drops the connection and updates metadata)."""
    return error.error.refresh_metadata or error.error.name == "REQUEST_TIMED_OUT"


def parse_bootstrap(servers: str | Iterable[str]) -> list[str]:
    """ZeroMQ endpoints for `servers`: "host:port" or "tcp://host:port", a list or one
    comma-separated string. INVALID_CONFIG, saying what is expected, for anything else."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    endpoints = []
    for item in (s.strip() for s in items):
        address = item.removeprefix("tcp://")
        host, sep, port = address.rpartition(":")
        if not (sep and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ZafkaError(
                "INVALID_CONFIG",
                f"bootstrap server {item!r}: expected HOST:PORT, e.g. 127.0.0.1:9092",
            )
        endpoints.append(f"tcp://{host}:{int(port)}")
    if not endpoints:
        raise ZafkaError("INVALID_CONFIG", "no bootstrap server given, e.g. 127.0.0.1:9092")
    return endpoints


@dataclass(frozen=True, slots=True)
class TopicState:
    """One topic as the last metadata answer described it."""

    error_code: int
    partitions: tuple[PartitionMetadata, ...]


class ClusterMetadata:
    """The last known brokers (id -> endpoint) and topics; see the module docstring."""

    def __init__(self) -> None:
        self.brokers: dict[int, str] = {}
        self.topics: dict[str, TopicState] = {}

    def update(self, response: MetadataResponse, complete: bool = False) -> None:
        """Take a metadata answer. `complete`: it listed every topic, so topics it does not
        name are gone; otherwise only the topics it names change."""
        self.brokers = {b.id: b.endpoint for b in response.brokers}
        if complete:
            self.topics = {}
        for topic in response.topics:
            self.topics[topic.name] = TopicState(topic.error_code, topic.partitions)

    def partition_count(self, topic: str) -> int | None:
        """How many partitions `topic` has, or None if it is unknown (or errored)."""
        state = self.topics.get(topic)
        if state is None or state.error_code != 0:
            return None
        return len(state.partitions)

    def topic_error(self, topic: str) -> int:
        """The error code the last answer gave for `topic` (0: none, or not asked yet)."""
        state = self.topics.get(topic)
        return 0 if state is None else state.error_code

    def leader(self, topic: str, partition: int) -> int | None:
        """The broker leading the partition, or None when unknown or leaderless."""
        state = self.topics.get(topic)
        if state is None or not 0 <= partition < len(state.partitions):
            return None
        leader = state.partitions[partition].leader
        return None if leader == NO_LEADER or leader not in self.brokers else leader

    def available_partitions(self, topic: str) -> list[int]:
        """Partitions of `topic` that have a known leader now."""
        state = self.topics.get(topic)
        if state is None:
            return []
        return [
            p.partition for p in state.partitions if self.leader(topic, p.partition) is not None
        ]

    def forget_leader(self, topic: str, partition: int) -> None:
        """A broker said it does not lead this partition: unknown until the next refresh."""
        state = self.topics.get(topic)
        if state is None or not 0 <= partition < len(state.partitions):
            return
        parts = list(state.partitions)
        old = parts[partition]
        parts[partition] = PartitionMetadata(
            old.partition, NO_LEADER, old.leader_epoch, old.replicas, old.isr
        )
        self.topics[topic] = TopicState(state.error_code, tuple(parts))
