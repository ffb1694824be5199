"""A token bucket: at most `capacity` takes at once, refilled at `capacity` per `period_s`.

Pure: the caller passes the time (seconds, from a monotonic clock), so it is tested without
waiting. The broker bounds topic auto-creation with one (Kafka's KIP-599 mutation quota is
the model: excess answered THROTTLING_QUOTA_EXCEEDED, the client retries later).
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, capacity: int, period_s: float, now_s: float) -> None:
        self.capacity = capacity
        self._rate_per_s = capacity / period_s
        self._tokens = float(capacity)
        self._at_s = now_s

    def take(self, now_s: float) -> bool:
        """Take one token if there is one (after refilling for the time since last)."""
        elapsed_s = max(0.0, now_s - self._at_s)
        self._tokens = min(self.capacity, self._tokens + elapsed_s * self._rate_per_s)
        self._at_s = max(self._at_s, now_s)
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
