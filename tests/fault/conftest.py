"""Fault-suite fixtures: ZooKeeper as for the integration tests (tests/integration/conftest.py),
and a 3-broker cluster whose processes are killed at the end, pass or fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fault.cluster import FaultCluster
from tests.integration.broker_helpers import brokers_running
from tests.integration.conftest import make_client, zk_hosts, zk_server  # noqa: F401


@pytest.fixture
def cluster(zk_hosts: str, make_client, tmp_path: Path) -> Iterator[FaultCluster]:  # noqa: F811
    with brokers_running(zk_hosts, tmp_path, ids=(1, 2, 3)) as brokers:
        faults = FaultCluster(brokers, make_client(), tmp_path)
        try:
            yield faults
        finally:
            faults.stop_producers()
