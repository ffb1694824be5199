"""The one clock: every read of the time in zafka goes through here.

Two kinds of time, never mixed:

- monotonic (`monotonic_ms`, `monotonic_s`, `monotonic_ns`): intervals, deadlines, timers,
  fsync intervals, backoffs, latencies. It never jumps when the wall clock is set.
- wall (`wall_ms`, milliseconds since the Unix epoch): record timestamps, and what is
  compared with them (retention, tombstone expiry, commit times).

Code that must be tested against time takes a `Clock` (default `SYSTEM`); tests pass a
`FakeClock`, whose time moves only when told (`advance`). The module functions read the
system clock and are for code that only ever runs against real time.
"""

from __future__ import annotations

import time

NS_PER_MS = 1_000_000


class Clock:
    """The system's clocks. Subclass (`FakeClock`) to control time in tests."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def monotonic_ms(self) -> int:
        return self.monotonic_ns() // NS_PER_MS

    def monotonic_s(self) -> float:
        return self.monotonic_ns() / 1e9

    def wall_ms(self) -> int:
        return time.time_ns() // NS_PER_MS


class FakeClock(Clock):
    """Time that moves only when told: `advance(ms)`, or set `now_ms` / `wall` directly."""

    def __init__(self, now_ms: int = 1_000, wall: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms  # monotonic
        self.wall = wall  # wall-clock ms

    def monotonic_ns(self) -> int:
        return self.now_ms * NS_PER_MS

    def wall_ms(self) -> int:
        return self.wall

    def advance(self, ms: int) -> None:
        """Both clocks move `ms` forward."""
        if ms < 0:
            raise ValueError(f"time only moves forward, not by {ms} ms")
        self.now_ms += ms
        self.wall += ms

    def __call__(self) -> int:
        """The monotonic ms: a FakeClock serves where a `() -> int` clock is asked for."""
        return self.now_ms


SYSTEM = Clock()
monotonic_ns = SYSTEM.monotonic_ns
monotonic_ms = SYSTEM.monotonic_ms
monotonic_s = SYSTEM.monotonic_s
wall_ms = SYSTEM.wall_ms
