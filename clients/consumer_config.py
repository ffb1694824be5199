"""The Consumer's argument checks: every bad setting is refused before anything starts, with
INVALID_CONFIG saying what is expected (INVALID_TOPIC / INVALID_REQUEST for bad partitions)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from zafka import limits
from zafka.clients.consumer_group import Callbacks, GroupConfig
from zafka.clients.fetch_state import RESET_POLICIES
from zafka.clients.fetcher import FetcherConfig
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


def check_fetch_config(
    fetch_max_bytes: object,
    fetch_max_wait_ms: object,
    fetch_min_bytes: object,
    request_timeout_ms: object,
    retry_backoff_ms: object,
) -> FetcherConfig:
    max_bytes = check_int(
        "fetch_max_bytes", fetch_max_bytes, 1, limits.frame_bytes_max, "per fetch"
    )
    call_ms_max = limits.call_timeout_ms_max
    return FetcherConfig(
        max_bytes,
        check_int("fetch_max_wait_ms", fetch_max_wait_ms, 1, 60_000, "ms a fetch may wait"),
        check_int("fetch_min_bytes", fetch_min_bytes, 1, max_bytes, "bytes a fetch waits for"),
        check_int("request_timeout_ms", request_timeout_ms, 1, call_ms_max, "ms per request"),
        check_int("retry_backoff_ms", retry_backoff_ms, 1, 60_000, "ms before a first retry"),
    )


def check_reset_policy(auto_offset_reset: object) -> int | None:
    """The position a partition without a valid one starts from (EARLIEST, LATEST, or None:
    raise OFFSET_OUT_OF_RANGE)."""
    if auto_offset_reset not in RESET_POLICIES:
        raise ZafkaError(
            "INVALID_CONFIG",
            f"auto_offset_reset={auto_offset_reset!r}: expected 'latest', 'earliest' or 'none'",
        )
    return RESET_POLICIES[auto_offset_reset]  # type: ignore[index]


class GroupSettings(NamedTuple):
    """A group consumer's checked settings."""

    group_id: str
    instance_id: str | None
    session_timeout_ms: int
    assignor: str | None
    config: GroupConfig
    subscription: tuple[tuple[str, ...], str | None] | None  # (topics, pattern) to join with
    listener: Callbacks


def check_group_settings(
    group_id: str | None,
    topics: Iterable[str] | None,
    pattern: str | None,
    instance_id: str | None,
    session_timeout_ms: object,
    enable_auto_commit: object,
    auto_commit_interval_ms: object,
    assignor: str | None,
    callbacks: Callbacks,
    request_timeout_ms: int,
) -> GroupSettings | None:
    """The group settings, or None without a group_id (then no group option may be set)."""
    if group_id is None:
        given = {
            "topics": topics,
            "pattern": pattern,
            "group_instance_id": instance_id,
            "assignor": assignor,
            **callbacks.given(),
        }
        for name, value in given.items():
            if value is not None:
                raise ZafkaError(
                    "INVALID_CONFIG", f"{name} needs a group_id (consumer groups only)"
                )
        return None
    check_group_config(group_id, instance_id, assignor)
    session_ms = check_int(
        "session_timeout_ms", session_timeout_ms, 1, limits.session_timeout_ms_max, "ms"
    )
    config = GroupConfig(
        check_bool("enable_auto_commit", enable_auto_commit),
        check_int("auto_commit_interval_ms", auto_commit_interval_ms, 1, 86_400_000, "ms"),
        request_timeout_ms,
    )
    subscription = None
    if topics is not None or pattern is not None:
        subscription = check_subscription(topics, pattern)
    return GroupSettings(
        group_id, instance_id, session_ms, assignor, config, subscription, callbacks
    )
