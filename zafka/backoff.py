"""The one retry backoff: how long to wait after `failures` retriable failures in a row.

    backoff_ms(first_ms, failures, max_ms) = first_ms * 2 ** (failures - 1), at most max_ms

It doubles from `first_ms` with each failure in a row (the first failure waits `first_ms`)
up to `max_ms` (the clients' `limits.retry_backoff_ms_max`, Kafka's retry.backoff.max.ms),
and never drops below `first_ms`: a user who asks for a longer first backoff than the cap
gets that backoff every time (a decision: Kafka's KIP-580 would use the cap instead, which
waits less than the user asked for). Pure; the callers count the failures and reset them on
success.
"""

from __future__ import annotations

_DOUBLINGS_MAX = 30  # first_ms << 30 passes every cap: no need to shift further


def backoff_ms(first_ms: int, failures: int, max_ms: int) -> int:
    doublings = min(max(failures - 1, 0), _DOUBLINGS_MAX)
    return min(first_ms << doublings, max(max_ms, first_ms))
