"""ClusterMetadata and bootstrap parsing: pure logic."""

from __future__ import annotations

import pytest

from zafka.clients.metadata import ClusterMetadata, parse_bootstrap
from zafka.errors import ZafkaError
from zafka.transport.client import (
    BrokerInfo,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)


def response(*topics: TopicMetadata, brokers=(1, 2)) -> MetadataResponse:
    infos = tuple(BrokerInfo(b, f"tcp://127.0.0.1:{9000 + b}") for b in brokers)
    return MetadataResponse(brokers=infos, topics=topics)


def topic(name: str, leaders: list[int], error: int = 0) -> TopicMetadata:
    parts = tuple(PartitionMetadata(p, lead, 0, (lead,), (lead,)) for p, lead in enumerate(leaders))
    return TopicMetadata(name, error, parts)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:9092", ["tcp://127.0.0.1:9092"]),
        ("tcp://127.0.0.1:9092", ["tcp://127.0.0.1:9092"]),
        ("127.0.0.1:1, 127.0.0.1:2", ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]),
        (["localhost:7"], ["tcp://localhost:7"]),
    ],
)
def test_bootstrap_servers_become_endpoints(given, expected) -> None:
    assert parse_bootstrap(given) == expected


@pytest.mark.parametrize("bad", ["", "127.0.0.1", ":9092", "h:0", "h:65536", "h:x", "h:-1", []])
def test_bad_bootstrap_servers_say_what_is_expected(bad) -> None:
    with pytest.raises(ZafkaError) as info:
        parse_bootstrap(bad)
    assert info.value.error.name == "INVALID_CONFIG"
    assert "127.0.0.1:9092" in str(info.value)


def test_leaders_partitions_and_errors() -> None:
    meta = ClusterMetadata()
    meta.update(response(topic("a", [1, 2, -1]), topic("gone", [], error=3)))
    assert meta.brokers == {1: "tcp://127.0.0.1:9001", 2: "tcp://127.0.0.1:9002"}
    assert meta.partition_count("a") == 3
    assert meta.partition_count("gone") is None
    assert meta.topic_error("gone") == 3
    assert meta.topic_error("never-asked") == 0
    assert [meta.leader("a", p) for p in range(4)] == [1, 2, None, None]
    assert meta.available_partitions("a") == [0, 1]


def test_a_leader_not_among_live_brokers_is_unknown() -> None:
    meta = ClusterMetadata()
    meta.update(response(topic("a", [3]), brokers=(1,)))
    assert meta.leader("a", 0) is None


def test_forget_leader_until_the_next_answer() -> None:
    meta = ClusterMetadata()
    meta.update(response(topic("a", [1, 2])))
    meta.forget_leader("a", 1)
    assert meta.leader("a", 1) is None and meta.leader("a", 0) == 1
    meta.update(response(topic("a", [1, 1])))
    assert meta.leader("a", 1) == 1


def test_partial_answers_keep_other_topics_and_complete_ones_drop_them() -> None:
    meta = ClusterMetadata()
    meta.update(response(topic("a", [1]), topic("b", [1])))
    meta.update(response(topic("a", [2])))
    assert meta.leader("a", 0) == 2 and meta.leader("b", 0) == 1
    meta.update(response(topic("a", [2])), complete=True)
    assert meta.partition_count("b") is None
