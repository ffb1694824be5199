"""Heartbeats and liveness of one peer: a pure, tick-driven state machine.

In the style of ZeroMQ's Paranoid Pirate: any message from the peer proves it alive; we ping
when we have been quiet for `interval_ms`; a peer silent for `dead_after_ms` is dead (the
caller drops the link); after a backoff delay the caller reconnects, and the delay doubles
on each death in a row, up to `backoff_max_ms`, back to `backoff_initial_ms` once the peer
is heard. No sockets and no clock reads: the caller passes `now_ms` (any monotonic clock in
ms), reports what it heard and sent, calls `tick` at `next_deadline_ms()` and does what the
returned `Action` says.

    ALIVE --silent for dead_after_ms-->  DEAD   PEER_DEAD: drop the link
    ALIVE --quiet for interval_ms---->  ALIVE   SEND_PING: send a ping
    DEAD  --backoff delay passed----->  ALIVE   RECONNECT: open the link again (a ping is
                                                due at once, to probe it)
    heard: resets the backoff; in ALIVE restarts the silence timer, in DEAD makes the
           reconnect due at once (the peer is evidently back).
"""

from __future__ import annotations

from enum import Enum

from zafka.errors import ZafkaError


class Action(Enum):
    """What the caller must do after a `tick`."""

    NOTHING = "nothing"
    SEND_PING = "send_ping"
    PEER_DEAD = "peer_dead"
    RECONNECT = "reconnect"


class State(Enum):
    ALIVE = "alive"  # the link is up as far as we know
    DEAD = "dead"  # we dropped the link and wait out the backoff before reconnecting


class _Timer(Enum):
    SILENCE = "silence"  # the peer has said nothing for dead_after_ms
    PING = "ping"  # we have sent nothing for interval_ms
    BACKOFF = "backoff"  # the reconnect delay has passed


# The timers that count in each state, in the order they are checked on a tick.
_TIMERS = {State.ALIVE: (_Timer.SILENCE, _Timer.PING), State.DEAD: (_Timer.BACKOFF,)}

# (state, timer that expired) -> (action for the caller, next state).
_TRANSITIONS = {
    (State.ALIVE, _Timer.SILENCE): (Action.PEER_DEAD, State.DEAD),
    (State.ALIVE, _Timer.PING): (Action.SEND_PING, State.ALIVE),
    (State.DEAD, _Timer.BACKOFF): (Action.RECONNECT, State.ALIVE),
}


class Liveness:
    """The liveness of one peer whose link opened at `now_ms`; see the module docstring."""

    def __init__(
        self,
        interval_ms: int,
        dead_after_ms: int,
        backoff_initial_ms: int,
        backoff_max_ms: int,
        *,
        now_ms: int,
    ) -> None:
        _check_config(interval_ms, dead_after_ms, backoff_initial_ms, backoff_max_ms)
        self.interval_ms = interval_ms
        self.dead_after_ms = dead_after_ms
        self.backoff_initial_ms = backoff_initial_ms
        self.backoff_max_ms = backoff_max_ms
        self.state = State.ALIVE
        self.backoff_ms = backoff_initial_ms  # the delay before the next reconnect
        self._due_ms = {
            _Timer.SILENCE: now_ms + dead_after_ms,
            _Timer.PING: now_ms + interval_ms,
            _Timer.BACKOFF: now_ms,
        }

    def heard(self, now_ms: int) -> None:
        """Any message from the peer arrived."""
        self.backoff_ms = self.backoff_initial_ms
        if self.state is State.ALIVE:
            self._due_ms[_Timer.SILENCE] = now_ms + self.dead_after_ms
        else:
            self._due_ms[_Timer.BACKOFF] = min(self._due_ms[_Timer.BACKOFF], now_ms)

    def sent(self, now_ms: int) -> None:
        """We sent the peer something: no ping is needed for another interval."""
        self._due_ms[_Timer.PING] = now_ms + self.interval_ms

    def tick(self, now_ms: int) -> Action:
        """The one action due at `now_ms` (the most urgent one if several are)."""
        for timer in _TIMERS[self.state]:
            if now_ms >= self._due_ms[timer]:
                action, self.state = _TRANSITIONS[(self.state, timer)]
                self._on(action, now_ms)
                return action
        return Action.NOTHING

    def next_deadline_ms(self) -> int:
        """When `tick` may next return something other than NOTHING."""
        return min(self._due_ms[timer] for timer in _TIMERS[self.state])

    def _on(self, action: Action, now_ms: int) -> None:
        if action is Action.PEER_DEAD:
            self._due_ms[_Timer.BACKOFF] = now_ms + self.backoff_ms
        elif action is Action.SEND_PING:
            self._due_ms[_Timer.PING] = now_ms + self.interval_ms
        else:  # RECONNECT: a fresh link gets a full silence period and is probed at once
            self.backoff_ms = min(2 * self.backoff_ms, self.backoff_max_ms)
            self._due_ms[_Timer.SILENCE] = now_ms + self.dead_after_ms
            self._due_ms[_Timer.PING] = now_ms


def _check_config(
    interval_ms: int, dead_after_ms: int, backoff_initial_ms: int, backoff_max_ms: int
) -> None:
    values = {
        "interval_ms": interval_ms,
        "dead_after_ms": dead_after_ms,
        "backoff_initial_ms": backoff_initial_ms,
        "backoff_max_ms": backoff_max_ms,
    }
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ZafkaError("INVALID_CONFIG", f"{name} must be a positive int, not {value!r}")
    if dead_after_ms <= interval_ms:
        raise ZafkaError("INVALID_CONFIG", "dead_after_ms must exceed interval_ms")
    if backoff_max_ms < backoff_initial_ms:
        raise ZafkaError("INVALID_CONFIG", "backoff_max_ms must be >= backoff_initial_ms")
