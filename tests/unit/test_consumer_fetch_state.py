"""FetchState, Drain and split_batches: the consumer's pure fetch logic, driven by hand (the
user's side: assign, seek, pause, claim, take, commit; the I/O side: actions, answers)."""

from __future__ import annotations

import pytest

from zafka import limits
from zafka.clients.drain import ConsumerRecord, Drain, split_batches
from zafka.clients.fetch_state import (
    EARLIEST,
    LATEST,
    AssignedPartition,
    FetchState,
    Request,
)
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.names import TopicPartition

T0 = 1_700_000_000_000
TP = TopicPartition("orders", 0)
OTHER = TopicPartition("audit", 2)


def batch(base: int, count: int, headers: bool = False, **fields: object) -> bytes:
    records = [
        (T0 + i, b"k%d" % i, b"v%d" % i, (("n", b"%d" % i),) if headers else None)
        for i in range(base, base + count)
    ]
    return build_batch(records, base_offset=base, **fields)  # type: ignore[arg-type]


def leader_1(tp: TopicPartition) -> int:
    return 1


def take_all(state: FetchState, quota: int = 1000) -> list[ConsumerRecord]:
    """What one poll hands out: claim, take outside the lock, commit."""
    ready, _ = state.claim()
    out: list[ConsumerRecord] = []
    for ps in ready:
        drain = ps.drain
        assert drain is not None and ps.position is not None
        state.commit(ps, drain, drain.take(out, ps.position, quota - len(out)))
    return out


def at(state: FetchState, offset: int, tp: TopicPartition = TP) -> AssignedPartition:
    """Assign-and-seek `tp` to `offset` (added to what is assigned)."""
    state.assign([*state.partitions, tp])
    state.seek(tp, offset)
    return state.partitions[tp]


def fetch_request(state: FetchState, now: int = 0) -> Request:
    (request,) = state.actions(now, leader_1).fetches
    return request


# --- split_batches and Drain --------------------------------------------------------------


def test_split_batches_keeps_whole_batches_and_drops_a_partial_tail() -> None:
    data = batch(0, 3) + batch(3, 2)
    batches, next_offset = split_batches(data + batch(5, 4)[:70])
    assert [bytes(b) for b in batches] == [batch(0, 3), batch(3, 2)]
    assert next_offset == 5
    assert split_batches(b"") == ([], -1)
    assert split_batches(batch(0, 1)[:30]) == ([], -1)


def test_drain_skips_records_below_the_position_and_respects_the_quota() -> None:
    batches, _ = split_batches(batch(0, 5) + batch(5, 5, headers=True))
    drain = Drain(TP, batches)
    out: list[ConsumerRecord] = []
    position = drain.take(out, 3, 4)  # a fetch from 3 gets the batch holding 0-4
    assert [r.offset for r in out] == [3, 4, 5, 6]
    assert position == 7
    assert out[0] == ConsumerRecord("orders", 0, 3, T0 + 3, b"k3", b"v3", None)
    assert out[2].headers == (("n", b"5"),)
    assert not drain.exhausted
    position = drain.take(out, position, 100)
    assert [r.offset for r in out[4:]] == [7, 8, 9]
    assert position == 10 and drain.exhausted
    assert drain.take(out, position, 100) == 10  # nothing left


def test_drain_skips_control_batches_and_stops_at_a_corrupt_one() -> None:
    broken = bytearray(batch(4, 2))
    broken[-1] ^= 0xFF  # the CRC no longer matches
    batches, _ = split_batches(batch(0, 2) + batch(2, 2, control=True) + bytes(broken))
    drain = Drain(TP, batches)
    out: list[ConsumerRecord] = []
    position = drain.take(out, 0, 100)
    assert [r.offset for r in out] == [0, 1]
    assert position == 4  # past the control batch, at the corrupt one
    assert drain.error is not None and drain.error.error.name == "CORRUPT_MESSAGE"


# --- positions and resets ------------------------------------------------------------------


def test_a_new_partition_looks_its_position_up_by_the_policy_then_fetches() -> None:
    state = FetchState(EARLIEST)
    state.assign([TP])
    plan = state.actions(0, leader_1)
    assert plan.fetches == []
    (reset,) = plan.resets
    assert (reset.tp, reset.offset_or_timestamp, reset.leader) == (TP, EARLIEST, 1)
    assert state.actions(0, leader_1).resets == []  # in flight: not asked twice
    assert state.reset_done(reset, 42, 5) is False
    assert state.partitions[TP].position == 42
    assert fetch_request(state).offset_or_timestamp == 42


def test_seek_to_end_is_lazy_and_a_seek_cancels_it() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 7)
    state.reset(TP, LATEST)
    assert ps.position is None
    (reset,) = state.actions(0, leader_1).resets
    assert reset.offset_or_timestamp == LATEST
    state.seek(TP, 3)
    assert state.reset_done(reset, 99, 0) is False  # the old epoch's answer is dropped
    assert ps.position == 3


def test_policy_none_raises_until_a_seek() -> None:
    state = FetchState(None)
    state.assign([TP])
    raised_errors = []
    for _ in range(2):
        with pytest.raises(ZafkaError) as raised:
            state.claim()
        assert raised.value.error.name == "OFFSET_OUT_OF_RANGE"
        raised_errors.append(raised.value)
    assert raised_errors[0] is not raised_errors[1]  # no traceback chain grows poll by poll
    assert state.actions(0, leader_1).resets == []
    state.seek(TP, 0)
    assert state.claim() == ([], False)


# --- prefetching ---------------------------------------------------------------------------


def test_the_next_fetch_goes_out_as_soon_as_the_user_starts_on_the_last() -> None:
    state = FetchState(EARLIEST, fetch_max_bytes=1)  # one answer fills the buffer
    at(state, 0)
    first = fetch_request(state)
    state.fetch_done(first, (batch(0, 10), 10), 1)
    assert state.actions(1, leader_1).fetches == []  # one answer waits: nothing more fetched
    ready, kick = state.claim()
    assert kick and ready == [state.partitions[TP]]
    second = fetch_request(state)  # in flight before a single record was taken
    assert second.offset_or_timestamp == 10
    out: list[ConsumerRecord] = []
    ps = state.partitions[TP]
    state.commit(ps, ps.drain, ps.drain.take(out, 0, 4))  # type: ignore[union-attr]
    assert ps.position == 4
    state.fetch_done(second, (batch(10, 5), 15), 2)
    assert state.actions(2, leader_1).fetches == []  # bounded: one drained, one waiting
    assert [r.offset for r in take_all(state)] == [4, 5, 6, 7, 8, 9]
    assert [r.offset for r in take_all(state)] == [10, 11, 12, 13, 14]
    assert fetch_request(state).offset_or_timestamp == 15
    assert state.partitions[TP].high_watermark == 15


def test_small_answers_are_fetched_ahead_until_fetch_max_bytes_wait() -> None:
    state = FetchState(EARLIEST, fetch_max_bytes=2 * len(batch(0, 10)))
    at(state, 0)
    for base in (0, 10):
        request = fetch_request(state)
        assert request.offset_or_timestamp == base
        state.fetch_done(request, (batch(base, 10), 20), 1)
    assert state.actions(1, leader_1).fetches == []  # two answers wait: the buffer is full
    assert [r.offset for r in take_all(state)] == list(range(20))  # both, in one poll
    assert fetch_request(state).offset_or_timestamp == 20


def test_an_empty_answer_refetches_but_never_loops() -> None:
    state = FetchState(EARLIEST, fetch_max_wait_ms=500)
    at(state, 0)
    request = fetch_request(state, now=1000)
    state.fetch_done(request, (b"", 0), 1500)  # the long poll ran out
    assert fetch_request(state, now=1500).offset_or_timestamp == 0
    # The next answer comes at once, empty (a broker stopping): wait out the long poll.
    early = Request(TP, state.partitions[TP].epoch, 0, 1, 1500)
    state.fetch_done(early, (b"", 0), 1510)
    plan = state.actions(1510, leader_1)
    assert plan.fetches == [] and plan.wake_ms == 2000
    assert fetch_request(state, now=2000).offset_or_timestamp == 0


def test_answers_of_an_old_epoch_are_dropped_and_stale_calls_are_bounded() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    old = fetch_request(state)
    state.seek(TP, 5)
    new = fetch_request(state)
    assert new.offset_or_timestamp == 5
    state.fetch_done(old, (batch(0, 10), 10), 1)
    assert ps.fetched is None and ps.fetching
    state.fetch_done(new, (batch(0, 10), 10), 1)
    assert [r.offset for r in take_all(state)] == [5, 6, 7, 8, 9]
    # Seeking again and again while fetches hang: at most
    # limits.stale_fetches_per_partition_max old ones in flight.
    stale = []
    for offset in range(20):
        state.seek(TP, offset)
        stale += state.actions(0, leader_1).fetches
    assert (
        len(stale) == limits.stale_fetches_per_partition_max
    )  # the 20th seek's fetch waits for an old answer
    assert state.actions(0, leader_1).fetches == []
    state.fetch_done(stale[0], (b"", 0), 1)
    assert fetch_request(state, now=1).offset_or_timestamp == 19


def test_pause_drops_prefetched_data_and_resume_fetches_from_the_position() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    state.fetch_done(fetch_request(state), (batch(0, 10), 10), 1)
    assert [r.offset for r in take_all(state, quota=3)] == [0, 1, 2]
    in_flight = fetch_request(state)
    state.pause(TP)
    assert ps.paused and ps.drain is None and ps.fetched is None
    state.fetch_done(in_flight, (batch(10, 5), 15), 2)  # for the old epoch: dropped
    assert ps.fetched is None
    assert state.actions(2, leader_1).fetches == []
    assert state.claim() == ([], False)
    state.resume(TP)
    assert fetch_request(state).offset_or_timestamp == 3
    assert ps.position == 3


def test_partitions_take_turns() -> None:
    state = FetchState(EARLIEST)
    at(state, 0)
    at(state, 0, OTHER)
    for request in state.actions(0, leader_1).fetches:
        state.fetch_done(request, (batch(0, 10), 10), 1)
    firsts = []
    for _ in range(4):
        out = take_all(state, quota=2)
        firsts.append(out[0].topic)
        assert {r.topic for r in out} == {out[0].topic}
    assert firsts == ["orders", "audit", "orders", "audit"]


def test_assign_keeps_kept_partitions_and_drops_answers_for_removed_ones() -> None:
    state = FetchState(LATEST)
    ps = at(state, 4)
    request = fetch_request(state)
    state.assign([TP, OTHER])
    assert state.partitions[TP] is ps and ps.position == 4
    assert state.partitions[OTHER].reset_to == LATEST
    state.assign([OTHER])
    state.fetch_done(request, (batch(0, 10), 10), 1)  # ignored: TP is gone
    assert set(state.partitions) == {OTHER}
    with pytest.raises(ZafkaError) as raised:
        state.get(TP)
    assert raised.value.error.name == "INVALID_REQUEST"


# --- errors --------------------------------------------------------------------------------


def test_out_of_range_waits_for_the_fetched_records_then_resets() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    state.fetch_done(fetch_request(state), (batch(0, 10), 10), 1)
    take_all(state, quota=2)  # the answer moved to the drain; the next fetch goes out
    state.fetch_done(fetch_request(state), ZafkaError("OFFSET_OUT_OF_RANGE"), 2)
    assert [r.offset for r in take_all(state)] == list(range(2, 10))  # still handed out
    assert ps.position == 10
    assert take_all(state) == []  # the next poll resets
    assert ps.position is None and ps.reset_to == EARLIEST
    (reset,) = state.actions(3, leader_1).resets
    assert reset.offset_or_timestamp == EARLIEST


def test_out_of_range_under_policy_none_raises_until_a_seek() -> None:
    state = FetchState(None)
    at(state, 100)
    state.fetch_done(fetch_request(state), ZafkaError("OFFSET_OUT_OF_RANGE", "100"), 1)
    for _ in range(2):
        with pytest.raises(ZafkaError) as raised:
            state.claim()
        assert raised.value.error.name == "OFFSET_OUT_OF_RANGE"
    assert state.actions(2, leader_1).fetches == []
    state.seek(TP, 0)
    assert fetch_request(state).offset_or_timestamp == 0


def test_leader_errors_refresh_metadata_and_retry_with_growing_backoff() -> None:
    state = FetchState(EARLIEST, retry_backoff_ms=100, retry_backoff_max_ms=300)
    ps = at(state, 0)
    now, delays = 0, []
    for _ in range(4):
        refresh = state.fetch_done(fetch_request(state, now), ZafkaError("UNKNOWN_ACTOR"), now)
        assert refresh is True
        plan = state.actions(now, leader_1)
        assert plan.fetches == [] and plan.wake_ms is not None
        delays.append(plan.wake_ms - now)
        now = plan.wake_ms
    assert delays == [100, 200, 300, 300]
    assert ps.last_error is not None and ps.last_error.error.name == "UNKNOWN_ACTOR"
    state.fetch_done(fetch_request(state, now), (batch(0, 1), 1), now)
    assert ps.failures == 0 and ps.last_error is None
    assert [r.offset for r in take_all(state)] == [0]  # retriable errors were never raised


def test_a_timeout_is_retried_and_other_errors_are_raised_once() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    timeout = ZafkaError("REQUEST_TIMED_OUT")  # no answer: the leader may have moved
    assert state.fetch_done(fetch_request(state), timeout, 0) is True
    assert state.claim() == ([], False)  # retriable: not raised
    request = fetch_request(state, now=1000)
    assert state.fetch_done(request, ZafkaError("UNKNOWN_SERVER_ERROR"), 1000) is False
    with pytest.raises(ZafkaError) as raised:
        state.claim()
    assert raised.value.error.name == "UNKNOWN_SERVER_ERROR"
    assert state.claim() == ([], False)  # once
    assert ps.retry_at_ms > 1000


def test_an_answer_with_no_usable_batch_is_raised_and_backs_off() -> None:
    state = FetchState(EARLIEST)
    at(state, 20)
    request = fetch_request(state)
    state.fetch_done(request, (batch(0, 10), 10), 0)  # all below the offset asked for
    with pytest.raises(ZafkaError) as raised:
        state.claim()
    assert raised.value.error.name == "CORRUPT_MESSAGE"
    assert state.actions(0, leader_1).fetches == []


def test_a_corrupt_batch_stops_the_partition_until_a_seek() -> None:
    state = FetchState(EARLIEST)
    broken = bytearray(batch(2, 2))
    broken[-1] ^= 0xFF
    at(state, 0)
    state.fetch_done(fetch_request(state), (batch(0, 2) + bytes(broken), 4), 0)
    assert [r.offset for r in take_all(state)] == [0, 1]
    for _ in range(2):
        with pytest.raises(ZafkaError) as raised:
            state.claim()
        assert raised.value.error.name == "CORRUPT_MESSAGE"
    assert state.partitions[TP].position == 2
    state.seek(TP, 4)
    assert state.claim() == ([], False)


def test_a_corrupt_batch_at_the_broker_is_raised_after_the_records_before_it() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    state.fetch_done(fetch_request(state), (batch(0, 5), 10), 1)
    assert ps.fetched is not None  # prefetched: the next fetch goes out before any poll
    damage = ZafkaError("CORRUPT_MESSAGE", "bad batch at byte 99 of x.log, offsets 5..9")
    assert state.fetch_done(fetch_request(state), damage, 2) is False
    assert [r.offset for r in take_all(state)] == [0, 1, 2, 3, 4]  # still handed out
    for _ in range(2):  # not retriable: every poll raises until a seek
        with pytest.raises(ZafkaError) as raised:
            take_all(state)
        assert raised.value.error.name == "CORRUPT_MESSAGE"
        assert "orders-0 at offset 5" in str(raised.value) and "offsets 5..9" in str(raised.value)
        assert "Seek past" in str(raised.value)
    assert state.actions(3, leader_1).fetches == []
    state.seek(TP, 10)
    assert fetch_request(state).offset_or_timestamp == 10


def test_unlocated_partitions_ask_for_metadata_and_keep_the_reason() -> None:
    state = FetchState(EARLIEST)
    ps = at(state, 0)
    plan = state.actions(0, lambda tp: None)
    assert plan.need_metadata == {"orders"} and plan.fetches == []
    reason = ZafkaError("UNKNOWN_TOPIC_OR_PARTITION", "no partition 0")
    plan = state.actions(0, lambda tp: reason)
    assert plan.need_metadata == {"orders"} and ps.last_error is reason


def test_forget_in_flight_lets_a_replaced_actor_send_again() -> None:
    state = FetchState(EARLIEST)
    at(state, 0)
    fetch_request(state)
    assert state.actions(0, leader_1).fetches == []
    state.forget_in_flight()
    assert fetch_request(state).offset_or_timestamp == 0
