"""Helpers shared by the codec tests: routing constants, strategies built from the
annotations, and decoding expected to fail."""

from __future__ import annotations

import dataclasses
import types
import typing

import msgpack
import pytest
from hypothesis import strategies as st

from zafka.transport import codec
from zafka.transport.codec import DecodeError, decode
from zafka.transport.envelope import Envelope
from zafka.transport.names import TopicPartition
from zafka.transport.schema import INT_MAX, INT_MIN, Frame, Message, message_types

FAMILY_MESSAGES = sorted(
    name
    for name, cls in message_types().items()
    if cls.__module__ in {family.__name__ for family in codec.FAMILIES}
)
CALLER, CALLEE = "client-1/app", "broker-1/broker"
PING_HEADER = [1, "Ping", 9, CALLER, CALLEE, -1, False, {"sent_ms": 5}]
ROUTING = {"correlation_id": 9, "sender": CALLER, "target": CALLEE, "reply": False}
NO_ROUTING = dict.fromkeys(ROUTING)


# --- strategies built from the annotations -------------------------------------------------


def values(tp: object) -> st.SearchStrategy[object]:
    """Every value a field of type `tp` may hold."""
    if tp == Frame:
        raw = st.binary(max_size=32)
        return st.one_of(raw, raw.map(bytearray), raw.map(memoryview))
    scalars = {
        int: st.integers(INT_MIN, INT_MAX),
        bool: st.booleans(),
        float: st.floats(allow_nan=False),
        str: st.text(max_size=8),
        bytes: st.binary(max_size=8),
    }
    if tp in scalars:
        return scalars[tp]
    if tp is TopicPartition:
        return st.builds(TopicPartition, st.text(max_size=8), st.integers(0, INT_MAX))
    if isinstance(tp, type) and issubclass(tp, Message):
        return messages(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(values(arg) for arg in args))
    if origin is tuple:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=4), values(args[1]), max_size=3)
    if tp is type(None):
        return st.none()
    raise AssertionError(f"no strategy for {tp!r}")


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: values(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return st.builds(cls, **fields)


names = st.text(
    st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=6
)
addresses = st.tuples(names, names).map("/".join)


@st.composite
def envelopes(draw: st.DrawFn, cls: type[Message] | None = None) -> Envelope:
    if cls is None:
        cls = message_types()[draw(st.sampled_from(FAMILY_MESSAGES))]
    reply = draw(st.booleans())
    return Envelope(
        sender=draw(addresses),
        target=draw(addresses),
        message=draw(messages(cls)),
        correlation_id=draw(st.integers(1 if reply else 0, codec.CORRELATION_ID_MAX)),
        epoch=-1 if cls.EPOCH is None else draw(st.integers(-1, codec.EPOCH_MAX)),
        reply=reply,
    )


def decode_error(frames: object) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(frames)
    return info.value


def routing(err: DecodeError) -> dict[str, object]:
    return {k: getattr(err, k) for k in ROUTING}


def packed(header: object) -> list[bytes]:
    return [msgpack.packb(header)]
