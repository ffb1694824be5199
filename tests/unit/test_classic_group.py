"""ClassicGroup (actors/kafka/classic_group.py): Kafka's classic group protocol as a pure
state machine, driven by hand-made joins, syncs, heartbeats, leaves and a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zafka import limits
from zafka.actors.kafka import classic_group as cg
from zafka.actors.kafka.classic_group import ClassicGroup

SESSION_MS, REBALANCE_MS = 6_000, 10_000
PROTOCOLS = (("range", b"r-meta"), ("roundrobin", b"rr-meta"))
DELAY = limits.kafka_initial_rebalance_delay_ms


def join(group, handle, member_id="", now=0, protocols=PROTOCOLS):
    return group.join(
        handle, member_id, "client", "consumer", protocols, SESSION_MS, REBALANCE_MS, now
    )


def by_handle(answers):
    return {a.handle: a for a in answers}


def formed(count=3):
    """A group of `count` members after its first rebalance: (group, member ids, leader)."""
    group = ClassicGroup("g", "consumer")
    for n in range(count):
        assert join(group, f"j{n}", now=0) == []  # the first rebalance waits for more
    answers = by_handle(group.tick(DELAY))
    assert set(answers) == {f"j{n}" for n in range(count)}
    assert {a.code for a in answers.values()} == {cg.NONE}
    ids = [answers[f"j{n}"].fields["member_id"] for n in range(count)]
    leader = answers["j0"].fields["leader"]
    return group, ids, leader, answers


def test_the_first_rebalance_answers_every_member_and_only_the_leader_gets_metadata():
    group, ids, leader, answers = formed()
    assert len(set(ids)) == 3 and leader in ids and group.generation == 1
    for answer in answers.values():
        mine = answer.fields["member_id"]
        expected = [(m, b"r-meta") for m in ids] if mine == leader else []
        assert answer.fields["members"] == expected
        assert answer.fields["protocol"] == "range"


def test_sync_hands_each_member_the_leaders_assignment():
    group, ids, leader, _ = formed()
    followers = [m for m in ids if m != leader]
    assert group.sync("s1", followers[0], 1, {}) == []  # waits for the leader
    assignments = {m: m.encode() for m in ids}
    answers = by_handle(group.sync("s0", leader, 1, assignments))
    assert answers["s1"].fields["assignment"] == followers[0].encode()
    assert answers["s0"].fields["assignment"] == leader.encode()
    assert group.state == cg.STABLE
    late = group.sync("s2", followers[1], 1, {})
    assert late[0].code == cg.NONE and late[0].fields["assignment"] == followers[1].encode()


def test_a_leave_rebalances_and_heartbeats_say_so():
    group, ids, leader, _ = formed()
    group.sync("s", leader, 1, {m: b"" for m in ids})
    codes, _ = group.leave([ids[2]], now_ms=100)
    assert codes == {ids[2]: cg.NONE} and group.state == cg.PREPARING
    assert group.heartbeat(ids[0], 1, 100) == cg.REBALANCE_IN_PROGRESS
    assert group.can_commit(ids[0], 1) == cg.REBALANCE_IN_PROGRESS
    assert join(group, "a", ids[0], 150) == []
    answers = by_handle(join(group, "b", ids[1], 160))  # all rejoined: no wait
    assert {a.fields["generation"] for a in answers.values()} == {2}
    assert group.heartbeat(ids[0], 1, 170) == cg.ILLEGAL_GENERATION
    assert group.heartbeat(ids[2], 2, 170) == cg.UNKNOWN_MEMBER_ID


def test_a_silent_member_is_removed_after_its_session():
    group, ids, leader, _ = formed(2)
    group.sync("s", leader, 1, {m: b"" for m in ids})
    group.heartbeat(ids[0], 1, SESSION_MS)
    group.tick(SESSION_MS + DELAY + 1)
    assert set(group.members) == {ids[0]} and group.state == cg.PREPARING
    answers = join(group, "again", ids[0], SESSION_MS + DELAY + 2)
    assert answers[0].code == cg.NONE and answers[0].fields["leader"] == ids[0]


def test_a_member_that_does_not_rejoin_in_the_rebalance_timeout_is_dropped():
    group, ids, leader, _ = formed(2)
    group.sync("s", leader, 1, {m: b"" for m in ids})
    join(group, "r", ids[0], 1_000)
    group.heartbeat(ids[1], 1, 5_000)  # alive, but never rejoins
    answers = group.tick(1_000 + REBALANCE_MS)
    assert [a.handle for a in answers] == ["r"] and set(group.members) == {ids[0]}


def test_commits_from_outside_only_while_empty_and_unknown_protocols_refused():
    group = ClassicGroup("g", "consumer")
    assert group.can_commit("", -1) == cg.NONE
    join(group, "j", now=0)
    assert group.can_commit("", -1) == cg.UNKNOWN_MEMBER_ID
    other = join(group, "x", now=1, protocols=(("sticky", b""),))
    assert other[0].code == cg.INCONSISTENT_GROUP_PROTOCOL
    assert join(group, "y", "no-such-member", 2)[0].code == cg.UNKNOWN_MEMBER_ID


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("jlhst"), st.integers(0, 3)), max_size=40))
def test_every_join_and_sync_is_answered_at_most_once_and_generations_grow(steps):
    group, now, answered, generation = ClassicGroup("g", "consumer"), 0, [], 0
    members: list[str] = []
    for n, (action, who) in enumerate(steps):
        now += 700
        member = members[who % len(members)] if members else ""
        if action == "j":
            answers = join(group, f"j{n}", member, now)
        elif action == "l" and members:
            answers = group.leave([member], now)[1]
        elif action == "h" and members:
            group.heartbeat(member, group.generation, now)
            answers = []
        elif action == "s" and members:
            answers = group.sync(f"s{n}", member, group.generation, {m: b"a" for m in members})
        else:
            answers = group.tick(now)
        answered += [a.handle for a in answers]
        members = list(group.members)
        assert group.generation >= generation
        generation = group.generation
    assert len(answered) == len(set(answered))
