"""Server-side partition assignors for consumer groups: pure functions, chosen per group by name.

An assignor maps the group's members to the partitions they should own (the *target
assignment*; the group coordinator then moves partitions towards it incrementally):

    assign(members: Mapping[member_id, MemberSubscriptionView],
           partitions_per_topic: Mapping[topic, partition count]) -> dict[member_id, frozenset[TP]]

- `MemberSubscriptionView.topics` is the member's subscription, already resolved to topic
  names (a pattern is resolved by the caller); `assignment` is its current target assignment
  (empty for a new member), which a sticky assignor tries to keep.
- A topic missing from `partitions_per_topic` (or with 0 partitions) has no partitions to give.
- Every result holds every member (possibly with an empty set). Every partition of a topic that
  at least one member subscribes to is assigned to exactly one member subscribed to its topic;
  no other partition is assigned.
- Results are deterministic: the same input gives the same output (members are ordered by id).

Assignors (`ASSIGNORS`, `DEFAULT_ASSIGNOR`):

- `"range"` (Kafka's RangeAssignor): per topic, the members subscribed to it in member-id
  order take consecutive ranges of its partitions, the first `n % k` one more. Balanced per
  topic (a topic's partitions differ by at most one between its subscribers) and
  co-partitioned (members with the same subscription get the same partition numbers of
  topics with equal partition counts, for joins), but not balanced in total across topics
  and not sticky.
- `"uniform"` (default; Kafka's uniform/sticky assignor): balanced in total and sticky. It
  keeps every member's current partitions that are still valid, places the unowned ones on
  the least-loaded subscribers, then moves partitions one at a time from the most- to the
  least-loaded member while that narrows a gap of two or more. On return, no member holds
  two or more partitions more than another member unless none of its partitions' topics is
  subscribed by the other: members with the same subscription differ by at most one. With
  one subscription for all (the common case) it moves the fewest partitions any balanced
  assignment can: adding a 4th member to 3 sharing 12 partitions moves exactly 3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from zafka.transport.names import TopicPartition

TP = TopicPartition


class MemberSubscriptionView(NamedTuple):
    """What an assignor knows of one member: its resolved subscription and current assignment."""

    topics: frozenset[str]
    assignment: frozenset[TopicPartition]


Assignment = dict[str, frozenset[TopicPartition]]
Assignor = Callable[[Mapping[str, MemberSubscriptionView], Mapping[str, int]], Assignment]


def range_assign(
    members: Mapping[str, MemberSubscriptionView], partitions_per_topic: Mapping[str, int]
) -> Assignment:
    """Kafka's range assignor (see the module docstring)."""
    result: dict[str, set[TopicPartition]] = {m: set() for m in members}
    subscribers = _subscribers(members, partitions_per_topic)
    for topic in sorted(subscribers):
        ids = subscribers[topic]
        base, extra = divmod(partitions_per_topic[topic], len(ids))
        start = 0
        for i, member_id in enumerate(ids):
            count = base + (1 if i < extra else 0)
            result[member_id].update(TP(topic, p) for p in range(start, start + count))
            start += count
    return {m: frozenset(tps) for m, tps in result.items()}


def uniform_assign(
    members: Mapping[str, MemberSubscriptionView], partitions_per_topic: Mapping[str, int]
) -> Assignment:
    """Balanced and sticky (see the module docstring)."""
    ids = sorted(members)
    owned: dict[str, set[TopicPartition]] = {m: set() for m in ids}
    taken: set[TopicPartition] = set()
    for member_id in ids:  # keep what is still valid; a partition claimed twice: first id wins
        view = members[member_id]
        for tp in sorted(view.assignment):
            if tp not in taken and _valid(tp, view.topics, partitions_per_topic):
                taken.add(tp)
                owned[member_id].add(tp)
    subscribers = _subscribers(members, partitions_per_topic)
    # Unowned partitions, topics with the fewest subscribers first, each to its topic's
    # least-loaded subscriber.
    for topic in sorted(subscribers, key=lambda t: (len(subscribers[t]), t)):
        candidates = subscribers[topic]
        for p in range(partitions_per_topic[topic]):
            tp = TP(topic, p)
            if tp not in taken:
                target = min(candidates, key=lambda m: (len(owned[m]), m))
                owned[target].add(tp)
                taken.add(tp)
    topics_of = {m: members[m].topics for m in ids}
    while _move_one(owned, topics_of):
        pass
    return {m: frozenset(tps) for m, tps in owned.items()}


def _move_one(
    owned: dict[str, set[TopicPartition]], topics_of: Mapping[str, frozenset[str]]
) -> bool:
    """Move one partition from a member with the most to one with the fewest that subscribes
    to its topic, if their counts differ by two or more. False when no such move exists.
    Each move lowers the sum of squared counts, so repeated calls terminate."""
    order = sorted(owned, key=lambda m: (len(owned[m]), m))
    for receiver in order:
        low = len(owned[receiver])
        wanted = topics_of[receiver]
        for giver in reversed(order):
            if len(owned[giver]) - low < 2:
                break
            movable = [tp for tp in owned[giver] if tp.topic in wanted]
            if movable:
                tp = min(movable)
                owned[giver].remove(tp)
                owned[receiver].add(tp)
                return True
    return False


def _subscribers(
    members: Mapping[str, MemberSubscriptionView], partitions_per_topic: Mapping[str, int]
) -> dict[str, list[str]]:
    """Each topic with partitions and at least one subscriber -> its subscribers, by id."""
    result: dict[str, list[str]] = {}
    for member_id in sorted(members):
        for topic in members[member_id].topics:
            if partitions_per_topic.get(topic, 0) > 0:
                result.setdefault(topic, []).append(member_id)
    return result


def _valid(
    tp: TopicPartition, topics: frozenset[str], partitions_per_topic: Mapping[str, int]
) -> bool:
    return tp.topic in topics and 0 <= tp.partition < partitions_per_topic.get(tp.topic, 0)


ASSIGNORS: dict[str, Assignor] = {"range": range_assign, "uniform": uniform_assign}
DEFAULT_ASSIGNOR = "uniform"


def get_assignor(name: str) -> Assignor:
    """The assignor called `name`; ValueError for an unknown name."""
    try:
        return ASSIGNORS[name]
    except KeyError:
        raise ValueError(f"unknown assignor {name!r}; known: {sorted(ASSIGNORS)}") from None
