"""The codec: round trips of every message, zero-copy payloads, what encode refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.codec_helpers import (
    CALLEE,
    CALLER,
    FAMILY_MESSAGES,
    decode_error,
    envelopes,
)
from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport import codec
from zafka.transport.client import MetadataRequest, ProduceRequest
from zafka.transport.codec import decode, encode
from zafka.transport.control import Ping
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.envelope import Envelope
from zafka.transport.schema import Message, message_types

# --- round trips ------------------------------------------------------------------------


def test_every_message_class_of_every_family_is_registered():
    defined = {
        name
        for family in codec.FAMILIES
        for name, obj in vars(family).items()
        if isinstance(obj, type) and issubclass(obj, Message) and obj.__module__ == family.__name__
    }
    assert defined == set(FAMILY_MESSAGES)
    assert {"Ping", "ErrorReply", "ProduceRequest", "CreateTopicsRequest"} <= defined
    assert {"HeartbeatRequest", "LeaderAndIsrRequest", "MetadataResponse"} <= defined


@pytest.mark.parametrize("name", FAMILY_MESSAGES)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_message_round_trips(name, data):
    env = data.draw(envelopes(message_types()[name]))
    frames = encode(env)
    assert decode(frames) == env
    assert decode([bytes(f) for f in frames]) == env


def test_payload_frames_pass_through_without_copies():
    batch = memoryview(bytearray(b"b" * 1000))
    env = Envelope(CALLER, CALLEE, ProduceRequest("t", 0, -1, 100, batch), 3)
    frames = encode(env)
    assert len(frames) == 2 and frames[1] is batch
    decoded = decode(frames)
    assert decoded.message.batch is batch
    raw = b"r" * 100
    assert encode(Envelope(CALLER, CALLEE, ProduceRequest("t", 0, 1, 1, raw), 4))[1] is raw
    owned = bytearray(b"o" * 10)
    view = encode(Envelope(CALLER, CALLEE, ProduceRequest("t", 0, 1, 1, owned), 5))[1]
    assert isinstance(view, memoryview) and view.obj is owned


def test_zmq_frames_are_read_through_their_buffer():
    env = Envelope(CALLER, CALLEE, ProduceRequest("t", 0, 1, 100, b"payload"), 3)
    frames = [zmq.Frame(bytes(f)) for f in encode(env)]
    decoded = decode(frames)
    assert isinstance(decoded.message.batch, memoryview)
    assert bytes(decoded.message.batch) == b"payload" and decoded == env


def test_frames_may_be_any_contiguous_buffer():
    headers = (encode(Envelope(CALLER + "x" * n, CALLEE, Ping(5), 1))[0] for n in range(4))
    header = next(h for h in headers if len(h) % 4 == 0)
    assert decode([bytearray(header)]).message == Ping(5)
    assert decode((memoryview(header),)).message == Ping(5)
    assert decode([memoryview(header).cast("I")]).message == Ping(5)
    released = memoryview(b"x")
    released.release()

    class NotAFrame:
        buffer = b"bytes, not a view"

    for frame in (memoryview(header * 2)[::2], released, NotAFrame()):
        assert "contiguous buffer" in str(decode_error([header, frame]))


def test_the_example_in_protocol_md_is_what_encode_produces():
    text = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    intro, block = text.split("Example: ")[1].split("```")[:2]
    example = bytes.fromhex(" ".join(line for line in block.splitlines() if "=" not in line))
    env = Envelope("client-7/app", "broker-1/broker", Ping(sent_ms=1700000000000), 1)
    assert f"{len(example)}-byte header" in intro
    assert encode(env) == [example] and decode([example]) == env


# --- encode refuses what the peer would refuse -----------------------------------------------


FETCH = LeaderAndIsrRequest("t", 0, 1, 0, (1,), (1,), 0, "")  # a type with an epoch
HUGE = MetadataRequest(("x" * 30_000,) * (limits.header_bytes_max // 30_000 + 1))


@pytest.mark.parametrize(
    ("env", "name", "problem"),
    [
        (Envelope(CALLER, CALLEE, object()), "INVALID_REQUEST", "not a registered message"),
        (Envelope("broker", CALLEE, Ping(1)), "INVALID_REQUEST", "sender must be"),
        (Envelope(CALLER, "a/b/c", Ping(1)), "INVALID_REQUEST", "target must be"),
        (Envelope(CALLER, CALLEE, Ping(1), -1), "INVALID_REQUEST", "correlation_id"),
        (Envelope(CALLER, CALLEE, Ping(1), reply=True), "INVALID_REQUEST", "a reply needs"),
        (Envelope(CALLER, CALLEE, Ping(1), reply=1), "INVALID_REQUEST", "reply must be a bool"),  # type: ignore[arg-type]
        (Envelope(CALLER, CALLEE, Ping(1), epoch=3), "INVALID_REQUEST", "epoch must be -1"),
        (Envelope(CALLER, CALLEE, FETCH, epoch=-2), "INVALID_REQUEST", "epoch must be an int"),
        (Envelope(CALLER, CALLEE, Ping(1), version=2), "UNSUPPORTED_VERSION", "version 2"),
        (Envelope(CALLER, CALLEE, HUGE), "MESSAGE_TOO_LARGE", "header_bytes_max"),
        (Envelope("a/\ud800", CALLEE, Ping(1)), "INVALID_REQUEST", "sender must be"),
        (
            Envelope(CALLER, "a/" + "x" * limits.string_bytes_max, Ping(1)),
            "INVALID_REQUEST",
            "target",
        ),
    ],
)
def test_encode_refuses_invalid_envelopes(env, name, problem):
    with pytest.raises(ZafkaError, match=f"{name}.*{problem}"):
        encode(env)
