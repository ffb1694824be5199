"""The codec: bad input of every kind, fuzzing, and what bad input tells the runtime."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.codec_helpers import (
    CALLEE,
    CALLER,
    NO_ROUTING,
    PING_HEADER,
    ROUTING,
    decode_error,
    envelopes,
    packed,
    routing,
)
from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport import codec
from zafka.transport.client import MetadataRequest, ProduceRequest
from zafka.transport.codec import DecodeError, decode, encode
from zafka.transport.control import error_reply_for
from zafka.transport.envelope import Envelope
from zafka.transport.schema import INT_MAX, INT_MIN

# --- bad input: frames and limits checked before unpacking ----------------------------------


@pytest.mark.parametrize("frames", [[], (), None, "abc", b"\x98", 7, [7], [b"", "x"], [None]])
def test_what_is_not_a_list_of_buffers_is_refused(frames):
    err = decode_error(frames)
    assert err.error.name == "INVALID_REQUEST" and routing(err) == NO_ROUTING


def test_too_many_payload_frames_are_refused_before_unpacking():
    frames = [b"\xc1", *[b""] * (limits.payload_frames_max + 1)]
    err = decode_error(frames)
    assert "payload_frames_max" in str(err) and routing(err) == NO_ROUTING


def test_an_oversize_header_is_refused_before_unpacking():
    err = decode_error([b"\xc1" * (limits.header_bytes_max + 1)])
    assert "header_bytes_max" in str(err) and routing(err) == NO_ROUTING


def test_a_header_of_exactly_header_bytes_max_is_accepted():
    def header(n: int) -> bytes:
        topics = (*["t" * 30_000] * (limits.header_bytes_max // 30_000), "v" * n)
        return encode(Envelope(CALLER, CALLEE, MetadataRequest(topics), 1))[0]

    n = 300 + limits.header_bytes_max - len(header(300))  # both str16
    assert len(header(n)) == limits.header_bytes_max
    assert decode([header(n)]).message.topics[-1] == "v" * n  # type: ignore[attr-defined]


# --- bad input: not msgpack ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",  # never used in msgpack
        msgpack.packb(PING_HEADER) + b"\x00",  # trailing bytes
        b"\x91" * 2000 + b"\x00",  # deeper than the unpacker's stack
        b"\xdd\xff\xff\xff\xff",  # array32 declaring 4 G items
        b"\xdf\xff\xff\xff\xff",  # map32 declaring 4 G entries
        b"\xdb\xff\xff\xff\xff",  # str32 declaring 4 GiB
        b"\xc6\xff\xff\xff\xff",  # bin32 declaring 4 GiB
        b"\xc9\xff\xff\xff\xff\x01",  # ext32 declaring 4 GiB
        b"\xd6\xff\x00\x00\x00\x00",  # a timestamp (ext -1)
        b"\xa2\xff\xfe",  # str that is not UTF-8
        msgpack.packb("x" * (limits.string_bytes_max + 1)),
        msgpack.packb(b"x" * (limits.string_bytes_max + 1)),
        msgpack.packb([0] * (limits.collection_items_max + 1)),
        msgpack.packb({str(i): 0 for i in range(limits.collection_items_max + 1)}),
        msgpack.packb([*PING_HEADER[:7], {1: 5}]),  # a non-string map key
        msgpack.packb([*PING_HEADER[:7], {(1,): 5}]),  # an array as a map key
        msgpack.packb([*PING_HEADER[:7], {"sent_ms": msgpack.ExtType(1, b"x")}]),
        b"\x98\x01\xa4Ping\x09" + b"\xdb\xff\xff\xff\xff",  # huge sender inside a header
    ],
)
def test_what_is_not_msgpack_within_limits_is_refused_unread(raw):
    err = decode_error([raw])
    assert err.error.name == "INVALID_REQUEST" and routing(err) == NO_ROUTING
    assert "not msgpack" in str(err)


def test_every_prefix_of_a_valid_header_is_refused():
    env = Envelope(CALLER, CALLEE, ProduceRequest("topic", 1, -1, 1000, b"x"), 7)
    header, payload = encode(env)
    for end in range(len(header)):
        err = decode_error([header[:end], payload])
        assert err.error.name == "INVALID_REQUEST" and routing(err) == NO_ROUTING, end
    assert decode([header, payload]) == env


# --- bad input: the header's shape ----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected_routing"),
    [
        ({"version": 1}, NO_ROUTING),
        (1, NO_ROUTING),
        ([], NO_ROUTING),
        (PING_HEADER[:7], {**ROUTING}),
        ([*PING_HEADER, None], {**ROUTING}),
        (PING_HEADER[:4], {**NO_ROUTING, "correlation_id": 9, "sender": CALLER}),
    ],
)
def test_a_header_must_be_an_array_of_eight(header, expected_routing):
    err = decode_error(packed(header))
    assert err.error.name == "INVALID_REQUEST" and routing(err) == expected_routing


def test_nested_values_a_thousand_deep_are_refused_where_they_land():
    deep = b"\x91" * 1000 + b"\x00"
    assert "version must be an int" in str(decode_error([deep]))
    body = b"\x81\xa7sent_ms" + deep
    header = msgpack.packb(PING_HEADER[:7])[1:]  # the first seven fields, without the array tag
    err = decode_error([b"\x98" + header + body])
    assert "Ping.sent_ms: expected int, got tuple" in str(err) and routing(err) == ROUTING


@pytest.mark.parametrize(
    ("position", "value", "name", "lost"),
    [
        (0, "1", "INVALID_REQUEST", None),
        (0, True, "INVALID_REQUEST", None),
        (0, None, "INVALID_REQUEST", None),
        (0, 2, "UNSUPPORTED_VERSION", None),
        (0, 0, "UNSUPPORTED_VERSION", None),
        (0, -1, "UNSUPPORTED_VERSION", None),
        (0, INT_MAX, "UNSUPPORTED_VERSION", None),
        (1, "Nope", "INVALID_REQUEST", None),
        (1, 1, "INVALID_REQUEST", None),
        (1, b"Ping", "INVALID_REQUEST", None),
        (1, None, "INVALID_REQUEST", None),
        (2, -1, "INVALID_REQUEST", "correlation_id"),
        (2, "9", "INVALID_REQUEST", "correlation_id"),
        (2, True, "INVALID_REQUEST", "correlation_id"),
        (2, 2**63, "INVALID_REQUEST", "correlation_id"),
        (2, 1.0, "INVALID_REQUEST", "correlation_id"),
        (3, "app", "INVALID_REQUEST", "sender"),
        (3, "", "INVALID_REQUEST", "sender"),
        (3, "a/b/c", "INVALID_REQUEST", "sender"),
        (3, "/app", "INVALID_REQUEST", "sender"),
        (3, b"client-1/app", "INVALID_REQUEST", "sender"),
        (3, 5, "INVALID_REQUEST", "sender"),
        (4, "broker-1/", "INVALID_REQUEST", "target"),
        (4, None, "INVALID_REQUEST", "target"),
        (5, 3, "INVALID_REQUEST", None),
        (5, "x", "INVALID_REQUEST", None),
        (5, None, "INVALID_REQUEST", None),
        (5, -2, "INVALID_REQUEST", None),
        (6, 0, "INVALID_REQUEST", "reply"),
        (6, None, "INVALID_REQUEST", "reply"),
        (6, "false", "INVALID_REQUEST", "reply"),
        (7, None, "INVALID_REQUEST", None),
        (7, [], "INVALID_REQUEST", None),
        (7, {}, "INVALID_REQUEST", None),
        (7, {"sent_ms": "5"}, "INVALID_REQUEST", None),
        (7, {"sent_ms": True}, "INVALID_REQUEST", None),
        (7, {"sent_ms": 2.0}, "INVALID_REQUEST", None),
        (7, {"sent_ms": 5, "extra": 1}, "INVALID_REQUEST", None),
        (7, {b"sent_ms": 5}, "INVALID_REQUEST", None),
        (7, {"sent_ms": None}, "INVALID_REQUEST", None),
    ],
)
def test_each_header_field_is_checked_and_the_rest_of_the_routing_kept(position, value, name, lost):
    header = list(PING_HEADER)
    header[position] = value
    err = decode_error(packed(header))
    assert err.error.name == name, str(err)
    expected = dict(ROUTING)
    if lost is not None:
        expected[lost] = None
    assert routing(err) == expected


def test_a_reply_must_carry_its_call_id():
    header = [1, "Pong", 0, CALLEE, CALLER, -1, True, {"sent_ms": 5}]
    err = decode_error(packed(header))
    assert "a reply needs" in str(err)
    assert routing(err) == {"correlation_id": 0, "sender": CALLEE, "target": CALLER, "reply": True}


def test_an_unknown_version_is_answered_even_with_another_header_layout():
    err = decode_error(packed([2, "Ping", 9, CALLER, CALLEE]))
    assert err.error.name == "UNSUPPORTED_VERSION"
    assert routing(err) == {**ROUTING, "reply": None}


def test_an_unknown_message_type_is_named():
    header = list(PING_HEADER)
    header[1] = "DropAllTopics"
    err = decode_error(packed(header))
    assert "unknown message type 'DropAllTopics'" in str(err) and routing(err) == ROUTING


def test_an_epoch_is_required_in_range_where_the_type_has_one():
    fetch = [1, "LeaderAndIsrRequest", 9, CALLER, CALLEE, 7, False]
    body = {"topic": "t", "partition": 0, "leader": 2, "leader_epoch": 0, "isr": [2]}
    body |= {"replicas": [2], "version": 0, "leader_endpoint": "tcp://127.0.0.1:1"}
    assert decode(packed([*fetch, body])).epoch == 7
    fetch[5] = codec.EPOCH_MAX + 1
    assert "epoch must be an int" in str(decode_error(packed([*fetch, body])))


# --- bad input: bodies and payload frames ---------------------------------------------------


def produce_header() -> bytes:
    env = Envelope(CALLER, CALLEE, ProduceRequest("t", 0, 1, 10, b""), 9)
    return encode(env)[0]


def test_missing_payload_frames_are_refused_with_routing():
    err = decode_error([produce_header()])
    assert "ProduceRequest takes 1 payload frames, got 0" in str(err) and routing(err) == ROUTING


def test_extra_payload_frames_are_refused_with_routing():
    err = decode_error([produce_header(), b"batch", b"more"])
    assert "takes 1 payload frames, got 2" in str(err) and routing(err) == ROUTING
    err = decode_error([*packed(PING_HEADER), b""])
    assert "Ping takes 0 payload frames, got 1" in str(err) and routing(err) == ROUTING


@pytest.mark.parametrize(
    ("brokers", "problem"),
    [
        (({"id": 1},), "BrokerInfo: unknown fields [], missing fields [endpoint, kafka_endpoint]"),
        (
            ({"id": "1", "endpoint": "e", "kafka_endpoint": None},),
            "BrokerInfo.id: expected int, got str",
        ),
        ((5,), "MetadataResponse.brokers[0]: expected map (BrokerInfo), got int"),
        (
            ({"id": 1, "endpoint": "e", "kafka_endpoint": None}, None),
            "brokers[1]: expected map (BrokerInfo), got NoneType",
        ),
    ],
)
def test_nested_bodies_are_checked_all_the_way_down(brokers, problem):
    body = {"brokers": brokers, "topics": (), "controller_id": -1}
    header = [1, "MetadataResponse", 9, CALLEE, CALLER, -1, True, body]
    err = decode_error(packed(header))
    assert problem in str(err)
    assert routing(err) == {"correlation_id": 9, "sender": CALLEE, "target": CALLER, "reply": True}


# --- fuzz: only DecodeError may escape ------------------------------------------------------


def assert_decodes_or_refuses(frames: list[object]) -> None:
    try:
        env = decode(frames)
    except DecodeError as err:
        assert err.error.name in ("INVALID_REQUEST", "UNSUPPORTED_VERSION")
        assert err.correlation_id is None or isinstance(err.correlation_id, int)
        assert err.sender is None or isinstance(err.sender, str)
        assert err.reply in (None, True, False)
    else:
        assert decode(encode(env)) == env


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=300), max_size=4))
def test_fuzz_arbitrary_frames(frames):
    assert_decodes_or_refuses(frames)


wire_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT_MIN, INT_MAX),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.sampled_from([1, "Ping", "Pong", CALLER, CALLEE, -1, 0, 9, "sent_ms"]),
)
wire_values = st.recursive(
    wire_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(wire_scalars, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500)
@given(st.lists(wire_values, max_size=9), st.lists(st.binary(max_size=8), max_size=2))
def test_fuzz_msgpack_headers_of_any_shape(header, payload):
    assert_decodes_or_refuses([msgpack.packb(header), *payload])


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes(), st.data())
def test_fuzz_mutations_of_valid_encodings(env, data):
    frames = [bytes(f) for f in encode(env)]
    header = bytearray(frames[0])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(header)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "cut", "drop_frame"]))
        if action == "flip" and at < len(header):
            header[at] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            header[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del header[at : at + data.draw(st.integers(1, 4))]
        elif action == "cut":
            del header[at:]
        elif action == "drop_frame" and len(frames) > 1:
            frames.pop()
    assert_decodes_or_refuses([bytes(header), *frames[1:]])


# --- what bad input tells the runtime (it answers per docs/PROTOCOL.md, "Bad input") ---


def test_a_decode_error_carries_the_routing_it_could_read():
    readable = decode_error(packed([*PING_HEADER[:7], {}]))
    assert (readable.correlation_id, readable.sender, readable.reply) == (9, CALLER, False)
    assert "missing fields [sent_ms]" in readable.detail
    for header in (b"\xc1", msgpack.packb([1, "Ping", 9, 5])):
        assert decode_error([header]).sender is None  # nobody to answer by name
    short = decode_error([msgpack.packb(PING_HEADER[:6])])  # routing sits at fixed positions
    assert (short.correlation_id, short.sender) == (9, CALLER)
    as_reply = decode_error(packed([1, "Pong", 9, CALLER, CALLEE, -1, True, {}]))
    assert as_reply.reply is True


def test_an_error_reply_clips_a_long_detail_to_fit_the_wire():
    message = error_reply_for(ZafkaError("INVALID_REQUEST", "é" * 100_000))
    assert message.code == 42
    assert len(message.message.encode()) <= limits.string_bytes_max
    reply = Envelope(CALLEE, CALLER, message, 3, reply=True)
    assert decode(encode(reply)) == reply
