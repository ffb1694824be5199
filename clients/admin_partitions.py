"""Partition administration: `PartitionAdmin`, which `Admin` (clients/admin.py) owns.

    with Admin("127.0.0.1:9092") as admin:
        admin.create_partitions({"orders": 6})       # grow orders to 6 partitions
        admin.alter_partition_reassignments({("orders", 0): [2, 3]})
        print(admin.list_partition_reassignments())  # {TopicPartition: PartitionReassignment}
        results = admin.elect_leaders(["orders"])    # preferred leader election
        for tp, error in results.items():
            print(tp, "elected" if error is None else error.error.name)

`alter_partition_reassignments` starts moving partitions' replicas (Kafka's
AlterPartitionReassignments: the controller adds the new replicas, waits until they are in
sync, moves the leader if needed and drops the old ones); `list_partition_reassignments`
says which partitions are still on their way.

`create_partitions` is Kafka's CreatePartitions: the count only grows; new partitions are
placed as a new topic's are. `elect_leaders` is Kafka's ElectLeaders (PREFERRED): any broker
queues the election with the controller and answers at once, saying per partition whether
there is anything to do (ELECTION_NOT_NEEDED: the preferred replica leads already;
PREFERRED_LEADER_NOT_AVAILABLE: it is down or out of sync). For the partitions queued, this
client then watches the partitions' leaders until the preferred replica leads each (None),
or the request timeout passes (REQUEST_TIMED_OUT for the ones still waiting), as Kafka's
AdminClient answers only once the controller has acted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zafka import clock
from zafka.clients.admin_groups import Backoff, _tps
from zafka.clients.admin_types import PartitionReassignment, TopicDescription, topic_results
from zafka.errors import ZafkaError, from_code
from zafka.transport import admin as wire
from zafka.transport.group import TopicPartitions
from zafka.transport.names import TopicPartition

Results = dict[TopicPartition, ZafkaError | None]


class PartitionAdmin:
    """The partition methods of an `Admin`. `call(message, expected)` sends one request and
    waits for its reply; `describe(names)` describes topics (Admin.describe_topics)."""

    def __init__(
        self,
        call: Callable[[object, type], Any],
        describe: Callable[[list[str]], list[TopicDescription]],
        timeout_ms: int,
    ) -> None:
        self._call, self._describe, self._timeout_ms = call, describe, timeout_ms

    def create_partitions(self, counts: Mapping[str, int]) -> dict[str, ZafkaError | None]:
        """Grow each named topic to its count of partitions in all; each topic succeeds or
        fails on its own (INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION,
        INVALID_REPLICATION_FACTOR: fewer live brokers than its replicas)."""
        topics = tuple(wire.PartitionCount(name, count) for name, count in counts.items())
        if not topics:
            return {}
        response = self._call(wire.CreatePartitionsRequest(topics), wire.CreatePartitionsResponse)
        return topic_results([t.name for t in topics], response.results)

    def alter_partition_reassignments(
        self, moves: Mapping[tuple[str, int], Sequence[int]]
    ) -> Results:
        """Move each partition's replicas to its list (the first: its preferred leader);
        each with None (the controller moves it) or its error (UNKNOWN_TOPIC_OR_PARTITION,
        INVALID_REPLICA_ASSIGNMENT: empty, repeated or unknown brokers)."""
        asked = []
        for item, replicas in moves.items():
            tp = _tps([item], "alter_partition_reassignments")[0]
            asked.append(wire.Reassignment(tp.topic, tp.partition, tuple(replicas)))
        if not asked:
            return {}
        request = wire.AlterPartitionReassignmentsRequest(tuple(asked))
        response = self._call(request, wire.AlterPartitionReassignmentsResponse)
        return _partition_results(response.results)

    def list_partition_reassignments(self) -> dict[TopicPartition, PartitionReassignment]:
        """The partitions being moved now."""
        response = self._call(
            wire.ListPartitionReassignmentsRequest(), wire.ListPartitionReassignmentsResponse
        )
        return {
            TopicPartition(r.topic, r.partition): PartitionReassignment(
                tuple(r.replicas), tuple(r.adding), tuple(r.removing)
            )
            for r in response.reassignments
        }

    def elect_leaders(self, partitions: Iterable[tuple[str, int]] | None = None) -> Results:
        """Preferred leader election for `partitions` (None: all); see the module docstring."""
        deadline = clock.monotonic_s() + self._timeout_ms / 1000
        asked = None if partitions is None else _grouped(_tps(partitions, "elect_leaders"))
        response = self._call(wire.ElectLeadersRequest(asked), wire.ElectLeadersResponse)
        results = _partition_results(response.results)
        waiting = {tp for tp, error in results.items() if error is None}
        backoff = Backoff(deadline)
        while waiting:
            for topic in self._describe(sorted({tp.topic for tp in waiting})):
                for p in topic.partitions:
                    if p.leader == p.replicas[0]:
                        waiting.discard(TopicPartition(topic.name, p.partition))
            if waiting:
                try:
                    backoff.wait(ZafkaError("REQUEST_TIMED_OUT"), "waiting for the controller")
                except ZafkaError as err:
                    results.update({tp: err for tp in waiting})
                    break
        return dict(sorted(results.items()))


def _partition_results(results: Iterable[wire.PartitionResult]) -> Results:
    """Each partition with None (0) or its error."""
    outcome: Results = {}
    for r in results:
        tp = TopicPartition(r.topic, r.partition)
        where = f"{tp.topic}-{tp.partition}"
        outcome[tp] = from_code(r.error_code, r.error_message or where) if r.error_code else None
    return outcome


def _grouped(tps: list[TopicPartition]) -> tuple[TopicPartitions, ...]:
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return tuple(TopicPartitions(t, tuple(ps)) for t, ps in by_topic.items())
