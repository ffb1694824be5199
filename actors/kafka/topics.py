"""CreateTopics, DeleteTopics and CreatePartitions for Kafka clients' admin APIs.

Each is the broker actor's own CreateTopics / DeleteTopics / CreatePartitions (it hands
them to the controller's path in ZooKeeper), one result per topic. A partition count or
replication factor of -1 means the broker's default (its `--default-partitions`; replication
factor 1, Kafka's `default.replication.factor`). Manual replica assignments and
`validate_only` are not served: such a topic gets INVALID_REQUEST saying so, and nothing is
created or grown.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, kafka_code, millis
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.transport import admin as native
from zafka.transport.kafka import wire

DEFAULT_REPLICATION_FACTOR = 1
_INVALID_REQUEST = ErrorCode.invalid_request.value


def create_topics(gateway: KafkaGateway, exchange: Exchange, default_partitions: int) -> None:
    body = exchange.request.body
    refused: dict[str, str] = {}
    wanted = []
    for topic in body.topics:
        if topic.assignments or getattr(body, "validate_only", False):
            refused[topic.name] = "manual assignments and validate_only are not served"
            continue
        configs = {c.name: c.value for c in topic.configs if c.value is not None}
        partitions = topic.num_partitions if topic.num_partitions != -1 else default_partitions
        factor = topic.replication_factor
        factor = factor if factor != -1 else DEFAULT_REPLICATION_FACTOR
        wanted.append(native.NewTopic(topic.name, partitions, factor, configs))
    calls = [(gateway.broker, native.CreateTopicsRequest(tuple(wanted)))] if wanted else []
    timeout_ms = millis(body.timeout) + limits.kafka_call_timeout_ms

    def answer(results: list[object]) -> None:
        outcome = _outcomes(results, [t.name for t in wanted])
        outcome.update({name: (_INVALID_REQUEST, why) for name, why in refused.items()})
        counts = {t.name: (t.partitions, t.replication_factor) for t in wanted}
        exchange.done(_created(exchange, [t.name for t in body.topics], outcome, counts))

    gateway.gather(exchange, calls, timeout_ms, answer)


def delete_topics(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    names = [str(name) for name in body.topic_names]
    calls = [(gateway.broker, native.DeleteTopicsRequest(tuple(names)))] if names else []
    timeout_ms = millis(body.timeout) + limits.kafka_call_timeout_ms

    def answer(results: list[object]) -> None:
        outcome = _outcomes(results, names)
        schema = wire.response_type(20, exchange.request.version)
        result_type = wire.nested(schema, "DeletableTopicResult")
        responses = tuple(
            wire.build(
                result_type,
                name=name,
                error_code=ErrorCode(outcome[name][0]),
                error_message=outcome[name][1],
            )
            for name in names
        )
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, responses=responses))

    gateway.gather(exchange, calls, timeout_ms, answer)


def create_partitions(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    refused: dict[str, str] = {}
    wanted = []
    for topic in body.topics:
        if topic.assignments or body.validate_only:
            refused[topic.name] = "manual assignments and validate_only are not served"
        else:
            wanted.append(native.PartitionCount(topic.name, topic.count))
    calls = [(gateway.broker, native.CreatePartitionsRequest(tuple(wanted)))] if wanted else []
    timeout_ms = millis(body.timeout) + limits.kafka_call_timeout_ms

    def answer(results: list[object]) -> None:
        outcome = _outcomes(results, [t.name for t in wanted])
        outcome.update({name: (_INVALID_REQUEST, why) for name, why in refused.items()})
        schema = wire.response_type(37, exchange.request.version)
        result_type = wire.nested(schema, "CreatePartitionsTopicResult")
        rows = tuple(
            wire.build(result_type, name=t.name, error_code=ErrorCode(code), error_message=why)
            for t in body.topics
            for code, why in [outcome.get(t.name, (-1, "no answer for this topic"))]
        )
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, results=rows))

    gateway.gather(exchange, calls, timeout_ms, answer)


def _outcomes(results: list[object], names: list[str]) -> dict[str, tuple[int, str | None]]:
    """(Kafka error code, message) per topic from the broker's one answer."""
    if not results:
        return {}
    result = results[0]
    answers = native.CreateTopicsResponse, native.DeleteTopicsResponse
    if not isinstance(result, (*answers, native.CreatePartitionsResponse)):
        return {name: (kafka_code(result), str(result)) for name in names}
    return {r.name: (r.error_code, r.error_message) for r in result.results}


def _created(exchange: Exchange, names: list[str], outcome: dict, counts: dict) -> Any:
    schema = wire.response_type(19, exchange.request.version)
    result_type = wire.nested(schema, "CreatableTopicResult")
    topics = []
    for name in names:
        code, message = outcome.get(name, (-1, "no answer for this topic"))
        partitions, factor = counts.get(name, (-1, -1))
        topics.append(
            wire.build(
                result_type,
                name=name,
                topic_id=None,
                error_code=ErrorCode(code),
                error_message=message,
                num_partitions=partitions if code == 0 else -1,
                replication_factor=factor if code == 0 else -1,
                configs=None,
            )
        )
    return wire.build(schema, throttle_time=NO_THROTTLE, topics=tuple(topics))
