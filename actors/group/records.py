"""Consumer-group state as records of the compacted internal topic `__consumer_offsets`. Pure.

Every change of a group's state is one or more records `(key, value)`; a value of None is a
tombstone (the key is deleted; compaction drops it later). Each record carries the whole
value for its key, so a record never depends on another one: replaying the topic, compacted
or not, rebuilds the same state (`GroupState.replay`, in `state.py`). All the records of
a group go to the partition of `__consumer_offsets` its coordinator leads.

Keys and values are msgpack. A key is an array whose first element is its kind:

| kind | key | value (a msgpack map) |
|---|---|---|
| 0 offset | `[0, group, topic, partition]` | `{"offset": int, "metadata": str, "commit_ms": int}` |
| 1 group  | `[1, group]` | `{"epoch": int, "assignor": str, "partitions": {topic: count}}` |
| 2 member | `[2, group, member_id]` | see below |
| 3 target | `[3, group, member_id]` | `{"partitions": {topic: [partition, ...]}}` |

- group: the group epoch (which is also the epoch of the target assignment: the target is
  recomputed in the same step that bumps the epoch), the assignor in use, and the partition
  counts of the subscribed topics the target was computed from (so a coordinator that
  restarts notices topics that changed meanwhile).
- member: `{"instance_id": str | None, "topics": [str], "pattern": str | None,
  "assignor": str | None, "session_timeout_ms": int, "epoch": int, "previous_epoch": int,
  "assigned": {topic: [[partition, epoch], ...]}, "revoking": {topic: [[partition, epoch],
  ...]}}`, where each partition is listed with the member epoch at which it was given.
- target: the member's partitions in the target assignment at the group epoch.

Malformed records raise `RecordError` (a ValueError).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgpack

from zafka.transport.names import TopicPartition

TP = TopicPartition
OFFSETS_TOPIC = "__consumer_offsets"

OFFSET, GROUP, MEMBER, TARGET = 0, 1, 2, 3
KINDS = (OFFSET, GROUP, MEMBER, TARGET)


class RecordError(ValueError):
    """A record of `__consumer_offsets` that does not parse."""


class Record(NamedTuple):
    """One record for `__consumer_offsets`; `value` None is a tombstone."""

    key: bytes
    value: bytes | None


@dataclass(frozen=True)
class Subscription:
    """What a member subscribes to: topic names, or one regular expression (`pattern`) that a
    topic name must match entirely (`re.fullmatch`). A pattern never matches internal topics
    (names starting with `__`). Topics that do not exist are simply not assigned yet."""

    topics: tuple[str, ...] = ()
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None and self.topics:
            raise ValueError("a subscription has topics or a pattern, not both")
        object.__setattr__(self, "topics", tuple(sorted(set(self.topics))))

    def resolve(self, topics: Iterable[str]) -> frozenset[str]:
        """The subscribed topics among `topics` (the known ones)."""
        if self.pattern is None:
            return frozenset(self.topics)
        regex = compile_pattern(self.pattern)
        return frozenset(t for t in topics if not t.startswith("__") and regex.fullmatch(t))


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern (re.error if it does not compile)."""
    return re.compile(pattern)


@dataclass(frozen=True)
class Member:
    """One member as the coordinator sees it.

    `assigned` and `revoking` map each partition the member owns to the member epoch at which
    it was given. `assigned`: the partitions it was told to own. `revoking`: partitions it was
    told to give up but has not yet confirmed (by a heartbeat not listing them); it still
    owns them, so nobody else gets them. `epoch` is the member epoch (the target epoch it has
    reconciled to); `previous_epoch` the one before, still accepted from a member that did not
    receive the answer that moved it on."""

    member_id: str
    instance_id: str | None
    subscription: Subscription
    assignor: str | None
    session_timeout_ms: int
    epoch: int = 0
    previous_epoch: int = -1
    assigned: Mapping[TopicPartition, int] = field(default_factory=dict)
    revoking: Mapping[TopicPartition, int] = field(default_factory=dict)

    def owns(self) -> frozenset[TopicPartition]:
        """Everything the member owns in the coordinator's view: assigned and revoking."""
        return frozenset(self.assigned) | frozenset(self.revoking)


class CommittedOffset(NamedTuple):
    """A committed offset: the next record to consume, client metadata, when it was committed."""

    offset: int
    metadata: str
    commit_ms: int


# --- keys ------------------------------------------------------------------------------------


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def offset_key(group_id: str, tp: TopicPartition) -> bytes:
    return _pack([OFFSET, group_id, tp.topic, tp.partition])


def group_key(group_id: str) -> bytes:
    return _pack([GROUP, group_id])


def member_key(group_id: str, member_id: str) -> bytes:
    return _pack([MEMBER, group_id, member_id])


def target_key(group_id: str, member_id: str) -> bytes:
    return _pack([TARGET, group_id, member_id])


class RecordKey(NamedTuple):
    """A decoded key: its kind, group, and member id or partition (None when neither)."""

    kind: int
    group_id: str
    member_id: str | None = None
    tp: TopicPartition | None = None


def decode_key(key: bytes) -> RecordKey:
    """The parts of a key; RecordError if it is not one of the four layouts."""
    parts = _unpack(key)
    if not isinstance(parts, list) or len(parts) < 2 or not isinstance(parts[1], str):
        raise RecordError(f"bad group record key {key!r}")
    kind, group_id = parts[0], parts[1]
    if kind == GROUP and len(parts) == 2:
        return RecordKey(GROUP, group_id)
    if kind in (MEMBER, TARGET) and len(parts) == 3 and isinstance(parts[2], str):
        return RecordKey(kind, group_id, member_id=parts[2])
    if kind == OFFSET and len(parts) == 4 and isinstance(parts[2], str) and _is_int(parts[3]):
        return RecordKey(OFFSET, group_id, tp=TP(parts[2], parts[3]))
    raise RecordError(f"bad group record key {parts!r}")


def record_group(key: bytes) -> str:
    """The group a record belongs to: how a coordinator routes records while it replays."""
    return decode_key(key).group_id


# --- values ----------------------------------------------------------------------------------


def offset_value(committed: CommittedOffset) -> bytes:
    return _pack(committed._asdict())


def group_value(epoch: int, assignor: str, partitions: Mapping[str, int]) -> bytes:
    return _pack({"epoch": epoch, "assignor": assignor, "partitions": dict(partitions)})


def member_value(member: Member) -> bytes:
    return _pack(
        {
            "instance_id": member.instance_id,
            "topics": list(member.subscription.topics),
            "pattern": member.subscription.pattern,
            "assignor": member.assignor,
            "session_timeout_ms": member.session_timeout_ms,
            "epoch": member.epoch,
            "previous_epoch": member.previous_epoch,
            "assigned": _epochs_by_topic(member.assigned),
            "revoking": _epochs_by_topic(member.revoking),
        }
    )


def target_value(partitions: Iterable[TopicPartition]) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return _pack({"partitions": by_topic})


def decode_offset(value: bytes) -> CommittedOffset:
    v = _map(value, ("offset", "metadata", "commit_ms"))
    return CommittedOffset(_int(v["offset"]), _str(v["metadata"]), _int(v["commit_ms"]))


def decode_group(value: bytes) -> tuple[int, str, dict[str, int]]:
    """(epoch, assignor, partitions per subscribed topic)."""
    v = _map(value, ("epoch", "assignor", "partitions"))
    partitions = v["partitions"]
    if not isinstance(partitions, dict):
        raise RecordError("group record: partitions is not a map")
    return _int(v["epoch"]), _str(v["assignor"]), {_str(t): _int(n) for t, n in partitions.items()}


def decode_member(member_id: str, value: bytes) -> Member:
    names = ("instance_id", "topics", "pattern", "assignor", "session_timeout_ms")
    v = _map(value, (*names, "epoch", "previous_epoch", "assigned", "revoking"))
    if not isinstance(v["topics"], list):
        raise RecordError("member record: topics is not a list")
    try:
        subscription = Subscription(tuple(_str(t) for t in v["topics"]), _opt_str(v["pattern"]))
    except ValueError as exc:
        raise RecordError(f"member record: {exc}") from None
    return Member(
        member_id=member_id,
        instance_id=_opt_str(v["instance_id"]),
        subscription=subscription,
        assignor=_opt_str(v["assignor"]),
        session_timeout_ms=_int(v["session_timeout_ms"]),
        epoch=_int(v["epoch"]),
        previous_epoch=_int(v["previous_epoch"]),
        assigned=_decode_epochs(v["assigned"]),
        revoking=_decode_epochs(v["revoking"]),
    )


def decode_target(value: bytes) -> frozenset[TopicPartition]:
    by_topic = _map(value, ("partitions",))["partitions"]
    if not isinstance(by_topic, dict):
        raise RecordError("target record: partitions is not a map")
    return frozenset(TP(_str(t), _int(p)) for t, ps in by_topic.items() for p in _list(ps))


# --- helpers ---------------------------------------------------------------------------------


def _epochs_by_topic(epochs: Mapping[TopicPartition, int]) -> dict[str, list[list[int]]]:
    by_topic: dict[str, list[list[int]]] = {}
    for tp in sorted(epochs):
        by_topic.setdefault(tp.topic, []).append([tp.partition, epochs[tp]])
    return by_topic


def _decode_epochs(by_topic: object) -> dict[TopicPartition, int]:
    if not isinstance(by_topic, dict):
        raise RecordError("member record: partitions are not a map")
    result: dict[TopicPartition, int] = {}
    for topic, pairs in by_topic.items():
        for pair in _list(pairs):
            if not isinstance(pair, list) or len(pair) != 2:
                raise RecordError("member record: a partition is not [partition, epoch]")
            result[TP(_str(topic), _int(pair[0]))] = _int(pair[1])
    return result


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several types for garbage
        raise RecordError(f"undecodable group record: {type(exc).__name__}") from None


def _map(value: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    v = _unpack(value)
    if not isinstance(v, dict) or any(n not in v for n in names):
        raise RecordError(f"group record value lacks one of {names}")
    return v


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _int(x: object) -> int:
    if not _is_int(x):
        raise RecordError(f"expected an int, got {type(x).__name__}")
    return x  # type: ignore[return-value]


def _str(x: object) -> str:
    if not isinstance(x, str):
        raise RecordError(f"expected a str, got {type(x).__name__}")
    return x


def _opt_str(x: object) -> str | None:
    return None if x is None else _str(x)


def _list(x: object) -> list[Any]:
    if not isinstance(x, list):
        raise RecordError(f"expected a list, got {type(x).__name__}")
    return x
