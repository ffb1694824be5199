"""`zafka cluster up|status|down` against Debian's ZooKeeper, as separate processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.zk_container import free_port
from zafka import zookeeper

pytestmark = pytest.mark.slow


def zafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zafka.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cluster_up_status_down(tmp_path):
    port = free_port()
    cluster_dir = str(tmp_path / "cluster")
    up = zafka("cluster", "up", "--dir", cluster_dir, "--zk-port", str(port))
    try:
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{port} answers ruok" in up.stdout
        assert f"cluster down --dir {cluster_dir}" in up.stdout  # it says how to stop it
        assert zookeeper.is_ok(port)

        again = zafka("cluster", "up", "--dir", cluster_dir, "--zk-port", str(port))
        assert again.returncode == 0 and zookeeper.is_ok(port)  # idempotent

        status = zafka("cluster", "status", "--dir", cluster_dir)
        assert status.returncode == 0 and "zookeeper: ready" in status.stdout

        other = zafka("cluster", "up", "--dir", str(tmp_path / "other"), "--zk-port", str(port))
        assert other.returncode == 2 and "already taken" in other.stderr
    finally:
        down = zafka("cluster", "down", "--dir", cluster_dir)
    assert down.returncode == 0 and "zookeeper: stopped" in down.stdout
    assert not zookeeper.is_ok(port)
    status = zafka("cluster", "status", "--dir", cluster_dir)
    assert status.returncode == 1
