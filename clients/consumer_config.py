"""The Consumer's argument checks: every bad setting is refused before anything starts, with
INVALID_CONFIG saying what is expected (INVALID_TOPIC / INVALID_REQUEST for bad partitions)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.names import ASSIGNOR_NAMES, TopicPartition, check_topic_name

_GROUP_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{limits.group_id_bytes_max}}}")


def check_int(name: str, value: object, low: int, high: int, meaning: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ZafkaError(
            "INVALID_CONFIG", f"{name}={value!r}: expected an int in {low}..{high} ({meaning})"
        )
    return value


def check_tp(tp: object) -> TopicPartition:
    """A (topic, partition) pair as a TopicPartition: a valid topic name, a partition >= 0."""
    if not isinstance(tp, tuple) or len(tp) != 2:
        raise ZafkaError("INVALID_REQUEST", f"expected a (topic, partition) pair, got {tp!r}")
    topic, partition = tp
    check_topic_name(topic)
    if type(partition) is not int or partition < 0:
        raise ZafkaError("INVALID_REQUEST", f"partition {partition!r}: expected an int >= 0")
    return tp if type(tp) is TopicPartition else TopicPartition(topic, partition)


def check_tps(tps: Iterable[object], what: str) -> list[TopicPartition]:
    if isinstance(tps, str) or (
        isinstance(tps, tuple) and len(tps) == 2 and isinstance(tps[0], str)
    ):
        raise ZafkaError("INVALID_REQUEST", f"{what} takes a list of (topic, partition) pairs")
    return list(dict.fromkeys(map(check_tp, tps)))


def check_bool(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise ZafkaError("INVALID_CONFIG", f"{name}={value!r}: expected True or False")
    return value


def check_group_config(group_id: object, instance_id: object, assignor: object) -> None:
    if not isinstance(group_id, str) or _GROUP_ID.fullmatch(group_id) is None:
        raise ZafkaError(
            "INVALID_CONFIG",
            f"group_id={str(group_id)[:64]!r}: expected 1..{limits.group_id_bytes_max} of "
            "[A-Za-z0-9._-] (it names the group's coordinator actor)",
        )
    if instance_id is not None and (not isinstance(instance_id, str) or not instance_id):
        raise ZafkaError(
            "INVALID_CONFIG", f"group_instance_id={instance_id!r}: expected a non-empty string"
        )
    if assignor is not None and assignor not in ASSIGNOR_NAMES:
        raise ZafkaError(
            "INVALID_CONFIG",
            f"assignor={assignor!r}: expected one of {list(ASSIGNOR_NAMES)} or None",
        )


def check_subscription(
    topics: Iterable[str] | None, pattern: str | None
) -> tuple[tuple[str, ...], str | None]:
    """A checked subscription: topic names, or a pattern (not both)."""
    if topics is not None and pattern is not None:
        raise ZafkaError("INVALID_CONFIG", "subscribe to topics or a pattern, not both")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise ZafkaError("INVALID_CONFIG", f"pattern={pattern!r}: expected a regex string")
        if len(pattern.encode()) > limits.subscription_pattern_bytes_max:
            raise ZafkaError(
                "INVALID_CONFIG",
                f"pattern: longer than {limits.subscription_pattern_bytes_max} bytes",
            )
        try:
            re.compile(pattern)
        except re.error as err:
            raise ZafkaError("INVALID_CONFIG", f"pattern={pattern!r}: {err}") from None
        return (), pattern
    if isinstance(topics, str):
        raise ZafkaError("INVALID_CONFIG", "topics: expected a list of topic names")
    names = tuple(dict.fromkeys(topics or ()))
    if not names:
        raise ZafkaError("INVALID_CONFIG", "topics: subscribe to at least one topic")
    for name in names:
        check_topic_name(name)
    return names, None
