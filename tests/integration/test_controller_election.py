"""Controller election and fencing against a real ZooKeeper (coordination/controller.py):
one winner among contenders, one more epoch per election, a successor elected when the
controller's session ends, the deposed controller's writes refused, a stopped controller
handing over, a controller whose session was lost elected again."""

from __future__ import annotations

import threading

import pytest
from kazoo.client import KazooState

from tests.integration.conftest import expire_session, wait_for_state
from zafka.coordination.controller import (
    ControllerElection,
    ControllerLease,
    fenced_set,
    read_controller,
    read_epoch,
    try_elect,
)
from zafka.errors import ZafkaError

pytestmark = pytest.mark.integration

EVENT_TIMEOUT_S = 15.0


class Contender:
    """A broker in the running: records the leases it won and its resignations."""

    def __init__(self, client, broker_id: int) -> None:
        self.won: list[ControllerLease] = []
        self.resigned = 0
        self.changed = threading.Event()
        self.election = ControllerElection(client, broker_id, self._elected, self._resigned)

    def _elected(self, lease: ControllerLease) -> None:
        self.won.append(lease)
        self.changed.set()

    def _resigned(self) -> None:
        self.resigned += 1
        self.changed.set()

    def wait(self, what) -> None:
        """Wait (bounded) until `what()` holds, woken by each election event."""
        for _ in range(100):
            if what():
                return
            self.changed.wait(EVENT_TIMEOUT_S / 100)
            self.changed.clear()
        assert what(), "no such election event in time"


def test_one_of_racing_brokers_wins_and_the_epoch_counts_elections(make_client):
    clients = [make_client() for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    leases: dict[int, ControllerLease | None] = {}

    def race(broker_id: int) -> None:
        barrier.wait(EVENT_TIMEOUT_S)
        leases[broker_id] = try_elect(clients[broker_id], broker_id)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(EVENT_TIMEOUT_S)
    winners = [lease for lease in leases.values() if lease is not None]
    assert len(leases) == 4 and len(winners) == 1
    (lease,) = winners
    assert (lease.epoch, read_controller(clients[0])) == (1, lease.broker_id)
    assert read_epoch(clients[0]) == (1, lease.epoch_version)


def test_a_new_controller_is_elected_when_the_controller_session_ends_and_the_old_is_fenced(
    make_client, zk_hosts
):
    first_client, second_client = make_client(), make_client()
    first, second = Contender(first_client, 1), Contender(second_client, 2)
    clients = {1: first_client, 2: second_client}

    def lease_of(epoch: int) -> ControllerLease | None:
        won = [lease for c in (first, second) for lease in c.won if lease.epoch == epoch]
        return won[0] if won else None

    first.election.start()
    first.wait(lambda: first.won)
    second.election.start()
    assert read_controller(second_client) == 1 and second.won == []

    store_path = "/fenced-state"
    second_client.create(store_path, b"v0")
    old = first.won[0]
    assert fenced_set(first_client, old, store_path, b"by 1", 0) == 1

    renewed = wait_for_state(first_client, KazooState.CONNECTED, EVENT_TIMEOUT_S)
    expire_session(first_client, zk_hosts)  # as a broker paused past its session timeout
    assert renewed(), "kazoo did not open a new session"
    # the next controller (the other broker, or this one again under its new session)
    second.wait(lambda: lease_of(old.epoch + 1) is not None)
    assert first.resigned >= 1
    with pytest.raises(ZafkaError) as err:
        fenced_set(first_client, old, store_path, b"by the deposed 1", 1)
    assert err.value.error.name == "STALE_CONTROLLER_EPOCH"
    assert second_client.get(store_path)[0] == b"by 1"  # the deposed one wrote nothing
    successor = lease_of(old.epoch + 1)
    assert successor is not None
    assert fenced_set(clients[successor.broker_id], successor, store_path, b"next", 1) == 2
    with pytest.raises(ZafkaError) as err:  # a write against a version read before
        fenced_set(clients[successor.broker_id], successor, store_path, b"stale", 1)
    assert err.value.error.name == "INVALID_UPDATE_VERSION"
    assert read_controller(second_client) == successor.broker_id


def test_a_stopped_controller_hands_over_and_a_lost_session_may_win_again(make_client, zk_hosts):
    clients = make_client(), make_client()
    contenders = [Contender(clients[0], 1), Contender(clients[1], 2)]
    for contender in contenders:
        contender.election.start()
    contenders[0].wait(lambda: any(c.won for c in contenders))
    leader, other = sorted(contenders, key=lambda c: not c.won)
    leader.election.stop()
    other.wait(lambda: other.won)
    assert leader.resigned == 1 and read_epoch(clients[0])[0] == 2

    winner_client = clients[contenders.index(other)]
    expire_session(winner_client, zk_hosts)
    # the session is renewed by kazoo; the stopped broker is out, so the other wins again
    other.wait(lambda: len(other.won) == 2)
    assert other.resigned >= 1 and other.won[1].epoch == 3
