"""What a broker answers Metadata requests from: the cluster as the controller last told it
(UpdateMetadata, transport/controller.py), not a ZooKeeper read per request. Pure.

Until the first full update (`reset`) from a controller arrives the cache is not `ready`
and the broker reads ZooKeeper instead. What the broker itself reads from ZooKeeper when it
creates, grows, deletes or syncs topics goes in too (`learn`, `forget`), so that a client
sees its own topic admin at once on the broker it asked. A topic the cache does not know
(created a moment ago, before any update reached this broker; or one a request would
auto-create) is `missing` from the answer: the broker reads those from ZooKeeper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zafka.transport.client import BrokerInfo, MetadataResponse, PartitionMetadata, TopicMetadata
from zafka.transport.controller import UpdateMetadataRequest

Partitions = dict[int, PartitionMetadata]


@dataclass
class MetadataCache:
    """`topics`: as the controller told; `learned`: topics this broker read itself that the
    controller has not mentioned since (what it says wins once it does)."""

    ready: bool = False
    brokers: tuple[BrokerInfo, ...] = ()
    topics: dict[str, Partitions] = field(default_factory=dict)
    learned: dict[str, Partitions] = field(default_factory=dict)
    _live: frozenset[int] = frozenset()

    def apply(self, update: UpdateMetadataRequest) -> None:
        if update.reset:
            self.topics = {}
            self.ready = True
        self.brokers = tuple(sorted(update.brokers, key=lambda b: b.id))
        self._live = frozenset(b.id for b in self.brokers)
        for name in update.deleted_topics:
            self.forget(name)
        for topic in update.topics:
            partitions = self.topics.setdefault(topic.name, {})
            partitions.update((p.partition, p) for p in topic.partitions)
            self.learned.pop(topic.name, None)

    def is_live(self, broker_id: int) -> bool:
        """Whether the controller counts `broker_id` among the live brokers (before its
        first word: every broker is). A leader adds only live replicas to its ISR, so a
        broker back before its registration does not make the ISR flap."""
        return not self.brokers or broker_id in self._live

    def learn(self, topic: TopicMetadata) -> None:
        """What this broker read from ZooKeeper itself (a topic it created, or its topic
        sync found): read-your-writes before the controller's update. A partition held in a
        newer leader epoch keeps it (the read may be the older)."""
        held = self.topics if topic.name in self.topics else self.learned
        partitions = held.setdefault(topic.name, {})
        for p in topic.partitions:
            now = partitions.get(p.partition)
            if now is None or now.leader_epoch <= p.leader_epoch:
                partitions[p.partition] = p

    def forget(self, name: str) -> None:
        """A topic deleted."""
        self.topics.pop(name, None)
        self.learned.pop(name, None)

    def answer(
        self, names: tuple[str, ...] | None, controller_id: int = -1
    ) -> tuple[MetadataResponse, list[str]]:
        """The answer for the named topics (None: all) it knows, and the names it does not."""
        if names is None:
            wanted = sorted(self.topics.keys() | self.learned.keys())
        else:
            wanted = list(dict.fromkeys(names))
        found = [(n, self.topics.get(n, self.learned.get(n))) for n in wanted]
        topics = tuple(
            TopicMetadata(n, 0, tuple(ps[p] for p in sorted(ps)))
            for n, ps in found
            if ps is not None
        )
        missing = [n for n, ps in found if ps is None]
        return MetadataResponse(self.brokers, topics, controller_id), missing


def merged(
    names: tuple[str, ...] | None, cached: MetadataResponse, read: MetadataResponse
) -> MetadataResponse:
    """One answer from the cache's and ZooKeeper's (for the names the cache missed), in the
    order asked, with the cache's brokers."""
    by_name = {t.name: t for t in (*cached.topics, *read.topics)}
    order = list(dict.fromkeys(names)) if names is not None else sorted(by_name)
    topics = tuple(by_name[n] for n in order if n in by_name)
    return MetadataResponse(cached.brokers, topics, cached.controller_id)
