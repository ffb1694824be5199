"""Records of `__consumer_offsets`: each kind round-trips, keys route by group, malformed
records are refused with RecordError, and replay applies each key independently."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zafka.actors.group import records as rec
from zafka.actors.group.records import CommittedOffset, Member, RecordError, Subscription
from zafka.actors.group.state import GroupState
from zafka.transport.names import TopicPartition as TP

names = st.text(min_size=1, max_size=8)
partitions = st.builds(TP, st.sampled_from(["a", "b", "é"]), st.integers(0, 99))
epochs = st.dictionaries(partitions, st.integers(0, 2**31 - 1), max_size=6)
subscriptions = st.one_of(
    st.lists(names, max_size=4).map(lambda t: Subscription(tuple(t))),
    st.just(Subscription(pattern="a.*")),
)
members = st.builds(
    Member,
    member_id=names,
    instance_id=st.none() | names,
    subscription=subscriptions,
    assignor=st.sampled_from([None, "range", "uniform"]),
    session_timeout_ms=st.integers(1, 10**6),
    epoch=st.integers(0, 2**31 - 1),
    previous_epoch=st.integers(-1, 2**31 - 1),
    assigned=epochs,
    revoking=epochs,
)


@given(member=members, group=names)
def test_member_round_trip(member: Member, group: str) -> None:
    key = rec.decode_key(rec.member_key(group, member.member_id))
    assert key == (rec.MEMBER, group, member.member_id, None)
    assert rec.decode_member(member.member_id, rec.member_value(member)) == member


@given(group=names, tp=partitions, offset=st.integers(0, 2**63 - 1), meta=st.text(max_size=9))
def test_offset_round_trip(group: str, tp: TP, offset: int, meta: str) -> None:
    assert rec.decode_key(rec.offset_key(group, tp)) == (rec.OFFSET, group, None, tp)
    committed = CommittedOffset(offset, meta, 1_700_000_000_000)
    assert rec.decode_offset(rec.offset_value(committed)) == committed
    assert rec.record_group(rec.offset_key(group, tp)) == group


@given(group=names, tps=st.frozensets(partitions), counts=st.dictionaries(names, st.integers(0, 9)))
def test_group_and_target_round_trip(group: str, tps: frozenset[TP], counts: dict) -> None:
    assert rec.decode_key(rec.group_key(group)) == (rec.GROUP, group, None, None)
    assert rec.decode_group(rec.group_value(7, "range", counts)) == (7, "range", counts)
    assert rec.decode_key(rec.target_key(group, "m")) == (rec.TARGET, group, "m", None)
    assert rec.decode_target(rec.target_value(tps)) == tps


def pack(obj: object) -> bytes:
    return msgpack.packb(obj)


@pytest.mark.parametrize(
    "key",
    [
        b"\xc1",
        pack("g"),
        pack([9, "g"]),
        pack([rec.GROUP, 5]),
        pack([rec.GROUP, "g", "extra"]),
        pack([rec.MEMBER, "g"]),
        pack([rec.OFFSET, "g", "t", "0"]),
        pack([rec.OFFSET, "g", "t", True]),
    ],
)
def test_malformed_keys_are_refused(key: bytes) -> None:
    with pytest.raises(RecordError):
        rec.decode_key(key)


@pytest.mark.parametrize(
    ("decode", "value"),
    [
        (rec.decode_offset, pack({"offset": 1, "metadata": ""})),
        (rec.decode_offset, pack({"offset": "1", "metadata": "", "commit_ms": 0})),
        (rec.decode_group, pack({"epoch": 1, "assignor": "uniform", "partitions": []})),
        (rec.decode_target, pack({"partitions": {"t": 3}})),
        (rec.decode_target, pack([1, 2])),
        (lambda v: rec.decode_member("m", v), pack({"topics": []})),
        (lambda v: rec.decode_member("m", v), b"\x93\x01"),
    ],
)
def test_malformed_values_are_refused(decode, value: bytes) -> None:
    with pytest.raises(RecordError):
        decode(value)


def test_a_member_with_topics_and_a_pattern_is_refused() -> None:
    member = Member("m", None, Subscription(("t",)), None, 1000)
    value = msgpack.unpackb(rec.member_value(member))
    value["pattern"] = "t.*"
    with pytest.raises(RecordError):
        rec.decode_member("m", pack(value))
    with pytest.raises(ValueError):
        Subscription(("t",), "t.*")


def test_replay_refuses_another_groups_records_and_applies_tombstones() -> None:
    group = GroupState("g")
    with pytest.raises(RecordError):
        group.replay(rec.group_key("other"), rec.group_value(1, "uniform", {}))
    key = rec.offset_key("g", TP("t", 0))
    group.replay(key, rec.offset_value(CommittedOffset(5, "", 0)))
    assert group.committed() == {TP("t", 0): (5, "", 0)}
    group.replay(key, None)
    group.replay(key, None)  # a tombstone for nothing is harmless
    assert group == GroupState("g")


def test_records_of_different_keys_commute() -> None:
    """Compaction keeps the last record per key; the state must not depend on how records of
    different keys interleave."""
    member = Member("m", None, Subscription(("t",)), None, 1000, 1, 0, {TP("t", 0): 1})
    records = [
        (rec.group_key("g"), rec.group_value(1, "uniform", {"t": 1})),
        (rec.member_key("g", "m"), rec.member_value(member)),
        (rec.target_key("g", "m"), rec.target_value([TP("t", 0)])),
        (rec.offset_key("g", TP("t", 0)), rec.offset_value(CommittedOffset(3, "", 9))),
    ]
    forward, backward = GroupState("g"), GroupState("g")
    for key, value in records:
        forward.replay(key, value)
    for key, value in reversed(records):
        backward.replay(key, value)
    assert forward == backward
    forward.check_invariant()
    assert forward.describe().state == "stable"
