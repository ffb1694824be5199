"""Control messages: liveness probes and the generic replies every actor understands."""

from __future__ import annotations

from dataclasses import dataclass

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.schema import Message


@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Liveness probe; answered with a Pong echoing `sent_ms`."""

    sent_ms: int


@dataclass(frozen=True, slots=True)
class Pong(Message):
    """Answer to a Ping, echoing its `sent_ms` (the sender's clock)."""

    sent_ms: int


@dataclass(frozen=True, slots=True)
class ErrorReply(Message):
    """The reply to a call that failed: a code from the error table and a human-readable detail."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The reply to a call that succeeded and has nothing to say."""


def error_reply_for(err: ZafkaError) -> ErrorReply:
    """The ErrorReply carrying `err`, its detail clipped so it always fits the wire."""
    return ErrorReply(code=err.error.code, message=err.detail[: limits.string_bytes_max // 4])
