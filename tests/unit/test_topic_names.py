"""Topic names, topic paths, topic configs, replica assignment and the topic znodes' JSON.

Everything here is pure: no ZooKeeper (tests/integration/test_topic_store.py has the store).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from zafka import limits
from zafka.coordination import paths
from zafka.coordination.assignment import assign_replicas
from zafka.coordination.topic_records import LeaderIsr, MalformedZnode, TopicInfo
from zafka.errors import ZafkaError
from zafka.storage.config import TOPIC_CONFIG_FIELDS, Fsync, LogConfig, topic_config_defaults
from zafka.transport.names import check_topic_name, is_internal

BAD_NAMES = [
    ("", "empty"),
    (".", "'.'"),
    ("..", "'..'"),
    ("a" * 250, "at most 249"),
    ("a/b", "only ASCII letters"),
    ("/", "only ASCII letters"),
    ("a\x00b", "only ASCII letters"),
    ("a b", "only ASCII letters"),
    (" ", "only ASCII letters"),
    ("tab\t", "only ASCII letters"),
    ("line\n", "only ASCII letters"),
    ("café", "only ASCII letters"),
    ("日本", "only ASCII letters"),
    ("a:b", "only ASCII letters"),
    ("a*b", "only ASCII letters"),
    ("\uff11\uff12", "only ASCII letters"),  # fullwidth digits: isdigit() yes, Kafka no
    (None, "is a str"),
    (b"bytes", "is a str"),
    (7, "is a str"),
]
GOOD_NAMES = ["a", "A", "0", "_", "-", "...", ".a", "a.b_c-D9", "a" * 249, "__consumer_offsets"]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_bad_topic_names_are_refused_with_the_rule(name, rule):
    with pytest.raises(ZafkaError) as err:
        check_topic_name(name)
    assert err.value.error.name == "INVALID_TOPIC"
    assert rule in err.value.detail


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_topic_names_are_accepted(name):
    assert check_topic_name(name) == name


def test_names_starting_with_two_underscores_are_internal():
    assert is_internal("__consumer_offsets") and is_internal("__x")
    assert not is_internal("_x") and not is_internal("a__b") and not is_internal("orders")


def test_topic_paths_follow_kafkas_layout():
    assert paths.topic("orders") == "/brokers/topics/orders"
    assert paths.topic_partitions("orders") == "/brokers/topics/orders/partitions"
    assert paths.partition_state("orders", 3) == "/brokers/topics/orders/partitions/3/state"
    assert paths.topic_config("orders") == "/config/topics/orders"


@pytest.mark.parametrize("name", ["..", "a/../../b", "", "x y"])
def test_a_bad_name_never_becomes_a_path(name):
    for make in (paths.topic, paths.topic_config, lambda n: paths.partition_state(n, 0)):
        with pytest.raises(ZafkaError):
            make(name)


@pytest.mark.parametrize("partition", [-1, True, 1.0, "0", None])
def test_a_bad_partition_id_never_becomes_a_path(partition):
    with pytest.raises(ValueError):
        paths.partition_state("orders", partition)


def test_topic_configs_set_the_log_config():
    config = LogConfig.from_topic_configs(
        {
            "retention.ms": "60000",
            "retention.bytes": "-1",
            "segment.bytes": "1048576",
            "segment.ms": "3600000",
            "cleanup.policy": "compact",
            "delete.retention.ms": "0",
            "max.message.bytes": "65536",
            "flush.ms": "50",
        }
    )
    assert config == LogConfig(
        retention_ms=60000,
        retention_bytes=-1,
        segment_bytes=1048576,
        segment_ms=3600000,
        cleanup_policy="compact",
        delete_retention_ms=0,
        fsync=Fsync.INTERVAL,
        fsync_interval_ms=50,
    )
    assert LogConfig.from_topic_configs({}) == LogConfig()
    assert LogConfig.from_topic_configs({"zafka.fsync": "always"}).fsync is Fsync.ALWAYS
    assert LogConfig.from_topic_configs({"zafka.fsync": "never"}).fsync is Fsync.NEVER


@pytest.mark.parametrize(
    ("configs", "named"),
    [
        ({"retention.hours": "1"}, "retention.hours"),
        ({"flush.messages": "1"}, "flush.messages"),
        ({"retention_ms": "1"}, "retention_ms"),
        ({"retention.ms": "-2"}, "retention.ms"),
        ({"retention.ms": "1h"}, "retention.ms"),
        ({"retention.ms": " 1"}, "retention.ms"),
        ({"retention.ms": "1_000"}, "retention.ms"),
        ({"retention.ms": "1.5"}, "retention.ms"),
        ({"retention.ms": ""}, "retention.ms"),
        ({"retention.ms": "9" * 19}, "retention.ms"),  # beyond a 64-bit long
        ({"retention.ms": 1000}, "retention.ms"),  # values are strings, as in Kafka
        ({"retention.bytes": "-5"}, "retention.bytes"),
        ({"segment.bytes": "100"}, "segment.bytes"),
        ({"segment.ms": "0"}, "segment.ms"),
        ({"cleanup.policy": "compact,delete"}, "cleanup.policy"),
        ({"cleanup.policy": "COMPACT"}, "cleanup.policy"),
        ({"delete.retention.ms": "-1"}, "delete.retention.ms"),
        ({"max.message.bytes": "60"}, "max.message.bytes"),
        ({"max.message.bytes": str(limits.batch_bytes_max + 1)}, "max.message.bytes"),
        ({"flush.ms": "-1"}, "flush.ms"),
        ({"zafka.fsync": "sometimes"}, "zafka.fsync"),
        ({"zafka.fsync": "ALWAYS"}, "zafka.fsync"),
        ({"zafka.fsync": "never", "flush.ms": "10"}, "flush.ms"),
        ({"unclean.leader.election.enable": "yes"}, "unclean.leader.election.enable"),
        ({"unclean.leader.election.enable": "True"}, "unclean.leader.election.enable"),
    ],
)
def test_bad_topic_configs_are_refused_naming_the_key(configs, named):
    with pytest.raises(ZafkaError) as err:
        LogConfig.from_topic_configs(configs)
    assert err.value.error.name == "INVALID_CONFIG"
    assert named in err.value.detail


def test_max_message_bytes_is_checked_but_is_no_log_setting():
    assert LogConfig.from_topic_configs({"max.message.bytes": "61"}) == LogConfig()
    info = TopicInfo("t", "id", ((0,),), (("max.message.bytes", "4096"),))
    assert info.max_message_bytes == 4096
    assert TopicInfo("t", "id", ((0,),)).max_message_bytes == limits.batch_bytes_max


def test_every_topic_config_has_a_default_that_is_itself_valid():
    defaults = topic_config_defaults()
    assert set(defaults) == set(TOPIC_CONFIG_FIELDS)
    assert LogConfig.from_topic_configs(defaults) == LogConfig()
    assert defaults["zafka.fsync"] == "interval" and defaults["min.insync.replicas"] == "1"


def test_unclean_leader_election_is_a_topic_flag_off_by_default():
    config = {"unclean.leader.election.enable": "true"}
    assert LogConfig.from_topic_configs(config) == LogConfig()
    assert TopicInfo("t", "id", ((0,),), tuple(config.items())).unclean_leader_election
    off = (("unclean.leader.election.enable", "false"),)
    assert not TopicInfo("t", "id", ((0,),), off).unclean_leader_election
    assert not TopicInfo("t", "id", ((0,),)).unclean_leader_election


def test_kafkas_assignment_example_with_five_brokers():
    """The layout drawn in Kafka's AdminUtils comment: start 0, shift 0, 10 partitions, RF 3."""
    replicas = assign_replicas(10, 3, [0, 1, 2, 3, 4], start_index=0, replica_shift=0)
    assert replicas[0] == (0, 1, 2)
    assert replicas[4] == (4, 0, 1)
    assert replicas[5] == (0, 2, 3)  # from the sixth partition on, followers sit one further
    assert replicas[9] == (4, 1, 2)


def test_assignment_spreads_leaders_and_never_repeats_a_broker():
    for n in range(1, 7):
        brokers = [b * 10 for b in range(n)]
        for rf in range(1, n + 1):
            for partitions in range(1, 3 * n + 2):
                for start in range(n):
                    for shift in range(n):
                        replicas = assign_replicas(partitions, rf, brokers, start, shift)
                        assert len(replicas) == partitions
                        assert all(len(set(r)) == rf and set(r) <= set(brokers) for r in replicas)
                        leads = Counter(r[0] for r in replicas)
                        assert max(leads.values()) - min(leads.get(b, 0) for b in brokers) <= 1


def test_partition_state_round_trips_through_json():
    state = LeaderIsr(leader=2, leader_epoch=5, isr=[2, 0], controller_epoch=3)
    assert state.isr == (2, 0)
    data = state.to_json()
    assert json.loads(data) == {
        "version": 1,
        "leader": 2,
        "leader_epoch": 5,
        "isr": [2, 0],
        "controller_epoch": 3,
    }
    assert LeaderIsr.from_json("/p", data) == state
    assert LeaderIsr(leader=-1, leader_epoch=6, isr=()).leader == -1


def test_topic_info_round_trips_through_json():
    info = TopicInfo("orders", "abc", ((1, 2), (2, 0)), (("retention.ms", "1000"),))
    assert json.loads(info.assignment_json()) == {
        "version": 1,
        "topic_id": "abc",
        "partitions": {"0": [1, 2], "1": [2, 0]},
    }
    assert json.loads(info.config_json()) == {"version": 1, "config": {"retention.ms": "1000"}}
    back = TopicInfo.from_json("orders", info.assignment_json(), info.config_json())
    assert back == info
    assert (back.partitions, back.replication_factor) == (2, 2)
    assert back.log_config.retention_ms == 1000
    assert TopicInfo.from_json("orders", info.assignment_json(), None).configs == ()


def _state(**fields):
    base = {"version": 1, "leader": 1, "leader_epoch": 0, "isr": [1], "controller_epoch": 0}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe garbage",
        b"not json",
        b"[1, 2]",
        b"null",
        b"[" * 100_000,  # deeper than the JSON parser recurses
        _state(version=2),
        _state(version=None),
        _state(leader=None),
        _state(leader=-2),
        _state(leader=True),
        _state(leader=1.0),
        _state(leader_epoch=-1),
        _state(leader_epoch=float("inf")),
        _state(isr="1"),
        _state(isr=[1, 1]),
        _state(isr=[-1]),
        _state(controller_epoch="0"),
        json.dumps({"version": 1, "leader": 1}).encode(),
    ],
)
def test_malformed_partition_state_is_a_clear_error(data):
    with pytest.raises(MalformedZnode) as err:
        LeaderIsr.from_json("/brokers/topics/t/partitions/0/state", data)
    assert err.value.error.name == "UNKNOWN_SERVER_ERROR"
    assert "malformed znode /brokers/topics/t/partitions/0/state" in str(err.value)


def _assignment(partitions, **fields):
    return json.dumps({"version": 1, "topic_id": "x", "partitions": partitions, **fields}).encode()


GOOD_CONFIG = json.dumps({"version": 1, "config": {}}).encode()


@pytest.mark.parametrize(
    ("assignment", "config", "bad_path"),
    [
        (b"{}", GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"1": [0]}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": [0], "00": [1]}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment([[0]]), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": []}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": [0, 0]}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": "0"}), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": [0]}, topic_id=5), GOOD_CONFIG, "/brokers/topics/t"),
        (_assignment({"0": [0]}), b"{", "/config/topics/t"),
        (_assignment({"0": [0]}), b'{"version": 1, "config": []}', "/config/topics/t"),
        (_assignment({"0": [0]}), b'{"version": 1, "config": {"a": 1}}', "/config/topics/t"),
        (_assignment({"0": [0]}), b'{"version": 1, "config": {"x.y": "1"}}', "/config/topics/t"),
        (
            _assignment({"0": [0]}),
            b'{"version": 1, "config": {"retention.ms": "soon"}}',
            "/config/topics/t",
        ),
    ],
)
def test_malformed_topic_znodes_are_a_clear_error(assignment, config, bad_path):
    with pytest.raises(MalformedZnode) as err:
        TopicInfo.from_json("t", assignment, config)
    assert err.value.path == bad_path
