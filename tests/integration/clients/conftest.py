"""A real broker process for client tests: `bootstrap` is its "127.0.0.1:PORT", with
topic auto-creation on, registered in this test's ZooKeeper chroot. Every wait is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.broker_helpers import BrokerProcess, free_port

CLIENT_BROKER_ID = 1


def broker_process(zk_hosts: str, directory: Path, port: int = 0) -> BrokerProcess:
    """A broker (not started yet) with its data and log in `directory`, on `port` or a free
    one; started again on the same port and directory, it is the same broker restarted."""
    return BrokerProcess(
        zk_hosts,
        directory / "data",
        directory / "broker.log",
        port or free_port(),
        broker_id=CLIENT_BROKER_ID,
        extra_args=("--auto-create-topics",),
    )


@pytest.fixture
def broker(zk_hosts: str, tmp_path: Path) -> Iterator[BrokerProcess]:
    process = broker_process(zk_hosts, tmp_path)
    process.start()
    yield process
    if process.alive():
        process.terminate()


@pytest.fixture
def bootstrap(broker: BrokerProcess) -> str:
    return f"127.0.0.1:{broker.port}"
