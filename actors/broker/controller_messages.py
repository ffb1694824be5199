"""How a broker takes the controller's messages (transport/controller.py): LeaderAndIsr (lead,
follow or drop one partition) and UpdateMetadata (the metadata cache). Functions over the
`BrokerActor`, which lists them as its handlers; they run on the runtime's thread.

A message from the (sender, controller epoch) the broker accepted last is applied at once;
any other is first checked with ZooKeeper (who controls, in which epoch): an older epoch is
refused with STALE_CONTROLLER_EPOCH, a sender that is not the controller of its epoch with
NOT_CONTROLLER. Either way nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zafka.actors.broker.hosting import drop_replica, led, take_role
from zafka.actors.group.records import OFFSETS_TOPIC
from zafka.errors import ZafkaError
from zafka.transport.controller import (
    LeaderAndIsrRequest,
    LeaderAndIsrResponse,
    UpdateMetadataRequest,
    UpdateMetadataResponse,
)
from zafka.transport.envelope import Envelope
from zafka.transport.names import broker_id_of

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerActor


def on_controller_message(actor: BrokerActor, envelope: Envelope) -> object:
    """Apply a LeaderAndIsr or UpdateMetadata if its sender controls its epoch (above)."""
    sender = broker_id_of(envelope.sender)
    known = (actor.context.controller_id, actor.context.controller_epoch)
    if sender >= 0 and (sender, envelope.epoch) == known:
        return _apply(actor, envelope.message)
    return actor._defer(
        envelope,
        actor.zk.controller,
        lambda current, found: _check_controller(current, envelope, sender, found),
    )


def _check_controller(
    actor: BrokerActor, envelope: Envelope, sender: int, found: tuple[int, int]
) -> object:
    controller_id, epoch = found
    if envelope.epoch < epoch:
        raise ZafkaError("STALE_CONTROLLER_EPOCH", f"epoch {envelope.epoch} < {epoch}")
    if (sender, envelope.epoch) != (controller_id, epoch):
        raise ZafkaError(
            "NOT_CONTROLLER", f"broker {sender} does not control epoch {envelope.epoch}"
        )
    actor.context.controller_id, actor.context.controller_epoch = controller_id, epoch
    return _apply(actor, envelope.message)


def _apply(actor: BrokerActor, message: object) -> object:
    if isinstance(message, UpdateMetadataRequest):
        actor.context.metadata.apply(message)
        return UpdateMetadataResponse(0)
    assert isinstance(message, LeaderAndIsrRequest)
    return _lead_as_told(actor, message)


def _lead_as_told(actor: BrokerActor, message: LeaderAndIsrRequest) -> LeaderAndIsrResponse:
    """Lead, follow or (not among its replicas any more) drop one partition."""
    context, topic, p = actor.context, message.topic, message.partition
    info = context.infos.get(topic)
    if info is None or p >= info.partitions:  # not read (as it is now) yet: the sync will
        actor.request_sync()
        return LeaderAndIsrResponse(0)
    runtime, me = actor._runtime(), actor.zk.broker_id
    if me in message.replicas:
        changed = take_role(context, runtime, message)
    else:  # moved away by a reassignment
        changed = drop_replica(context, runtime, topic, p)
    if changed and topic == OFFSETS_TOPIC:  # its groups move with the partitions
        context.groups.unlead_all(actor)
        context.groups.lead(actor, led(context, OFFSETS_TOPIC))
    return LeaderAndIsrResponse(0)
