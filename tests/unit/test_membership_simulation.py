"""Members (clients/membership.py) against the coordinator's real state machine
(actors/group/state.py), in any interleaving hypothesis finds: requests in flight per
member answered in order but at any time, user threads that take their time over a task,
members joining, consuming, committing and leaving. Checked after every step: no partition is
owned by two members (as the members themselves see it); a partition's next owner starts
exactly where its previous owner committed; when everything settles, every partition has
exactly one owner and each member owns its target."""

from __future__ import annotations

from collections import deque

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zafka.actors.group.records import Subscription
from zafka.actors.group.state import GroupState
from zafka.clients.membership import (
    ASSIGN,
    MEMBER,
    REVOKE,
    Assignment,
    Membership,
    Task,
    to_tps,
)
from zafka.errors import ZafkaError
from zafka.transport.group import HeartbeatRequest, JoinGroupRequest, OffsetFetchRequest
from zafka.transport.names import TopicPartition

TP = TopicPartition
PARTITIONS = 12
ALL = frozenset(TP("orders", p) for p in range(PARTITIONS))
INTERVAL = 100
NAMES = [f"m{i}" for i in range(5)]


class Group:
    """The coordinator's state machine and the members, with their requests in flight."""

    def __init__(self) -> None:
        self.now = 0
        self.state = GroupState("g", heartbeat_interval_ms=INTERVAL)
        self.state.update_topics({"orders": PARTITIONS})
        self.members: dict[str, Membership] = {}
        self.in_flight: dict[str, deque[tuple[int, object]]] = {}
        self.tasks: dict[str, Task] = {}  # handed out to the user's thread, not done yet
        self.position: dict[str, dict[TopicPartition, int]] = {}  # what each member read
        self.last_commit: dict[TopicPartition, int] = {}

    def add(self, name: str) -> None:
        m = Membership("g", name, session_timeout_ms=1_000_000, retry_backoff_ms=10)
        m.subscribe(["orders"])
        self.members[name] = m
        self.in_flight[name] = deque()
        self.position[name] = {}

    def send(self, name: str) -> None:
        out = self.members[name].outgoing(self.now)
        for request in (out.join, out.heartbeat, out.offset_fetch):
            if request is not None:
                self.in_flight[name].append((out.generation, request))

    def deliver(self, name: str) -> None:
        generation, request = self.in_flight[name].popleft()
        m, now, state = self.members[name], self.now, self.state
        if isinstance(request, JoinGroupRequest):
            sub = Subscription(request.subscription, request.subscription_pattern)
            out = state.join(now, sub, request.session_timeout_ms, member_id=request.member_id)
            m.on_join(generation, self._answer(out), now)
        elif isinstance(request, HeartbeatRequest):
            owned = to_tps(request.owned)
            out = state.heartbeat(now, request.member_id, request.member_epoch, owned)
            m.on_heartbeat(generation, self._answer(out), now)
        else:
            assert isinstance(request, OffsetFetchRequest)
            found = state.committed(to_tps(request.partitions or ()))
            m.on_offsets(generation, {tp: c.offset for tp, c in found.items()}, now)
        state.check_invariant()

    @staticmethod
    def _answer(out: object) -> Assignment | ZafkaError:
        if out.error != "NONE":  # type: ignore[attr-defined]
            return ZafkaError(out.error)  # type: ignore[attr-defined]
        a = out.member  # type: ignore[attr-defined]
        return Assignment(a.member_epoch, a.heartbeat_interval_ms, a.assignment)

    def start_task(self, name: str) -> None:
        if name in self.tasks:
            return
        task = self.members[name].next_task()
        if task is None:
            return
        self.tasks[name] = task
        if task.kind == ASSIGN:  # positions from the committed offsets, as the Consumer does
            for tp, offset in task.offsets.items():
                assert offset == self.last_commit.get(tp, -1), (tp, offset, self.last_commit)
                self.position[name][tp] = max(offset, 0)

    def finish_task(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task is None:
            return
        m = self.members[name]
        if task.kind == REVOKE:  # commit first (auto-commit on revocation), then drop
            self.commit(name, task.partitions)
            for tp in task.partitions:
                del self.position[name][tp]
        m.done(task)

    def commit(self, name: str, tps: frozenset[TopicPartition]) -> None:
        m = self.members[name]
        member_id, epoch, _ = m.commit_as(tps)
        offsets = [(tp, self.position[name][tp], "") for tp in sorted(tps)]
        out = self.state.commit(self.now, member_id, epoch, offsets)
        assert out.error == "NONE", (name, tps, out.error)
        for tp, offset, _ in offsets:
            self.last_commit[tp] = offset

    def consume(self, name: str) -> None:
        """The member reads one record of each partition it has started."""
        for tp in self.position[name]:
            self.position[name][tp] += 1

    def leave(self, name: str) -> None:
        """Close: requests in flight are answered first (one connection keeps order), the
        partitions revoked and committed, then LeaveGroup."""
        while self.in_flight[name]:
            self.deliver(name)
        self.finish_task(name)
        m = self.members[name]
        m.leave()
        while (task := m.next_task()) is not None:
            self.tasks[name] = task
            self.finish_task(name)
        m.left()
        assert self.state.leave(name).error in ("NONE", "UNKNOWN_MEMBER_ID")
        del self.members[name], self.in_flight[name], self.position[name]

    def check_owners(self) -> None:
        owners: dict[TopicPartition, str] = {}
        for name, m in self.members.items():
            assert not m.lost, "nobody is fenced in this simulation"
            for tp in m.owned:
                assert tp not in owners, f"{tp} owned by {owners[tp]} and {name}"
                owners[tp] = name

    def settle(self) -> None:
        """Everyone heartbeats, answers arrive, user threads do their tasks, until stable."""
        for _ in range(200):
            self.now += INTERVAL
            for name in list(self.members):
                self.finish_task(name)
                for _ in range(20):
                    self.send(name)
                    while self.in_flight[name]:
                        self.deliver(name)
                        self.check_owners()
                    self.start_task(name)
                    if name not in self.tasks and not self.in_flight[name]:
                        break
                    self.finish_task(name)
            if self.converged():
                return
        raise AssertionError("the group did not converge")

    def converged(self) -> bool:
        description = self.state.describe()
        if not self.members:
            return True
        if description.state != "stable":
            return False
        owned = [tp for m in self.members.values() for tp in m.owned]
        if sorted(owned) != sorted(ALL):
            return False
        return all(
            m.state == MEMBER and m.owned == m.target and not m.has_task()
            for m in self.members.values()
        )


class MembershipSimulation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.group = Group()

    @precondition(lambda self: len(self.group.members) < len(NAMES))
    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        free = [n for n in NAMES if n not in self.group.members]
        self.group.add(data.draw(st.sampled_from(free)))

    @precondition(lambda self: self.group.members)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        self.group.leave(data.draw(st.sampled_from(sorted(self.group.members))))

    @precondition(lambda self: self.group.members)
    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        self.group.send(data.draw(st.sampled_from(sorted(self.group.members))))

    @precondition(lambda self: any(self.group.in_flight.values()))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        waiting = sorted(n for n, q in self.group.in_flight.items() if q)
        self.group.deliver(data.draw(st.sampled_from(waiting)))

    @precondition(lambda self: self.group.members)
    @rule(data=st.data())
    def user_starts_a_task(self, data: st.DataObject) -> None:
        self.group.start_task(data.draw(st.sampled_from(sorted(self.group.members))))

    @precondition(lambda self: self.group.tasks)
    @rule(data=st.data())
    def user_finishes_a_task(self, data: st.DataObject) -> None:
        self.group.finish_task(data.draw(st.sampled_from(sorted(self.group.tasks))))

    @precondition(lambda self: self.group.members)
    @rule(data=st.data())
    def consume_and_commit(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.group.members)))
        self.group.consume(name)
        m = self.group.members[name]
        started = frozenset(self.group.position[name])
        if started and m.state == MEMBER:
            self.group.commit(name, started)

    @rule(ms=st.integers(1, 3 * INTERVAL))
    def time_passes(self, ms: int) -> None:
        self.group.now += ms

    @invariant()
    def no_partition_has_two_owners(self) -> None:
        self.group.check_owners()

    def teardown(self) -> None:
        self.group.settle()


MembershipSimulation.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
TestMembershipSimulation = MembershipSimulation.TestCase


def test_one_to_four_to_one_on_twelve_partitions_converges_each_time() -> None:
    group = Group()
    for name in NAMES[:4]:
        group.add(name)
        group.settle()
        sizes = sorted(len(m.owned) for m in group.members.values())
        assert sum(sizes) == PARTITIONS and sizes[-1] - sizes[0] <= 1
    for name in NAMES[:3]:
        group.consume(NAMES[3])
        group.leave(name)
        group.settle()
    (last,) = group.members.values()
    assert last.owned == ALL
