"""Smoke tests of the real ZooKeeper the suite runs against, through kazoo.

They show that the container, the chroot-per-test fixtures and the fault helpers (session
expiry, pause, stop/restart) behave as later broker tests will rely on.
"""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

from tests.integration.conftest import SESSION_TIMEOUT_S, expire_session, wait_for_state
from tests.integration.tcp_gate import TcpGate
from zafka.coordination import paths
from zafka.coordination.registry import EphemeralRegistration

pytestmark = pytest.mark.integration

EVENT_TIMEOUT_S = 15.0


def test_ephemeral_znode_disappears_when_its_session_closes(make_client):
    owner, observer = make_client(), make_client()
    owner.create("/alive", b"x", ephemeral=True)
    deleted = threading.Event()
    assert observer.exists("/alive", watch=lambda event: deleted.set()) is not None

    owner.stop()

    assert deleted.wait(EVENT_TIMEOUT_S), "no watch event after the owner's session closed"
    assert observer.exists("/alive") is None


class Contender:
    """One election participant, in its own thread with its own ZooKeeper session."""

    def __init__(self, client, name: str, leaders: list[str], changed: threading.Condition):
        self.client = client
        self.name = name
        self.election = client.Election("/election", name)
        self._leaders = leaders
        self._changed = changed
        self._session_lost = threading.Event()
        self.done = threading.Event()
        client.add_listener(lambda s: s == KazooState.LOST and self._session_lost.set())
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _lead(self) -> None:
        with self._changed:
            self._leaders.append(self.name)
            self._changed.notify_all()
        self._session_lost.wait(EVENT_TIMEOUT_S * 4)  # a leader leads until its session is lost
        with self._changed:
            self._leaders.remove(self.name)
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            self.election.run(self._lead)
        finally:
            self.done.set()

    def stop(self) -> None:
        self.election.cancel()
        self._session_lost.set()
        self.done.wait(EVENT_TIMEOUT_S)


def test_three_contenders_elect_one_leader_and_a_new_one_after_expiry(make_client, zk_hosts):
    leaders: list[str] = []
    changed = threading.Condition()
    contenders = [Contender(make_client(), f"c{i}", leaders, changed) for i in range(3)]
    for contender in contenders:
        contender.thread.start()
    try:
        watcher = make_client()
        watcher.ensure_path("/election")
        registered = threading.Event()

        def on_children(children: list[str]) -> None:  # None: keep watching (False would stop)
            if len(children) == 3:
                registered.set()

        watcher.ChildrenWatch("/election", on_children)
        assert registered.wait(EVENT_TIMEOUT_S), "three contenders did not register"
        assert len(watcher.Election("/election").contenders()) == 3
        with changed:
            assert changed.wait_for(lambda: leaders, EVENT_TIMEOUT_S)
            assert len(leaders) == 1, f"more than one leader: {leaders}"
            first = leaders[0]

        leader = next(c for c in contenders if c.name == first)
        started = time.monotonic()
        expire_session(leader.client, zk_hosts)
        with changed:
            assert changed.wait_for(lambda: leaders and leaders[0] != first, EVENT_TIMEOUT_S)
            assert first not in leaders and len(leaders) == 1
        took_s = time.monotonic() - started
        assert took_s < EVENT_TIMEOUT_S, f"new leader after {took_s:.1f}s"
        assert leader.done.wait(EVENT_TIMEOUT_S), "the expired leader kept running its election"
    finally:
        for contender in contenders:
            contender.stop()


def test_paused_zookeeper_expires_the_session_and_the_client_registers_again(
    make_client, zk_server, zk_hosts
):
    """The client reaches ZooKeeper through a TcpGate, shut while the server is frozen.
    Without it, what the client sends during the pause waits in the server's socket
    buffers and, processed on resume, can renew the session before the server's expiry
    check runs (a race seen in CI)."""
    gate = TcpGate(zk_server.port)
    chroot = zk_hosts[len(zk_server.hosts) :]
    quick_retry = KazooRetry(max_tries=-1, delay=0.1, backoff=1.5, max_delay=1.0)
    client = KazooClient(
        hosts=f"127.0.0.1:{gate.port}{chroot}",
        timeout=SESSION_TIMEOUT_S,
        connection_retry=quick_retry,
    )
    client.start(timeout=EVENT_TIMEOUT_S)
    try:
        registration = EphemeralRegistration(client, paths.broker(7), b"tcp://127.0.0.1:9092")
        registration.start()
        first_session = client.client_id[0]
        assert client.exists(paths.broker(7)).ephemeralOwner == first_session

        lost = wait_for_state(client, KazooState.LOST, EVENT_TIMEOUT_S * 2)
        gate.shut()
        zk_server.pause()
        try:
            time.sleep(SESSION_TIMEOUT_S * 2.5)  # the fault under test: silence past the timeout
        finally:
            zk_server.unpause()
        gone = threading.Event()
        if make_client().exists(paths.broker(7), watch=lambda event: gone.set()) is not None:
            assert gone.wait(EVENT_TIMEOUT_S), "the server did not expire the paused session"
        gate.open()

        assert lost(), "the client was not told its session expired"
        assert registration.registered.wait(EVENT_TIMEOUT_S), "did not register again"
        assert registration.sessions_lost == 1
        stat = client.exists(paths.broker(7))
        assert stat is not None and stat.ephemeralOwner == client.client_id[0] != first_session
        registration.stop()
        assert client.exists(paths.broker(7)) is None
    finally:
        client.stop()
        client.close()
        gate.close()


def test_data_survives_a_zookeeper_restart_and_clients_reconnect(make_client, zk_server):
    client = make_client()
    client.create("/durable", b"kept")
    suspended = wait_for_state(client, KazooState.SUSPENDED, EVENT_TIMEOUT_S)
    zk_server.stop()
    assert suspended(), "client did not notice the server stopped"
    reconnected = wait_for_state(client, KazooState.CONNECTED, EVENT_TIMEOUT_S)
    zk_server.restart()
    assert reconnected(), "client did not reconnect after the restart"
    assert client.get("/durable")[0] == b"kept"
