"""A broker's settings: command-line options over an optional config file (`--config FILE`).

The file holds `key=value` lines (Kafka's server.properties style); blank lines and lines
starting with `#` are ignored. A key is a `zafka broker` option without its dashes (`id`,
`zookeeper`, `listen`, `data-dir`, `rack`, `auto-create-topics`, `default-partitions`,
`zk-session-timeout-ms`, `log-level`, `offsets-topic-partitions`,
`group-heartbeat-interval-ms`, `group-rebalance-timeout-ms`,
`leader-imbalance-check-interval-ms`, `leader-imbalance-per-broker-percentage`,
`kafka-listen`) or Kafka's
name for the same setting (`broker.id`, `zookeeper.connect`, `listeners`, `log.dirs`,
`broker.rack`, `auto.create.topics.enable`, `num.partitions`,
`zookeeper.session.timeout.ms`, `offsets.topic.num.partitions`,
`group.consumer.heartbeat.interval.ms`, `leader.imbalance.per.broker.percentage`;
`kafka.listen` for `kafka-listen`). An option
given on the command line wins over the file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from zafka import limits
from zafka.actors.broker.admin import DEFAULT_OFFSETS_PARTITIONS


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


# dest -> (how its text becomes a value, the default when neither option nor file sets it;
# None: required).
SETTINGS: dict[str, tuple[Callable[[str], object], object]] = {
    "id": (int, None),
    "zookeeper": (str, None),
    "listen": (str, None),
    "data_dir": (str, None),
    "rack": (str, ""),
    "auto_create_topics": (_boolean, False),
    "default_partitions": (int, 1),
    "zk_session_timeout_ms": (int, limits.zookeeper_session_timeout_ms),
    "log_level": (str, "INFO"),
    "offsets_topic_partitions": (int, DEFAULT_OFFSETS_PARTITIONS),
    "group_heartbeat_interval_ms": (int, limits.group_heartbeat_interval_ms),
    "group_rebalance_timeout_ms": (int, limits.group_rebalance_timeout_ms),
    "leader_imbalance_check_interval_ms": (int, limits.leader_imbalance_check_interval_ms),
    "leader_imbalance_per_broker_percentage": (int, limits.leader_imbalance_per_broker_percent),
    "kafka_listen": (str, ""),
}
KAFKA_NAMES = {
    "broker.id": "id",
    "zookeeper.connect": "zookeeper",
    "listeners": "listen",
    "log.dirs": "data_dir",
    "broker.rack": "rack",
    "auto.create.topics.enable": "auto_create_topics",
    "num.partitions": "default_partitions",
    "zookeeper.session.timeout.ms": "zk_session_timeout_ms",
    "offsets.topic.num.partitions": "offsets_topic_partitions",
    "group.consumer.heartbeat.interval.ms": "group_heartbeat_interval_ms",
    "leader.imbalance.per.broker.percentage": "leader_imbalance_per_broker_percentage",
    "kafka.listen": "kafka_listen",
}


class BrokerConfigError(Exception):
    """A setting is missing or wrong; the message says which and where."""


def read_config(path: Path) -> dict[str, object]:
    """The settings in `path`, by option dest, converted; BrokerConfigError naming the line."""
    try:
        text = path.read_text()
    except OSError as err:
        raise BrokerConfigError(f"cannot read the config file {path}: {err.strerror}") from None
    values: dict[str, object] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = (part.strip() for part in line.partition("="))
        dest = KAFKA_NAMES.get(key, key.replace("-", "_"))
        if not sep or dest not in SETTINGS:
            known = ", ".join(sorted([d.replace("_", "-") for d in SETTINGS] + list(KAFKA_NAMES)))
            raise BrokerConfigError(f"{path}:{number}: expected KEY=VALUE with a KEY of: {known}")
        try:
            values[dest] = SETTINGS[dest][0](raw)
        except ValueError as err:
            raise BrokerConfigError(f"{path}:{number}: {key}: {err}") from None
    return values


def resolve(args: argparse.Namespace) -> None:
    """Fill every setting of `args` the command line left unset from `args.config` (if
    given), then from the defaults; BrokerConfigError for a required one still missing."""
    from_file = read_config(Path(args.config)) if args.config else {}
    for dest, (_, default) in SETTINGS.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, from_file.get(dest, default))
        if getattr(args, dest) is None:
            option = "--" + dest.replace("_", "-")
            kafka = next((k for k, d in KAFKA_NAMES.items() if d == dest), dest)
            raise BrokerConfigError(f"missing {option} (or {kafka}= in the --config file)")
