"""Admin against a real broker process: create, describe, list and delete topics, describe
the cluster; bad names, duplicates and bad settings get their error codes with the broker's
detail, raised in the caller's thread; an unreachable bootstrap server is a bounded, clear
timeout. Every wait is bounded by the Admin's request timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.integration.broker_helpers import free_port, wait_until
from zafka.clients.admin import Admin, BrokerDescription, NewTopic, PartitionInfo
from zafka.errors import ZafkaError

TIMEOUT_MS = 10_000


@pytest.fixture
def admin(bootstrap: str) -> Iterator[Admin]:
    with Admin(bootstrap, request_timeout_ms=TIMEOUT_MS) as client:
        yield client


def _name(error: ZafkaError | None) -> str | None:
    return None if error is None else error.error.name


def test_create_describe_list_delete(admin: Admin) -> None:
    admin.create_topic("orders", partitions=3, configs={"retention.ms": 60000})
    admin.create_topic("audit.log")
    assert admin.list_topics() == ["audit.log", "orders"]

    orders, audit = admin.describe_topics(["orders", "audit.log"])
    assert orders.name == "orders"
    assert orders.partitions == tuple(
        PartitionInfo(partition=p, leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
        for p in range(3)
    )
    assert orders.configs == {"retention.ms": "60000"}
    assert orders.replication_factor == 1
    assert not orders.internal
    assert len(audit.partitions) == 1 and audit.configs == {}

    admin.delete_topic("orders")
    assert admin.list_topics() == ["audit.log"]
    with pytest.raises(ZafkaError) as err:
        admin.describe_topics(["orders"])
    assert err.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert "orders" in str(err.value)


def test_create_topics_reports_each_topic(admin: Admin) -> None:
    admin.create_topic("taken")
    results = admin.create_topics(
        [NewTopic("fresh", partitions=2), NewTopic("taken"), NewTopic("bad/name")]
    )
    assert {n: _name(e) for n, e in results.items()} == {
        "fresh": None,
        "taken": "TOPIC_ALREADY_EXISTS",
        "bad/name": "INVALID_TOPIC",
    }
    assert "taken" in str(results["taken"])  # the broker's detail comes along
    assert admin.list_topics() == ["fresh", "taken"]


def test_duplicate_create_raises_topic_already_exists(admin: Admin) -> None:
    admin.create_topic("once")
    with pytest.raises(ZafkaError) as err:
        admin.create_topic("once", partitions=4)
    assert err.value.error.name == "TOPIC_ALREADY_EXISTS"
    assert err.value.error.code == 36
    (once,) = admin.describe_topics(["once"])
    assert len(once.partitions) == 1  # the first one stands


@pytest.mark.parametrize(
    "name", ["", ".", "..", "x" * 250, "a/b", "a\x00b", "../escape", "spa ce", "é"]
)
def test_invalid_topic_names_are_refused_and_create_nothing(admin: Admin, name: str) -> None:
    with pytest.raises(ZafkaError) as err:
        admin.create_topic(name)
    assert err.value.error.name == "INVALID_TOPIC"
    assert err.value.error.code == 17
    with pytest.raises(ZafkaError) as err:
        admin.describe_topics([name])
    assert err.value.error.name == "INVALID_TOPIC"
    assert _name(admin.delete_topics([name])[name]) == "INVALID_TOPIC"
    assert admin.list_topics() == []


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        (NewTopic("p0", partitions=0), "INVALID_PARTITIONS"),
        (NewTopic("p-neg", partitions=-3), "INVALID_PARTITIONS"),
        (NewTopic("rf2", replication_factor=2), "INVALID_REPLICATION_FACTOR"),
        (NewTopic("rf0", replication_factor=0), "INVALID_REPLICATION_FACTOR"),
        (NewTopic("cfg", configs={"retention.ms": "soon"}), "INVALID_CONFIG"),
        (NewTopic("cfg2", configs={"no.such.key": "1"}), "INVALID_CONFIG"),
    ],
)
def test_bad_settings_get_their_codes(admin: Admin, topic: NewTopic, code: str) -> None:
    results = admin.create_topics([topic])
    assert _name(results[topic.name]) == code
    assert admin.list_topics() == []


def test_requests_that_cannot_be_sent_raise_before_reaching_the_broker(admin: Admin) -> None:
    with pytest.raises(ZafkaError) as err:
        admin.create_topics([NewTopic("twice"), NewTopic("twice")])
    assert err.value.error.name == "INVALID_REQUEST"
    with pytest.raises(ZafkaError) as err:
        admin.create_topic("typed", partitions="3")  # type: ignore[arg-type]
    assert err.value.error.name == "INVALID_REQUEST"
    with pytest.raises(ZafkaError) as err:
        admin.delete_topics("a-str")
    assert err.value.error.name == "INVALID_REQUEST"
    assert admin.list_topics() == []


def test_delete_and_describe_unknown_topics(admin: Admin) -> None:
    with pytest.raises(ZafkaError) as err:
        admin.delete_topic("ghost")
    assert err.value.error.name == "UNKNOWN_TOPIC_OR_PARTITION"
    admin.create_topic("real")
    assert {n: _name(e) for n, e in admin.delete_topics(["real", "ghost"]).items()} == {
        "real": None,
        "ghost": "UNKNOWN_TOPIC_OR_PARTITION",
    }


def test_describe_cluster_names_the_broker(admin: Admin, bootstrap: str) -> None:
    assert admin.describe_cluster() == [BrokerDescription(1, f"tcp://{bootstrap}")]
    assert wait_until(lambda: admin.controller() is not None, 30.0)  # elected at start
    assert admin.controller() == BrokerDescription(1, f"tcp://{bootstrap}")


def test_concurrent_callers_share_one_admin(admin: Admin) -> None:
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            admin.create_topic(f"t{i}", partitions=2)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_MS / 1000 + 10)
    assert not errors
    assert admin.list_topics() == sorted(f"t{i}" for i in range(8))


def test_a_dead_bootstrap_server_is_skipped(bootstrap: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with Admin(f"{dead},{bootstrap}", request_timeout_ms=4000) as admin:
        assert [b.id for b in admin.describe_cluster()] == [1]


def test_no_broker_is_a_clear_bounded_timeout() -> None:
    address = f"127.0.0.1:{free_port()}"
    with Admin(address, request_timeout_ms=300) as admin, pytest.raises(ZafkaError) as err:
        admin.list_topics()
    assert err.value.error.name == "REQUEST_TIMED_OUT"
    assert address in str(err.value) and "is a broker running" in str(err.value)


def test_a_closed_admin_raises_stopped(bootstrap: str) -> None:
    admin = Admin(bootstrap, request_timeout_ms=TIMEOUT_MS)
    admin.close()
    admin.close()  # idempotent
    with pytest.raises(ZafkaError) as err:
        admin.list_topics()
    assert err.value.error.name == "STOPPED"


def test_bad_settings_of_the_admin_itself() -> None:
    with pytest.raises(ZafkaError) as err:
        Admin("no-port")
    assert err.value.error.name == "INVALID_CONFIG"
    with pytest.raises(ZafkaError) as err:
        Admin("127.0.0.1:9092", request_timeout_ms=0)
    assert err.value.error.name == "INVALID_CONFIG"
