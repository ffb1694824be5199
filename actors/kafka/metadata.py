"""ApiVersions and Metadata for Kafka clients.

ApiVersions lists exactly the APIs and versions the listener serves (transport/kafka/wire.py
SERVED); a request in a version newer than served is answered in v0 with
UNSUPPORTED_VERSION and that list, so the client retries with one it shares (KIP-511).
Metadata is the broker's own MetadataRequest, answered from its metadata cache, with each
broker's Kafka listener as its endpoint (brokers without one are left out) and the
controller's id; topics are auto-created as for native clients when the broker allows it.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, kafka_code
from zafka.transport import client as native
from zafka.transport.kafka import wire
from zafka.transport.names import is_internal

NO_THROTTLE = datetime.timedelta(0)
CLUSTER_ID = "zafka"
_UNKNOWN_TOPIC_ID = ErrorCode.unknown_topic_id.value


def api_versions(gateway: KafkaGateway, exchange: Exchange) -> None:
    request = exchange.request
    schema = wire.response_type(wire.API_VERSIONS, request.version)
    version_type = wire.nested(schema, "ApiVersion")
    keys = tuple(
        version_type(api_key=key, min_version=low, max_version=high)
        for key, (_, low, high) in sorted(wire.SERVED.items())
    )
    code = ErrorCode.none if request.body is not None else ErrorCode.unsupported_version
    exchange.done(wire.build(schema, error_code=code, api_keys=keys, throttle_time=NO_THROTTLE))


def metadata(gateway: KafkaGateway, exchange: Exchange) -> None:
    """Topics asked by name, or (v10+, as librdkafka asks for a KIP-848 assignment) by
    topic id: an id is looked up first, and one of no topic is UNKNOWN_TOPIC_ID."""
    body = exchange.request.body
    ids = {t.topic_id for t in body.topics or () if t.name is None}
    resolve_topics(gateway, exchange, ids, lambda known: _ask(gateway, exchange, known))


def _ask(gateway: KafkaGateway, exchange: Exchange, known: dict[uuid.UUID, str]) -> None:
    body = exchange.request.body
    unknown = tuple(
        t.topic_id for t in body.topics or () if t.name is None and t.topic_id not in known
    )
    names = None
    if body.topics is not None:
        names = tuple(
            t.name if t.name is not None else known[t.topic_id]
            for t in body.topics
            if t.name is not None or t.topic_id in known
        )
    if exchange.request.version == 0 and names == ():
        names = None  # v0: an empty list meant every topic
    call = [(gateway.broker, native.MetadataRequest(names))]
    gateway.gather(
        exchange,
        call,
        limits.kafka_call_timeout_ms,
        lambda r: _answer(gateway, exchange, names, r[0], unknown),
    )


def _answer(
    gateway: KafkaGateway,
    exchange: Exchange,
    names: tuple[str, ...] | None,
    result: object,
    unknown: tuple[uuid.UUID, ...],
) -> None:
    schema = wire.response_type(3, exchange.request.version)
    missing = tuple(_topic(schema, None, i, _UNKNOWN_TOPIC_ID, ()) for i in unknown)
    if not isinstance(result, native.MetadataResponse):
        code = kafka_code(result)
        topics = tuple(_topic(schema, name, None, code, ()) for name in names or ())
        exchange.done(_response(schema, (), -1, topics + missing))
        return
    brokers = tuple(_broker(schema, b) for b in result.brokers if b.kafka_endpoint)
    topics = tuple(
        _topic(schema, t.name, gateway.topic_id(t.name), t.error_code, t.partitions)
        for t in result.topics
    )
    exchange.done(_response(schema, brokers, result.controller_id, topics + missing))


def resolve_topics(gateway: KafkaGateway, exchange: Exchange, ids: set, then) -> None:
    """`then({topic id: name})` for `ids` (those of no topic left out); ids this gateway
    has not sent are looked up in the broker's metadata."""
    if ids <= gateway.topic_names.keys():
        exchange.guarded(lambda: then(gateway.topic_names))
        return

    def learned(results: list[object]) -> None:
        meta = results[0]
        if isinstance(meta, native.MetadataResponse):
            for topic in meta.topics:
                gateway.topic_id(topic.name)
        then(gateway.topic_names)

    call = [(gateway.broker, native.MetadataRequest(None))]
    gateway.gather(exchange, call, limits.kafka_call_timeout_ms, learned)


def _response(schema: type, brokers: tuple, controller_id: int, topics: tuple) -> Any:
    return wire.build(
        schema,
        throttle_time=NO_THROTTLE,
        brokers=brokers,
        cluster_id=CLUSTER_ID,
        controller_id=controller_id,
        topics=topics,
    )


def _broker(schema: type, broker: native.BrokerInfo) -> Any:
    host, _, port = (broker.kafka_endpoint or "").rpartition(":")
    return wire.build(
        wire.nested(schema, "MetadataResponseBroker"), node_id=broker.id, host=host, port=int(port)
    )


def _topic(schema: type, name: str | None, topic_id, code: int, partitions: tuple) -> Any:
    partition_type = wire.nested(schema, "MetadataResponsePartition")
    return wire.build(
        wire.nested(schema, "MetadataResponseTopic"),
        error_code=ErrorCode(code),
        name=name,
        topic_id=topic_id if code in (0, _UNKNOWN_TOPIC_ID) else None,
        is_internal=name is not None and is_internal(name),
        partitions=tuple(
            wire.build(
                partition_type,
                error_code=ErrorCode.none if p.leader >= 0 else ErrorCode.leader_not_available,
                partition_index=p.partition,
                leader_id=p.leader,
                leader_epoch=p.leader_epoch,
                replica_nodes=p.replicas,
                isr_nodes=p.isr,
                offline_replicas=(),
            )
            for p in partitions
        ),
    )
