"""Assignors: every subscribed partition exactly once, balance, co-partitioning (range),
stickiness and the fewest moves (uniform), determinism."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zafka.actors.group.assignors import (
    ASSIGNORS,
    DEFAULT_ASSIGNOR,
    Assignment,
    MemberSubscriptionView,
    get_assignor,
    range_assign,
    uniform_assign,
)
from zafka.transport.names import ASSIGNOR_NAMES
from zafka.transport.names import TopicPartition as TP

Members = dict[str, MemberSubscriptionView]
TOPICS = ("a", "b", "c", "d")


def view(topics: tuple[str, ...] | str, assignment: frozenset[TP] = frozenset()):
    return MemberSubscriptionView(
        frozenset((topics,) if isinstance(topics, str) else topics), assignment
    )


def counts(result: Assignment) -> dict[str, int]:
    return {m: len(tps) for m, tps in result.items()}


def moved(members: Mapping[str, MemberSubscriptionView], result: Assignment) -> int:
    """Partitions taken from a member that still holds its subscription to them."""
    return sum(
        1
        for m, v in members.items()
        for tp in v.assignment
        if tp.topic in v.topics and tp not in result[m] and any(tp in r for r in result.values())
    )


def check_complete(members: Members, partitions: Mapping[str, int], result: Assignment) -> None:
    assert set(result) == set(members)
    seen: list[TP] = []
    for member_id, tps in result.items():
        for tp in tps:
            assert tp.topic in members[member_id].topics, (member_id, tp)
            seen.append(tp)
    assert len(seen) == len(set(seen)), "a partition assigned twice"
    subscribed = {t for v in members.values() for t in v.topics}
    expected = {TP(t, p) for t in subscribed for p in range(partitions.get(t, 0))}
    assert set(seen) == expected


@st.composite
def groups(draw, homogeneous: bool = False) -> tuple[Members, dict[str, int]]:
    partitions = {t: draw(st.integers(0, 9)) for t in TOPICS}
    partitions |= {"gone": 3} if draw(st.booleans()) else {}  # a stale current assignment
    ids = draw(st.lists(st.text("mnxyz", min_size=1, max_size=3), unique=True, max_size=7))
    same = draw(st.sets(st.sampled_from(TOPICS), min_size=1))
    every = sorted({TP(t, p) for t, n in partitions.items() for p in range(n + 1)})
    members: Members = {}
    for member_id in ids:
        topics = same if homogeneous else draw(st.sets(st.sampled_from(TOPICS)))
        owned = draw(st.sets(st.sampled_from(every), max_size=8)) if every else set()
        members[member_id] = view(tuple(topics), frozenset(owned))
    partitions.pop("gone", None)
    return members, partitions


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
@settings(max_examples=300, deadline=None)
@given(group=groups())
def test_every_subscribed_partition_is_assigned_exactly_once(name, group) -> None:
    members, partitions = group
    result = ASSIGNORS[name](members, partitions)
    check_complete(members, partitions, result)
    assert ASSIGNORS[name](members, partitions) == result  # deterministic


@settings(max_examples=300, deadline=None)
@given(group=groups())
def test_range_is_balanced_per_topic_and_co_partitioned(group) -> None:
    members, partitions = group
    result = range_assign(members, partitions)
    for topic in TOPICS:
        subscribers = [m for m, v in members.items() if topic in v.topics]
        per_member = [sum(1 for tp in result[m] if tp.topic == topic) for m in subscribers]
        if per_member:
            assert max(per_member) - min(per_member) <= 1
    # Topics with equal partition counts and the same subscribers: same partition numbers.
    for m, v in members.items():
        for t in v.topics:
            for u in v.topics:
                same_subscribers = all((t in w.topics) == (u in w.topics) for w in members.values())
                if same_subscribers and partitions.get(t) == partitions.get(u):
                    numbers = {tp.partition for tp in result[m] if tp.topic == t}
                    assert numbers == {tp.partition for tp in result[m] if tp.topic == u}


@settings(max_examples=500, deadline=None)
@given(group=groups())
def test_uniform_leaves_no_gap_that_one_move_could_narrow(group) -> None:
    members, partitions = group
    result = uniform_assign(members, partitions)
    for giver, given_tps in result.items():
        for receiver, taken in result.items():
            if len(given_tps) - len(taken) >= 2:
                assert not any(tp.topic in members[receiver].topics for tp in given_tps)
            if members[giver].topics == members[receiver].topics:
                assert abs(len(given_tps) - len(taken)) <= 1


@settings(max_examples=500, deadline=None)
@given(group=groups(homogeneous=True))
def test_uniform_moves_the_fewest_partitions_with_one_subscription(group) -> None:
    members, partitions = group
    result = uniform_assign(members, partitions)
    if not members:
        return
    # Each member's still-valid current partitions (first claimant by id), then the
    # fewest moves any balanced result needs: the `extra` largest keep one more.
    claimed: set[TP] = set()
    valid: dict[str, int] = {}
    for m in sorted(members):
        v = members[m]
        mine = {
            tp
            for tp in v.assignment
            if tp.topic in v.topics and tp.partition < partitions.get(tp.topic, 0)
        }
        valid[m] = len(mine - claimed)
        claimed |= mine
    total = sum(partitions[t] for t in next(iter(members.values())).topics)
    base, extra = divmod(total, len(members))
    ordered = sorted(valid.values(), reverse=True)
    fewest = sum(max(0, c - base - (1 if i < extra else 0)) for i, c in enumerate(ordered))
    assert max(counts(result).values()) - min(counts(result).values()) <= 1
    kept_moves = 0
    claimed = set()
    for m in sorted(members):
        v = members[m]
        for tp in sorted(v.assignment):
            if tp in claimed or tp.topic not in v.topics or tp.partition >= partitions[tp.topic]:
                continue
            claimed.add(tp)
            kept_moves += tp not in result[m]
    assert kept_moves == fewest


@settings(max_examples=200, deadline=None)
@given(group=groups())
def test_uniform_is_stable_when_nothing_changes(group) -> None:
    members, partitions = group
    first = uniform_assign(members, partitions)
    again = {m: view(tuple(v.topics), first[m]) for m, v in members.items()}
    assert uniform_assign(again, partitions) == first


def twelve(n: int) -> Members:
    return {f"m{i}": view("t") for i in range(n)}


def test_a_fourth_member_takes_exactly_three_of_twelve_partitions() -> None:
    three = uniform_assign(twelve(3), {"t": 12})
    assert sorted(counts(three).values()) == [4, 4, 4]
    members = {m: view("t", tps) for m, tps in three.items()} | {"m3": view("t")}
    four = uniform_assign(members, {"t": 12})
    assert sorted(counts(four).values()) == [3, 3, 3, 3]
    assert moved(members, four) == 3
    for m, tps in three.items():
        assert four[m] <= tps  # the old members only gave partitions up


def test_range_splits_like_kafka() -> None:
    members = {"a": view(("x", "y")), "b": view(("x", "y")), "c": view("y")}
    result = range_assign(members, {"x": 5, "y": 3})
    assert result["a"] == {TP("x", 0), TP("x", 1), TP("x", 2), TP("y", 0)}
    assert result["b"] == {TP("x", 3), TP("x", 4), TP("y", 1)}
    assert result["c"] == {TP("y", 2)}


def test_a_member_without_a_subscribed_topic_gets_nothing() -> None:
    members = {"a": view("x"), "b": view(()), "c": view("missing")}
    for assign in ASSIGNORS.values():
        result = assign(members, {"x": 2})
        assert result == {"a": {TP("x", 0), TP("x", 1)}, "b": set(), "c": set()}


def test_assignors_by_name() -> None:
    assert DEFAULT_ASSIGNOR == "uniform"
    assert get_assignor("range") is range_assign
    assert get_assignor("uniform") is uniform_assign
    with pytest.raises(ValueError, match="unknown assignor"):
        get_assignor("roundrobin")


def test_the_names_clients_may_ask_for_are_the_assignors_the_coordinator_runs() -> None:
    assert tuple(ASSIGNORS) == ASSIGNOR_NAMES
