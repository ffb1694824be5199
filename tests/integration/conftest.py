"""Integration fixtures: one ZooKeeper container per session, a fresh chroot per test, and a
broker process."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState

from tests.integration.broker_helpers import BrokerProcess, free_port
from tests.integration.zk_container import ZooKeeperContainer

SESSION_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 15.0


_started: list[str] = []  # what the session fixture started, for the end-of-run summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _started:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def zk_server() -> Iterator[ZooKeeperContainer]:
    server = ZooKeeperContainer()
    server.start()
    _started.append(f"integration tests ran against ZooKeeper {server.describe()}")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def zk_hosts(zk_server: ZooKeeperContainer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A connect string rooted at a chroot of this test's own, deleted afterwards."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    chroot = f"/zafka-tests/{name}-{uuid.uuid4().hex[:8]}"
    with _admin(zk_server) as admin:
        admin.ensure_path(chroot)
    yield zk_server.hosts + chroot
    # A session of its own: the test may have paused the server past any session's timeout.
    with _admin(zk_server) as admin:
        admin.delete(chroot, recursive=True)


@contextlib.contextmanager
def _admin(zk_server: ZooKeeperContainer) -> Iterator[KazooClient]:
    admin = KazooClient(hosts=zk_server.hosts)
    admin.start(timeout=CONNECT_TIMEOUT_S)
    try:
        yield admin
    finally:
        admin.stop()
        admin.close()


@pytest.fixture
def make_client(zk_hosts: str) -> Iterator[Callable[..., KazooClient]]:
    """Factory of started kazoo clients in this test's chroot; all closed at teardown."""
    clients: list[KazooClient] = []

    def make(timeout_s: float = SESSION_TIMEOUT_S) -> KazooClient:
        client = KazooClient(hosts=zk_hosts, timeout=timeout_s)
        client.start(timeout=CONNECT_TIMEOUT_S)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def zk(make_client: Callable[..., KazooClient]) -> KazooClient:
    """A started kazoo client in this test's chroot (closed at teardown)."""
    return make_client()


@pytest.fixture
def broker(zk_hosts: str, tmp_path: Path) -> Iterator[BrokerProcess]:
    """One broker process (id BROKER_ID, a free port), killed at the end of the test. The
    client tests' conftest has its own, with auto-creation on."""
    process = BrokerProcess(zk_hosts, tmp_path / "data", tmp_path / "broker.log", free_port())
    process.start()
    yield process
    process.kill()


def wait_for_state(client: KazooClient, wanted: str, timeout_s: float) -> Callable[[], bool]:
    """Arm a wait for `client` to enter state `wanted`; call the result to wait (bounded)."""
    reached = threading.Event()

    def listener(state: str) -> None:
        if state == wanted:
            reached.set()

    client.add_listener(listener)

    def wait() -> bool:
        try:
            return reached.wait(timeout_s)
        finally:
            client.remove_listener(listener)

    return wait


def expire_session(client: KazooClient, zk_hosts: str, timeout_s: float = 10.0) -> None:
    """Expire `client`'s session from the server side, as a real expiry would.

    A second connection that presents the same session id and password, then closes, makes
    the server end that session; `client` then sees LOST (kazoo's harness does the same).
    """
    lost = wait_for_state(client, KazooState.LOST, timeout_s)
    twin = KazooClient(hosts=zk_hosts, client_id=client.client_id)
    twin.start(timeout=CONNECT_TIMEOUT_S)
    twin.stop()
    twin.close()
    if not lost():
        raise AssertionError(f"session was not reported LOST within {timeout_s}s")
