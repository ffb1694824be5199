"""Property test of the controller's state machine (actors/controller/state.py): random broker
deaths and returns, topic creations and deletions, preferred elections, reassignments,
followers joining the ISR (written by their leader, as AlterIsr will), controller
take-overs, and the ZooKeeper writes delivered in any order, refused when their version or
the controller epoch moved (as coordination/controller.py's transactions are). This test is
the shell; `zk` is ZooKeeper.

Invariants: a leader is always in the ISR; leader epochs only grow; one leader epoch of a
partition never has two leaders; only brokers the controller sees live are elected; a
controller never has two writes of one partition in flight; a deposed controller's writes
all fail; once every write is delivered, the controller's view is ZooKeeper's and every
partition is led by a live broker with only live brokers in sync, or is offline because no
replica it may elect is live; a reassignment left unfinished waits for replicas to join
the ISR (or for a live leader), and one finished has its target replicas."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from zafka.actors.controller.reassignment import next_step
from zafka.actors.controller.state import (
    NO_LEADER,
    AssignmentWrite,
    ControllerState,
    Decisions,
    PartitionView,
    StateWrite,
    wanted,
)
from zafka.coordination.topic_records import LeaderIsr

BROKERS = range(5)


class ControllerModel(RuleBasedStateMachine):
    @initialize(live=st.sets(st.sampled_from(BROKERS), min_size=1))
    def start(self, live: set[int]) -> None:
        self.live = set(live)
        self.zk: dict[tuple[str, int], tuple[tuple[int, ...], LeaderIsr, int]] = {}
        self.zk_epoch = 1  # the controller epoch znode
        self.controller = ControllerState(1)
        self.deposed: list[ControllerState] = []
        # Writes in flight, each with what it was decided under: (reassignment target, live).
        self.pending: list[tuple[ControllerState, StateWrite | AssignmentWrite, tuple]] = []
        self.targets: dict[tuple[str, int], tuple[int, ...]] = {}  # reassignments asked
        self.leaders: dict[tuple[str, int, int], int] = {}  # (topic, p, leader epoch) -> leader
        self.topics = 0
        self._apply(self.controller, self.controller.brokers_changed(self.live))

    def _apply(self, controller: ControllerState, decided: Decisions) -> None:
        for write in decided.writes:
            assert write.state.leader == NO_LEADER or write.state.leader in controller.live
            key = (write.topic, write.partition)
            racing = [
                w for c, w, _ in self.pending if c is controller and (w.topic, w.partition) == key
            ]
            assert not racing, f"two writes of one controller race on {key}"
            seen = (controller.targets.get(key, ()), controller.live)
            self.pending.append((controller, write, seen))
        for assignment in decided.assignments:
            key = (assignment.topic, assignment.partition)
            seen = (controller.targets.get(key, ()), controller.live)
            self.pending.append((controller, assignment, seen))
        for push in decided.pushes:
            assert push.broker in controller.live  # one not in push.replicas drops its copy
        for key in decided.finished:
            assert self.zk[key][0] == self.targets.pop(key), "finished, but not moved"

    # --- the cluster --------------------------------------------------------------------------

    @rule(broker=st.sampled_from(BROKERS))
    def kill_or_revive(self, broker: int) -> None:
        self.live ^= {broker}
        for old in self.deposed:  # a deposed controller may still act on what it sees
            self._apply(old, old.brokers_changed(self.live))
        self._apply(self.controller, self.controller.brokers_changed(self.live))

    @rule(data=st.data(), partitions=st.integers(1, 3), unclean=st.booleans())
    def create_topic(self, data: st.DataObject, partitions: int, unclean: bool) -> None:
        self.topics += 1
        topic = f"t{self.topics}"  # names are never reused (deletion waits for its writes)
        views = {}
        for p in range(partitions):
            replicas = tuple(
                data.draw(st.lists(st.sampled_from(BROKERS), min_size=1, max_size=3, unique=True))
            )
            state = LeaderIsr(replicas[0], 0, replicas, self.zk_epoch)
            self.zk[(topic, p)] = (replicas, state, 0)
            self.leaders[(topic, p, 0)] = replicas[0]
            views[p] = PartitionView(replicas, state, 0)
        self._apply(self.controller, self.controller.topic_added(topic, views, unclean))

    @rule(data=st.data())
    def delete_topic(self, data: st.DataObject) -> None:
        topics = sorted({t for t, _ in self.zk})
        if topics:
            topic = data.draw(st.sampled_from(topics))
            self.zk = {k: v for k, v in self.zk.items() if k[0] != topic}
            self.targets = {k: v for k, v in self.targets.items() if k[0] != topic}
            self._apply(self.controller, self.controller.topic_removed(topic))

    @rule()
    def preferred_election(self) -> None:
        self._apply(self.controller, self.controller.elect_preferred())

    @rule(data=st.data())
    def reassign(self, data: st.DataObject) -> None:
        if self.zk:
            key = data.draw(st.sampled_from(sorted(self.zk)))
            brokers = st.lists(st.sampled_from(BROKERS), min_size=1, max_size=3, unique=True)
            target = tuple(data.draw(brokers))
            self.targets[key] = target
            self._apply(self.controller, self.controller.reassign(*key, target))

    @rule(data=st.data())
    def follower_catches_up(self, data: st.DataObject) -> None:
        """A live leader adds a live replica to the ISR and tells the controller."""
        behind = [
            (key, r)
            for key, (replicas, state, _) in sorted(self.zk.items())
            for r in replicas
            if state.leader in self.live and r in self.live and r not in state.isr
        ]
        if not behind:
            return
        key, replica = data.draw(st.sampled_from(behind))
        replicas, state, version = self.zk[key]
        grown = LeaderIsr(
            state.leader, state.leader_epoch, (*state.isr, replica), state.controller_epoch
        )
        self.zk[key] = (replicas, grown, version + 1)
        if key not in self.controller.in_flight:  # else the refused write reads it again
            self.controller.rereading(*key)
            self._apply(self.controller, self.controller.reloaded(*key, grown, version + 1))

    @rule()
    def take_over(self) -> None:
        """A new controller is elected: the controller epoch grows; the old one is deposed."""
        unclean = self.controller.unclean  # a topic config, read from ZooKeeper
        self.deposed.append(self.controller)
        self.zk_epoch += 1
        self.controller = ControllerState(self.zk_epoch)
        self._apply(self.controller, self.controller.brokers_changed(self.live))
        by_topic: dict[str, dict[int, PartitionView]] = {}
        for (topic, p), (replicas, state, version) in self.zk.items():
            by_topic.setdefault(topic, {})[p] = PartitionView(replicas, state, version)
        for topic, views in sorted(by_topic.items()):
            added = self.controller.topic_added(topic, views, topic in unclean)
            self._apply(self.controller, added)
        for key, target in sorted(self.targets.items()):  # read from their znodes
            self._apply(self.controller, self.controller.reassign(*key, target))

    # --- ZooKeeper ------------------------------------------------------------------------------

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.pending) - 1))
        self._deliver(*self.pending.pop(index))

    def _deliver(
        self, writer: ControllerState, write: StateWrite | AssignmentWrite, seen: tuple
    ) -> None:
        key = (write.topic, write.partition)
        fenced = writer.controller_epoch != self.zk_epoch
        if fenced:
            assert writer is not self.controller
        if key not in self.zk or fenced:
            return  # gone, or fenced by the controller epoch: the deposed one learns nothing
        replicas, state, version = self.zk[key]
        if write.version != version:
            writer.rereading(*key)
            self._apply(writer, writer.reloaded(*key, state, version))
            return
        if isinstance(write, AssignmentWrite):  # the topic's znode, checking the state's
            assert set(state.isr) <= set(write.replicas), "a replica in sync was dropped"
            self.zk[key] = (write.replicas, state, version)
            self._apply(writer, writer.assigned(*key, write.replicas))
            return
        new = write.state
        target, live = seen
        for dropped in set(state.isr) - set(new.isr):  # only the dead, or once moved away
            assert dropped not in live or set(target) <= set(state.isr), (state, new)
        assert new.leader_epoch > state.leader_epoch, (state, new)
        assert new.leader == NO_LEADER or new.leader in new.isr, new
        if new.leader != NO_LEADER:
            seen = self.leaders.setdefault((*key, new.leader_epoch), new.leader)
            assert seen == new.leader, f"two leaders in epoch {new.leader_epoch} of {key}"
        self.zk[key] = (replicas, new, version + 1)
        self._apply(writer, writer.written(*key, new, version + 1))

    @rule()
    def settle(self) -> None:
        """Deliver everything: the controller then wants nothing more and sees ZooKeeper."""
        for _ in range(1000):
            if not self.pending:
                break
            self._deliver(*self.pending.pop(0))
        assert not self.pending, "the controller keeps writing"
        controller = self.controller
        assert controller.in_flight == set()
        for key, (replicas, state, version) in self.zk.items():
            assert controller.partitions[key] == PartitionView(replicas, state, version)
            unclean = key[0] in controller.unclean
            assert wanted(controller.partitions[key], controller.live, False, unclean) is None
            if state.leader != NO_LEADER:  # led by a live broker, with only live ones in sync
                assert state.leader in self.live and set(state.isr) <= self.live, state
            else:  # offline only while no replica it may elect is live
                assert not set(replicas if unclean else state.isr) & self.live, state
        for key, target in controller.targets.items():  # waiting, never stuck with work
            assert next_step(controller.partitions[key], target, controller.live) is None

    @invariant()
    def leaders_are_in_sync(self) -> None:
        for _, state, _ in self.zk.values():
            assert state.leader == NO_LEADER or state.leader in state.isr


ControllerModel.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestControllerModel = ControllerModel.TestCase
