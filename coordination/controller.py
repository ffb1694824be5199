"""Controller election and fencing in ZooKeeper (Kafka's ZooKeeper-era scheme).

    /controller         ephemeral: {"version": 1, "broker": 3}, the controller's broker id
    /controller_epoch   persistent: {"version": 1, "epoch": 7}, one more per controller won

A broker becomes the controller with one transaction: create the ephemeral `/controller` and
set `/controller_epoch` to epoch + 1 against the version it read (Kafka 2.x's
registerControllerAndIncrementControllerEpoch). If `/controller` exists someone else
controls; if the epoch's version moved another broker won in between: read again and retry.
The winner holds a `ControllerLease`: its epoch and the version `/controller_epoch` has after
its write. Every state write of the controller is a transaction that checks that version
(`fenced_set`), so once another broker is elected (the epoch znode is written again) the
deposed one can write nothing: STALE_CONTROLLER_EPOCH.

`ControllerElection` keeps a broker in the running: it tries now, whenever `/controller` is
deleted (its holder's session ended), and after this broker's own session was lost and
renewed. On SUSPENDED (the connection is in doubt) the controller resigns at once: it cannot
know whether its session, hence its ephemeral znode, still exists. On reconnection with the
same session it still holds `/controller` and resumes with the same lease; after LOST it
tries to be elected again. Its callbacks run on kazoo's threads and must not block.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.recipe.watchers import DataWatch

from zafka.coordination import paths
from zafka.coordination.brokers import Registration, registrations
from zafka.coordination.topic_records import STALE_VERSION_ERROR
from zafka.errors import ZafkaError

log = logging.getLogger(__name__)
ELECTION_ATTEMPTS_MAX = 10  # epoch races lost in a row before giving up until the next change


class ControllerLease(NamedTuple):
    """This broker controls the cluster in `epoch`; `epoch_version` fences its writes."""

    broker_id: int
    epoch: int
    epoch_version: int


def read_controller(client: KazooClient) -> int | None:
    """The controller's broker id, or None when there is none."""
    try:
        data, _ = client.get(paths.CONTROLLER)
    except NoNodeError:
        return None
    return int(json.loads(data)["broker"])


def read_epoch(client: KazooClient) -> tuple[int, int]:
    """(controller epoch, its znode's version); (0, -1) before any controller."""
    try:
        data, stat = client.get(paths.CONTROLLER_EPOCH)
    except NoNodeError:
        return 0, -1
    return int(json.loads(data)["epoch"]), stat.version


def live_brokers(client: KazooClient) -> dict[int, Registration]:
    """The registered brokers by id (brokers.py)."""
    return registrations(client)


def try_elect(client: KazooClient, broker_id: int) -> ControllerLease | None:
    """Become the controller if there is none (module docstring); None if another is."""
    me = json.dumps({"version": 1, "broker": broker_id}).encode()
    for _ in range(ELECTION_ATTEMPTS_MAX):
        epoch, version = read_epoch(client)
        data = json.dumps({"version": 1, "epoch": epoch + 1}).encode()
        tx = client.transaction()
        tx.create(paths.CONTROLLER, me, ephemeral=True)
        if version < 0:
            tx.create(paths.CONTROLLER_EPOCH, data)
        else:
            tx.set_data(paths.CONTROLLER_EPOCH, data, version=version)
        created, epoch_result = tx.commit()
        if isinstance(created, NodeExistsError):
            return None  # someone controls
        if isinstance(epoch_result, BadVersionError | NodeExistsError):
            continue  # another broker won and lost in between: read the epoch again
        if isinstance(created, Exception) or isinstance(epoch_result, Exception):
            raise created if isinstance(created, Exception) else epoch_result
        return ControllerLease(broker_id, epoch + 1, version + 1)
    log.warning("broker %s: lost %s epoch races in a row", broker_id, ELECTION_ATTEMPTS_MAX)
    return None


def fenced_set(
    client: KazooClient,
    lease: ControllerLease,
    path: str,
    data: bytes,
    version: int,
    unchanged: tuple[tuple[str, int], ...] = (),
) -> int:
    """Write `data` at `path` if it is at `version`, every (path, version) of `unchanged` is
    too, and `lease` is still the current controller's; returns the new version.
    STALE_CONTROLLER_EPOCH when another controller was elected since, INVALID_UPDATE_VERSION
    when a znode changed since it was read."""
    tx = client.transaction()
    tx.check(paths.CONTROLLER_EPOCH, lease.epoch_version)
    for other, other_version in unchanged:
        tx.check(other, other_version)
    tx.set_data(path, data, version=version)
    checked, *others, written = tx.commit()
    if isinstance(checked, BadVersionError | NoNodeError):
        raise ZafkaError(
            "STALE_CONTROLLER_EPOCH", f"controller epoch {lease.epoch} was succeeded: {path}"
        )
    for (other, other_version), result in zip(unchanged, others, strict=True):
        if isinstance(result, BadVersionError | NoNodeError):
            raise ZafkaError(STALE_VERSION_ERROR, f"{other} changed since version {other_version}")
    if isinstance(written, BadVersionError):
        raise ZafkaError(STALE_VERSION_ERROR, f"{path} changed since version {version}")
    if isinstance(written, Exception):
        raise written
    return int(written.version)


class ControllerElection:
    """Keeps `broker_id` in the running for controller (module docstring). `on_elected(lease)`
    and `on_resigned()` run on kazoo's threads; `lease` is the current lease or None."""

    def __init__(
        self,
        client: KazooClient,
        broker_id: int,
        on_elected: Callable[[ControllerLease], Any],
        on_resigned: Callable[[], Any],
    ) -> None:
        self._client = client
        self._broker_id = broker_id
        self._on_elected = on_elected
        self._on_resigned = on_resigned
        self._lock = threading.Lock()  # kazoo's event and handler threads both come here
        self.lease: ControllerLease | None = None
        self._held: ControllerLease | None = None  # won in this session (kept while suspended)
        self._stopped = False

    def start(self) -> None:
        self._client.add_listener(self._on_state)
        DataWatch(self._client, paths.CONTROLLER, self._on_controller)

    def stop(self) -> None:
        """Leave the running; if this broker controls, resign and let another be elected."""
        self._client.remove_listener(self._on_state)
        with self._lock:
            self._stopped = True
            held, self._held = self._held, None
            self._resign()
        if held is None or not self._client.connected:
            return
        stat = self._client.exists(paths.CONTROLLER)
        if stat is not None and stat.ephemeralOwner == self._client.client_id[0]:
            with contextlib.suppress(NoNodeError):  # our session's: gone if it just expired
                self._client.delete(paths.CONTROLLER, version=stat.version)

    def _on_controller(self, data: bytes | None, stat: object) -> bool:
        if self._stopped:
            return False  # ends the watch
        if stat is None:  # no controller
            self._client.handler.spawn(self._try)
        return True

    def _try(self) -> None:
        with self._lock:
            if self._held is not None or self._stopped:
                return
            try:
                lease = try_elect(self._client, self._broker_id)
            except Exception:
                log.exception("broker %s: controller election failed", self._broker_id)
                return
            if lease is not None:
                self._held = self.lease = lease
                log.info("broker %s: controller in epoch %s", self._broker_id, lease.epoch)
                self._on_elected(lease)

    def _on_state(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            with self._lock:
                self._resign()
        elif state == KazooState.LOST:
            with self._lock:
                self._held = None
                self._resign()
        else:  # CONNECTED: the same session (still holding /controller), or a new one
            self._client.handler.spawn(self._resume)

    def _resume(self) -> None:
        with self._lock:
            if self._held is not None and self.lease is None:  # the same session: still ours
                self.lease = self._held
                self._on_elected(self._held)
        self._try()

    def _resign(self) -> None:
        if self.lease is not None:
            self.lease = None
            log.info("broker %s: no longer acting as controller", self._broker_id)
            self._on_resigned()
