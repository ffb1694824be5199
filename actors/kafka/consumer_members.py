"""Members: what each KIP-848 member of a zafka group last said it owns and was last told
to own, for the fields Kafka's ConsumerGroupHeartbeat leaves out when unchanged (zafka's own
heartbeat always says what the member owns). Pure bookkeeping, kept by the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

from zafka import limits
from zafka.transport.group import TopicPartitions

Owned = tuple[TopicPartitions, ...]


@dataclass
class Members:
    """Per member (group id, member id): what it last said it owns, and what it was last
    told to own. Bounded: a member is forgotten when it leaves or its coordinator no longer
    knows it, and the longest unheard beyond `limits.kafka_consumer_members_max`."""

    owned: dict[tuple[str, str], Owned] = field(default_factory=dict)
    sent: dict[tuple[str, str], Owned] = field(default_factory=dict)

    def owned_now(self, key: tuple[str, str], reported: Owned | None) -> Owned:
        """What the member owns: `reported` (None: unchanged since it last said)."""
        owned = self.owned.pop(key, ())
        self.owned[key] = owned if reported is None else reported  # now the latest heard
        while len(self.owned) > limits.kafka_consumer_members_max:
            self.forget(next(iter(self.owned)))
        return self.owned[key]

    def changed(self, key: tuple[str, str], assignment: Owned, full: bool) -> bool:
        """Whether to send `assignment` (`full`: the member joined or said what it owns, so
        it gets the whole of it)."""
        new = full or self.sent.get(key) != assignment
        if key in self.owned:
            self.sent[key] = assignment
        return new

    def forget(self, key: tuple[str, str]) -> None:
        self.owned.pop(key, None)
        self.sent.pop(key, None)
