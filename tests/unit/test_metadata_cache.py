"""The brokers' metadata cache (actors/broker/metadata_cache.py) and what the controller
sends it (actors/controller/metadata.py): full updates split and resetting, deltas merged
per partition, deletions, and what the cache does not know left to ZooKeeper."""

from __future__ import annotations

from zafka import limits
from zafka.actors.broker.metadata_cache import MetadataCache, merged
from zafka.actors.controller.metadata import delta_update, full_updates
from zafka.actors.controller.state import ControllerState, PartitionView
from zafka.coordination.topic_records import LeaderIsr
from zafka.transport.client import BrokerInfo, MetadataResponse, PartitionMetadata, TopicMetadata

ENDPOINTS = {2: "tcp://127.0.0.1:2", 1: "tcp://127.0.0.1:1"}


def controller(**topics: int) -> ControllerState:
    state = ControllerState(3)
    state.brokers_changed({1, 2})
    for name, count in topics.items():
        views = {p: PartitionView((1, 2), LeaderIsr(1, 0, (1,)), 0) for p in range(count)}
        state.topic_added(name, views, unclean=False)
    return state


def test_a_cache_is_ready_only_after_a_full_update_and_answers_what_it_knows():
    cache = MetadataCache()
    state = controller(orders=2)
    assert not cache.ready
    for update in full_updates(state, ENDPOINTS, {}):
        cache.apply(update)
    assert cache.ready
    answer, missing = cache.answer(("orders", "new"))
    assert missing == ["new"]
    assert [b.id for b in answer.brokers] == [1, 2]
    (orders,) = answer.topics
    assert [(p.partition, p.leader, p.replicas, p.isr) for p in orders.partitions] == [
        (0, 1, (1, 2), (1,)),
        (1, 1, (1, 2), (1,)),
    ]
    assert cache.answer(None)[1] == []  # all topics: what it knows


def test_a_full_update_is_split_and_resets_the_cache():
    state = controller(big=limits.update_metadata_partitions_max + 1)
    updates = full_updates(state, ENDPOINTS, {})
    assert [u.reset for u in updates] == [True, False]
    cache = MetadataCache()
    cache.apply(full_updates(controller(gone=1), ENDPOINTS, {})[0])
    for update in updates:
        cache.apply(update)
    assert sorted(cache.topics) == ["big"]  # the reset forgot "gone"
    assert len(cache.topics["big"]) == limits.update_metadata_partitions_max + 1


def test_deltas_change_partitions_and_remove_topics():
    state = controller(orders=2, logs=1)
    cache = MetadataCache()
    for update in full_updates(state, ENDPOINTS, {}):
        cache.apply(update)
    state.take_changes()
    state.written("orders", 1, LeaderIsr(2, 1, (2,), 3), 1)
    state.topic_removed("logs")
    changed, removed = state.take_changes()
    assert (changed, removed) == ([("orders", 1)], ["logs"])
    delta = delta_update(state, ENDPOINTS, {}, changed, removed)
    assert not delta.reset and delta.deleted_topics == ("logs",)
    cache.apply(delta)
    assert sorted(cache.topics) == ["orders"]
    assert cache.topics["orders"][1].leader == 2 and cache.topics["orders"][0].leader == 1
    assert state.take_changes() == ([], [])


def test_cached_and_read_answers_merge_in_the_order_asked():
    broker = (BrokerInfo(1, "tcp://127.0.0.1:1"),)
    p = (PartitionMetadata(0, 1, 0, (1,), (1,)),)
    cached = MetadataResponse(broker, (TopicMetadata("a", 0, p),))
    read = MetadataResponse((), (TopicMetadata("b", 3, ()),))
    assert [t.name for t in merged(("b", "a"), cached, read).topics] == ["b", "a"]
    assert merged(("b", "a"), cached, read).brokers == broker


def test_what_the_broker_reads_itself_is_learnt_unless_the_cache_holds_newer():
    cache = MetadataCache()
    fresh = TopicMetadata("new", 0, (PartitionMetadata(0, 1, 0, (1,), (1,)),))
    cache.learn(fresh)  # before the controller's first update ...
    for update in full_updates(controller(orders=1), ENDPOINTS, {}):
        cache.apply(update)  # ... which does not know it yet
    assert cache.answer(None)[0].topics[0] == fresh  # read-your-writes: kept
    newer = PartitionMetadata(0, 2, 4, (1, 2), (2,))
    cache.apply(delta_update_for("orders", newer))
    cache.learn(TopicMetadata("orders", 0, (PartitionMetadata(0, 1, 3, (1, 2), (1,)),)))
    assert cache.topics["orders"][0] == newer  # an older read does not win
    told = PartitionMetadata(0, 2, 1, (1,), (1,))
    cache.apply(delta_update_for("new", told))  # the controller knows it now: its word wins
    assert cache.learned == {} and cache.topics["new"][0] == told
    cache.forget("new")
    assert "new" not in cache.answer(None)[0].topics


def delta_update_for(topic: str, partition: PartitionMetadata):
    from zafka.transport.controller import UpdateMetadataRequest

    return UpdateMetadataRequest((), (TopicMetadata(topic, 0, (partition,)),), (), False)
