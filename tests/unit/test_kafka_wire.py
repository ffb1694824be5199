"""The Kafka listener's framing and request decoding (transport/kafka/wire.py), pure."""

from __future__ import annotations

import datetime
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.request_header.v2.header import RequestHeader
from kio.serial import entity_reader, entity_writer

from zafka import limits
from zafka.transport.kafka import wire


def frame(api_key: int, version: int, body: object, correlation_id: int = 7) -> bytes:
    out = io.BytesIO()
    header = RequestHeader(
        request_api_key=api_key,
        request_api_version=version,
        correlation_id=correlation_id,
        client_id="test",
    )
    entity_writer(RequestHeader)(out, header)
    entity_writer(type(body))(out, body)
    return out.getvalue()


def test_a_request_decodes_with_its_header():
    body = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    request = wire.decode_request(frame(3, 12, body))
    assert (request.api_key, request.version, request.correlation_id) == (3, 12, 7)
    assert request.client_id == "test" and request.body == body


def test_api_versions_newer_than_served_is_answered_in_v0():
    newer = struct.pack(">hhi", wire.API_VERSIONS, 99, 5) + b"\0\0"
    request = wire.decode_request(newer)
    assert (request.version, request.correlation_id, request.body) == (0, 5, None)


def test_an_api_not_served_gets_that_apis_error_answer():
    with pytest.raises(wire.RequestError) as caught:
        wire.decode_request(struct.pack(">hhi", 29, 1, 11) + b"\0" * 8)  # DescribeAcls v1
    answer = caught.value.answer
    assert answer is not None
    size, correlation_id = struct.unpack_from(">ii", answer)
    assert (size, correlation_id) == (len(answer) - 4, 11)
    # size, correlation id, throttle time, then the error code
    assert struct.unpack_from(">h", answer, 12)[0] == wire.UNSUPPORTED_VERSION


def test_an_api_kio_does_not_know_closes_the_connection():
    with pytest.raises(wire.RequestError) as caught:
        wire.decode_request(struct.pack(">hhi", 31000, 0, 1))
    assert caught.value.answer is None


def test_a_request_that_does_not_parse_closes_the_connection():
    good = frame(18, 3, ApiVersionsRequest(client_software_name="a", client_software_version="1"))
    with pytest.raises(wire.RequestError) as caught:
        wire.decode_request(good[:-3])
    assert caught.value.answer is None and "does not parse" in str(caught.value)


def test_a_size_prefix_beyond_the_limit_is_refused_before_reading():
    assert wire.frame_size(struct.pack(">i", 100)) == 100
    for size in (0, -1, limits.kafka_request_bytes_max + 1):
        with pytest.raises(ValueError):
            wire.frame_size(struct.pack(">i", size))


def test_a_response_frame_carries_its_size_and_correlation_id():
    schema = wire.response_type(wire.API_VERSIONS, 3)
    body = wire.build(
        schema, error_code=ErrorCode.none, api_keys=(), throttle_time=datetime.timedelta(0), x=1
    )
    data = wire.encode_response(42, body)
    assert struct.unpack_from(">ii", data) == (len(data) - 4, 42)
    header_size = 8  # ApiVersions answers always use response header v0
    decoded, _ = entity_reader(schema)(data, header_size)
    assert decoded.api_keys == ()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(sorted(wire.SERVED)), st.integers(0, 15))
def test_any_bytes_are_a_request_or_a_request_error(tail, api_key, version):
    data = struct.pack(">hhi", api_key, version, 1) + tail
    try:
        request = wire.decode_request(data)
    except wire.RequestError as err:  # the only error that may escape
        assert err.answer is None or struct.unpack_from(">i", err.answer, 4)[0] == 1
    else:
        assert (request.api_key, request.correlation_id) == (api_key, 1)


def test_every_api_served_has_kio_schemas_for_each_version():
    for api_key, (name, low, high) in wire.SERVED.items():
        for version in range(low, high + 1):
            assert wire.response_type(api_key, version).__name__ == f"{name}Response"


def test_consumer_protocol_data_decodes_with_kafka_pythons_own_reader():
    from kafka.protocol.consumer.metadata import (
        ConsumerProtocolAssignment,
        ConsumerProtocolSubscription,
    )

    subscription = ConsumerProtocolSubscription.decode(wire.consumer_subscription(("a", "b")))
    assert (subscription.version, list(subscription.topics)) == (0, ["a", "b"])
    assigned = ConsumerProtocolAssignment.decode(
        wire.consumer_assignment([("a", 0), ("b", 3), ("a", 2)])
    )
    by_topic = {t.topic: list(t.partitions) for t in assigned.assigned_partitions}
    assert by_topic == {"a": [0, 2], "b": [3]}
