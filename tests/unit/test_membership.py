"""The member's side of the group protocol (clients/membership.py), pure: what it sends, what
it owns, what the user's thread must revoke, start or drop, and when it is fenced. One clock
in the tests' hands; no threads, no I/O."""

from __future__ import annotations

import pytest

from zafka.clients.membership import (
    ASSIGN,
    FAILED,
    JOINING,
    LEAVING,
    LOST,
    MEMBER,
    REVOKE,
    UNSUBSCRIBED,
    Assignment,
    CommitFailedError,
    Membership,
    to_groups,
    to_tps,
)
from zafka.errors import ZafkaError
from zafka.transport.group import TopicPartitions
from zafka.transport.names import TopicPartition

TP = TopicPartition
P0, P1, P2, P3 = (TP("orders", p) for p in range(4))
INTERVAL = 100


def member(**kwargs: object) -> Membership:
    m = Membership("billing", "m-1", session_timeout_ms=1000, **kwargs)  # type: ignore[arg-type]
    m.subscribe(["orders"])
    return m


def answer(epoch: int, *tps: TopicPartition) -> Assignment:
    return Assignment(epoch, INTERVAL, frozenset(tps))


def joined(m: Membership, epoch: int, *tps: TopicPartition, now: int = 0) -> None:
    out = m.outgoing(now)
    assert out.join is not None
    m.on_join(out.generation, answer(epoch, *tps), now)


def start_all(m: Membership, offsets: dict[TopicPartition, int], now: int = 0) -> None:
    """The OffsetFetch for the new partitions answered, and the ASSIGN task done."""
    out = m.outgoing(now)
    assert out.offset_fetch is not None
    m.on_offsets(out.generation, offsets, now)
    task = m.next_task()
    assert task is not None and task.kind == ASSIGN
    m.done(task)


def heartbeat(m: Membership, now: int) -> tuple[int, frozenset[TopicPartition]]:
    out = m.outgoing(now)
    assert out.heartbeat is not None, out
    return out.generation, to_tps(out.heartbeat.owned)


def test_wire_forms_of_partitions_round_trip() -> None:
    tps = {P2, P0, TP("audit", 3)}
    groups = to_groups(tps)
    assert groups == (TopicPartitions("audit", (3,)), TopicPartitions("orders", (0, 2)))
    assert to_tps(groups) == tps


def test_a_join_then_committed_offsets_then_the_partitions_start() -> None:
    m = member(instance_id="host-1", assignor="range")
    out = m.outgoing(0)
    assert out.join is not None and out.heartbeat is None
    assert out.join.member_id == "m-1" and out.join.instance_id == "host-1"
    assert out.join.subscription == ("orders",) and out.join.subscription_pattern is None
    assert out.join.assignor == "range" and out.join.session_timeout_ms == 1000
    assert m.outgoing(0).join is None  # one join in flight
    m.on_join(out.generation, answer(3, P0, P1), 0)
    assert (m.state, m.epoch, m.heartbeat_interval_ms) == (MEMBER, 3, INTERVAL)
    assert m.next_task() is None  # committed offsets first
    out = m.outgoing(0)
    assert out.heartbeat is None and out.wake_ms == INTERVAL
    assert out.offset_fetch is not None and to_tps(out.offset_fetch.partitions or ()) == {P0, P1}
    m.on_offsets(out.generation, {P0: 42}, 0)
    task = m.next_task()
    assert task is not None and task.kind == ASSIGN
    assert dict(task.offsets) == {P0: 42, P1: -1}
    assert m.owned == {P0, P1}  # owned from the moment the task is handed out
    m.done(task)
    assert m.next_task() is None
    _, owned = heartbeat(m, INTERVAL)
    assert owned == {P0, P1}


def test_a_revocation_is_confirmed_by_a_heartbeat_at_once_after_the_user_is_done() -> None:
    m = member()
    joined(m, 1, P0, P1)
    start_all(m, {})
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, answer(1, P1), INTERVAL)
    task = m.next_task()
    assert task is not None and (task.kind, task.partitions) == (REVOKE, {P0})
    # Until the user's thread is done, heartbeats still list P0: it is still being consumed.
    generation, owned = heartbeat(m, 2 * INTERVAL)
    assert owned == {P0, P1}
    m.on_heartbeat(generation, answer(1, P1), 2 * INTERVAL)
    assert m.commit_as([P0, P1]) == ("m-1", 1, m.generation)  # it may commit P0 first
    m.done(task)
    assert m.owned == {P1}
    _, owned = heartbeat(m, 2 * INTERVAL + 1)  # at once, not after the interval
    assert owned == {P1}
    with pytest.raises(CommitFailedError) as raised:
        m.commit_as([P0])
    assert raised.value.error.name == "FENCED_MEMBER_EPOCH"


def test_partitions_that_stay_are_never_part_of_a_task() -> None:
    m = member()
    joined(m, 1, P0, P1, P2)
    start_all(m, {})
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, answer(1, P1, P2), INTERVAL)
    task = m.next_task()
    assert task is not None and task.partitions == {P0}
    m.done(task)
    generation, _ = heartbeat(m, INTERVAL + 1)
    m.on_heartbeat(generation, answer(2, P1, P2, P3), INTERVAL + 1)
    out = m.outgoing(INTERVAL + 1)
    assert out.offset_fetch is not None and to_tps(out.offset_fetch.partitions or ()) == {P3}
    m.on_offsets(out.generation, {}, INTERVAL + 1)
    task = m.next_task()
    assert task is not None and task.kind == ASSIGN and task.partitions == {P3}


def test_fencing_loses_everything_and_joins_again_once_the_loss_is_handled() -> None:
    m = member()
    joined(m, 1, P0, P1)
    start_all(m, {})
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, ZafkaError("FENCED_MEMBER_EPOCH", "epoch 1 < 2"), INTERVAL)
    assert m.state == JOINING and m.owned == frozenset() and m.lost == {P0, P1}
    # No join while the user's thread may still be processing the lost partitions: joining
    # hands them on to their next owners.
    assert m.outgoing(INTERVAL).join is None
    with pytest.raises(CommitFailedError) as raised:
        m.commit_as([P0])
    assert raised.value.error.name == "FENCED_MEMBER_EPOCH"
    assert isinstance(raised.value, ZafkaError)
    lost = m.next_task()
    assert lost is not None and (lost.kind, lost.partitions) == (LOST, {P0, P1})
    m.done(lost)
    out = m.outgoing(INTERVAL)
    assert out.join is not None and out.join.member_id == "m-1"  # the same member id
    m.on_join(out.generation, answer(5, P0), INTERVAL)
    with pytest.raises(CommitFailedError):  # not started again yet
        m.commit_as([P0])
    start_all(m, {P0: 7}, INTERVAL)
    assert m.commit_as([P0]) == ("m-1", 5, m.generation)


def test_unknown_member_id_is_fencing_too() -> None:
    m = member()
    joined(m, 1, P0)
    start_all(m, {})
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, ZafkaError("UNKNOWN_MEMBER_ID", "expired"), INTERVAL)
    assert m.lost == {P0} and m.state == JOINING
    with pytest.raises(CommitFailedError) as raised:
        m.commit_as([P0])
    assert raised.value.error.name == "UNKNOWN_MEMBER_ID"


def test_a_task_of_an_older_generation_changes_nothing() -> None:
    m = member()
    joined(m, 1, P0, P1)
    start_all(m, {})
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, answer(1, P1), INTERVAL)
    revoke = m.next_task()
    assert revoke is not None and revoke.kind == REVOKE
    m.fence(ZafkaError("UNKNOWN_MEMBER_ID", "expired while the callback ran"))
    m.done(revoke)
    assert m.lost == {P0, P1}  # still to drop, with on_partitions_lost
    lost = m.next_task()
    assert lost is not None and lost.kind == LOST and lost.partitions == {P0, P1}


def test_a_partition_being_started_is_reported_as_owned() -> None:
    """A heartbeat between handing out an ASSIGN task and its end lists the partitions: a
    revocation of them must wait for the user's thread, never be confirmed by omission."""
    m = member()
    joined(m, 1, P0)
    out = m.outgoing(0)
    m.on_offsets(out.generation, {}, 0)
    task = m.next_task()
    assert task is not None and task.kind == ASSIGN
    generation, owned = heartbeat(m, INTERVAL)
    assert owned == {P0}
    m.on_heartbeat(generation, answer(2), INTERVAL)
    assert m.next_task() is not None  # the revocation comes after the start: REVOKE P0


def test_committed_offsets_fetched_before_a_partition_came_back_are_not_used() -> None:
    m = member()
    joined(m, 1, P0)
    out = m.outgoing(0)
    assert out.offset_fetch is not None
    generation, _ = heartbeat(m, INTERVAL)
    m.on_heartbeat(generation, answer(2), INTERVAL)  # P0 leaves the target...
    generation, _ = heartbeat(m, 2 * INTERVAL)
    m.on_heartbeat(generation, answer(3, P0), 2 * INTERVAL)  # ...and comes back
    m.on_offsets(out.generation, {P0: 5}, 2 * INTERVAL)  # asked before it came back
    assert m.next_task() is None
    again = m.outgoing(2 * INTERVAL)
    assert again.offset_fetch is not None  # asked again
    m.on_offsets(again.generation, {P0: 9}, 2 * INTERVAL)
    task = m.next_task()
    assert task is not None and dict(task.offsets) == {P0: 9}


def test_failed_offset_fetches_back_off() -> None:
    m = member(retry_backoff_ms=50, retry_backoff_max_ms=80)
    joined(m, 1, P0)
    out = m.outgoing(0)
    m.on_offsets(out.generation, ZafkaError("COORDINATOR_NOT_AVAILABLE"), 0)
    assert m.outgoing(10).offset_fetch is None
    out = m.outgoing(50)
    assert out.offset_fetch is not None
    m.on_offsets(out.generation, ZafkaError("NOT_COORDINATOR"), 50)
    assert m.outgoing(50 + 79).offset_fetch is None  # 100 capped at 80
    assert m.outgoing(50 + 80).offset_fetch is not None


def test_heartbeats_failing_for_a_session_lose_the_partitions() -> None:
    m = member(retry_backoff_ms=100, retry_backoff_max_ms=200)
    joined(m, 1, P0)
    start_all(m, {})
    now = INTERVAL
    while m.state == MEMBER:
        generation, _ = heartbeat(m, now)
        m.on_heartbeat(generation, ZafkaError("REQUEST_TIMED_OUT"), now)
        now = max(now + 1, m.outgoing(now).wake_ms or now)
    assert now >= 1000  # a whole session without an answer
    assert m.lost == {P0} and m.fenced_by is not None
    assert m.fenced_by.error.name == "UNKNOWN_MEMBER_ID"
    assert m.state == JOINING


def test_retriable_join_errors_back_off_and_fatal_ones_fail_the_member() -> None:
    m = member(retry_backoff_ms=100)
    out = m.outgoing(0)
    m.on_join(out.generation, ZafkaError("COORDINATOR_LOAD_IN_PROGRESS"), 0)
    assert m.outgoing(50).join is None and m.outgoing(50).wake_ms == 100
    out = m.outgoing(100)
    assert out.join is not None
    m.on_join(out.generation, ZafkaError("GROUP_MAX_SIZE_REACHED", "1000 members"), 100)
    assert m.state == FAILED and m.error is not None
    assert m.error.error.name == "GROUP_MAX_SIZE_REACHED"
    assert m.outgoing(1000) == (None, None, None, m.generation, None)


def test_a_changed_subscription_rides_on_heartbeats_until_answered() -> None:
    m = member()
    joined(m, 1, P0)
    assert m.outgoing(0).heartbeat is None
    m.subscribe(pattern="ord.*")
    out = m.outgoing(1)  # at once
    assert out.heartbeat is not None
    assert out.heartbeat.subscription == () and out.heartbeat.subscription_pattern == "ord.*"
    m.on_heartbeat(out.generation, ZafkaError("NOT_COORDINATOR"), 1)
    out = m.outgoing(1000)
    assert out.heartbeat is not None and out.heartbeat.subscription_pattern == "ord.*"
    m.on_heartbeat(out.generation, answer(1, P0), 1000)
    out = m.outgoing(1000 + INTERVAL)
    assert out.heartbeat is not None
    assert out.heartbeat.subscription is None and out.heartbeat.subscription_pattern is None


def test_stale_answers_are_ignored() -> None:
    m = member()
    first = m.outgoing(0)
    m.fence(ZafkaError("UNKNOWN_MEMBER_ID"))  # no effect: only a member can be fenced
    m.on_join(first.generation, answer(1, P0), 0)
    assert m.state == MEMBER
    generation, _ = heartbeat(m, INTERVAL)
    m.on_commit_error(generation, ZafkaError("FENCED_MEMBER_EPOCH"))
    assert m.state == JOINING
    m.on_heartbeat(generation, answer(4, P0, P1), INTERVAL)  # answered after the fencing
    assert m.state == JOINING and m.target == frozenset()
    out = m.outgoing(INTERVAL)
    assert out.join is not None and out.generation > generation
    m.on_join(generation, answer(4, P0, P1), INTERVAL)  # an answer to an older join
    assert m.state == JOINING
    m.on_join(out.generation, answer(5, P1), INTERVAL)
    assert m.state == MEMBER and m.epoch == 5


def test_leaving_revokes_everything_then_nothing_is_sent() -> None:
    m = member()
    joined(m, 1, P0, P1)
    start_all(m, {})
    m.leave()
    assert m.state == LEAVING
    assert m.outgoing(10 * INTERVAL) == (None, None, None, m.generation, None)
    task = m.next_task()
    assert task is not None and (task.kind, task.partitions) == (REVOKE, {P0, P1})
    assert m.commit_as([P0]) == ("m-1", 1, m.generation)  # commits while leaving
    m.done(task)
    assert m.join_sent
    m.left()
    assert (m.state, m.owned, m.lost, m.join_sent) == (
        UNSUBSCRIBED,
        frozenset(),
        frozenset(),
        False,
    )
    assert not m.subscribed
    assert m.commit_as([P0]) == ("", -1, m.generation)  # outside the group: manual commits
    m.subscribe(["orders"])
    assert m.outgoing(0).join is not None


def test_manual_assignment_commits_as_no_member() -> None:
    m = Membership("billing", "m-1")
    assert m.commit_as([P0]) == ("", -1, 0)
