"""GroupHost: the broker actor's bookkeeping of group coordinators and offsets loaders.

Kept in the `BrokerContext`, so a broker actor restarted after a crash carries on with the
same coordinators. Everything runs on the runtime's thread (from the broker actor's handlers).

- **Leading an offsets partition.** When the broker starts leading partition p of
  `__consumer_offsets` (on start, or when the topic appears), a loader replays all of it
  (`OffsetsLoader`, groups None); meanwhile p is *loading*: coordinators of its groups are
  spawned without a state and answer COORDINATOR_LOAD_IN_PROGRESS. With the result, every
  group found (that is not blank) gets a coordinator with its state, and every coordinator
  already waiting gets its state (a fresh one if the log had nothing of it).
- **Invariant**: once p is loaded, every group of p whose log records are not blank has a
  coordinator here. So a group asked for (FindCoordinator) that has none is blank in the log
  and gets a coordinator with a fresh state, without reading the log. A coordinator stops
  itself only while blank and idle (`GroupGone`), which keeps that true.
- **Reloads.** A coordinator without a state that p being loaded will not serve (it restarted
  after a crash, or an append failed) asks for one (`NeedState`); a loader replays p for that
  group alone.
- **Statuses** (`GroupStatus`, reported by the coordinators once their state is written)
  answer ListGroups without asking every coordinator.
- **Topics**: coordinators are told every topic's partition count (`TopicsChanged`) when
  the broker's view changes (its topic watch, its own creates and deletes).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from zafka import limits
from zafka.actors.group.coordinator import GroupCoordinatorActor
from zafka.actors.group.messages import GroupLoaded, TopicsChanged, is_blank
from zafka.actors.group.offsets_loader import LOADER_PREFIX, OffsetsLoaded, OffsetsLoader
from zafka.actors.group.state import GroupState
from zafka.actors.runtime.actor import Actor
from zafka.errors import BY_NAME
from zafka.transport.envelope import address
from zafka.transport.group import GroupListing, ListGroupsResponse
from zafka.transport.names import group_actor_name


@dataclass(frozen=True)
class GroupSettings:
    """The broker's options for its groups (`zafka broker --group-...`)."""

    heartbeat_interval_ms: int = limits.group_heartbeat_interval_ms
    rebalance_timeout_ms: int = limits.group_rebalance_timeout_ms


class GroupHost:
    """Which coordinators and loaders a broker runs (see the module docstring)."""

    def __init__(self, settings: GroupSettings | None = None) -> None:
        self.settings = settings or GroupSettings()
        self.partition_of: dict[str, int] = {}  # group -> its offsets partition (has an actor)
        self.status: dict[str, str | None] = {}  # group -> its reported state (None: blank)
        self.led: set[int] = set()  # offsets partitions this broker leads
        self.loading: dict[int, str] = {}  # offsets partition -> the loader replaying it all
        self.reloading: dict[str, str] = {}  # group -> the loader replaying it alone
        self.loaders: set[str] = set()
        self.topics: dict[str, int] = {}  # what the coordinators were told last
        self._ids = itertools.count(1)

    def new_state(self, group_id: str) -> GroupState:
        return GroupState(
            group_id,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            rebalance_timeout_ms=self.settings.rebalance_timeout_ms,
        )

    def serves(self, partition: int) -> bool:
        """Whether this broker leads `partition` of `__consumer_offsets`."""
        return partition in self.led

    # --- leading offsets partitions -------------------------------------------------------

    def lead(self, broker: Actor, partitions: list[int]) -> None:
        """This broker now leads `partitions`: replay each before its groups are served."""
        for p in partitions:
            if p not in self.led:
                self.led.add(p)
                self.loading[p] = self._spawn_loader(broker, p, None)

    def unlead_all(self, broker: Actor) -> None:
        """The offsets topic is gone from here: stop every coordinator and loader."""
        runtime = broker._runtime()
        for group_id in list(self.partition_of):
            runtime.despawn(group_actor_name(group_id))
        for name in list(self.loaders):
            runtime.despawn(name)
        self.partition_of.clear()
        self.status.clear()
        self.led.clear()
        self.loading.clear()
        self.reloading.clear()
        self.loaders.clear()

    def _spawn_loader(self, broker: Actor, partition: int, groups: frozenset[str] | None) -> str:
        name = f"{LOADER_PREFIX}{next(self._ids)}"
        factory = partial(OffsetsLoader, name, partition, groups, self.new_state, broker.name)
        broker._runtime().spawn(factory)
        self.loaders.add(name)
        return name

    # --- coordinators ---------------------------------------------------------------------

    def ensure(self, broker: Actor, group_id: str, partition: int) -> None:
        """A coordinator for `group_id` (of offsets partition `partition`, led here) exists."""
        if group_id in self.partition_of:
            return
        state = None if partition in self.loading else self.new_state(group_id)
        self._spawn(broker, group_id, partition, state)

    def _spawn(self, broker: Actor, group_id: str, partition: int, state: GroupState | None):
        # The state goes to the first incarnation only: one restarted after a crash has
        # none and asks for a replay (its state may be what made it crash).
        handed = [state]

        def factory() -> GroupCoordinatorActor:
            return GroupCoordinatorActor(
                group_id,
                partition,
                handed.pop() if handed else None,
                self.topics,
                heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                broker=broker.name,
            )

        self.partition_of[group_id] = partition
        broker._runtime().spawn(factory)

    def on_loaded(self, broker: Actor, loaded: OffsetsLoaded) -> None:
        """A loader is done: hand the states over (spawning coordinators as needed)."""
        broker._runtime().despawn(loaded.loader)
        self.loaders.discard(loaded.loader)
        p = loaded.partition
        if loaded.groups is None:
            if self.loading.get(p) != loaded.loader:
                return  # an older load of a partition no longer (or again) led here
            del self.loading[p]
            waiting = [g for g, q in self.partition_of.items() if q == p]
            wanted = set(waiting) | {g for g, s in loaded.states.items() if not is_blank(s)}
        else:
            wanted = {g for g in loaded.groups if self.reloading.get(g) == loaded.loader}
            for group_id in wanted:
                del self.reloading[group_id]
        for group_id in sorted(wanted):
            state = loaded.states.get(group_id) or self.new_state(group_id)
            if group_id in self.partition_of:
                target = address(broker._runtime().node, group_actor_name(group_id))
                broker.cast(target, GroupLoaded(state, dict(self.topics)))
            else:
                self._spawn(broker, group_id, p, state)

    def on_need_state(self, broker: Actor, group_id: str) -> None:
        """A coordinator has no state: replay its group, unless a load is on its way."""
        partition = self.partition_of.get(group_id)
        if partition is None or partition in self.loading or group_id in self.reloading:
            return
        self.reloading[group_id] = self._spawn_loader(broker, partition, frozenset({group_id}))

    def on_status(self, group_id: str, state: str | None) -> None:
        if group_id in self.partition_of:
            self.status[group_id] = state

    def on_gone(self, group_id: str) -> None:
        self.partition_of.pop(group_id, None)
        self.status.pop(group_id, None)

    def topics_changed(self, broker: Actor, topics: Mapping[str, int]) -> None:
        """Tell every coordinator, if the broker's view of the topics changed."""
        if dict(topics) == self.topics:
            return
        self.topics = dict(topics)
        node = broker._runtime().node
        for group_id in self.partition_of:
            broker.cast(address(node, group_actor_name(group_id)), TopicsChanged(self.topics))

    def list_groups(self) -> ListGroupsResponse:
        """The groups coordinated here (not blank), or COORDINATOR_LOAD_IN_PROGRESS while a
        partition is being replayed (its groups are not known yet)."""
        if self.loading:
            return ListGroupsResponse(BY_NAME["COORDINATOR_LOAD_IN_PROGRESS"].code, ())
        listed = [GroupListing(g, s) for g, s in sorted(self.status.items()) if s is not None]
        return ListGroupsResponse(0, tuple(listed))
