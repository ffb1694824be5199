"""KIP-848's consumer group protocol for Kafka clients (`group.protocol=consumer`):
ConsumerGroupHeartbeat and ConsumerGroupDescribe, mapped straight onto zafka's own
server-side groups, which work the same way (the coordinator assigns; a member's epoch;
partitions revoked before they move).

A heartbeat at epoch 0 is the native JoinGroup, at -1 or -2 a LeaveGroup, else a native
Heartbeat. Kafka clients name topics by id here: zafka's Kafka topic ids are derived from
topic names (wire.topic_uuid), and an id this gateway has not sent yet is looked up in the
broker's metadata. Kafka's heartbeat leaves out what did not change (the subscription, the
partitions owned, the assignment); zafka's heartbeat always says what the member owns, so
the gateway's `Members` (consumer_members.py) keeps, per member, what it last said it owns
and what it was last told to own.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka import metadata
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, group_code
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.errors import ZafkaError
from zafka.transport import group as native
from zafka.transport.kafka import wire

HEARTBEAT, DESCRIBE = 68, 69
JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH = 0, -1, -2


def heartbeat(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    wanted = {tp.topic_id for tp in body.topic_partitions or ()}
    metadata.resolve_topics(
        gateway, exchange, wanted, lambda names: _heartbeat(gateway, exchange, names)
    )


def _heartbeat(gateway: KafkaGateway, exchange: Exchange, names: dict[uuid.UUID, str]) -> None:
    body = exchange.request.body
    member_id = body.member_id or (str(uuid.uuid4()) if body.member_epoch == JOIN_EPOCH else "")
    key = (body.group_id, member_id)
    reported = None
    if body.topic_partitions is not None:
        reported = tuple(
            native.TopicPartitions(names[tp.topic_id], tuple(tp.partitions))
            for tp in body.topic_partitions
            if tp.topic_id in names
        )
    owned = gateway.consumer_members.owned_now(key, reported)
    pattern = getattr(body, "subscribed_topic_regex", None) or None  # librdkafka: "" for none
    subscribed = body.subscribed_topic_names
    if body.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
        message: object = native.LeaveGroupRequest(body.group_id, member_id)
    elif body.member_epoch == JOIN_EPOCH:
        message = native.JoinGroupRequest(
            body.group_id,
            member_id,
            body.instance_id,
            tuple(subscribed or ()),
            pattern,
            body.server_assignor,
            limits.group_session_timeout_ms,
        )
    else:
        changed = subscribed is not None or pattern is not None
        message = native.HeartbeatRequest(
            body.group_id,
            member_id,
            body.member_epoch,
            owned,
            tuple(subscribed or ()) if changed else None,
            pattern,
        )

    def answer(results: list[object]) -> None:
        exchange.done(_answer(gateway, exchange, key, results[0]))

    gateway.to_groups(exchange, [(body.group_id, message)], answer)


def _answer(gateway: KafkaGateway, exchange: Exchange, key: tuple[str, str], result) -> Any:
    schema = wire.response_type(HEARTBEAT, exchange.request.version)
    body = exchange.request.body
    members = gateway.consumer_members
    if isinstance(result, native.LeaveGroupResponse):
        members.forget(key)
        return _response(schema, result.error_code, key[1], body.member_epoch, 0, None)
    if not isinstance(result, native.JoinGroupResponse | native.HeartbeatResponse):
        members.forget(key)
        return _response(schema, group_code(result), key[1], -1, 0, None, str(result))
    if result.error_code:
        members.forget(key)
        return _response(schema, result.error_code, key[1], -1, 0, None)
    full = body.member_epoch == JOIN_EPOCH or body.topic_partitions is not None
    assignment = None
    if members.changed(key, result.assignment, full):
        part_type = wire.nested(schema, "TopicPartitions")
        assignment = wire.build(
            wire.nested(schema, "Assignment"),
            topic_partitions=tuple(
                part_type(topic_id=gateway.topic_id(tp.topic), partitions=tuple(tp.partitions))
                for tp in result.assignment
            ),
        )
    interval = result.heartbeat_interval_ms
    return _response(schema, 0, key[1], result.member_epoch, interval, assignment)


def _response(schema, code, member_id, epoch, interval_ms, assignment, message=None) -> Any:
    return wire.build(
        schema,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode(code),
        error_message=message,
        member_id=member_id,
        member_epoch=epoch,
        heartbeat_interval=datetime.timedelta(milliseconds=interval_ms),
        assignment=assignment,
    )


def describe(gateway: KafkaGateway, exchange: Exchange) -> None:
    """A classic group is not found here (as Kafka answers: the client asks DescribeGroups)."""
    names = list(dict.fromkeys(exchange.request.body.group_ids))
    classic = ZafkaError("GROUP_ID_NOT_FOUND", "a classic group: see DescribeGroups")
    asked = [name for name in names if name not in gateway.classic_groups]
    calls = [(name, native.DescribeGroupRequest(name)) for name in asked]

    def answer(results: list[object]) -> None:
        schema = wire.response_type(DESCRIBE, exchange.request.version)
        found = dict(zip(asked, results, strict=True))
        groups = tuple(
            _described(gateway, schema, name, found.get(name, classic)) for name in names
        )
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, groups=groups))

    gateway.to_groups(exchange, calls, answer)


def _described(gateway: KafkaGateway, schema: type, name: str, result: object) -> Any:
    group_type = wire.nested(schema, "DescribedGroup")
    ok = isinstance(result, native.DescribeGroupResponse)
    if not ok or result.error_code:
        code = result.error_code if ok else group_code(result)
        return wire.build(
            group_type,
            error_code=ErrorCode(code),
            error_message=result.detail if isinstance(result, ZafkaError) else None,
            group_id=name,
            group_state="Dead",
            group_epoch=-1,
            assignment_epoch=-1,
            assignor_name="",
            members=(),
            authorized_operations=-(2**31),
        )
    return wire.build(
        group_type,
        error_code=ErrorCode.none,
        group_id=name,
        group_state=result.state.capitalize(),
        group_epoch=result.epoch,
        assignment_epoch=result.epoch,
        assignor_name=result.assignor,
        members=tuple(_member(gateway, schema, m) for m in result.members),
        authorized_operations=-(2**31),
    )


def _member(gateway: KafkaGateway, schema: type, member: native.GroupMember) -> Any:
    def assignment(partitions) -> Any:
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        part_type = wire.nested(schema, "TopicPartitions")
        return wire.nested(schema, "Assignment")(
            topic_partitions=tuple(
                part_type(topic_id=gateway.topic_id(t), topic_name=t, partitions=tuple(ps))
                for t, ps in by_topic.items()
            )
        )

    revoking = set(member.revoking)
    return wire.build(
        wire.nested(schema, "Member"),
        member_id=member.member_id,
        instance_id=member.instance_id,
        member_epoch=member.member_epoch,
        client_id="",
        client_host="",
        subscribed_topic_names=member.subscription,
        subscribed_topic_regex=member.subscription_pattern,
        assignment=assignment(member.assignment),
        target_assignment=assignment([tp for tp in member.assignment if tp not in revoking]),
        member_type=1,
    )
