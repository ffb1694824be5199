"""The runtime: one per process, one thread, one loop for every actor of the process.

`step(now_ms)` does one round without blocking: take what the transport received (decoding
it; bad input gets exactly one ErrorReply), fire due timers and call timeouts, and let each
actor handle a bounded number of queued messages. `run()` repeats it, waiting on the
transport's poller in between. Messages between actors of the same process skip the codec:
envelopes are immutable and go straight to the target's mailbox.

Supervision: an actor whose handler raises something other than a ZafkaError is logged,
its pending calls fail with STOPPED, and it is restarted with fresh state from its factory.
More than `limits.actor_restarts_max` crashes within `limits.actor_restart_window_s` stop the
process loudly (`SupervisionError` out of `run`): a crash loop is a bug to see, not to hide.
Why one thread and a poller loop: see docs/ARCHITECTURE.md (measured in
benchmarks/transport_bench.py).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event

from zafka import clock as clocks
from zafka import limits
from zafka.actors.runtime.actor import Actor
from zafka.errors import ZafkaError
from zafka.transport import codec
from zafka.transport.control import error_reply_for
from zafka.transport.envelope import ANY_NODE, Envelope, Transport, split_address

log = logging.getLogger(__name__)

# Stop taking from the network while this many envelopes wait in mailboxes, so remote
# senders are slowed by TCP flow control instead of losing messages to full mailboxes.
RECEIVE_PAUSE_QUEUED = limits.mailbox_messages_max // 2 - limits.receive_messages_per_step_max
TIMER_HEAP_SLACK = 4096  # check the timer heap for dead entries every this many pushes


class SupervisionError(RuntimeError):
    """An actor crashed too often: the process must stop."""


def _node_of(addr: str) -> str | None:
    try:
        return split_address(addr)[0]
    except ValueError:
        return None


@dataclass
class _Cell:
    factory: Callable[[], Actor]
    actor: Actor
    mailbox: deque[Envelope] = field(default_factory=deque)
    crashes_s: deque[float] = field(default_factory=deque)
    generation: int = 0  # bumped on restart: timers of the old incarnation are ignored


class Runtime:
    """Hosts actors on node `node`; `transport` connects it to other nodes (None: local)."""

    def __init__(
        self,
        node: str,
        transport: Transport | None = None,
        clock: Callable[[], int] = clocks.monotonic_ms,
    ) -> None:
        if not node or "/" in node:
            raise ValueError(f"node name must be non-empty without '/': {node!r}")
        self.node = node
        self._transport = transport
        self._clock = clock
        self._cells: dict[str, _Cell] = {}
        self._timers: list[tuple[int, int, str, int, str, object]] = []
        self._live_timers: dict[str, dict[str, int]] = {}  # actor -> timer -> its sequence
        self._ready: dict[str, _Cell] = {}  # cells with mail, in the order it came
        self._sequence = itertools.count(1)
        self._correlation = itertools.count(1)
        self._started = False
        self._posted: deque[Callable[[], object]] = deque()  # from other threads
        self._waiting = False  # run() is (about to be) blocked in the transport's wait
        self.dropped = 0  # envelopes that could not be delivered (full, unknown, unsendable)

    # --- actors ---------------------------------------------------------------------------

    def spawn(self, factory: Callable[[], Actor]) -> Actor:
        """Create an actor from `factory` (also used to restart it) and host it."""
        actor = factory()
        if actor.name in self._cells:
            raise ValueError(f"actor {actor.name} already exists on {self.node}")
        actor.runtime = self
        self._cells[actor.name] = _Cell(factory, actor)
        if self._started:
            actor.on_start()
        return actor

    def actor(self, name: str) -> Actor:
        return self._cells[name].actor

    def start(self) -> None:
        """Start every actor in spawn order."""
        self._started = True
        for cell in list(self._cells.values()):
            cell.actor.on_start()

    def stop(self) -> None:
        """Stop actors in reverse spawn order; every pending call fails with STOPPED and
        every queued call gets a STOPPED reply. Then the transport closes."""
        stopped = ZafkaError("STOPPED", f"node {self.node} is stopping")
        try:
            for cell in reversed(list(self._cells.values())):
                self._stop_cell(cell, stopped)
        finally:
            self._started = False
            if self._transport is not None:
                self._transport.close()

    def despawn(self, name: str) -> None:
        """Stop and remove one actor (e.g. a deleted topic's partition): queued calls get
        STOPPED, its pending calls fail, its timers are forgotten, `on_stop` runs."""
        cell = self._cells.pop(name, None)
        if cell is None:
            return
        self._live_timers.pop(name, None)
        self._ready.pop(name, None)
        self._stop_cell(cell, ZafkaError("STOPPED", f"actor {name} was removed"))

    def _stop_cell(self, cell: _Cell, err: ZafkaError) -> None:
        while cell.mailbox:
            envelope = cell.mailbox.popleft()
            if envelope.correlation_id and not envelope.reply:
                self._refuse(envelope, err)
        self._retire(cell.actor, err)

    # --- sending and delivery -------------------------------------------------------------

    def post(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the runtime's thread at its next step. The one thread-safe method:
        for other threads (kazoo's watch callbacks, the SDK's user threads). A `run` loop
        blocked in the transport's wait is woken at once (without a transport, within its
        idle wait)."""
        self._posted.append(fn)  # deque.append is atomic
        if self._waiting and self._transport is not None:
            self._transport.wake()

    def _run_posted(self) -> int:
        ran = 0
        while self._posted:
            fn = self._posted.popleft()
            try:
                fn()
            except Exception:
                log.exception("work posted to %s raised", self.node)
            ran += 1
        return ran

    def now_ms(self) -> int:
        """The runtime's clock (monotonic milliseconds; a test's fake clock in tests)."""
        return self._clock()

    def next_correlation_id(self) -> int:
        return next(self._correlation)

    def send(self, envelope: Envelope) -> bool:
        """Route an envelope: to a local mailbox, or encoded through the transport.
        False if it was dropped unanswered (a call is then failed by its caller)."""
        node, actor = split_address(envelope.target)
        if node == self.node:
            return self._deliver(actor, envelope)
        if self._transport is not None and self._transport.send(node, codec.encode(envelope)):
            return True
        self.dropped += 1
        return False

    def _deliver(self, actor_name: str, envelope: Envelope) -> bool:
        cell = self._cells.get(actor_name)
        refusal = None
        if cell is None:
            refusal = "UNKNOWN_ACTOR"
        elif not envelope.reply and len(cell.mailbox) >= limits.mailbox_messages_max:
            # Replies are never refused: their caller awaits them, and its in-flight call
            # limit already bounds how many can come.
            refusal = "BUSY"
        if refusal is None:
            cell.mailbox.append(envelope)
            self._ready[actor_name] = cell
            return True
        self.dropped += 1
        if envelope.correlation_id and not envelope.reply:
            self._refuse(envelope, ZafkaError(refusal, envelope.target))
            return True  # answered, if not by its target
        return False

    def _refuse(self, request: Envelope, err: ZafkaError) -> None:
        """Answer a call on behalf of its target, which will not see it."""
        reply = error_reply_for(err)
        self.send(
            Envelope(request.target, request.sender, reply, request.correlation_id, reply=True)
        )

    def _queued(self) -> int:
        return sum(len(cell.mailbox) for cell in self._ready.values())

    def _receive(self) -> int:
        if self._transport is None:
            return 0
        received = 0
        while received < limits.receive_messages_per_step_max:
            item = self._transport.recv()
            if item is None:
                break
            received += 1
            from_node, frames = item
            try:
                envelope = codec.decode(frames)
            except codec.DecodeError as err:
                if not err.reply:  # never answer a reply: two nodes must not trade errors
                    self._answer_bad_input(from_node, err.sender, err.correlation_id, err)
                continue
            if not self._routed_right(from_node, envelope):
                detail = f"{envelope.sender} -> {envelope.target} did not come from {from_node}"
                bad = ZafkaError("INVALID_REQUEST", detail)
                self._answer_bad_input(from_node, None, envelope.correlation_id, bad)
                continue
            self._deliver(split_address(envelope.target)[1], envelope)
        for node in self._transport.take_lost_links():
            self._fail_calls_to(node)
        return received

    def unsent(self, target: str) -> ZafkaError:
        """Why a message to `target` could not be sent: its node's link is down
        (NETWORK_EXCEPTION: the caller refreshes its metadata), or a queue is full (BUSY)."""
        node = _node_of(target)
        if self._transport is not None and node is not None and self._transport.is_down(node):
            return ZafkaError("NETWORK_EXCEPTION", f"no link to {node} now")
        return ZafkaError("BUSY", f"could not send to {target}")

    def _fail_calls_to(self, node: str) -> None:
        """`node`'s link dropped: the calls awaiting its replies fail now (retriable)."""
        err = ZafkaError("NETWORK_EXCEPTION", f"the link to {node} dropped before it answered")
        for cell in list(self._cells.values()):
            actor = cell.actor
            lost = [c for c, (_, target) in actor._pending.items() if _node_of(target) == node]
            for correlation_id in lost:
                self._invoke(cell, actor._fail_call, correlation_id, err)

    def _routed_right(self, from_node: str, envelope: Envelope) -> bool:
        """The envelope names the node it came from as its sender's, and this node (or
        ANY_NODE) as its target's. A reply through a link we opened as ANY_NODE (to a server
        we knew only by endpoint) may name any sender: that is how we learn its name."""
        target_node = _node_of(envelope.target)
        if target_node != self.node and target_node != ANY_NODE:
            return False
        return from_node == ANY_NODE or _node_of(envelope.sender) == from_node

    def _answer_bad_input(
        self, from_node: str, sender: str | None, correlation_id: int | None, err: ZafkaError
    ) -> None:
        """Exactly one ErrorReply to the peer that sent something unusable (the rules are in
        docs/PROTOCOL.md, "Bad input")."""
        log.info("bad input from %s: %s", from_node, err)
        target = sender if sender and _node_of(sender) == from_node else f"{from_node}/peer"
        message = error_reply_for(err)
        correlation_id = correlation_id or 0  # 0: nothing to pair with, so sent as a cast
        sender = f"{self.node}/runtime"
        reply = Envelope(sender, target, message, correlation_id, reply=correlation_id != 0)
        if self._transport is not None:
            self._transport.send(from_node, codec.encode(reply))

    # --- timers and call timeouts ---------------------------------------------------------

    def schedule_timer(self, actor_name: str, timer: str, delay_ms: int) -> None:
        sequence = next(self._sequence)
        self._live_timers.setdefault(actor_name, {})[timer] = sequence
        self._push(self._clock() + delay_ms, sequence, actor_name, "timer", timer)

    def cancel_timer(self, actor_name: str, timer: str) -> None:
        self._live_timers.get(actor_name, {}).pop(timer, None)

    def schedule_call_timeout(self, actor_name: str, correlation_id: int, timeout_ms: int) -> None:
        self._push(
            self._clock() + timeout_ms, next(self._sequence), actor_name, "call", correlation_id
        )

    def _push(self, deadline: int, sequence: int, actor_name: str, kind: str, key: object) -> None:
        generation = self._cells[actor_name].generation
        heapq.heappush(self._timers, (deadline, sequence, actor_name, generation, kind, key))
        if len(self._timers) > TIMER_HEAP_SLACK and sequence % TIMER_HEAP_SLACK == 0:
            self._drop_dead_timers()

    def _drop_dead_timers(self) -> None:
        """Forget entries of answered calls and cancelled timers (the heap stays bounded
        by what is live, not by how many calls were ever made)."""

        def live(entry: tuple[int, int, str, int, str, object]) -> bool:
            _, sequence, actor_name, generation, kind, key = entry
            cell = self._cells.get(actor_name)
            if cell is None or cell.generation != generation:
                return False
            if kind == "call":
                return key in cell.actor._pending
            return self._live_timers.get(actor_name, {}).get(key) == sequence

        self._timers = [entry for entry in self._timers if live(entry)]
        heapq.heapify(self._timers)

    def next_deadline_ms(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def _fire_due(self, now_ms: int) -> int:
        """Fire what was due when this step began; what handlers schedule now (even with
        a delay of 0) waits for the next step, so a timer cannot starve the loop."""
        fired, first_new, scheduled_now = 0, next(self._sequence), []
        while self._timers and self._timers[0][0] <= now_ms:
            entry = heapq.heappop(self._timers)
            if entry[1] > first_new:  # set by a handler during this step: next step
                scheduled_now.append(entry)
                continue
            _, sequence, actor_name, generation, kind, key = entry
            cell = self._cells.get(actor_name)
            if cell is None or cell.generation != generation:
                continue
            if kind == "call":
                timeout = ZafkaError("REQUEST_TIMED_OUT", f"call {key} from {actor_name}")
                self._invoke(cell, cell.actor._fail_call, key, timeout)
            elif self._live_timers.get(actor_name, {}).get(key) == sequence:
                del self._live_timers[actor_name][key]
                self._invoke(cell, getattr(cell.actor, f"on_{key}_timeout"), now_ms)
            fired += 1
        for entry in scheduled_now:
            heapq.heappush(self._timers, entry)
        return fired

    # --- the loop -------------------------------------------------------------------------

    def step(self, now_ms: int | None = None) -> int:
        """One round without blocking; returns how much work it did (0: idle)."""
        now_ms = self._clock() if now_ms is None else now_ms
        work = self._run_posted() + self._fire_due(now_ms)
        if self._queued() < RECEIVE_PAUSE_QUEUED:  # else leave it queued: TCP pushes back
            work += self._receive()
        return work + self._run_mailboxes()

    def _run_mailboxes(self) -> int:
        """One turn (up to `limits.mailbox_messages_per_step_max` messages) for every cell with
        mail, including those that got it during this step; the cost is by cells with mail,
        not by cells."""
        work, turned = 0, set()
        while batch := [(n, c) for n, c in self._ready.items() if n not in turned]:
            for name, cell in batch:
                turned.add(name)
                for _ in range(min(len(cell.mailbox), limits.mailbox_messages_per_step_max)):
                    self._invoke(cell, cell.actor.on_message, cell.mailbox.popleft())
                    work += 1
                if not cell.mailbox and self._ready.get(name) is cell:
                    del self._ready[name]
        return work

    def run(self, stop: Event, idle_wait_ms: int = 100) -> None:
        """Start, loop until `stop` is set (or supervision gives up), then stop."""
        self.start()
        try:
            while not stop.is_set():
                if self.step():
                    continue
                wait_ms = idle_wait_ms
                deadline = self.next_deadline_ms()
                if deadline is not None:
                    wait_ms = max(0, min(wait_ms, deadline - self._clock()))
                # post() appends, then reads _waiting; we set it, then look at _posted: one
                # of the two sees the other, so no posted work waits out the idle wait.
                self._waiting = True
                if not self._posted:
                    self._idle_wait(stop, wait_ms)
                self._waiting = False
        finally:
            self.stop()

    def _idle_wait(self, stop: Event, wait_ms: int) -> None:
        if self._transport is not None:
            self._transport.wait(wait_ms)
        else:
            stop.wait(wait_ms / 1000)

    # --- supervision ----------------------------------------------------------------------

    def _invoke(self, cell: _Cell, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("actor %s/%s crashed", self.node, cell.actor.name)
            self._restart(cell)

    def _restart(self, cell: _Cell) -> None:
        now_s = clocks.monotonic_s()
        cell.crashes_s.append(now_s)
        while cell.crashes_s and cell.crashes_s[0] < now_s - limits.actor_restart_window_s:
            cell.crashes_s.popleft()
        if len(cell.crashes_s) > limits.actor_restarts_max:
            raise SupervisionError(
                f"actor {self.node}/{cell.actor.name} crashed {len(cell.crashes_s)} times "
                f"in {limits.actor_restart_window_s:.0f}s; stopping the process"
            )
        old = cell.actor
        cell.generation += 1
        self._live_timers.pop(old.name, None)
        self._retire(old, ZafkaError("STOPPED", f"actor {old.name} restarted after a crash"))
        cell.actor = cell.factory()
        cell.actor.runtime = self
        if self._started:
            try:
                cell.actor.on_start()
            except Exception as exc:
                raise SupervisionError(f"actor {self.node}/{old.name} failed to restart") from exc

    def _retire(self, actor: Actor, err: ZafkaError) -> None:
        """Fail the actor's pending calls and let it release what it owns; what it raises
        is logged, never allowed to stop the others."""
        actor.fail_all_calls(err)
        try:
            actor.on_stop()
        except Exception:
            log.exception("actor %s/%s raised in on_stop", self.node, actor.name)
