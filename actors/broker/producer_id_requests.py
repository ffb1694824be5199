"""How a broker hands out producer ids (InitProducerId): functions over the `BrokerActor`,
which lists the handler; they run on the runtime's thread.

A producer id no broker has handed out before, epoch 0, from the broker's current block
(coordination/producer_ids.py). When the block is used up, requests wait while the worker
claims the next one in ZooKeeper; a claim that fails answers every waiting request with
its error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zafka.actors.broker.admin import as_error
from zafka.actors.runtime.actor import DEFERRED
from zafka.errors import ZafkaError
from zafka.transport.client import InitProducerIdResponse
from zafka.transport.envelope import Envelope

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerActor


def on_init_producer_id_request(actor: BrokerActor, envelope: Envelope) -> object:
    producer_id = actor.context.producer_ids.take()
    if producer_id is not None:  # none waits then: the waiting are answered first
        return InitProducerIdResponse(0, producer_id, 0)
    actor.context.awaiting_ids.append(envelope)
    if not actor.context.claiming_ids:
        _claim_ids(actor)
    return DEFERRED


def _claim_ids(actor: BrokerActor) -> None:
    runtime = actor._runtime()

    def back(result: Any) -> None:  # the actor now hosted: a restart replaces the instance
        _on_id_block(runtime.actor(actor.name), result)

    try:
        actor.context.worker.submit(actor.zk.claim_producer_ids, back)
    except ZafkaError as err:
        _fail_awaiting_ids(actor, err)
        return
    actor.context.claiming_ids = True


def _on_id_block(actor: BrokerActor, result: Any) -> None:
    actor.context.claiming_ids = False
    if isinstance(result, Exception):
        _fail_awaiting_ids(actor, as_error(result))
        return
    pool, waiting = actor.context.producer_ids, actor.context.awaiting_ids
    pool.add_block(result)
    while waiting:
        producer_id = pool.take()
        if producer_id is None:  # more requests than one block holds
            _claim_ids(actor)
            return
        actor._answer(waiting.popleft(), InitProducerIdResponse(0, producer_id, 0))


def _fail_awaiting_ids(actor: BrokerActor, err: ZafkaError) -> None:
    while actor.context.awaiting_ids:
        actor._answer(actor.context.awaiting_ids.popleft(), err)
