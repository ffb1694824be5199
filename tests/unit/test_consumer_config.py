"""Consumer arguments are checked before anything starts: INVALID_CONFIG saying what is
expected, INVALID_TOPIC / INVALID_REQUEST for bad partitions. No sockets are opened."""

from __future__ import annotations

import pytest

from zafka.clients.consumer import Consumer
from zafka.clients.consumer_config import check_tps
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

BOOTSTRAP = "127.0.0.1:9"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"topics": ["t"]}, "topics needs a group_id"),
        ({"pattern": "t.*"}, "pattern needs a group_id"),
        ({"group_instance_id": "a"}, "group_instance_id needs a group_id"),
        ({"on_partitions_lost": print}, "on_partitions_lost needs a group_id"),
        ({"group_id": ""}, "group_id='': expected 1..249 of [A-Za-z0-9._-]"),
        ({"group_id": "a/b"}, "group_id='a/b'"),
        ({"group_id": "x" * 250}, "group_id="),
        ({"group_id": "g", "group_instance_id": ""}, "group_instance_id=''"),
        ({"group_id": "g", "assignor": "sticky"}, "assignor='sticky': expected one of"),
        ({"group_id": "g", "session_timeout_ms": 0}, "session_timeout_ms=0"),
        ({"group_id": "g", "enable_auto_commit": 1}, "enable_auto_commit=1: expected True"),
        ({"group_id": "g", "auto_commit_interval_ms": 0}, "auto_commit_interval_ms=0"),
        ({"group_id": "g", "topics": "orders"}, "topics: expected a list of topic names"),
        ({"group_id": "g", "topics": []}, "at least one topic"),
        ({"group_id": "g", "topics": ["a"], "pattern": "b"}, "topics or a pattern, not both"),
        ({"group_id": "g", "pattern": "("}, "pattern='('"),
        ({"group_id": "g", "pattern": "x" * 1001}, "longer than 1000 bytes"),
        ({"auto_offset_reset": "smallest"}, "'latest', 'earliest' or 'none'"),
        ({"fetch_max_bytes": 0}, "fetch_max_bytes=0: expected an int in 1..16777216"),
        ({"fetch_max_bytes": 1 << 30}, "fetch_max_bytes"),
        ({"fetch_max_wait_ms": 0}, "fetch_max_wait_ms=0: expected an int in 1..60000"),
        ({"fetch_min_bytes": 0}, "fetch_min_bytes=0"),
        ({"fetch_min_bytes": 2048, "fetch_max_bytes": 1024}, "fetch_min_bytes=2048"),
        ({"max_poll_records": 0}, "max_poll_records=0"),
        ({"max_poll_records": 1.5}, "max_poll_records=1.5"),
        ({"request_timeout_ms": -1}, "request_timeout_ms=-1"),
        ({"retry_backoff_ms": 0}, "retry_backoff_ms=0"),
        ({"fetch_max_wait_ms": True}, "fetch_max_wait_ms=True"),
    ],
)
def test_bad_config_is_refused_with_what_is_expected(config: dict, expected: str) -> None:
    with pytest.raises(ZafkaError) as raised:
        Consumer(BOOTSTRAP, **config)
    assert raised.value.error.name == "INVALID_CONFIG"
    assert expected in str(raised.value)


def test_bad_bootstrap_is_refused() -> None:
    with pytest.raises(ZafkaError) as raised:
        Consumer("nowhere")
    assert raised.value.error.name == "INVALID_CONFIG"


@pytest.mark.parametrize(
    ("partitions", "error"),
    [
        ([("", 0)], "INVALID_TOPIC"),
        ([("a/b", 0)], "INVALID_TOPIC"),
        ([("ok", -1)], "INVALID_REQUEST"),
        ([("ok", "0")], "INVALID_REQUEST"),
        ([("ok",)], "INVALID_REQUEST"),
        ("ok", "INVALID_REQUEST"),
        (("ok", 0), "INVALID_REQUEST"),
    ],
)
def test_bad_partitions_are_refused(partitions: object, error: str) -> None:
    with pytest.raises(ZafkaError) as raised:
        check_tps(partitions, "assign")  # type: ignore[arg-type]
    assert raised.value.error.name == error


def test_partitions_become_topic_partitions_without_repeats() -> None:
    tps = check_tps([("a", 1), TopicPartition("b", 0), ("a", 1)], "assign")
    assert tps == [TopicPartition("a", 1), TopicPartition("b", 0)]
    assert all(type(tp) is TopicPartition for tp in tps)
