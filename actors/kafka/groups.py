"""Kafka's classic consumer-group protocol for Kafka clients: FindCoordinator, JoinGroup,
SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.

The coordinator is zafka's own: FindCoordinator is the broker actor's (it starts the group's
coordinator actor on the leader of the group's `__consumer_offsets` partition) and names that
broker's Kafka listener. Membership and client-side assignment run in a ClassicGroup
(classic_group.py) on that broker's gateway; committed offsets are the group coordinator
actor's, stored in `__consumer_offsets` as every commit, so they survive a coordinator move
and a native client reads them (`zafka groups describe`). A group is classic or native, as
in Kafka 4: a classic group's commits go in as commits from outside the group, which the
coordinator takes only while it has no native members; a commit from a member of a KIP-848
group (consumer_groups.py) goes in as that member's, at its epoch. Static membership
(group.instance.id) is treated as dynamic.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka import classic_group
from zafka.actors.kafka.classic_group import Answer, ClassicGroup
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, group_code, kafka_code, millis
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.transport import client as native
from zafka.transport import group as native_group
from zafka.transport.kafka import wire
from zafka.transport.names import broker_id_of

FIND_COORDINATOR, JOIN, SYNC, HEARTBEAT, LEAVE = 10, 11, 14, 12, 13
OFFSET_COMMIT, OFFSET_FETCH = 8, 9
_NOT_COORDINATOR = ErrorCode.not_coordinator.value


def find_coordinator(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    schema = wire.response_type(FIND_COORDINATOR, exchange.request.version)
    if getattr(body, "key_type", 0) != 0:  # transaction coordinators: no transactions here
        code = ErrorCode.coordinator_not_available
        exchange.done(_coordinator(schema, code, "transactions are not served", -1, ""))
        return
    calls = [
        (gateway.broker, native_group.FindCoordinatorRequest(body.key)),
        (gateway.broker, native.MetadataRequest(())),
    ]

    def answer(results: list[object]) -> None:
        found, meta = results
        if not isinstance(found, native_group.FindCoordinatorResponse) or found.error_code:
            code = found.error_code if hasattr(found, "error_code") else kafka_code(found)
            exchange.done(_coordinator(schema, ErrorCode(code), str(found), -1, ""))
            return
        brokers = meta.brokers if isinstance(meta, native.MetadataResponse) else ()
        endpoint = next((b.kafka_endpoint for b in brokers if b.id == found.node), None)
        if not endpoint:
            code = ErrorCode.coordinator_not_available
            exchange.done(_coordinator(schema, code, "no Kafka listener there", -1, ""))
            return
        exchange.done(_coordinator(schema, ErrorCode.none, None, found.node, endpoint))

    gateway.gather(exchange, calls, limits.kafka_call_timeout_ms, answer)


def _coordinator(schema: type, code, message, node: int, endpoint: str) -> Any:
    host, _, port = endpoint.rpartition(":")
    return wire.build(
        schema,
        throttle_time=NO_THROTTLE,
        error_code=code,
        error_message=message,
        node_id=node,
        host=host,
        port=int(port or -1),
    )


# --- membership -----------------------------------------------------------------------------


def join_group(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    call = [(gateway.broker, native_group.FindCoordinatorRequest(body.group_id))]

    def joined(results: list[object]) -> None:
        found = results[0]
        here = broker_id_of(gateway.local("broker"))
        if not isinstance(found, native_group.FindCoordinatorResponse) or found.node != here:
            _deliver(gateway, [Answer(exchange, "join", _NOT_COORDINATOR, {"member_id": ""})])
            return
        group = gateway.classic_groups.setdefault(
            body.group_id, ClassicGroup(body.group_id, body.protocol_type)
        )
        session_ms = millis(body.session_timeout)
        rebalance_ms = millis(getattr(body, "rebalance_timeout", body.session_timeout))
        protocols = tuple((p.name, bytes(p.metadata)) for p in body.protocols)
        answers = group.join(
            exchange,
            body.member_id,
            exchange.request.client_id or "",
            body.protocol_type,
            protocols,
            session_ms,
            rebalance_ms,
            gateway.now_ms(),
        )
        _deliver(gateway, answers)
        gateway.tick_soon()

    gateway.gather(exchange, call, limits.kafka_call_timeout_ms, joined)


def sync_group(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    group = gateway.classic_groups.get(body.group_id)
    if group is None:
        _deliver(gateway, [Answer(exchange, "sync", classic_group.UNKNOWN_MEMBER_ID)])
        return
    assignments = {a.member_id: bytes(a.assignment) for a in body.assignments}
    _deliver(gateway, group.sync(exchange, body.member_id, body.generation_id, assignments))


def heartbeat(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    group = gateway.classic_groups.get(body.group_id)
    code = classic_group.UNKNOWN_MEMBER_ID
    if group is not None:
        code = group.heartbeat(body.member_id, body.generation_id, gateway.now_ms())
    schema = wire.response_type(HEARTBEAT, exchange.request.version)
    exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, error_code=ErrorCode(code)))


def leave_group(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    members = getattr(body, "members", None)
    ids = [m.member_id for m in members] if members is not None else [body.member_id]
    group = gateway.classic_groups.get(body.group_id)
    codes = {member_id: classic_group.UNKNOWN_MEMBER_ID for member_id in ids}
    if group is not None:
        left, answers = group.leave(ids, gateway.now_ms())
        codes.update(left)
        _deliver(gateway, answers)
    schema = wire.response_type(LEAVE, exchange.request.version)
    per_member: tuple = ()
    if members is not None:  # v3+: one answer per member
        member_type = wire.nested(schema, "MemberResponse")
        per_member = tuple(
            wire.build(member_type, member_id=m, group_instance_id=None, error_code=ErrorCode(c))
            for m, c in codes.items()
        )
    top = codes[ids[0]] if members is None and ids else 0
    exchange.done(
        wire.build(schema, throttle_time=NO_THROTTLE, error_code=ErrorCode(top), members=per_member)
    )


def tick(gateway: KafkaGateway, now_ms: int) -> bool:
    """Sessions and rebalance deadlines of every classic group; True while any group lives."""
    for group_id, group in list(gateway.classic_groups.items()):
        _deliver(gateway, group.tick(now_ms))
        if group.is_dead:
            del gateway.classic_groups[group_id]
    return bool(gateway.classic_groups)


def _deliver(gateway: KafkaGateway, answers: list[Answer]) -> None:
    for answer in answers:
        exchange: Exchange = answer.handle
        if answer.kind == "join":
            exchange.done(_join_response(exchange, answer))
        else:
            exchange.done(_sync_response(exchange, answer))


def _join_response(exchange: Exchange, answer: Answer) -> Any:
    schema = wire.response_type(JOIN, exchange.request.version)
    member_type = wire.nested(schema, "JoinGroupResponseMember")
    fields = answer.fields
    members = tuple(
        wire.build(member_type, member_id=m, group_instance_id=None, metadata=metadata)
        for m, metadata in fields.get("members", ())
    )
    return wire.build(
        schema,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode(answer.code),
        generation_id=fields.get("generation", -1),
        protocol_type=exchange.request.body.protocol_type,
        protocol_name=fields.get("protocol", "") if answer.code == 0 else None,
        leader=fields.get("leader", ""),
        member_id=fields.get("member_id", ""),
        members=members,
    )


def _sync_response(exchange: Exchange, answer: Answer) -> Any:
    schema = wire.response_type(SYNC, exchange.request.version)
    return wire.build(
        schema,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode(answer.code),
        protocol_type=getattr(exchange.request.body, "protocol_type", None),
        protocol_name=answer.fields.get("protocol"),
        assignment=answer.fields.get("assignment", b""),
    )


# --- offsets --------------------------------------------------------------------------------


def offset_commit(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    generation = getattr(body, "generation_id_or_member_epoch", getattr(body, "generation_id", -1))
    group = gateway.classic_groups.get(body.group_id)
    code, member_id, epoch = 0, "", -1
    if group is not None:
        code = group.can_commit(body.member_id, generation)
    elif body.member_id:  # a KIP-848 member (consumer_groups.py): zafka's group checks it
        member_id, epoch = body.member_id, generation
    offsets = tuple(
        native_group.PartitionOffset(
            t.name, p.partition_index, p.committed_offset, p.committed_metadata or ""
        )
        for t in body.topics
        for p in t.partitions
    )

    def answer(results: list[object]) -> None:
        result = results[0] if results else None
        final = code
        if final == 0 and result is not None:
            ok = isinstance(result, native_group.OffsetCommitResponse)
            final = result.error_code if ok else group_code(result)
        exchange.done(_commit_response(exchange, final))

    calls = []
    if code == 0:
        commit = native_group.OffsetCommitRequest(body.group_id, member_id, epoch, offsets)
        calls = [(body.group_id, commit)]
    gateway.to_groups(exchange, calls, answer)


def _commit_response(exchange: Exchange, code: int) -> Any:
    schema = wire.response_type(OFFSET_COMMIT, exchange.request.version)
    topic_type = wire.nested(schema, "OffsetCommitResponseTopic")
    partition_type = wire.nested(schema, "OffsetCommitResponsePartition")
    topics = tuple(
        wire.build(
            topic_type,
            name=t.name,
            partitions=tuple(
                wire.build(
                    partition_type, partition_index=p.partition_index, error_code=ErrorCode(code)
                )
                for p in t.partitions
            ),
        )
        for t in exchange.request.body.topics
    )
    return wire.build(schema, throttle_time=NO_THROTTLE, topics=topics)


def offset_fetch(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    wanted = None
    if body.topics is not None:
        wanted = tuple(
            native_group.TopicPartitions(t.name, tuple(t.partition_indexes)) for t in body.topics
        )
    call = [(body.group_id, native_group.OffsetFetchRequest(body.group_id, wanted))]

    def answer(results: list[object]) -> None:
        result = results[0]
        ok = isinstance(result, native_group.OffsetFetchResponse)
        code = result.error_code if ok else group_code(result)
        found = {(o.topic, o.partition): o for o in result.offsets} if ok else {}
        if wanted is None:
            asked = sorted(found)
        else:
            asked = [(t.topic, p) for t in wanted for p in t.partitions]
        exchange.done(_fetched(exchange, code, asked, found))

    gateway.to_groups(exchange, call, answer)


def _fetched(exchange: Exchange, code: int, asked: list, found: dict) -> Any:
    schema = wire.response_type(OFFSET_FETCH, exchange.request.version)
    topic_type = wire.nested(schema, "OffsetFetchResponseTopic")
    partition_type = wire.nested(schema, "OffsetFetchResponsePartition")
    rows: list = []
    for topic, partition in asked:
        offset = found.get((topic, partition))
        rows.append(
            (
                topic,
                wire.build(
                    partition_type,
                    partition_index=partition,
                    committed_offset=offset.offset if offset else -1,
                    committed_leader_epoch=-1,
                    metadata=offset.metadata if offset else "",
                    error_code=ErrorCode.none,
                ),
            )
        )
    topics = wire.per_topic(topic_type, rows)
    return wire.build(schema, throttle_time=NO_THROTTLE, topics=topics, error_code=ErrorCode(code))
