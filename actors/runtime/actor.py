"""The Actor base class: one exhaustive dispatcher, handlers, timers, call and cast.

An actor owns its state and shares nothing. The runtime feeds it one envelope at a time
(`on_message`) and fires its timers; handlers never block. Each actor class ends with its
dispatch table, `HANDLERS = handlers({FetchRequest: on_fetch_request, ...})`: message type
-> the method that handles it (called by name, so a subclass may override it); the tables
of its base classes are merged in (every actor answers Ping). A message type not in the
table is INVALID_REQUEST. A timer named `flush` fires `on_flush_timeout(now_ms)`. What a
handler returns (a Message) is the reply to a call, or DEFERRED when it will `reply` later
itself; a ZafkaError it raises becomes an ErrorReply with that code. Anything else it
raises is a crash: the runtime supervises (loop.py).

A call's callback gets the reply envelope or the ZafkaError the call failed with (an
ErrorReply, a timeout, a refused send); `answer_of` turns either into the response message
or a ZafkaError, also for a response whose `error_code` is not 0: the one way every caller
reads a reply.

Who may call whom is written in actors/README.md; the graph is kept acyclic so no two actors
ever wait on each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from zafka import limits
from zafka.errors import ZafkaError, from_code
from zafka.transport.control import ErrorReply, Ping, Pong, error_reply_for
from zafka.transport.envelope import NO_EPOCH, Envelope, address

if TYPE_CHECKING:
    from zafka.actors.runtime.loop import Runtime

log = logging.getLogger(__name__)
ReplyCallback = Callable[[Envelope | ZafkaError], None]
_FENCED = {
    "leader": "FENCED_LEADER_EPOCH",
    "group": "FENCED_MEMBER_EPOCH",
    "controller": "STALE_CONTROLLER_EPOCH",
}


class _Deferred:
    def __repr__(self) -> str:
        return "DEFERRED"


# What a call's handler returns when it will answer later with `reply` (a parked fetch).
DEFERRED = _Deferred()


def answer_of(reply: Envelope | ZafkaError, context: str = "") -> object:
    """The response message of a call, or a ZafkaError: the call failed, or the response
    carries an error code (its code kept; `context` says what was asked)."""
    if isinstance(reply, ZafkaError):
        return reply
    return error_of(reply.message, context) or reply.message


def error_of(response: object, context: str = "") -> ZafkaError | None:
    """The ZafkaError for a response whose `error_code` is not 0, else None."""
    code = getattr(response, "error_code", 0)
    if not code:
        return None
    return from_code(code, context or type(response).__name__.removesuffix("Response"))


def handlers(table: dict[type, Callable[..., object]]) -> Mapping[type, Callable[..., object]]:
    """An actor class's dispatch table, read-only."""
    return MappingProxyType(table)


class Actor:
    """Subclass, add handlers and list them in `HANDLERS`. Spawn with `Runtime.spawn`."""

    HANDLERS: ClassVar[Mapping[type, Callable[..., object]]]  # this class's own entries
    dispatch_table: ClassVar[dict[type, str]]  # merged over the bases: type -> method name

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.dispatch_table = {}
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("HANDLERS", {})
            cls.dispatch_table.update({kind: fn.__name__ for kind, fn in own.items()})

    def __init__(self, name: str) -> None:
        if not name or "/" in name:
            raise ValueError(f"actor name must be non-empty without '/': {name!r}")
        self.name = name
        self.runtime: Runtime | None = None
        self._pending: dict[int, tuple[ReplyCallback, str]] = {}  # correlation id -> callback

    # --- lifecycle, overridable -----------------------------------------------------------

    def on_start(self) -> None:
        """Called once, before the first message, in spawn order."""

    def on_stop(self) -> None:
        """Called once, after the last message, in reverse spawn order."""

    def current_epoch(self, kind: str, message: object) -> int:
        """The epoch of `kind` ("leader", "group", "controller") that `message` must carry at
        least (e.g. the epoch of the partition or group it names), or -1 for any. Messages
        with an older one are refused before any handler runs."""
        return NO_EPOCH

    def on_ping(self, envelope: Envelope) -> Pong:
        """Every actor answers the liveness probe, echoing the sender's clock."""
        message: Ping = envelope.message
        return Pong(sent_ms=message.sent_ms)

    # --- the dispatcher -------------------------------------------------------------------

    def on_message(self, envelope: Envelope) -> None:
        """Validate the envelope, then run its handler and answer a call exactly once."""
        if envelope.reply:
            self._complete_call(envelope)
            return
        is_call = envelope.correlation_id != 0
        try:
            handler = self.handler_for(envelope)
            self._check_epoch(envelope)
            result = handler(envelope)
        except ZafkaError as err:
            if is_call:
                self.reply_error(envelope, err)
            return
        except Exception as exc:
            if is_call:
                self.reply_error(envelope, ZafkaError("UNKNOWN_SERVER_ERROR", type(exc).__name__))
            raise  # a crash: the runtime logs it and supervises
        if not is_call or result is DEFERRED:
            return
        if result is None:  # a cast-only message sent as a call: refuse it, no crash
            detail = f"{type(envelope.message).__name__} to {self.name} has no reply"
            self.reply_error(envelope, ZafkaError("INVALID_REQUEST", detail))
            return
        try:
            self.reply(envelope, result)
        except ZafkaError as err:  # e.g. a reply too large for the wire
            self.reply_error(envelope, err)

    def handler_for(self, envelope: Envelope) -> Callable[[Envelope], object]:
        """The handler of `envelope`'s message type by the dispatch table; INVALID_REQUEST
        if it has none. Overridable: an actor may route what the table accepts its own way."""
        name = self.dispatch_table.get(type(envelope.message))
        if name is None:
            kind = type(envelope.message).__name__
            raise ZafkaError("INVALID_REQUEST", f"actor {self.name} does not handle {kind}")
        return getattr(self, name)

    def _check_epoch(self, envelope: Envelope) -> None:
        kind = getattr(type(envelope.message), "EPOCH", None)
        if kind is None:
            return
        current = self.current_epoch(kind, envelope.message)
        if envelope.epoch < current:
            raise ZafkaError(_FENCED[kind], f"{kind} epoch {envelope.epoch} < {current}")

    # --- sending --------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return address(self._runtime().node, self.name)

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError(f"actor {self.name} is not spawned")
        return self.runtime

    def cast(self, target: str, message: object, epoch: int = NO_EPOCH) -> bool:
        """Send without a reply. False if it could not be queued (it is dropped)."""
        return self._runtime().send(Envelope(self.address, target, message, 0, epoch))

    def call(
        self,
        target: str,
        message: object,
        timeout_ms: int,
        on_reply: ReplyCallback,
        epoch: int = NO_EPOCH,
    ) -> int:
        """Send a request; `on_reply` later gets the reply envelope, or a ZafkaError
        (the ErrorReply's code, REQUEST_TIMED_OUT after `timeout_ms`, STOPPED on stop).
        Never blocks. Returns the correlation id."""
        if not 0 < timeout_ms <= limits.call_timeout_ms_max:
            raise ValueError(f"timeout_ms must be in 1..{limits.call_timeout_ms_max}")
        if len(self._pending) >= limits.inflight_calls_max:
            raise ZafkaError("BUSY", f"{self.name} already awaits {len(self._pending)} calls")
        runtime = self._runtime()
        correlation_id = runtime.next_correlation_id()
        self._pending[correlation_id] = (on_reply, target)
        runtime.schedule_call_timeout(self.name, correlation_id, timeout_ms)
        try:
            sent = runtime.send(Envelope(self.address, target, message, correlation_id, epoch))
        except ZafkaError:  # the message cannot be encoded: no call was made
            self._pending.pop(correlation_id, None)
            raise
        if not sent:
            self._fail_call(correlation_id, runtime.unsent(target))
        return correlation_id

    def reply(self, request: Envelope, message: object) -> None:
        self._runtime().send(
            Envelope(self.address, request.sender, message, request.correlation_id, reply=True)
        )

    def reply_error(self, request: Envelope, err: ZafkaError) -> None:
        self.reply(request, error_reply_for(err))

    # --- timers ---------------------------------------------------------------------------

    def set_timer(self, name: str, delay_ms: int) -> None:
        """Fire `on_<name>_timeout(now_ms)` once, `delay_ms` from now (replaces a pending one).
        A timer set to 0 from its own handler fires in the next step, not in this one."""
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, got {delay_ms}")
        if not callable(getattr(self, f"on_{name}_timeout", None)):
            raise AttributeError(f"{type(self).__name__} has no on_{name}_timeout")
        self._runtime().schedule_timer(self.name, name, delay_ms)

    def cancel_timer(self, name: str) -> None:
        self._runtime().cancel_timer(self.name, name)

    # --- pending calls (driven by the runtime) --------------------------------------------

    def _complete_call(self, envelope: Envelope) -> None:
        entry = self._pending.pop(envelope.correlation_id, None)
        if entry is None:
            return  # late reply after a timeout, or a stray: dropped
        message = envelope.message
        if isinstance(message, ErrorReply):
            entry[0](from_code(message.code, message.message))
        else:
            entry[0](envelope)

    def _fail_call(self, correlation_id: int, err: ZafkaError) -> None:
        entry = self._pending.pop(correlation_id, None)
        if entry is not None:
            entry[0](err)

    def fail_all_calls(self, err: ZafkaError) -> None:
        """Every pending call gets `err` (on stop and before a restart). A callback that
        raises is logged: it must not keep the others from running."""
        for correlation_id in list(self._pending):
            try:
                self._fail_call(correlation_id, err)
            except Exception:
                log.exception("%s: a reply callback raised while failing calls", self.name)

    HANDLERS = handlers({Ping: on_ping})


Actor.dispatch_table = {kind: fn.__name__ for kind, fn in Actor.HANDLERS.items()}
