"""How a broker writes its partition leaders' ISR changes (Kafka's ZK-era AlterIsr): a
leader's `AlterIsr` (a local message) becomes a version-checked write on the ZooKeeper
worker (coordination/isr.py), whose outcome goes back to the partition actor as
`IsrWritten` (version -1: refused or failed; the leader proposes again at its next check).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from zafka.actors.partition.replica_io import AlterIsr, IsrWritten
from zafka.coordination.isr import write_isr
from zafka.errors import ZafkaError
from zafka.transport.envelope import Envelope
from zafka.transport.names import partition_actor_name

if TYPE_CHECKING:
    from zafka.actors.broker.actor import BrokerActor

log = logging.getLogger(__name__)


def on_alter_isr(actor: BrokerActor, envelope: Envelope) -> None:
    change: AlterIsr = envelope.message
    job = partial(
        write_isr,
        actor.zk.client,
        change.topic,
        change.partition,
        change.leader,
        change.leader_epoch,
        change.isr,
        change.version,
    )
    runtime = actor._runtime()
    target = f"{runtime.node}/{partition_actor_name(change.topic, change.partition)}"
    sender = actor.address

    def done(result: object) -> None:  # on the runtime's thread
        if isinstance(result, Exception):
            log.warning(
                "broker: ISR %s of %s-%s not written: %s",
                list(change.isr),
                change.topic,
                change.partition,
                result,
            )
            result = -1
        written = IsrWritten(change.leader_epoch, change.isr, result)  # type: ignore[arg-type]
        runtime.send(Envelope(sender, target, written, 0))

    try:
        actor.context.worker.submit(job, done)
    except ZafkaError as err:  # BUSY, STOPPED
        done(err)
