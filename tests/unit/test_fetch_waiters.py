"""Fetch long polling: release on enough bytes, expiry order, cancel, drain, the bound, and a
state machine against a plain list of waiting fetches."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from zafka.actors.partition.fetch_waiters import FetchWaiters
from zafka.errors import ZafkaError

RECORD_BYTES = 10


def per_record(offset: int, up_to: int) -> int:
    """A log whose every offset holds RECORD_BYTES bytes."""
    return (up_to - offset) * RECORD_BYTES


def handles(released) -> list:
    return [p.handle for p in released]


def test_a_fetch_is_released_once_min_bytes_are_readable_below_the_high_watermark():
    w = FetchWaiters()
    w.add("small", "t-0", offset=5, min_bytes=1, max_bytes=1000, deadline_ms=500)
    w.add("big", "t-0", offset=5, min_bytes=30, max_bytes=1000, deadline_ms=500)
    assert w.on_append("t-0", 5, per_record) == []  # nothing below the high watermark yet
    assert handles(w.on_append("t-0", 7, per_record)) == ["small"]  # 20 bytes
    assert handles(w.on_append("t-0", 8, per_record)) == ["big"]  # 30 bytes
    assert len(w) == 0


def test_released_fetches_carry_what_the_actor_needs_to_answer():
    w = FetchWaiters()
    w.add("h", "t-0", offset=3, min_bytes=1, max_bytes=4096, deadline_ms=900)
    [pending] = w.on_append("t-0", 4, per_record)
    assert (pending.handle, pending.key, pending.offset) == ("h", "t-0", 3)
    assert (pending.min_bytes, pending.max_bytes, pending.deadline_ms) == (1, 4096, 900)


def test_an_append_wakes_only_its_own_partition():
    w = FetchWaiters()
    w.add("a", "t-0", 0, 1, 100, 500)
    w.add("b", "t-1", 0, 1, 100, 500)
    assert handles(w.on_append("t-1", 1, per_record)) == ["b"]
    assert w.on_append("t-9", 1, per_record) == []
    assert len(w) == 1


def test_bytes_are_asked_once_per_offset_and_never_at_the_high_watermark():
    calls = []

    def available(offset: int, up_to: int) -> int:
        calls.append((offset, up_to))
        return 0

    w = FetchWaiters()
    for i in range(5):
        w.add(f"tail-{i}", "t-0", 10, 1, 100, 500)
    w.add("ahead", "t-0", 12, 1, 100, 500)  # a fetch beyond the high watermark
    w.add("behind", "t-0", 3, 1, 100, 500)
    assert w.on_append("t-0", 12, available) == []
    assert sorted(calls) == [(3, 12), (10, 12)]


def test_many_fetches_are_released_in_the_order_they_came():
    w = FetchWaiters()
    for name in ("c", "a", "b"):
        w.add(name, "t-0", 0, 1, 100, 500)
    assert handles(w.on_append("t-0", 1, per_record)) == ["c", "a", "b"]


def test_expiry_releases_earliest_deadline_first_and_equal_deadlines_in_order():
    w = FetchWaiters()
    for name, deadline in (("late", 30), ("early", 10), ("mid-1", 20), ("mid-2", 20)):
        w.add(name, "t-0", 0, 1, 100, deadline)
    assert w.next_deadline_ms() == 10
    assert w.expire(9) == []
    assert handles(w.expire(10)) == ["early"]  # at the deadline: released
    assert w.next_deadline_ms() == 20
    assert handles(w.expire(1000)) == ["mid-1", "mid-2", "late"]
    assert w.next_deadline_ms() is None
    assert w.expire(2000) == []


def test_a_fetch_released_by_an_append_does_not_expire_and_its_deadline_no_longer_counts():
    w = FetchWaiters()
    w.add("a", "t-0", 0, 1, 100, 10)
    w.add("b", "t-1", 0, 1, 100, 20)
    w.on_append("t-0", 1, per_record)
    assert w.next_deadline_ms() == 20
    assert handles(w.expire(100)) == ["b"]


def test_cancel_forgets_a_fetch():
    w = FetchWaiters()
    w.add("a", "t-0", 0, 1, 100, 10)
    w.add("b", "t-0", 0, 1, 100, 20)
    assert w.cancel("a").handle == "a"
    assert w.cancel("a") is None
    assert w.cancel("never") is None
    assert w.next_deadline_ms() == 20
    assert handles(w.on_append("t-0", 1, per_record)) == ["b"]
    assert w.expire(100) == []


def test_a_handle_may_wait_again_once_released():
    w = FetchWaiters()
    w.add("h", "t-0", 0, 1, 100, 10)
    w.on_append("t-0", 1, per_record)
    w.add("h", "t-0", 1, 1, 100, 50)
    assert w.expire(10) == []  # the first wait's deadline is not the second's
    assert handles(w.expire(50)) == ["h"]


def test_drain_releases_one_partition_and_drain_all_everything():
    w = FetchWaiters()
    for name, key in (("a", "t-0"), ("b", "t-1"), ("c", "t-0"), ("d", "t-2")):
        w.add(name, key, 0, 1, 100, 10)
    assert handles(w.drain("t-0")) == ["a", "c"]
    assert w.drain("t-0") == []
    assert handles(w.drain_all()) == ["b", "d"]
    assert len(w) == 0
    assert w.next_deadline_ms() is None
    assert w.expire(100) == []


def test_the_bound_refuses_with_busy_until_a_fetch_leaves():
    w = FetchWaiters(waiters_max=2)
    w.add("a", "t-0", 0, 1, 100, 10)
    w.add("b", "t-0", 0, 1, 100, 10)
    with pytest.raises(ZafkaError) as excinfo:
        w.add("c", "t-0", 0, 1, 100, 10)
    assert excinfo.value.error.name == "BUSY"
    assert excinfo.value.retriable
    w.cancel("a")
    w.add("c", "t-0", 0, 1, 100, 10)
    assert len(w) == 2


def test_programming_errors_are_value_errors():
    w = FetchWaiters()
    w.add("a", "t-0", 0, 1, 100, 10)
    with pytest.raises(ValueError):
        w.add("a", "t-1", 0, 1, 100, 10)  # already waiting
    with pytest.raises(ValueError):
        w.add("b", "t-0", 0, 0, 100, 10)  # min_bytes 0: answer at once
    with pytest.raises(ValueError):
        FetchWaiters(waiters_max=0)


def test_the_deadline_heap_stays_bounded_when_fetches_leave_by_append_or_cancel():
    w = FetchWaiters()
    w.add("forever", "t-9", 0, 1, 100, 10**12)
    for i in range(10_000):
        w.add(i, "t-0", 0, 1, 100, 10**9 + i)
        if i % 2:
            w.cancel(i)
        else:
            w.on_append("t-0", 1, per_record)
    assert len(w) == 1
    assert len(w._deadlines) <= 2 + 64
    assert w.next_deadline_ms() == 10**12


class WaitersModel(RuleBasedStateMachine):
    """FetchWaiters against a list of (handle, key, offset, min_bytes, deadline) in add
    order, under a log of RECORD_BYTES per offset whose high watermark only grows."""

    KEYS = ("t-0", "t-1")

    def __init__(self) -> None:
        super().__init__()
        self.waiters = FetchWaiters(waiters_max=8)
        self.model: list[tuple[int, str, int, int, int]] = []
        self.hw = {key: 0 for key in self.KEYS}
        self.now = 0
        self.next_handle = 0

    def _release(self, chosen) -> list[int]:
        self.model = [m for m in self.model if m not in chosen]
        return [m[0] for m in chosen]

    @rule(
        key=st.sampled_from(KEYS),
        ahead=st.integers(-3, 2),
        min_bytes=st.integers(1, 50),
        wait=st.integers(0, 40),
    )
    def add(self, key, ahead, min_bytes, wait):
        handle = self.next_handle
        self.next_handle += 1
        offset = max(self.hw[key] + ahead, 0)
        if len(self.model) == 8:
            with pytest.raises(ZafkaError):
                self.waiters.add(handle, key, offset, min_bytes, 100, self.now + wait)
            return
        self.waiters.add(handle, key, offset, min_bytes, 100, self.now + wait)
        self.model.append((handle, key, offset, min_bytes, self.now + wait))

    @rule(key=st.sampled_from(KEYS), grow=st.integers(0, 4))
    def append(self, key, grow):
        self.hw[key] += grow
        hw = self.hw[key]
        expected = [m for m in self.model if m[1] == key and (hw - m[2]) * RECORD_BYTES >= m[3]]
        got = self.waiters.on_append(key, hw, per_record)
        assert handles(got) == self._release(expected)

    @rule(step=st.integers(0, 30))
    def tick(self, step):
        self.now += step
        expected = sorted((m for m in self.model if m[4] <= self.now), key=lambda m: m[4])
        assert handles(self.waiters.expire(self.now)) == self._release(expected)

    @rule(data=st.data())
    def cancel(self, data):
        handle = data.draw(st.integers(0, self.next_handle))
        expected = [m for m in self.model if m[0] == handle]
        got = self.waiters.cancel(handle)
        assert ([got.handle] if got else []) == self._release(expected)

    @rule(key=st.sampled_from(KEYS))
    def drain(self, key):
        expected = [m for m in self.model if m[1] == key]
        assert handles(self.waiters.drain(key)) == self._release(expected)

    @invariant()
    def agrees(self):
        assert len(self.waiters) == len(self.model)
        deadlines = [m[4] for m in self.model]
        assert self.waiters.next_deadline_ms() == (min(deadlines) if deadlines else None)


WaitersModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_waiters_model = WaitersModel.TestCase
