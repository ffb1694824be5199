"""ListGroups, DescribeGroups and DeleteGroups for Kafka clients' admin APIs.

A broker answers for the groups it coordinates, as Kafka's does (admin clients ask every
broker for ListGroups, and a group's coordinator for the others): the classic groups living
on this broker's gateway (groups.py) and zafka's own server-side groups, which its broker
actor lists and its group coordinator actors describe and delete. A native group is shown
as Kafka shows a KIP-848 consumer group (type "consumer"); its members' subscriptions and
assignments are encoded as Kafka's consumer protocol encodes them, so a client's describe
decodes them. A group a describe does not find is "Dead" (before v6: no error, as Kafka).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from zafka import limits
from zafka.actors.kafka.classic_group import ClassicGroup
from zafka.actors.kafka.gateway import Exchange, KafkaGateway, group_code, kafka_code
from zafka.actors.kafka.metadata import NO_THROTTLE
from zafka.transport import group as native
from zafka.transport.kafka import wire

DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 15, 16, 42
PROTOCOL_TYPE = "consumer"
_GROUP_ID_NOT_FOUND = ErrorCode.group_id_not_found.value
_NON_EMPTY_GROUP = ErrorCode.non_empty_group.value


def list_groups(gateway: KafkaGateway, exchange: Exchange) -> None:
    body = exchange.request.body
    states = {s.lower() for s in getattr(body, "states_filter", ())}
    types = {t.lower() for t in getattr(body, "types_filter", ())}

    def answer(results: list[object]) -> None:
        listed = results[0]
        ok = isinstance(listed, native.ListGroupsResponse)
        rows = {g.group_id: (g.state.capitalize(), "consumer") for g in listed.groups} if ok else {}
        classic = [g for g in gateway.classic_groups.values() if not g.is_dead]
        rows.update((g.group_id, (g.state, "classic")) for g in classic)
        schema = wire.response_type(LIST_GROUPS, exchange.request.version)
        group_type = wire.nested(schema, "ListedGroup")
        groups = tuple(
            wire.build(
                group_type,
                group_id=group_id,
                protocol_type=PROTOCOL_TYPE,
                group_state=state,
                group_type=kind,
            )
            for group_id, (state, kind) in sorted(rows.items())
            if (not states or state.lower() in states) and (not types or kind in types)
        )
        code = listed.error_code if ok else kafka_code(listed)
        exchange.done(
            wire.build(schema, throttle_time=NO_THROTTLE, error_code=ErrorCode(code), groups=groups)
        )

    call = [(gateway.broker, native.ListGroupsRequest())]
    gateway.gather(exchange, call, limits.kafka_call_timeout_ms, answer)


def describe_groups(gateway: KafkaGateway, exchange: Exchange) -> None:
    names = list(dict.fromkeys(exchange.request.body.groups))
    asked = [name for name in names if name not in gateway.classic_groups]
    calls = [(name, native.DescribeGroupRequest(name)) for name in asked]

    def answer(results: list[object]) -> None:
        schema = wire.response_type(DESCRIBE_GROUPS, exchange.request.version)
        described = dict(zip(asked, results, strict=True))
        groups = []
        for name in exchange.request.body.groups:
            classic = gateway.classic_groups.get(name)
            if classic is not None:
                groups.append(_classic(schema, classic))
            else:
                groups.append(_native(schema, name, described[name], exchange.request.version))
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, groups=tuple(groups)))

    gateway.to_groups(exchange, calls, answer)


def _classic(schema: type, group: ClassicGroup) -> Any:
    member_type = wire.nested(schema, "DescribedGroupMember")
    members = tuple(
        wire.build(
            member_type,
            member_id=m.member_id,
            group_instance_id=None,
            client_id=m.client_id,
            client_host="",
            member_metadata=dict(m.protocols).get(group.protocol or "", b""),
            member_assignment=m.assignment,
        )
        for m in group.members.values()
    )
    return _group(schema, group.group_id, 0, group.state, group.protocol or "", members)


def _native(schema: type, name: str, result: object, version: int) -> Any:
    if not isinstance(result, native.DescribeGroupResponse):
        return _group(schema, name, group_code(result), "Dead", "", ())
    if result.error_code == _GROUP_ID_NOT_FOUND:
        code = _GROUP_ID_NOT_FOUND if version >= 6 else 0
        return _group(schema, name, code, "Dead", "", ())
    member_type = wire.nested(schema, "DescribedGroupMember")
    members = tuple(
        wire.build(
            member_type,
            member_id=m.member_id,
            group_instance_id=m.instance_id,
            client_id="",
            client_host="",
            member_metadata=wire.consumer_subscription(m.subscription),
            member_assignment=wire.consumer_assignment(
                [(tp.topic, tp.partition) for tp in m.assignment]
            ),
        )
        for m in result.members
    )
    state = result.state.capitalize()
    return _group(schema, name, result.error_code, state, result.assignor, members)


def _group(schema: type, name: str, code: int, state: str, protocol: str, members) -> Any:
    return wire.build(
        wire.nested(schema, "DescribedGroup"),
        error_code=ErrorCode(code),
        error_message=None,
        group_id=name,
        group_state=state,
        protocol_type=PROTOCOL_TYPE if state != "Dead" else "",
        protocol_data=protocol,
        members=members,
        authorized_operations=-(2**31),
    )


def delete_groups(gateway: KafkaGateway, exchange: Exchange) -> None:
    names = list(dict.fromkeys(exchange.request.body.groups_names))
    busy = {name for name in names if getattr(gateway.classic_groups.get(name), "members", None)}
    asked = [name for name in names if name not in busy]
    calls = [(name, native.DeleteGroupRequest(name)) for name in asked]

    def answer(results: list[object]) -> None:
        codes = {name: _NON_EMPTY_GROUP for name in busy}
        for name, result in zip(asked, results, strict=True):
            ok = isinstance(result, native.DeleteGroupResponse)
            codes[name] = result.error_code if ok else group_code(result)
            if codes[name] in (0, _GROUP_ID_NOT_FOUND) and gateway.classic_groups.pop(name, None):
                codes[name] = 0  # an empty classic group (not yet ticked away): it was there
        schema = wire.response_type(DELETE_GROUPS, exchange.request.version)
        result_type = wire.nested(schema, "DeletableGroupResult")
        rows = tuple(
            wire.build(result_type, group_id=name, error_code=ErrorCode(codes[name]))
            for name in names
        )
        exchange.done(wire.build(schema, throttle_time=NO_THROTTLE, results=rows))

    gateway.to_groups(exchange, calls, answer)
