"""A partition leader's ISR change (Kafka's ZooKeeper-era AlterIsr): the new in-sync set
written into the partition's state znode, checked against the version the leader was told,
together with an `isr_changed` request that makes the controller read it (one transaction:
both or neither). Runs on the broker's ZooKeeper worker thread.

A refused write (the znode moved on: a controller changed leader or ISR since) changes
nothing; the controller's LeaderAndIsr with the new state is on its way to the leader.
"""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError

from zafka.coordination import paths
from zafka.coordination.controller_requests import isr_changed_json
from zafka.coordination.topic_records import STALE_VERSION_ERROR, LeaderIsr
from zafka.errors import ZafkaError


def write_isr(
    client: KazooClient,
    topic: str,
    partition: int,
    leader: int,
    leader_epoch: int,
    isr: tuple[int, ...],
    version: int,
) -> int:
    """Write `isr` for `leader` in `leader_epoch` if the state znode is still at `version`;
    returns the new version. STALE_VERSION_ERROR when it moved on, or names another leader
    or epoch."""
    path = paths.partition_state(topic, partition)
    try:
        data, stat = client.get(path)
    except NoNodeError:
        raise ZafkaError("UNKNOWN_TOPIC_OR_PARTITION", f"{path} is gone") from None
    state = LeaderIsr.from_json(path, data)
    if stat.version != version or (state.leader, state.leader_epoch) != (leader, leader_epoch):
        raise _stale(path, version)
    written = LeaderIsr(leader, leader_epoch, isr, state.controller_epoch)
    client.ensure_path(paths.CONTROLLER_REQUESTS)
    transaction = client.transaction()
    transaction.set_data(path, written.to_json(), version=version)
    transaction.create(
        paths.CONTROLLER_REQUEST_PREFIX, isr_changed_json([(topic, partition)]), sequence=True
    )
    results = transaction.commit()
    if isinstance(results[0], BadVersionError):
        raise _stale(path, version)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results[0].version


def _stale(path: str, version: int) -> ZafkaError:
    return ZafkaError(STALE_VERSION_ERROR, f"{path} is no longer at version {version}")
