"""DescribeConfigs for Kafka clients' admin APIs (`describe_configs`, kafka-configs.sh).

A topic's configs are the broker actor's DescribeTopics: every topic config zafka knows
(storage/config.py), each either the topic's own setting (source DYNAMIC_TOPIC_CONFIG) or
its default (DEFAULT_CONFIG). A broker's are the few broker settings a Kafka client asks
about that zafka has (read-only: zafka's broker settings change only with a restart), and
only for this broker, as Kafka answers a broker resource only on that broker. Other resource
types (broker loggers, client metrics) get INVALID_REQUEST. Altering configs is not served.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, kafka_code
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.actors.kafka.topics import DEFAULT_REPLICATION_FACTOR
from zafka.storage.config import BOOLEANS, topic_config_defaults
from zafka.transport import admin as native
from zafka.transport.kafka import wire
from zafka.transport.names import broker_id_of

DESCRIBE_CONFIGS = 32
TOPIC, BROKER = 2, 4  # Kafka's resource types
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5  # config sources
BOOLEAN, STRING, INT, LONG, LIST = 1, 2, 3, 5, 7  # config types (v3+)
_TYPES = {
    "cleanup.policy": LIST,
    "zafka.fsync": STRING,
    "max.message.bytes": INT,
    "min.insync.replicas": INT,
}  # the others: BOOLEAN for true/false, else LONG
_INVALID_REQUEST = ErrorCode.invalid_request.value


def describe_configs(gateway: KafkaGateway, exchange: Exchange, default_partitions: int) -> None:
    resources = exchange.request.body.resources
    topics = [r.resource_name for r in resources if r.resource_type == TOPIC]
    calls = [(gateway.broker, native.DescribeTopicsRequest(tuple(topics)))] if topics else []
    me = broker_id_of(gateway.broker)
    broker_values = {
        "broker.id": str(me),
        "num.partitions": str(default_partitions),
        "default.replication.factor": str(DEFAULT_REPLICATION_FACTOR),
        "message.max.bytes": str(limits.batch_bytes_max),
    }

    def answer(results: list[object]) -> None:
        found = _descriptions(results, topics)
        schema = wire.response_type(DESCRIBE_CONFIGS, exchange.request.version)
        rows = []
        for resource in resources:
            keys = resource.configuration_keys
            if resource.resource_type == TOPIC:
                code, message, entries = found[resource.resource_name]
                rows.append(_result(schema, resource, code, message, _wanted(entries, keys)))
            elif resource.resource_type == BROKER and resource.resource_name in ("", str(me)):
                entries = [(k, v, STATIC_BROKER_CONFIG) for k, v in broker_values.items()]
                rows.append(_result(schema, resource, 0, None, _wanted(entries, keys)))
            else:
                why = f"resource type {resource.resource_type} {resource.resource_name!r} is not"
                why += f" described here (broker {me} describes topics and itself)"
                rows.append(_result(schema, resource, _INVALID_REQUEST, why, []))
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, results=tuple(rows)))

    gateway.gather(exchange, calls, limits.kafka_call_timeout_ms, answer)


Entry = tuple[str, str, int]  # name, value, source


def _descriptions(results: list[object], names: list[str]) -> dict:
    """(code, message, entries) per topic asked, from the broker's DescribeTopics."""
    if not results:
        return {}
    result = results[0]
    if not isinstance(result, native.DescribeTopicsResponse):
        return {name: (kafka_code(result), str(result), []) for name in names}
    described = {}
    for topic in result.topics:
        entries = [
            (key, topic.configs.get(key, default), _source(key, topic.configs))
            for key, default in topic_config_defaults().items()
        ]
        described[topic.name] = (topic.error_code, None, entries if not topic.error_code else [])
    missing = ErrorCode.unknown_topic_or_partition.value
    return {name: described.get(name, (missing, "no such topic", [])) for name in names}


def _source(key: str, configs: dict[str, str]) -> int:
    return DYNAMIC_TOPIC_CONFIG if key in configs else DEFAULT_CONFIG


def _wanted(entries: list[Entry], keys: tuple[str, ...] | None) -> list[Entry]:
    return entries if keys is None else [e for e in entries if e[0] in keys]


def _result(schema: type, resource, code: int, message: str | None, entries) -> Any:
    config_type = wire.nested(schema, "DescribeConfigsResourceResult")
    configs = tuple(
        wire.build(
            config_type,
            name=name,
            value=value,
            read_only=source == STATIC_BROKER_CONFIG,
            config_source=source,
            is_default=source == DEFAULT_CONFIG,
            is_sensitive=False,
            synonyms=(),
            config_type=_TYPES.get(name, BOOLEAN if value in BOOLEANS else LONG),
            documentation=None,
        )
        for name, value, source in entries
    )
    return wire.build(
        wire.nested(schema, "DescribeConfigsResult"),
        error_code=ErrorCode(code),
        error_message=message,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=configs,
    )
