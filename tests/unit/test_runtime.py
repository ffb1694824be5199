"""The actor runtime without sockets: dispatch, call/cast, timers, fencing, supervision."""

from __future__ import annotations

from typing import ClassVar

import pytest

from zafka import limits
from zafka.actors.runtime.actor import Actor, handlers
from zafka.actors.runtime.loop import Runtime, SupervisionError
from zafka.clock import FakeClock
from zafka.errors import ZafkaError
from zafka.transport.control import Ack, Ping, Pong
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.envelope import Envelope


class Echo(Actor):
    """Answers Ping with Pong; crashes on Ping(sent_ms=-1); Ack is a cast it counts."""

    instances: ClassVar[int] = 0

    def __init__(self, name: str = "echo") -> None:
        super().__init__(name)
        Echo.instances += 1
        self.acks = 0
        self.events: list[str] = []

    def on_start(self) -> None:
        self.events.append("start")

    def on_ping(self, envelope: Envelope) -> Pong:
        if envelope.message.sent_ms == -1:
            raise RuntimeError("boom")
        if envelope.message.sent_ms == -2:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", "asked for it")
        return Pong(sent_ms=envelope.message.sent_ms)

    def on_ack(self, envelope: Envelope) -> None:
        self.acks += 1

    HANDLERS = handlers({Ping: on_ping, Ack: on_ack})


class Caller(Actor):
    """Records every reply or error it gets."""

    def __init__(self, name: str = "caller") -> None:
        super().__init__(name)
        self.results: list[object] = []
        self.fired: list[int] = []
        self.controller_epoch = -1

    def ask(self, target: str, sent_ms: int, timeout_ms: int = 1000, epoch: int = -1) -> int:
        return self.call(target, Ping(sent_ms=sent_ms), timeout_ms, self.results.append, epoch)

    def on_tick_timeout(self, now_ms: int) -> None:
        self.fired.append(now_ms)

    def on_leader_and_isr_request(self, envelope: Envelope) -> None:
        raise AssertionError("a fenced request reached its handler")

    def current_epoch(self, kind: str, message: object) -> int:
        return self.controller_epoch if kind == "controller" else -1

    HANDLERS = handlers({LeaderAndIsrRequest: on_leader_and_isr_request})


def make_runtime() -> tuple[Runtime, FakeClock, Echo, Caller]:
    clock = FakeClock()
    runtime = Runtime("n1", clock=clock)
    echo = runtime.spawn(Echo)
    caller = runtime.spawn(Caller)
    runtime.start()
    return runtime, clock, echo, caller


def run_until_idle(runtime: Runtime) -> None:
    for _ in range(100):
        if runtime.step() == 0:
            return
    raise AssertionError("runtime never went idle")


def test_the_dispatch_table_merges_the_bases_and_calls_overrides_by_name():
    assert Actor.dispatch_table == {Ping: "on_ping"}
    assert Echo.dispatch_table == {Ping: "on_ping", Ack: "on_ack"}
    assert Caller.dispatch_table == {
        Ping: "on_ping",
        LeaderAndIsrRequest: "on_leader_and_isr_request",
    }

    class Louder(Echo):
        def on_ping(self, envelope: Envelope) -> Pong:
            return Pong(sent_ms=envelope.message.sent_ms + 1)

    assert Louder.dispatch_table == Echo.dispatch_table  # no table of its own: Echo's
    runtime = Runtime("n1", clock=FakeClock())
    runtime.spawn(lambda: Louder("louder"))
    caller: Caller = runtime.spawn(Caller)  # type: ignore[assignment]
    runtime.start()
    caller.ask("n1/louder", 41)
    run_until_idle(runtime)
    assert [r.message for r in caller.results] == [Pong(sent_ms=42)]  # its on_ping ran


def test_a_call_gets_its_reply_with_the_same_correlation_id():
    runtime, _, _, caller = make_runtime()
    correlation_id = caller.ask("n1/echo", 42)
    run_until_idle(runtime)
    (reply,) = caller.results
    assert isinstance(reply, Envelope) and reply.reply
    assert reply.message == Pong(sent_ms=42) and reply.correlation_id == correlation_id


def test_a_cast_gets_no_reply():
    runtime, _, echo, caller = make_runtime()
    assert caller.cast("n1/echo", Ack())
    run_until_idle(runtime)
    assert echo.acks == 1 and caller.results == []


def test_a_zafka_error_in_a_handler_becomes_an_error_reply_with_its_code():
    runtime, _, _, caller = make_runtime()
    caller.ask("n1/echo", -2)
    run_until_idle(runtime)
    (err,) = caller.results
    assert isinstance(err, ZafkaError) and err.error.name == "OFFSET_OUT_OF_RANGE"


def test_an_unhandled_message_type_gets_invalid_request():
    runtime, _, _, caller = make_runtime()
    caller.call("n1/caller", Pong(sent_ms=1), 1000, caller.results.append)  # no on_pong
    run_until_idle(runtime)
    (err,) = caller.results
    assert err.error.name == "INVALID_REQUEST" and "does not handle Pong" in str(err)


def test_every_actor_answers_ping_with_pong():
    runtime, _, _, caller = make_runtime()
    caller.call("n1/caller", Ping(sent_ms=17), 1000, caller.results.append)  # no handler of its own
    run_until_idle(runtime)
    (reply,) = caller.results
    assert reply.message == Pong(sent_ms=17)


def test_an_unknown_actor_gets_unknown_actor():
    runtime, _, _, caller = make_runtime()
    caller.ask("n1/nobody", 1)
    run_until_idle(runtime)
    assert caller.results[0].error.name == "UNKNOWN_ACTOR"


def test_a_call_without_an_answer_times_out():
    runtime, clock, _, caller = make_runtime()
    caller.ask("n2/elsewhere", 1, timeout_ms=500)  # no transport: cannot be sent at all
    caller.ask("n1/echo", 2, timeout_ms=500)
    assert caller.results[0].error.name == "BUSY"
    runtime.step()  # the echo answers the second
    clock.now_ms += 500
    run_until_idle(runtime)
    assert [type(r).__name__ for r in caller.results] == ["ZafkaError", "Envelope"]


def test_a_lost_reply_times_out_and_a_late_one_is_dropped():
    runtime, clock, _echo, caller = make_runtime()
    caller.ask("n1/echo", 3, timeout_ms=100)
    clock.now_ms += 100
    runtime._fire_due(clock.now_ms)  # the timeout fires before the echo ran
    assert caller.results[0].error.name == "REQUEST_TIMED_OUT"
    run_until_idle(runtime)  # now the echo answers: too late, dropped
    assert len(caller.results) == 1


def test_call_timeouts_are_mandatory_and_bounded():
    _runtime, _, _, caller = make_runtime()
    for bad in (0, -1, limits.call_timeout_ms_max + 1):
        with pytest.raises(ValueError):
            caller.ask("n1/echo", 1, timeout_ms=bad)


def test_timers_fire_once_at_their_deadline_and_can_be_replaced_or_cancelled():
    runtime, clock, _, caller = make_runtime()
    caller.set_timer("tick", 100)
    clock.now_ms += 99
    runtime.step()
    assert caller.fired == []
    clock.now_ms += 1
    runtime.step()
    assert caller.fired == [clock.now_ms]
    caller.set_timer("tick", 50)
    caller.set_timer("tick", 200)  # replaces the first
    clock.now_ms += 60
    runtime.step()
    assert len(caller.fired) == 1
    caller.cancel_timer("tick")
    clock.now_ms += 500
    runtime.step()
    assert len(caller.fired) == 1
    with pytest.raises(AttributeError):
        caller.set_timer("nothing", 10)


def test_a_stale_epoch_is_refused_before_the_handler_runs():
    runtime, _, _, caller = make_runtime()
    caller.controller_epoch = 5
    told = LeaderAndIsrRequest("t", 0, 1, 0, (1,), (1,), 0, "")
    caller.call("n1/caller", told, 1000, caller.results.append, epoch=4)
    run_until_idle(runtime)
    assert caller.results[0].error.name == "STALE_CONTROLLER_EPOCH"


def test_a_full_mailbox_answers_busy(monkeypatch):
    monkeypatch.setattr(limits, "mailbox_messages_max", 2)
    runtime, _, _, caller = make_runtime()
    for i in range(3):
        caller.ask("n1/echo", i)
    run_until_idle(runtime)
    errors = [r.error.name for r in caller.results if isinstance(r, ZafkaError)]
    assert errors == ["BUSY"]
    assert sum(isinstance(r, Envelope) for r in caller.results) == 2
    assert runtime.dropped == 1  # counted, for whoever watches the node


def test_a_crash_is_answered_restarts_the_actor_and_it_keeps_serving():
    runtime, _, echo, caller = make_runtime()
    before = Echo.instances
    caller.ask("n1/echo", -1)
    caller.ask("n1/echo", 7)
    run_until_idle(runtime)
    assert caller.results[0].error.name == "UNKNOWN_SERVER_ERROR"
    assert caller.results[1].message == Pong(sent_ms=7)
    assert Echo.instances == before + 1
    assert runtime.actor("echo") is not echo and runtime.actor("echo").events == ["start"]


def test_a_crash_loop_stops_the_process_loudly():
    runtime, _, _, caller = make_runtime()
    for _ in range(limits.actor_restarts_max + 1):
        caller.ask("n1/echo", -1)
    with pytest.raises(SupervisionError):
        run_until_idle(runtime)


def test_stop_fails_pending_calls_and_answers_queued_ones():
    runtime, _, _, caller = make_runtime()
    other = runtime.spawn(lambda: Caller("other"))
    caller.ask("n2/elsewhere", 1)  # unsendable: BUSY at once
    caller.ask("n1/echo", 1)  # queued, never handled
    other.call("n1/caller", Ping(sent_ms=1), 1000, other.results.append)
    runtime.stop()
    assert caller.results[0].error.name == "BUSY"
    assert caller.results[1].error.name == "STOPPED"
    assert other.results[0].error.name == "STOPPED"


def test_actors_start_in_spawn_order_and_stop_in_reverse():
    events: list[str] = []

    class Recorder(Actor):
        def on_start(self) -> None:
            events.append(f"start {self.name}")

        def on_stop(self) -> None:
            events.append(f"stop {self.name}")

    runtime = Runtime("n1")
    for name in ("a", "b", "c"):
        runtime.spawn(lambda name=name: Recorder(name))
    runtime.start()
    runtime.stop()
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_a_cast_only_message_sent_as_a_call_is_refused_without_a_crash():
    runtime, _, echo, caller = make_runtime()
    caller.call("n1/echo", Ack(), 1000, caller.results.append)
    run_until_idle(runtime)
    assert caller.results[0].error.name == "INVALID_REQUEST"
    assert runtime.actor("echo") is echo  # not restarted


def test_a_zero_delay_timer_rearmed_in_its_handler_fires_once_per_step():
    class Spinner(Actor):
        def __init__(self) -> None:
            super().__init__("spinner")
            self.fired = 0

        def on_start(self) -> None:
            self.set_timer("spin", 0)

        def on_spin_timeout(self, now_ms: int) -> None:
            self.fired += 1
            self.set_timer("spin", 0)

    runtime = Runtime("n1", clock=FakeClock())
    spinner = runtime.spawn(Spinner)
    runtime.start()
    for _ in range(3):
        runtime.step()
    assert spinner.fired == 3
    with pytest.raises(ValueError):
        spinner.set_timer("spin", -1)


def test_a_crashed_actor_is_stopped_before_its_replacement_and_stop_survives_on_stop_errors():
    stops: list[str] = []

    class Fragile(Echo):
        def on_stop(self) -> None:
            stops.append("stop")
            raise RuntimeError("on_stop failed")

    runtime = Runtime("n1", clock=FakeClock())
    runtime.spawn(lambda: Fragile("echo"))
    caller = runtime.spawn(Caller)
    runtime.start()
    caller.ask("n1/echo", -1)  # crashes Fragile
    run_until_idle(runtime)
    assert stops == ["stop"]  # the crashed instance released what it owned
    caller.ask("n2/elsewhere", 1, timeout_ms=1000)  # unsendable, fails at once
    runtime.stop()  # Fragile raises again in on_stop: the caller still gets stopped
    assert stops == ["stop", "stop"]


def test_a_timer_set_during_a_step_does_not_hold_back_older_due_ones():
    class Two(Actor):
        def __init__(self) -> None:
            super().__init__("two")
            self.fired: list[str] = []

        def on_a_timeout(self, now_ms: int) -> None:
            self.fired.append("a")
            self.set_timer("b", 0)  # lands before "c" in the heap, but is new

        def on_b_timeout(self, now_ms: int) -> None:
            self.fired.append("b")

        def on_c_timeout(self, now_ms: int) -> None:
            self.fired.append("c")

    clock = FakeClock()
    runtime = Runtime("n1", clock=clock)
    two = runtime.spawn(Two)
    runtime.start()
    two.set_timer("a", 100)
    two.set_timer("c", 500)
    runtime.step(now_ms=clock.now_ms + 1000)  # a step running late: both were due
    assert two.fired == ["a", "c"]
    runtime.step(now_ms=clock.now_ms + 1000)
    assert two.fired == ["a", "c", "b"]


def test_a_deferred_call_is_answered_once_when_the_handler_replies_later():
    from zafka.actors.runtime.actor import DEFERRED

    class Later(Actor):
        def __init__(self) -> None:
            super().__init__("later")
            self.parked: list[Envelope] = []

        def on_ping(self, envelope: Envelope) -> object:
            self.parked.append(envelope)
            return DEFERRED

        HANDLERS = handlers({Ping: on_ping})

    runtime, _, _, caller = make_runtime()
    later = runtime.spawn(Later)
    caller.ask("n1/later", 5)
    run_until_idle(runtime)
    assert caller.results == [] and len(later.parked) == 1
    later.reply(later.parked[0], Pong(sent_ms=5))
    run_until_idle(runtime)
    assert [r.message for r in caller.results] == [Pong(sent_ms=5)]


def test_work_posted_from_another_thread_runs_on_the_next_step():
    import threading

    runtime, _, echo, _ = make_runtime()
    seen: list[str] = []
    poster = threading.Thread(target=runtime.post, args=(lambda: seen.append("ran"),))
    poster.start()
    poster.join(5)
    assert seen == []  # not on the posting thread
    runtime.post(lambda: 1 / 0)  # a failing one is logged, never stops the loop
    runtime.step()
    assert seen == ["ran"]
    assert runtime.actor("echo") is echo


def test_despawn_removes_one_actor_and_answers_what_it_had_queued():
    runtime, _, _, caller = make_runtime()
    caller.ask("n1/echo", 1)  # queued, not yet handled
    runtime.despawn("echo")
    run_until_idle(runtime)
    assert caller.results[0].error.name == "STOPPED"
    caller.ask("n1/echo", 2)
    run_until_idle(runtime)
    assert caller.results[1].error.name == "UNKNOWN_ACTOR"
    runtime.despawn("echo")  # already gone: nothing to do
