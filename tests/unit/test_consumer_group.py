"""Group consumers (clients/consumer.py, consumer_group.py, group_member.py) on the memory
network against a fake coordinator built on the real group state machine
(tests/unit/consumer_group_helpers.py): joining, incremental rebalances with callbacks on the
polling thread, commits, fencing, coordinator moves, leaving. Every wait is bounded."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.unit.consumer_group_helpers import TP, Cluster, clusters, wait_until
from zafka.clients.consumer import (
    CommitFailedError,
    Consumer,
    ConsumerRebalanceListener,
    OffsetAndMetadata,
)
from zafka.errors import ZafkaError
from zafka.transport.group import JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest

ORDERS = {"orders": 4}
ALL = {TP("orders", p) for p in range(4)}
MakeCluster = Callable[..., Cluster]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeCluster]:
    with clusters(monkeypatch) as make:
        yield make


class Recorder(ConsumerRebalanceListener):
    """Every callback with its partitions and the thread it ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TP]]] = []
        self.threads: set[threading.Thread] = set()

    def _note(self, kind: str, partitions: set[TP]) -> None:
        self.calls.append((kind, set(partitions)))
        self.threads.add(threading.current_thread())

    def on_partitions_revoked(self, partitions: set[TP]) -> None:
        self._note("revoked", partitions)

    def on_partitions_assigned(self, partitions: set[TP]) -> None:
        self._note("assigned", partitions)

    def on_partitions_lost(self, partitions: set[TP]) -> None:
        self._note("lost", partitions)


class Reader:
    """A consumer and what its polls returned."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.records: list = []

    def poll(self, timeout_ms: int = 10) -> None:
        self.records.extend(self.consumer.poll(timeout_ms))

    def values(self) -> Counter[bytes]:
        return Counter(r.value for r in self.records)


def committed(c: Cluster, group: str = "billing") -> dict[TP, int]:
    with c.lock:
        state = c.group(group)
        return {} if state is None else {tp: o.offset for tp, o in state.committed().items()}


def owners(c: Cluster, group: str = "billing") -> dict[TP, str]:
    """Who owns each partition as the coordinator sees it (assigned or revoking)."""
    with c.lock:
        state = c.group(group)
        assert state is not None
        state.check_invariant()
        return {tp: m.member_id for m in state.members.values() for tp in m.owns()}


def test_a_single_member_gets_every_partition_and_reads_from_the_start(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 3)
    listener = Recorder()
    consumer = c.consumer(group_id="billing", topics=["orders"])
    consumer.subscribe(["orders"], listener=listener)
    reader = Reader(consumer)
    wait_until(lambda: len(reader.records) == 12, "12 records", reader.poll)
    assert listener.calls == [("assigned", ALL)]
    assert listener.threads == {threading.current_thread()}  # the polling thread
    assert consumer.assignment() == ALL
    assert consumer.subscription() == {"orders"}
    assert consumer.lags() == dict.fromkeys(ALL, 0)
    c.append(("orders", 1), 5)  # prefetched by the fetch parked at the log end: not polled
    wait_until(lambda: consumer.lag(("orders", 1)) == 5, "lag 5")
    consumer.commit()
    assert committed(c) == {tp: 3 for tp in ALL} | {
        TP("orders", 1): consumer.position(("orders", 1))
    }
    assert consumer.committed([("orders", 0), ("other", 0)]) == {
        TP("orders", 0): OffsetAndMetadata(3, ""),
        TP("other", 0): None,
    }
    consumer.close()
    assert ("revoked", ALL) in listener.calls  # close revokes, on the closing thread
    with c.lock:
        assert not c.group("billing").members  # it left at once  # type: ignore[union-attr]


def test_a_new_member_starts_at_the_committed_offsets(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 10)
    first = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(lambda: len(first.records) == 40, "40 records", first.poll)
    first.consumer.commit({("orders", 0): 4, TP("orders", 1): OffsetAndMetadata(7, "note")})
    first.consumer.close()  # auto-commit would commit the positions: 10
    assert committed(c) == dict.fromkeys(ALL, 10)
    with c.lock:
        state = c.group("billing")
        assert state.committed()[TP("orders", 1)].offset == 10  # type: ignore[union-attr]
    second = Reader(c.consumer(group_id="billing", topics=["orders"]))
    c.append(("orders", 2), 2)
    wait_until(lambda: len(second.records) == 2, "the 2 new records", second.poll)
    assert second.values() == Counter({b"orders-2:10": 1, b"orders-2:11": 1})
    second.consumer.close()


def test_explicit_commits_without_auto_commit(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 5)
    reader = Reader(c.consumer(group_id="billing", topics=["orders"], enable_auto_commit=False))
    wait_until(lambda: len(reader.records) == 20, "20 records", reader.poll)
    reader.consumer.commit({("orders", 0): OffsetAndMetadata(2, "half")})
    assert reader.consumer.committed([("orders", 0)]) == {
        TP("orders", 0): OffsetAndMetadata(2, "half")
    }
    reader.consumer.close()
    assert committed(c) == {TP("orders", 0): 2}  # no auto-commit on close


def test_a_retried_commit_never_lands_after_a_newer_one(cluster: MakeCluster) -> None:
    """commit_async meets a retriable error; before its retry, a newer commit lands: the
    older one is not sent again, so the committed offset never goes back."""
    c = cluster(ORDERS)
    c.fill("orders", 5)
    reader = Reader(c.consumer(group_id="billing", topics=["orders"], enable_auto_commit=False))
    wait_until(lambda: len(reader.records) == 20, "20 records", reader.poll)
    c.fail("OffsetCommitRequest", "COORDINATOR_NOT_AVAILABLE")
    older = reader.consumer.commit_async({("orders", 0): 5})
    reader.consumer.commit({("orders", 0): 15})
    wait_until(older.done, "the older commit given up", reader.poll)
    assert isinstance(older.exception(), ZafkaError)  # superseded: not retried
    assert committed(c) == {TP("orders", 0): 15}
    reader.consumer.close()


def test_a_second_member_takes_half_and_only_the_moved_partitions_are_revoked(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 5)
    first_listener, second_listener = Recorder(), Recorder()
    first = Reader(c.consumer(group_id="billing"))
    first.consumer.subscribe(["orders"], listener=first_listener)
    wait_until(lambda: len(first.records) == 20, "20 records", first.poll)
    second = Reader(c.consumer(group_id="billing"))
    second.consumer.subscribe(["orders"], listener=second_listener)

    def converged() -> bool:
        first.poll(0)
        second.poll(0)
        mine, theirs = first.consumer.assignment(), second.consumer.assignment()
        assert not mine & theirs  # never two owners, as the members see it
        return len(mine) == len(theirs) == 2 and len(set(owners(c).values())) == 2

    wait_until(converged, "2 + 2 partitions")
    moved = second.consumer.assignment()
    assert first_listener.calls == [("assigned", ALL), ("revoked", moved)]
    assert second_listener.calls == [("assigned", moved)]
    assert first_listener.threads == second_listener.threads == {threading.current_thread()}
    # Revocation committed the positions first, so the newcomer reads nothing twice...
    assert second.records == []
    for tp in ALL:
        c.append(tp, 1)
    wait_until(lambda: len(first.records) + len(second.records) == 24, "4 more", converged)
    # ...and every record was read exactly once.
    assert (first.values() + second.values()) == Counter(
        b"orders-%d:%d" % (p, o) for p in range(4) for o in range(6)
    )
    for reader in (first, second):
        reader.consumer.close()


def test_partitions_that_stay_keep_being_fetched_while_others_are_revoked(
    cluster: MakeCluster,
) -> None:
    """The first member does not poll while it should revoke: records of the partitions it
    keeps still arrive (prefetched, not paused) and are returned by its next poll."""
    c = cluster(ORDERS)
    first = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(lambda: first.consumer.assignment() == ALL, "all 4", first.poll)
    second = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(
        lambda: any(m.revoking for m in c.group("billing").members.values()),  # type: ignore[union-attr]
        "a revocation pending at the first member",
    )
    with c.lock:
        state = c.group("billing")
        (revoking,) = [m for m in state.members.values() if m.revoking]  # type: ignore[union-attr]
        kept = set(revoking.assigned)
    for tp in ALL:
        c.append(tp, 1)
    state = first.consumer._core.state
    wait_until(lambda: all(state.partitions[tp].fetched for tp in kept), "kept partitions fetched")
    first.poll(0)
    assert {TP(r.topic, r.partition) for r in first.records} == kept
    wait_until(lambda: len(second.consumer.assignment()) == 2, "2 moved", second.poll)
    wait_until(lambda: len(second.records) == 2, "their records", second.poll)
    first.consumer.close()
    second.consumer.close()


def test_close_leaves_at_once_and_the_others_take_over(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    readers = [Reader(c.consumer(group_id="billing", topics=["orders"])) for _ in range(2)]

    def polled(check: Callable[[], bool]) -> Callable[[], bool]:
        def run() -> bool:
            for reader in readers:
                reader.poll(0)
            return check()

        return run

    wait_until(polled(lambda: all(len(r.consumer.assignment()) == 2 for r in readers)), "2 + 2")
    readers[0].consumer.close()
    requests = [type(m) for m in c.requests]
    assert LeaveGroupRequest in requests
    readers = readers[1:]
    wait_until(polled(lambda: readers[0].consumer.assignment() == ALL), "all 4 to the other")
    readers[0].consumer.close()


def test_a_static_member_does_not_leave_on_close_and_takes_its_partitions_back(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    first = Reader(c.consumer(group_id="billing", topics=["orders"], group_instance_id="host-a"))
    wait_until(lambda: first.consumer.assignment() == ALL, "all 4", first.poll)
    first.consumer.close()
    assert LeaveGroupRequest not in [type(m) for m in c.requests]
    with c.lock:
        (member,) = c.group("billing").members.values()  # type: ignore[union-attr]
        epoch = c.group("billing").epoch  # type: ignore[union-attr]
    again = Reader(c.consumer(group_id="billing", topics=["orders"], group_instance_id="host-a"))
    wait_until(lambda: again.consumer.assignment() == ALL, "all 4 again", again.poll)
    with c.lock:
        (member,) = c.group("billing").members.values()  # type: ignore[union-attr]
        assert member.instance_id == "host-a"
        assert c.group("billing").epoch == epoch  # type: ignore[union-attr]  # no rebalance
    again.consumer.close()


def test_a_fenced_heartbeat_loses_the_partitions_and_the_member_joins_again(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 2)
    listener = Recorder()
    reader = Reader(c.consumer(group_id="billing", enable_auto_commit=False))
    reader.consumer.subscribe(["orders"], listener=listener)
    wait_until(lambda: len(reader.records) == 8, "8 records", reader.poll)
    reader.consumer.commit({("orders", 0): 1})
    joins = sum(isinstance(m, JoinGroupRequest) for m in c.requests)
    c.fail("HeartbeatRequest", "FENCED_MEMBER_EPOCH")
    wait_until(lambda: ("lost", ALL) in listener.calls, "partitions lost", reader.poll)
    assert sum(isinstance(m, JoinGroupRequest) for m in c.requests) > joins
    wait_until(lambda: reader.consumer.assignment() == ALL, "all 4 again", reader.poll)
    assert listener.calls[-2:] == [("lost", ALL), ("assigned", ALL)]
    assert listener.threads == {threading.current_thread()}
    # Started again from the committed offsets: partition 0 from 1, the others from 0.
    wait_until(lambda: len(reader.records) == 8 + 7, "read again", reader.poll)
    reader.consumer.close()


def test_a_commit_refused_for_a_stale_epoch_raises_and_the_member_joins_again(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 2)
    listener = Recorder()
    reader = Reader(c.consumer(group_id="billing", enable_auto_commit=False))
    reader.consumer.subscribe(["orders"], listener=listener)
    wait_until(lambda: len(reader.records) == 8, "8 records", reader.poll)
    c.fail("OffsetCommitRequest", "FENCED_MEMBER_EPOCH")
    with pytest.raises(CommitFailedError) as raised:
        reader.consumer.commit()
    assert raised.value.error.name == "FENCED_MEMBER_EPOCH"
    assert isinstance(raised.value, ZafkaError)
    # The partitions are lost: a commit now is refused without asking the coordinator.
    sent = sum(isinstance(m, OffsetCommitRequest) for m in c.requests)
    with pytest.raises(CommitFailedError):
        reader.consumer.commit()
    assert sum(isinstance(m, OffsetCommitRequest) for m in c.requests) == sent
    wait_until(lambda: ("lost", ALL) in listener.calls, "lost", reader.poll)
    wait_until(lambda: reader.consumer.assignment() == ALL, "joined again", reader.poll)
    reader.consumer.commit()
    assert committed(c) == dict.fromkeys(ALL, 2)
    reader.consumer.close()


def test_a_member_cut_off_for_its_session_is_removed_and_rejoins(cluster: MakeCluster) -> None:
    """Partitioned from the coordinator past its session: the coordinator removes it and
    gives its partitions to the other member; the member itself counts its partitions as lost
    (no heartbeat answered for a session); its commit is refused; healed, it joins again."""
    c = cluster(ORDERS)
    c.fill("orders", 1)
    lost_listener = Recorder()
    cut = Reader(
        c.consumer(
            group_id="billing",
            session_timeout_ms=300,
            request_timeout_ms=100,
            enable_auto_commit=False,
        )
    )
    cut.consumer.subscribe(["orders"], listener=lost_listener)
    wait_until(lambda: len(cut.records) == 4, "4 records", cut.poll)
    other = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(
        lambda: len(owners(c)) == 4 and len(set(owners(c).values())) == 2,
        "2 + 2",
        lambda: (cut.poll(0), other.poll(0)),
    )
    cut_member = cut.consumer.member_id
    mine = min(cut.consumer.assignment())
    with c.lock:
        c.network.partition([cut.consumer._core.io.node], ["broker-1"])  # type: ignore[attr-defined]
    wait_until(
        lambda: owners(c) == dict.fromkeys(ALL, other.consumer.member_id),
        "all to the other",
        lambda: other.poll(0),
    )
    wait_until(lambda: any(k == "lost" for k, _ in lost_listener.calls), "lost", cut.poll)
    with pytest.raises(CommitFailedError) as raised:
        cut.consumer.commit({mine: 1})
    assert raised.value.error.name == "UNKNOWN_MEMBER_ID"
    with c.lock:
        c.network.heal()
    wait_until(
        lambda: cut_member in owners(c).values(),
        "joined again",
        lambda: (cut.poll(0), other.poll(0)),
    )
    for reader in (cut, other):
        reader.consumer.close()


def test_the_coordinator_is_found_again_after_it_stopped(cluster: MakeCluster) -> None:
    """UNKNOWN_ACTOR from the group's actor: FindCoordinator is asked again (which starts
    it, replaying its log); the member keeps its partitions: nothing is lost or revoked."""
    c = cluster(ORDERS)
    listener = Recorder()
    reader = Reader(c.consumer(group_id="billing"))
    reader.consumer.subscribe(["orders"], listener=listener)
    wait_until(lambda: reader.consumer.assignment() == ALL, "all 4", reader.poll)
    finds = sum(type(m).__name__ == "FindCoordinatorRequest" for m in c.requests)
    c.stop_coordinator("billing")
    wait_until(lambda: c.group("billing") is not None, "coordinator back", reader.poll)
    assert sum(type(m).__name__ == "FindCoordinatorRequest" for m in c.requests) > finds
    c.fill("orders", 1)
    wait_until(lambda: len(reader.records) == 4, "4 records", reader.poll)
    reader.consumer.commit()
    assert committed(c) == dict.fromkeys(ALL, 1)
    assert listener.calls == [("assigned", ALL)]
    reader.consumer.close()


def test_coordinator_errors_are_retried(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    c.fail("FindCoordinatorRequest", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_NOT_AVAILABLE")
    c.fail("JoinGroupRequest", "COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR")
    c.fail("OffsetFetchRequest", "COORDINATOR_LOAD_IN_PROGRESS")
    reader = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(lambda: reader.consumer.assignment() == ALL, "all 4", reader.poll)
    c.fail("OffsetCommitRequest", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS")
    assert [reader.consumer.position(tp) for tp in sorted(ALL)] == [0, 0, 0, 0]
    reader.consumer.commit()
    assert committed(c) == dict.fromkeys(ALL, 0)
    reader.consumer.close()


def test_a_fatal_join_error_is_raised_by_poll(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    c.fail("JoinGroupRequest", "GROUP_MAX_SIZE_REACHED")
    consumer = c.consumer(group_id="billing", topics=["orders"])
    raised: list[ZafkaError] = []

    def poll() -> None:
        try:
            consumer.poll(10)
        except ZafkaError as err:
            raised.append(err)

    wait_until(lambda: bool(raised), "an error", poll)
    assert raised[0].error.name == "GROUP_MAX_SIZE_REACHED"
    consumer.close()


def test_auto_commit_commits_what_earlier_polls_handed_out(cluster: MakeCluster) -> None:
    """At-least-once: a poll commits (when due) the positions of what earlier polls handed
    out, never of what it is about to hand out; in the end everything read is committed."""
    c = cluster({"orders": 1})
    c.fill("orders", 10)
    consumer = c.consumer(
        group_id="billing", topics=["orders"], max_poll_records=3, auto_commit_interval_ms=5
    )
    tp = TP("orders", 0)
    records: list = []

    def poll() -> None:
        before = len(records)  # the position before this poll (one partition, from 0)
        records.extend(consumer.poll(5))
        assert committed(c).get(tp, 0) <= before

    wait_until(lambda: committed(c).get(tp) == 10, "all 10 committed", poll)
    assert [r.offset for r in records] == list(range(10))
    consumer.close()


def test_commit_async_calls_back_on_the_polling_thread(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 1)
    reader = Reader(c.consumer(group_id="billing", topics=["orders"], enable_auto_commit=False))
    wait_until(lambda: len(reader.records) == 4, "4 records", reader.poll)
    calls: list = []
    future = reader.consumer.commit_async(
        callback=lambda offsets, err: calls.append((offsets, err, threading.current_thread()))
    )
    assert future.result(5) is None
    reader.poll(0)
    ((offsets, err, thread),) = calls
    assert err is None and thread is threading.current_thread()
    assert offsets == {tp: OffsetAndMetadata(1) for tp in ALL}
    c.fail("OffsetCommitRequest", "FENCED_MEMBER_EPOCH")
    failed = reader.consumer.commit_async(callback=lambda o, e: calls.append((o, e, None)))
    with pytest.raises(CommitFailedError):
        failed.result(5)
    reader.poll(0)
    assert isinstance(calls[-1][1], CommitFailedError)
    reader.consumer.close()


def test_an_exception_in_a_callback_is_raised_by_poll_after_the_rebalance(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)

    def boom(partitions: set) -> None:
        raise RuntimeError("listener failed")

    consumer = c.consumer(group_id="billing", topics=["orders"], on_partitions_assigned=boom)
    raised: list[Exception] = []

    def poll() -> None:
        try:
            consumer.poll(10)
        except RuntimeError as err:
            raised.append(err)

    wait_until(lambda: bool(raised), "the callback's error", poll)
    assert consumer.assignment() == ALL  # the rebalance went through
    consumer.close()


def test_a_pattern_subscription_and_a_changed_subscription(cluster: MakeCluster) -> None:
    c = cluster({"orders": 2, "audit": 1, "payments": 1})
    reader = Reader(c.consumer(group_id="billing", pattern="or.*|pay.*"))
    expected = {TP("orders", 0), TP("orders", 1), TP("payments", 0)}
    wait_until(lambda: reader.consumer.assignment() == expected, "orders + payments", reader.poll)
    assert reader.consumer.subscription() == "or.*|pay.*"
    reader.consumer.subscribe(["audit"])
    wait_until(lambda: reader.consumer.assignment() == {TP("audit", 0)}, "audit", reader.poll)
    reader.consumer.close()


def test_unsubscribe_leaves_and_manual_assignment_commits_as_no_member(
    cluster: MakeCluster,
) -> None:
    c = cluster(ORDERS)
    c.fill("orders", 3)
    reader = Reader(c.consumer(group_id="billing", topics=["orders"]))
    wait_until(lambda: reader.consumer.assignment() == ALL, "all 4", reader.poll)
    with pytest.raises(ZafkaError) as raised:
        reader.consumer.assign([("orders", 0)])
    assert raised.value.error.name == "INVALID_REQUEST"
    reader.consumer.unsubscribe()
    assert reader.consumer.assignment() == set() and reader.consumer.subscription() is None
    with c.lock:
        assert not c.group("billing").members  # type: ignore[union-attr]
    reader.consumer.assign([("orders", 2)])
    with pytest.raises(ZafkaError) as raised:
        reader.consumer.subscribe(["orders"])
    assert raised.value.error.name == "INVALID_REQUEST"
    reader.consumer.seek(("orders", 2), 0)
    reader.records.clear()
    wait_until(lambda: len(reader.records) == 3, "3 records", reader.poll)
    reader.consumer.commit()  # as no member: accepted, the group is empty
    assert committed(c)[TP("orders", 2)] == 3
    reader.consumer.close()


def test_group_methods_need_a_group_id(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    consumer = c.consumer()
    for call in (
        lambda: consumer.subscribe(["orders"]),
        lambda: consumer.commit(),
        lambda: consumer.commit_async(),
        lambda: consumer.committed([("orders", 0)]),
    ):
        with pytest.raises(ZafkaError) as raised:
            call()
        assert raised.value.error.name == "INVALID_REQUEST"
    assert consumer.subscription() is None and consumer.member_id is None
    consumer.close()


def test_close_while_another_thread_polls_still_leaves(cluster: MakeCluster) -> None:
    c = cluster(ORDERS)
    listener = Recorder()
    consumer = c.consumer(group_id="billing")
    consumer.subscribe(["orders"], listener=listener)
    wait_until(lambda: consumer.assignment() == ALL, "all 4", lambda: consumer.poll(10))
    errors: list[ZafkaError] = []

    def poll_forever() -> None:
        try:
            while True:
                consumer.poll(10_000)
        except ZafkaError as err:
            errors.append(err)

    poller = threading.Thread(target=poll_forever)
    poller.start()
    wait_until(lambda: consumer._polling, "the other thread polls")
    consumer.close()
    poller.join(5)
    assert [e.error.name for e in errors] == ["STOPPED"]
    assert listener.calls == [("assigned", ALL)]  # no callback on the closing thread
    with c.lock:
        assert not c.group("billing").members  # type: ignore[union-attr]
