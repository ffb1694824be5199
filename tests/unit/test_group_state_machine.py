"""A hypothesis state machine drives one group with random joins, heartbeats (some answers
lost, some revocations refused), leaves, static restarts, commits, subscription and topic
changes and time passing. After every step: no partition has two owners in the coordinator's
view, and every live client owns only what the coordinator says it owns. At the end, once the
members stop changing, the group converges (every subscribed partition has exactly one owner,
every member at the target epoch) and replaying its records, whole or compacted, rebuilds it."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.unit.test_group_state import HEARTBEAT_MS, REBALANCE_MS, SESSION_MS, Client, Harness
from zafka.actors.group.records import Subscription
from zafka.transport.names import TopicPartition as TP

METADATA = (
    {"a": 3, "b": 2},
    {"a": 4, "b": 2},
    {"a": 3},
    {"a": 3, "b": 2, "c": 1},
    {"b": 5, "c": 2},
)
SUBSCRIPTIONS = st.one_of(
    st.sets(st.sampled_from("abc")).map(lambda s: Subscription(tuple(s))),
    st.sampled_from(["a|b", "[bc]", ".*"]).map(lambda p: Subscription(pattern=p)),
)
CLIENTS_MAX = 6


class GroupMachine(RuleBasedStateMachine):
    h: Harness

    @initialize(server_ids=st.booleans(), subscriptions=st.lists(SUBSCRIPTIONS, max_size=3))
    def start(self, server_ids: bool, subscriptions: list[Subscription]) -> None:
        self.h = Harness(dict(METADATA[0]), server_ids=server_ids)
        self.instances = 0
        for subscription in subscriptions:
            self.join(subscription, static=True)

    def pick(self, i: int) -> Client | None:
        return self.h.clients[i % len(self.h.clients)] if self.h.clients else None

    def in_group(self, client: Client) -> bool:
        return client.epoch >= 0 and client.member_id in self.h.group.members

    def rejoin(self, client: Client) -> None:
        """What a consumer told it is out does: drop everything, join again (with its own
        member id when it makes them)."""
        assert client.join("" if self.h.server_ids else client.member_id).error == "NONE"

    @rule(subscription=SUBSCRIPTIONS, static=st.booleans())
    def join(self, subscription: Subscription, static: bool) -> None:
        if len(self.h.clients) >= CLIENTS_MAX:
            return
        self.instances += 1
        client = Client(self.h, subscription, f"i{self.instances}" if static else None)
        self.h.clients.append(client)
        assert client.join().error == "NONE"

    @rule(i=st.integers(0, CLIENTS_MAX), lose=st.booleans(), refuse=st.booleans())
    def heartbeat(self, i: int, lose: bool, refuse: bool) -> None:
        """A heartbeat whose answer may be lost, or whose revocations the client ignores (a
        stuck consumer). A client told it is out rejoins at once, as a consumer does."""
        client = self.pick(i)
        if client is None:
            return
        kept = client.owned
        out = client.heartbeat(lose_answer=lose)
        if out.error != "NONE":
            self.rejoin(client)
        elif refuse and not lose:
            client.owned = kept | client.owned
            self.h.check()

    @rule(i=st.integers(0, CLIENTS_MAX), back=st.integers(1, 3))
    def heartbeat_at_an_older_epoch(self, i: int, back: int) -> None:
        """A zombie's heartbeat: older than the previous epoch is always fenced; then the
        client drops its partitions and rejoins."""
        client = self.pick(i)
        if client is None or not self.in_group(client):
            return
        member = self.h.group.members[client.member_id]
        sent = client.epoch = client.epoch - back
        out = client.heartbeat()
        if sent < member.previous_epoch:
            assert out.error == "FENCED_MEMBER_EPOCH"
        if out.error != "NONE":
            self.rejoin(client)

    @rule(i=st.integers(0, CLIENTS_MAX), subscription=SUBSCRIPTIONS)
    def resubscribe(self, i: int, subscription: Subscription) -> None:
        client = self.pick(i)
        if client is None or not self.in_group(client):
            return
        if client.heartbeat(subscription=subscription).error != "NONE":
            self.rejoin(client)

    @rule(i=st.integers(0, CLIENTS_MAX))
    def leave(self, i: int) -> None:
        client = self.pick(i)
        if client is not None and self.in_group(client):
            assert client.leave().error == "NONE"
            self.h.clients.remove(client)

    @rule(i=st.integers(0, CLIENTS_MAX))
    def restart_static_member(self, i: int) -> None:
        """A new process with a static member's instance id; the old one is now a zombie."""
        client = self.pick(i)
        if client is None or client.instance_id is None or not self.in_group(client):
            return
        restarted = Client(self.h, client.subscription, client.instance_id)
        self.h.clients.append(restarted)
        epoch = self.h.group.epoch
        assert restarted.join().error == "NONE"
        assert self.h.group.epoch == epoch  # no rebalance
        assert client.heartbeat().error == "UNKNOWN_MEMBER_ID"
        self.h.clients.remove(client)

    @rule(i=st.integers(0, CLIENTS_MAX))
    def commit(self, i: int) -> None:
        client = self.pick(i)
        if client is None or client.epoch < 0:
            return
        out = client.commit()
        if self.in_group(client):
            assert out.error == "NONE", (out, client.owned, self.h.group.members[client.member_id])
        else:
            assert out.error == "UNKNOWN_MEMBER_ID"

    @rule(metadata=st.sampled_from(METADATA))
    def change_topics(self, metadata: dict[str, int]) -> None:
        self.h.run(lambda now: self.h.group.update_topics(metadata))

    @rule(ms=st.sampled_from([HEARTBEAT_MS, SESSION_MS // 2, SESSION_MS + 1, REBALANCE_MS]))
    def time_passes(self, ms: int) -> None:
        self.h.tick(ms)

    @invariant()
    def no_partition_has_two_owners(self) -> None:
        if hasattr(self, "h"):
            self.h.check()

    def teardown(self) -> None:
        if not hasattr(self, "h"):
            return
        self.converge()
        self.check_replay()

    def converge(self) -> None:
        """Members stop changing: every client in the group heartbeats each interval (a fenced
        one rejoins), the others' sessions run out; the group must become stable."""
        h = self.h
        rounds_max = (SESSION_MS + REBALANCE_MS) // HEARTBEAT_MS + 20
        for _ in range(rounds_max):
            h.tick(HEARTBEAT_MS)
            for client in list(h.clients):
                if client.heartbeat().error != "NONE":
                    h.clients.remove(client)
            members = {c.member_id for c in h.clients}
            if set(h.group.members) <= members and h.group.describe().state != "reconciling":
                break
        assert h.group.describe().state in ("stable", "empty"), h.group.describe()
        for client in h.clients:
            assert client.epoch == h.group.epoch
            assert client.owned == h.group.target[client.member_id]
        known = h.group.topics or {}
        subscribed = {
            TP(t, p)
            for m in h.group.members.values()
            for t in m.subscription.resolve(known)
            if t in known
            for p in range(known[t])
        }
        owned = [tp for c in h.clients for tp in c.owned]
        assert sorted(owned) == sorted(subscribed)  # each exactly once

    def check_replay(self) -> None:
        assert self.h.replayed() == self.h.group
        assert self.h.replayed(compact=True) == self.h.group


GroupMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
test_group_state_machine = GroupMachine.TestCase
