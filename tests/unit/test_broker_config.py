"""The broker's settings: command-line options over a key=value config file."""

from __future__ import annotations

import argparse

import pytest

from zafka import broker_main
from zafka.broker_config import BrokerConfigError, read_config, resolve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    broker_main.add_arguments(parser)
    return parser.parse_args(argv)


def test_kafka_and_option_names_fill_what_the_command_line_left_unset(tmp_path) -> None:
    config = tmp_path / "broker.properties"
    config.write_text(
        "# a broker\n\n"
        "broker.id=3\n"
        "zookeeper.connect=127.0.0.1:2181/z\n"
        "listeners = tcp://127.0.0.1:9092\n"
        "data-dir=/tmp/d\n"
        "auto.create.topics.enable=true\n"
        "num.partitions=4\n"
        "offsets.topic.num.partitions=3\n"
        "group-heartbeat-interval-ms=300\n"
    )
    args = parse("--config", str(config), "--listen", "tcp://127.0.0.1:9999")
    resolve(args)
    assert (args.id, args.zookeeper, args.data_dir) == (3, "127.0.0.1:2181/z", "/tmp/d")
    assert args.listen == "tcp://127.0.0.1:9999"  # the command line wins
    assert (args.auto_create_topics, args.default_partitions) == (True, 4)
    assert (args.offsets_topic_partitions, args.group_heartbeat_interval_ms) == (3, 300)
    assert (args.zk_session_timeout_ms, args.log_level) == (6000, "INFO")  # defaults
    assert args.group_rebalance_timeout_ms == 300_000


def test_without_a_file_the_options_and_defaults_serve() -> None:
    args = parse("--id", "1", "--zookeeper", "z:1", "--listen", "l", "--data-dir", "d")
    resolve(args)
    assert (args.auto_create_topics, args.default_partitions) == (False, 1)


def test_a_missing_required_setting_names_both_ways_to_give_it() -> None:
    args = parse("--zookeeper", "z:1", "--listen", "l", "--data-dir", "d")
    with pytest.raises(BrokerConfigError, match=r"missing --id \(or broker.id= in the --config"):
        resolve(args)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("colour=blue", "expected KEY=VALUE with a KEY of"),
        ("no equals sign", "expected KEY=VALUE"),
        ("broker.id=one", "broker.id: invalid literal"),
        ("auto.create.topics.enable=maybe", "expected true or false"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path, line: str, says: str) -> None:
    config = tmp_path / "c"
    config.write_text(f"# first\n{line}\n")
    with pytest.raises(BrokerConfigError, match=f"{config}:2: .*{says}"):
        read_config(config)


def test_an_unreadable_file_says_so(tmp_path) -> None:
    with pytest.raises(BrokerConfigError, match="cannot read the config file"):
        read_config(tmp_path / "missing")


def test_the_broker_exits_2_with_the_reason(tmp_path, capsys) -> None:
    assert broker_main.run(parse("--config", str(tmp_path / "missing"))) == 2
    assert "cannot read the config file" in capsys.readouterr().err
