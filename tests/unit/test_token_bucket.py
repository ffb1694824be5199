"""The token bucket that bounds topic auto-creation: a burst of its capacity, then its rate."""

from __future__ import annotations

from zafka.token_bucket import TokenBucket


def test_a_full_bucket_gives_its_capacity_then_refuses():
    bucket = TokenBucket(capacity=5, period_s=60.0, now_s=100.0)
    assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]


def test_tokens_come_back_at_the_rate_and_never_beyond_the_capacity():
    bucket = TokenBucket(capacity=60, period_s=60.0, now_s=0.0)
    assert all(bucket.take(0.0) for _ in range(60))
    assert not bucket.take(0.5)  # half a token back
    assert bucket.take(1.0) and not bucket.take(1.0)  # one per second
    assert sum(bucket.take(10_000.0) for _ in range(100)) == 60  # idle long: full, not more


def test_a_clock_going_back_gives_nothing():
    bucket = TokenBucket(capacity=1, period_s=1.0, now_s=10.0)
    assert bucket.take(10.0) and not bucket.take(5.0) and not bucket.take(10.5)
    assert bucket.take(11.0)
