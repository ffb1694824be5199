"""Which partition actors a broker runs: one `PartitionActor` per partition it leads.

Functions over the broker's `BrokerContext` and its runtime, called by the broker actor on the
runtime's thread: a whole topic as ZooKeeper has it (`host_topic`, `unhost_topic`), or one
partition whose leader changed (`set_leader`, from the controller's LeaderAndIsr). A partition
this broker stops leading is stopped with its log closed and its data kept (it is still a
replica here); only a deleted topic's data is deleted.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from zafka.actors.broker.partition_dirs import (
    claim,
    delete_partition_dir,
    delete_partition_dirs,
    partition_dir,
)
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.runtime.loop import Runtime
from zafka.coordination.topic_records import TopicInfo
from zafka.transport.names import partition_actor_name

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerContext

log = logging.getLogger(__name__)


def host_topic(
    context: BrokerContext, runtime: Runtime, info: TopicInfo, led: tuple[tuple[int, int], ...]
) -> bool:
    """Record topic `info` and spawn the partitions of `led` ((partition, leader epoch));
    False when this incarnation of the topic is hosted already, as large as it is now."""
    known = context.topic_ids.get(info.name)
    if known == info.topic_id:
        return _grow(context, runtime, info, led)
    if known is not None:  # deleted and created again since we looked
        unhost_topic(context, runtime, info.name, delete_data=True)
    context.topic_ids[info.name] = info.topic_id
    context.infos[info.name] = info
    context.hosted[info.name] = []  # recorded as it grows: nothing spawned goes unrecorded
    context.partition_counts[info.name] = info.partitions
    for p, leader_epoch in led:
        _lead(context, runtime, info, p, leader_epoch)
    return True


def _grow(
    context: BrokerContext, runtime: Runtime, info: TopicInfo, led: tuple[tuple[int, int], ...]
) -> bool:
    """The hosted topic has partitions added: spawn the new ones this broker leads."""
    before = context.partition_counts[info.name]
    if info.partitions <= before:
        return False
    context.infos[info.name] = info
    context.partition_counts[info.name] = info.partitions
    for p, leader_epoch in led:
        if p >= before:
            _lead(context, runtime, info, p, leader_epoch)
    return True


def unhost_topic(context: BrokerContext, runtime: Runtime, name: str, delete_data: bool) -> None:
    """Stop the partition actors of topic `name` (their logs are closed) and, if asked,
    delete their data directories."""
    context.partition_counts.pop(name, None)
    for p in context.hosted.pop(name, []):
        runtime.despawn(partition_actor_name(name, p))
        context.leader_epochs.pop((name, p), None)
    context.topic_ids.pop(name, None)
    context.infos.pop(name, None)
    if delete_data:
        delete_partition_dirs(context.data_dir, name)


def set_leader(
    context: BrokerContext, runtime: Runtime, topic: str, partition: int, leads: bool, epoch: int
) -> bool:
    """This broker leads (`leads`) `partition` of a hosted `topic` in leader epoch `epoch`,
    or not; True when that changed what runs here. An epoch older than the one running is
    ignored (a late message)."""
    info, led = context.infos.get(topic), context.hosted.get(topic)
    if info is None or led is None or partition >= info.partitions:
        return False
    running = context.leader_epochs.get((topic, partition))
    if running is not None and (epoch < running or (leads and epoch == running)):
        return False
    if running is not None:  # a new epoch, or no longer the leader: stop the old one
        runtime.despawn(partition_actor_name(topic, partition))
        led.remove(partition)
        del context.leader_epochs[(topic, partition)]
    if leads:
        _lead(context, runtime, info, partition, epoch)
    return True


def drop_replica(context: BrokerContext, runtime: Runtime, topic: str, partition: int) -> bool:
    """This broker is no longer a replica of the partition (reassigned away): stop it if it
    runs here and delete its data; True when it ran here."""
    running = (topic, partition) in context.leader_epochs
    if running:
        runtime.despawn(partition_actor_name(topic, partition))
        context.hosted[topic].remove(partition)
        del context.leader_epochs[(topic, partition)]
    delete_partition_dir(context.data_dir, topic, partition)
    return running


def _lead(context: BrokerContext, runtime: Runtime, info: TopicInfo, p: int, epoch: int) -> None:
    directory = partition_dir(context.data_dir, info.name, p)
    factory = partial(
        PartitionActor, info.name, p, directory, info.log_config, epoch, info.max_message_bytes
    )
    try:
        claim(directory, info.topic_id)
        runtime.spawn(factory)
    except Exception:
        log.exception("partition %s-%s did not start", info.name, p)
        runtime.despawn(partition_actor_name(info.name, p))
        return
    context.hosted[info.name].append(p)
    context.leader_epochs[(info.name, p)] = epoch
