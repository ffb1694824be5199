"""Topic names: Kafka's rules, checked before a name reaches a znode path or a directory name.

A name is 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`, and is neither `.`
nor `..` (a topic's name becomes a znode name and a partition directory `<name>-<p>`, so
`/`, NUL, spaces and anything outside ASCII are refused). Names starting with `__` are
internal topics (`__consumer_offsets`): valid, and told apart by `is_internal`.
"""

from __future__ import annotations

import re

from zafka.errors import ZafkaError

NAME_CHARS_MAX = 249  # Kafka's rule: <name>-<partition> must fit a 255-byte file name
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")
INTERNAL_PREFIX = "__"


def check_topic_name(name: object) -> str:
    """`name` if it is a valid topic name; else ZafkaError INVALID_TOPIC saying the rule."""
    if not isinstance(name, str):
        raise ZafkaError("INVALID_TOPIC", f"a topic name is a str, got {type(name).__name__}")
    if not name:
        raise ZafkaError("INVALID_TOPIC", "a topic name cannot be empty")
    if len(name) > NAME_CHARS_MAX:
        raise ZafkaError(
            "INVALID_TOPIC",
            f"a topic name is at most {NAME_CHARS_MAX} characters, got {len(name)}",
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
