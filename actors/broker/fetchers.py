"""Which fetchers a broker runs: one `ReplicaFetcher` per leader broker it follows partitions
of (`fetcher-<leader id>`), spawned with the first such partition and kept while the broker
runs (an idle one costs nothing: it sends only for partitions it follows). Functions over the
`BrokerContext`, called on the runtime's thread by actors/broker/hosting.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zafka.actors.replication.fetcher import ReplicaFetcher, fetcher_name
from zafka.actors.runtime.loop import Runtime
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.names import broker_node

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerContext


def follow(context: BrokerContext, runtime: Runtime, state: LeaderAndIsrRequest) -> None:
    """Fetch `state`'s partition from its leader, in its leader epoch."""
    leader = state.leader
    if state.leader_endpoint:
        context.link(broker_node(leader), state.leader_endpoint)
    name = fetcher_name(leader)
    try:
        fetcher = runtime.actor(name)
    except KeyError:
        me = context.zookeeper.broker_id
        fetcher = runtime.spawn(lambda: ReplicaFetcher(me, leader))
    assert isinstance(fetcher, ReplicaFetcher)
    fetcher.follow(state.topic, state.partition, state.leader_epoch)


def unfollow(context: BrokerContext, runtime: Runtime, topic: str, partition: int) -> None:
    """Stop fetching the partition (call before it leaves `context.running`)."""
    running = context.running.get((topic, partition))
    if running is None or running[1] in (-1, context.zookeeper.broker_id):
        return  # not followed: led here, or no leader
    leader = running[1]
    try:
        fetcher = runtime.actor(fetcher_name(leader))
    except KeyError:
        return
    assert isinstance(fetcher, ReplicaFetcher)
    fetcher.unfollow(topic, partition)
