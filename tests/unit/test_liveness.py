from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zafka.errors import ZafkaError
from zafka.transport.liveness import Action, Liveness, State

INTERVAL, DEAD_AFTER, BACKOFF, BACKOFF_MAX = 100, 350, 50, 400


def make(now_ms: int = 0) -> Liveness:
    return Liveness(INTERVAL, DEAD_AFTER, BACKOFF, BACKOFF_MAX, now_ms=now_ms)


def test_nothing_before_the_first_interval():
    live = make(1000)
    assert live.next_deadline_ms() == 1000 + INTERVAL
    assert live.tick(1000 + INTERVAL - 1) is Action.NOTHING
    assert live.state is State.ALIVE


def test_ping_after_an_interval_without_sending():
    live = make()
    assert live.tick(INTERVAL) is Action.SEND_PING
    assert live.tick(INTERVAL) is Action.NOTHING  # the ping counts as sent
    assert live.next_deadline_ms() == 2 * INTERVAL


def test_sending_anything_postpones_the_ping():
    live = make()
    live.sent(60)
    assert live.tick(INTERVAL) is Action.NOTHING
    assert live.next_deadline_ms() == 60 + INTERVAL
    assert live.tick(60 + INTERVAL) is Action.SEND_PING


def test_peer_dead_after_silence_then_reconnect_after_backoff():
    live = make()
    live.sent(DEAD_AFTER - 1)
    assert live.tick(DEAD_AFTER) is Action.PEER_DEAD
    assert live.state is State.DEAD
    assert live.next_deadline_ms() == DEAD_AFTER + BACKOFF
    assert live.tick(DEAD_AFTER + BACKOFF - 1) is Action.NOTHING
    assert live.tick(DEAD_AFTER + BACKOFF) is Action.RECONNECT
    assert live.state is State.ALIVE


def test_death_wins_over_a_due_ping():
    live = make()
    assert live.tick(DEAD_AFTER + 10) is Action.PEER_DEAD


def test_hearing_restarts_the_silence_timer():
    live = make()
    live.sent(300)
    live.heard(300)
    assert live.tick(DEAD_AFTER) is Action.NOTHING
    assert live.next_deadline_ms() == 300 + INTERVAL
    live.sent(1000)
    assert live.tick(300 + DEAD_AFTER) is Action.PEER_DEAD


def test_after_reconnect_a_ping_is_due_at_once_and_silence_restarts():
    live = make()
    live.tick(DEAD_AFTER)
    reconnect_at = DEAD_AFTER + BACKOFF
    live.tick(reconnect_at)
    assert live.next_deadline_ms() == reconnect_at
    assert live.tick(reconnect_at) is Action.SEND_PING
    assert live.tick(reconnect_at + DEAD_AFTER - 1) is Action.SEND_PING
    assert live.tick(reconnect_at + DEAD_AFTER) is Action.PEER_DEAD


def die_and_reconnect(live: Liveness, now: int) -> tuple[int, int]:
    """Let the peer die from `now` on, then reconnect; (backoff waited, time of reconnect)."""
    dead_at = now + DEAD_AFTER
    assert live.tick(dead_at) is Action.PEER_DEAD
    waited = live.next_deadline_ms() - dead_at
    assert live.tick(dead_at + waited) is Action.RECONNECT
    return waited, dead_at + waited


def test_backoff_doubles_up_to_the_cap():
    live = make()
    now, waits = 0, []
    for _ in range(6):
        waited, now = die_and_reconnect(live, now)
        waits.append(waited)
    assert waits == [50, 100, 200, 400, 400, 400]


def test_hearing_resets_the_backoff():
    live = make()
    _, now = die_and_reconnect(live, 0)
    _, now = die_and_reconnect(live, now)
    assert live.backoff_ms == 4 * BACKOFF
    live.heard(now)
    assert live.backoff_ms == BACKOFF
    waited, _ = die_and_reconnect(live, now)
    assert waited == BACKOFF


def test_hearing_a_dead_peer_makes_the_reconnect_due_at_once():
    live = make()
    live.tick(DEAD_AFTER)
    live.heard(DEAD_AFTER + 5)
    assert live.state is State.DEAD
    assert live.next_deadline_ms() == DEAD_AFTER + 5
    assert live.tick(DEAD_AFTER + 5) is Action.RECONNECT


@pytest.mark.parametrize(
    "args",
    [
        (0, 350, 50, 400),
        (100, -1, 50, 400),
        (100, 350, 0, 400),
        (100, 350, 50, 0),
        (100.0, 350, 50, 400),
        (True, 350, 50, 400),
        (100, 100, 50, 400),  # dead before the first ping could be answered
        (100, 350, 500, 400),  # the cap below the first delay
    ],
)
def test_bad_configuration_is_refused(args):
    with pytest.raises(ZafkaError) as raised:
        Liveness(*args, now_ms=0)
    assert raised.value.error.name == "INVALID_CONFIG"


events = st.lists(
    st.tuples(st.sampled_from(["tick", "heard", "sent"]), st.integers(0, 600)), max_size=200
)


@given(events)
def test_random_event_sequences_keep_the_invariants(sequence):
    live = make()
    now = 0
    death_unanswered = False  # a PEER_DEAD with no heard or RECONNECT after it yet
    dead = False  # a PEER_DEAD with no RECONNECT after it yet
    for event, step in sequence:
        now += step
        if event == "heard":
            live.heard(now)
            death_unanswered = False
        elif event == "sent":
            live.sent(now)
        else:
            early = now < live.next_deadline_ms()
            action = live.tick(now)
            assert action is Action.NOTHING or not early
            if action is Action.PEER_DEAD:
                assert not death_unanswered, "two PEER_DEAD in a row"
                death_unanswered = dead = True
            elif action is Action.RECONNECT:
                death_unanswered = dead = False
        assert live.state is (State.DEAD if dead else State.ALIVE)
        assert BACKOFF <= live.backoff_ms <= BACKOFF_MAX


@given(st.lists(st.integers(1, 1000), max_size=100))
def test_a_dead_peer_is_reconnected_within_the_capped_backoff(steps):
    live = make()
    now = 0
    for step in steps:
        now += step
        if live.tick(now) is Action.PEER_DEAD:
            assert live.next_deadline_ms() - now <= BACKOFF_MAX
