"""The vocabulary brokers and clients share: partitions, actor addresses, topic-name rules.

`TopicPartition` names one partition; `partition_actor_name` and `group_actor_name` are the
actor names a partition's leader and a group's coordinator have on their broker's node.
`ASSIGNOR_NAMES` are the server-side assignors a consumer may ask for (they run in the
group coordinator, `actors/group/assignors.py`; the SDK checks a name before it is sent).

Topic names follow Kafka's rules, checked before a name reaches a znode path or a directory.

A name is 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`, and is neither `.`
nor `..` (a topic's name becomes a znode name and a partition directory `<name>-<p>`, so
`/`, NUL, spaces and anything outside ASCII are refused). Names starting with `__` are
internal topics (`__consumer_offsets`): valid, and told apart by `is_internal`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from zafka import limits
from zafka.errors import ZafkaError

_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")
INTERNAL_PREFIX = "__"
GROUP_PREFIX = "group-"
ASSIGNOR_NAMES = ("range", "uniform")


class TopicPartition(NamedTuple):
    """One partition of one topic. A tuple: `("orders", 0)` works wherever this does."""

    topic: str
    partition: int


BROKER_NODE_PREFIX = "broker-"


def broker_node(broker_id: int) -> str:
    """The node name of broker `broker_id` (the routing id its process uses)."""
    return f"{BROKER_NODE_PREFIX}{broker_id}"


def broker_id_of(address: str) -> int:
    """The broker id of an address `broker-<id>/<actor>` (or a node name), -1 if not a
    broker's."""
    node = address.split("/", 1)[0]
    digits = node.removeprefix(BROKER_NODE_PREFIX)
    if digits == node or not (digits.isascii() and digits.isdigit()):
        return -1
    return int(digits)


def partition_actor_name(topic: str, partition: int) -> str:
    """The name of the actor leading `topic`'s `partition`: `f"{topic}-{partition}"`."""
    return f"{topic}-{partition}"


def group_actor_name(group_id: str) -> str:
    """The name of `group_id`'s coordinator actor: `group-<group_id>`."""
    return GROUP_PREFIX + group_id


def check_topic_name(name: object) -> str:
    """`name` if it is a valid topic name; else ZafkaError INVALID_TOPIC saying the rule."""
    if not isinstance(name, str):
        raise ZafkaError("INVALID_TOPIC", f"a topic name is a str, got {type(name).__name__}")
    if not name:
        raise ZafkaError("INVALID_TOPIC", "a topic name cannot be empty")
    if len(name) > limits.topic_name_bytes_max:
        raise ZafkaError(
            "INVALID_TOPIC",
            f"a topic name is at most {limits.topic_name_bytes_max} characters, got {len(name)}",
        )
    if name in (".", ".."):
        raise ZafkaError("INVALID_TOPIC", f"a topic name cannot be {name!r}")
    if _LEGAL.fullmatch(name) is None:
        raise ZafkaError(
            "INVALID_TOPIC",
            f"topic name {name!r} may contain only ASCII letters, digits, '.', '_' and '-'",
        )
    return name


def is_internal(name: str) -> bool:
    """Whether `name` (a valid topic name) is an internal topic such as `__consumer_offsets`."""
    return name.startswith(INTERNAL_PREFIX)
