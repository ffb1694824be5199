"""`zafka topics` and the client commands' shared options: parsing, help, the bootstrap
default, hints and the describe format. No sockets."""

from __future__ import annotations

import json

import pytest

from zafka import cli, cli_common
from zafka.cli_common import Bootstrap, default_bootstrap, launcher_brokers
from zafka.cli_topics import format_description
from zafka.clients.admin import PartitionInfo, TopicDescription
from zafka.errors import ZafkaError


@pytest.mark.parametrize(
    "argv",
    [
        ["topics", "--help"],
        ["topics", "create", "--help"],
        ["topics", "list", "--help"],
        ["topics", "describe", "--help"],
        ["topics", "delete", "--help"],
        ["topics", "alter", "--help"],
    ],
)
def test_help_at_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zafka topics")
    assert "exit codes" in out
    if len(argv) > 2:
        assert "--bootstrap" in out and "ZAFKA_BOOTSTRAP" in out


def test_create_parses_its_options():
    argv = "topics create t --partitions 3 --replication-factor 2 --config retention.ms=60000"
    argv += " --config cleanup.policy=compact --bootstrap 127.0.0.1:1234"
    argv += " --request-timeout-ms 500 --if-not-exists"
    args = cli.build_parser().parse_args(argv.split())
    assert (args.name, args.partitions, args.replication_factor) == ("t", 3, 2)
    assert args.config == [("retention.ms", "60000"), ("cleanup.policy", "compact")]
    assert (args.bootstrap, args.request_timeout_ms, args.if_not_exists) == (
        "127.0.0.1:1234",
        500,
        True,
    )


def test_create_defaults():
    args = cli.build_parser().parse_args(["topics", "create", "t"])
    assert (args.partitions, args.replication_factor, args.config) == (1, 1, [])
    assert args.bootstrap is None and not args.if_not_exists


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["topics", "create", "t", "--partitions", "0"], "must be at least 1"),
        (["topics", "create", "t", "--partitions", "three"], "not a whole number"),
        (["topics", "create", "t", "--config", "retention.ms"], "expected KEY=VALUE"),
        (["topics", "create", "t", "--config", "=1"], "expected KEY=VALUE"),
        (["topics", "create"], "required: NAME"),
        (["topics", "describe"], "required: NAME"),
        (["topics", "delete"], "required: NAME"),
        (["topics"], "required: ACTION"),
        (["topics", "list", "--request-timeout-ms", "-1"], "must be at least 1"),
    ],
)
def test_bad_command_lines_are_usage_errors(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_a_config_value_may_hold_equals_signs():
    assert cli_common.key_value("a=b=c") == ("a", "b=c")
    assert cli_common.key_value("a=") == ("a", "")


def test_bootstrap_default_prefers_the_environment(tmp_path):
    state = tmp_path / "cluster.json"
    state.write_text(json.dumps({"broker-1": {"name": "broker-1", "port": 9100}}))
    env = {"ZAFKA_BOOTSTRAP": " 10.0.0.1:1,10.0.0.2:2 "}
    assert default_bootstrap(env, state) == Bootstrap("10.0.0.1:1,10.0.0.2:2", "$ZAFKA_BOOTSTRAP")
    assert default_bootstrap({}, state) == Bootstrap("127.0.0.1:9100", str(state))
    assert default_bootstrap({}, tmp_path / "none.json") == Bootstrap(
        "127.0.0.1:9092", "the built-in default"
    )


def test_launcher_brokers_reads_only_broker_entries_with_ports(tmp_path):
    state = tmp_path / "cluster.json"
    state.write_text(
        json.dumps(
            {
                "zookeeper": {"name": "zookeeper", "pid": 1, "port": 2181},
                "broker-2": {"name": "broker-2", "pid": 3, "port": 9093},
                "broker-1": {"name": "broker-1", "pid": 2, "port": 9092},
                "broker-x": {"name": "broker-x", "port": "9094"},
                "broker-y": "garbage",
            }
        )
    )
    assert launcher_brokers(state) == ["127.0.0.1:9092", "127.0.0.1:9093"]
    state.write_text("{not json")
    assert launcher_brokers(state) == []
    state.write_text("[1, 2]")
    assert launcher_brokers(state) == []


def test_a_timeout_hint_says_where_the_address_came_from(capsys):
    bootstrap = Bootstrap("127.0.0.1:9", "$ZAFKA_BOOTSTRAP")
    status = cli_common.report(ZafkaError("REQUEST_TIMED_OUT", "x"), bootstrap, "listing")
    assert status == cli_common.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("zafka: error: listing: REQUEST_TIMED_OUT (7)")
    assert "127.0.0.1:9 came from $ZAFKA_BOOTSTRAP" in err
    assert "zafka cluster up" in err


def test_format_description():
    topic = TopicDescription(
        "orders",
        (
            PartitionInfo(0, 1, 0, (1, 2), (1, 2)),
            PartitionInfo(1, None, 3, (2, 1), ()),
            PartitionInfo(2, 2, 1, (2, 1), (2,)),
        ),
        {"retention.ms": "60000", "cleanup.policy": "compact"},
    )
    assert format_description(topic) == [
        "Topic: orders\tPartitions: 3\tReplicationFactor: 2\t"
        "Configs: cleanup.policy=compact,retention.ms=60000",
        "\tPartition: 0\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1,2\tIsr: 1,2",
        "\tPartition: 1\tLeader: none\tLeaderEpoch: 3\tReplicas: 2,1\tIsr: -"
        "\t(offline, under-replicated)",
        "\tPartition: 2\tLeader: 2\tLeaderEpoch: 1\tReplicas: 2,1\tIsr: 2\t(under-replicated)",
    ]
    assert topic.offline and topic.under_replicated
    bare = TopicDescription("t", (PartitionInfo(0, 1, 0, (1,), (1,)),), {})
    assert format_description(bare)[0].endswith("Configs: -")
    assert not bare.offline and not bare.under_replicated


def test_list_takes_the_partition_filters():
    args = cli.build_parser().parse_args(["topics", "list", "--under-replicated", "--offline"])
    assert args.under_replicated and args.offline
    plain = cli.build_parser().parse_args(["topics", "list"])
    assert not plain.under_replicated and not plain.offline


def test_election_results_are_worded_as_kafka_leader_election_does():
    from zafka.cli_leaders import format_results
    from zafka.transport.names import TopicPartition

    results = {
        TopicPartition("orders", 0): None,
        TopicPartition("orders", 1): ZafkaError("ELECTION_NOT_NEEDED"),
        TopicPartition("orders", 2): ZafkaError(
            "PREFERRED_LEADER_NOT_AVAILABLE", "broker 2 is down"
        ),
    }
    out, failed = format_results(results)
    assert out == [
        "Successfully completed leader election (PREFERRED) for partitions orders-0",
        "Valid replica already elected for partitions orders-1",
    ]
    assert len(failed) == 1 and failed[0].startswith(
        "Error completing leader election (PREFERRED) for partition orders-2: "
        "PREFERRED_LEADER_NOT_AVAILABLE"
    )
    assert format_results({}) == (["No partitions to elect leaders for"], [])


def test_alter_takes_the_new_partition_count():
    args = cli.build_parser().parse_args(["topics", "alter", "orders", "--partitions", "6"])
    assert (args.name, args.partitions) == ("orders", 6)
    args = cli.build_parser().parse_args(
        ["cluster", "elect-leaders", "--topic", "a", "--topic", "b"]
    )
    assert args.topic == ["a", "b"]


def test_a_reassignment_plan_is_kafkas_json():
    from zafka.cli_reassign import PlanError, parse_plan

    text = json.dumps(
        {"version": 1, "partitions": [{"topic": "orders", "partition": 1, "replicas": [2, 3]}]}
    )
    assert parse_plan(text) == {("orders", 1): [2, 3]}
    bad = [
        "{",
        "[]",
        '{"version": 2, "partitions": []}',
        '{"version": 1, "partitions": []}',
        '{"version": 1, "partitions": [{"topic": "t", "partition": "0", "replicas": [1]}]}',
        '{"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": "1"}]}',
        '{"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1]},'
        ' {"topic": "t", "partition": 0, "replicas": [2]}]}',
    ]
    for text in bad:
        with pytest.raises(PlanError):
            parse_plan(text)


def test_reassign_takes_a_plan_or_status_but_not_both(capsys):
    args = cli.build_parser().parse_args(["topics", "reassign", "--plan", "m.json", "--wait"])
    assert (args.plan, args.wait, args.status) == ("m.json", True, False)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["topics", "reassign", "--plan", "m.json", "--status"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["topics", "reassign"])
