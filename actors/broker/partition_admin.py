"""The broker's ZooKeeper side of partition admin: growing topics (CreatePartitions), asking
the controller for preferred leader elections (ElectLeaders) and for replica moves
(AlterPartitionReassignments, ListPartitionReassignments).

Like `admin.py`, synchronous functions for the `ZooKeeperWorker`'s thread over a
`BrokerZooKeeper`. Both write to ZooKeeper and leave the rest to the controller, through
its request queue (coordination/controller_requests.py): a grown topic's new partitions are
hosted by their replicas when the controller tells them; an election is done by the
controller when it takes the request. The broker that answers hosts the new partitions it
leads itself before it answers (as for a created topic), so a client producing to them at
once finds them.
"""

from __future__ import annotations

from kazoo.exceptions import KazooException

from zafka.actors.broker.admin import INTERNAL_TOPICS, BrokerZooKeeper, HostPlan, zk_error
from zafka.coordination import controller_requests, reassignments
from zafka.coordination.topic_records import TopicInfo
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport.admin import (
    AlterPartitionReassignmentsResponse,
    CreatePartitionsResponse,
    ElectLeadersResponse,
    ListPartitionReassignmentsResponse,
    OngoingReassignment,
    PartitionCount,
    PartitionResult,
    Reassignment,
    TopicResult,
)
from zafka.transport.group import TopicPartitions


def create_partitions(
    zk: BrokerZooKeeper, topics: tuple[PartitionCount, ...]
) -> tuple[CreatePartitionsResponse, list[HostPlan]]:
    """Grow each topic to its count; plans for what this broker now leads of them.
    `__consumer_offsets` is refused: its groups are placed by its partition count."""
    results, plans = [], []
    for topic in topics:
        try:
            if topic.name in INTERNAL_TOPICS:
                raise ZafkaError(
                    "INVALID_REQUEST", f"{topic.name}: its partition count places the groups"
                )
            grown = zk.store.add_partitions(topic.name, topic.count, zk.racks())
            plans.append(zk.plan(grown))
            results.append(TopicResult(topic.name, 0, None))
        except ZafkaError as err:
            results.append(TopicResult(topic.name, err.error.code, err.detail or None))
        except KazooException as err:
            results.append(TopicResult(topic.name, zk_error(err).error.code, str(err)))
    return CreatePartitionsResponse(tuple(results)), plans


def elect_leaders(
    zk: BrokerZooKeeper, asked: tuple[TopicPartitions, ...] | None
) -> ElectLeadersResponse:
    """Queue a preferred election for the asked partitions (None: all) whose preferred
    replica is live, in sync and not leading; say for each what will happen."""
    try:
        live = {b.id for b in zk.brokers()}
        wanted = _every_partition(zk) if asked is None else asked
        results = [r for tp in wanted for r in _check(zk, tp, live)]
        queued = [(r.topic, r.partition) for r in results if r.error_code == 0]
        if queued:
            controller_requests.queue(zk.client, controller_requests.elect_preferred_json(queued))
    except KazooException as err:
        raise zk_error(err) from None
    return ElectLeadersResponse(tuple(results))


def _every_partition(zk: BrokerZooKeeper) -> list[TopicPartitions]:
    infos = [zk.store.get(name) for name in zk.store.names()]
    return [TopicPartitions(i.name, tuple(range(i.partitions))) for i in infos if i is not None]


def _check(zk: BrokerZooKeeper, asked: TopicPartitions, live: set[int]) -> list[PartitionResult]:
    try:
        info = zk.store.get(asked.topic)
    except ZafkaError as err:
        return [_result(asked.topic, p, err.error.name, err.detail) for p in asked.partitions]
    return [_one(zk, info, asked.topic, p, live) for p in dict.fromkeys(asked.partitions)]


def _one(
    zk: BrokerZooKeeper, info: TopicInfo | None, topic: str, p: int, live: set[int]
) -> PartitionResult:
    if info is None or not 0 <= p < info.partitions:
        return _result(topic, p, "UNKNOWN_TOPIC_OR_PARTITION", f"no partition {topic}-{p}")
    state, _ = zk.store.partition_state(topic, p)
    preferred = info.replicas[p][0]
    if state.leader == preferred:
        return _result(topic, p, "ELECTION_NOT_NEEDED", f"broker {preferred} leads already")
    if preferred not in live or preferred not in state.isr:
        where = "down" if preferred not in live else "not in the ISR"
        return _result(topic, p, "PREFERRED_LEADER_NOT_AVAILABLE", f"broker {preferred} is {where}")
    return PartitionResult(topic, p, 0, None)


def _result(topic: str, p: int, name: str, detail: str) -> PartitionResult:
    return PartitionResult(topic, p, BY_NAME[name].code, detail)


def alter_reassignments(
    zk: BrokerZooKeeper, asked: tuple[Reassignment, ...]
) -> AlterPartitionReassignmentsResponse:
    """Record the valid targets for the controller; say for each partition why not if not."""
    try:
        live = {b.id for b in zk.brokers()}
        results, targets = [], {}
        for move in asked:
            result = _check_move(zk, move, live)
            results.append(result)
            if result.error_code == 0:
                targets[(move.topic, move.partition)] = tuple(move.replicas)
        if targets:
            reassignments.write_targets(zk.client, targets)
    except KazooException as err:
        raise zk_error(err) from None
    return AlterPartitionReassignmentsResponse(tuple(results))


def _check_move(zk: BrokerZooKeeper, move: Reassignment, live: set[int]) -> PartitionResult:
    try:
        info = zk.store.get(move.topic)
    except ZafkaError as err:
        return _result(move.topic, move.partition, err.error.name, err.detail)
    where = f"{move.topic}-{move.partition}"
    if info is None or not 0 <= move.partition < info.partitions:
        return _result(move.topic, move.partition, "UNKNOWN_TOPIC_OR_PARTITION", f"no {where}")
    replicas = list(move.replicas)
    problem = ""
    if not replicas or len(set(replicas)) != len(replicas):
        problem = f"replicas {replicas} must be one or more distinct broker ids"
    elif not set(replicas) <= live:
        problem = (
            f"brokers {sorted(set(replicas) - live)} are not registered (live: {sorted(live)})"
        )
    if problem:
        return _result(
            move.topic, move.partition, "INVALID_REPLICA_ASSIGNMENT", f"{where}: {problem}"
        )
    return PartitionResult(move.topic, move.partition, 0, None)


def list_reassignments(zk: BrokerZooKeeper) -> ListPartitionReassignmentsResponse:
    """Every partition being moved, with the replicas being added (not in sync yet) and
    those that will be removed."""
    try:
        targets = reassignments.read_targets(zk.client)
        ongoing = []
        for (topic, p), target in sorted(targets.items()):
            info = zk.store.get(topic)
            if info is None or p >= info.partitions:
                continue  # deleted meanwhile
            now, (state, _) = info.replicas[p], zk.store.partition_state(topic, p)
            adding = tuple(r for r in target if r not in state.isr)  # not caught up yet
            removing = tuple(r for r in now if r not in target)
            ongoing.append(OngoingReassignment(topic, p, now, adding, removing))
    except KazooException as err:
        raise zk_error(err) from None
    return ListPartitionReassignmentsResponse(tuple(ongoing))
