"""Moving a partition's replicas (Kafka's reassignment, KIP-455's order), one step at a time.
Pure: `next_step` looks at one partition's view and its target replicas and says what to do
next; the controller's state (state.py) asks it whenever the partition has no leader or ISR
work to do, and performs the step (each a version-checked ZooKeeper write).

For replicas R moving to target T:

1. the assignment becomes T followed by the replicas of R not in T (the new replicas are
   added; LeaderAndIsr tells them to follow, so they fetch until they are in sync);
2. wait until every replica of T is in the ISR (the leader adds a follower that caught up);
3. if the leader is not in T, the first replica of T that is live and in the ISR leads
   (leader epoch + 1);
4. the replicas not in T leave the ISR (leader epoch + 1);
5. the assignment becomes T; the removed replicas are told (LeaderAndIsr without them) and
   delete their copy. Done (a move that removes nothing is done once T is in the ISR).

A reassignment never loses the ISR: the old replicas stay in it until the new ones joined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from zafka.coordination.topic_records import LeaderIsr

if TYPE_CHECKING:
    from zafka.actors.controller.state import PartitionView


class Assign(NamedTuple):
    """Write the partition's replicas in the topic's assignment."""

    replicas: tuple[int, ...]


class Done(NamedTuple):
    """The partition has its target replicas: the reassignment is over."""


Step = Assign | Done | LeaderIsr | None  # None: wait (for the ISR, or a live leader)


def next_step(view: PartitionView, target: tuple[int, ...], live: frozenset[int]) -> Step:
    """What moving `view`'s replicas to `target` needs next (see the module docstring)."""
    replicas, state = view.replicas, view.state
    if replicas == target:  # done once every replica of it is in sync (none was removed)
        return Done() if set(target) <= set(state.isr) else None
    if set(target) - set(replicas):
        return Assign((*target, *(r for r in replicas if r not in target)))
    if not set(target) <= set(state.isr):
        return None
    isr = tuple(r for r in state.isr if r in target)
    if state.leader not in target:
        leaders = [r for r in target if r in state.isr and r in live]
        if not leaders:
            return None
        return LeaderIsr(leaders[0], state.leader_epoch + 1, isr, state.controller_epoch)
    if isr != state.isr:
        return LeaderIsr(state.leader, state.leader_epoch + 1, isr, state.controller_epoch)
    return Assign(target)
