"""Fetch and ListOffsets for Kafka clients.

A Kafka Fetch names many partitions; each becomes the native FetchRequest to its partition
actor on this broker. Long polling as Kafka's: a first pass asks every partition without
waiting; if that brings at least `min_bytes` (or the client may not wait), it is the answer.
Otherwise a second pass asks every partition to wait up to `max_wait`, and the first answer
with data (or the last answer) completes the request; a partition not answered by then is
answered as the first pass found it, and what it brings later is dropped (it is read again
by the next fetch, whose first pass sees every partition). Stored batches
go out as uncompressed Kafka batches (transport/kafka/records.py); control batches as empty
ones. Size limits count those Kafka bytes, not the stored (compressed) ones, as Kafka's:
a partition gets whole batches up to its `partition_max_bytes`, the response up to
`max_bytes`, and a partition's first batch goes out even if larger, while the response has
room left (so a consumer always progresses, and an answer exceeds `max_bytes` by at most one
batch); what does not fit is read by the next fetch. read_uncommitted and read_committed
are the same here: zafka has no transactions, and consumers read only below the high
watermark. No fetch sessions (KIP-227): every answer is
a full one, with session id 0, which every client accepts.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, kafka_code, millis
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.storage.batch import LENGTH_PREFIX_SIZE
from zafka.storage.records import read_batch
from zafka.transport import client as native
from zafka.transport.kafka import records, wire
from zafka.transport.names import partition_actor_name


def fetch(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    wanted = [(t.topic, p) for t in body.topics for p in t.partitions]
    max_wait_ms = min(millis(body.max_wait), limits.call_timeout_ms_max // 2)

    def calls(wait_ms: int) -> list[tuple[str, object]]:
        return [
            (
                gateway.local(partition_actor_name(topic, p.partition)),
                native.FetchRequest(
                    topic,
                    p.partition,
                    p.fetch_offset,
                    max(p.partition_max_bytes, 1),
                    wait_ms,
                    body.min_bytes if wait_ms else 0,
                ),
            )
            for topic, p in wanted
        ]

    def first_pass(results: list[object]) -> None:
        if max_wait_ms <= 0 or _bytes(results) >= max(body.min_bytes, 1):
            exchange.done(_answer(exchange, wanted, results))
            return

        def second_pass(later: list[object]) -> None:
            pairs = zip(later, results, strict=True)
            merged = [now if now is not None else then for now, then in pairs]
            exchange.done(_answer(exchange, wanted, merged))

        gateway.gather(  # the first answer with data completes it
            exchange,
            calls(max_wait_ms),
            max_wait_ms + limits.kafka_call_timeout_ms,
            second_pass,
            enough=lambda result: _bytes([result]) > 0,
        )

    gateway.gather(exchange, calls(0), limits.kafka_call_timeout_ms, first_pass)


def _bytes(results: list[object]) -> int:
    return sum(len(r.records) for r in results if isinstance(r, native.FetchResponse))


def _answer(exchange: Exchange, wanted: list, results: list[object]) -> Any:
    schema = wire.response_type(1, exchange.request.version)
    topic_type = wire.nested(schema, "FetchableTopicResponse")
    partition_type = wire.nested(schema, "PartitionData")
    rows: list = []
    room = max(exchange.request.body.max_bytes, 1)  # what the response may still carry
    for (topic, p), result in zip(wanted, results, strict=True):
        ok = isinstance(result, native.FetchResponse)
        code = result.error_code if ok else kafka_code(result)
        high = result.high_watermark if ok else -1
        most = min(p.partition_max_bytes, room)
        data = kafka_batches(result.records, most) if ok and not code and room > 0 else b""
        room -= len(data)
        rows.append(
            (
                topic,
                wire.build(
                    partition_type,
                    partition_index=p.partition,
                    error_code=ErrorCode(code),
                    high_watermark=high,
                    last_stable_offset=high,
                    log_start_offset=result.log_start_offset if ok else -1,
                    aborted_transactions=(),
                    preferred_read_replica=-1,
                    records=data,
                ),
            )
        )
    topics = wire.per_topic(topic_type, rows, "topic")
    return wire.build(
        schema, throttle_time=NO_THROTTLE, error_code=ErrorCode.none, session_id=0, responses=topics
    )


def kafka_batches(stored: bytes | memoryview, most_bytes: int) -> bytes:
    """Stored zafka batches (whole ones, as a native fetch returns them) as Kafka batches:
    as many as fit in `most_bytes`, and the first one whatever its size. A batch predicted
    not to fit (at the largest Kafka-to-stored size ratio seen so far) is not encoded: the
    encoding is the per-record work, not to be done for a batch that is then dropped."""
    view, at, out, total, ratio = memoryview(stored), 0, [], 0, 0.0
    while at + LENGTH_PREFIX_SIZE <= len(view):
        size = LENGTH_PREFIX_SIZE + int.from_bytes(view[at + 8 : at + 12], "big", signed=True)
        if out and total + size * ratio > most_bytes:
            break
        batch = records.encode_batch(read_batch(view[at : at + size]))
        if out and total + len(batch) > most_bytes:
            break
        out.append(batch)
        total += len(batch)
        ratio = max(ratio, len(batch) / size)
        at += size
    return b"".join(out)


def list_offsets(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    wanted = [(t.name, p) for t in body.topics for p in t.partitions]
    calls = [
        (
            gateway.local(partition_actor_name(topic, p.partition_index)),
            native.ListOffsetsRequest(topic, p.partition_index, p.timestamp),
        )
        for topic, p in wanted
    ]
    gateway.gather(
        exchange,
        calls,
        limits.kafka_call_timeout_ms,
        lambda results: exchange.done(_offsets(exchange, wanted, results)),
    )


def _offsets(exchange: Exchange, wanted: list, results: list[object]) -> Any:
    schema = wire.response_type(2, exchange.request.version)
    topic_type = wire.nested(schema, "ListOffsetsTopicResponse")
    partition_type = wire.nested(schema, "ListOffsetsPartitionResponse")
    rows: list = []
    for (topic, p), result in zip(wanted, results, strict=True):
        ok = isinstance(result, native.ListOffsetsResponse)
        rows.append(
            (
                topic,
                wire.build(
                    partition_type,
                    partition_index=p.partition_index,
                    error_code=ErrorCode(result.error_code if ok else kafka_code(result)),
                    timestamp=result.timestamp if ok else -1,
                    offset=result.offset if ok else -1,
                    leader_epoch=-1,
                ),
            )
        )
    topics = wire.per_topic(topic_type, rows)
    return wire.build(schema, throttle_time=NO_THROTTLE, topics=topics)
