"""The group state machine driven by simulated members: joins, incremental reconciliation
(1 -> 4 -> 1 on 12 partitions, a 4th member moving exactly 3), static membership, fencing,
session and revocation timeouts, pattern subscriptions, topic changes, commits, replay."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest

from zafka.actors.group.api import Outcome, error_code
from zafka.actors.group.records import Member, Record, Subscription
from zafka.actors.group.state import GroupState
from zafka.transport.names import TopicPartition as TP

HEARTBEAT_MS = 100
SESSION_MS = 1_000
REBALANCE_MS = 5_000


def tps(topic: str, partitions: Iterable[int]) -> frozenset[TP]:
    return frozenset(TP(topic, p) for p in partitions)


class Client:
    """A member as a correct consumer runs it: it owns what the last answer told it to own."""

    def __init__(self, harness: Harness, subscription: Subscription, instance_id: str | None):
        self.h = harness
        self.subscription = subscription
        self.instance_id = instance_id
        self.member_id = ""
        self.epoch = -1
        self.owned: frozenset[TP] = frozenset()
        self.revoked: list[frozenset[TP]] = []  # what each answer took away
        self.errors: list[str] = []

    def join(self, member_id: str = "") -> Outcome:
        self.owned, self.epoch = frozenset(), -1  # a joining member owns nothing
        out = self.h.run(
            lambda now: self.h.group.join(
                now,
                self.subscription,
                SESSION_MS,
                member_id=member_id,
                instance_id=self.instance_id,
            )
        )
        self._apply(out)
        return out

    def heartbeat(self, subscription: Subscription | None = None, lose_answer: bool = False):
        if subscription is not None:
            self.subscription = subscription
        out = self.h.run(
            lambda now: self.h.group.heartbeat(
                now, self.member_id, self.epoch, self.owned, subscription
            )
        )
        if not lose_answer:
            self._apply(out)
        return out

    def commit(self, partitions: Iterable[TP] | None = None) -> Outcome:
        chosen = self.owned if partitions is None else partitions
        offsets = [(tp, 10 + tp.partition, "") for tp in sorted(chosen)]
        return self.h.run(lambda now: self.h.group.commit(now, self.member_id, self.epoch, offsets))

    def leave(self) -> Outcome:
        out = self.h.run(lambda now: self.h.group.leave(self.member_id))
        self.owned = frozenset()
        return out

    def _apply(self, out: Outcome) -> None:
        if out.error != "NONE":  # fenced or unknown: every partition is lost
            self.errors.append(out.error)
            self.owned = frozenset()
            self.member_id, self.epoch = "" if self.h.server_ids else self.member_id, -1
            return
        assert out.member is not None
        self.revoked.append(self.owned - out.member.assignment)
        self.member_id, self.epoch = out.member.member_id, out.member.member_epoch
        self.owned = out.member.assignment


class Harness:
    """A group, a clock, the simulated clients, and every record the group produced."""

    def __init__(self, topics: dict[str, int], server_ids: bool = True, **group_options):
        counter = itertools.count()
        self.server_ids = server_ids
        self.group = GroupState(
            "g",
            new_member_id=lambda: f"m{next(counter)}",
            heartbeat_interval_ms=HEARTBEAT_MS,
            rebalance_timeout_ms=REBALANCE_MS,
            **group_options,
        )
        self.now = 0
        self.records: list[Record] = []
        self.clients: list[Client] = []
        self.run(lambda now: self.group.update_topics(topics))

    def run(self, step) -> Outcome:
        out = step(self.now)
        if out.error != "NONE":
            assert out.records == ()
        self.records.extend(out.records)
        self.check()
        return out

    def check(self) -> None:
        """The coordinator's invariant, and each live client owns only what the coordinator
        says it owns: no two live clients ever own one partition."""
        self.group.check_invariant()
        for client in self.clients:
            member = self.group.members.get(client.member_id)
            if member is not None and client.epoch >= 0:
                assert client.owned <= member.owns(), (client.member_id, client.owned, member)

    def add(self, topics=("t",), instance_id: str | None = None, pattern=None) -> Client:
        sub = Subscription(pattern=pattern) if pattern else Subscription(tuple(topics))
        client = Client(self, sub, instance_id)
        self.clients.append(client)
        out = client.join()
        assert out.error == "NONE", out
        return client

    def live(self) -> list[Client]:
        return [c for c in self.clients if c.member_id in self.group.members and c.epoch >= 0]

    def converge(self, rounds: int = 10) -> int:
        """Every live client heartbeats until the group is stable; returns the rounds taken."""
        for done in range(1, rounds + 1):
            for client in self.live():
                client.heartbeat()
            if self.group.describe().state == "stable" and all(
                c.owned == self.group.target[c.member_id] for c in self.live()
            ):
                return done
        raise AssertionError(f"no convergence in {rounds} rounds: {self.group.describe()}")

    def tick(self, ms: int) -> Outcome:
        self.now += ms
        return self.run(self.group.expire)

    def replayed(self, compact: bool = False) -> GroupState:
        records = self.records
        if compact:
            last = {r.key: r for r in records}
            records = [r for r in records if last[r.key] is r and r.value is not None]
        fresh = GroupState("g")
        for record in records:
            fresh.replay(record.key, record.value)
        return fresh


def owners(h: Harness) -> dict[TP, str]:
    return {tp: c.member_id for c in h.live() for tp in c.owned}


def test_one_to_four_to_one_on_twelve_partitions() -> None:
    h = Harness({"t": 12})
    everything = tps("t", range(12))
    for n in range(1, 5):
        h.add()
        h.converge()
        assert set(owners(h)) == everything
        assert sorted(len(c.owned) for c in h.live()) == [12 // n] * n
        assert h.group.describe().state == "stable"
        assert all(c.epoch == h.group.epoch for c in h.live())
    while len(h.live()) > 1:
        h.live()[0].leave()
        h.converge()
        assert set(owners(h)) == everything
        counts = [len(c.owned) for c in h.live()]
        assert max(counts) - min(counts) <= 1
    assert h.replayed() == h.group
    assert h.replayed(compact=True) == h.group


def test_a_fourth_member_moves_exactly_three_and_never_touches_the_others() -> None:
    h = Harness({"t": 12})
    old = [h.add() for _ in range(3)]
    h.converge()
    before = {c.member_id: c.owned for c in old}
    for c in old:
        c.revoked.clear()
    new = h.add()
    assert new.owned == frozenset()  # all 12 are owned: it waits for the revocations
    rounds = h.converge()
    assert rounds <= 2
    revoked = [tp for c in old for r in c.revoked for tp in r]
    assert len(revoked) == 3 and len(new.owned) == 3
    assert set(revoked) == new.owned
    for c in old:
        kept = before[c.member_id] - new.owned
        assert len(kept) == 3 and c.owned == kept  # the 9 others never left their owner
        assert all(not (r & kept) for r in c.revoked)


def test_partitions_go_to_the_new_owner_only_after_the_old_one_revoked() -> None:
    h = Harness({"t": 4})
    a = h.add()
    b = h.add()
    assert len(a.owned) == 4 and b.owned == frozenset()
    a.heartbeat(lose_answer=True)  # told to revoke two: it has not heard yet
    b.heartbeat()
    assert b.owned == frozenset()
    a.heartbeat()  # hears it now, revokes
    assert len(a.owned) == 2
    b.heartbeat()
    assert b.owned == frozenset()  # a has not confirmed yet
    a.heartbeat()  # confirms
    b.heartbeat()
    assert len(b.owned) == 2 and not a.owned & b.owned
    assert a.epoch == b.epoch == h.group.epoch


def test_commit_during_revocation_then_epoch_moves_on() -> None:
    h = Harness({"t": 2})
    a = h.add()
    h.add()
    a.heartbeat()  # told to revoke one partition, still at its epoch
    revoking = h.group.members[a.member_id].revoking
    assert len(revoking) == 1 and a.epoch == h.group.members[a.member_id].epoch
    assert a.commit(set(revoking) | a.owned).error == "NONE"  # commit before revoking
    old_epoch = a.epoch
    a.heartbeat()
    assert a.epoch > old_epoch
    gone = next(iter(revoking))
    # A late commit at the old epoch: fine for what it still owns, refused for what it gave up.
    assert (
        h.group.commit(h.now, a.member_id, old_epoch, [(next(iter(a.owned)), 5, "")]).error
        == "NONE"
    )
    refused = h.group.commit(h.now, a.member_id, old_epoch, [(gone, 5, "")])
    assert refused.error == "FENCED_MEMBER_EPOCH" and refused.records == ()


def test_static_member_takes_its_place_back_without_a_rebalance() -> None:
    h = Harness({"t": 6})
    a = h.add(instance_id="host-a")
    h.add()
    h.converge()
    epoch = h.group.epoch
    mine = a.owned
    restarted = Client(h, a.subscription, "host-a")  # a new process, same instance id
    h.clients.append(restarted)
    out = restarted.join()
    assert out.error == "NONE" and h.group.epoch == epoch
    assert restarted.member_id != a.member_id and restarted.owned == mine
    assert restarted.epoch == a.epoch
    assert a.heartbeat().error == "UNKNOWN_MEMBER_ID"  # the old process is fenced
    assert a.commit(mine).error == "UNKNOWN_MEMBER_ID"
    assert error_code("UNKNOWN_MEMBER_ID") in (25, 110)
    h.converge()
    assert h.group.describe().state == "stable" and restarted.owned == mine
    assert h.replayed() == h.group


def test_static_member_with_a_new_subscription_rebalances() -> None:
    h = Harness({"t": 4, "u": 4})
    h.add(instance_id="host-a")
    h.add()
    h.converge()
    epoch = h.group.epoch
    restarted = Client(h, Subscription(("t", "u")), "host-a")
    h.clients.append(restarted)
    restarted.join()
    assert h.group.epoch == epoch + 1
    h.converge()
    assert len(owners(h)) == 8


def test_stale_epochs_are_fenced_and_the_previous_one_tolerated() -> None:
    h = Harness({"t": 4})
    a = h.add()
    first = a.epoch
    b = h.add()
    a.heartbeat()  # revoke
    a.heartbeat(lose_answer=True)  # confirms; the answer moving it on is lost
    assert h.group.members[a.member_id].epoch > first == a.epoch
    assert a.heartbeat().error == "NONE"  # previous epoch, owns a subset: fine
    assert a.epoch == h.group.epoch
    assert h.group.heartbeat(h.now, a.member_id, first, a.owned).error == "NONE"
    assert h.group.heartbeat(h.now, a.member_id, a.epoch + 1, ()).error == "FENCED_MEMBER_EPOCH"
    assert h.group.heartbeat(h.now, a.member_id, 0, ()).error == "FENCED_MEMBER_EPOCH"
    # previous epoch but claiming a partition it no longer owns: a zombie
    other = next(iter(b.owned | (tps("t", range(4)) - a.owned)))
    zombie = h.group.heartbeat(h.now, a.member_id, first, a.owned | {other})
    assert zombie.error == "FENCED_MEMBER_EPOCH"
    assert h.group.heartbeat(h.now, "nobody", 1, ()).error == "UNKNOWN_MEMBER_ID"
    assert h.group.commit(h.now, a.member_id, a.epoch + 1, []).error == "FENCED_MEMBER_EPOCH"


def test_a_fenced_member_rejoins_with_its_id_and_gets_its_partitions_back() -> None:
    h = Harness({"t": 4}, server_ids=False)
    a = h.add()
    mine = a.owned
    a.epoch = 99
    a.heartbeat()
    assert a.errors == ["FENCED_MEMBER_EPOCH"] and a.owned == frozenset()
    a.join(a.member_id)
    assert a.owned == mine and len(h.group.members) == 1


def test_sessions_expire_and_free_the_partitions() -> None:
    h = Harness({"t": 4})
    a = h.add()
    b = h.add()
    h.converge()
    assert h.group.next_deadline_ms() == h.now + SESSION_MS
    h.now += SESSION_MS // 2
    b.heartbeat()
    out = h.tick(SESSION_MS // 2)  # a's session is over, b's is not
    assert out.removed == (a.member_id,)
    assert h.group.next_deadline_ms() == h.now + SESSION_MS // 2
    b.heartbeat()
    assert len(b.owned) == 4  # a is gone: nobody to wait for
    assert a.heartbeat().error == "UNKNOWN_MEMBER_ID"
    assert a.commit(tps("t", [0])).error == "UNKNOWN_MEMBER_ID"


def test_a_member_that_never_confirms_is_removed_after_the_rebalance_timeout() -> None:
    h = Harness({"t": 4})
    a = h.add()
    b = h.add()
    a.heartbeat(lose_answer=True)  # told to revoke; it never does
    for _ in range(REBALANCE_MS // HEARTBEAT_MS - 1):
        h.now += HEARTBEAT_MS
        a.heartbeat(lose_answer=True)
        b.heartbeat()
        assert h.group.expire(h.now).removed == ()
    assert b.owned == tps("t", range(4)) - h.group.members[a.member_id].owns()
    out = h.tick(HEARTBEAT_MS)
    assert out.removed == (a.member_id,)
    b.heartbeat()
    assert len(b.owned) == 4


def test_leave_frees_partitions_at_once_and_unknown_members_cannot_leave() -> None:
    h = Harness({"t": 4})
    a = h.add()
    b = h.add()
    h.converge()
    assert a.leave().error == "NONE"
    b.heartbeat()
    assert len(b.owned) == 4
    assert h.group.leave(a.member_id).error == "UNKNOWN_MEMBER_ID"


def test_pattern_subscriptions_follow_topics_as_they_appear() -> None:
    h = Harness({"orders-eu": 2, "payments": 2, "__consumer_offsets": 50})
    a = h.add(pattern=r"orders-.*")
    assert a.owned == tps("orders-eu", [0, 1])
    epoch = h.group.epoch
    h.run(lambda now: h.group.update_topics({"orders-eu": 2, "orders-us": 1, "payments": 2}))
    assert h.group.epoch == epoch + 1
    a.heartbeat()
    assert a.owned == tps("orders-eu", [0, 1]) | tps("orders-us", [0])
    out = h.run(lambda now: h.group.update_topics({"orders-eu": 2, "orders-us": 1, "other": 3}))
    assert out.records == ()  # nothing subscribed changed: no new epoch


def test_topic_growth_and_deletion() -> None:
    h = Harness({"t": 2, "u": 2})
    a = h.add(topics=("t", "u"))
    h.run(lambda now: h.group.update_topics({"t": 3, "u": 2}))
    a.heartbeat()
    assert TP("t", 2) in a.owned
    h.run(lambda now: h.group.update_topics({"t": 3}))
    a.heartbeat()  # the deleted topic's partitions are revoked like any other
    assert a.owned == tps("t", range(3))
    h.converge()
    assert h.group.describe().members[0].assignment == tps("t", range(3))


def test_subscription_change_by_heartbeat() -> None:
    h = Harness({"t": 2, "u": 2})
    a = h.add(topics=("t",))
    epoch = h.group.epoch
    a.heartbeat(subscription=Subscription(("u",)))
    assert h.group.epoch == epoch + 1
    assert a.owned == frozenset()  # revoke t first
    a.heartbeat()
    assert a.owned == tps("u", [0, 1])


def test_assignor_chosen_by_the_members() -> None:
    h = Harness({"x": 2, "y": 2})
    assert h.group.assignor == "uniform"
    sub = Subscription(("x", "y"))
    out = h.run(lambda now: h.group.join(now, sub, SESSION_MS, assignor="range"))
    assert h.group.assignor == "range"
    assert out.member.assignment == tps("x", [0, 1]) | tps("y", [0, 1])
    out = h.run(lambda now: h.group.join(now, sub, SESSION_MS, assignor="nope"))
    assert out.error == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("timeout_ms", "pattern", "error"),
    [
        (HEARTBEAT_MS, None, "INVALID_SESSION_TIMEOUT"),
        (10**9, None, "INVALID_SESSION_TIMEOUT"),
        (SESSION_MS, "(unclosed", "INVALID_REQUEST"),
        (SESSION_MS, "x" * 2000, "INVALID_REQUEST"),
    ],
)
def test_bad_joins_are_refused_without_records(timeout_ms, pattern, error) -> None:
    h = Harness({"t": 1})
    sub = Subscription(pattern=pattern) if pattern else Subscription(("t",))
    out = h.group.join(0, sub, timeout_ms)
    assert out.error == error and out.records == () and not h.group.members
    assert error_code(error) > 0


def test_known_member_id_with_another_instance_id_is_refused() -> None:
    h = Harness({"t": 1})
    a = h.add(instance_id="i1")
    out = h.group.join(0, a.subscription, SESSION_MS, member_id=a.member_id, instance_id="i2")
    assert out.error == "INVALID_REQUEST"


def test_offsets_commit_fetch_and_delete() -> None:
    h = Harness({"t": 2})
    simple = h.run(lambda now: h.group.commit(now, "", -1, [(TP("t", 0), 7, "m")]))
    assert simple.error == "NONE"  # no members: an admin reset is fine
    assert h.group.committed([TP("t", 0), TP("t", 1)]) == {TP("t", 0): (7, "m", 0)}
    a = h.add()
    assert h.group.commit(h.now, "", -1, [(TP("t", 0), 8, "")]).error == "UNKNOWN_MEMBER_ID"
    h.now = 42
    assert a.commit().error == "NONE"
    assert h.group.committed()[TP("t", 1)] == (11, "", 42)
    assert (
        h.group.commit(0, a.member_id, a.epoch, [(TP("t", 0), -1, "")]).error == "INVALID_REQUEST"
    )
    big = [(TP("t", 0), 1, "x" * 5000)]
    assert h.group.commit(0, a.member_id, a.epoch, big).error == "OFFSET_METADATA_TOO_LARGE"
    assert h.group.delete().error == "NON_EMPTY_GROUP"
    assert h.replayed() == h.group
    a.leave()
    out = h.run(lambda now: h.group.delete())
    assert out.error == "NONE" and h.group.committed() == {}
    assert h.replayed() == h.group == GroupState("g")
    assert h.replayed(compact=True) == GroupState("g")


def test_restart_replays_to_the_same_state_and_sessions_start_fresh() -> None:
    h = Harness({"t": 6})
    a, b = h.add(instance_id="s"), h.add()
    h.add()
    b.heartbeat()
    a.commit()
    loaded = h.replayed()
    assert loaded == h.group
    assert loaded.describe() == h.group.describe()
    assert loaded.next_deadline_ms() is None
    loaded.update_topics({"t": 6})
    loaded.start_sessions(5_000)
    assert loaded.next_deadline_ms() == 5_000 + SESSION_MS
    # The loaded group goes on where the old one stopped.
    h.group = loaded
    h.now = 5_000
    h.converge()
    assert len(owners(h)) == 6


def test_describe() -> None:
    h = Harness({"t": 4})
    assert h.group.describe().state == "empty"
    a = h.add()
    h.add()
    d = h.group.describe()
    assert d.state == "reconciling" and d.epoch == 2 and d.assignor == "uniform"
    a.heartbeat()
    states = {m.member_id: m.state for m in h.group.describe().members}
    assert states[a.member_id] == "revoking"
    h.converge()
    d = h.group.describe()
    assert d.state == "stable"
    assert all(m.member_epoch == 2 and m.assignment == m.target for m in d.members)


def test_the_invariant_check_catches_two_owners() -> None:
    h = Harness({"t": 2})
    a = h.add()
    b = h.add()
    member = h.group.members[b.member_id]
    stolen = next(iter(a.owned))
    h.group.members[b.member_id] = Member(**{**member.__dict__, "assigned": {stolen: 1}})
    with pytest.raises(AssertionError, match="owned by"):
        h.group.check_invariant()


def test_error_codes_for_names_not_in_the_table_yet() -> None:
    assert error_code("NONE") == 0
    assert error_code("FENCED_MEMBER_EPOCH") == 110
    for name in ("UNKNOWN_MEMBER_ID", "INVALID_SESSION_TIMEOUT", "NON_EMPTY_GROUP"):
        assert error_code(name) > 0
