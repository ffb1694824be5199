"""The controller's decisions: who leads each partition. Pure: no ZooKeeper, sockets or clock.

Kafka's ZooKeeper-era controller is the model (shared/DESIGN.md §6). One broker is the
controller (coordination/controller.py elects it); this machine is what it decides, and its
actor shell (actors/controller/actor.py) does the I/O: it feeds in what ZooKeeper says (the
live brokers, every partition's replicas and state with its znode version), performs the
`StateWrite`s this returns (each a ZooKeeper transaction that also checks the controller
epoch, so a deposed controller writes nothing), feeds each outcome back, and sends the
`Push`es (LeaderAndIsr to the replicas of a partition whose state was written, and
UpdateMetadata to every live broker).

**Reconciliation, not events.** For every partition the machine compares the state it knows
with the one it wants (`wanted`) and writes the difference. A partition with a write in
flight is not decided again until that write's outcome comes back (`written` or `rereading`:
a refused write means someone else wrote; the shell reads the partition again and hands the
fresh state to `reloaded`), so two writes of one controller never race each other.

What `wanted` decides for a partition with replicas R, state S and live brokers L:

- the leader is live: drop dead brokers from the ISR (leader epoch + 1, as Kafka's
  controller does); on a preferred election, move leadership to R[0] when it is live, in
  the ISR and not the leader (leader epoch + 1);
- the leader is dead (or there is none): the first replica of R that is live and in the ISR
  leads, with the ISR's live members (leader epoch + 1); with none, the partition goes
  offline: leader -1, the ISR kept as it was, so a member of it that returns is elected
  (an unclean election instead takes the first live replica, ISR = [it], when the topic
  allows it: `unclean.leader.election.enable=true`).

Invariants (tests/unit/test_controller_model.py checks them): a leader is always in the
ISR; leader epochs only grow; one leader epoch of a partition never has two leaders; only
live brokers are elected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from zafka.actors.controller.reassignment import Assign, Done, next_step
from zafka.coordination.topic_records import LeaderIsr

NO_LEADER = -1
Key = tuple[str, int]  # (topic, partition)


class PartitionView(NamedTuple):
    """What the controller knows of one partition: its replicas (the first is the preferred
    leader), its state as ZooKeeper holds it, and that znode's version."""

    replicas: tuple[int, ...]
    state: LeaderIsr
    version: int


class StateWrite(NamedTuple):
    """Write `state` to the partition's state znode, if its version is still `version`."""

    topic: str
    partition: int
    state: LeaderIsr
    version: int


class Push(NamedTuple):
    """Tell broker `broker` the state of a partition (LeaderAndIsr): it leads, follows, or
    (not among `replicas` any more) drops it."""

    broker: int
    topic: str
    partition: int
    state: LeaderIsr
    replicas: tuple[int, ...]
    version: int  # of the partition's state znode holding `state`


class AssignmentWrite(NamedTuple):
    """Write the replicas of one partition into its topic's assignment (a reassignment), if
    the partition's state znode is still at `version` (its ISR as decided on)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    version: int


class Decisions(NamedTuple):
    writes: list[StateWrite]
    pushes: list[Push]
    update_metadata: bool  # send every live broker the cluster's metadata
    assignments: list[AssignmentWrite]
    finished: list[Key]  # reassignments done: the shell deletes their znodes


def nothing(update_metadata: bool = False) -> Decisions:
    return Decisions([], [], update_metadata, [], [])


@dataclass
class ControllerState:
    """One controller's view and decisions for its `controller_epoch` (see the module
    docstring). `unclean` names the topics that allow unclean leader election."""

    controller_epoch: int
    live: frozenset[int] = frozenset()
    partitions: dict[Key, PartitionView] = field(default_factory=dict)
    unclean: frozenset[str] = frozenset()
    in_flight: set[Key] = field(default_factory=set)  # a write is with ZooKeeper
    targets: dict[Key, tuple[int, ...]] = field(default_factory=dict)  # reassignments
    preferring: set[Key] = field(default_factory=set)  # preferred elections asked in flight
    changed: set[Key] = field(default_factory=set)  # views changed since `take_changes`
    removed: set[str] = field(default_factory=set)  # topics removed since `take_changes`

    # --- inputs ---------------------------------------------------------------------------

    def brokers_changed(self, live: Iterable[int]) -> Decisions:
        """The live brokers are now `live`: elect where leaders died, shrink ISRs, and bring
        returned brokers up to date with every partition they hold."""
        before, self.live = self.live, frozenset(live)
        back = self.live - before
        decided = self._decide(self.partitions)
        for key, view in sorted(self.partitions.items()):
            if key not in self.in_flight and any(r in back for r in view.replicas):
                decided.pushes.extend(_push(view, key, [r for r in view.replicas if r in back]))
        return decided._replace(update_metadata=decided.update_metadata or bool(back))

    def topic_added(
        self, topic: str, views: Mapping[int, PartitionView], unclean: bool
    ) -> Decisions:
        """A topic (created, or found at start) with its partitions' views."""
        if unclean:
            self.unclean = self.unclean | {topic}
        added = {(topic, p): view for p, view in views.items()}
        self.partitions.update(added)
        self.changed |= set(added)  # (a topic removed and added again stays in `removed`:
        # the brokers drop the old partitions before they take the new ones)
        decided = self._decide(added)
        for key, view in sorted(added.items()):
            if key not in self.in_flight:
                decided.pushes.extend(_push(view, key, self._live_replicas(view)))
        return decided._replace(update_metadata=True)

    def topic_removed(self, topic: str) -> Decisions:
        """The topic is gone: forget its partitions (their brokers delete their replicas)."""
        gone = [key for key in self.partitions if key[0] == topic]
        for key in gone:
            del self.partitions[key]
            self.changed.discard(key)
            self.preferring.discard(key)
            self.in_flight.discard(key)
            self.targets.pop(key, None)
        self.unclean = self.unclean - {topic}
        if gone:
            self.removed.add(topic)
        return nothing(bool(gone))

    def elect_preferred(self, keys: Iterable[Key] | None = None) -> Decisions:
        """Move leadership back to each partition's preferred replica (of `keys`, default
        all) where it is live and in sync (unknown keys are ignored)."""
        chosen = dict(self.partitions)
        if keys is not None:
            chosen = {k: self.partitions[k] for k in keys if k in self.partitions}
        self.preferring |= {k for k in chosen if k in self.in_flight}  # decided when back
        return self._decide(chosen, preferred=True)

    def imbalanced(self, percentage: int) -> list[Key]:
        """The partitions to elect their preferred leader again, as Kafka's automatic
        rebalance picks them: of every live broker whose share of the partitions it prefers
        but does not lead is above `percentage`, those partitions."""
        preferred_by: dict[int, list[Key]] = {}
        for key, view in self.partitions.items():
            preferred_by.setdefault(view.replicas[0], []).append(key)
        chosen = []
        for broker, keys in sorted(preferred_by.items()):
            lost = [k for k in keys if self.partitions[k].state.leader != broker]
            if broker in self.live and lost and 100 * len(lost) > percentage * len(keys):
                chosen.extend(sorted(lost))
        return chosen

    def written(self, topic: str, partition: int, state: LeaderIsr, version: int) -> Decisions:
        """A write succeeded: `state` is in ZooKeeper at `version`. Its replicas learn it; the
        partition is decided again (the cluster may have changed meanwhile)."""
        key = (topic, partition)
        self.in_flight.discard(key)
        view = self.partitions.get(key)
        if view is None:  # the topic was deleted meanwhile
            return nothing()
        view = self.partitions[key] = PartitionView(view.replicas, state, version)
        self.changed.add(key)
        again = self._decide({key: view})
        again.pushes[:0] = _push(view, key, self._live_replicas(view))
        return again._replace(update_metadata=True)

    def reassign(self, topic: str, partition: int, target: tuple[int, ...]) -> Decisions:
        """Move the partition's replicas to `target` (reassignment.py says how)."""
        key = (topic, partition)
        if key not in self.partitions or not target:
            return nothing()
        self.targets[key] = tuple(target)
        return self._decide({key: self.partitions[key]})

    def assigned(self, topic: str, partition: int, replicas: tuple[int, ...]) -> Decisions:
        """An assignment write succeeded: the partition's replicas are `replicas`. Every
        live broker that holds or held it learns it (one no longer among them drops it)."""
        key = (topic, partition)
        self.in_flight.discard(key)
        view = self.partitions.get(key)
        if view is None:
            return nothing()
        told = [b for b in dict.fromkeys((*replicas, *view.replicas)) if b in self.live]
        view = self.partitions[key] = PartitionView(replicas, view.state, view.version)
        self.changed.add(key)
        again = self._decide({key: view})
        again.pushes[:0] = _push(view, key, told)
        return again._replace(update_metadata=True)

    def rereading(self, topic: str, partition: int) -> None:
        """The shell reads the partition again and then calls `reloaded`: a write was
        refused (the znode's version moved), or its leader wrote a new ISR. Until then the
        partition is not decided."""
        if (topic, partition) in self.partitions:  # a deleted topic's are not waited for
            self.in_flight.add((topic, partition))

    def reloaded(self, topic: str, partition: int, state: LeaderIsr, version: int) -> Decisions:
        """The partition's state as ZooKeeper holds it now (after a refused write)."""
        key = (topic, partition)
        self.in_flight.discard(key)
        view = self.partitions.get(key)
        if view is None:
            return nothing()
        self.partitions[key] = PartitionView(view.replicas, state, version)
        self.changed.add(key)
        return self._decide({key: self.partitions[key]})

    def take_changes(self) -> tuple[list[Key], list[str]]:
        """The partitions whose view changed and the topics removed since the last call
        (what UpdateMetadata tells the brokers), sorted; forgotten here."""
        changed, removed = sorted(self.changed), sorted(self.removed)
        self.changed, self.removed = set(), set()
        return changed, removed

    # --- deciding -------------------------------------------------------------------------

    def _decide(self, views: Mapping[Key, PartitionView], preferred: bool = False) -> Decisions:
        decided = nothing()
        for key, view in sorted(views.items()):
            if key in self.in_flight:
                continue
            wants_preferred = preferred or key in self.preferring
            self.preferring.discard(key)
            state = wanted(view, self.live, wants_preferred, key[0] in self.unclean)
            if state is None and key in self.targets:
                step = next_step(view, self.targets[key], self.live)
                if isinstance(step, Done):
                    del self.targets[key]
                    decided.finished.append(key)
                elif isinstance(step, Assign):
                    write = AssignmentWrite(*key, step.replicas, view.version)
                    decided.assignments.append(write)
                    self.in_flight.add(key)
                else:
                    state = step
            if state is None:
                continue
            state = _stamped(state, self.controller_epoch)
            decided.writes.append(StateWrite(key[0], key[1], state, view.version))
            self.in_flight.add(key)
        return decided

    def _live_replicas(self, view: PartitionView) -> list[int]:
        return [r for r in view.replicas if r in self.live]


def wanted(
    view: PartitionView, live: frozenset[int], preferred: bool = False, unclean: bool = False
) -> LeaderIsr | None:
    """The state the partition should have, or None when it has it (module docstring)."""
    state = view.state
    isr = tuple(i for i in state.isr if i in live)
    if state.leader in live:
        first = view.replicas[0]
        if preferred and first != state.leader and first in isr:
            return _next(state, first, isr)
        return None if isr == state.isr else _next(state, state.leader, isr)
    in_sync = [r for r in view.replicas if r in isr]
    if in_sync:
        return _next(state, in_sync[0], isr)
    live_replicas = [r for r in view.replicas if r in live]
    if unclean and live_replicas:
        return _next(state, live_replicas[0], (live_replicas[0],))
    if state.leader == NO_LEADER:
        return None
    return _next(state, NO_LEADER, state.isr)


def _next(state: LeaderIsr, leader: int, isr: tuple[int, ...]) -> LeaderIsr:
    return LeaderIsr(leader, state.leader_epoch + 1, isr, state.controller_epoch)


def _stamped(state: LeaderIsr, controller_epoch: int) -> LeaderIsr:
    return LeaderIsr(state.leader, state.leader_epoch, state.isr, controller_epoch)


def _push(view: PartitionView, key: Key, brokers: Iterable[int]) -> Iterable[Push]:
    for broker in brokers:
        yield Push(broker, key[0], key[1], view.state, view.replicas, view.version)
