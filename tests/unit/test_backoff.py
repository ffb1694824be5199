"""The one retry backoff: doubling from the first delay, capped, never below the first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zafka.backoff import backoff_ms


def test_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [backoff_ms(100, n, 1_000) for n in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]


def test_no_failure_yet_waits_the_first_delay() -> None:
    assert backoff_ms(100, 0, 1_000) == 100


def test_a_first_delay_above_the_cap_is_kept() -> None:
    assert [backoff_ms(5_000, n, 1_000) for n in (1, 2, 50)] == [5_000, 5_000, 5_000]


@given(st.integers(1, 60_000), st.integers(0, 10_000), st.integers(1, 60_000))
def test_bounded_and_never_shrinking(first_ms: int, failures: int, max_ms: int) -> None:
    delay = backoff_ms(first_ms, failures, max_ms)
    assert first_ms <= delay <= max(first_ms, max_ms)
    assert backoff_ms(first_ms, failures + 1, max_ms) >= delay
