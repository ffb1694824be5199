"""The Kafka protocol listener of one broker: its TCP thread and its gateway actor, wired
together on the broker's runtime, with the handler of each API served."""

from __future__ import annotations

from functools import partial

from zafka.actors.kafka import (
    configs,
    consumer_groups,
    fetch,
    group_admin,
    groups,
    metadata,
    produce,
    topics,
)
from zafka.actors.kafka.gateway import GATEWAY_ACTOR, Handler, KafkaGateway
from zafka.actors.kafka.listener import KafkaListener
from zafka.actors.runtime.loop import Runtime
from zafka.transport.kafka import wire


def handlers(default_partitions: int) -> dict[int, Handler]:
    """The handler of every API in wire.SERVED, by API key."""
    table: dict[int, Handler] = {
        0: produce.produce,
        1: fetch.fetch,
        2: fetch.list_offsets,
        3: metadata.metadata,
        18: metadata.api_versions,
        19: partial(topics.create_topics, default_partitions=default_partitions),
        20: topics.delete_topics,
        22: produce.init_producer_id,
        8: groups.offset_commit,
        9: groups.offset_fetch,
        10: groups.find_coordinator,
        11: groups.join_group,
        12: groups.heartbeat,
        13: groups.leave_group,
        14: groups.sync_group,
        15: group_admin.describe_groups,
        16: group_admin.list_groups,
        32: partial(configs.describe_configs, default_partitions=default_partitions),
        37: topics.create_partitions,
        42: group_admin.delete_groups,
        68: consumer_groups.heartbeat,
        69: consumer_groups.describe,
    }
    assert set(table) == set(wire.SERVED), "every API served has a handler"
    return table


def start(runtime: Runtime, host: str, port: int, default_partitions: int) -> KafkaListener:
    """Bind `host:port` (0: a free port), spawn the gateway and start serving; the caller
    stops the listener it gets."""

    def submit(connection: int, sequence: int, request: wire.Request) -> None:
        def serve() -> None:
            gateway = runtime.actor(GATEWAY_ACTOR)
            assert isinstance(gateway, KafkaGateway)
            gateway.serve(connection, sequence, request)

        runtime.post(serve)

    listener = KafkaListener(host, port, submit)
    table = handlers(default_partitions)
    runtime.spawn(lambda: KafkaGateway(listener.answer, table, groups.tick))
    listener.start()
    return listener
