"""Kafka's wire protocol: size-prefixed frames, request headers, and the APIs this listener
serves, with schemas and encoding from kio (dataclasses generated from Kafka's own JSON
message definitions: flexible versions, tagged fields and request header v2 as kio gives).

Pure functions: bytes in, kio entities out, and back. `decode_request` raises
`RequestError` carrying whatever it could read (the correlation id, when the header was
readable), so the listener answers or closes as Kafka does (docs/KAFKA.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import sys
import uuid
from typing import Any, NamedTuple

from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment
from kio.schema.consumer_protocol_assignment.v0.data import TopicPartition as AssignedPartitions
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError

from zafka import limits

SIZE = struct.Struct(">i")
UNSUPPORTED_VERSION = 35
_KEY_VERSION_ID = struct.Struct(">hhi")
_TOPIC_IDS = uuid.UUID("7a61666b-612d-746f-7069-632d69647321")  # namespace of topic ids
_VERSION_0 = b"\0\0"  # the int16 version before each consumer-protocol structure

API_VERSIONS = 18
# api key: (name, lowest, highest version served). Versions whose requests carry topic ids
# (KIP-516) instead of names are left out: zafka names topics.
SERVED: dict[int, tuple[str, int, int]] = {
    0: ("Produce", 3, 11),
    1: ("Fetch", 4, 12),
    2: ("ListOffsets", 1, 7),
    3: ("Metadata", 1, 12),
    8: ("OffsetCommit", 2, 8),
    9: ("OffsetFetch", 1, 7),
    10: ("FindCoordinator", 0, 3),
    11: ("JoinGroup", 0, 7),
    12: ("Heartbeat", 0, 4),
    13: ("LeaveGroup", 0, 4),
    14: ("SyncGroup", 0, 5),
    15: ("DescribeGroups", 0, 6),
    16: ("ListGroups", 0, 5),
    18: ("ApiVersions", 0, 3),
    19: ("CreateTopics", 2, 7),
    20: ("DeleteTopics", 1, 5),
    22: ("InitProducerId", 0, 4),
    32: ("DescribeConfigs", 1, 4),
    37: ("CreatePartitions", 0, 3),
    42: ("DeleteGroups", 0, 2),
    68: ("ConsumerGroupHeartbeat", 0, 1),
    69: ("ConsumerGroupDescribe", 0, 1),
}


class RequestError(Exception):
    """A request that cannot be served. `answer` is the error response to send (None: close
    the connection, as Kafka does for a request it cannot parse)."""

    def __init__(self, detail: str, answer: bytes | None = None) -> None:
        super().__init__(detail)
        self.answer = answer


class Request(NamedTuple):
    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: Any  # the kio request entity


def frame_size(prefix: bytes) -> int:
    """The size a frame's 4-byte prefix declares; ValueError beyond the limit (the
    connection is closed before anything is allocated)."""
    (size,) = SIZE.unpack(prefix)
    if not 0 < size <= limits.kafka_request_bytes_max:
        raise ValueError(f"request of {size} bytes: expected 1..{limits.kafka_request_bytes_max}")
    return size


def decode_request(frame: bytes) -> Request:
    """The request in one frame (without its size prefix)."""
    if len(frame) < _KEY_VERSION_ID.size:
        raise RequestError(f"a request header needs 8 bytes, got {len(frame)}")
    api_key, version, correlation_id = _KEY_VERSION_ID.unpack_from(frame)
    served = SERVED.get(api_key)
    if served is None or not served[1] <= version <= served[2]:
        if api_key == API_VERSIONS:  # answered in v0 with the versions served (KIP-511)
            return Request(api_key, 0, correlation_id, None, None)
        what = f"API {api_key} v{version}"
        if served is not None:
            what = f"{served[0]} v{version}: this broker serves v{served[1]}..v{served[2]}"
        answer = error_response(api_key, version, correlation_id, UNSUPPORTED_VERSION)
        raise RequestError(f"{what} is not served", answer)
    name = served[0]
    schema = load_request_schema(api_key, version)
    try:
        header, at = entity_reader(schema.__header_schema__)(frame, 0)
        body, _ = entity_reader(schema)(frame, at)
    except (SerialError, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise RequestError(f"{name} v{version} does not parse: {type(exc).__name__}") from None
    # Bytes after the request are ignored, as Kafka's broker ignores them (librdkafka 2.16
    # sends 3 after a Metadata v12 request).
    return Request(api_key, version, correlation_id, getattr(header, "client_id", None), body)


def error_response(api_key: int, version: int, correlation_id: int, code: int) -> bytes | None:
    """The frame of an error answer to an API this listener does not serve at `version`:
    the API's response with `code` as its error and nothing else in it; None when kio does
    not know that API version (then the connection is closed, as Kafka closes it)."""
    try:
        schema = load_response_schema(api_key, version)
    except (KioIndexError, ImportError):
        return None
    values = {}
    for f in dataclasses.fields(schema):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required or f.name == "error_code":
            values[f.name] = _empty(f.name, f.type, code)
    frame = encode_response(correlation_id, schema(**values))
    return frame


def response_type(api_key: int, version: int) -> type:
    return load_response_schema(api_key, version)


def encode_response(correlation_id: int, body: Any) -> bytes:
    """The whole frame (size prefix, response header, body) answering request
    `correlation_id`."""
    schema = type(body)
    header_schema = schema.__header_schema__
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    entity_writer(header_schema)(out, header_schema(correlation_id=correlation_id))
    entity_writer(schema)(out, body)
    frame = out.getbuffer()
    SIZE.pack_into(frame, 0, len(frame) - SIZE.size)
    return bytes(frame)


def build(schema: type, **values: Any) -> Any:
    """An instance of the kio entity `schema` from `values`, leaving out the fields its
    version does not have (so one translation serves every version)."""
    names = {f.name for f in dataclasses.fields(schema)}
    return schema(**{k: v for k, v in values.items() if k in names})


def per_topic(
    topic_type: type, rows: list[tuple[str, Any]], name: str = "name", parts: str = "partitions"
) -> tuple:
    """Entities of `topic_type` from (topic name, partition entity) rows, topics in the order
    first seen: the shape of every per-topic answer."""
    grouped: dict[str, list] = {}
    for topic, part in rows:
        grouped.setdefault(topic, []).append(part)
    return tuple(build(topic_type, **{name: t, parts: tuple(p)}) for t, p in grouped.items())


def topic_uuid(name: str) -> uuid.UUID:
    """The Kafka topic id of topic `name`: derived from the name (zafka names topics), so
    every broker gives the same one; a re-created topic keeps it, as before KIP-516."""
    return uuid.uuid5(_TOPIC_IDS, name)


def consumer_subscription(topics: tuple[str, ...]) -> bytes:
    """A member's metadata as Kafka's consumer protocol encodes it (version 0, no user
    data): what DescribeGroups carries for each member."""
    return _consumer_data(ConsumerProtocolSubscription(topics=tuple(topics)))


def consumer_assignment(partitions: list[tuple[str, int]]) -> bytes:
    """A member's assignment as Kafka's consumer protocol encodes it (version 0)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    assigned = tuple(
        AssignedPartitions(topic=topic, partitions=tuple(ps)) for topic, ps in by_topic.items()
    )
    return _consumer_data(ConsumerProtocolAssignment(assigned_partitions=assigned))


def _consumer_data(entity: Any) -> bytes:
    out = io.BytesIO()
    out.write(_VERSION_0)
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def nested(schema: type, name: str) -> type:
    """The entity class `name` defined beside `schema` (the same API version)."""
    return getattr(sys.modules[schema.__module__], name)


def _empty(name: str, annotation: object, code: int) -> object:
    """The value of a required response field in an error answer."""
    text = str(annotation)
    if name == "error_code" or "ErrorCode" in text:
        return ErrorCode(code)
    if "tuple" in text:
        return ()
    if "timedelta" in text.lower():
        return datetime.timedelta(0)
    if "str" in text:
        return None if "None" in text else ""
    if "bool" in text:
        return False
    return 0
