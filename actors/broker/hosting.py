"""Which partition actors a broker runs: one `PartitionActor` per partition it is a replica of,
as leader or follower (actors/partition/roles.py).

Functions over the broker's `BrokerContext` and its runtime, called by the broker actor on
the runtime's thread: a whole topic as ZooKeeper has it (`host_topic`, `unhost_topic`), or
one partition as the controller's LeaderAndIsr says it (`take_role`, also used for each
partition of a hosted topic). A change of leader starts a new partition actor (its log is
closed and opened again; the data stays); a leader that goes on leading (a new ISR, new
replicas, or a new epoch for them) is told by a call, keeping its followers' progress and
its answers. A follower is also followed by the broker's fetcher for its leader
(actors/broker/fetchers.py). Only a deleted topic's data, or a replica moved away, is
deleted.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from zafka.actors.broker import fetchers
from zafka.actors.broker.partition_dirs import (
    claim,
    delete_partition_dir,
    delete_partition_dirs,
    partition_dir,
)
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.partition.roles import Followership, Leadership
from zafka.actors.replication.server import wake_followers
from zafka.actors.runtime.loop import Runtime
from zafka.coordination.topic_records import TopicInfo
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.names import partition_actor_name

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerContext

log = logging.getLogger(__name__)


def host_topic(
    context: BrokerContext,
    runtime: Runtime,
    info: TopicInfo,
    states: tuple[LeaderAndIsrRequest, ...],
) -> bool:
    """Record topic `info` and run its replicas here as `states` say; False when this
    incarnation of the topic is hosted already, as large as it is now."""
    known = context.topic_ids.get(info.name)
    if known == info.topic_id:
        return _grow(context, runtime, info, states)
    if known is not None:  # deleted and created again since we looked
        unhost_topic(context, runtime, info.name, delete_data=True)
    context.topic_ids[info.name] = info.topic_id
    context.infos[info.name] = info
    context.hosted[info.name] = []  # recorded as it grows: nothing spawned goes unrecorded
    context.partition_counts[info.name] = info.partitions
    for state in states:
        take_role(context, runtime, state)
    return True


def _grow(
    context: BrokerContext,
    runtime: Runtime,
    info: TopicInfo,
    states: tuple[LeaderAndIsrRequest, ...],
) -> bool:
    """The hosted topic has partitions added: run the new ones this broker holds."""
    before = context.partition_counts[info.name]
    if info.partitions <= before:
        return False
    context.infos[info.name] = info
    context.partition_counts[info.name] = info.partitions
    for state in states:
        if state.partition >= before:
            take_role(context, runtime, state)
    return True


def unhost_topic(context: BrokerContext, runtime: Runtime, name: str, delete_data: bool) -> None:
    """Stop the partition actors of topic `name` (their logs are closed) and, if asked,
    delete their data directories."""
    context.partition_counts.pop(name, None)
    for p in context.hosted.pop(name, []):
        _stop(context, runtime, name, p)
    context.topic_ids.pop(name, None)
    context.infos.pop(name, None)
    if delete_data:
        delete_partition_dirs(context.data_dir, name)


def led(context: BrokerContext, topic: str) -> list[int]:
    """The partitions of `topic` this broker leads now."""
    me = context.zookeeper.broker_id
    return [p for p in context.hosted.get(topic, []) if context.running[(topic, p)][1] == me]


def take_role(context: BrokerContext, runtime: Runtime, state: LeaderAndIsrRequest) -> bool:
    """Lead or follow a partition of a hosted topic as `state` says; True when that changed
    who leads it here. An epoch older than the one running is ignored (a late message)."""
    topic, p = state.topic, state.partition
    info, hosted = context.infos.get(topic), context.hosted.get(topic)
    if info is None or hosted is None or p >= info.partitions:
        return False
    me = context.zookeeper.broker_id
    running = context.running.get((topic, p))
    if running is not None and state.leader_epoch < running[0]:
        return False
    if running is not None and state.leader == me == running[1]:  # it goes on leading
        actor = runtime.actor(partition_actor_name(topic, p))
        assert isinstance(actor, PartitionActor)
        actor.update(_leadership(info, state, me), state.leader_epoch)
        context.running[(topic, p)] = (state.leader_epoch, me)
        return False
    if running is not None and state.leader_epoch == running[0]:
        return False
    if running is not None:
        _stop(context, runtime, topic, p)
    _run(context, runtime, info, state)
    return True


def drop_replica(context: BrokerContext, runtime: Runtime, topic: str, partition: int) -> bool:
    """This broker is no longer a replica of the partition (reassigned away): stop it if it
    runs here and delete its data; True when it ran here."""
    running = (topic, partition) in context.running
    if running:
        _stop(context, runtime, topic, partition)
    delete_partition_dir(context.data_dir, topic, partition)
    return running


def _stop(context: BrokerContext, runtime: Runtime, topic: str, p: int) -> None:
    fetchers.unfollow(context, runtime, topic, p)
    runtime.despawn(partition_actor_name(topic, p))
    hosted = context.hosted.get(topic)
    if hosted is not None and p in hosted:
        hosted.remove(p)
    context.running.pop((topic, p), None)


def _leadership(info: TopicInfo, state: LeaderAndIsrRequest, me: int) -> Leadership:
    return Leadership(me, state.isr, state.replicas, state.version, info.min_insync_replicas)


def _run(context: BrokerContext, runtime: Runtime, info: TopicInfo, state: LeaderAndIsrRequest):
    p, me = state.partition, context.zookeeper.broker_id
    directory = partition_dir(context.data_dir, info.name, p)
    leads = state.leader == me
    role = _leadership(info, state, me) if leads else Followership(state.leader)
    wake = partial(wake_followers, runtime) if leads and len(state.replicas) > 1 else None
    checked = partial(context.scrubbed.add, (info.name, p))
    factory = partial(
        PartitionActor,
        info.name,
        p,
        directory,
        info.log_config,
        state.leader_epoch,
        info.max_message_bytes,
        role=role,
        on_append=wake,
        eligible=context.metadata.is_live,
        log_checked=None if (info.name, p) in context.scrubbed else checked,
    )
    try:
        claim(directory, info.topic_id)
        runtime.spawn(factory)
    except Exception:
        log.exception("partition %s-%s did not start", info.name, p)
        runtime.despawn(partition_actor_name(info.name, p))
        return
    context.hosted[info.name].append(p)
    context.running[(info.name, p)] = (state.leader_epoch, state.leader)
    if not leads and state.leader >= 0:
        fetchers.follow(context, runtime, state)
