"""The controller's decisions, case by case (actors/controller/state.py); the property test is
tests/unit/test_controller_model.py."""

from __future__ import annotations

from zafka.actors.controller.state import (
    NO_LEADER,
    AssignmentWrite,
    ControllerState,
    PartitionView,
    Push,
    StateWrite,
    nothing,
    wanted,
)
from zafka.coordination.topic_records import LeaderIsr

EPOCH = 4


def view(replicas, leader, epoch, isr, version=0) -> PartitionView:
    return PartitionView(tuple(replicas), LeaderIsr(leader, epoch, tuple(isr)), version)


def controller(live, **topics) -> ControllerState:
    c = ControllerState(EPOCH)
    c.brokers_changed(live)
    for topic, views in topics.items():
        c.topic_added(topic, dict(enumerate(views)), unclean=False)
    return c


def test_a_dead_leader_is_replaced_by_the_first_live_in_sync_replica() -> None:
    c = controller({1, 2, 3}, orders=[view([1, 2, 3], 1, 5, [1, 3, 2], version=7)])
    decided = c.brokers_changed({2, 3})
    new = LeaderIsr(2, 6, (3, 2), EPOCH)  # assignment order, not ISR order
    assert decided.writes == [StateWrite("orders", 0, new, 7)]
    assert decided.pushes == []  # only once the write is in ZooKeeper
    after = c.written("orders", 0, new, 8)
    assert after.pushes == [
        Push(2, "orders", 0, new, (1, 2, 3), 8),
        Push(3, "orders", 0, new, (1, 2, 3), 8),
    ]
    assert after.writes == [] and after.update_metadata


def test_a_dead_follower_leaves_the_isr_with_a_new_leader_epoch() -> None:
    c = controller({1, 2}, orders=[view([1, 2], 1, 0, [1, 2])])
    assert c.brokers_changed({1}).writes == [
        StateWrite("orders", 0, LeaderIsr(1, 1, (1,), EPOCH), 0)
    ]


def test_without_a_live_in_sync_replica_the_partition_goes_offline_and_returns_with_it() -> None:
    c = controller({1, 2}, orders=[view([1], 1, 3, [1])])
    offline = LeaderIsr(NO_LEADER, 4, (1,), EPOCH)
    assert c.brokers_changed({2}).writes == [StateWrite("orders", 0, offline, 0)]
    assert c.written("orders", 0, offline, 1).writes == []
    back = c.brokers_changed({1, 2})
    assert back.writes == [StateWrite("orders", 0, LeaderIsr(1, 5, (1,), EPOCH), 1)]


def test_unclean_election_takes_a_live_replica_out_of_sync_only_when_the_topic_allows() -> None:
    offline = view([1, 2], NO_LEADER, 3, [1])
    assert wanted(offline, frozenset({2})) is None
    assert wanted(offline, frozenset({2}), unclean=True) == LeaderIsr(2, 4, (2,))


def test_preferred_election_moves_leadership_back_when_the_first_replica_is_in_sync() -> None:
    c = controller({1, 2}, orders=[view([1, 2], 2, 6, [2, 1]), view([1, 2], 2, 6, [2])])
    decided = c.elect_preferred([("orders", 0), ("orders", 1), ("gone", 0)])
    assert decided.writes == [StateWrite("orders", 0, LeaderIsr(1, 7, (2, 1), EPOCH), 0)]
    assert c.elect_preferred().writes == []  # in flight: not decided twice


def test_automatic_rebalance_picks_the_brokers_above_the_imbalance_percentage() -> None:
    led_by_2 = [view([1, 2], 2, 1, [2, 1]) for _ in range(3)]
    balanced = [view([1, 2], 1, 0, [1, 2]) for _ in range(7)]
    c = controller({1, 2}, orders=led_by_2 + balanced, logs=[view([2, 1], 2, 0, [2, 1])])
    assert c.imbalanced(percentage=30) == []  # 3 of broker 1's 10 is 30 %: not above
    assert c.imbalanced(percentage=20) == [("orders", 0), ("orders", 1), ("orders", 2)]
    c.brokers_changed({2})
    assert c.imbalanced(percentage=0) == []  # a dead broker is not rebalanced to


def test_a_returning_broker_hears_about_every_partition_it_holds() -> None:
    c = controller({1}, orders=[view([1, 2], 1, 0, [1])], logs=[view([2], NO_LEADER, 1, [3])])
    decided = c.brokers_changed({1, 2})
    assert decided.pushes == [
        Push(2, "logs", 0, LeaderIsr(NO_LEADER, 1, (3,)), (2,), 0),
        Push(2, "orders", 0, LeaderIsr(1, 0, (1,)), (1, 2), 0),
    ]
    assert decided.writes == [] and decided.update_metadata


def test_a_refused_write_waits_for_the_partition_read_again() -> None:
    c = controller({1, 2}, orders=[view([1, 2], 1, 0, [1, 2])])
    (write,) = c.brokers_changed({2}).writes
    c.rereading("orders", 0)
    assert c.brokers_changed({2}).writes == []  # not decided while being read again
    fresh = LeaderIsr(1, 1, (1, 2), 9)  # someone else wrote meanwhile
    again = c.reloaded("orders", 0, fresh, 5)
    assert again.writes == [StateWrite("orders", 0, LeaderIsr(2, 2, (2,), EPOCH), 5)]
    assert write.version == 0


def test_a_deleted_topic_is_forgotten_and_its_late_write_results_ignored() -> None:
    c = controller({1, 2}, orders=[view([1, 2], 1, 0, [1, 2])])
    c.brokers_changed({2})
    assert c.topic_removed("orders").update_metadata
    assert c.written("orders", 0, LeaderIsr(2, 1, (2,), EPOCH), 1) == nothing()
    assert c.partitions == {} and c.in_flight == set()


def test_a_reassignment_adds_waits_for_the_isr_moves_the_leader_then_drops_the_old() -> None:
    c = controller({1, 2}, orders=[view([1], 1, 0, [1], version=3)])
    (add,) = c.reassign("orders", 0, (2,)).assignments
    assert add == AssignmentWrite("orders", 0, (2, 1), 3)  # the new one first, the old kept
    adding = c.assigned("orders", 0, (2, 1))
    assert [p.broker for p in adding.pushes] == [2, 1] and adding.writes == []  # wait: ISR
    caught_up = LeaderIsr(1, 0, (1, 2), EPOCH)  # the leader added it to the ISR
    c.rereading("orders", 0)
    (lead,) = c.reloaded("orders", 0, caught_up, 4).writes
    assert lead == StateWrite("orders", 0, LeaderIsr(2, 1, (2,), EPOCH), 4)
    (drop,) = c.written("orders", 0, lead.state, 5).assignments
    assert drop == AssignmentWrite("orders", 0, (2,), 5)
    done = c.assigned("orders", 0, (2,))
    assert done.finished == [("orders", 0)] and c.targets == {}
    assert Push(1, "orders", 0, lead.state, (2,), 5) in done.pushes  # broker 1 drops its copy


def test_reads_run_one_at_a_time_and_once_more_when_asked_meanwhile() -> None:
    from zafka.actors.controller.coalesce import OneAtATime

    reads = OneAtATime()
    assert reads.start() and not reads.start() and not reads.start()  # two asks: one more
    assert reads.done() and reads.start()
    assert not reads.done()


def test_a_deleted_topics_failed_write_is_not_waited_for_and_its_return_is_told_anew() -> None:
    c = controller({1, 2}, orders=[view([1, 2], 1, 0, [1, 2])])
    c.brokers_changed({2})
    c.take_changes()
    c.topic_removed("orders")
    c.rereading("orders", 0)  # its write failed after the deletion
    assert c.in_flight == set()
    back = c.topic_added("orders", {0: view([2], 2, 0, [2])}, unclean=False)
    assert back.pushes and c.in_flight == set()
    assert c.take_changes() == ([("orders", 0)], ["orders"])  # old dropped, then the new


def test_a_preferred_election_asked_during_a_write_is_done_when_the_write_is_back() -> None:
    c = controller({1, 2, 3}, orders=[view([1, 2, 3], 2, 4, [2, 1, 3], version=2)])
    (shrink,) = c.brokers_changed({1, 2}).writes  # 3 leaves the ISR: a write in flight
    assert c.elect_preferred([("orders", 0)]).writes == []  # not decided twice ...
    after = c.written("orders", 0, shrink.state, 3)
    assert after.writes == [StateWrite("orders", 0, LeaderIsr(1, 6, (2, 1), EPOCH), 3)]  # ... later
