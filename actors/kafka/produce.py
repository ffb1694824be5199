"""Produce and InitProducerId for Kafka clients.

Each partition's Kafka batches are decoded (transport/kafka/records.py) and re-built as
zafka batches with the same records, timestamps, headers and producer fields (id, epoch,
base sequence), so the partition leader de-duplicates a Kafka client's retried batch exactly
as a native one; they go to the partition's actor on this broker as the native
ProduceRequest with the request's acks and timeout (a partition this broker does not lead
answers NOT_LEADER_OR_FOLLOWER, and the client refreshes its metadata). A batch the client
compressed is stored zstd-compressed, an uncompressed one uncompressed. acks=0 gets no
answer, as in Kafka. Transactions are not served: a transactional batch or id is refused
with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (what a Kafka broker answers a producer that
may not use transactions), and nothing is appended.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, kafka_code, millis
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.errors import ZafkaError
from zafka.storage.batch import CODEC_NONE, CODEC_ZSTD, build_batch
from zafka.transport import client as native
from zafka.transport.kafka import records, wire
from zafka.transport.names import partition_actor_name

_NO_TRANSACTIONS = ErrorCode.transactional_id_authorization_failed


def produce(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    acks, timeout_ms = body.acks, millis(body.timeout)
    calls, slots = [], []  # slots: per partition (topic, index, error code or call indexes)
    for topic in body.topic_data:
        for part in topic.partition_data:
            if body.transactional_id is not None:
                slots.append((topic.name, part.index, _NO_TRANSACTIONS.value, []))
                continue
            try:
                batches = [_native(b) for b in records.split_batches(part.records or b"")]
            except ZafkaError as err:
                slots.append((topic.name, part.index, kafka_code(err), []))
                continue
            target = gateway.local(partition_actor_name(topic.name, part.index))
            first = len(calls)
            calls += [
                (target, native.ProduceRequest(topic.name, part.index, acks, timeout_ms, b))
                for b in batches
            ]
            slots.append((topic.name, part.index, 0, list(range(first, len(calls)))))
    if acks == 0:
        gateway.gather(exchange, calls, timeout_ms + limits.kafka_call_timeout_ms, _ignore)
        exchange.done(None)
        return
    wait_ms = timeout_ms + limits.kafka_call_timeout_ms
    gateway.gather(exchange, calls, wait_ms, lambda r: exchange.done(_answer(exchange, slots, r)))


def _ignore(results: list[object]) -> None:
    """acks=0: nobody awaits the outcome."""


def _native(batch: memoryview) -> bytes:
    decoded = records.decode_batch(batch)
    if decoded.transactional:
        raise ZafkaError("INVALID_REQUEST", "transactional batches are not served")
    return build_batch(
        decoded.records,
        codec=CODEC_NONE if decoded.codec == 0 else CODEC_ZSTD,
        producer_id=decoded.producer_id,
        producer_epoch=decoded.producer_epoch,
        base_sequence=decoded.base_sequence,
    )


def _answer(exchange: Exchange, slots: list, results: list[object]) -> Any:
    schema = wire.response_type(0, exchange.request.version)
    topic_type = wire.nested(schema, "TopicProduceResponse")
    partition_type = wire.nested(schema, "PartitionProduceResponse")
    rows: list = []
    for topic, index, code, call_indexes in slots:
        outcomes = [results[i] for i in call_indexes]
        failed = next((o for o in outcomes if not isinstance(o, native.ProduceResponse)), None)
        base, append_ms = -1, -1
        if code == 0 and failed is not None:
            code = kafka_code(failed)
        elif code == 0 and outcomes:
            first = outcomes[0]
            code = first.error_code
            base, append_ms = first.base_offset, first.log_append_time_ms
        rows.append(
            (
                topic,
                wire.build(
                    partition_type,
                    index=index,
                    error_code=ErrorCode(code),
                    base_offset=base,
                    log_append_time=_append_time(append_ms),
                    log_start_offset=-1,
                    record_errors=(),
                    error_message=None,
                ),
            )
        )
    topics = wire.per_topic(topic_type, rows, "name", "partition_responses")
    return wire.build(schema, responses=topics, throttle_time=NO_THROTTLE, node_endpoints=())


def _append_time(ms: int) -> datetime.datetime | None:
    if ms < 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def init_producer_id(gateway: KafkaGateway, exchange: Exchange) -> None:
    schema = wire.response_type(22, exchange.request.version)
    if exchange.request.body.transactional_id is not None:
        exchange.done(
            wire.build(
                schema,
                throttle_time=NO_THROTTLE,
                error_code=_NO_TRANSACTIONS,
                producer_id=-1,
                producer_epoch=-1,
            )
        )
        return

    def answer(results: list[object]) -> None:
        result = results[0]
        ok = isinstance(result, native.InitProducerIdResponse)
        exchange.done(
            wire.build(
                schema,
                throttle_time=NO_THROTTLE,
                error_code=ErrorCode(result.error_code if ok else kafka_code(result)),
                producer_id=result.producer_id if ok else -1,
                producer_epoch=result.producer_epoch if ok else -1,
            )
        )

    call = [(gateway.broker, native.InitProducerIdRequest())]
    gateway.gather(exchange, call, limits.kafka_call_timeout_ms, answer)
